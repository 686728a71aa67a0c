"""Colour science: sRGB <-> CIELAB (D65, 2 degree observer), lightness, and Lab scaling.

Every conversion is written once, for torch tensors (differentiable, batched), and the
NumPy entry points call it without copying. The formulas and constants are those of
scikit-image's ``rgb2lab`` / ``lab2rgb`` (sRGB primaries, D65 white), and the tests check
agreement with scikit-image to 1e-4.

Colorizing a photo uses only the NumPy half of this module (:func:`gray_to_lightness`,
:func:`cielab_lightness`, :func:`lab_to_rgb_uint8`): torch is imported by the functions that
take or make tensors, not by importing the module, so the inference path never loads it.

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
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
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
    "lightness_to_gray_torch",
    "cielab_lightness",
    "rec601_luma",
    "seed_luma",
    "chroma",
    "fit_chroma_to_gamut",
    "lab_to_rgb_uint8",
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
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_RGB_FROM_XYZ = tuple(tuple(float(v) for v in row) for row in np.linalg.inv(np.array(_XYZ_FROM_RGB)))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPSILON = 0.008856  # (6/29)^3, CIE threshold
_KAPPA_SLOPE = 7.787  # linear-segment slope of f(t)
_F_INV_THRESHOLD = 0.2068966  # f(_EPSILON) = 6/29

# Weights of the three grayscale conventions the project uses.
REC601_WEIGHTS = (0.299, 0.587, 0.114)
SEED_WEIGHTS = (0.21, 0.72, 0.07)  # seed 003's "0.21R + 0.72G + 0.07B"


def _srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.where(c > 0.04045, ((c.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, c / 12.92)


def _linear_to_srgb(c: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.where(c > 0.0031308, 1.055 * c.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * c)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.where(t > _EPSILON, t.clamp_min(_EPSILON) ** (1 / 3), _KAPPA_SLOPE * t + 16 / 116)


def _lab_f_inv(t: torch.Tensor) -> torch.Tensor:
    import torch

    cube = t.clamp_min(_F_INV_THRESHOLD)
    return torch.where(t > _F_INV_THRESHOLD, cube * cube * cube, (t - 16 / 116) / _KAPPA_SLOPE)


# The same four curves for NumPy arrays (the inference path). On float64 they give the
# torch functions' float64 results bit for bit (the tables below are built with them).
def _srgb_to_linear_np(c: np.ndarray) -> np.ndarray:
    return np.where(c > 0.04045, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4, c / 12.92)


def _linear_to_srgb_np(c: np.ndarray) -> np.ndarray:
    return np.where(c > 0.0031308, 1.055 * np.maximum(c, 0.0031308) ** (1 / 2.4) - 0.055, 12.92 * c)


def _lab_f_np(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPSILON, np.maximum(t, _EPSILON) ** (1 / 3), _KAPPA_SLOPE * t + 16 / 116)


def _mix(matrix, c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> tuple[torch.Tensor, ...]:
    # Explicit 3x3 mixing: far faster than a matmul whose inner dimension is 3.
    return tuple(row[0] * c0 + row[1] * c1 + row[2] * c2 for row in matrix)


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
    import torch

    _check_channels(rgb, dim, "rgb_to_lab")
    if not rgb.is_floating_point():
        raise TypeError(f"rgb_to_lab: expected a floating tensor in [0, 1], got {rgb.dtype}")
    x, y, z = _mix(_XYZ_FROM_RGB, *(_srgb_to_linear(c) for c in rgb.unbind(dim)))
    fx, fy, fz = (_lab_f(v / white) for v, white in zip((x, y, z), _WHITE_D65))
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=dim)


def lab_to_rgb_torch(lab: torch.Tensor, dim: int = -3, clamp: bool = True) -> torch.Tensor:
    """CIELAB (D65) -> sRGB, differentiable.

    Args:
        lab: tensor ``(*, 3, H, W)`` (channels on ``dim``) in Lab units.
        dim: channel dimension.
        clamp: clip the result into the sRGB gamut [0, 1] (as scikit-image does).
    Returns:
        sRGB tensor of the same shape, in [0, 1] when ``clamp``.
    """
    import torch

    _check_channels(lab, dim, "lab_to_rgb")
    l, a, b = lab.unbind(dim)
    fy = (l + 16) / 116
    fx = fy + a / 500
    fz = (fy - b / 200).clamp_min(0)
    xyz = (_lab_f_inv(f) * white for f, white in zip((fx, fy, fz), _WHITE_D65))
    rgb = torch.stack([_linear_to_srgb(c) for c in _mix(_RGB_FROM_XYZ, *xyz)], dim=dim)
    return rgb.clamp(0.0, 1.0) if clamp else rgb


_GAMUT_L_STEPS = 200  # table rows: L = 0, 0.5, ..., 100
_GAMUT_HUE_STEPS = 360  # table columns: hue in one-degree steps


def _linear_rgb_of_lab(l: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Linear-light (not yet gamma-encoded) RGB of Lab colours, unclipped.

    NumPy arrays of any float type; float32 stays float32 (the constants are Python floats).
    """
    fy = (l + 16) / 116
    xyz = []
    for f, white in zip((fy + a / 500, fy, np.maximum(fy - b / 200, 0)), _WHITE_D65):
        xyz.append(white * np.where(f > _F_INV_THRESHOLD, f**3, (f - 16 / 116) / _KAPPA_SLOPE))
    return [row[0] * xyz[0] + row[1] * xyz[1] + row[2] * xyz[2] for row in _RGB_FROM_XYZ]


@lru_cache(maxsize=1)
def _max_chroma_table() -> np.ndarray:
    """Largest in-gamut CIELAB chroma for each (L, hue) cell, float32 ``(201, 360)``.

    Found by bisection on a fine grid, then eroded (minimum over neighbouring cells) so
    that a nearest-cell lookup never overshoots the gamut between grid points. The sRGB
    encoding is monotonic, so the gamut test is done on linear light.
    """
    l = np.linspace(0, 100, _GAMUT_L_STEPS + 1)[:, None]
    hue = np.arange(_GAMUT_HUE_STEPS) * (2 * np.pi / _GAMUT_HUE_STEPS)
    cos, sin = np.cos(hue)[None], np.sin(hue)[None]
    low, high = np.zeros((len(l), len(hue))), np.full((len(l), len(hue)), 200.0)
    for _ in range(16):  # 200 / 2**16 = 0.003: far below what a neighbouring cell differs by
        middle = (low + high) / 2
        inside = np.ones_like(middle, dtype=bool)
        for channel in _linear_rgb_of_lab(l, middle * cos, middle * sin):
            inside &= (channel >= 0) & (channel <= 1)
        low, high = np.where(inside, middle, low), np.where(inside, high, middle)
    padded = np.concatenate([low[:, -1:], low, low[:, :1]], axis=1)  # hue wraps around
    across_hue = np.minimum(np.minimum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    eroded = across_hue.copy()  # then across L, where the first and last rows have one neighbour
    eroded[1:] = np.minimum(eroded[1:], across_hue[:-1])
    eroded[:-1] = np.minimum(eroded[:-1], across_hue[1:])
    return eroded.astype(np.float32)


def fit_chroma_to_gamut(lab: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Scale down the chroma of out-of-gamut colours until they fit in sRGB, keeping L and hue.

    Clipping RGB channels (what ``lab_to_rgb`` does) changes a colour's lightness; this does
    not, so a colorized photo keeps its original lightness. The largest in-gamut chroma comes
    from a precomputed (L, hue) table, so a 12-megapixel photo costs a few vector operations.

    Args:
        lab: ``(*, 3, H, W)`` (channels on ``dim``) in Lab units.
    Returns:
        Lab of the same shape whose colours lie in the sRGB gamut (to within the table's
        resolution: RGB overshoots of a few thousandths, removed by the final clip).
    """
    import torch

    _check_channels(lab, dim, "fit_chroma_to_gamut")
    table = torch.from_numpy(_max_chroma_table()).to(lab.device)
    l, a, b = lab.unbind(dim)
    current = torch.hypot(a, b)
    row = (l.clamp(0, 100) * (_GAMUT_L_STEPS / 100)).round().long()
    column = (torch.atan2(b, a) * (_GAMUT_HUE_STEPS / (2 * torch.pi))).round().long() % _GAMUT_HUE_STEPS
    limit = table[row, column].to(lab.dtype)
    scale = torch.where(current > limit, limit / current.clamp_min(1e-6), torch.ones_like(current))
    return torch.stack((l, a * scale, b * scale), dim=dim)


_FAST_CHUNK = 1 << 16  # pixels per block: the block's temporaries stay in the CPU cache
_LINEAR_LEVELS = 65535  # linear-light quantisation of the sRGB-encoding table (step 1.5e-5)


@lru_cache(maxsize=1)
def _encode_table_u8() -> np.ndarray:
    """uint8 sRGB value of each of 65536 linear-light levels in [0, 1]."""
    linear = np.arange(_LINEAR_LEVELS + 1, dtype=np.float64) / _LINEAR_LEVELS
    return to_uint8(_linear_to_srgb_np(linear))


def _lab_block_to_rgb_uint8(l: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    f32 = np.float32
    table = _max_chroma_table()
    row = np.clip(l, 0, 100) * f32(_GAMUT_L_STEPS / 100) + f32(0.5)
    column = np.arctan2(b, a) * f32(_GAMUT_HUE_STEPS / (2 * np.pi)) + f32(_GAMUT_HUE_STEPS + 0.5)
    limit = table[row.astype(np.int32), column.astype(np.int32) % _GAMUT_HUE_STEPS]
    current = np.hypot(a, b)
    scale = np.where(current > limit, limit / np.maximum(current, f32(1e-6)), f32(1))
    encode = _encode_table_u8()
    for channel, linear in enumerate(_linear_rgb_of_lab(l, a * scale, b * scale)):
        levels = np.clip(linear * f32(_LINEAR_LEVELS) + f32(0.5), 0, _LINEAR_LEVELS).astype(np.int32)
        out[:, channel] = encode[levels]


def prepare_gamut_tables() -> None:
    """Build the tables :func:`lab_to_rgb_uint8` uses (about 0.1 s, once per process)."""
    _max_chroma_table()
    _encode_table_u8()


def lab_to_rgb_uint8(l: np.ndarray, a: np.ndarray, b: np.ndarray, threads: int = 1) -> np.ndarray:
    """Full-resolution Lab planes -> uint8 sRGB ``(H, W, 3)``, chroma fitted to the gamut.

    The fast path for composing a colorized photo at full resolution: the maths of
    :func:`fit_chroma_to_gamut`, :func:`lab_to_rgb_torch` and :func:`to_uint8`, in NumPy
    float32 over cache-sized blocks (on ``threads`` threads), with the sRGB encoding read
    from a 65536-level table. Agrees with the reference path to within 3 levels of 255
    (the difference arises only at the gamut boundary).

    Args:
        l, a, b: ``(H, W)`` planes in Lab units.
    """
    if not (l.shape == a.shape == b.shape) or l.ndim != 2:
        raise ValueError(f"expected three (H, W) planes of one shape, got {l.shape}, {a.shape}, {b.shape}")
    planes = [np.ascontiguousarray(x, dtype=np.float32).reshape(-1) for x in (l, a, b)]
    out = np.empty((planes[0].size, 3), dtype=np.uint8)
    starts = range(0, planes[0].size, _FAST_CHUNK)

    def block(start: int) -> None:
        stop = start + _FAST_CHUNK
        _lab_block_to_rgb_uint8(*(p[start:stop] for p in planes), out[start:stop])

    if threads > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(block, starts))
    else:
        for start in starts:
            block(start)
    return out.reshape(*l.shape, 3)


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
    import torch

    x = _as_float_rgb(rgb)
    return rgb_to_lab_torch(torch.from_numpy(np.ascontiguousarray(x)), dim=-1).numpy()


def lab_to_rgb(lab: np.ndarray, clamp: bool = True) -> np.ndarray:
    """Lab array ``(..., 3)`` -> sRGB float array ``(..., 3)`` in [0, 1] (clipped to the gamut)."""
    lab = np.asarray(lab)
    if lab.ndim < 1 or lab.shape[-1] != 3:
        raise ValueError(f"expected a Lab array of shape (..., 3), got {lab.shape}")
    if not np.issubdtype(lab.dtype, np.floating):
        lab = lab.astype(np.float32)
    import torch

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
    return _blockwise_lightness(np.asarray(g, dtype=np.float32), lambda block: _srgb_to_linear_np(block.astype(np.float64)))


def lightness_to_gray_torch(l: torch.Tensor) -> torch.Tensor:
    """CIELAB L in [0, 100] -> gray sRGB value in [0, 1] (differentiable; any shape)."""
    return _linear_to_srgb(_lab_f_inv((l + 16) / 116)).clamp(0, 1)


def lightness_to_gray(l: np.ndarray) -> np.ndarray:
    """CIELAB L in [0, 100] -> gray sRGB value in [0, 1] of the neutral colour with that L."""
    import torch

    fy = (torch.from_numpy(np.ascontiguousarray(l, dtype=np.float32)) + 16) / 116
    return _linear_to_srgb(_lab_f_inv(fy)).clamp(0, 1).numpy()


def cielab_lightness(rgb: np.ndarray) -> np.ndarray:
    """CIELAB L ``(...)`` in [0, 100] of an sRGB array ``(..., 3)``."""
    weights = _XYZ_FROM_RGB[1]
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8 and rgb.ndim >= 1 and rgb.shape[-1] == 3:
        # Linearise through a 256-entry table: a 12-megapixel photo in a fraction of a second.
        def luminance(block: np.ndarray) -> np.ndarray:
            lin = [_LINEAR_LUT_U8[block[:, i]] for i in range(3)]  # float32, as the weighted sum
            return weights[0] * lin[0] + weights[1] * lin[1] + weights[2] * lin[2]

        return _blockwise_lightness(rgb, luminance, channels=3)
    x = _as_float_rgb(rgb)

    def luminance(block: np.ndarray) -> np.ndarray:
        lin = _srgb_to_linear_np(block.astype(np.float64))
        return weights[0] * lin[:, 0] + weights[1] * lin[:, 1] + weights[2] * lin[:, 2]

    return _blockwise_lightness(x, luminance, channels=3, dtype=x.dtype)


_LIGHTNESS_BLOCK = 1 << 18  # pixels per block: temporaries stay small at any photo size


def _blockwise_lightness(values: np.ndarray, luminance, channels: int = 0, dtype=np.float32) -> np.ndarray:
    """CIELAB L of ``values`` (``(...)`` or ``(..., channels)``), block by block: ``luminance``
    maps a flat block (``(n,)`` or ``(n, channels)``) to relative luminance Y, and
    ``116 f(Y) - 16`` is taken in float64 and stored as ``dtype``. NumPy only: torch's float32
    path (used before) agrees to within one float32 step (<= 8e-6 in L)."""
    shape = values.shape[:-1] if channels else values.shape
    flat = values.reshape(-1, channels) if channels else values.reshape(-1)
    out = np.empty(len(flat), dtype=dtype)
    for start in range(0, len(flat), _LIGHTNESS_BLOCK):
        y = luminance(flat[start : start + _LIGHTNESS_BLOCK])
        out[start : start + _LIGHTNESS_BLOCK] = 116 * _lab_f_np(np.asarray(y, dtype=np.float64)) - 16
    return out.reshape(shape)


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


_LINEAR_LUT_U8 = _srgb_to_linear_np(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
_LIGHTNESS_LUT_U8 = (116 * _lab_f_np(_srgb_to_linear_np(np.arange(256, dtype=np.float64) / 255.0)) - 16).astype(np.float32)
