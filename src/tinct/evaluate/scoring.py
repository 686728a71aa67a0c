"""Scoring one output against its truth, and summarising a set of scores.

Every per-image metric is computed on uint8 sRGB by :mod:`tinct.metrics`; set-level
metrics come from per-image values (see :func:`set_metrics`). The definitions are in
``docs/evaluation.md`` and in :data:`METRICS`, which the reports print from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinct import metrics
from tinct.color import lab_to_rgb, to_uint8
from tinct.metrics.chromatic import ab_errors_lab, ciede2000_map_lab, mean_chroma_lab
from tinct.metrics.direction import HIGHER, LOWER, TOWARD_ONE, TOWARD_TRUTH

__all__ = [
    "Metric",
    "METRICS",
    "SET_METRICS",
    "PER_IMAGE_KEYS",
    "TruthScores",
    "gray_baseline",
    "truth_scores",
    "score_pair",
    "set_metrics",
    "target_scores",
    "TargetScorer",
    "summarize",
]


@dataclass(frozen=True)
class Metric:
    """How one metric is named, read and printed."""

    key: str
    label: str
    better: str  # a direction of tinct.metrics.direction: HIGHER, LOWER, TOWARD_ONE, TOWARD_TRUTH
    digits: int
    headline: bool  # printed in the terminal table and plotted
    definition: str


_CHANNEL_FAMILIES = (
    ("psnr", "PSNR (dB)", HIGHER),
    ("mse", "MSE", LOWER),
    ("rmse", "RMSE", LOWER),
    ("snr", "SNR (dB)", HIGHER),
)

METRICS: tuple[Metric, ...] = (
    Metric("psnr", "PSNR (dB)", HIGHER, 3, True,
           "10 log10(255^2 / MSE), MSE over all pixels and channels of the image"),
    Metric("ssim", "SSIM", HIGHER, 4, True,
           "scikit-image structural_similarity, channel_axis=-1, data_range=255, 7x7 uniform window"),
    Metric("ciede2000", "CIEDE2000", LOWER, 3, True,
           "mean over pixels of deltaE_ciede2000(rgb2lab(output), rgb2lab(truth))"),
    Metric("ab_auc", "ab AuC", HIGHER, 4, True,
           "area under the fraction of pixels with ab error <= t, t = 0..150, divided by 150"),
    Metric("colorfulness", "colourfulness", TOWARD_TRUTH, 3, True,
           "Hasler & Suesstrunk 2003: sigma_rgyb + 0.3 mu_rgyb of the output"),
    Metric("mean_chroma", "mean chroma", TOWARD_TRUTH, 3, False, "mean CIELAB chroma sqrt(a^2 + b^2) of the output"),
    Metric("mse", "MSE", LOWER, 3, True, "mean of (truth - output)^2 over all pixels and channels (8-bit units)"),
    Metric("rmse", "RMSE", LOWER, 3, True, "sqrt(MSE)"),
    Metric("snr", "SNR (dB)", HIGHER, 3, True, "10 log10(sum truth^2 / sum (truth - output)^2)"),
    *(
        Metric(f"{name}_{c}", f"{label} {c.upper()}", better, 3, False,
               f"{label.split(' ')[0]} of the {c.upper()} channel alone")
        for name, label, better in _CHANNEL_FAMILIES
        for c in metrics.CHANNELS
    ),
    Metric("lpips", "LPIPS", LOWER, 4, True, "learned perceptual distance (only with --lpips-weights)"),
)
SET_METRICS: tuple[Metric, ...] = (
    Metric("delta_colorfulness", "delta colourfulness", LOWER, 3, True,
           "|mean colourfulness of outputs - mean colourfulness of truths|"),
    Metric("chroma_ratio", "chroma ratio", TOWARD_ONE, 4, True,
           "mean output chroma / mean truth chroma (means of per-image means)"),
    Metric("fid", "FID", LOWER, 3, True,
           "Frechet distance of Inception features, outputs vs truths (only with --fid-weights)"),
)
METRIC_BY_KEY = {m.key: m for m in METRICS + SET_METRICS}
PER_IMAGE_KEYS = tuple(m.key for m in METRICS if m.key != "lpips")


@dataclass
class TruthScores:
    """What is computed once per truth image and shared by every system scored on it."""

    lab: np.ndarray  # float64 (H, W, 3)
    colorfulness: float
    mean_chroma: float


def gray_baseline(truth: np.ndarray) -> np.ndarray:
    """The no-colour baseline of a truth: its own CIELAB L with a = b = 0, as uint8 sRGB."""
    from tinct.color import cielab_lightness

    lightness = cielab_lightness(truth).astype(np.float64)
    lab = np.stack([lightness, np.zeros_like(lightness), np.zeros_like(lightness)], axis=-1)
    return to_uint8(lab_to_rgb(lab))


def truth_scores(truth: np.ndarray) -> TruthScores:
    lab = metrics.lab_of(truth)
    return TruthScores(lab=lab, colorfulness=metrics.colorfulness(truth), mean_chroma=mean_chroma_lab(lab))


def score_pair(pred: np.ndarray, truth: np.ndarray, truth_info: TruthScores | None = None) -> dict[str, float]:
    """Every per-image metric of one output against its truth (both uint8 RGB ``(H, W, 3)``).

    Returns a dict keyed by :data:`PER_IMAGE_KEYS`.
    """
    truth_info = truth_info or truth_scores(truth)
    scores = {
        "psnr": metrics.psnr(pred, truth),
        "ssim": metrics.ssim(pred, truth),
        "mse": metrics.mse(pred, truth),
        "rmse": metrics.rmse(pred, truth),
        "snr": metrics.snr(pred, truth),
    }
    for name, per_channel in (
        ("psnr", metrics.channel_psnr(pred, truth)),
        ("mse", metrics.channel_mse(pred, truth)),
        ("rmse", metrics.channel_rmse(pred, truth)),
        ("snr", metrics.channel_snr(pred, truth)),
    ):
        for channel, value in zip(metrics.CHANNELS, per_channel):
            scores[f"{name}_{channel}"] = float(value)
    lab_pred = metrics.lab_of(pred)
    scores["ciede2000"] = float(np.mean(ciede2000_map_lab(lab_pred, truth_info.lab)))
    scores["ab_auc"] = metrics.auc_from_errors(ab_errors_lab(lab_pred, truth_info.lab))
    scores["colorfulness"] = metrics.colorfulness(pred)
    scores["mean_chroma"] = mean_chroma_lab(lab_pred)
    return {key: scores[key] for key in PER_IMAGE_KEYS}


def set_metrics(rows: list[dict[str, float]], truths: list[TruthScores] | list[dict[str, float]]) -> dict[str, float]:
    """Set-level metrics of one system from its per-image rows and the truths' values."""
    def truth_value(t, key):
        return t[key] if isinstance(t, dict) else getattr(t, key)

    return {
        "delta_colorfulness": metrics.delta_colorfulness(
            [r["colorfulness"] for r in rows], [truth_value(t, "colorfulness") for t in truths]
        ),
        "chroma_ratio": metrics.chroma_ratio(
            [r["mean_chroma"] for r in rows], [truth_value(t, "mean_chroma") for t in truths]
        ),
    }


def target_scores(outputs: list[np.ndarray], truths: list[np.ndarray], truth_infos: list[TruthScores]) -> dict[str, float]:
    """The four figures the shipped model's targets name, for a set of uint8 RGB outputs:
    mean PSNR, mean CIEDE2000, chroma ratio and delta colourfulness (``delta_cf``).

    A fast subset of :func:`score_pair` + :func:`set_metrics` (no SSIM, AuC or per-channel
    figures) for searches that score many settings; ``truth_infos`` from :func:`truth_scores`.
    """
    rows = []
    for output, truth, info in zip(outputs, truths, truth_infos, strict=True):
        lab = metrics.lab_of(output)
        rows.append({
            "psnr": metrics.psnr(output, truth),
            "ciede2000": float(np.mean(ciede2000_map_lab(lab, info.lab))),
            "colorfulness": metrics.colorfulness(output),
            "mean_chroma": mean_chroma_lab(lab),
        })  # fmt: skip
    whole_set = set_metrics(rows, truth_infos)
    return {
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "ciede2000": float(np.mean([r["ciede2000"] for r in rows])),
        "chroma_ratio": float(whole_set["chroma_ratio"]),
        "delta_cf": float(whole_set["delta_colorfulness"]),
    }


class TargetScorer:
    """:func:`target_scores` of many candidate output sets against one fixed list of truths.

    The truths' CIELAB and colourfulness are computed once, at construction. ``truths`` and
    every output set are lists of uint8 RGB ``(H, W, 3)`` arrays, in the same order.
    """

    def __init__(self, truths: list[np.ndarray]):
        self.truths = list(truths)
        self.infos = [truth_scores(t) for t in self.truths]

    def __call__(self, outputs: list[np.ndarray]) -> dict[str, float]:
        return target_scores(outputs, self.truths, self.infos)

    def gray(self) -> dict[str, float]:
        """The scores of the no-colour baseline (:func:`gray_baseline` of each truth)."""
        return self([gray_baseline(t) for t in self.truths])


@dataclass
class Stats:
    mean: float
    std: float
    min: float
    max: float
    count: int = field(default=0)

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max, "count": self.count}


def summarize(values) -> Stats:
    """Mean, population std, min and max of per-image values (``inf`` and ``nan`` propagate)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return Stats(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    with np.errstate(invalid="ignore"):  # inf - inf in the std of an all-identical set
        return Stats(float(np.mean(v)), float(np.std(v)), float(np.min(v)), float(np.max(v)), int(v.size))
