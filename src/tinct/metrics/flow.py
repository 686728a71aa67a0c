"""Optical flow between frames, warping along it, and where it can be trusted.

Flow comes from OpenCV's DIS (dense inverse search; Kroeger et al. 2016), run on CIELAB
lightness. The convention everywhere in tinct: ``flow`` of frame ``t`` towards frame ``s`` is
float32 ``(H, W, 2)`` of ``(dx, dy)`` in pixels, such that pixel ``(x, y)`` of ``t`` shows what
``(x + dx, y + dy)`` of ``s`` shows. :func:`warp` then brings any map of ``s`` onto ``t``'s grid.

A pixel's flow is trusted (:func:`trusted_mask`) where three checks pass:

* **in view**: it points inside frame ``s`` (content entering the picture has no past);
* **forward-backward consistency** (Sundaram et al. 2010, as Lai et al. 2018 mask occlusions):
  following the flow to ``s`` and the flow of ``s`` back lands within
  ``alpha (|f|^2 + |b|^2) + beta`` pixels (squared) of where it started;
* **photometric**: the warped lightness of ``s`` matches ``t`` within ``lightness_tolerance``
  L units, after removing the frames' mean difference (a fade or an exposure flicker is not
  an occlusion).

>>> import numpy as np
>>> from tinct.metrics.flow import FlowEstimator, warp
>>> y, x = np.mgrid[0:48, 0:68].astype(np.float32)
>>> scene = 50 + 20 * np.sin(x / 3) * np.cos(y / 4)
>>> a, b = scene[:, 2:66], scene[:, :64]  # in b, the picture moved 2 px right
>>> flow = FlowEstimator()(b, a)  # b towards a: about -2 px in x
>>> round(float(np.median(flow[..., 0])))
-2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FlowEstimator",
    "FlowChecks",
    "warp",
    "in_view",
    "forward_backward_consistent",
    "photometric_match",
    "flat_areas",
    "trusted_mask",
    "to_flow_image",
]

_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def to_flow_image(lightness: np.ndarray) -> np.ndarray:
    """CIELAB L ``(H, W)`` in [0, 100] -> the uint8 image DIS works on (L scaled to 0..255)."""
    lightness = np.asarray(lightness, dtype=np.float32)
    if lightness.ndim != 2:
        raise ValueError(f"expected lightness of shape (H, W), got {lightness.shape}")
    return np.clip(lightness * 2.55 + 0.5, 0, 255).astype(np.uint8)


class FlowEstimator:
    """DIS optical flow on lightness: ``estimator(target_L, source_L) -> (H, W, 2)`` flow of
    the target towards the source (see the module docstring for the convention).

    Args:
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (OpenCV's DIS presets).
    """

    def __init__(self, preset: str = "medium"):
        import cv2

        if preset not in _PRESETS:
            raise ValueError(f"flow preset must be one of {', '.join(_PRESETS)}, got {preset!r}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(_PRESETS[preset])

    def __call__(self, target: np.ndarray, source: np.ndarray) -> np.ndarray:
        a, b = to_flow_image(target), to_flow_image(source)
        if a.shape != b.shape:
            raise ValueError(f"frames differ in size: {a.shape} and {b.shape}")
        if min(a.shape) < 8:  # DIS needs a patch's worth of pixels
            return np.zeros((*a.shape, 2), np.float32)
        return self._dis.calc(a, b, None)


def _sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = flow.shape[:2]
    xs = np.arange(width, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(height, dtype=np.float32)[:, None] + flow[..., 1]
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Bring ``image`` of frame ``s`` onto frame ``t``'s grid along ``flow`` (``t`` towards ``s``).

    Args:
        image: float32 ``(H, W)`` or ``(C, H, W)`` (channels first, as ab maps are).
        flow: ``(H, W, 2)``.
    Returns:
        float32 of ``image``'s shape, sampled bilinearly; outside the frame the border
        is repeated (:func:`in_view` says where that happened).
    """
    import cv2

    image = np.asarray(image, dtype=np.float32)
    xs, ys = _sample_grid(flow)
    if image.ndim == 2:
        return cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if image.ndim == 3 and image.shape[1:] == flow.shape[:2]:
        channels_last = np.ascontiguousarray(np.moveaxis(image, 0, -1))
        warped = cv2.remap(channels_last, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(np.moveaxis(warped.reshape(*flow.shape[:2], -1), -1, 0))
    raise ValueError(f"expected an image (H, W) or (C, H, W) matching flow {flow.shape[:2]}, got {image.shape}")


def in_view(flow: np.ndarray) -> np.ndarray:
    """bool ``(H, W)``: the flow points inside the other frame."""
    height, width = flow.shape[:2]
    xs, ys = _sample_grid(flow)
    return (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)


def forward_backward_consistent(flow: np.ndarray, back: np.ndarray, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """bool ``(H, W)``: following ``flow`` (t towards s) then ``back`` (s towards t) returns home:
    ``|f + b'|^2 <= alpha (|f|^2 + |b'|^2) + beta`` with ``b'`` = ``back`` warped onto t."""
    returned = np.moveaxis(warp(np.moveaxis(back, -1, 0), flow), 0, -1)
    error = np.sum((flow + returned) ** 2, axis=-1)
    bound = alpha * (np.sum(flow**2, axis=-1) + np.sum(returned**2, axis=-1)) + beta
    return error <= bound


@dataclass(frozen=True)
class FlowChecks:
    """Thresholds of :func:`trusted_mask`.

    Attributes:
        alpha, beta: forward-backward bound (``beta`` in squared pixels).
        lightness_tolerance: photometric bound, L units.
        flat_below: where the target's lightness gradient (L units per pixel, smoothed) is
            below this, the forward-backward check is waived: in flat areas (sky, walls)
            flow is ambiguous and often fails that check although any nearby source pixel
            shows the same thing. 0 keeps the check everywhere (the metrics do).
    """

    alpha: float = 0.01
    beta: float = 0.5
    lightness_tolerance: float = 8.0
    flat_below: float = 0.0


def trusted_mask(
    target: np.ndarray, source: np.ndarray, flow: np.ndarray, back: np.ndarray, checks: FlowChecks = FlowChecks()
) -> np.ndarray:
    """bool ``(H, W)``: where ``flow`` (``target`` towards ``source``) can carry a value of the
    source frame onto the target: in view, forward-backward consistent and photometrically
    consistent (module docstring). ``target``, ``source``: lightness ``(H, W)``."""
    consistent = forward_backward_consistent(flow, back, checks.alpha, checks.beta)
    if checks.flat_below > 0:
        consistent |= flat_areas(target, checks.flat_below)
    return in_view(flow) & consistent & photometric_match(target, source, flow, checks.lightness_tolerance)


def photometric_match(target: np.ndarray, source: np.ndarray, flow: np.ndarray, tolerance: float = 8.0) -> np.ndarray:
    """bool ``(H, W)``: the source's lightness warped along ``flow`` is within ``tolerance`` L
    units of the target's, after removing the median difference (an exposure change)."""
    residual = np.asarray(target, np.float32) - warp(source, flow)
    residual -= float(np.median(residual))
    return np.abs(residual) <= tolerance


def flat_areas(lightness: np.ndarray, below: float) -> np.ndarray:
    """bool ``(H, W)``: the lightness gradient magnitude, averaged over 5 x 5 pixels, is below
    ``below`` L units per pixel."""
    import cv2

    lightness = np.asarray(lightness, np.float32)
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3) / 8
    return cv2.blur(np.hypot(gx, gy), (5, 5)) < below
