"""Colour science: sRGB <-> CIELAB (D65, 2 degree observer), lightness, and Lab scaling.

Every conversion is written once, for torch tensors (differentiable, batched), and the
NumPy entry points call it without copying. The formulas and constants are those of
scikit-image's ``rgb2lab`` / ``lab2rgb`` (sRGB primaries, D65 white), and the tests check
agreement with scikit-image to 1e-4.

Units used everywhere in tinct ("Lab units"):
    L in [0, 100], a and b roughly in [-110, 110]; RGB in [0, 1] (float) or [0, 255] (uint8).

Models see normalised values; the *only* place scaling constants live is :data:`LAB`.

>>> import numpy as np
>>> lab = rgb_to_lab(np.array([[[1.0, 1.0, 1.0]]]))
>>> round(float(lab[0, 0, 0]), 3)
100.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "LAB",
    "LabScale",
    "rgb_to_lab",
    "lab_to_rgb",
    "rgb_to_lab_torch",
    "lab_to_rgb_torch",
    "gray_to_lightness",
    "lightness_to_gray",
    "cielab_lightness",
    "rec601_luma",
    "seed_luma",
    "chroma",
    "fit_chroma_to_gamut",
]


@dataclass(frozen=True)
class LabScale:
    """Scaling constants between Lab units and network units.

    ``normalize_l`` maps L in [0, 100] to [-1, 1]; ``normalize_ab`` maps a, b to about
    [-1, 1] (the sRGB gamut spans |a|, |b| < 110 at D65).
    """

    l_cent: float = 50.0
    l_norm: float = 50.0
    ab_norm: float = 110.0

    def normalize_l(self, l):
        return (l - self.l_cent) / self.l_norm

    def unnormalize_l(self, l):
        return l * self.l_norm + self.l_cent

    def normalize_ab(self, ab):
        return ab / self.ab_norm

    def unnormalize_ab(self, ab):
        return ab * self.ab_norm


LAB = LabScale()

# sRGB primaries -> CIE XYZ (D65), as in scikit-image.
_XYZ_FROM_RGB = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPSILON = 0.008856  # (6/29)^3, CIE threshold
_KAPPA_SLOPE = 7.787  # linear-segment slope of f(t)

# Weights of the three grayscale conventions the project uses.
REC601_WEIGHTS = (0.299, 0.587, 0.114)
SEED_WEIGHTS = (0.21, 0.72, 0.07)  # seed 003's "0.21R + 0.72G + 0.07B"


def _srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c > 0.04045, ((c.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, c / 12.92)


def _linear_to_srgb(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c > 0.0031308, 1.055 * c.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * c)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPSILON, t.clamp_min(_EPSILON) ** (1 / 3), _KAPPA_SLOPE * t + 16 / 116)


def _lab_f_inv(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0.2068966, t.clamp_min(0.2068966) ** 3, (t - 16 / 116) / _KAPPA_SLOPE)


def _matrix(m: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return m.to(dtype=like.dtype, device=like.device)


def _check_channels(x: torch.Tensor, dim: int, what: str) -> None:
    if x.ndim < 1 or x.shape[dim] != 3:
        raise ValueError(f"{what}: expected 3 channels on dim {dim}, got shape {tuple(x.shape)}")


def rgb_to_lab_torch(rgb: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """sRGB in [0, 1] -> CIELAB (D65), differentiable.

    Args:
        rgb: tensor of shape ``(*, 3, H, W)`` (channels on ``dim``), values in [0, 1].
        dim: channel dimension; -3 for NCHW tensors, -1 for HWC arrays.
    Returns:
        Lab tensor of the same shape: L in [0, 100], a/b in about [-110, 110].
    """
    _check_channels(rgb, dim, "rgb_to_lab")
    if not rgb.is_floating_point():
        raise TypeError(f"rgb_to_lab: expected a floating tensor in [0, 1], got {rgb.dtype}")
    lin = _srgb_to_linear(rgb).movedim(dim, -1)
    xyz = lin @ _matrix(_XYZ_FROM_RGB, lin).T
    xyz = xyz / torch.tensor(_WHITE_D65, dtype=xyz.dtype, device=xyz.device)
    fx, fy, fz = _lab_f(xyz).unbind(-1)
    lab = torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-1)
    return lab.movedim(-1, dim)


def lab_to_rgb_torch(lab: torch.Tensor, dim: int = -3, clamp: bool = True) -> torch.Tensor:
    """CIELAB (D65) -> sRGB, differentiable.

    Args:
        lab: tensor ``(*, 3, H, W)`` (channels on ``dim``) in Lab units.
        dim: channel dimension.
        clamp: clip the result into the sRGB gamut [0, 1] (as scikit-image does).
    Returns:
        sRGB tensor of the same shape, in [0, 1] when ``clamp``.
    """
    _check_channels(lab, dim, "lab_to_rgb")
    l, a, b = lab.movedim(dim, -1).unbind(-1)
    fy = (l + 16) / 116
    fx = fy + a / 500
    fz = (fy - b / 200).clamp_min(0)
    xyz = _lab_f_inv(torch.stack((fx, fy, fz), dim=-1))
    xyz = xyz * torch.tensor(_WHITE_D65, dtype=xyz.dtype, device=xyz.device)
    lin = xyz @ _matrix(_RGB_FROM_XYZ, xyz).T
    rgb = _linear_to_srgb(lin)
    if clamp:
        rgb = rgb.clamp(0.0, 1.0)
    return rgb.movedim(-1, dim)


def fit_chroma_to_gamut(lab: torch.Tensor, dim: int = -3, steps: int = 8) -> torch.Tensor:
    """Scale down the chroma of out-of-gamut colours until they fit in sRGB, keeping L and hue.

    Clipping RGB channels (what ``lab_to_rgb`` does) changes a colour's lightness; this does
    not, so a colorized photo keeps its original lightness. A bisection of ``steps`` rounds
    on the chroma scale of the offending pixels only finds the largest in-gamut scale to
    within ``2**-steps``.

    Args:
        lab: ``(*, 3, H, W)`` (channels on ``dim``) in Lab units.
    Returns:
        Lab of the same shape whose every colour lies in the sRGB gamut (up to the bisection step).
    """
    _check_channels(lab, dim, "fit_chroma_to_gamut")
    rgb = lab_to_rgb_torch(lab, dim=dim, clamp=False)
    outside = ((rgb < 0) | (rgb > 1)).any(dim=dim)
    if not bool(outside.any()):
        return lab
    channels_last = lab.movedim(dim, -1)
    chosen = channels_last[outside]  # (M, 3)
    low = torch.zeros(len(chosen), dtype=lab.dtype, device=lab.device)
    high = torch.ones_like(low)
    for _ in range(steps):
        middle = (low + high) / 2
        candidate = torch.cat([chosen[:, :1], chosen[:, 1:] * middle[:, None]], dim=1)
        candidate_rgb = lab_to_rgb_torch(candidate, dim=-1, clamp=False)
        inside = ((candidate_rgb >= 0) & (candidate_rgb <= 1)).all(dim=-1)
        low = torch.where(inside, middle, low)
        high = torch.where(inside, high, middle)
    fitted = channels_last.clone()
    fitted[outside] = torch.cat([chosen[:, :1], chosen[:, 1:] * low[:, None]], dim=1)
    return fitted.movedim(-1, dim)


def _as_float_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim < 1 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB array of shape (..., 3), got {rgb.shape}")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) / 65535.0
    if not np.issubdtype(rgb.dtype, np.floating):
        raise TypeError(f"expected uint8, uint16 or float RGB, got {rgb.dtype}")
    return rgb


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB array ``(..., 3)`` (uint8, uint16, or float in [0, 1]) -> Lab ``(..., 3)``.

    Floating inputs keep their precision (float32 stays float32); integer inputs give float32.
    """
    x = _as_float_rgb(rgb)
    return rgb_to_lab_torch(torch.from_numpy(np.ascontiguousarray(x)), dim=-1).numpy()


def lab_to_rgb(lab: np.ndarray, clamp: bool = True) -> np.ndarray:
    """Lab array ``(..., 3)`` -> sRGB float array ``(..., 3)`` in [0, 1] (clipped to the gamut)."""
    lab = np.asarray(lab)
    if lab.ndim < 1 or lab.shape[-1] != 3:
        raise ValueError(f"expected a Lab array of shape (..., 3), got {lab.shape}")
    if not np.issubdtype(lab.dtype, np.floating):
        lab = lab.astype(np.float32)
    return lab_to_rgb_torch(torch.from_numpy(np.ascontiguousarray(lab)), dim=-1, clamp=clamp).numpy()


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] -> uint8 with rounding (not truncation)."""
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Lightness
# ---------------------------------------------------------------------------------------------


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """Gray sRGB values -> CIELAB L of the neutral colour (g, g, g).

    Args:
        gray: ``(H, W)`` or any shape; uint8 in [0, 255], uint16 in [0, 65535] or float in [0, 1].
    Returns:
        float32 L in [0, 100], same shape.
    """
    g = np.asarray(gray)
    if g.dtype == np.uint8:
        # 256-entry lookup table: exact and fast for full-resolution photos.
        return _LIGHTNESS_LUT_U8[g]
    if g.dtype == np.uint16:
        g = g.astype(np.float32) / 65535.0
    elif not np.issubdtype(g.dtype, np.floating):
        raise TypeError(f"gray_to_lightness: expected uint8, uint16 or float, got {g.dtype}")
    y = _srgb_to_linear(torch.from_numpy(np.ascontiguousarray(g, dtype=np.float32)))
    return (116 * _lab_f(y) - 16).numpy()


def lightness_to_gray(l: np.ndarray) -> np.ndarray:
    """CIELAB L in [0, 100] -> gray sRGB value in [0, 1] of the neutral colour with that L."""
    fy = (torch.from_numpy(np.ascontiguousarray(l, dtype=np.float32)) + 16) / 116
    return _linear_to_srgb(_lab_f_inv(fy)).clamp(0, 1).numpy()


def cielab_lightness(rgb: np.ndarray) -> np.ndarray:
    """CIELAB L ``(...)`` in [0, 100] of an sRGB array ``(..., 3)``."""
    x = torch.from_numpy(np.ascontiguousarray(_as_float_rgb(rgb)))
    lin = _srgb_to_linear(x)
    y = lin @ _matrix(_XYZ_FROM_RGB[1], lin)
    return (116 * _lab_f(y) - 16).numpy()


def _weighted_luma(rgb: np.ndarray, weights: tuple[float, float, float]) -> np.ndarray:
    x = _as_float_rgb(rgb)
    return x @ np.asarray(weights, dtype=x.dtype)


def rec601_luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma ``0.299 R + 0.587 G + 0.114 B`` of gamma-encoded RGB, in [0, 1]."""
    return _weighted_luma(rgb, REC601_WEIGHTS)


def seed_luma(rgb: np.ndarray) -> np.ndarray:
    """The seeds' grayscale ``0.21 R + 0.72 G + 0.07 B`` of gamma-encoded RGB, in [0, 1]."""
    return _weighted_luma(rgb, SEED_WEIGHTS)


def chroma(lab: np.ndarray) -> np.ndarray:
    """CIELAB chroma ``sqrt(a^2 + b^2)`` of a Lab array ``(..., 3)``."""
    lab = np.asarray(lab)
    return np.hypot(lab[..., 1], lab[..., 2])


_LIGHTNESS_LUT_U8 = (
    116 * _lab_f(_srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0)) - 16
).to(torch.float32).numpy()
