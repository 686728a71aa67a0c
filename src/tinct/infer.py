"""Colorize photos at full resolution.

The model sees each photo at its working resolution (an aspect-preserving resize, padded
by edge replication to a square, never stretched) and predicts ab there. That ab is cropped,
upsampled to the photo's full size and joined to the photo's *own* full-resolution
lightness; colours outside sRGB have their chroma reduced (hue and lightness kept) to fit. The output therefore has the
input's size and lightness; only chroma comes from the network.

>>> import numpy as np, tinct
>>> rgb = tinct.colorize(np.full((40, 60), 128, dtype=np.uint8))
>>> rgb.shape, rgb.dtype
((40, 60, 3), dtype('uint8'))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tinct.color import lab_to_rgb_uint8, prepare_gamut_tables
from tinct.io import Photo, photo_from_array, read_photo

__all__ = ["Colorizer", "colorize", "resize_and_pad", "default_threads"]


def default_threads() -> int:
    """Torch threads for inference: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class _Placement:
    """Where a photo sits inside the padded square: the content box ``(height, width)``."""

    height: int
    width: int


def resize_and_pad(lightness: torch.Tensor, size: int) -> tuple[torch.Tensor, _Placement]:
    """Resize ``(1, 1, H, W)`` so its long side is ``size`` and pad to ``size x size``.

    Downscaling uses area averaging (no aliasing); padding replicates the edges so the
    network sees no artificial black border. Returns the square and the content box.
    """
    h, w = lightness.shape[-2:]
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    mode = "area" if scale < 1 else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    resized = F.interpolate(lightness, size=(new_h, new_w), mode=mode, **kwargs)
    padded = F.pad(resized, (0, size - new_w, 0, size - new_h), mode="replicate")
    return padded, _Placement(new_h, new_w)


class Colorizer:
    """A loaded model ready to colorize many photos.

    Args:
        model: shipped weights name (``"default"``), a checkpoint path, or a model object.
        threads: torch threads (default: all cores available to this process).
        batch_size: photos per forward pass in :meth:`colorize_many`.
    """

    def __init__(self, model="default", threads: int | None = None, batch_size: int = 4):
        from tinct.models import load

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.threads = threads or default_threads()
        torch.set_num_threads(self.threads)
        self.model = load(model) if isinstance(model, (str, os.PathLike)) else model
        if isinstance(self.model, torch.nn.Module):
            self.model.eval()
        self.batch_size = batch_size
        self.input_size = int(self.model.config.input_size)
        prepare_gamut_tables()  # one-time set-up here, not inside the first photo's time

    @property
    def name(self) -> str:
        """The weights' name: file stem, or ``run/best`` for a run folder's generic file names."""
        path = getattr(self.model, "checkpoint_path", None)
        if path is None:
            return self.model.name
        path = Path(path)
        if path.stem in ("best", "last", "model") and path.parent.name:
            return f"{path.parent.name}/{path.stem}"
        return path.stem

    def working_squares(self, photos: Sequence[Photo]) -> tuple[torch.Tensor, list[_Placement]]:
        """The photos' lightness at working resolution: ``(B, 1, S, S)`` and each content box."""
        squares, boxes = [], []
        for photo in photos:
            l = torch.from_numpy(np.ascontiguousarray(photo.lightness, dtype=np.float32))[None, None]
            square, box = resize_and_pad(l, self.input_size)
            squares.append(square)
            boxes.append(box)
        return torch.cat(squares), boxes

    def crop_to_content(self, ab: torch.Tensor, boxes: Sequence[_Placement]) -> list[torch.Tensor]:
        """Cut each photo's content box out of a batch of ab maps ``(B, 2, h, w)``."""
        scale = ab.shape[-1] / self.input_size
        out = []
        for i, box in enumerate(boxes):
            h = max(1, round(box.height * scale))
            w = max(1, round(box.width * scale))
            out.append(ab[i, :, :h, :w])
        return out

    def predict_ab_batch(self, photos: Sequence[Photo]) -> list[torch.Tensor]:
        """ab ``(2, h, w)`` at working resolution (content box only) for each photo."""
        squares, boxes = self.working_squares(photos)
        with torch.inference_mode():
            ab = self.model.predict_ab(squares)  # (B, 2, h, w)
        return self.crop_to_content(ab, boxes)

    def compose(self, photo: Photo, ab: torch.Tensor) -> np.ndarray:
        """Join low-resolution ab ``(2, h, w)`` to the photo's full-resolution L -> uint8 RGB."""
        height, width = photo.lightness.shape
        with torch.inference_mode():
            ab_full = F.interpolate(ab[None].float(), size=(height, width), mode="bilinear", align_corners=False)[0]
        a, b = ab_full.numpy()
        return lab_to_rgb_uint8(photo.lightness, a, b, threads=self.threads)

    def colorize_photo(self, photo: Photo) -> np.ndarray:
        """A :class:`~tinct.io.Photo` -> uint8 RGB ``(H, W, 3)`` at full resolution."""
        return self.compose(photo, self.predict_ab_batch([photo])[0])

    def __call__(self, image) -> np.ndarray:
        """Colorize a PIL image, a NumPy array (gray, RGB or RGBA) or an image file path.

        Returns uint8 RGB ``(H, W, 3)``, or RGBA ``(H, W, 4)`` when the input had alpha.
        """
        if isinstance(image, (str, os.PathLike)):
            photo = read_photo(image)
        elif isinstance(image, Photo):
            photo = image
        else:
            photo = photo_from_array(image)
        rgb = self.colorize_photo(photo)
        if photo.alpha is not None:
            return np.dstack([rgb, photo.alpha])
        return rgb

    def colorize_many(self, photos: Iterable[Photo]) -> Iterable[np.ndarray]:
        """Colorize photos in batches of ``batch_size``; yields uint8 RGB in order."""
        batch: list[Photo] = []
        for photo in photos:
            batch.append(photo)
            if len(batch) == self.batch_size:
                yield from (self.compose(p, ab) for p, ab in zip(batch, self.predict_ab_batch(batch)))
                batch = []
        if batch:
            yield from (self.compose(p, ab) for p, ab in zip(batch, self.predict_ab_batch(batch)))


_DEFAULT: dict[str, Colorizer] = {}


def colorize(image, model="default") -> np.ndarray:
    """Colorize one image with a cached :class:`Colorizer` (see :meth:`Colorizer.__call__`)."""
    key = str(model) if isinstance(model, (str, os.PathLike)) else None
    if key is None:
        return Colorizer(model)(image)
    if key not in _DEFAULT:
        _DEFAULT[key] = Colorizer(model)
    return _DEFAULT[key](image)
