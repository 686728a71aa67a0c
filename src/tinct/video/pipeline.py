"""Colorizing a stream of frames, and a clip file into a clip file.

Each frame's lightness goes through the network in batches (:class:`tinct.infer.Colorizer`,
ONNX Runtime for the shipped models), its ab is made temporally consistent by a
:class:`~tinct.video.temporal.TemporalFilter` (unless ``temporal=None``: the per-frame
baseline), and is joined to the frame's own full-resolution lightness, exactly as a photo
is. A colour frame is read for its lightness only.

Memory holds one batch of frames (and the filter's previous frame at working resolution),
whatever the clip's length.

>>> from tinct.video import VideoColorizer                        # doctest: +SKIP
>>> VideoColorizer().colorize_file("clip.mp4", "clip_color.mp4")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from tinct.video.temporal import FrameNote, TemporalConfig, TemporalFilter

__all__ = ["VideoColorizer", "ColorizedFrame", "ClipResult"]


@dataclass
class ColorizedFrame:
    """One colorized frame: uint8 RGB ``(H, W, 3)``, the per-frame result when asked for
    (``per_frame``), and what the temporal filter did (``note``; ``None`` without it)."""

    rgb: np.ndarray
    note: FrameNote | None = None
    per_frame: np.ndarray | None = None


@dataclass
class ClipResult:
    """What :meth:`VideoColorizer.colorize_file` did: frames written, cuts detected (frame indices)."""

    source: Path
    target: Path
    frames: int
    cuts: list[int]


class VideoColorizer:
    """Colorize clips with a :class:`~tinct.infer.Colorizer`, with or without temporal consistency.

    Args:
        colorizer: a :class:`~tinct.infer.Colorizer`, or anything it takes as ``model``
            (``"default"``, a checkpoint, an ``.onnx`` export).
        temporal: the filter's settings, or ``None`` for the per-frame baseline
            (``--temporal off``).
        batch_size: frames per network run.
        threads, engine: passed to the :class:`~tinct.infer.Colorizer` built from a name.
    """

    def __init__(self, colorizer="default", temporal: TemporalConfig | None = TemporalConfig(), batch_size: int = 4,
                 threads: int | None = None, engine: str = "auto"):  # fmt: skip
        from tinct.infer import Colorizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.colorizer = colorizer if isinstance(colorizer, Colorizer) else Colorizer(colorizer, threads=threads, engine=engine)
        self.temporal = temporal
        self.batch_size = batch_size

    def _network(self, photos: Iterable) -> Iterator[tuple]:
        """``(photo, working-resolution lightness (h, w), network ab (2, h', w'))`` per frame, in order."""
        batch: list = []

        def run(batch):
            squares, boxes = self.colorizer.working_squares(batch)
            abs_ = self.colorizer.crop_to_content(self.colorizer.predict_squares(squares), boxes)
            for photo, square, box, ab in zip(batch, squares, boxes, abs_):
                yield photo, square[0, : box.height, : box.width], ab

        for photo in photos:
            batch.append(photo)
            if len(batch) == self.batch_size:
                yield from run(batch)
                batch = []
        if batch:
            yield from run(batch)

    def frames(self, frames: Iterable[np.ndarray], per_frame: bool = False) -> Iterator[ColorizedFrame]:
        """Colorize a stream of frames (uint8 RGB ``(H, W, 3)`` or gray ``(H, W)``; one clip:
        the filter starts afresh at the first). ``per_frame`` also gives each frame's
        per-frame result (from the same network run: the baseline at no extra cost)."""
        return self._colorize((_as_photo(frame) for frame in frames), per_frame)

    def _colorize(self, photos: Iterable, per_frame: bool = False) -> Iterator[ColorizedFrame]:
        filter_ = TemporalFilter(self.temporal) if self.temporal is not None else None
        for photo, lightness, ab in self._network(photos):
            note = None
            smoothed = ab
            if filter_ is not None:
                smoothed, note = filter_(lightness, ab)
            rgb = self.colorizer.compose(photo, smoothed)
            baseline = None
            if per_frame:
                baseline = rgb if smoothed is ab else self.colorizer.compose(photo, ab)
            yield ColorizedFrame(rgb, note, baseline)

    def colorize_file(self, source: str | os.PathLike, target: str | os.PathLike, overwrite: bool = False,
                      on_frame: Callable[[], None] | None = None) -> ClipResult:  # fmt: skip
        """Colorize the clip ``source`` into ``target`` (timestamps, size and audio kept; see
        :func:`tinct.video.io.recolor_video`). ``on_frame`` is called after each frame."""
        from tinct.io import Photo
        from tinct.video.io import frame_lightness, recolor_video

        cuts: list[int] = []

        def transform(photos: Iterator) -> Iterator[np.ndarray]:
            for index, done in enumerate(self._colorize(photos)):
                if done.note is not None and done.note.cut and index > 0:
                    cuts.append(index)
                yield done.rgb

        def prepare(frame):  # in the reading thread
            return Photo(lightness=frame_lightness(frame))

        result = recolor_video(source, target, transform, overwrite=overwrite, on_frame=on_frame, prepare=prepare)
        return ClipResult(Path(source), Path(target), result.frames, cuts)


def _as_photo(frame):
    """A frame (uint8 RGB ``(H, W, 3)``, gray ``(H, W)``, or a :class:`~tinct.io.Photo`) as a Photo."""
    from tinct.color import cielab_lightness, gray_to_lightness
    from tinct.io import Photo

    if isinstance(frame, Photo):
        return frame
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
        raise ValueError(f"expected uint8 frames of shape (H, W) or (H, W, 3), got {frame.dtype} {frame.shape}")
    lightness = gray_to_lightness(frame) if frame.ndim == 2 else cielab_lightness(frame)
    return Photo(lightness=np.asarray(lightness, dtype=np.float32))
