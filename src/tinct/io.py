"""Reading and writing photos: every common format and mode, EXIF orientation, alpha, atomic writes.

A photo enters tinct as a :class:`Photo`: its CIELAB lightness at full resolution, its alpha
channel if it had one, and where it came from. Colour inputs are accepted: their lightness
is used and their colour is discarded.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tinct.color import cielab_lightness, gray_to_lightness

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "Photo",
    "read_photo",
    "photo_from_array",
    "read_rgb",
    "write_image",
    "list_images",
    "atomic_file",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")

# Pillow format names by suffix, for writing.
_FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_FORMATS_WITH_ALPHA = {"PNG", "WEBP", "TIFF"}

# A guard against decompression bombs that still admits large scans (about 40k x 40k).
Image.MAX_IMAGE_PIXELS = 1_600_000_000


class ImageReadError(ValueError):
    """A file could not be read as an image; the message names the file and the reason."""


@dataclass
class Photo:
    """A photo as tinct sees it.

    Attributes:
        lightness: float32 ``(H, W)`` CIELAB L in [0, 100] at full resolution.
        alpha: uint8 ``(H, W)`` alpha channel, or ``None`` when the input had none.
        source: the file it was read from, if any.
        format: Pillow format name of the source file (``"JPEG"``, ``"PNG"``, ...), if any.
    """

    lightness: np.ndarray
    alpha: np.ndarray | None = None
    source: Path | None = None
    format: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow orders it."""
        return self.lightness.shape[1], self.lightness.shape[0]


def _open_upright(path: Path) -> Image.Image:
    try:
        if path.is_dir():
            raise ImageReadError(f"{path}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file")
        image = Image.open(path)
        image.load()  # decode now so truncation is reported here
        fmt = image.format
        image = ImageOps.exif_transpose(image)
        image.format = fmt
        return image
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None


def _split_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Pillow image in any mode -> (lightness (H, W) float32, alpha (H, W) uint8 or None)."""
    mode = image.mode
    alpha = None
    if mode in ("LA", "RGBA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA") if mode not in ("LA", "La") else image.convert("LA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.uint8).copy()
        image = rgba.convert("RGB") if rgba.mode == "RGBA" else rgba.convert("L")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        return gray_to_lightness(np.clip(values / peak, 0, 1).astype(np.float32)), alpha
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        peak = 1.0 if values.max() <= 1.0 else 255.0
        return gray_to_lightness(np.clip(values / peak, 0, 1)), alpha
    if mode == "1":
        image = image.convert("L")
        mode = "L"
    if mode == "L":
        return gray_to_lightness(np.asarray(image, dtype=np.uint8)), alpha
    if mode != "RGB":
        image = image.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV ...
    rgb = np.asarray(image, dtype=np.uint8)
    return cielab_lightness(rgb), alpha


def read_photo(path: str | os.PathLike) -> Photo:
    """Read any image file as a :class:`Photo` (lightness + alpha), honouring EXIF orientation.

    Raises:
        ImageReadError: the file is missing, empty, truncated or not an image; the message
            is one line that names the file.
    """
    path = Path(path)
    image = _open_upright(path)
    try:
        lightness, alpha = _split_image(image)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot convert image mode {image.mode} ({exc})") from None
    return Photo(lightness=lightness, alpha=alpha, source=path, format=image.format)


def photo_from_array(image) -> Photo:
    """A PIL image or a NumPy array -> :class:`Photo`.

    Arrays: ``(H, W)`` gray, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA;
    uint8 in [0, 255], uint16 in [0, 65535], or float in [0, 1].
    """
    if isinstance(image, Image.Image):
        lightness, alpha = _split_image(image)
        return Photo(lightness=lightness, alpha=alpha)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if min(a.shape[:2]) < 1:
        raise ValueError(f"expected a non-empty image, got shape {a.shape}")
    if np.issubdtype(a.dtype, np.floating) and (np.nanmin(a) < 0 or np.nanmax(a) > 1):
        raise ValueError(
            f"float images must hold values in [0, 1], got range [{np.nanmin(a):.3g}, {np.nanmax(a):.3g}]"
        )
    alpha = None
    if a.ndim == 3 and a.shape[2] == 4:
        alpha_channel = a[..., 3]
        if a.dtype == np.uint8:
            alpha = alpha_channel.copy()
        elif a.dtype == np.uint16:
            alpha = (alpha_channel.astype(np.uint32) * 255 // 65535).astype(np.uint8)
        else:
            alpha = (np.clip(alpha_channel, 0, 1) * 255 + 0.5).astype(np.uint8)
        a = a[..., :3]
    lightness = gray_to_lightness(a) if a.ndim == 2 else cielab_lightness(a)
    return Photo(lightness=np.asarray(lightness, dtype=np.float32), alpha=alpha)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as upright uint8 RGB ``(H, W, 3)`` (for training data and truths)."""
    path = Path(path)
    image = _open_upright(path)
    try:
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            values = np.asarray(image, dtype=np.float64)
            peak = 65535.0 if values.max() > 255 else 255.0
            gray = (np.clip(values / peak, 0, 1) * 255 + 0.5).astype(np.uint8)
            return np.repeat(gray[..., None], 3, axis=2)
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot convert image mode {image.mode} ({exc})") from None


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it is flushed to disk
    and renamed into place, on any error it is removed. Readers therefore see either the
    old file or the complete new one, never a half-written file (even after ``kill -9``).

    >>> with atomic_file("out.txt", "w") as handle:  # doctest: +SKIP
    ...     handle.write("all or nothing")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; outputs are ordinary files
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_for(path: str | os.PathLike) -> str:
    """Pillow format name for a file name's suffix; ValueError for an unknown suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMAT_BY_SUFFIX:
        raise ValueError(f"{path}: unknown image suffix {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    return _FORMAT_BY_SUFFIX[suffix]


def write_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    overwrite: bool = False,
) -> Path:
    """Write uint8 RGB ``(H, W, 3)`` (plus optional alpha ``(H, W)``) atomically.

    The format follows the suffix. The image is written to a temporary file in the same
    folder and renamed into place, so a crash never leaves a half-written photo. Alpha is
    kept for formats that carry it (PNG, WebP, TIFF) and dropped for JPEG and BMP.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    fmt = format_for(path)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 RGB of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists (pass overwrite=True / --overwrite to replace it)")
    image = Image.fromarray(rgb, "RGB")
    if alpha is not None and fmt in _FORMATS_WITH_ALPHA:
        image.putalpha(Image.fromarray(alpha, "L"))
    options: dict = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    with atomic_file(path) as handle:
        image.save(handle, format=fmt, **options)
    return path


def list_images(folder: str | os.PathLike) -> list[Path]:
    """All image files under ``folder`` (recursive, sorted, hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / name)
    return sorted(found)
