"""Turning one photo into training tiles, the 8-bit Lab encoding, and the seed-002 statistics.

Every photo becomes one or more square *tiles* of side T (``DataConfig.tile_side``); training
items are S x S crops of a tile (random for training, central for evaluation). The tiles are
what the cache stores, and the uncached path computes exactly the same tiles on the fly, so
the two paths differ only by the 8-bit quantisation below.

Tiles of one photo (``make_tiles``):
    tile 0      the whole view: short side resized to T, centre crop T x T.
    tiles 1..   only for *large* photos (short side >= 2T) when crops > 1: the photo with its
                short side resized to 2T, cropped at T x T positions drawn from a generator
                seeded by the photo's key and the tile number (so they never change between
                runs or machines). Objects in a 1024 px scene stay a sensible size this way.

8-bit Lab encoding (``encode_lab8`` / ``decode_lab8``), OpenCV's convention for 8-bit images:
    stored L8 = round(L * 255 / 100),   a8 = round(a) + 128,   b8 = round(b) + 128   (clipped to 0..255)
    decoded L = L8 * 100 / 255,          a = a8 - 128,          b = b8 - 128
    worst-case error: |dL| <= 100 / 255 / 2 = 0.196, |da|, |db| <= 0.5 (below one JND, about 1-2.3
    Delta E). sRGB colours have |a|, |b| < 128, so the clip never bites. Decoding is one affine
    step per channel, cheap enough to run per item in the data loader.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from tinct.color import lab_to_rgb, rgb_to_lab
from tinct.metrics.chromatic import colorfulness_batch

__all__ = [
    "L8_SCALE",
    "AB8_OFFSET",
    "encode_lab8",
    "decode_lab8",
    "tile_stats",
    "tile_count",
    "is_large",
    "make_tiles",
    "resize_short_side",
    "STAT_NAMES",
]

L8_SCALE = 255.0 / 100.0  # stored L8 per unit of L
AB8_OFFSET = 128.0  # stored a8 = a + 128
STAT_NAMES = ("mean_l", "colorfulness", "mean_chroma")


def encode_lab8(lab: np.ndarray) -> np.ndarray:
    """Lab ``(..., 3)`` in Lab units -> uint8 ``(..., 3)`` in OpenCV's 8-bit Lab encoding."""
    lab = np.asarray(lab, dtype=np.float32)
    out = np.empty(lab.shape, dtype=np.float32)
    out[..., 0] = lab[..., 0] * L8_SCALE
    out[..., 1:] = lab[..., 1:] + AB8_OFFSET
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def decode_lab8(lab8: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    """uint8 8-bit Lab (channels on ``channel_axis``) -> float32 Lab in Lab units."""
    x = np.moveaxis(np.asarray(lab8), channel_axis, -1).astype(np.float32)
    x[..., 0] *= 1.0 / L8_SCALE
    x[..., 1:] -= AB8_OFFSET
    return np.moveaxis(x, -1, channel_axis)


def tile_stats(lab: np.ndarray, rgb: np.ndarray | None = None) -> np.ndarray:
    """Per-tile (mean L, colourfulness, mean chroma) of a batch of tiles -> float64 ``(N, 3)``.

    Colourfulness is Hasler & Suesstrunk's (:func:`tinct.metrics.chromatic.colorfulness_batch`).

    Args:
        lab: float Lab ``(N, T, T, 3)``.
        rgb: the tiles' sRGB (uint8 ``(N, T, T, 3)``) if known; otherwise recovered from Lab
            (for the LAB-array source, whose photos exist only as Lab).
    """
    if rgb is None:
        rgb = lab_to_rgb(lab)
    n = len(lab)
    mean_l = lab[..., 0].reshape(n, -1).mean(axis=1, dtype=np.float64)
    mean_chroma = np.hypot(lab[..., 1], lab[..., 2]).reshape(n, -1).mean(axis=1, dtype=np.float64)
    return np.stack([mean_l, colorfulness_batch(rgb), mean_chroma], axis=1)


def is_large(height: int, width: int, side: int, crops: int) -> bool:
    """Whether a photo gets extra crops: asked for, and big enough to crop at twice the scale."""
    return crops > 1 and min(height, width) >= 2 * side


def tile_count(height: int, width: int, side: int, crops: int) -> int:
    """How many tiles ``make_tiles`` cuts from a ``height x width`` photo."""
    return crops if is_large(height, width, side, crops) else 1


def resize_short_side(pixels: np.ndarray, short: int) -> np.ndarray:
    """Resize ``(H, W, C)`` uint8 so its shorter side is ``short`` (bicubic, antialiased)."""
    h, w = pixels.shape[:2]
    if min(h, w) == short:
        return pixels
    scale = short / min(h, w)
    new_w = short if w <= h else max(short, round(w * scale))
    new_h = short if h < w else max(short, round(h * scale))
    image = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize((new_w, new_h), Image.Resampling.BICUBIC))


def _centre_crop(pixels: np.ndarray, side: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return pixels[top : top + side, left : left + side]


def _crop_origin(key: str, index: int, height: int, width: int, side: int) -> tuple[int, int]:
    digest = hashlib.sha256(f"{key}#tile{index}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))


def make_tiles(
    pixels: np.ndarray, side: int, crops: int, key: str, which: list[int] | None = None
) -> list[np.ndarray]:
    """Cut a photo into its tiles (see the module docstring).

    Args:
        pixels: uint8 ``(H, W, 3)``, sRGB or 8-bit Lab (resampling treats channels alike).
        side: tile side T.
        crops: tiles wanted from a large photo (``crops_per_large_image``).
        key: the photo's stable name; seeds the positions of the extra crops.
        which: tile numbers to return (default: all ``tile_count`` of them).
    Returns:
        list of uint8 ``(T, T, 3)`` arrays.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels of shape (H, W, 3), got {pixels.dtype} {pixels.shape}")
    h, w = pixels.shape[:2]
    count = tile_count(h, w, side, crops)
    which = list(range(count)) if which is None else list(which)
    if any(not 0 <= k < count for k in which):
        raise IndexError(f"{key}: tiles {which} requested, photo has {count}")
    tiles: list[np.ndarray] = []
    zoomed = None
    for k in which:
        if k == 0:
            tiles.append(np.ascontiguousarray(_centre_crop(resize_short_side(pixels, side), side)))
            continue
        if zoomed is None:
            zoomed = resize_short_side(pixels, 2 * side)
        top, left = _crop_origin(key, k, zoomed.shape[0], zoomed.shape[1], side)
        tiles.append(np.ascontiguousarray(zoomed[top : top + side, left : left + side]))
    return tiles


def rgb_tiles_to_lab(tiles: np.ndarray) -> np.ndarray:
    """uint8 sRGB tiles ``(..., T, T, 3)`` -> float32 Lab of the same shape (one batched call)."""
    return rgb_to_lab(tiles).astype(np.float32, copy=False)
