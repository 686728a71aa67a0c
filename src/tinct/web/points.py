"""Point hints on one photo, as the web page edits them: plain functions, no Gradio.

A :class:`PointSession` holds what one visitor's editing needs between clicks: the photo,
decoded once (:class:`tinct.io.Photo`, lightness ``(H, W)`` in [0, 100]); the hints
(:class:`tinct.hints.Hint`, positions in the photo's full-resolution pixels); an optional
reference photo (uint8 RGB ``(h, w, 3)``); and the current result (uint8 RGB ``(H, W, 3)``).
Every change re-colorizes at full resolution with :func:`tinct.hints.colorize_with_hints`;
nothing is read from disk again, so a change costs one network run and one composition.

The page shows the result as a preview at most :data:`PREVIEW_SIDE` pixels on its long side,
and a click arrives in the preview's pixels: :func:`full_position` maps it back. Gradio's
index of a click is computed from the click's whole CSS pixels (Chromium gives a ``click``
no fractions) and rounded, so on a preview shown smaller than its size it can be a pixel or
two off the pointer, mostly up-left; the page's script also sends the pointer's exact position (from
``pointerdown``, which has the fractions) and :func:`full_position` uses it when it agrees.

>>> from tinct.io import Photo
>>> session = PointSession(Photo(np.zeros((2000, 3200), np.float32)), "big.png", np.zeros((2000, 3200, 3), np.uint8))
>>> session.preview_size, full_position(session, (100, 50))  # a click on the preview -> photo pixels
((1600, 1000), (201, 101))
>>> full_position(session, (100, 50), "99.7,50.4,2.3")  # the exact pointer, 2.3 preview pixels per CSS pixel
(199, 100)
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from tinct.hints import REFERENCE_MATCH, REFERENCE_MATCHES, Hint, colorize_with_hints, hints_to_json
from tinct.io import Photo, write_image

__all__ = [
    "PREVIEW_SIDE",
    "PointRefused",
    "PointSession",
    "add_point",
    "delete_selected",
    "full_position",
    "move_selected",
    "point_rows",
    "pointer_position",
    "recolour_selected",
    "set_reference",
    "set_reference_match",
    "start_session",
    "write_downloads",
    "write_preview",
]

PREVIEW_SIDE = 1600  # long side of the result shown on the page (pixels); clicks are mapped back
MARKER_RADIUS = 7  # of the rings drawn on the preview where the points are (preview pixels)


class PointRefused(ValueError):
    """A click or edit that cannot be applied; the message is one line for the user."""


@dataclass
class PointSession:
    """One photo being colorized with points (see the module docstring for shapes).

    Attributes:
        photo: the decoded photo (full resolution).
        name: the file name the user knows it by.
        result: uint8 RGB ``(H, W, 3)``, the current result at full resolution.
        hints: the points, in the order they were placed.
        selected: index into ``hints`` of the point the colour picker and the buttons act
            on, or ``None``.
        reference: uint8 RGB ``(h, w, 3)`` reference photo, or ``None``.
        reference_match: what the reference sets besides its histogram
            (:data:`tinct.hints.REFERENCE_MATCHES`), when there is one.
        seconds: how long the last re-colorization took.
        version: how many times ``result`` was made (a change of it changes this).
        downloaded: the ``version`` the page's download files were last written for.
        download_files: those files (the result PNG and the hints JSON), or ``None``.
    """

    photo: Photo
    name: str
    result: np.ndarray
    hints: list[Hint] = field(default_factory=list)
    selected: int | None = None
    reference: np.ndarray | None = None
    reference_match: str = REFERENCE_MATCH
    seconds: float = 0.0
    version: int = 0
    downloaded: int = -1
    download_files: tuple[Path, Path] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """The photo's (width, height)."""
        return self.photo.size

    @property
    def preview_scale(self) -> float:
        """Preview pixels per photo pixel (1 up to :data:`PREVIEW_SIDE`, less beyond)."""
        return min(1.0, PREVIEW_SIDE / max(self.size))

    @property
    def preview_size(self) -> tuple[int, int]:
        width, height = self.size
        scale = self.preview_scale
        return max(1, round(width * scale)), max(1, round(height * scale))


def recolorize(colorizer, session: PointSession) -> PointSession:
    """Colorize ``session.photo`` again with its hints and reference (full resolution)."""
    start = time.perf_counter()
    session.result = colorize_with_hints(colorizer, session.photo, session.hints, session.reference,
                                         reference_match=session.reference_match)
    session.seconds = time.perf_counter() - start
    session.version += 1
    return session


def start_session(colorizer, photo: Photo, name: str, reference: np.ndarray | None = None,
                  reference_match: str = REFERENCE_MATCH) -> PointSession:
    """A session for ``photo`` with no points yet; its result is the model's own guess, guided by
    the ``reference`` photo already on the page, if any."""
    session = PointSession(photo, name, np.zeros((1, 1, 3), np.uint8), reference=reference,
                           reference_match=reference_match)
    return recolorize(colorizer, session)


def pointer_position(index: Sequence[int], pointer: str | None) -> tuple[float, float] | None:
    """The exact pointer position ``"x,y,per_css"`` the page's script sends with a click
    (preview pixels as continuous coordinates, pixel ``i`` spanning ``[i, i + 1)``, and the
    preview pixels per CSS pixel) -> ``(x, y)``, or ``None`` when it is missing, malformed or
    farther from Gradio's ``index`` than one CSS pixel plus its rounding (then it belongs to
    another click)."""
    try:
        x, y, per_css = (float(part) for part in (pointer or "").split(","))
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in (x, y, per_css)) or per_css <= 0:
        return None
    slack = per_css + 1.0
    if abs(x - (index[0] + 0.5)) > slack or abs(y - (index[1] + 0.5)) > slack:
        return None
    return x, y


def full_position(session: PointSession | None, index: Sequence[int] | None,
                  pointer: str | None = None) -> tuple[int, int]:  # fmt: skip
    """A click at ``index = (x, y)`` in the preview's pixels -> ``(x, y)`` in the photo's: the
    photo pixel under the exact ``pointer`` (see :func:`pointer_position`) when there is one,
    else under the centre of preview pixel ``index``.

    Raises:
        PointRefused: no photo yet, or the click lies outside the photo.
    """
    if session is None:
        raise PointRefused("Add a gray photo first, then click on the result to place a point.")
    if index is None or len(index) != 2:
        raise PointRefused(f"A click gives a position (x, y) on the photo, got {index!r}.")
    preview_width, preview_height = session.preview_size
    x, y = index
    if not (0 <= x < preview_width and 0 <= y < preview_height):
        raise PointRefused(f"({x}, {y}) is outside the photo ({preview_width}x{preview_height} as shown); "
                           "click on the photo itself.")  # fmt: skip
    exact = pointer_position(index, pointer) or (x + 0.5, y + 0.5)
    width, height = session.size
    scale = session.preview_scale
    column, row = (int(max(0.0, v) / scale) for v in exact)
    return min(column, width - 1), min(row, height - 1)


def _model_colour(session: PointSession, x: int, y: int) -> tuple[int, int, int]:
    """The current result's colour at full-resolution pixel (x, y): the model's own guess."""
    return tuple(int(v) for v in session.result[y, x])  # type: ignore[return-value]


def add_point(colorizer, session: PointSession | None, index: Sequence[int] | None,
              pointer: str | None = None) -> PointSession:  # fmt: skip
    """Place a point where the preview was clicked (``index``, ``pointer``: see
    :func:`full_position`), coloured as the result is there, and select it (the colour
    picker then proposes the model's guess)."""
    x, y = full_position(session, index, pointer)
    session.hints.append(Hint(float(x), float(y), _model_colour(session, x, y)))
    session.selected = len(session.hints) - 1
    return recolorize(colorizer, session)


def _selected(session: PointSession | None) -> int:
    if session is None or session.selected is None or not (0 <= session.selected < len(session.hints)):
        raise PointRefused("Select a point first: click one in the list of points.")
    return session.selected


def move_selected(colorizer, session: PointSession | None, index: Sequence[int] | None,
                  pointer: str | None = None) -> PointSession:  # fmt: skip
    """Move the selected point to where the preview was clicked (its colour stays)."""
    x, y = full_position(session, index, pointer)
    chosen = _selected(session)
    session.hints[chosen] = Hint(float(x), float(y), session.hints[chosen].rgb)
    return recolorize(colorizer, session)


def parse_colour(text: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` (or ``rgb(r, g, b)``/``rgba(...)``, as some colour pickers send) -> (r, g, b)."""
    value = (text or "").strip()
    if value.startswith("#") and len(value) in (7, 9):
        try:
            return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            pass
    if value.startswith(("rgb(", "rgba(")) and value.endswith(")"):
        try:
            parts = [float(p) for p in value[value.index("(") + 1 : -1].split(",")[:3]]
            if len(parts) == 3 and all(0 <= p <= 255 for p in parts):
                return tuple(int(round(p)) for p in parts)  # type: ignore[return-value]
        except ValueError:
            pass
    raise PointRefused(f"{text!r} is not a colour like #3a6fc4.")


def recolour_selected(colorizer, session: PointSession | None, colour: str) -> PointSession:
    """Give the selected point the colour ``"#rrggbb"``."""
    chosen = _selected(session)
    rgb = parse_colour(colour)
    hint = session.hints[chosen]
    if hint.rgb == rgb:
        return session  # the picker echoing the point's own colour: nothing to do
    session.hints[chosen] = Hint(hint.x, hint.y, rgb)
    return recolorize(colorizer, session)


def delete_selected(colorizer, session: PointSession | None) -> PointSession:
    """Remove the selected point; no point is selected afterwards."""
    chosen = _selected(session)
    del session.hints[chosen]
    session.selected = None
    return recolorize(colorizer, session)


def set_reference(colorizer, session: PointSession | None, reference: np.ndarray | None) -> PointSession:
    """Use ``reference`` (uint8 RGB ``(h, w, 3)``, or ``None`` to drop it) to guide the colours."""
    if session is None:
        raise PointRefused("Add a gray photo first; the reference photo guides its colours.")
    session.reference = reference
    return recolorize(colorizer, session)


def set_reference_match(colorizer, session: PointSession | None, match: str) -> PointSession | None:
    """What the reference sets (``match``, one of :data:`tinct.hints.REFERENCE_MATCHES`);
    re-colorizes only when a reference is there to match (without a photo, nothing to do: ``None``)."""
    if match not in REFERENCE_MATCHES:
        raise PointRefused(f"Unknown choice for the reference: {match!r}.")
    if session is None:
        return None
    changed = session.reference_match != match
    session.reference_match = match
    return recolorize(colorizer, session) if changed and session.reference is not None else session


def point_rows(session: PointSession | None) -> list[list]:
    """The points as the page's table shows them: ``[number, x, y, "#rrggbb"]``, from 1."""
    if session is None:
        return []
    return [[number, int(h.x), int(h.y), h.hex] for number, h in enumerate(session.hints, 1)]


def write_preview(session: PointSession, path: str | os.PathLike) -> Path:
    """The result as the page shows it (at most :data:`PREVIEW_SIDE` on its long side), with a
    ring at each point (the selected one thicker), as a JPEG at ``path``."""
    image = Image.fromarray(session.result, "RGB")
    if session.preview_scale < 1:
        image = image.resize(session.preview_size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    scale = session.preview_scale
    for number, hint in enumerate(session.hints):
        cx, cy = (hint.x + 0.5) * scale, (hint.y + 0.5) * scale
        r = MARKER_RADIUS + (2 if number == session.selected else 0)
        box = [cx - r, cy - r, cx + r, cy + r]
        draw.ellipse(box, fill=hint.rgb, outline="black", width=3 if number == session.selected else 2)
        draw.ellipse([box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2], outline="white", width=1)
    path = Path(path)
    image.save(path, quality=90)
    return path


def write_downloads(session: PointSession, folder: str | os.PathLike) -> tuple[Path, Path]:
    """The full-resolution result (PNG, alpha kept) and the hints JSON
    (:func:`tinct.hints.hints_to_json` with the photo's size) in ``folder``: their paths."""
    folder = Path(folder)
    stem = Path(session.name).stem or "photo"
    result = write_image(folder / f"{stem}_color.png", session.result, alpha=session.photo.alpha, overwrite=True)
    hints = folder / f"{stem}.hints.json"
    hints.write_text(hints_to_json(session.hints, session.size) + "\n", encoding="utf-8")
    return Path(result), hints
