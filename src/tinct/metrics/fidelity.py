"""Fidelity metrics: how close an output is to the truth, pixel by pixel.

All NumPy functions take two uint8 sRGB images ``(H, W, 3)`` of the same shape -- the
prediction first, the truth second -- and compute in float64 on values in [0, 255].

Definitions (seed 004's, with its data range of 255):

* ``MSE = mean((truth - pred)^2)`` over every pixel and channel; ``channel_mse`` takes the
  mean over the pixels of each channel separately.
* ``RMSE = sqrt(MSE)``, in 8-bit intensity units.
* ``PSNR = 10 log10(255^2 / MSE)`` in dB (``inf`` when the images are identical).
* ``SNR = 10 log10(sum(truth^2) / sum((truth - pred)^2))`` in dB: the truth is the signal
  and the difference is the noise (``inf`` when identical, ``-inf`` for a black truth with
  a non-black prediction).
* SSIM: scikit-image's ``structural_similarity`` with ``channel_axis=-1``,
  ``data_range=255`` and its defaults (7x7 uniform window, K1 = 0.01, K2 = 0.03, sample
  covariance), i.e. the mean SSIM of the three channels. Images must be at least 7x7.

A gray output scores well on all of these; read them beside the colour metrics of
:mod:`tinct.metrics.chromatic` and the gray baseline.

>>> import numpy as np
>>> truth = np.zeros((2, 2, 3), np.uint8); pred = truth.copy(); pred[0, 0, 0] = 255
>>> round(psnr(pred, truth), 4)   # MSE = 255^2 / 12
10.7918
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "DATA_RANGE",
    "CHANNELS",
    "check_rgb_pair",
    "mse",
    "rmse",
    "psnr",
    "snr",
    "channel_mse",
    "channel_rmse",
    "channel_psnr",
    "channel_snr",
    "ssim",
    "SSIM_SETTINGS",
    "mse_torch",
    "psnr_torch",
]

DATA_RANGE = 255.0
CHANNELS = ("r", "g", "b")
# Stated once so the report and the docs can print exactly what was used.
SSIM_SETTINGS = {"channel_axis": -1, "data_range": 255, "win_size": 7, "gaussian_weights": False}


def check_rgb_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate two uint8 RGB images ``(H, W, 3)`` of one shape; return them as float64."""
    for what, image in (("prediction", pred), ("truth", truth)):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"{what}: expected a uint8 RGB image of shape (H, W, 3), got {desc}")
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    return pred.astype(np.float64), truth.astype(np.float64)


def _ratio_db(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return float("inf") if numerator > 0 else float("nan")
    if numerator == 0:
        return float("-inf")
    return float(10.0 * np.log10(numerator / denominator))


def mse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared error over all pixels and channels (8-bit units squared)."""
    p, t = check_rgb_pair(pred, truth)
    return float(np.mean((t - p) ** 2))


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error over all pixels and channels (8-bit units)."""
    return float(np.sqrt(mse(pred, truth)))


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(255^2 / MSE)`` over all channels."""
    return _ratio_db(DATA_RANGE**2, mse(pred, truth))


def snr(pred: np.ndarray, truth: np.ndarray) -> float:
    """Signal-to-noise ratio in dB, ``10 log10(sum truth^2 / sum (truth - pred)^2)``."""
    p, t = check_rgb_pair(pred, truth)
    return _ratio_db(float(np.sum(t**2)), float(np.sum((t - p) ** 2)))


def channel_mse(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """MSE of each channel: float64 array ``(3,)`` for R, G, B."""
    p, t = check_rgb_pair(pred, truth)
    return np.mean((t - p) ** 2, axis=(0, 1))


def channel_rmse(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """RMSE of each channel: ``(3,)``."""
    return np.sqrt(channel_mse(pred, truth))


def channel_psnr(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """PSNR of each channel in dB: ``(3,)`` (``inf`` for an identical channel)."""
    return np.array([_ratio_db(DATA_RANGE**2, float(m)) for m in channel_mse(pred, truth)])


def channel_snr(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """SNR of each channel in dB: ``(3,)``."""
    p, t = check_rgb_pair(pred, truth)
    signal = np.sum(t**2, axis=(0, 1))
    noise = np.sum((t - p) ** 2, axis=(0, 1))
    return np.array([_ratio_db(float(s), float(n)) for s, n in zip(signal, noise)])


def ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM of the three channels (scikit-image, settings in :data:`SSIM_SETTINGS`)."""
    from skimage.metrics import structural_similarity

    check_rgb_pair(pred, truth)
    height, width = truth.shape[:2]
    if min(height, width) < SSIM_SETTINGS["win_size"]:
        raise ValueError(f"SSIM needs images of at least 7x7 pixels, got {width}x{height}")
    return float(structural_similarity(pred, truth, **SSIM_SETTINGS))


# ---------------------------------------------------------------------------------------------
# torch versions, for training and validation loops
# ---------------------------------------------------------------------------------------------


def mse_torch(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image MSE of batches ``(B, C, H, W)``: tensor ``(B,)`` (differentiable)."""
    if pred.shape != truth.shape or pred.ndim < 2:
        raise ValueError(f"expected two batches of one shape (B, ...), got {tuple(pred.shape)} and {tuple(truth.shape)}")
    return ((pred - truth) ** 2).flatten(1).mean(dim=1)


def psnr_torch(pred: torch.Tensor, truth: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB of batches ``(B, C, H, W)``: ``10 log10(data_range^2 / MSE)``, ``(B,)``.

    ``data_range`` is 1.0 for RGB in [0, 1] and 255.0 for 8-bit values. Identical images
    give ``inf``; average the result yourself (mean over images, as the report does).
    """
    return 10.0 * torch.log10(data_range**2 / mse_torch(pred, truth))
