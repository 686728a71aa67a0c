"""Colorize photos at full resolution.

The model sees each photo at its working resolution (an aspect-preserving resize, padded
by edge replication to a square, never stretched) and predicts ab there. That ab is cropped,
upsampled to the photo's full size and joined to the photo's *own* full-resolution
lightness; colours outside sRGB have their chroma reduced (hue and lightness kept) to fit. The output therefore has the
input's size and lightness; only chroma comes from the network.

The network runs in ONNX Runtime when the model has an export (the shipped models do; see
:mod:`tinct.engine`) and in torch otherwise; everything around it is NumPy, so colorizing
with an export never imports torch. The full-resolution result is composed in strips of
rows: besides the photo's lightness and the output, memory holds a few strips, whatever
the photo's size.

>>> import numpy as np, tinct
>>> rgb = tinct.colorize(np.full((40, 60), 128, dtype=np.uint8))
>>> rgb.shape, rgb.dtype
((40, 60, 3), dtype('uint8'))
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from tinct.color import lab_to_rgb_uint8, prepare_gamut_tables
from tinct.engine import open_model, torch_predict_ab
from tinct.errors import ModelError, ModelNotFoundError, TinctError
from tinct.io import Photo, photo_from_array, read_photo

__all__ = ["Colorizer", "colorize", "open_model_for_inference", "model_errors", "resize_and_pad", "upsample_bilinear", "default_threads"]

STRIP_PIXELS = 1 << 16  # pixels per composed strip: its temporaries stay in the CPU cache


def default_threads() -> int:
    """Threads for inference: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class _Placement:
    """Where a photo sits inside the padded square: the content box ``(height, width)``."""

    height: int
    width: int


def _area_rows(x: np.ndarray, size: int) -> np.ndarray:
    """Average ``x (n, ...)`` down to ``(size, ...)`` rows with torch's ``area`` windows
    (adaptive average pooling: row i averages ``floor(i n / size) .. ceil((i + 1) n / size)``)."""
    n = x.shape[0]
    out = np.empty((size, *x.shape[1:]), dtype=np.float32)
    for i in range(size):
        start, stop = (i * n) // size, -((-(i + 1) * n) // size)
        out[i] = x[start:stop].mean(axis=0, dtype=np.float64)
    return out


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weight of linear interpolation from ``n_in`` to ``n_out`` samples
    with pixel centres aligned (torch's ``align_corners=False``): ``out = x[i0] (1 - w) + x[i1] w``.
    The source position is torch's float32 one (scale rounded to float32, then one rounding
    of ``scale (i + 0.5) - 0.5`` as its fused multiply-add gives), so the weights are torch's."""
    f32 = np.float32
    scale = np.float64(f32(n_in) / f32(n_out))
    source = np.maximum(scale * (np.arange(n_out) + 0.5) - 0.5, 0.0).astype(f32)
    i0 = np.minimum(source.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, source - i0.astype(f32)


def _lerp(x: np.ndarray, taps: tuple[np.ndarray, np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    i0, i1, w = taps
    shape = [1] * x.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - w) + np.take(x, i1, axis=axis) * w


def upsample_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``x (..., h, w)`` to ``(..., height, width)`` (``align_corners=False``,
    as torch's ``F.interpolate(mode="bilinear")``, to float rounding)."""
    x = np.asarray(x, dtype=np.float32)
    x = _lerp(x, _linear_taps(x.shape[-1], width), axis=x.ndim - 1)
    return _lerp(x, _linear_taps(x.shape[-2], height), axis=x.ndim - 2)


def resize_and_pad(lightness: np.ndarray, size: int) -> tuple[np.ndarray, _Placement]:
    """Resize ``(H, W)`` so its long side is ``size`` and pad to ``(size, size)`` float32.

    Downscaling averages areas (no aliasing; torch's ``area`` mode), upscaling is bilinear;
    padding replicates the edges so the network sees no artificial black border. Returns
    the square and the content box.
    """
    lightness = np.asarray(lightness, dtype=np.float32)
    if lightness.ndim != 2 or min(lightness.shape) < 1:
        raise ValueError(f"expected lightness of shape (H, W), got {lightness.shape}")
    h, w = lightness.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    if scale < 1:
        resized = _area_rows(_area_rows(lightness, new_h).T, new_w).T
    else:
        resized = upsample_bilinear(lightness, new_h, new_w)
    padded = np.pad(resized, ((0, size - new_h), (0, size - new_w)), mode="edge")
    return np.ascontiguousarray(padded, dtype=np.float32), _Placement(new_h, new_w)


@contextmanager
def model_errors() -> Iterator[None]:
    """Inside, opening a model fails only with a :class:`~tinct.errors.TinctError`.

    The checkpoint and export readers raise ``FileNotFoundError`` (a path that does not
    exist), ``ValueError`` (a damaged or foreign file, an export that does not match its
    weights, an engine that cannot run the model) and ``TypeError`` (a stored config the
    family does not accept); all of them are the user's to fix, so they leave as
    :class:`~tinct.errors.ModelNotFoundError` / :class:`~tinct.errors.ModelError` with the
    same one-line message. An unknown name already is a TinctError (``UnknownModelError``).
    """
    try:
        yield
    except TinctError:
        raise
    except FileNotFoundError as exc:
        raise ModelNotFoundError(str(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise ModelError(str(exc)) from exc


def open_model_for_inference(model="default", engine: str = "auto", threads: int = 1) -> tuple:
    """:func:`tinct.engine.open_model` (the model, the engine that runs it and its checkpoint's
    :class:`~tinct.models.CheckpointInfo` or None), failing only
    with a :class:`~tinct.errors.TinctError` (:func:`model_errors`)."""
    with model_errors():
        return open_model(model, engine, threads)


def _as_photo(image) -> Photo:
    if isinstance(image, Photo):
        return image
    if isinstance(image, (str, os.PathLike)):
        return read_photo(image)
    return photo_from_array(image)


class Colorizer:
    """A loaded model ready to colorize many photos.

    Args:
        model: shipped weights name (``"default"``), a checkpoint path, an ``.onnx`` export,
            or a model object.
        threads: CPU threads (default: all cores available to this process).
        batch_size: photos per network run in :meth:`colorize_many`.
        engine: ``"auto"`` (ONNX Runtime when the model has a current export, else torch),
            ``"onnx"`` or ``"torch"``; see :func:`tinct.engine.open_model`.

    Raises :class:`~tinct.errors.ModelError` (a ``ValueError``; ``ModelNotFoundError`` is a
    ``FileNotFoundError`` too) or ``UnknownModelError`` when the model cannot be opened.

    Attributes:
        model: the torch/NumPy model (engine ``"torch"``) or :class:`tinct.engine.OnnxModel`.
        engine: ``"onnx"`` or ``"torch"``, the engine in use.
        checkpoint: the :class:`~tinct.models.CheckpointInfo` of the weights (None for a
            model object).
    """

    def __init__(self, model="default", threads: int | None = None, batch_size: int = 4, engine: str = "auto"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.threads = threads or default_threads()
        self.model, self.engine, self.checkpoint = open_model_for_inference(model, engine, self.threads)
        if self.model.backend == "torch":  # an nn.Module (ModelCapabilities); NumPy and ONNX models have no modes
            self.model.eval()
        self.batch_size = batch_size
        self.input_size = int(self.model.config.input_size)
        prepare_gamut_tables()  # one-time set-up here, not inside the first photo's time

    @property
    def name(self) -> str:
        """The weights' name: file stem, or ``run/best`` for a run folder's generic file names."""
        if self.checkpoint is None:
            return self.model.name
        path = self.checkpoint.path
        if path.stem in ("best", "last", "model") and path.parent.name:
            return f"{path.parent.name}/{path.stem}"
        return path.stem

    def working_squares(self, photos: Sequence[Photo]) -> tuple[np.ndarray, list[_Placement]]:
        """The photos' lightness at working resolution: float32 ``(B, 1, S, S)`` and each content box."""
        squares, boxes = [], []
        for photo in photos:
            square, box = resize_and_pad(photo.lightness, self.input_size)
            squares.append(square)
            boxes.append(box)
        return np.stack(squares)[:, None], boxes

    def crop_to_content(self, ab, boxes: Sequence[_Placement]) -> list:
        """Cut each photo's content box out of a batch of ab maps ``(B, 2, h, w)``."""
        scale = ab.shape[-1] / self.input_size
        out = []
        for i, box in enumerate(boxes):
            h = max(1, round(box.height * scale))
            w = max(1, round(box.width * scale))
            out.append(ab[i, :, :h, :w])
        return out

    def predict_squares(self, squares: np.ndarray) -> np.ndarray:
        """Run the network (and decoding): ``(B, 1, S, S)`` L -> ``(B, 2, h, w)`` ab, float32."""
        if self.engine == "onnx":
            return self.model.predict_ab(squares)
        return torch_predict_ab(self.model, squares)

    def predict_ab_batch(self, photos: Sequence[Photo]) -> list[np.ndarray]:
        """ab ``(2, h, w)`` at working resolution (content box only) for each photo."""
        squares, boxes = self.working_squares(photos)
        return self.crop_to_content(self.predict_squares(squares), boxes)

    def compose(self, photo: Photo, ab) -> np.ndarray:
        """Join low-resolution ab ``(2, h, w)`` to the photo's full-resolution L -> uint8 RGB.

        The ab is upsampled bilinearly (``align_corners=False``) and converted strip by strip
        of rows on ``threads`` threads, so temporaries stay a few MB whatever the photo's size.
        """
        lightness = photo.lightness
        height, width = lightness.shape
        ab = np.asarray(ab, dtype=np.float32)
        if ab.ndim != 3 or ab.shape[0] != 2:
            raise ValueError(f"expected ab of shape (2, h, w), got {ab.shape}")
        columns = _lerp(ab, _linear_taps(ab.shape[-1], width), axis=2)  # (2, h, W)
        # Each source row and its step to the next: an output row is row + step * weight.
        steps = np.diff(columns, axis=1, append=columns[:, -1:])
        row_index, _, row_weight = _linear_taps(ab.shape[-2], height)
        out = np.empty((height, width, 3), dtype=np.uint8)
        rows = max(1, STRIP_PIXELS // width)

        def strip(start: int) -> None:
            stop = min(start + rows, height)
            index, weight = row_index[start:stop], row_weight[start:stop, None]
            a, b = columns[:, index] + steps[:, index] * weight  # (2, rows, W)
            out[start:stop] = lab_to_rgb_uint8(lightness[start:stop], a, b)

        starts = range(0, height, rows)
        if self.threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(min(self.threads, len(starts))) as pool:
                list(pool.map(strip, starts))
        else:
            for start in starts:
                strip(start)
        return out

    def colorize_photo(self, photo: Photo) -> np.ndarray:
        """A :class:`~tinct.io.Photo` -> uint8 RGB ``(H, W, 3)`` at full resolution."""
        return self.compose(photo, self.predict_ab_batch([photo])[0])

    def __call__(self, image, hints=None, reference=None, reference_match: str | None = None) -> np.ndarray:
        """Colorize a PIL image, a NumPy array (gray, RGB or RGBA), a Photo or an image file path.

        ``hints`` (a hint model only, e.g. ``tinct-v2-hints``): point hints, as
        :class:`tinct.hints.Hint` objects, ``{"x", "y", "color"}`` dicts, ``(x, y, color)``
        tuples or a hints JSON file; positions in the photo's full-resolution pixels.
        ``reference``: a colour photo (path, PIL image or uint8 RGB array) whose colours guide
        the whole result; ``reference_match`` says what else it sets (None: the default,
        :data:`tinct.hints.REFERENCE_MATCH`, its colours' mean and spread and its colourfulness;
        :func:`tinct.hints.match_reference`). Returns uint8 RGB
        ``(H, W, 3)``, or RGBA ``(H, W, 4)`` when the input had alpha.
        """
        photo = _as_photo(image)
        if hints is None and reference is None:
            rgb = self.colorize_photo(photo)
        else:
            from tinct.hints import REFERENCE_MATCH, as_hints, colorize_with_hints, reference_rgb

            points, size, source = as_hints(hints)
            match = REFERENCE_MATCH if reference_match is None else reference_match
            rgb = colorize_with_hints(self, photo, points, reference_rgb(reference), size, source, match)
        if photo.alpha is not None:
            return np.dstack([rgb, photo.alpha])
        return rgb

    def colorize_many(self, images: Iterable) -> Iterable[np.ndarray]:
        """Colorize photos in batches of ``batch_size``; yields uint8 RGB ``(H, W, 3)`` in order.

        Each item is anything :meth:`__call__` takes (a :class:`~tinct.io.Photo`, a NumPy
        array, a PIL image or a file path). Alpha is not attached here (it is
        ``photo.alpha`` of :func:`tinct.io.read_photo`); :meth:`__call__` attaches it.
        """
        batch: list[Photo] = []
        for image in images:
            batch.append(_as_photo(image))
            if len(batch) == self.batch_size:
                yield from (self.compose(p, ab) for p, ab in zip(batch, self.predict_ab_batch(batch)))
                batch = []
        if batch:
            yield from (self.compose(p, ab) for p, ab in zip(batch, self.predict_ab_batch(batch)))


_DEFAULT: dict[tuple[str, str], Colorizer] = {}


def colorize(image, model="default", engine: str = "auto", hints=None, reference=None,
             reference_match: str | None = None) -> np.ndarray:
    """Colorize one image with a cached :class:`Colorizer` (see :meth:`Colorizer.__call__`).

    With ``hints`` or a ``reference`` photo, ``model="default"`` means the shipped hint model
    (:data:`tinct.hints.HINT_MODEL`), run in torch.
    """
    if hints is not None or reference is not None:
        from tinct.hints import HINT_MODEL

        model = HINT_MODEL if isinstance(model, str) and model == "default" else model
        engine = "torch"
    if not isinstance(model, (str, os.PathLike)):
        return Colorizer(model, engine=engine)(image, hints, reference, reference_match)
    key = (str(model), engine)
    if key not in _DEFAULT:
        _DEFAULT[key] = Colorizer(model, engine=engine)
    return _DEFAULT[key](image, hints, reference, reference_match)
