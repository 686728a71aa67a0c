"""Temporal consistency: each frame's colour continues the colour of what it shows.

Colorizing frame by frame makes colour flicker: the network sees every frame afresh, and
noise, blur or a slightly different framing moves its guess. :class:`TemporalFilter` keeps a
running colour along the motion, at the network's working resolution (the content box of
its input square, e.g. 192 x 108 for a 16:9 clip), one frame at a time:

1. DIS optical flow (:mod:`tinct.metrics.flow`) of the new frame towards the previous one, and
   back, on the lightness the network saw;
2. a trust mask: in view, forward-backward consistent (waived in flat areas, where flow is
   ambiguous but any nearby pixel shows the same), photometrically consistent (occluded and
   newly revealed pixels, and pixels whose flow is wrong, are not trusted), feathered so that
   no seam shows;
3. a running mean along the motion: the previous *output* ab is warped along the flow and
   averaged with the network's ab for this frame. Each pixel carries ``n``, the number of
   frames its colour already averages (warped with it; reset where the flow is not
   trusted); the past's weight is ``trust * min(n / (n + 1), strength)``: an equal-weight
   mean over a new shot's first frames, then an exponential one with a memory of about
   ``1 / (1 - strength)`` frames.
   Averaging two ab vectors of different hue shortens them (washes colour out), so the
   result's chroma is set to the same average of the two chromas (hue from the vector
   average, chroma from the chroma average);
4. **scene cuts**: when too few pixels are trusted, or the lightness histograms of the two
   frames differ too much, the frame starts afresh with the network's ab exactly: no colour
   is carried across a cut.

Where the flow is not trusted (occlusions, new content, a cut) the result is the per-frame
result. It needs only the previous frame: memory is flat in the clip's length
and nothing waits for future frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinct.metrics.flow import FlowChecks, FlowEstimator, trusted_mask, warp

__all__ = ["TemporalConfig", "TemporalFilter", "FrameNote", "lightness_histogram", "histogram_distance"]


@dataclass(frozen=True)
class TemporalConfig:
    """Settings of :class:`TemporalFilter`.

    Attributes:
        strength: the largest weight of the motion-compensated past where the flow is fully
            trusted (0: per-frame colour; 0.95: a memory of about 20 frames).
        flow_preset: DIS preset (``"ultrafast"``, ``"fast"``, ``"medium"``).
        checks: thresholds of the trust mask.
        feather: box-filter radius (pixels at working resolution) that softens the mask.
        cut_trusted_fraction: a cut when fewer pixels than this fraction are trusted.
        cut_histogram_distance: a cut when the Jensen-Shannon divergence (nats) of the two
            frames' 32-bin lightness histograms exceeds this.
        max_chroma_gain: the chroma restoration of step 3 never lengthens the blended ab
            vector by more than this factor (near-opposite hues average to nearly nothing:
            there the hue is unreliable and is not blown up).
    """

    strength: float = 0.95
    flow_preset: str = "fast"
    checks: FlowChecks = field(default_factory=lambda: FlowChecks(flat_below=0.5))
    feather: int = 2
    cut_trusted_fraction: float = 0.5
    cut_histogram_distance: float = 0.1
    max_chroma_gain: float = 2.0

    def __post_init__(self):
        if not 0 <= self.strength < 1:
            raise ValueError(f"strength must be in [0, 1), got {self.strength}")
        if self.feather < 0:
            raise ValueError(f"feather must be >= 0, got {self.feather}")


@dataclass(frozen=True)
class FrameNote:
    """What the filter did with one frame.

    Attributes:
        cut: the frame started afresh (first frame, or a scene cut was detected).
        trusted: fraction of pixels whose flow was trusted (0 for a fresh start).
        histogram_distance: JS divergence of the lightness histograms to the previous frame.
    """

    cut: bool
    trusted: float
    histogram_distance: float


HISTOGRAM_BINS = 32


def lightness_histogram(lightness: np.ndarray, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """Normalised histogram of L in [0, 100] over ``bins`` equal bins, float64 ``(bins,)``."""
    counts, _ = np.histogram(np.asarray(lightness).ravel(), bins=bins, range=(0.0, 100.0))
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def histogram_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) of two normalised histograms."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log(a[nonzero] / m[nonzero])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def _box_blur(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    if radius <= 0:
        return mask
    return cv2.blur(mask, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REPLICATE)


class TemporalFilter:
    """Motion-compensated recursive averaging of ab with occlusion masks and cut detection.

    Feed frames in order with :meth:`__call__`; call :meth:`reset` between clips.

    >>> import numpy as np
    >>> f = TemporalFilter()
    >>> l = np.tile(np.linspace(20, 80, 64, dtype=np.float32), (48, 1))
    >>> ab, note = f(l, np.full((2, 12, 16), 10, np.float32))
    >>> note.cut, ab.shape   # the first frame starts afresh, with the network's own ab
    (True, (2, 12, 16))
    """

    def __init__(self, config: TemporalConfig | None = None):
        self.config = config or TemporalConfig()
        self._flow = FlowEstimator(self.config.flow_preset)
        self.reset()

    def reset(self) -> None:
        """Forget the past (a new clip)."""
        self._lightness: np.ndarray | None = None
        self._ab: np.ndarray | None = None  # previous output, (2, h, w) at working resolution
        self._count: np.ndarray | None = None  # (h, w): frames its colour averages (capped by strength)
        self._histogram: np.ndarray | None = None

    def _start(self, network: np.ndarray) -> None:
        self._ab = network
        self._count = np.ones(network.shape[1:], np.float32)

    def __call__(self, lightness: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, FrameNote]:
        """One frame: ``lightness`` float32 ``(h, w)`` L at working resolution (what the network
        saw) and the network's ``ab`` ``(2, h', w')`` for it, in Lab units (any ``h'``, ``w'``:
        the network's output grid). Returns the ab to compose the frame with, and a note.

        On a fresh start the network's ``ab`` is returned as it is (so that frame is exactly
        the per-frame result); otherwise ``(2, h, w)`` at working resolution.
        """
        from tinct.infer import upsample_bilinear

        lightness = np.asarray(lightness, dtype=np.float32)
        ab = np.asarray(ab, dtype=np.float32)
        if lightness.ndim != 2:
            raise ValueError(f"expected lightness of shape (h, w), got {lightness.shape}")
        if ab.ndim != 3 or ab.shape[0] != 2:
            raise ValueError(f"expected ab of shape (2, h, w), got {ab.shape}")
        histogram = lightness_histogram(lightness)
        network = upsample_bilinear(ab, *lightness.shape)  # (2, h, w)
        previous, previous_lightness = self._ab, self._lightness
        distance = 0.0 if self._histogram is None else histogram_distance(histogram, self._histogram)
        self._histogram = histogram
        self._lightness = lightness
        if previous is None or previous_lightness.shape != lightness.shape:
            self._start(network)
            return ab, FrameNote(True, 0.0, distance)
        flow = self._flow(lightness, previous_lightness)  # this frame towards the previous one
        back = self._flow(previous_lightness, lightness)
        trusted = trusted_mask(lightness, previous_lightness, flow, back, self.config.checks)
        fraction = float(trusted.mean())
        if fraction < self.config.cut_trusted_fraction or distance > self.config.cut_histogram_distance:
            self._start(network)
            return ab, FrameNote(True, fraction, distance)
        trust = _box_blur(trusted.astype(np.float32), self.config.feather)
        count = warp(self._count, flow)  # frames averaged so far along each pixel's path
        weight = trust * np.minimum(count / (count + 1), self.config.strength)
        carried = warp(previous, flow)
        blended = weight * carried + (1 - weight) * network
        chroma = weight * np.hypot(*carried) + (1 - weight) * np.hypot(*network)
        length = np.hypot(*blended)
        gain = np.minimum(chroma / np.maximum(length, 1e-6), self.config.max_chroma_gain)
        out = (blended * gain).astype(np.float32)
        self._ab = out
        self._count = trust * count + 1  # an untrusted pixel starts its count afresh
        return out, FrameNote(False, fraction, distance)
