"""The page's *Colour with points* section: a gray photo, clicks that place colour points,
a colour picker, the list of points, a reference photo and the two downloads.

The work is in :mod:`tinct.web.points`; this module lays it out with Gradio (passed in as
``gr`` by :func:`tinct.app.build_app`, so importing it imports no Gradio) and turns each
refusal into one line under the photo. The hint model is loaded once per server
(:class:`HintModel`) and every visitor's photo is decoded once, into a ``gr.State``.
"""

from __future__ import annotations

import html
import sys
import threading
import traceback
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from tinct.web import points
from tinct.web.points import PointRefused

__all__ = ["HINT_MODEL", "HintModel", "PointTab"]

HINT_MODEL = "tinct-v2-hints"  # the shipped hint model the section uses
ADD, MOVE = "Add a point", "Move the selected point"
HELP = """\
Add a gray photo, then **click on the result** to place a point. A new point takes the colour
the model gave that spot; change it with the colour picker and the result follows. Select a
point in the list to recolour, move or delete it. A reference photo guides all the colours.
"""


class HintModel:
    """The hint model, loaded on first use (or by :meth:`load` in the background at start-up),
    once per server, thread-safe. ``name`` is a shipped name or a checkpoint path."""

    def __init__(self, name: str = HINT_MODEL, threads: int | None = None):
        self.name, self.threads = name, threads
        self._colorizer = None
        self._lock = threading.Lock()

    def load(self):
        """The :class:`tinct.infer.Colorizer` (torch engine: the hint inputs need it)."""
        with self._lock:
            if self._colorizer is None:
                from tinct.infer import Colorizer

                self._colorizer = Colorizer(self.name, engine="torch", threads=self.threads, batch_size=1)
            return self._colorizer


def _message(text: str, refused: bool = False) -> str:
    state = "refused" if refused else "ok"
    return f'<p class="tinct-points-message" data-state="{state}">{html.escape(text)}</p>'


class PointTab:
    """Handlers of the section. ``new_folder()`` gives a fresh folder for one photo's files
    (the page's :class:`tinct.app.Workspace`), ``max_megapixels`` the page's limit."""

    def __init__(self, gr, model: HintModel, new_folder: Callable[[], Path], max_megapixels: float | None):
        self.gr, self.model, self.new_folder, self.max_megapixels = gr, model, new_folder, max_megapixels
        self.ui = SimpleNamespace()
        self.folders: dict[int, Path] = {}  # id(session) -> its folder

    # --- what each change shows -----------------------------------------------------------

    def _folder(self, session) -> Path:
        return self.folders.setdefault(id(session), self.new_folder())

    def _shown(self, session, note: str = "") -> dict:
        """Every output after a change: the state, the preview, the list, the picker, a line."""
        ui = self.ui
        if session is None:
            return {ui.state: None, ui.result: None, ui.table: [], ui.picker: self.gr.skip(),
                    ui.message: _message(note) if note else ""}  # fmt: skip
        preview = points.write_preview(session, self._folder(session) / f"preview-{uuid.uuid4().hex[:8]}.jpg")
        picker = self.gr.skip()
        if session.selected is not None:
            picker = session.hints[session.selected].hex
        count = len(session.hints)
        summary = f"{count} point{'s' if count != 1 else ''}"
        if session.reference is not None:
            summary += " and a reference photo"
        line = f"{note} " if note else ""
        line += f"{summary} · re-colorized in {session.seconds:.2f} s at {session.size[0]}x{session.size[1]}."
        return {ui.state: session, ui.result: str(preview), ui.table: points.point_rows(session),
                ui.picker: picker, ui.message: _message(line)}  # fmt: skip

    def _refused(self, exc: Exception) -> dict:
        ui, skip = self.ui, self.gr.skip()
        print(f"tinct serve: refused: {exc}", file=sys.stderr, flush=True)
        return {ui.state: skip, ui.result: skip, ui.table: skip, ui.picker: skip, ui.message: _message(str(exc), True)}

    def _apply(self, change: Callable) -> dict:
        """Run one edit; a refusal or a failure becomes the line under the photo."""
        try:
            return self._shown(change())
        except PointRefused as exc:
            return self._refused(exc)
        except Exception as exc:  # a bug or a broken model: the trace for the log, a line for the user
            traceback.print_exc(file=sys.stderr)
            return self._refused(PointRefused(f"That did not work ({type(exc).__name__}: {exc})."))

    def colorizer(self):
        """The hint model, or a :class:`PointRefused` that says it could not be loaded."""
        try:
            return self.model.load()
        except Exception as exc:
            raise PointRefused(f"Points need the {self.model.name} model, which could not be loaded ({exc}).") from None

    # --- the handlers ---------------------------------------------------------------------

    def open_photo(self, path):
        """A new gray photo (or none): decode it once and show the model's own guess."""
        if not path:
            return self._shown(None)

        def start():
            from tinct.io import ImageReadError, read_photo

            try:
                photo = read_photo(path, max_megapixels=self.max_megapixels)
            except ImageReadError as exc:
                raise PointRefused(f"{Path(path).name}: {exc}") from None
            return points.start_session(self.colorizer(), photo, Path(path).name)

        return self._apply(start)

    def click(self, session, mode, event):
        """A click on the result: place a point, or move the selected one (``mode``)."""
        index = getattr(event, "index", None)
        change = points.move_selected if mode == MOVE else points.add_point
        return self._apply(lambda: change(self.colorizer(), session, index))

    def recolour(self, session, colour):
        return self._apply(lambda: points.recolour_selected(self.colorizer(), session, colour))

    def delete(self, session):
        return self._apply(lambda: points.delete_selected(self.colorizer(), session))

    def select_row(self, session, event):
        """A click in the list of points selects that point (its colour goes to the picker)."""

        def select():
            row = getattr(event, "index", None)
            row = row[0] if isinstance(row, (list, tuple)) else row
            if session is None or not isinstance(row, int) or not 0 <= row < len(session.hints):
                raise PointRefused("No such point in the list.")
            session.selected = row
            return session

        return self._apply(select)

    def reference(self, session, path):
        def use():
            from tinct.io import ImageReadError, read_rgb

            rgb = None
            if path:
                try:
                    rgb = read_rgb(path, max_megapixels=self.max_megapixels)
                except ImageReadError as exc:
                    raise PointRefused(f"{Path(path).name}: {exc}") from None
            return points.set_reference(self.colorizer(), session, rgb)

        if session is None and not path:
            return self._shown(None)
        return self._apply(use)

    def downloads(self, session):
        """The two download buttons, pointing at freshly written files (after the preview shows)."""
        gr = self.gr
        if session is None:
            return gr.DownloadButton(value=None, interactive=False), gr.DownloadButton(value=None, interactive=False)
        folder = self._folder(session) / uuid.uuid4().hex[:8]
        folder.mkdir()
        result, hints = points.write_downloads(session, folder)
        return (gr.DownloadButton(f"Download {result.name}", value=str(result), interactive=True),
                gr.DownloadButton(f"Download {hints.name}", value=str(hints), interactive=True))  # fmt: skip

    # --- the layout -----------------------------------------------------------------------

    def build(self) -> None:
        """Lay the section out (inside the caller's ``gr.Blocks``) and wire its events."""
        gr, ui = self.gr, self.ui
        ui.state = gr.State(None)
        with gr.Accordion("Colour with points: click to say what colour a spot is", open=True, elem_id="points"):
            gr.Markdown(HELP)
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    ui.result = gr.Image(label="Result: click to place a point", type="filepath", interactive=False,
                                         buttons=["fullscreen"], elem_id="points-result")  # fmt: skip
                    ui.message = gr.HTML("", elem_id="points-message")
                with gr.Column(scale=2, min_width=260):
                    self._controls(gr, ui)
        self._connect(gr, ui)

    @staticmethod
    def _controls(gr, ui) -> None:
        ui.photo = gr.Image(label="Gray photo", type="filepath", sources=["upload", "clipboard"], height=200,
                            elem_id="points-photo")  # fmt: skip
        ui.mode = gr.Radio([ADD, MOVE], value=ADD, label="A click on the result", elem_id="points-mode")
        ui.picker = gr.ColorPicker("#808080", label="Colour of the selected point", elem_id="points-colour")
        ui.table = gr.Dataframe(headers=["point", "x", "y", "colour"], value=[], interactive=False,
                                label="Points (click one to select it)", elem_id="points-table")  # fmt: skip
        ui.delete = gr.Button("Delete the selected point", elem_id="points-delete")
        ui.reference = gr.Image(label="Reference photo (optional)", type="filepath", sources=["upload", "clipboard"],
                                height=140, elem_id="points-reference")  # fmt: skip
        with gr.Row():
            ui.download_result = gr.DownloadButton("Download the result (PNG)", interactive=False,
                                                   elem_id="points-download")  # fmt: skip
            ui.download_hints = gr.DownloadButton("Download the hints (JSON)", interactive=False,
                                                  elem_id="points-download-hints")  # fmt: skip

    def _connect(self, gr, ui) -> None:
        shown = [ui.state, ui.result, ui.table, ui.picker, ui.message]
        private = {"api_visibility": "private", "concurrency_id": "points", "show_progress": "minimal"}
        then = (self.downloads, ui.state, [ui.download_result, ui.download_hints])

        def click(session, mode, event):
            return self.click(session, mode, event)

        def select_row(session, event):
            return self.select_row(session, event)

        # Gradio finds the event argument by its annotation (see tinct.app._connect).
        click.__annotations__ = {"event": gr.SelectData}
        select_row.__annotations__ = {"event": gr.SelectData}
        for event, handler, inputs, extra in [
            (ui.photo.change, self.open_photo, [ui.photo], {}),
            (ui.result.select, click, [ui.state, ui.mode], {}),
            (ui.picker.input, self.recolour, [ui.state, ui.picker], {"trigger_mode": "always_last"}),
            (ui.delete.click, self.delete, [ui.state], {}),
            (ui.table.select, select_row, [ui.state], {}),
            (ui.reference.change, self.reference, [ui.state, ui.reference], {}),
        ]:
            event(handler, inputs, shown, **private, **extra).then(*then, api_visibility="private", queue=False)
