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

from tinct.hints import REFERENCE_MATCH
from tinct.web import points
from tinct.web.points import PointRefused

__all__ = ["HINT_MODEL", "HintModel", "PointTab"]

HINT_MODEL = "tinct-v2-hints"  # the shipped hint model the section uses
ADD, MOVE = "Add a point", "Move the selected point"
MATCH_CHOICES = {  # tinct.hints.REFERENCE_MATCHES, as the page offers them
    "histogram": "Which colours it has",
    "colorfulness": "Which colours, and how colourful",
    "colors": "Which colours, their spread, how colourful",
}
MATCH_SUMMARY = {"histogram": "", "colorfulness": " (as colourful as it)", "colors": " (its colours and colourfulness)"}
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


# Chromium gives a click whole CSS pixels only, and Gradio's select index is computed from
# them and rounded: on a preview shown at 0.57 of its size, up to 2 pixels off the pointer,
# mostly up-left. ``pointerdown`` has the fractions: the page keeps the last one on the result
# (POINTER_LISTENER_JS, run once when the line under the result mounts) and sends it with the
# click (POINTER_JS, run before the handler), as "x,y,per_css" in preview pixels.
POINTER_LISTENER_JS = """
if (!window.tinctPointListens) {
  window.tinctPointListens = true;
  document.addEventListener('pointerdown', (event) => {
    const onResult = event.isPrimary && event.target.closest && event.target.closest('#points-result img');
    window.tinctPointDown = onResult ? {x: event.clientX, y: event.clientY} : null;
  }, true);
}
"""
POINTER_JS = """(session, mode, pointer) => {
  const down = window.tinctPointDown, img = document.querySelector('#points-result img');
  window.tinctPointDown = null;
  if (!down || !img || !img.naturalWidth) return [session, mode, ''];
  const box = img.getBoundingClientRect();  // the image is fitted into it, centred, never enlarged
  const scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight, 1);
  const x = (down.x - box.left - (box.width - img.naturalWidth * scale) / 2) / scale;
  const y = (down.y - box.top - (box.height - img.naturalHeight * scale) / 2) / scale;
  return [session, mode, `${x},${y},${1 / scale}`];
}"""
# Enter in the colour picker's text field sends the picker's value before the field's own
# change has set it (Gradio 6.31): the typed text is sent instead, as "#rrggbb" when the
# browser reads it as a colour (hex, rgb() or hsl(), as the field shows it), else as typed.
TYPED_COLOUR_JS = """(session, colour) => {
  const text = (document.querySelector('#points-colour input[type=text]') || {}).value;
  if (!text || !CSS.supports('color', text)) return [session, text || colour];
  const context = document.createElement('canvas').getContext('2d');
  context.fillStyle = text;
  return [session, context.fillStyle];
}"""


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
        """Every output after a change: the state, the preview, the list, the picker, a line,
        and the two downloads, disabled until :meth:`downloads` has written the new files (a
        press in between would give the previous result)."""
        ui, gr = self.ui, self.gr
        stale = session is None or session.downloaded != session.version
        shown = {button: gr.DownloadButton(interactive=False) if stale else gr.skip()
                 for button in (ui.download_result, ui.download_hints)}  # fmt: skip
        if session is None:
            return shown | {ui.state: None, ui.result: None, ui.table: [], ui.picker: gr.skip(),
                            ui.message: _message(note) if note else ""}  # fmt: skip
        preview = points.write_preview(session, self._folder(session) / f"preview-{uuid.uuid4().hex[:8]}.jpg")
        picker = gr.skip()
        if session.selected is not None:
            picker = session.hints[session.selected].hex
        count = len(session.hints)
        summary = f"{count} point{'s' if count != 1 else ''}"
        if session.reference is not None:
            summary += " and a reference photo" + MATCH_SUMMARY[session.reference_match]
        line = f"{note} " if note else ""
        line += f"{summary} · re-colorized in {session.seconds:.2f} s at {session.size[0]}x{session.size[1]}."
        return shown | {ui.state: session, ui.result: str(preview), ui.table: points.point_rows(session),
                        ui.picker: picker, ui.message: _message(line)}  # fmt: skip

    def _refused(self, exc: Exception) -> dict:
        print(f"tinct serve: refused: {exc}", file=sys.stderr, flush=True)
        return self._unchanged() | {self.ui.message: _message(str(exc), True)}

    def _unchanged(self) -> dict:
        return {component: self.gr.skip() for component in self._outputs()}

    def _outputs(self) -> list:
        ui = self.ui
        return [ui.state, ui.result, ui.table, ui.picker, ui.message, ui.download_result, ui.download_hints]

    def _apply(self, change: Callable) -> dict:
        """Run one edit (``change()`` gives the session, or ``None`` when nothing changed); a
        refusal or a failure becomes the line under the photo."""
        try:
            session = change()
            return self._unchanged() if session is None else self._shown(session)
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

    def open_photo(self, path, reference_path=None, match: str = REFERENCE_MATCH):
        """A new gray photo (or none): decode it once and show the model's own guess, guided by the
        reference photo already on the page (``reference_path``), if any."""
        if not path:
            return self._shown(None)

        def start():
            photo = self._read(path, photo=True)
            reference = self._read(reference_path) if reference_path else None
            return points.start_session(self.colorizer(), photo, Path(path).name, reference, match or REFERENCE_MATCH)

        return self._apply(start)

    def _read(self, path, photo: bool = False):
        """A gray photo (:class:`tinct.io.Photo`) or a reference (uint8 RGB) from an upload; an
        unreadable file is a :class:`PointRefused` naming it."""
        from tinct.io import ImageReadError, read_photo, read_rgb

        try:
            return (read_photo if photo else read_rgb)(path, max_megapixels=self.max_megapixels)
        except ImageReadError as exc:
            raise PointRefused(f"{Path(path).name}: {exc}") from None

    def click(self, session, mode, event, pointer: str = ""):
        """A click on the result: place a point, or move the selected one (``mode``); ``pointer``
        is the exact position the page's script sends (:func:`tinct.web.points.full_position`)."""
        index = getattr(event, "index", None)
        change = points.move_selected if mode == MOVE else points.add_point
        return self._apply(lambda: change(self.colorizer(), session, index, pointer))

    def recolour(self, session, colour):
        """The picker's colour for the selected point (a drag in the picker, or a colour typed
        and Enter). The picker repeating the point's colour changes and shows nothing."""
        version = getattr(session, "version", None)

        def change():
            changed = points.recolour_selected(self.colorizer(), session, colour)
            return changed if changed.version != version else None

        return self._apply(change)

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

    def reference(self, session, path, match: str = REFERENCE_MATCH):
        def use():
            rgb = self._read(path) if path else None
            if session is not None:  # the choice's state, whatever was chosen before the photo
                session.reference_match = match or REFERENCE_MATCH
            return points.set_reference(self.colorizer(), session, rgb)

        if session is None and not path:
            return self._shown(None)
        return self._apply(use)

    def match(self, session, value):
        """The choice of what the reference sets: re-colorize when there is a reference to match."""
        return self._apply(lambda: points.set_reference_match(self.colorizer() if session else None, session, value))

    def downloads(self, session):
        """The two download buttons, pointing at freshly written files (after the preview shows)."""
        gr = self.gr
        if session is None:
            return gr.DownloadButton(value=None, interactive=False), gr.DownloadButton(value=None, interactive=False)
        if session.downloaded != session.version:  # set with download_files, after the first result
            folder = self._folder(session) / uuid.uuid4().hex[:8]
            folder.mkdir()
            session.download_files = points.write_downloads(session, folder)
            session.downloaded = session.version
        # Else a selection or a repeated colour: the files stand. The buttons are enabled again
        # either way: an edit answered in between may have disabled them after they were enabled.
        result, hints = session.download_files
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
                    ui.message = gr.HTML("", elem_id="points-message", js_on_load=POINTER_LISTENER_JS)
                    ui.pointer = gr.Textbox("", visible=False, elem_id="points-pointer")
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
        ui.match = gr.Radio([(label, value) for value, label in MATCH_CHOICES.items()], value=REFERENCE_MATCH,
                            label="The reference sets", elem_id="points-match")  # fmt: skip
        with gr.Row():
            ui.download_result = gr.DownloadButton("Download the result (PNG)", interactive=False,
                                                   elem_id="points-download")  # fmt: skip
            ui.download_hints = gr.DownloadButton("Download the hints (JSON)", interactive=False,
                                                  elem_id="points-download-hints")  # fmt: skip

    def _connect(self, gr, ui) -> None:
        shown = self._outputs()
        private = {"api_visibility": "private", "concurrency_id": "points", "show_progress": "minimal"}
        then = (self.downloads, ui.state, [ui.download_result, ui.download_hints])

        def click(session, mode, pointer, event):
            return self.click(session, mode, event, pointer)

        def select_row(session, event):
            return self.select_row(session, event)

        # Gradio finds the event argument by its annotation (see tinct.app._connect).
        click.__annotations__ = {"event": gr.SelectData}
        select_row.__annotations__ = {"event": gr.SelectData}
        for event, handler, inputs, extra in [
            (ui.photo.change, self.open_photo, [ui.photo, ui.reference, ui.match], {}),
            (ui.result.select, click, [ui.state, ui.mode, ui.pointer], {"js": POINTER_JS}),
            (ui.picker.input, self.recolour, [ui.state, ui.picker], {"trigger_mode": "always_last"}),  # a drag
            (ui.picker.submit, self.recolour, [ui.state, ui.picker], {"js": TYPED_COLOUR_JS}),  # Enter
            (ui.delete.click, self.delete, [ui.state], {}),
            (ui.table.select, select_row, [ui.state], {}),
            (ui.reference.change, self.reference, [ui.state, ui.reference, ui.match], {}),
            (ui.match.change, self.match, [ui.state, ui.match], {}),
        ]:
            event(handler, inputs, shown, **private, **extra).then(*then, api_visibility="private", queue=False)
