"""The local web page behind ``tinct serve``: drop gray photos in, take colour photos out.

The page is a thin Gradio layer over plain functions that need no browser and no Gradio:

- :func:`check_uploads` enforces the limits (file count, bytes, megapixels, "is it an image")
  and raises :class:`UploadRejected` with one line that names the offending file;
  :func:`check_added_file` adds the one check that needs the pixels (is the file complete?),
  so a file is refused as soon as it is added, not only when Colorize is pressed;
- :func:`colorize_file` colorizes one uploaded file exactly as ``tinct colorize`` does
  (:func:`tinct.io.read_photo` -> :meth:`tinct.Colorizer.colorize_photo` ->
  :func:`tinct.io.write_image`, alpha kept), so the page and the CLI give identical pixels;
- :func:`colorize_uploads` runs a request photo by photo and reports :class:`Progress`
  (the photo, n / N, the time left from :class:`Pace`) while it works;
- :func:`zip_results` packs several results into one download.

Below the batch, two sections from :mod:`tinct.web`: *Colour with points*
(:mod:`tinct.web.point_tab`: clicks place colour hints for the hint model, re-colorized at
full resolution after each change) and *Video clip* (:mod:`tinct.web.clip`: a short clip
within :class:`tinct.web.clip.ClipLimits`, colorized by the video pipeline and played).

:func:`build_app` arranges these in a ``gradio.Blocks`` page and :func:`launch` serves it on
the local machine only, with nothing fetched from the internet (no analytics, no share
link, no web fonts). Gradio is imported only by those two, so ``import tinct.app`` is cheap.

>>> limits = Limits(max_megapixels=40, max_mb=30, max_files=20)
>>> limits.max_bytes
31457280
"""

from __future__ import annotations

import html
import importlib.abc
import importlib.machinery
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from tinct.io import DEFAULT_MAX_MEGAPIXELS, ImageReadError, ImageTooLargeError, read_photo, write_image

__all__ = [
    "DOWNLOAD_FORMATS",
    "Limits",
    "Pace",
    "Progress",
    "Result",
    "UploadRejected",
    "Workspace",
    "build_app",
    "check_added_file",
    "check_uploads",
    "colorize_file",
    "colorize_uploads",
    "find_examples",
    "launch",
    "load_colorizers",
    "too_many_bytes",
    "warm_up",
    "zip_results",
]

# Download formats offered on the page: label -> file suffix.
DOWNLOAD_FORMATS = {"PNG": ".png", "JPEG": ".jpg"}
PREVIEW_SIDE = 1600  # long side of the before/after previews shown in the page (pixels)
RESULT_SUFFIX = "_color"  # as `tinct colorize` names outputs written beside their input
KEEP_RESULTS_SECONDS = 3600  # results older than this are deleted from the server's disk
PROGRESS_EVERY = 0.5  # seconds between progress reports while a photo is being colorized
READABLE_FORMATS = "JPEG, PNG, WebP, TIFF, BMP or GIF"


class UploadRejected(ValueError):
    """An upload breaks a limit or is not a readable image; the message is one line for the user."""


def log_refusal(message: str) -> None:
    """One line on the server's stderr per refused request or file (no traceback: nothing broke)."""
    print(f"tinct serve: refused: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Limits:
    """What one request may upload.

    Attributes:
        max_megapixels: largest image, width x height / 1e6 (checked from the header, before
            decoding, so a huge image costs no memory).
        max_mb: largest file in MiB (2**20 bytes).
        max_files: most photos in one request.
    """

    max_megapixels: float = 40.0
    max_mb: float = 30.0
    max_files: int = 20

    def __post_init__(self):
        for name in ("max_megapixels", "max_mb", "max_files"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 2**20)


def _over(value: float, limit: float) -> str:
    """``value`` with the limit's decimals, or more until it reads as larger (52.0, 40.04, 0.077)."""
    limit_text = f"{limit:g}"
    decimals = max(1, len(limit_text.split(".")[1]) if "." in limit_text else 1)
    for places in range(decimals, decimals + 6):
        text = f"{value:.{places}f}"
        if float(text) > limit:
            return text
    return f"{value:g}"


def display_name(path: str | os.PathLike) -> str:
    """The name the user knows a file by (Gradio keeps the original name as the last part)."""
    return Path(path).name


def too_many_bytes(name: str, size: int, limits: Limits) -> str:
    """The message for a file over ``limits.max_mb`` (the page's browser check words it the same)."""
    return f"{name}: {_over(size / 2**20, limits.max_mb)} MB is over the {limits.max_mb:g} MB limit per photo."


def _not_an_image(name: str) -> str:
    return f"{name}: not an image tinct can read (use {READABLE_FORMATS})."


def _incomplete(name: str) -> str:
    return f"{name}: the file is incomplete (it stops part of the way through the image); add a complete copy."


def _damaged(name: str) -> str:
    return f"{name}: the image data is damaged and cannot be read."


def _riff_cut_short(path: Path, size: int) -> bool:
    """A WebP file (a RIFF container) states its length in its first bytes: Pillow cannot even
    open one that is shorter on disk, so this tells "cut short" from "not an image"."""
    with open(path, "rb") as file:
        head = file.read(12)
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP" and int.from_bytes(head[4:8], "little") + 8 > size


def _check_header(path: Path, limits: Limits) -> tuple[int, int]:
    """One file's size on disk and image header against ``limits``; returns ``(width, height)``."""
    name = display_name(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise UploadRejected(f"{name}: the upload is missing on the server; add it again.") from None
    if size > limits.max_bytes:
        raise UploadRejected(too_many_bytes(name, size, limits))
    if size == 0:
        raise UploadRejected(f"{name}: the file is empty.")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise UploadRejected(_incomplete(name) if _riff_cut_short(path, size) else _not_an_image(name)) from None
    megapixels = width * height / 1e6
    if megapixels > limits.max_megapixels:
        raise UploadRejected(
            f"{name}: {width}x{height} is {_over(megapixels, limits.max_megapixels)} megapixels, "
            f"over the {limits.max_megapixels:g} megapixel limit."
        )
    return width, height


def _checked_sizes(paths: Sequence[str | os.PathLike], limits: Limits) -> list[tuple[Path, int, int]]:
    paths = [Path(p) for p in paths]
    if not paths:
        raise UploadRejected("No photos to colorize: drop, paste or upload one first.")
    if len(paths) > limits.max_files:
        raise UploadRejected(
            f"Too many photos at once: {len(paths)} given, the limit is {limits.max_files}. "
            "Colorize them in smaller groups."
        )
    return [(path, *_check_header(path, limits)) for path in paths]


def check_uploads(paths: Sequence[str | os.PathLike], limits: Limits) -> list[Path]:
    """Check a request's files against ``limits`` before any work is done.

    Each file must exist, be within ``limits.max_mb``, have an image header Pillow knows and
    be within ``limits.max_megapixels``. The header is read without decoding the pixels.

    Returns:
        the paths as :class:`~pathlib.Path`, in the given order.

    Raises:
        UploadRejected: no files, too many files, or the first file that breaks a rule
            (the message names it).
    """
    return [path for path, _, _ in _checked_sizes(paths, limits)]


def _plain_read_error(name: str, exc: Exception) -> str:
    """A decoder's complaint ("image file is truncated (20 bytes not processed)") in plain words."""
    if isinstance(exc, ImageTooLargeError):
        return f"{name}: {exc.description} is over the {exc.limit:g} megapixel limit."
    text = str(exc).lower()
    if "truncated" in text or "premature end" in text or "not large enough" in text:
        return _incomplete(name)
    if "not an image" in text or "cannot identify" in text:
        return _not_an_image(name)
    return _damaged(name)


def check_added_file(path: str | os.PathLike, limits: Limits) -> None:
    """Everything :func:`check_uploads` checks, plus that the pixels decode to the end.

    Run when a file is added to the page, so an incomplete or damaged file is named at once
    rather than after Colorize. A JPEG is decoded at 1/8 scale (every byte is still read, so
    a cut-off file is found, at a fraction of the cost); other formats are decoded fully,
    which the megapixel limit keeps bounded.

    Raises:
        UploadRejected: as :func:`check_uploads`, or the file is incomplete or damaged.
    """
    path = Path(path)
    width, height = _check_header(path, limits)
    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except (OSError, EOFError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UploadRejected(_plain_read_error(display_name(path), exc)) from None


@dataclass
class Result:
    """One colorized upload.

    Attributes:
        name: the uploaded file's name.
        output: the full-resolution result on the server.
        before, after: previews for the page (same size, long side <= ``PREVIEW_SIDE``):
            the lightness the model saw, shown as gray, and the result; None when not asked for.
            PNG with the photo's transparency when it has an alpha channel, else JPEG.
        width, height: full-resolution size in pixels.
        seconds: time to read, colorize and write this photo.
        model: name of the model that colorized it.
    """

    name: str
    output: Path
    before: Path | None
    after: Path | None
    width: int
    height: int
    seconds: float
    model: str

    def caption(self) -> str:
        return f"{self.width}x{self.height} px · {self.seconds:.2f} s · {self.model}"


@dataclass
class Batch:
    """The results of one request, as the page shows them."""

    results: list[Result]
    archive: Path | None  # all results in one zip, when there are several
    model: str

    def summary(self) -> str:
        count = len(self.results)
        total = sum(r.seconds for r in self.results)
        return f"{count} photo{'s' if count != 1 else ''} colorized with {self.model} in {total:.2f} s."


def result_name(upload_name: str, suffix: str, taken: set[str]) -> str:
    """``photo.tif`` -> ``photo_color.png``, numbered when the name is already in ``taken``."""
    stem = Path(upload_name).stem or "photo"
    name = f"{stem}{RESULT_SUFFIX}{suffix}"
    number = 2
    while name in taken:
        name = f"{stem}{RESULT_SUFFIX}-{number}{suffix}"
        number += 1
    taken.add(name)
    return name


def _write_previews(lightness: np.ndarray, rgb: np.ndarray, alpha: np.ndarray | None,
                    before: Path, after: Path) -> None:
    """Downscaled gray-vs-colour previews of one result, the same size; with ``alpha`` both
    keep the transparency (PNG), so the preview shows the cut-out the download has."""
    from tinct.color import lightness_to_gray, to_uint8

    height, width = lightness.shape
    scale = min(1.0, PREVIEW_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small_l = np.array(Image.fromarray(lightness.astype(np.float32), "F").resize(size, Image.Resampling.BOX))
    gray = Image.fromarray(to_uint8(lightness_to_gray(small_l)), "L")
    colour = Image.fromarray(rgb, "RGB").resize(size, Image.Resampling.LANCZOS)
    if alpha is None:
        gray.convert("RGB").save(before, quality=90)
        colour.save(after, quality=90)
        return
    small_alpha = Image.fromarray(alpha, "L").resize(size, Image.Resampling.BOX)  # no ringing at edges
    gray.putalpha(small_alpha)
    colour.putalpha(small_alpha)
    gray.save(before, compress_level=1)  # previews are temporary: fast over small
    colour.save(after, compress_level=1)


def colorize_file(colorizer, path: str | os.PathLike, out_dir: str | os.PathLike, suffix: str = ".png",
                  taken: set[str] | None = None, previews: bool = False,
                  max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS) -> Result:
    """Colorize one uploaded file into ``out_dir``, exactly as ``tinct colorize`` would.

    Args:
        colorizer: a :class:`tinct.Colorizer`.
        path: the uploaded file (any format :func:`tinct.io.read_photo` reads).
        out_dir: folder for the result (created if missing).
        suffix: ``".png"`` (lossless, keeps alpha) or ``".jpg"`` (quality 95, as the CLI).
        taken: result names already used in this request (updated), to keep names unique.
        previews: also write the page's before/after previews (hidden files in ``out_dir``).
        max_megapixels: refuse a larger image before decoding it (the page passes its limit).

    Raises:
        UploadRejected: the file cannot be decoded or is too large (the message names it in
            plain words).
    """
    path, out_dir = Path(path), Path(out_dir)
    name = display_name(path)
    output = out_dir / result_name(name, suffix, taken if taken is not None else set())
    start = time.perf_counter()
    try:
        photo = read_photo(path, max_megapixels=max_megapixels)
    except ImageReadError as exc:
        raise UploadRejected(_plain_read_error(name, exc)) from None
    rgb = colorizer.colorize_photo(photo)  # (H, W, 3) uint8, full resolution
    write_image(output, rgb, alpha=photo.alpha, overwrite=True)
    seconds = time.perf_counter() - start
    before = after = None
    if previews:
        preview_id = uuid.uuid4().hex[:8]
        kind = ".jpg" if photo.alpha is None else ".png"
        before, after = out_dir / f".before-{preview_id}{kind}", out_dir / f".after-{preview_id}{kind}"
        _write_previews(photo.lightness, rgb, photo.alpha, before, after)
    height, width = photo.lightness.shape
    return Result(name, output, before, after, width, height, seconds, colorizer.name)


def zip_results(outputs: Sequence[str | os.PathLike], zip_path: str | os.PathLike) -> Path:
    """Pack result files into one zip (stored, not recompressed: PNG and JPEG are compressed)."""
    zip_path = Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for output in outputs:
            archive.write(output, arcname=Path(output).name)
    return zip_path


class Workspace:
    """A private folder for the server's results, one subfolder per request, pruned by age."""

    def __init__(self, root: str | os.PathLike | None = None, keep_seconds: float = KEEP_RESULTS_SECONDS):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="tinct-serve-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep_seconds = keep_seconds

    def new_request_dir(self) -> Path:
        self.prune()
        folder = self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        return folder

    def prune(self) -> None:
        cutoff = time.time() - self.keep_seconds
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Pace:
    """How long a megapixel takes, learnt from the photos already colorized, to say how long
    the rest of a request will take.

    Small photos cost a fixed overhead more than pixels, so each counts as at least
    ``min_megapixels``. The estimate is a running mean that follows the latest photos
    (``weight`` for the newest), shared by all requests of a server.

    >>> pace = Pace()
    >>> pace.seconds_left([12.0]) is None  # nothing colorized yet
    True
    >>> pace.record(megapixels=2.0, seconds=1.0)
    >>> pace.seconds_left([12.0], elapsed=2.0)  # 12 MP at 0.5 s/MP, 2 s already spent
    4.0
    """

    def __init__(self, min_megapixels: float = 0.25, weight: float = 0.5):
        self.min_megapixels = min_megapixels
        self.weight = weight
        self.seconds_per_megapixel: float | None = None
        self._lock = threading.Lock()

    def record(self, megapixels: float, seconds: float) -> None:
        rate = seconds / max(megapixels, self.min_megapixels)
        with self._lock:
            old = self.seconds_per_megapixel
            self.seconds_per_megapixel = rate if old is None else (1 - self.weight) * old + self.weight * rate

    def seconds_for(self, megapixels: float) -> float | None:
        rate = self.seconds_per_megapixel
        return None if rate is None else rate * max(megapixels, self.min_megapixels)

    def seconds_left(self, megapixels: Sequence[float], elapsed: float = 0.0) -> float | None:
        """Time for photos of ``megapixels`` (the first one started ``elapsed`` seconds ago)."""
        if self.seconds_per_megapixel is None or not megapixels:
            return None
        current = max(0.0, self.seconds_for(megapixels[0]) - elapsed)
        return current + sum(self.seconds_for(mp) for mp in megapixels[1:])


@dataclass(frozen=True)
class Progress:
    """Where a request is: photo ``number`` of ``count`` (1-based) is being colorized.

    Attributes:
        fraction: of the whole request done, 0..1 (by megapixels, and by time within a photo).
        seconds_left: the estimate, or None before anything has been timed.
    """

    name: str
    number: int
    count: int
    fraction: float
    seconds_left: float | None

    def describe(self) -> str:
        """``Colorizing street.png (2 / 3) · about 6 s left``."""
        text = f"Colorizing {self.name} ({self.number} / {self.count})"
        if self.seconds_left is None:
            return f"{text} · estimating the time left"
        return f"{text} · {_time_left(self.seconds_left)}"


def _time_left(seconds: float) -> str:
    if seconds < 0.5:
        return "almost done"
    if seconds < 59.5:
        return f"about {max(1, round(seconds))} s left"
    minutes, rest = divmod(round(seconds), 60)
    return f"about {minutes} min {rest:02d} s left"


def colorize_uploads(colorizer, uploads: Sequence[tuple[Path, int, int]], out_dir: Path, suffix: str,
                     pace: Pace, every: float = PROGRESS_EVERY,
                     max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS) -> Iterator[Progress | Batch]:
    """Colorize checked uploads ``(path, width, height)`` one by one into ``out_dir``.

    Yields a :class:`Progress` as each photo starts and every ``every`` seconds while it is
    being colorized (the work runs in a helper thread meanwhile), then the :class:`Batch`.
    Each photo's time teaches ``pace``.

    Raises:
        UploadRejected: a file cannot be decoded (photos before it are discarded).
    """
    megapixels = [width * height / 1e6 for _, width, height in uploads]
    total = sum(max(mp, pace.min_megapixels) for mp in megapixels)
    done = 0.0
    taken: set[str] = set()
    results = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tinct-colorize") as worker:
        for index, (path, _, _) in enumerate(uploads):
            weight = max(megapixels[index], pace.min_megapixels)
            start = time.monotonic()
            job = worker.submit(colorize_file, colorizer, path, out_dir, suffix, taken, True, max_megapixels)
            while True:
                elapsed = time.monotonic() - start
                expected = pace.seconds_for(megapixels[index])
                within = min(elapsed / expected, 0.95) if expected else 0.0
                yield Progress(display_name(path), index + 1, len(uploads), (done + within * weight) / total,
                               pace.seconds_left(megapixels[index:], elapsed))
                try:
                    result = job.result(timeout=every)
                    break
                except FutureTimeout:
                    continue
            pace.record(megapixels[index], time.monotonic() - start)
            results.append(result)
            done += weight
    archive = zip_results([r.output for r in results], out_dir / "tinct-results.zip") if len(results) > 1 else None
    yield Batch(results, archive, colorizer.name)


def load_colorizers(models: Sequence[str], threads: int | None = None) -> dict:
    """``{name shown on the page: Colorizer}`` for each model (shipped name or checkpoint path).

    Names are the checkpoint file stems, made unique with the parent folder when two clash;
    a model given twice is loaded once.
    Raises whatever :class:`tinct.Colorizer` raises for a model it cannot load.
    """
    from tinct.infer import Colorizer

    colorizers: dict = {}
    seen: set[str] = set()
    for model in models:
        key = str(Path(model).resolve()) if Path(str(model)).exists() else str(model)
        if key in seen:  # the same model named twice is offered once
            continue
        seen.add(key)
        colorizer = Colorizer(model, threads=threads, batch_size=1)
        name = colorizer.name
        if name in colorizers:
            parent = Path(str(model)).resolve().parent.name
            name = f"{parent}/{name}" if parent else name
        base, number = name, 2
        while name in colorizers:
            name = f"{base} ({number})"
            number += 1
        colorizers[name] = colorizer
    return colorizers


def find_examples(folder: str | os.PathLike | None = None) -> list[Path]:
    """Example photos: those in ``folder`` if given, else the ones that ship with tinct
    (:func:`tinct.examples_dir`, package data, so they are found once installed too)."""
    from tinct import examples_dir
    from tinct.io import IMAGE_SUFFIXES

    folder = examples_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class _Page:
    """What the page's handlers need (kept out of module globals so two apps can coexist)."""

    colorizers: dict
    limits: Limits
    workspace: Workspace
    examples: list[Path] = field(default_factory=list)
    paces: dict = field(default_factory=dict)  # model name -> Pace
    hint_model: object = None  # tinct.web.point_tab.HintModel, or None: no points section
    clip_limits: object = None  # tinct.web.clip.ClipLimits, or None: no video section
    _video: object = None

    def video(self):
        """The :class:`tinct.video.VideoColorizer` of the first model (made on first use)."""
        if self._video is None:
            from tinct.video import VideoColorizer

            self._video = VideoColorizer(next(iter(self.colorizers.values())))
        return self._video

    def pace(self, model_name: str) -> Pace:
        return self.paces.setdefault(model_name, Pace())

    def warm_up(self, megapixels: float = 1.0) -> None:
        """Colorize one synthetic photo with the first model: the first real request then
        runs warm, and its progress can say how long it will take from the start."""
        name, colorizer = next(iter(self.colorizers.items()))
        side = max(8, int((megapixels * 1e6) ** 0.5))
        folder = Path(tempfile.mkdtemp(prefix="warm-up-", dir=self.workspace.root))
        try:
            ramp = np.tile(np.linspace(20, 235, side).astype(np.uint8), (side, 1))
            source = folder / "warm-up.png"
            Image.fromarray(ramp, "L").save(source, compress_level=1)
            start = time.monotonic()
            colorize_file(colorizer, source, folder, ".png", previews=True)
            self.pace(name).record(side * side / 1e6, time.monotonic() - start)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class _NoStubRewrite(importlib.abc.MetaPathFinder):
    """Loads ``gradio.component_meta`` with ``create_or_modify_pyi`` made a no-op.

    On every import, Gradio 6 regenerates the ``.pyi`` type stubs of its own components
    inside site-packages: for each component class it reads and parses the class's source
    file. That is an aid for editors, about half the time ``import gradio`` takes (so half
    of ``tinct serve``'s start-up), and nothing the page uses. When the function is missing
    (another Gradio version) nothing is changed.
    """

    def find_spec(self, name, path, target=None):
        if name != "gradio.component_meta":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            if callable(getattr(module, "create_or_modify_pyi", None)):
                module.create_or_modify_pyi = lambda *args, **kwargs: None

        spec.loader.exec_module = exec_module
        return spec


def offline_gradio():
    """Import Gradio with its telemetry off (nothing in the page may reach the internet) and
    without its import-time stub rewriting (see :class:`_NoStubRewrite`)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if "gradio" in sys.modules:
        return sys.modules["gradio"]
    hook = _NoStubRewrite()
    sys.meta_path.insert(0, hook)
    try:
        import gradio
    finally:
        sys.meta_path.remove(hook)
    return gradio


INTRO = """\
# tinct: colour for black-and-white photos
Drop, paste or upload gray photos (several at once), pick a model and press **Colorize**.
Each result appears below with a before/after slider; downloads are full resolution.
Everything runs on this computer: photos never leave it.
"""


# --- what the status line above the results says ------------------------------------------

def _status(state: str, body: str, bar: str = "", count: int = 0) -> str:
    role = "alert" if state == "refused" else "status"
    return (f'<div class="tinct-status" data-state="{state}" data-count="{count}" role="{role}" aria-live="polite">'
            f"{body}{bar}</div>")


def _progress_html(progress: Progress) -> str:
    value = round(progress.fraction * 1000)
    return _status(
        "running",
        f'<p class="tinct-status-line">{html.escape(progress.describe())}</p>',
        f'<progress max="1000" value="{value}" aria-label="Colorizing">{value / 10:.0f}%</progress>',
    )


STARTING_HTML = _status(
    "starting", '<p class="tinct-status-line">Starting…</p>', '<progress aria-label="Starting"></progress>'
)


def _refused_html(message: str) -> str:
    return _status("refused", f'<p class="tinct-status-line">{html.escape(message)}</p>')


def _done_html(batch: Batch) -> str:
    return _status("done", f'<p class="tinct-status-line">{html.escape(batch.summary())}</p>', count=len(batch.results))


def _upload_message_html(messages: Sequence[str]) -> str:
    if not messages:
        return ""
    items = "".join(f"<li>{html.escape(m)} Not added.</li>" for m in messages)
    return f'<ul class="tinct-upload-refusals" role="alert">{items}</ul>'


# Runs in the browser when the status element mounts. A click on Colorize shows "Starting…",
# disables the button and brings the status into view at once, before the server answers
# (the server then confirms the disabled button and reports progress). When a request ends,
# the results are scrolled to the top of the window as soon as they are on the page.
STATUS_JS = """
const motion = () => matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth';
window.tinctStatus = {element, props};  // the page-wide listener below acts on the latest mount
if (!window.tinctStatusListens) {
  window.tinctStatusListens = true;
  document.addEventListener('click', (event) => {
    const button = event.target.closest && event.target.closest('#colorize');
    if (!button || button.disabled) return;
    window.tinctStatus.props.value = STARTING;
    // After this click has reached Gradio's own handler: a disabled button gets no click.
    setTimeout(() => {
      button.disabled = true;
      window.tinctStatus.element.scrollIntoView({block: 'nearest'});
    }, 0);
  });
}
// Scroll once the first result has its images: before they load it has no height yet,
// and the page may be too short to scroll to it.
const showResults = (expected, tries) => {
  const results = document.querySelectorAll('#results .result');
  const images = results.length ? [...results[0].querySelectorAll('img')] : [];
  const ready = results.length >= expected && images.length && images.every((img) => img.complete && img.naturalHeight);
  if (!ready && tries < 200) {
    setTimeout(() => showResults(expected, tries + 1), 50);
    return;
  }
  requestAnimationFrame(() => document.getElementById('results').scrollIntoView({block: 'start', behavior: motion()}));
};
watch('value', () => {
  const status = element.querySelector('.tinct-status');
  const state = status ? status.dataset.state : '';
  if (state === 'done') showResults(Number(status.dataset.count || 0), 0);
  else if (state) element.scrollIntoView({block: 'nearest', behavior: motion()});
});
"""

# Runs in the browser when the upload message mounts: a file over the size limit is not sent
# to the server at all (it is named here, in the words the server would use); the others
# go on to be uploaded and checked by the server. Covers the file picker and drag and drop.
UPLOAD_JS = """
window.tinctUploadMessage = {props, limit: LIMIT};  // the page-wide listeners act on the latest mount
const overText = (value, limit, limitText) => {
  const decimals = Math.max(1, limitText.includes('.') ? limitText.split('.')[1].length : 1);
  for (let places = decimals; places < decimals + 6; places++) {
    const text = value.toFixed(places);
    if (parseFloat(text) > limit) return text;
  }
  return String(value);
};
const refuse = (files) => {
  const {props, limit} = window.tinctUploadMessage;
  const over = [], fine = [];
  for (const file of files) (file.size > limit.bytes ? over : fine).push(file);
  const items = over.map((file) => {
    const li = document.createElement('li');
    li.textContent = `${file.name}: ${overText(file.size / 1048576, limit.mb, limit.text)} MB is over the ` +
      `${limit.text} MB limit per photo. Not added.`;
    return li.outerHTML;
  });
  props.value = items.length ? `<ul class="tinct-upload-refusals" role="alert">${items.join('')}</ul>` : '';
  return fine;
};
const only = (files) => {
  const kept = new DataTransfer();
  files.forEach((file) => kept.items.add(file));
  return kept;
};
const inUploads = (node) => node && node.closest && node.closest('#uploads');
if (!window.tinctUploadListens) {
  window.tinctUploadListens = true;
  document.addEventListener('change', (event) => {
    const input = event.target;
    if (!inUploads(input) || input.type !== 'file' || !input.files) return;
    const fine = refuse([...input.files]);
    if (fine.length === input.files.length) return;
    if (!fine.length) {
      event.stopImmediatePropagation();
      input.value = '';
      return;
    }
    input.files = only(fine).files;
  }, true);
  const redropped = new WeakSet();
  document.addEventListener('drop', (event) => {
    if (redropped.has(event) || !inUploads(event.target) || !event.dataTransfer?.files.length) return;
    const files = [...event.dataTransfer.files];
    const fine = refuse(files);
    if (fine.length === files.length) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    if (fine.length) {  // the same drop again, without the files over the limit
      const again = new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: only(fine)});
      redropped.add(again);
      event.target.dispatchEvent(again);
    }
  }, true);
}
"""


class _Handlers:
    """The page's event handlers. ``ui`` (the components they update) is set once the page
    is laid out; the handlers run only after that."""

    def __init__(self, gr, page: _Page):
        self.gr, self.page = gr, page
        self.model_names = list(page.colorizers)
        self.ui = None

    @staticmethod
    def paths_of(items) -> list[str]:
        """A gallery's value (``[(path, caption), ...]``) -> the paths."""
        return [item[0] if isinstance(item, (tuple, list)) else item for item in (items or [])]

    def prepare(self, items, model_name, download_format):
        """The checked request: uploads with their sizes, the colorizer, the suffix, a folder."""
        page = self.page
        uploads = _checked_sizes(self.paths_of(items), page.limits)
        if model_name not in page.colorizers:
            raise UploadRejected(f"Unknown model {model_name!r}; choose one of {', '.join(self.model_names)}.")
        if download_format not in DOWNLOAD_FORMATS:
            choices = " or ".join(DOWNLOAD_FORMATS)
            raise UploadRejected(f"Unknown download format {download_format!r}; choose {choices}.")
        return uploads, page.colorizers[model_name], DOWNLOAD_FORMATS[download_format], page.workspace.new_request_dir()

    def run(self, uploads, colorizer, suffix, out_dir):
        """:func:`colorize_uploads`, with unexpected failures turned into one line for the user."""
        try:
            yield from colorize_uploads(colorizer, uploads, out_dir, suffix, self.page.pace(colorizer.name),
                                        max_megapixels=self.page.limits.max_megapixels)
        except UploadRejected:
            raise
        except Exception as exc:  # a bug or a broken model: the trace for the log, a line for the user
            traceback.print_exc(file=sys.stderr)
            raise UploadRejected(f"The photos could not be colorized ({type(exc).__name__}: {exc}).") from None

    def colorize_on_page(self, items, model_name, download_format):
        gr, ui = self.gr, self.ui
        busy = gr.Button(interactive=False)
        yield {ui.status: STARTING_HTML, ui.colorize_button: busy, ui.batch_state: None}  # clears earlier results
        try:
            for step in self.run(*self.prepare(items, model_name, download_format)):
                if isinstance(step, Batch):
                    batch = step
                else:
                    yield {ui.status: _progress_html(step), ui.colorize_button: busy}
        except UploadRejected as exc:
            log_refusal(str(exc))
            yield {ui.status: _refused_html(str(exc)), ui.colorize_button: gr.Button(interactive=True)}
            return
        yield {ui.status: _done_html(batch), ui.batch_state: batch, ui.colorize_button: gr.Button(interactive=True)}

    def api_handler(self):
        """The ``/colorize`` API's function (Gradio finds its progress tracker by the default)."""
        gr = self.gr

        def colorize_for_api(items, model_name, download_format, progress=gr.Progress()):
            try:
                for step in self.run(*self.prepare(items, model_name, download_format)):
                    if isinstance(step, Batch):
                        batch = step
                    else:
                        progress((step.number - 1, step.count), desc=step.describe())
            except UploadRejected as exc:
                log_refusal(str(exc))
                raise gr.Error(str(exc), print_exception=False) from None
            return [str(r.output) for r in batch.results]

        return colorize_for_api

    def check_added(self, items):
        """Refuse, at once, files that Colorize would refuse; the others stay."""
        limits = self.page.limits
        kept, messages = [], []
        for path in self.paths_of(items):
            try:
                check_added_file(path, limits)
                kept.append(path)
            except UploadRejected as exc:
                log_refusal(str(exc))
                messages.append(str(exc))
        if len(kept) > limits.max_files:
            messages.append(f"Only {limits.max_files} photos can be colorized at once; "
                            f"the last {len(kept) - limits.max_files} were left out.")
            kept = kept[: limits.max_files]
        if not messages:
            return self.gr.skip(), self.gr.skip()  # keeps a message the browser wrote for a file it kept back
        return kept, _upload_message_html(messages)


def _upload_column(gr, ui, limits: Limits) -> None:
    """The photos to colorize and the line under them that names refused files."""
    ui.uploads = gr.Gallery(
        label="Photos to colorize",
        type="filepath",
        file_types=["image"],  # the browser refuses other files, naming them
        interactive=True,
        sources=["upload", "clipboard"],
        columns=4,
        fit_columns=False,  # keep thumbnails small even for a single photo
        allow_preview=False,
        height=280,
        object_fit="contain",
        elem_id="uploads",
    )
    limit_js = json.dumps({"bytes": limits.max_bytes, "mb": limits.max_mb, "text": f"{limits.max_mb:g}"})
    ui.upload_message = gr.HTML("", elem_id="upload-message", js_on_load=f"const LIMIT = {limit_js};\n{UPLOAD_JS}")


def _choice_column(gr, ui, limits: Limits, model_names: list[str]) -> None:
    """Model, download format, the Colorize button and the limits."""
    ui.model = gr.Dropdown(
        model_names, value=model_names[0], label="Model", interactive=len(model_names) > 1, elem_id="model",
    )  # fmt: skip
    ui.download_format = gr.Radio(
        list(DOWNLOAD_FORMATS), value="PNG", label="Download format",
        info="PNG is lossless and keeps transparency; JPEG is smaller (quality 95).",
        elem_id="download-format",
    )  # fmt: skip
    ui.colorize_button = gr.Button("Colorize", variant="primary", elem_id="colorize")
    gr.Markdown(
        f"Up to {limits.max_files} photos at a time, each up to {limits.max_mb:g} MB "
        f"and {limits.max_megapixels:g} megapixels.",
        elem_id="limits",
    )


def _result_row(gr, index: int, result: Result) -> None:
    """One result: the before/after slider, its caption and its download."""
    with gr.Row(equal_height=False, elem_classes=["result"]):
        with gr.Column(scale=3):
            gr.ImageSlider(
                value=(str(result.before), str(result.after)),
                label=f"{result.name}: before / after",
                type="filepath",
                interactive=False,
                buttons=["fullscreen"],
                max_height=520,
                elem_id=f"slider-{index}",
                elem_classes=["before-after"],
            )
        with gr.Column(scale=1, min_width=220):
            gr.Markdown(f"**{result.name}**  \n{result.caption()}", elem_classes=["result-caption"])
            gr.DownloadButton(
                f"Download {result.output.name}", value=str(result.output),
                elem_id=f"download-{index}", elem_classes=["result-download"],
            )  # fmt: skip


def _results_column(gr, ui) -> None:
    """The progress line and, once a batch is done, its results."""
    with gr.Column(elem_id="results"):
        ui.status = gr.HTML(
            "", elem_id="progress", js_on_load=f"const STARTING = {json.dumps(STARTING_HTML)};\n{STATUS_JS}"
        )

        @gr.render(inputs=ui.batch_state, triggers=[ui.batch_state.change])  # nothing to render on page load
        def show_results(batch):
            if batch is None:
                return
            if batch.archive is not None:
                gr.DownloadButton("Download all (zip)", value=str(batch.archive), elem_id="download-all")
            for index, result in enumerate(batch.results):
                _result_row(gr, index, result)


def _examples_and_api(gr, ui, page: _Page, model_names: list[str]) -> None:
    """The example thumbnails (when there are examples) and the API's hidden components."""
    ui.example_gallery = None
    if page.examples:
        with gr.Accordion("Examples: click one to colorize it", open=True, elem_id="examples"):
            ui.example_gallery = gr.Gallery(
                value=[str(p) for p in page.examples], show_label=False, columns=6, height="auto",
                allow_preview=False, interactive=False, object_fit="cover", buttons=[], rows=1, fit_columns=False,
                elem_id="example-gallery",
            )  # fmt: skip
    # The API's own inputs and output, never shown: what a gradio_client call sends and gets.
    with gr.Group(visible=False):
        ui.api_photos = gr.Gallery(type="filepath", label="Photos")  # no file_types: tinct names non-images
        ui.api_model = gr.Dropdown(model_names, value=model_names[0], allow_custom_value=True, label="Model")
        ui.api_format = gr.Dropdown(list(DOWNLOAD_FORMATS), value="PNG", allow_custom_value=True, label="Download format")
        ui.api_run = gr.Button("Colorize")
        ui.result_files = gr.File(file_count="multiple", label="Results")


def _connect(gr, ui, handlers: _Handlers, page: _Page) -> None:
    """Wire the events: adding files, Colorize, the API and a click on an example."""
    inputs = [ui.uploads, ui.model, ui.download_format]
    outputs = [ui.status, ui.colorize_button, ui.batch_state]
    enable = (lambda: gr.Button(interactive=True), None, ui.colorize_button)
    ui.uploads.upload(handlers.check_added, ui.uploads, [ui.uploads, ui.upload_message], queue=False,
                      show_progress="hidden", api_visibility="private")  # fmt: skip
    ui.colorize_button.click(
        handlers.colorize_on_page, inputs, outputs, concurrency_id="colorize", show_progress="hidden",
        api_visibility="private",
    ).then(*enable, queue=False, api_visibility="private")  # fmt: skip
    ui.api_run.click(handlers.api_handler(), [ui.api_photos, ui.api_model, ui.api_format], ui.result_files,
                     api_name="colorize", concurrency_id="colorize")  # fmt: skip
    if ui.example_gallery is None:
        return

    def pick_example(event):
        return [str(page.examples[event.index])]

    # Gradio finds the event argument by its annotation; with postponed annotations
    # (``from __future__``) the string "gr.SelectData" would not resolve here.
    pick_example.__annotations__ = {"event": gr.SelectData}
    ui.example_gallery.select(pick_example, None, ui.uploads, queue=False, api_visibility="private").then(
        handlers.colorize_on_page, inputs, outputs, concurrency_id="colorize", show_progress="hidden",
        api_visibility="private",
    ).then(*enable, queue=False, api_visibility="private")  # fmt: skip


def build_app(colorizers: dict, limits: Limits = Limits(), examples: Sequence[Path] = (),
              workspace: Workspace | None = None, hint_model: str | None = "tinct-v2-hints",
              clip_limits=None, threads: int | None = None):
    """The Gradio page: uploads, model and format choice, results with sliders and downloads.

    Args:
        colorizers: ``{name: Colorizer}`` (see :func:`load_colorizers`); the first is preselected.
        limits: upload limits, enforced by :func:`check_uploads` (and on adding a file by
            :func:`check_added_file`).
        examples: example photos shown as one-click thumbnails (section hidden when empty).
        workspace: where results are written (a new temporary folder by default).
        hint_model: the hint model of the *Colour with points* section (loaded on first use,
            or by :func:`warm_up`), or ``None`` for no such section.
        clip_limits: a :class:`tinct.web.clip.ClipLimits` for the *Video clip* section
            (default: ``ClipLimits()``, 20 s and 1280x720).
        threads: CPU threads of the hint model (``None``: all cores).

    The API (``/colorize``, for ``gradio_client``) takes the photos, a model name and a
    download format and returns the full-resolution results; it has its own hidden inputs,
    so that tinct, not Gradio, checks them and words every refusal.
    """
    if not colorizers:
        raise ValueError("build_app needs at least one model")
    from tinct.web.clip import ClipLimits, ClipTab
    from tinct.web.point_tab import HintModel, PointTab

    gr = offline_gradio()
    page = _Page(dict(colorizers), limits, workspace or Workspace(), list(examples),
                 hint_model=HintModel(hint_model, threads) if hint_model else None,
                 clip_limits=clip_limits or ClipLimits())  # fmt: skip
    handlers = _Handlers(gr, page)
    ui = handlers.ui = SimpleNamespace()
    # delete_cache: Gradio's copies of uploads and results go after an hour, and all at shutdown.
    cache_policy = (KEEP_RESULTS_SECONDS, KEEP_RESULTS_SECONDS)  # (check every, delete older than)
    with gr.Blocks(title="tinct", analytics_enabled=False, delete_cache=cache_policy) as app:
        ui.batch_state = gr.State(None)
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                _upload_column(gr, ui, limits)
            with gr.Column(scale=2):
                _choice_column(gr, ui, limits, handlers.model_names)
        _results_column(gr, ui)
        _examples_and_api(gr, ui, page, handlers.model_names)
        _connect(gr, ui, handlers, page)
        if page.hint_model is not None:
            PointTab(gr, page.hint_model, page.workspace.new_request_dir, limits.max_megapixels).build()
        ClipTab(gr, page.video, page.workspace.new_request_dir, page.clip_limits).build()
    app.tinct_page = page  # for tests, for launch()'s allowed paths and for warm_up
    return app


def warm_up(app) -> None:
    """What the first visitor would otherwise wait for, done in the background once the page
    is served (:func:`tinct.cli.serve.run` starts it): the import of matplotlib that Gradio
    makes in the first event it handles, to set its backend (about 0.5 s on a busy machine),
    then one colorized photo (:meth:`_Page.warm_up`), then the hint model's loading."""
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:  # Gradio then skips it too
        pass
    app.tinct_page.warm_up()
    if app.tinct_page.hint_model is not None:
        try:
            app.tinct_page.hint_model.load()
        except Exception as exc:  # reported again, as one line, when the section is used
            print(f"tinct serve: the point hints are unavailable: {exc}", file=sys.stderr, flush=True)


def theme():
    """A theme with the system's own fonts, so the page requests no web fonts."""
    gr = offline_gradio()
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


CSS = """
#results { gap: 8px; }
#progress .html-container, #upload-message .html-container { padding: 0; }
#results:not(:has(.tinct-status)) { display: none; }  /* nothing to show before the first Colorize */
.tinct-status { padding: 10px 12px; border-radius: var(--radius-lg); background: var(--block-background-fill);
  border: 1px solid var(--border-color-primary); }
.tinct-status p { margin: 0 0 6px 0; font-size: var(--text-md); }
.tinct-status[data-state=done] p, .tinct-status[data-state=refused] p { margin: 0; }
.tinct-status[data-state=refused] { border-color: var(--error-border-color, #ef4444);
  background: var(--error-background-fill, #fef2f2); }
.tinct-status[data-state=refused] p { color: var(--error-text-color, #b91c1c); }
.tinct-status progress { display: block; width: 100%; height: 10px; border: 0; border-radius: 5px; overflow: hidden;
  background: var(--neutral-200); appearance: none; }
.tinct-status progress::-webkit-progress-bar { background: var(--neutral-200); }
.tinct-status progress::-webkit-progress-value { background: var(--color-accent); }
.tinct-status progress::-moz-progress-bar { background: var(--color-accent); }
#upload-message:not(:has(li)) { display: none; }  /* takes no room until there is something to say */
.tinct-upload-refusals { margin: 6px 0 0 0; padding-left: 1.2em; color: var(--error-text-color, #b91c1c); }
.result { border-top: 1px solid var(--border-color-primary); padding-top: 8px; }
/* The slider shows the first image (before) left of the handle, the second (after) right of it;
   the labels sit above the slider's own layer (z-index 10). */
.before-after .slider-wrap { position: relative; }
.before-after .slider-wrap::before, .before-after .slider-wrap::after {
  position: absolute; bottom: 8px; z-index: 11; padding: 1px 8px; border-radius: 999px; pointer-events: none;
  font-size: var(--text-sm); color: #fff; background: rgba(0, 0, 0, 0.6); }
.before-after .slider-wrap::before { content: "Before"; left: 8px; }
.before-after .slider-wrap::after { content: "After"; right: 8px; }
/* While a request runs, an example click would start a second one: examples wait too. */
body:has(#colorize:disabled) #examples { pointer-events: none; opacity: 0.6; }
@media (max-width: 640px) {  /* a phone: the Colorize button within the first screen */
  #intro h1 { font-size: var(--text-xl); }
  #uploads { height: 180px !important; }
}
#example-gallery .grid-wrap { min-height: 0 !important; height: auto !important; }
#points-result img { cursor: crosshair; }
/* Gradio's hover style of a radio comes after its checked style and wins: the chosen option
   lost its circle under the mouse. */
input[type=radio]:checked:hover:not([disabled]) {
  background-color: var(--checkbox-background-color-selected);
  border-color: var(--checkbox-border-color-selected);
  background-image: var(--radio-circle);
}
.tinct-points-message { margin: 4px 0 0 0; }
.tinct-points-message[data-state=refused] { color: var(--error-text-color, #b91c1c); }
"""


def launch(app, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 1, queue_size: int = 64,
           block: bool = True):
    """Serve ``app`` (from :func:`build_app`) on ``host:port``; returns Gradio's ``(app, local_url, share_url)``.

    Requests queue and run ``concurrency`` at a time (one uses all the CPU cores already).
    The browser does not send a file over the per-photo byte limit at all; any client that
    does is stopped by Gradio at 4x the limit, before the file reaches disk, and below that
    gets :func:`check_uploads`'s message. The footer (API and settings links) is not shown:
    the API is described in docs/web.md, and Gradio's API page would ask for an MCP schema
    the server does not offer.
    """
    page = app.tinct_page
    app.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        show_error=True,
        quiet=True,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        footer_links=[],
        max_file_size=4 * page.limits.max_bytes,
        allowed_paths=[str(p.parent) for p in page.examples[:1]] + [str(page.workspace.root)],
        prevent_thread_lock=not block,
        theme=theme(),
        css=CSS,
    )
