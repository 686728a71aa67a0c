"""Colour metrics: do the outputs have the truth's colours, and as much colour as the truth?

Per-image metrics take uint8 sRGB ``(H, W, 3)``; every CIELAB value comes from
scikit-image's ``rgb2lab`` (D65, 2 degree observer), so anyone can recompute them.

* **CIEDE2000**: ``deltaE_ciede2000(rgb2lab(pred), rgb2lab(truth))`` (kL = kC = kH = 1),
  averaged over the pixels of the image. Lower is better; about 1 is a just-noticeable
  difference.
* **Colourfulness** (Hasler & Suesstrunk 2003), on values in [0, 255]:
  ``rg = R - G``, ``yb = (R + G) / 2 - B`` (signed, no absolute values),
  ``sigma = sqrt(std(rg)^2 + std(yb)^2)``, ``mu = sqrt(mean(rg)^2 + mean(yb)^2)``,
  ``CF = sigma + 0.3 mu`` with population standard deviations over the pixels.
* **Mean chroma**: mean over pixels of ``sqrt(a^2 + b^2)``.
* **ab error AuC** (Zhang et al. 2016): per pixel the Euclidean ab error
  ``sqrt((a_p - a_t)^2 + (b_p - b_t)^2)`` in Lab units; ``F(t)`` is the fraction of pixels
  with error ``<= t`` for ``t = 0, 1, ..., 150``; AuC is the trapezoidal area under ``F``
  divided by 150, so a perfect output scores 1 and one whose every error exceeds 150 scores 0.

Set-level metrics (one number for a whole set of images, from per-image values):

* ``delta_colorfulness = |mean CF(outputs) - mean CF(truths)|``: zero when the outputs are as
  colourful as the truths on average, whatever their hues.
* ``chroma_ratio = mean(output mean chroma) / mean(truth mean chroma)``: below 1 means
  desaturated (the gray baseline scores 0), above 1 oversaturated.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tinct.metrics.fidelity import check_rgb_pair

__all__ = [
    "AUC_THRESHOLDS",
    "lab_of",
    "ciede2000_map",
    "ciede2000_map_lab",
    "ciede2000",
    "colorfulness",
    "colorfulness_batch",
    "mean_chroma",
    "mean_chroma_lab",
    "ab_errors",
    "ab_errors_lab",
    "ab_error_curve",
    "auc_from_errors",
    "ab_auc",
    "delta_colorfulness",
    "chroma_ratio",
]

AUC_THRESHOLDS = np.arange(0, 151, dtype=np.float64)  # t = 0, 1, ..., 150 (Lab units)


def _check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    """``rgb`` itself if it is a uint8 ``(H, W, 3)`` array; ValueError naming ``what`` if not."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        desc = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"expected a uint8 RGB {what} of shape (H, W, 3), got {desc}")
    return rgb


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """float64 CIELAB ``(H, W, 3)`` of a uint8 sRGB image, by scikit-image's ``rgb2lab``."""
    from skimage.color import rgb2lab

    return rgb2lab(_check_rgb(rgb))


def ciede2000_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 difference ``(H, W)`` between two uint8 RGB images."""
    check_rgb_pair(pred, truth)
    return ciede2000_map_lab(lab_of(pred), lab_of(truth))


def ciede2000_map_lab(lab_pred: np.ndarray, lab_truth: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 ``(H, W)`` between two Lab images ``(H, W, 3)``."""
    from skimage.color import deltaE_ciede2000

    return deltaE_ciede2000(lab_pred, lab_truth, channel_axis=-1)


def ciede2000(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean CIEDE2000 over the pixels of one image pair (lower is better)."""
    return float(np.mean(ciede2000_map(pred, truth)))


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of one uint8 RGB image ``(H, W, 3)``.

    0 for any gray image; the paper calls about 15 "slightly colourful", 33 "moderately",
    59 "quite".

    >>> round(colorfulness(np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)), 3)  # rg = (255, 0), yb = (127.5, -255)
    272.619
    """
    return float(colorfulness_batch(_check_rgb(rgb)[None])[0])


def colorfulness_batch(rgb: np.ndarray) -> np.ndarray:
    """Hasler & Suesstrunk colourfulness of each image of a batch ``(N, H, W, 3)`` -> float64 ``(N,)``.

    uint8 input is in [0, 255]; float input is taken to be sRGB in [0, 1] and scaled by 255
    (the formula is defined on 0-255 values, see the module docstring).
    """
    x = np.asarray(rgb)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"colorfulness_batch: expected RGB of shape (N, H, W, 3), got {x.shape}")
    x = x.astype(np.float64) if x.dtype == np.uint8 else np.asarray(x, dtype=np.float64) * 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = (r - g).reshape(len(x), -1)
    yb = ((r + g) / 2.0 - b).reshape(len(x), -1)
    sigma = np.sqrt(np.var(rg, axis=1) + np.var(yb, axis=1))
    mu = np.sqrt(np.mean(rg, axis=1) ** 2 + np.mean(yb, axis=1) ** 2)
    return sigma + 0.3 * mu


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean CIELAB chroma ``sqrt(a^2 + b^2)`` over the pixels of one uint8 RGB image."""
    return mean_chroma_lab(lab_of(rgb))


def mean_chroma_lab(lab: np.ndarray) -> float:
    """Mean chroma ``sqrt(a^2 + b^2)`` over the pixels of a Lab image ``(..., 3)``."""
    return float(np.mean(np.hypot(lab[..., 1], lab[..., 2])))


def ab_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean ab error ``(H, W)`` in Lab units between two uint8 RGB images."""
    check_rgb_pair(pred, truth)
    return ab_errors_lab(lab_of(pred), lab_of(truth))


def ab_errors_lab(lab_pred: np.ndarray, lab_truth: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean ab error between two Lab images ``(..., 3)``."""
    return np.hypot(lab_pred[..., 1] - lab_truth[..., 1], lab_pred[..., 2] - lab_truth[..., 2])


def ab_error_curve(errors: np.ndarray, thresholds: np.ndarray = AUC_THRESHOLDS) -> np.ndarray:
    """Fraction of ``errors`` that are ``<= t`` for each threshold ``t``: ``(len(thresholds),)``."""
    e = np.sort(np.asarray(errors, dtype=np.float64).ravel())
    if e.size == 0:
        raise ValueError("ab_error_curve: no errors given")
    return np.searchsorted(e, thresholds, side="right") / e.size


def auc_from_errors(errors: np.ndarray) -> float:
    """Area under :func:`ab_error_curve` over t in [0, 150] (trapezoids), divided by 150."""
    curve = ab_error_curve(errors)
    span = AUC_THRESHOLDS[-1] - AUC_THRESHOLDS[0]
    area = np.sum((curve[1:] + curve[:-1]) / 2.0 * np.diff(AUC_THRESHOLDS))
    return float(area / span)


def ab_auc(pred: np.ndarray, truth: np.ndarray) -> float:
    """Zhang et al. (2016) AuC of the cumulative ab-error curve of one image pair, in [0, 1]."""
    return auc_from_errors(ab_errors(pred, truth))


def _mean_of(values: Sequence[float], what: str) -> float:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError(f"{what}: no images")
    return float(np.mean(v))


def delta_colorfulness(output_colorfulness: Sequence[float], truth_colorfulness: Sequence[float]) -> float:
    """Set-level ``|mean CF(outputs) - mean CF(truths)|`` from per-image colourfulness values."""
    return abs(_mean_of(output_colorfulness, "delta_colorfulness") - _mean_of(truth_colorfulness, "delta_colorfulness"))


def chroma_ratio(output_mean_chroma: Sequence[float], truth_mean_chroma: Sequence[float]) -> float:
    """Set-level ``mean(output chroma) / mean(truth chroma)`` from per-image mean chromas.

    ``nan`` when the truths have no chroma at all (a ratio to zero means nothing).
    """
    denominator = _mean_of(truth_mean_chroma, "chroma_ratio")
    numerator = _mean_of(output_mean_chroma, "chroma_ratio")
    if denominator == 0:
        return float("nan")
    return numerator / denominator
