"""The local web page behind ``tinct serve``: drop gray photos in, take colour photos out.

The page is a thin Gradio layer over plain functions that need no browser and no Gradio:

- :func:`check_uploads` enforces the limits (file count, bytes, megapixels, "is it an image")
  and raises :class:`UploadRejected` with one line that names the offending file;
- :func:`colorize_file` colorizes one uploaded file exactly as ``tinct colorize`` does
  (:func:`tinct.io.read_photo` -> :meth:`tinct.Colorizer.colorize_photo` ->
  :func:`tinct.io.write_image`, alpha kept), so the page and the CLI give identical pixels;
- :func:`zip_results` packs several results into one download.

:func:`build_app` arranges these in a ``gradio.Blocks`` page and :func:`launch` serves it on
the local machine only, with nothing fetched from the internet (no analytics, no share
link, no web fonts).

>>> limits = Limits(max_megapixels=40, max_mb=30, max_files=20)
>>> limits.max_bytes
31457280
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from tinct.color import lightness_to_gray, to_uint8
from tinct.io import ImageReadError, read_photo, write_image

__all__ = [
    "DOWNLOAD_FORMATS",
    "Limits",
    "Result",
    "UploadRejected",
    "Workspace",
    "build_app",
    "check_uploads",
    "colorize_file",
    "find_examples",
    "launch",
    "load_colorizers",
    "zip_results",
]

# Download formats offered on the page: label -> file suffix.
DOWNLOAD_FORMATS = {"PNG": ".png", "JPEG": ".jpg"}
PREVIEW_SIDE = 1600  # long side of the before/after previews shown in the page (pixels)
RESULT_SUFFIX = "_color"  # as `tinct colorize` names outputs written beside their input
KEEP_RESULTS_SECONDS = 3600  # results older than this are deleted from the server's disk


class UploadRejected(ValueError):
    """An upload breaks a limit or is not a readable image; the message is one line for the user."""


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
    paths = [Path(p) for p in paths]
    if not paths:
        raise UploadRejected("No photos to colorize: drop, paste or upload one first.")
    if len(paths) > limits.max_files:
        raise UploadRejected(
            f"Too many photos at once: {len(paths)} given, the limit is {limits.max_files}. "
            "Colorize them in smaller groups."
        )
    for path in paths:
        name = display_name(path)
        try:
            size = path.stat().st_size
        except OSError:
            raise UploadRejected(f"{name}: the upload is missing on the server; add it again.") from None
        if size > limits.max_bytes:
            raise UploadRejected(
                f"{name}: {_over(size / 2**20, limits.max_mb)} MB is over the {limits.max_mb:g} MB limit per photo."
            )
        if size == 0:
            raise UploadRejected(f"{name}: the file is empty.")
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
            raise UploadRejected(
                f"{name}: not an image tinct can read (use JPEG, PNG, WebP, TIFF or BMP)."
            ) from None
        megapixels = width * height / 1e6
        if megapixels > limits.max_megapixels:
            raise UploadRejected(
                f"{name}: {width}x{height} is {_over(megapixels, limits.max_megapixels)} megapixels, "
                f"over the {limits.max_megapixels:g} megapixel limit."
            )
    return paths


@dataclass
class Result:
    """One colorized upload.

    Attributes:
        name: the uploaded file's name.
        output: the full-resolution result on the server.
        before, after: previews for the page (same size, long side <= ``PREVIEW_SIDE``):
            the lightness the model saw, shown as gray, and the result; None when not asked for.
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
        return f"**{count} photo{'s' if count != 1 else ''}** colorized with `{self.model}` in {total:.2f} s."


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


def _write_previews(lightness: np.ndarray, rgb: np.ndarray, before: Path, after: Path) -> None:
    """Downscaled gray-vs-colour previews of one result (JPEG, same size)."""
    height, width = lightness.shape
    scale = min(1.0, PREVIEW_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small_l = np.array(Image.fromarray(lightness.astype(np.float32), "F").resize(size, Image.Resampling.BOX))
    gray = to_uint8(lightness_to_gray(small_l))
    Image.fromarray(gray, "L").convert("RGB").save(before, quality=90)
    Image.fromarray(rgb, "RGB").resize(size, Image.Resampling.LANCZOS).save(after, quality=90)


def colorize_file(colorizer, path: str | os.PathLike, out_dir: str | os.PathLike, suffix: str = ".png",
                  taken: set[str] | None = None, previews: bool = False) -> Result:
    """Colorize one uploaded file into ``out_dir``, exactly as ``tinct colorize`` would.

    Args:
        colorizer: a :class:`tinct.Colorizer`.
        path: the uploaded file (any format :func:`tinct.io.read_photo` reads).
        out_dir: folder for the result (created if missing).
        suffix: ``".png"`` (lossless, keeps alpha) or ``".jpg"`` (quality 95, as the CLI).
        taken: result names already used in this request (updated), to keep names unique.
        previews: also write the page's before/after previews (hidden files in ``out_dir``).

    Raises:
        UploadRejected: the file cannot be decoded (the message names it).
    """
    path, out_dir = Path(path), Path(out_dir)
    name = display_name(path)
    output = out_dir / result_name(name, suffix, taken if taken is not None else set())
    start = time.perf_counter()
    try:
        photo = read_photo(path)
    except ImageReadError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise UploadRejected(f"{name}: {reason}") from None
    rgb = colorizer.colorize_photo(photo)  # (H, W, 3) uint8, full resolution
    write_image(output, rgb, alpha=photo.alpha, overwrite=True)
    seconds = time.perf_counter() - start
    before = after = None
    if previews:
        preview_id = uuid.uuid4().hex[:8]
        before, after = out_dir / f".before-{preview_id}.jpg", out_dir / f".after-{preview_id}.jpg"
        _write_previews(photo.lightness, rgb, before, after)
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
    """Example photos: ``folder`` if given, else the repository's ``examples/`` when present."""
    from tinct.io import IMAGE_SUFFIXES

    if folder is None:
        folder = Path(__file__).resolve().parents[2] / "examples"  # src/tinct/app.py -> repo root
    folder = Path(folder)
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


def _offline_gradio():
    """Import Gradio with its telemetry off; nothing in the page may reach the internet."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import gradio

    return gradio


INTRO = """\
# tinct: colour for black-and-white photos
Drop, paste or upload gray photos (several at once), pick a model and press **Colorize**.
Each result appears beside its input with a before/after slider; downloads are full resolution.
Everything runs on this computer: photos never leave it.
"""


def build_app(colorizers: dict, limits: Limits = Limits(), examples: Sequence[Path] = (),
              workspace: Workspace | None = None):
    """The Gradio page: uploads, model and format choice, results with sliders and downloads.

    Args:
        colorizers: ``{name: Colorizer}`` (see :func:`load_colorizers`); the first is preselected.
        limits: upload limits, enforced by :func:`check_uploads`.
        examples: example photos shown as one-click thumbnails (section hidden when empty).
        workspace: where results are written (a new temporary folder by default).
    """
    if not colorizers:
        raise ValueError("build_app needs at least one model")
    gr = _offline_gradio()
    page = _Page(dict(colorizers), limits, workspace or Workspace(), list(examples))
    model_names = list(page.colorizers)

    def colorize(items, model_name, download_format, progress=gr.Progress()):
        paths = [item[0] if isinstance(item, (tuple, list)) else item for item in (items or [])]
        try:
            paths = check_uploads(paths, page.limits)
            if model_name not in page.colorizers:
                raise UploadRejected(f"Unknown model {model_name!r}; choose one of {', '.join(model_names)}.")
            if download_format not in DOWNLOAD_FORMATS:
                choices = " or ".join(DOWNLOAD_FORMATS)
                raise UploadRejected(f"Unknown download format {download_format!r}; choose {choices}.")
            colorizer = page.colorizers[model_name]
            suffix = DOWNLOAD_FORMATS[download_format]
            out_dir = page.workspace.new_request_dir()
            taken: set[str] = set()
            results = []
            for index, path in enumerate(paths):
                progress((index, len(paths)), desc=f"Colorizing {display_name(path)}")
                try:
                    results.append(colorize_file(colorizer, path, out_dir, suffix, taken, previews=True))
                except UploadRejected:
                    raise
                except Exception as exc:  # an unexpected failure: a line for the user, the trace for the log
                    traceback.print_exc(file=sys.stderr)
                    raise UploadRejected(f"{display_name(path)}: could not be colorized ({type(exc).__name__}: {exc}).")
        except UploadRejected as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        archive = zip_results([r.output for r in results], out_dir / "tinct-results.zip") if len(results) > 1 else None
        return Batch(results, archive, colorizer.name), [str(r.output) for r in results]

    # delete_cache: Gradio's copies of uploads and results go after an hour, and all at shutdown.
    cache_policy = (KEEP_RESULTS_SECONDS, KEEP_RESULTS_SECONDS)  # (check every, delete older than)
    with gr.Blocks(title="tinct", analytics_enabled=False, delete_cache=cache_policy) as app:
        batch_state = gr.State(None)
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                uploads = gr.Gallery(
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
            with gr.Column(scale=2):
                model = gr.Dropdown(
                    model_names, value=model_names[0], label="Model", interactive=len(model_names) > 1,
                    elem_id="model",
                )
                download_format = gr.Radio(
                    list(DOWNLOAD_FORMATS), value="PNG", label="Download format",
                    info="PNG is lossless and keeps transparency; JPEG is smaller (quality 95).",
                    elem_id="download-format",
                )
                button = gr.Button("Colorize", variant="primary", elem_id="colorize")
                gr.Markdown(
                    f"Up to {limits.max_files} photos at a time, each up to {limits.max_mb:g} MB "
                    f"and {limits.max_megapixels:g} megapixels.",
                    elem_id="limits",
                )
        if page.examples:
            with gr.Accordion("Examples: click one to colorize it", open=True, elem_id="examples"):
                example_gallery = gr.Gallery(
                    value=[str(p) for p in page.examples], show_label=False, columns=6, height="auto",
                    allow_preview=False, interactive=False, object_fit="cover", buttons=[], rows=1,
                    elem_id="example-gallery",
                )
        # The full-resolution results as files: hidden on the page (each result has its own
        # download button below), but it is what an API client (gradio_client) receives.
        result_files = gr.File(file_count="multiple", visible=False, label="Results")

        @gr.render(inputs=batch_state)
        def show_results(batch):
            if batch is None:
                return
            with gr.Row(elem_id="summary-row"):
                gr.Markdown(batch.summary(), elem_id="summary")
                if batch.archive is not None:
                    gr.DownloadButton("Download all (zip)", value=str(batch.archive), elem_id="download-all")
            for index, result in enumerate(batch.results):
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
                        )
                    with gr.Column(scale=1, min_width=220):
                        gr.Markdown(f"**{result.name}**  \n{result.caption()}", elem_classes=["result-caption"])
                        gr.DownloadButton(
                            f"Download {result.output.name}", value=str(result.output),
                            elem_id=f"download-{index}", elem_classes=["result-download"],
                        )

        outputs = [batch_state, result_files]
        inputs = [uploads, model, download_format]
        button.click(colorize, inputs, outputs, api_name="colorize", concurrency_id="colorize")
        if page.examples:
            def pick_example(event):
                return [str(page.examples[event.index])]

            # Gradio finds the event argument by its annotation; with postponed annotations
            # (``from __future__``) the string "gr.SelectData" would not resolve here.
            pick_example.__annotations__ = {"event": gr.SelectData}

            example_gallery.select(pick_example, None, uploads, queue=False, api_visibility="private").then(
                colorize, inputs, outputs, concurrency_id="colorize", api_visibility="private"
            )
    app.tinct_page = page  # for tests and for launch()'s allowed paths
    return app


def theme():
    """A theme with the system's own fonts, so the page requests no web fonts."""
    gr = _offline_gradio()
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


CSS = """
.result { border-top: 1px solid var(--border-color-primary); padding-top: 8px; }
#example-gallery .grid-wrap { min-height: 0 !important; height: auto !important; }
"""


def launch(app, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 1, queue_size: int = 64,
           block: bool = True):
    """Serve ``app`` (from :func:`build_app`) on ``host:port``; returns Gradio's ``(app, local_url, share_url)``.

    Requests queue and run ``concurrency`` at a time (one uses all the CPU cores already).
    Uploads larger than 4x the per-photo limit are refused by Gradio before they reach disk;
    smaller ones that break a limit get :func:`check_uploads`'s message.
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
        footer_links=["api"],
        max_file_size=4 * page.limits.max_bytes,
        allowed_paths=[str(p.parent) for p in page.examples[:1]] + [str(page.workspace.root)],
        prevent_thread_lock=not block,
        theme=theme(),
        css=CSS,
    )
