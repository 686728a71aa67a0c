"""Metrics for colorization, on uint8 sRGB images ``(H, W, 3)``: prediction first, truth second.

Fidelity (:mod:`tinct.metrics.fidelity`): MSE, RMSE, PSNR, SNR (all channels and per
channel), SSIM. Colour (:mod:`tinct.metrics.chromatic`): mean CIEDE2000, colourfulness,
mean chroma, the ab-error AuC, and the set-level delta-colourfulness and chroma ratio.
Optional learned metrics that need local weight files: :mod:`tinct.metrics.fid` and
:mod:`tinct.metrics.lpips`. ``docs/evaluation.md`` defines each one.

A gray output scores well on PSNR and SSIM: always read them beside the colour metrics
and beside the gray baseline (``tinct evaluate`` prints both).

>>> import numpy as np
>>> from tinct import metrics
>>> gray = np.full((8, 8, 3), 128, np.uint8)
>>> metrics.colorfulness(gray)
0.0
"""

from tinct.metrics.chromatic import (
    AUC_THRESHOLDS,
    ab_auc,
    ab_error_curve,
    ab_errors,
    auc_from_errors,
    chroma_ratio,
    ciede2000,
    ciede2000_map,
    colorfulness,
    delta_colorfulness,
    lab_of,
    mean_chroma,
)
from tinct.metrics.fidelity import (
    CHANNELS,
    DATA_RANGE,
    SSIM_SETTINGS,
    channel_mse,
    channel_psnr,
    channel_rmse,
    channel_snr,
    mse,
    mse_torch,
    psnr,
    psnr_torch,
    rmse,
    snr,
    ssim,
)

__all__ = [
    "AUC_THRESHOLDS",
    "CHANNELS",
    "DATA_RANGE",
    "SSIM_SETTINGS",
    "ab_auc",
    "ab_error_curve",
    "ab_errors",
    "auc_from_errors",
    "channel_mse",
    "channel_psnr",
    "channel_rmse",
    "channel_snr",
    "chroma_ratio",
    "ciede2000",
    "ciede2000_map",
    "colorfulness",
    "delta_colorfulness",
    "lab_of",
    "mean_chroma",
    "mse",
    "mse_torch",
    "psnr",
    "psnr_torch",
    "rmse",
    "snr",
    "ssim",
]
