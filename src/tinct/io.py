"""Reading and writing photos: every common format and mode, EXIF orientation, alpha, animated
GIFs, a pixel limit checked before decoding, and atomic writes.

A photo enters tinct as a :class:`Photo`: its CIELAB lightness at full resolution, its alpha
channel if it had one, and where it came from. Colour inputs are accepted: their lightness
is used and their colour is discarded. An animated image enters as an :class:`Animation`,
one :class:`Photo` per frame.

Every write goes through :func:`write_bytes_atomic` (or :func:`atomic_file` for writers that
stream): a temporary file beside the target, flushed to disk, renamed into place. A full disk
or a crash therefore never leaves a truncated file under the target's name.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import secrets
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tinct import errors  # imports nothing: io stays free of tinct's heavier modules

__all__ = [
    "IMAGE_SUFFIXES",
    "DEFAULT_MAX_MEGAPIXELS",
    "ImageReadError",
    "ImageTooLargeError",
    "Photo",
    "Animation",
    "read_photo",
    "read_image",
    "check_image",
    "photo_from_array",
    "read_rgb",
    "write_image",
    "write_animation",
    "list_images",
    "scan_folder",
    "FolderScan",
    "image_skip_reason",
    "atomic_file",
    "write_bytes_atomic",
    "write_text_atomic",
    "remove_stale_partials",
    "check_writable_folder",
    "sha256_file",
    "sha256_hasher",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")

# Pillow format names by suffix, for writing.
_FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".gif": "GIF",
}
_FORMATS_WITH_ALPHA = {"PNG", "WEBP", "TIFF", "GIF"}
# Formats whose animations are read frame by frame and can be written back as animations.
_ANIMATED_FORMATS = {"GIF", "PNG", "WEBP"}

# Photos above this many megapixels (all frames of an animation together) are refused from
# the file header, before any pixel is decoded: a 30000 x 30000 1-bit PNG of 107 KB would
# otherwise take over 13 GB. 50 MP admits any camera photo and an A4 scan at 600 dpi.
DEFAULT_MAX_MEGAPIXELS = 50.0

# Pillow's own guard, a backstop for readers called without a limit (about 40k x 40k);
# Pillow raises DecompressionBombError above twice this.
Image.MAX_IMAGE_PIXELS = 1_600_000_000


class ImageReadError(errors.TinctError, ValueError):
    """A file could not be read as an image; the message names the file and the reason."""


class ImageTooLargeError(ImageReadError):
    """An image over the pixel limit, refused before decoding (a decompression-bomb guard).

    Attributes:
        path: the file.
        description: its size, e.g. ``"30000 x 30000 pixels (900 megapixels)"``.
        limit: the limit it broke, in megapixels.
    """

    def __init__(self, path: Path, description: str, limit: float):
        self.path, self.description, self.limit = path, description, limit
        super().__init__(f"{path}: {description} is over the limit of {limit:g} megapixels (max_megapixels)")


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


@dataclass
class Animation:
    """An animated image (GIF, APNG, WebP) as tinct sees it: each frame composited onto the
    full canvas, as a :class:`Photo`.

    Attributes:
        frames: one :class:`Photo` per frame, all of the same size.
        durations: each frame's display time in milliseconds.
        loop: how many times the animation repeats (0: forever), or ``None`` to play it once.
        source: the file it was read from.
        format: Pillow format name of the source file.
    """

    frames: list[Photo]
    durations: list[int]
    loop: int | None = None
    source: Path | None = None
    format: str | None = None


def _megapixels_text(pixels: int) -> str:
    return f"{pixels / 1e6:,.0f} megapixels" if pixels >= 1e6 else f"{pixels / 1e6:.2g} megapixels"


def _too_large_from_pillow(path: Path, exc: Exception, max_megapixels: float | None) -> ImageTooLargeError:
    """Pillow's DecompressionBombError as our one-line error (the limit it broke is Pillow's)."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    description = _megapixels_text(int(match.group(1))) if match else "its size"
    pillow_limit = 2 * Image.MAX_IMAGE_PIXELS / 1e6
    limit = pillow_limit if max_megapixels is None else min(max_megapixels, pillow_limit)
    return ImageTooLargeError(path, description, limit)


def _frame_count(image: Image.Image) -> int:
    """Frames tinct colorizes: all of an animation, the first page of anything else."""
    if image.format in _ANIMATED_FORMATS and getattr(image, "is_animated", False):
        return image.n_frames  # read from the file's structure, without decoding pixels
    return 1


def _open_checked(path: Path, max_megapixels: float | None, all_frames: bool) -> Image.Image:
    """Open ``path`` (header only) and refuse it before decoding if it is over ``max_megapixels``.

    ``all_frames`` counts every frame of an animation against the limit.
    """
    try:
        if path.is_dir():
            raise ImageReadError(f"{path}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file")
        image = Image.open(path)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_large_from_pillow(path, exc, max_megapixels) from None
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image Pillow can read") from None
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None
    try:
        frames = _frame_count(image) if all_frames else 1
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        image.close()
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None
    width, height = image.size
    pixels = width * height * frames
    if max_megapixels is not None and pixels > max_megapixels * 1e6:
        image.close()
        what = f"{width} x {height} pixels" + (f" x {frames} frames" if frames > 1 else "")
        raise ImageTooLargeError(path, f"{what} ({_megapixels_text(pixels)})", max_megapixels)
    return image


def _load_upright(path: Path, image: Image.Image) -> Image.Image:
    """Decode the (first) frame and turn it upright by its EXIF orientation."""
    try:
        image.load()  # decode now so truncation is reported here
        fmt = image.format
        image = ImageOps.exif_transpose(image)
        image.format = fmt
        return image
    except Image.DecompressionBombError as exc:
        raise _too_large_from_pillow(path, exc, None) from None
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None


def _split_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Pillow image in any mode -> (lightness (H, W) float32, alpha (H, W) uint8 or None)."""
    from tinct.color import cielab_lightness, gray_to_lightness  # imports torch: only when decoding

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


def _photo(path: Path, image: Image.Image) -> Photo:
    try:
        lightness, alpha = _split_image(image)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot convert image mode {image.mode} ({exc})") from None
    return Photo(lightness=lightness, alpha=alpha, source=path, format=image.format)


def read_photo(path: str | os.PathLike, max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS) -> Photo:
    """Read any image file as a :class:`Photo` (lightness + alpha), honouring EXIF orientation.
    Of an animation, the first frame.

    Args:
        max_megapixels: refuse larger images from the header, before decoding; ``None``
            leaves only Pillow's own decompression-bomb guard.
    Raises:
        ImageReadError: the file is missing, empty, truncated or not an image; the message
            is one line that names the file.
        ImageTooLargeError: the image is over ``max_megapixels``.
    """
    path = Path(path)
    with _open_checked(path, max_megapixels, all_frames=False) as image:
        return _photo(path, _load_upright(path, image))


def check_image(path: str | os.PathLike, max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS) -> None:
    """Check from the header alone, without decoding, that ``path`` is an image within
    ``max_megapixels`` (all frames of an animation together). Raises as :func:`read_photo`."""
    _open_checked(Path(path), max_megapixels, all_frames=True).close()


def read_image(path: str | os.PathLike, max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS) -> Photo | Animation:
    """Read an image file as a :class:`Photo`, or as an :class:`Animation` when it holds more
    than one frame (animated GIF, APNG or WebP).

    ``max_megapixels`` counts every frame of an animation. Raises as :func:`read_photo`.
    """
    path = Path(path)
    with _open_checked(path, max_megapixels, all_frames=True) as image:
        if _frame_count(image) == 1:
            return _photo(path, _load_upright(path, image))
        return _read_frames(path, image)


def _read_frames(path: Path, image: Image.Image) -> Animation:
    loop = image.info.get("loop")
    frames, durations = [], []
    for index in range(image.n_frames):
        try:
            image.seek(index)
            image.load()
        except (OSError, EOFError, SyntaxError, ValueError) as exc:
            raise ImageReadError(f"{path}: cannot decode frame {index + 1} ({exc})") from None
        frames.append(_photo(path, image))
        durations.append(int(image.info.get("duration", 0)))
    return Animation(frames=frames, durations=durations, loop=loop, source=path, format=image.format)


def photo_from_array(image) -> Photo:
    """A PIL image or a NumPy array -> :class:`Photo`.

    Arrays: ``(H, W)`` gray, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA;
    uint8 in [0, 255], uint16 in [0, 65535], or float in [0, 1].
    """
    from tinct.color import cielab_lightness, gray_to_lightness  # imports torch: only when decoding

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


def read_rgb(path: str | os.PathLike, max_megapixels: float | None = None) -> np.ndarray:
    """Read an image file as upright uint8 RGB ``(H, W, 3)`` (for training data and truths)."""
    path = Path(path)
    with _open_checked(path, max_megapixels, all_frames=False) as opened:
        image = _load_upright(path, opened)
        try:
            if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                values = np.asarray(image, dtype=np.float64)
                peak = 65535.0 if values.max() > 255 else 255.0
                gray = (np.clip(values / peak, 0, 1) * 255 + 0.5).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise ImageReadError(f"{path}: cannot convert image mode {image.mode} ({exc})") from None


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------

# A temporary file beside TARGET is named ".TARGET.PID-XXXXXXXX.part": the writer's process id
# tells a leftover of a killed writer (stale, removed by remove_stale_partials) from a live write.
# Files of older versions, ".TARGET.XXXXXXXX.part", carry no process id.
_PARTIAL_NAME = re.compile(r"\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[a-z0-9_]{8}\.part")
_PARTIAL_ATTEMPTS = 100
_LEGACY_PARTIAL_AGE = 3600.0  # seconds after which a partial without a process id is stale


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, 64 lowercase hex digits (as ``sha256sum`` prints it).

    Remembered per (resolved path, size, modification time), so checking the same weights
    twice reads them once; a file rewritten in place gets a new time and is read again.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "abc.txt")
    ...     _ = path.write_bytes(b"abc")
    ...     sha256_file(path)[:16]
    'ba7816bf8f01cfea'
    """
    stat = os.stat(path)
    return _sha256_of(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return sha256_hasher(path).hexdigest()


def sha256_hasher(path: str | os.PathLike) -> hashlib._Hash:
    """A ``hashlib.sha256`` object that has read the file's bytes (1 MiB at a time), to go on
    with more bytes (a resumed download) or to read with ``hexdigest()``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest


def _named_error(exc: OSError, path: Path) -> OSError:
    """The same error (same errno, same subclass) naming ``path``, the file the caller asked for."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; some filesystems cannot sync a folder (ignored)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_partial(path: Path) -> tuple[int, Path]:
    """A new, empty temporary file beside ``path``, named as :data:`_PARTIAL_NAME` describes.
    Created with mode 0o666 so that the umask applies, as to any ordinary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(_PARTIAL_ATTEMPTS):
        partial = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
        try:
            return os.open(partial, flags, 0o666), partial
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path))


@contextmanager
def _partial_beside(path: Path) -> Iterator[int]:
    """A file descriptor on a new temporary file beside ``path``. When the block ends, the file
    is synced to disk and renamed to ``path``; if anything fails it is removed, and an OSError
    is raised again naming ``path``."""
    try:
        fd, partial = _create_partial(path)
    except OSError as exc:
        raise _named_error(exc, path) from exc
    try:
        try:
            yield fd
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _named_error(exc, path) from exc
        raise
    _fsync_folder(path.parent)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte is written: a short write is continued, never ignored."""
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def write_bytes_atomic(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` all or nothing: into a temporary file in the same folder,
    flushed and synced to disk, then renamed into place (replacing any file there).

    Readers see the old file or the complete new one, never a partial one, even after a full
    disk, ``kill -9`` or a power cut. On any error the temporary file is removed and an
    OSError naming ``path`` is raised (``[Errno 28] No space left on device: 'path'``).

    >>> write_bytes_atomic("checkpoint.bin", payload)  # doctest: +SKIP
    """
    path = Path(path)
    with _partial_beside(path) as fd:
        _write_all(fd, data)
    return path


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """:func:`write_bytes_atomic` for text (reports, configs, JSON)."""
    return write_bytes_atomic(path, text.encode(encoding))


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it is flushed to disk
    and renamed into place, on any error it is removed. Readers therefore see either the
    old file or the complete new one, never a half-written file (even after ``kill -9``).
    For writers that stream (``torch.save(obj, handle)``); with the bytes at hand, use
    :func:`write_bytes_atomic`.

    >>> with atomic_file("out.txt", "w") as handle:  # doctest: +SKIP
    ...     handle.write("all or nothing")
    """
    text = {"newline": ""} if "b" not in mode else {}
    with _partial_beside(Path(path)) as fd:
        with os.fdopen(fd, mode, closefd=False, **text) as handle:
            yield handle


def _writer_gone(pid: str | None, modified: float) -> bool:
    if pid is None:
        return time.time() - modified > _LEGACY_PARTIAL_AGE
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def remove_stale_partials(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the temporary files that interrupted writes (``kill -9``, a power cut) left
    beside ``paths``, and return them.

    Only this module's temporary files of those very targets are touched, and only when the
    process that wrote them is gone, so a write in progress elsewhere is never disturbed.
    """
    names_by_folder: dict[Path, set[str]] = defaultdict(set)
    for path in paths:
        path = Path(path)
        names_by_folder[path.parent].add(path.name)
    removed = []
    for folder, names in names_by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _PARTIAL_NAME.fullmatch(entry.name)
            if not match or match["name"] not in names or not entry.is_file(follow_symlinks=False):
                continue
            if _writer_gone(match["pid"], entry.stat(follow_symlinks=False).st_mtime):
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed


def check_writable_folder(folder: str | os.PathLike) -> None:
    """Create ``folder`` if needed and check that a file can be created in it.

    Raises:
        OSError: naming the folder, e.g. ``NotADirectoryError`` when it is a plain file.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tinct-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise _named_error(exc, folder) from exc


# ---------------------------------------------------------------------------------------------
# Writing images
# ---------------------------------------------------------------------------------------------


def format_for(path: str | os.PathLike) -> str:
    """Pillow format name for a file name's suffix; ValueError for an unknown suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMAT_BY_SUFFIX:
        raise ValueError(f"{path}: unknown image suffix {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    return _FORMAT_BY_SUFFIX[suffix]


def _rgb_image(rgb: np.ndarray) -> Image.Image:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 RGB of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return Image.fromarray(rgb, "RGB")


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists (pass overwrite=True / --overwrite to replace it)")


def write_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    overwrite: bool = False,
) -> Path:
    """Write uint8 RGB ``(H, W, 3)`` (plus optional alpha ``(H, W)``) atomically.

    The format follows the suffix. The image is encoded in memory and written with
    :func:`write_bytes_atomic`, so a full disk or a crash never leaves a truncated photo.
    Alpha is kept for formats that carry it (PNG, WebP, TIFF, GIF) and dropped for JPEG and BMP.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        OSError: the write failed (the message names ``path``); nothing is left behind.
    """
    path = Path(path)
    fmt = format_for(path)
    image = _rgb_image(rgb)
    _refuse_existing(path, overwrite)
    if alpha is not None and fmt in _FORMATS_WITH_ALPHA:
        image.putalpha(Image.fromarray(alpha, "L"))
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return write_bytes_atomic(path, buffer.getbuffer())


def write_animation(
    path: str | os.PathLike,
    frames: Sequence[np.ndarray],
    durations: Sequence[int],
    loop: int | None = None,
    quality: int = 95,
    overwrite: bool = False,
) -> Path:
    """Write uint8 RGB frames ``(H, W, 3)`` as an animated GIF, PNG or WebP, atomically.

    Args:
        durations: each frame's display time in milliseconds.
        loop: repeats (0: forever); ``None`` plays it once.
    Raises:
        ValueError: the suffix names a format without animation, or the lengths differ.
        FileExistsError, OSError: as :func:`write_image`.
    """
    path = Path(path)
    fmt = format_for(path)
    if fmt not in _ANIMATED_FORMATS:
        raise ValueError(f"{path}: {fmt} cannot hold an animation; use .gif, .png or .webp")
    if not frames or len(frames) != len(durations):
        raise ValueError(f"expected one duration per frame, got {len(frames)} frames and {len(durations)} durations")
    images = [_rgb_image(rgb) for rgb in frames]
    _refuse_existing(path, overwrite)
    options: dict = {"save_all": True, "append_images": images[1:], "duration": list(durations)}
    if loop is not None:
        options["loop"] = loop
    if fmt == "WEBP":
        options["quality"] = quality
    buffer = io.BytesIO()
    images[0].save(buffer, format=fmt, **options)
    return write_bytes_atomic(path, buffer.getbuffer())


# ---------------------------------------------------------------------------------------------
# Finding images in folders
# ---------------------------------------------------------------------------------------------


@dataclass
class FolderScan:
    """What a folder walk found: image files, and every file or folder it left out, with why."""

    images: list[Path]
    skipped: list[tuple[Path, str]]


def image_skip_reason(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not an image file to read (``None`` when it is one)."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return "broken symlink"
    if not path.is_file():
        return "not a regular file"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file (tinct reads {' '.join(IMAGE_SUFFIXES)})"
    return None


def _folder_skip_reason(path: Path, excluded: set[str]) -> str | None:
    if os.path.realpath(path) in excluded:
        return "the output folder, not searched"
    if path.name.startswith("."):
        return "hidden folder, not searched"
    if path.is_symlink():
        return "symlinked folder, not followed"
    return None


def scan_folder(folder: str | os.PathLike, exclude: Iterable[str | os.PathLike] = ()) -> FolderScan:
    """Image files under ``folder`` (recursive, sorted) and what was left out, with the reason:
    hidden files and folders, non-image files, symlinked folders and the ``exclude`` folders.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    excluded = {os.path.realpath(p) for p in exclude}
    images, skipped = [], []

    def unreadable(error: OSError) -> None:
        skipped.append((Path(error.filename), f"cannot list its files ({error.strerror})"))

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        kept = []
        for name in sorted(dirs):
            reason = _folder_skip_reason(Path(root) / name, excluded)
            if reason:
                skipped.append((Path(root) / name, reason))
            else:
                kept.append(name)
        dirs[:] = kept
        for name in files:
            path = Path(root) / name
            reason = "hidden file" if name.startswith(".") else image_skip_reason(path)
            if reason:
                skipped.append((path, reason))
            else:
                images.append(path)
    return FolderScan(images=sorted(images), skipped=sorted(skipped))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """All image files under ``folder`` (recursive, sorted, hidden files skipped)."""
    return scan_folder(folder).images
