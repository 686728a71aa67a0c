"""Temporal metrics of colorized clips: does the colour hold still where the scene does?

Frames are uint8 sRGB ``(H, W, 3)``; every measure is streaming (feed frames in order, read
the value at the end), so a clip of any length is scored in flat memory.

* **CDC**, colour distribution consistency (Liu et al. 2021, "Temporally consistent video
  colorization with deep feature propagation and self-regularization learning"): for each
  frame, the normalised 256-bin histogram of each of R, G and B; for gaps ``d = 1, 2, 4``,
  the Jensen-Shannon divergence (natural log) between the histograms of frames ``i`` and
  ``i + d``, averaged over the three channels and every pair ``i``; CDC is the mean over the
  three gaps. Lower is steadier. A gap longer than the clip is left out.
* **CDC added by colouring** = CDC(result) - CDC(gray input), the gray input being the
  truth's lightness as a neutral clip. Camera motion and cuts change the histograms of
  even a gray clip; colour cannot remove that part, so only the difference is colour's.
* **Warp error** of ab (after Lai et al. 2018, "Learning blind video temporal consistency",
  on ab rather than RGB): optical flow between consecutive *truth* frames (DIS on their
  CIELAB lightness, :mod:`tinct.metrics.flow`) warps the previous output frame's ab onto the
  current one; the error is the mean Euclidean ab distance (Lab units) over pixels whose flow
  is trusted (in view, forward-backward consistent and photometrically consistent, which
  masks occlusions); the clip's value is the mean over frame pairs. Pairs where most pixels
  do not match in lightness even after warping are scene cuts and are left out: colour may
  change there. The same flow and masks serve every system scored on the clip.

>>> import numpy as np
>>> from tinct.metrics.temporal import cdc
>>> still = [np.full((4, 4, 3), 90, np.uint8)] * 5
>>> cdc(still)
0.0
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Sequence

import numpy as np

from tinct.metrics.chromatic import _check_rgb as check_rgb
from tinct.metrics.flow import FlowChecks, FlowEstimator, photometric_match, trusted_mask, warp

__all__ = [
    "CDC_GAPS",
    "channel_histograms",
    "js_divergence",
    "cdc",
    "CDCAccumulator",
    "WarpReference",
    "WarpErrorAccumulator",
    "ab_of",
]

CDC_GAPS = (1, 2, 4)
_BINS = 256


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    return check_rgb(rgb, "frame")  # the image metrics' check, naming a frame


def channel_histograms(rgb: np.ndarray) -> np.ndarray:
    """Normalised 256-bin histograms of R, G and B of a uint8 frame: float64 ``(3, 256)``."""
    rgb = _check_rgb(rgb)
    pixels = rgb.shape[0] * rgb.shape[1]
    flat = rgb.reshape(-1, 3)
    return np.stack([np.bincount(flat[:, c], minlength=_BINS) for c in range(3)]).astype(np.float64) / pixels


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) of normalised histograms along the last axis:
    ``(JS(p || m) + JS(q || m)) / 2`` with ``m = (p + q) / 2`` and ``0 log 0 = 0``; in [0, ln 2]."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0)
    return 0.5 * kl_p.sum(axis=-1) + 0.5 * kl_q.sum(axis=-1)


class CDCAccumulator:
    """Streaming CDC: :meth:`add` each frame in order, then :attr:`value`."""

    def __init__(self, gaps: Sequence[int] = CDC_GAPS):
        if not gaps or min(gaps) < 1:
            raise ValueError(f"gaps must be positive frame distances, got {gaps}")
        self.gaps = tuple(gaps)
        self._recent: deque = deque(maxlen=max(self.gaps))
        self._sums = dict.fromkeys(self.gaps, 0.0)
        self._counts = dict.fromkeys(self.gaps, 0)
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        self.add_histograms(channel_histograms(rgb))

    def add_histograms(self, histograms: np.ndarray) -> None:
        """Add a frame by its :func:`channel_histograms`."""
        for gap in self.gaps:
            if len(self._recent) >= gap:
                self._sums[gap] += float(np.mean(js_divergence(self._recent[-gap], histograms)))
                self._counts[gap] += 1
        self._recent.append(histograms)
        self.frames += 1

    def per_gap(self) -> dict[int, float]:
        """Mean JS divergence for each gap the clip is long enough for."""
        return {gap: self._sums[gap] / self._counts[gap] for gap in self.gaps if self._counts[gap]}

    @property
    def value(self) -> float:
        """The CDC: mean over the gaps of :meth:`per_gap` (``nan`` for a single frame)."""
        values = list(self.per_gap().values())
        return float(np.mean(values)) if values else float("nan")


def cdc(frames: Iterable[np.ndarray], gaps: Sequence[int] = CDC_GAPS) -> float:
    """The CDC of a clip given as uint8 RGB frames (see the module docstring)."""
    accumulator = CDCAccumulator(gaps)
    for rgb in frames:
        accumulator.add(rgb)
    return accumulator.value


def ab_of(rgb: np.ndarray) -> np.ndarray:
    """float32 ab ``(2, H, W)`` of a uint8 sRGB frame (scikit-image's ``rgb2lab``, D65)."""
    from tinct.metrics.chromatic import lab_of

    lab = lab_of(_check_rgb(rgb))
    return np.ascontiguousarray(np.moveaxis(lab[..., 1:], -1, 0), dtype=np.float32)


class WarpReference:
    """The flow and trust masks between consecutive truth frames, computed once per clip.

    :meth:`add` each truth frame in order; it returns ``(flow, mask)`` for the pair (previous,
    this), or ``None`` for the first frame and for a scene cut: fewer than ``cut_matched_fraction``
    of the pixels match in lightness after warping (on the benchmark clips, at most 0.43 do
    across a cut and at least 0.94 within a shot). The mask itself is strict (in view,
    forward-backward and photometrically consistent everywhere, flat areas included).
    """

    def __init__(self, preset: str = "medium", cut_matched_fraction: float = 0.7):
        self._flow = FlowEstimator(preset)
        self.checks = FlowChecks()
        self.cut_matched_fraction = cut_matched_fraction
        self._previous: np.ndarray | None = None
        self.pairs = 0
        self.cuts = 0

    def add(self, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        from tinct.color import cielab_lightness

        lightness = cielab_lightness(_check_rgb(truth)).astype(np.float32)
        previous, self._previous = self._previous, lightness
        if previous is None:
            return None
        if previous.shape != lightness.shape:
            raise ValueError(f"truth frames change size: {previous.shape} then {lightness.shape}")
        flow = self._flow(lightness, previous)
        back = self._flow(previous, lightness)
        if photometric_match(lightness, previous, flow, self.checks.lightness_tolerance).mean() < self.cut_matched_fraction:
            self.cuts += 1
            return None
        mask = trusted_mask(lightness, previous, flow, back, self.checks)
        self.pairs += 1
        return flow, mask


class WarpErrorAccumulator:
    """Streaming ab warp error of one system's frames, along a :class:`WarpReference`'s flow.

    :meth:`add` each output frame's ab (:func:`ab_of`) with the reference's answer for the same
    frame; :attr:`value` is the mean over scored pairs of the masked mean ab distance.
    """

    def __init__(self):
        self._previous: np.ndarray | None = None
        self._sum = 0.0
        self.pairs = 0

    def add(self, ab: np.ndarray, reference: tuple[np.ndarray, np.ndarray] | None) -> None:
        previous, self._previous = self._previous, np.asarray(ab, np.float32)
        if previous is None or reference is None:
            return
        flow, mask = reference
        if not mask.any():
            return
        warped = warp(previous, flow)
        distance = np.hypot(*(self._previous - warped))
        self._sum += float(distance[mask].mean())
        self.pairs += 1

    @property
    def value(self) -> float:
        """Mean masked ab warp error in Lab units (``nan`` when no pair was scored)."""
        return self._sum / self.pairs if self.pairs else float("nan")
