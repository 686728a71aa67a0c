"""The page's *Video clip* section: a short clip in, the colorized clip out, played on the page.

:func:`check_clip` refuses a clip over :class:`ClipLimits` from its header alone, before any
frame is decoded, with one line that names it; :func:`colorize_clip` runs the video pipeline
(:class:`tinct.video.VideoColorizer`, temporal consistency on, sound kept) and reports each
frame. :class:`ClipTab` lays the section out with Gradio (passed in as ``gr``).

>>> ClipLimits().describe()
'Clips up to 20 s and 1280x720 (either way round), up to 100 MB.'
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

__all__ = ["ClipLimits", "ClipRefused", "ClipTab", "check_clip", "colorize_clip"]


class ClipRefused(ValueError):
    """A clip over a limit or not readable; the message is one line that names it."""


@dataclass(frozen=True)
class ClipLimits:
    """What the page colorizes: at most ``max_seconds`` long, frames at most ``max_long`` x
    ``max_short`` pixels (landscape or portrait), files at most ``max_mb`` MiB."""

    max_seconds: float = 20.0
    max_long: int = 1280
    max_short: int = 720
    max_mb: float = 100.0

    def __post_init__(self):
        for name in ("max_seconds", "max_long", "max_short", "max_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def describe(self) -> str:
        return (f"Clips up to {self.max_seconds:g} s and {self.max_long}x{self.max_short} (either way round), "
                f"up to {self.max_mb:g} MB.")  # fmt: skip


def check_clip(path: str | os.PathLike, limits: ClipLimits = ClipLimits()):
    """The clip's :class:`tinct.video.io.VideoInfo` if it is within ``limits``.

    Raises:
        ClipRefused: not a clip PyAV can read, too long (or of unknown length), too large or
            too heavy; the message names the file.
    """
    from tinct.video.io import VideoReadError, probe_video

    path = Path(path)
    name = path.name
    size = path.stat().st_size
    if size > limits.max_mb * 2**20:
        raise ClipRefused(f"{name}: {size / 2**20:.1f} MB is over the {limits.max_mb:g} MB limit per clip.")
    try:
        info = probe_video(path)
    except VideoReadError:
        raise ClipRefused(f"{name}: not a video clip tinct can read (use MP4, MOV, MKV, WebM or AVI).") from None
    long_side, short_side = max(info.width, info.height), min(info.width, info.height)
    if long_side > limits.max_long or short_side > limits.max_short:
        raise ClipRefused(f"{name}: {info.width}x{info.height} is larger than the "
                          f"{limits.max_long}x{limits.max_short} limit for clips.")  # fmt: skip
    seconds = info.duration
    if seconds is None and info.rate:
        seconds = info.frames / float(info.rate) if info.frames else None
    if seconds is None:
        raise ClipRefused(f"{name}: the clip does not say how long it is; the limit is {limits.max_seconds:g} s.")
    if seconds > limits.max_seconds + 0.05:  # a container's rounding is not a longer clip
        raise ClipRefused(f"{name}: {seconds:.1f} s is longer than the {limits.max_seconds:g} s limit for clips.")
    return info


def colorize_clip(video, path: str | os.PathLike, out_dir: str | os.PathLike,
                  on_frame: Callable[[int], None] | None = None) -> Path:
    """Colorize the clip ``path`` with ``video`` (a :class:`tinct.video.VideoColorizer`) into
    ``out_dir/NAME_color.mp4`` (H.264, which browsers play; ``.webm`` for an odd frame size,
    which H.264 would store as 4:4:4 that browsers do not play). ``on_frame(n)`` is called
    after each frame with the number written so far. Returns the output path."""
    from tinct.video.io import probe_video

    path, out_dir = Path(path), Path(out_dir)
    info = probe_video(path)
    suffix = ".mp4" if info.width % 2 == 0 and info.height % 2 == 0 else ".webm"
    target = out_dir / f"{path.stem}_color{suffix}"
    done = [0]

    def count():
        done[0] += 1
        if on_frame is not None:
            on_frame(done[0])

    video.colorize_file(path, target, overwrite=True, on_frame=count)
    return target


class ClipTab:
    """The section's handler and layout. ``video()`` gives the page's
    :class:`tinct.video.VideoColorizer`, ``new_folder()`` a fresh folder for one clip."""

    def __init__(self, gr, video: Callable, new_folder: Callable[[], Path], limits: ClipLimits = ClipLimits()):
        self.gr, self.video, self.new_folder, self.limits = gr, video, new_folder, limits
        self.ui = SimpleNamespace()

    def colorize(self, path, progress=None):
        """``(result path or None, message)`` for the uploaded clip at ``path``."""
        if not path:
            return None, "Add a clip first."
        name = Path(path).name
        try:
            info = check_clip(path, self.limits)
        except ClipRefused as exc:
            print(f"tinct serve: refused: {exc}", file=sys.stderr, flush=True)
            return None, str(exc)
        total = max(info.frames, 1)
        start = time.monotonic()

        def report(done: int) -> None:
            if progress is not None:
                progress((min(done, total), total), desc=f"Colorizing {name}: frame {done} of about {total}")

        try:
            output = colorize_clip(self.video(), path, self.new_folder(), report)
        except Exception as exc:  # a clip that breaks part-way: the trace for the log, a line for the user
            traceback.print_exc(file=sys.stderr)
            return None, f"{name}: could not be colorized ({type(exc).__name__}: {exc})."
        seconds = time.monotonic() - start
        return str(output), f"{name}: {info.width}x{info.height}, about {total} frames, colorized in {seconds:.1f} s."

    def build(self) -> None:
        """Lay the section out (inside the caller's ``gr.Blocks``) and wire its button."""
        gr, ui = self.gr, self.ui
        with gr.Accordion("Video clip: colorize a short clip and play it", open=False, elem_id="clip"):
            gr.Markdown(f"{self.limits.describe()} The colour follows the motion, so it does not flicker; "
                        "the sound is kept.", elem_id="clip-limits")  # fmt: skip
            with gr.Row(equal_height=False):
                ui.clip = gr.Video(label="Clip to colorize", sources=["upload"], elem_id="clip-input")
                ui.result = gr.Video(label="Colorized clip", interactive=False, autoplay=True, loop=True,
                                     elem_id="clip-result")  # fmt: skip
            ui.button = gr.Button("Colorize the clip", variant="primary", elem_id="clip-colorize")
            ui.message = gr.Markdown("", elem_id="clip-message")
        gr_progress = gr.Progress

        def colorize(path, progress=gr_progress()):
            return self.colorize(path, progress)

        ui.button.click(colorize, ui.clip, [ui.result, ui.message], api_visibility="private",
                        concurrency_id="colorize")  # fmt: skip
