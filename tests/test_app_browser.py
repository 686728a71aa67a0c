"""``tinct serve`` in a real browser: Debian's headless Chromium driven by Playwright.

The server runs as a subprocess (``python -m tinct serve``) on 127.0.0.1 with a tiny checkpoint
whose output bias paints everything a clear orange (a = +40, b = +30), so "the result has
colour" is a meaningful check. The browser may reach 127.0.0.1 only: any other request is
recorded and aborted, and the tests fail if there was one (the page must work offline), or
if any request got an error status (a 404 included).

The page's feedback is checked at a desktop size (1280 x 900) and a phone size (390 x 844):
progress shows within 0.5 s of pressing Colorize on a 12 MP photo, the button stays disabled
while the photo is colorized, the first result is in view when it is done, and a file over
a limit is named next to the upload box within 1 s of being added. The tests save
screenshots of both sizes to docs/images/ (shown in docs/web.md).

No browser is ever downloaded: without /usr/bin/chromium (``.ci/install-browser.sh``) or the
playwright package these tests skip.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, gray_ramp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_MEGAPIXELS = 13  # a 12 MP photo is allowed, a 4000 x 3400 one (13.6 MP) is not
MAX_MB = 2  # a 2.3 MB file of noise is over the limit
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
STARTUP_SECONDS = 300  # importing Gradio on a busy 2-core machine (training at nice -5) can take minutes
TIMEOUT_MS = 30_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SIZES = pytest.mark.parametrize("page", [DESKTOP, PHONE], indirect=True, ids=["1280x900", "390x844"])
SCREENSHOTS = REPO / "docs" / "images"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM} (.ci/install-browser.sh)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright for Python (dev extra)")
pytest.importorskip("gradio", reason="the web page needs the 'app' extra (gradio)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gray_photo(path: Path, height: int, width: int, **save) -> Path:
    Image.fromarray(gray_ramp(height, width), "L").save(path, **save)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The checkpoint, the photos and a folder of example photos the tests use."""
    from tinct.color import LAB
    from tinct.models import create_model, save_checkpoint

    folder = tmp_path_factory.mktemp("browser")
    torch.manual_seed(0)
    model = create_model("tinctnet", width=4, input_size=32, head="regression")
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.atanh(torch.tensor([40.0, 30.0]) / LAB.ab_norm))
    examples = folder / "examples"
    examples.mkdir()
    text = folder / "notes.txt"
    text.write_text("this is not a photo\n")
    fake = folder / "scan.jpg"
    fake.write_text("this is not a photo either, whatever its name says\n")
    whole = io.BytesIO()
    Image.fromarray(gray_ramp(300, 400), "L").save(whole, "JPEG", quality=90)
    cut = folder / "cut.jpg"
    cut.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])  # an interrupted download
    noise = folder / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8)).save(noise)
    cutout = folder / "cutout.png"
    rgba = Image.fromarray(gray_ramp(60, 80), "L").convert("RGBA")
    alpha = np.zeros((60, 80), np.uint8)
    alpha[:, 40:] = 255  # the left half is transparent
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(cutout)
    return {
        "folder": folder,
        "checkpoint": save_checkpoint(folder / "orange.safetensors", model),
        "photo": _gray_photo(folder / "street.png", 60, 84),
        "twelve_mp": _gray_photo(folder / "harbour-12mp.jpg", 3000, 4000, quality=90),
        "too_many_pixels": _gray_photo(folder / "poster.png", 3400, 4000),  # a ramp: a small file
        "too_many_bytes": noise,
        "cut": cut,
        "cutout": cutout,
        "text": text,
        "fake": fake,
        "example": _gray_photo(examples / "harbour.png", 40, 56),
        "log": folder / "server.log",  # what the server prints
    }


@pytest.fixture(scope="module")
def server(files):
    """``python -m tinct serve`` on a free port of 127.0.0.1; always stopped afterwards."""
    port = _free_port()
    scratch = files["folder"] / "tmp"  # the server's own temporary folder, to check it is removed
    scratch.mkdir()
    env = dict(os.environ, GRADIO_TEMP_DIR=str(files["folder"] / "gradio"), TMPDIR=str(scratch), PYTHONUNBUFFERED="1")
    command = [
        sys.executable, "-m", "tinct", "serve",
        "--model", str(files["checkpoint"]),
        "--port", str(port),
        "--max-megapixels", str(MAX_MEGAPIXELS),
        "--max-mb", str(MAX_MB),
        "--examples", str(files["example"].parent),
        "--threads", "1",
    ]
    log_path = files["log"]
    log = open(log_path, "w+")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"tinct serve exited with status {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tinct serve did not answer on {url} within {STARTUP_SECONDS} s")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    # `kill` (SIGTERM) stops the server cleanly: its results folder is deleted.
    assert list(scratch.glob("tinct-serve-*")) == []
    # Refusals are one line each in the server's log (see _expect_logged), never a traceback.
    output = log_path.read_text()
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class LocalOnly:
    """Records every request and aborts those that leave the machine."""

    def __init__(self):
        self.requests: list[str] = []
        self.external: list[str] = []
        self.failed: list[str] = []

    def __call__(self, route):
        url = route.request.url
        self.requests.append(url)
        scheme = urlparse(url).scheme
        if scheme in ("data", "blob") or urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def response(self, response):
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")


@pytest.fixture
def page(browser, server, request):
    viewport = getattr(request, "param", DESKTOP)
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    network = LocalOnly()
    context.route("**/*", network)
    page = context.new_page()
    page.on("response", network.response)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server)
    page.wait_for_selector("#colorize")
    yield page
    context.close()
    assert network.requests, "the page made no requests at all"
    assert network.external == [], f"the page tried to reach the internet: {network.external}"
    assert network.failed == [], f"requests that failed: {network.failed}"


def _upload(page, *paths: Path) -> None:
    page.locator("#uploads input[type=file]").set_input_files([str(p) for p in paths])
    # Wait until the gallery shows one thumbnail per file: the uploads have reached the server.
    sync_api.expect(page.locator("#uploads .thumbnail-item, #uploads .thumbnail-lg")).to_have_count(
        len(paths), timeout=TIMEOUT_MS
    )


def _thumbnails(page):
    return page.locator("#uploads .thumbnail-item, #uploads .thumbnail-lg")


def _expect_logged(files, line: str, timeout: float = 5.0) -> None:
    """``line`` appears, whole, in the server's log."""
    deadline = time.monotonic() + timeout
    while line not in files["log"].read_text().splitlines():
        assert time.monotonic() < deadline, f"not in the server's log: {line!r}\n{files['log'].read_text()}"
        time.sleep(0.1)


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{page.viewport_size['width']}.png"))


def test_upload_colorize_and_download(page, files, tmp_path):
    from tinct.infer import Colorizer

    _upload(page, files["photo"])
    page.click("#colorize")
    download_button = page.locator("#download-0")
    sync_api.expect(download_button).to_be_visible(timeout=TIMEOUT_MS)
    sync_api.expect(page.locator("#slider-0 img")).to_have_count(2)  # before and after
    caption = page.locator(".result-caption").first.inner_text()
    assert re.search(r"84x60 px · \d+\.\d\d s · orange", caption), caption

    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert download.suggested_filename == "street_color.png"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    with Image.open(saved) as image:
        assert image.size == (84, 60)  # full resolution, not the preview
        rgb = np.asarray(image.convert("RGB")).astype(int)
    # The checkpoint paints a = +40, b = +30: red well above blue everywhere.
    assert (rgb[..., 0] - rgb[..., 2]).mean() > 30
    np.testing.assert_array_equal(rgb, Colorizer(files["checkpoint"], threads=1)(files["photo"]))


@SIZES
def test_progress_shows_at_once_and_results_come_into_view(page, files):
    _upload(page, files["twelve_mp"])
    button = page.locator("#colorize")
    progress = page.locator("#progress progress")
    button.click()
    sync_api.expect(progress).to_be_visible(timeout=500)
    sync_api.expect(progress).to_be_in_viewport()
    sync_api.expect(button).to_be_disabled(timeout=500)

    # While the photo is colorized: its name, n / N and the time left; the button stays disabled.
    running = page.locator("#progress [data-state=running]")
    sync_api.expect(running).to_contain_text("Colorizing harbour-12mp.jpg (1 / 1)", timeout=TIMEOUT_MS)
    assert re.search(r"about \d+ s left|almost done|estimating the time left", running.inner_text())
    sync_api.expect(button).to_be_disabled()
    # For the screenshot, a bar part-way (it starts at 0 with the photo).
    page.wait_for_function(
        "() => { const bar = document.querySelector('#progress [data-state=running] progress');"
        " return !bar || bar.value >= 300; }"
    )
    if running.count():
        _screenshot(page, "web-progress")

    sync_api.expect(page.locator("#progress [data-state=done]")).to_be_visible(timeout=TIMEOUT_MS)
    # The first result is brought into view as soon as it is on the page.
    first = page.locator(".result").first
    sync_api.expect(first).to_be_in_viewport(ratio=0.5, timeout=3000)
    sync_api.expect(button).to_be_enabled()
    sync_api.expect(page.locator(".result")).to_have_count(1)  # one press, one job
    sync_api.expect(page.locator(".result-caption").first).to_contain_text("4000x3000 px")
    page.wait_for_function(
        "[...document.querySelectorAll('#slider-0 img')].every((img) => img.complete && img.naturalWidth > 0)"
    )
    _screenshot(page, "web-results")


@SIZES
def test_an_over_limit_file_is_named_next_to_the_upload_box_at_once(page, files):
    from tinct.app import Limits, too_many_bytes

    message = page.locator("#upload-message")
    sent = []  # files sent to the server
    page.on("request", lambda request: "/gradio_api/upload?" in request.url and sent.append(request.url))
    limits = Limits(max_megapixels=MAX_MEGAPIXELS, max_mb=MAX_MB)
    too_many_pixels = "poster.png: 4000x3400 is 13.6 megapixels, over the 13 megapixel limit."
    too_heavy = too_many_bytes("noise.png", files["too_many_bytes"].stat().st_size, limits)
    for path, expected in [(files["too_many_pixels"], too_many_pixels), (files["too_many_bytes"], too_heavy)]:
        page.locator("#uploads input[type=file]").set_input_files(str(path))
        sync_api.expect(message).to_contain_text(f"{expected} Not added.", timeout=1000)
        sync_api.expect(message).to_be_in_viewport()
        # Next to the file: right below the upload box.
        box, note = page.locator("#uploads").bounding_box(), message.bounding_box()
        assert 0 <= note["y"] - (box["y"] + box["height"]) < 40 and abs(note["x"] - box["x"]) < 40
        sync_api.expect(_thumbnails(page)).to_have_count(0)  # the file was not added
    assert len(sent) == 1  # the file over the byte limit was never sent: the browser named it
    _expect_logged(files, f"tinct serve: refused: {too_many_pixels}")
    assert "MB is over" in message.inner_text() and "Mb" not in message.inner_text()
    assert page.locator("#progress .tinct-status").count() == 0  # nothing was pressed


def test_a_drop_with_a_file_over_the_size_limit_adds_only_the_others(page, files):
    # What dragging two files onto the box does: one drop event carrying both.
    small = files["photo"].read_bytes()
    page.evaluate(
        """([small, big]) => {
          const files = new DataTransfer();
          files.items.add(new File([new Uint8Array(small)], 'street.png', {type: 'image/png'}));
          files.items.add(new File([new Uint8Array(big)], 'huge.png', {type: 'image/png'}));
          const target = document.querySelector('#uploads .upload-container');
          target.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: files}));
        }""",
        [list(small), MAX_MB * 2**20 + 2**19],
    )
    sync_api.expect(page.locator("#upload-message")).to_contain_text(
        "huge.png: 2.5 MB is over the 2 MB limit per photo. Not added.", timeout=1000
    )
    sync_api.expect(_thumbnails(page)).to_have_count(1, timeout=TIMEOUT_MS)  # street.png was added


def test_files_that_are_not_images_or_incomplete_get_plain_messages(page, files):
    # Plainly not an image: the browser refuses it at once, naming it.
    page.locator("#uploads input[type=file]").set_input_files(str(files["text"]))
    sync_api.expect(page.get_by_text("Invalid file type: notes.txt").first).to_be_visible(timeout=TIMEOUT_MS)
    message = page.locator("#upload-message")
    # Claims to be a photo but is not, or stops half-way: the server refuses it as it arrives.
    page.locator("#uploads input[type=file]").set_input_files(str(files["fake"]))
    sync_api.expect(message).to_contain_text("scan.jpg: not an image tinct can read", timeout=TIMEOUT_MS)
    page.locator("#uploads input[type=file]").set_input_files(str(files["cut"]))
    sync_api.expect(message).to_contain_text("cut.jpg: the file is incomplete", timeout=TIMEOUT_MS)
    assert "truncated" not in message.inner_text() and "bytes" not in message.inner_text()
    sync_api.expect(_thumbnails(page)).to_have_count(0)
    # Colorize with nothing added: a plain line where the results would be.
    page.click("#colorize")
    refusal = page.locator("#progress [data-state=refused]")
    sync_api.expect(refusal).to_contain_text("No photos to colorize")
    sync_api.expect(page.locator("#colorize")).to_be_enabled()
    assert page.locator(".result").count() == 0


def test_transparent_photo_previews_keep_their_transparency_and_sides_are_labelled(page, files):
    _upload(page, files["cutout"])
    page.click("#colorize")
    sync_api.expect(page.locator("#download-0")).to_be_visible(timeout=TIMEOUT_MS)
    images = page.locator("#slider-0 img")
    sync_api.expect(images).to_have_count(2)
    for index in range(2):
        source = images.nth(index).get_attribute("src")
        assert source.endswith(".png"), source
        with Image.open(io.BytesIO(page.request.get(source).body())) as preview:
            assert preview.mode in ("RGBA", "LA"), preview.mode
            alpha = np.asarray(preview.getchannel("A"))
        assert alpha[:, :30].max() == 0 and alpha[:, 50:].min() == 255  # the download's cut-out
    labels = page.evaluate(
        "['::before', '::after'].map((part) => getComputedStyle("
        "document.querySelector('#slider-0 .slider-wrap'), part).content)"
    )
    assert labels == ['"Before"', '"After"']
    # ... and on top of the images: made hit-testable, each label is what the point under it
    # hits (a label under the photo would leave the photo to be hit there).
    page.add_style_tag(content=".before-after .slider-wrap::before, .before-after .slider-wrap::after "
                               "{ pointer-events: auto !important; }")
    on_top = page.evaluate(
        """() => {
          const wrap = document.querySelector('#slider-0 .slider-wrap');
          wrap.scrollIntoView({block: 'center', behavior: 'instant'});  // points must be in the window
          const box = wrap.getBoundingClientRect();
          return ['::before', '::after'].map((part) => {
            const label = getComputedStyle(wrap, part);
            const x = part === '::before' ? box.left + parseFloat(label.left) + 5 : box.right - parseFloat(label.right) - 5;
            return document.elementFromPoint(x, box.bottom - parseFloat(label.bottom) - 5) === wrap;
          });
        }"""
    )
    assert on_top == [True, True]


def test_limits_and_models_are_shown_and_an_example_is_one_click_away(page):
    sync_api.expect(page.locator("#limits")).to_contain_text("2 MB and 13 megapixels")
    sync_api.expect(page.locator("#model input")).to_have_value("orange")
    # No footer: no "Use via API ·" and no API page asking for an MCP schema that is not there.
    assert page.locator("footer").count() == 0
    sync_api.expect(page.get_by_text("Use via API")).to_have_count(0)
    sync_api.expect(page.locator("#example-gallery img")).to_have_count(1)
    page.locator("#example-gallery").get_by_role("button", name="Thumbnail 1 of 1").click()
    sync_api.expect(page.locator("#download-0")).to_be_visible(timeout=TIMEOUT_MS)
    sync_api.expect(page.locator(".result-caption").first).to_contain_text("harbour.png")


# --- colour with points (issue 18) and a video clip (issue 17) ---------------------------

POINT_SECONDS = 1.0  # a click re-colorizes a 1 MP photo within this (issue 18's target)


@pytest.fixture(scope="module")
def one_megapixel_photo(tmp_path_factory) -> Path:
    """A real photo (the shipped ferry example) as a gray 1224 x 816 (1.0 MP) PNG."""
    from tinct import examples_dir

    path = tmp_path_factory.mktemp("points") / "ferry-gray.png"
    with Image.open(examples_dir() / "ferry.jpg") as image:
        image.convert("L").resize((1224, 816), Image.Resampling.LANCZOS).save(path)
    return path


def _result_image(page) -> np.ndarray:
    source = page.locator("#points-result img").get_attribute("src")
    with Image.open(io.BytesIO(page.request.get(source).body())) as image:
        return np.asarray(image.convert("RGB")).astype(int)


CLICK_TIMER_JS = """() => {
  // The time from the click to the moment the new result is decoded, as the browser sees it.
  const timer = window.tinctClickTimer = {start: null, end: null};
  const img = () => document.querySelector('#points-result img');
  const before = img().src;
  document.addEventListener('click', () => { if (timer.start === null) timer.start = performance.now(); },
                            {capture: true, once: true});
  const poll = () => {
    const now = img();
    if (now && now.src !== before && now.complete && now.naturalWidth) timer.end = performance.now();
    else requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
}"""


RADIO_COLOURS_JS = """(input) => {
    const style = getComputedStyle(input);
    const probe = document.createElement("div");
    probe.style.color = style.getPropertyValue("--checkbox-background-color-selected");
    document.body.append(probe);
    const selected = getComputedStyle(probe).color;
    probe.remove();
    return [style.backgroundColor, selected];
}"""


def _click_and_time(page, x: float, y: float) -> float:
    """Click the result at (x, y) of its displayed box; seconds until the updated result shows."""
    page.evaluate(CLICK_TIMER_JS)
    box = page.locator("#points-result img").bounding_box()
    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
    try:  # as long as the first result may take: nice 15 on a machine a training keeps busy gets little CPU
        page.wait_for_function("() => window.tinctClickTimer.end !== null", timeout=4 * TIMEOUT_MS)
    except sync_api.TimeoutError:
        shown = page.evaluate("['#points-message', '#points-table'].map((i) => document.querySelector(i).innerText)")
        pytest.fail(f"no new result {4 * TIMEOUT_MS / 1000:.0f} s after the click; the line under it and the points: "
                    f"{shown!r}")
    timer = page.evaluate("window.tinctClickTimer")
    return (timer["end"] - timer["start"]) / 1000


def _server_seconds(page) -> float:
    text = page.locator("#points-message").inner_text()
    match = re.search(r"re-colorized in (\d+\.\d+) s", text)
    assert match, text
    return float(match.group(1))


def test_points_recolorize_a_one_megapixel_photo_after_each_click(page, one_megapixel_photo, tmp_path):
    from tinct.hints import read_hints

    page.locator("#points-photo input[type=file]").set_input_files(str(one_megapixel_photo))
    message = page.locator("#points-message")
    sync_api.expect(message).to_contain_text("0 points · re-colorized in", timeout=4 * TIMEOUT_MS)
    sync_api.expect(message).to_contain_text("at 1224x816")
    page.locator("#points-result img").scroll_into_view_if_needed()
    automatic = _result_image(page)
    assert automatic.shape == (816, 1224, 3)  # shown at full resolution: clicks need no mapping

    # A click on the water places a point with the model's own colour there.
    seconds = _click_and_time(page, 0.30, 0.80)
    server = _server_seconds(page)
    sync_api.expect(page.locator("#points-table")).to_contain_text("367")  # x = int((0.30 * 1224))
    proposed = page.locator("#points-colour input").first.input_value() if page.locator("#points-colour input").count() else ""
    print(f"\npoint placed: {seconds:.2f} s from the click to the new result in the browser, "
          f"{server:.2f} s re-colorizing on the server (load average {os.getloadavg()[0]:.1f})")
    # Recolour it red (what the colour picker sends), then the result must change near the point.
    with_point = _result_image(page)
    page.evaluate("window.tinctClickTimer = null")
    _pick_colour(page, "#e02010")
    page.wait_for_function("() => document.querySelector('#points-message').innerText.includes('1 point')")
    page.wait_for_timeout(200)
    sync_api.expect(page.locator("#points-table")).to_contain_text("#e02010", timeout=4 * TIMEOUT_MS)
    red = _result_image(page)
    near = (slice(640, 680), slice(330, 400))  # around (367, 652), clear of the marker's ring
    gain = (red[near][..., 0] - red[near][..., 2]).mean() - (with_point[near][..., 0] - with_point[near][..., 2]).mean()
    assert gain > 15, gain
    assert proposed == "" or proposed.lower() != "#e02010"

    download = _download(page, "#points-download-hints")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    hints, size = read_hints(saved)
    assert size == (1224, 816) and [(h.x, h.y, h.hex) for h in hints] == [(367.0, 652.0, "#e02010")]
    chosen = page.locator("#points-match input:checked")
    chosen.hover()  # the chosen option keeps its filled circle under the mouse (Gradio's hover style hid it)
    shown, selected = chosen.evaluate(RADIO_COLOURS_JS)
    assert shown == selected, (shown, selected)
    page.mouse.move(0, 0)
    page.locator("#points").screenshot(path=str(SCREENSHOTS / "web-hints.png"))

    # The 1 s target holds on a machine that is not busy; on a loaded one the times are reported.
    busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    if not busy:
        assert seconds <= POINT_SECONDS, f"{seconds:.2f} s from the click to the new result (server {server:.2f} s)"


def test_a_reference_photo_guides_the_colours_and_the_choice_sets_what_it_matches(page, tmp_path):
    from tinct.metrics import colorfulness

    Image.fromarray(gray_ramp(120, 160)).save(tmp_path / "ramp.png")
    reference = np.zeros((60, 80, 3), np.uint8)
    reference[:30], reference[30:] = (120, 140, 170), (160, 125, 110)  # sky over brick, softly
    Image.fromarray(reference).save(tmp_path / "reference.png")
    message = page.locator("#points-message")
    page.locator("#points-photo input[type=file]").set_input_files(str(tmp_path / "ramp.png"))
    sync_api.expect(message).to_contain_text("0 points · re-colorized in", timeout=4 * TIMEOUT_MS)
    page.locator("#points-reference input[type=file]").set_input_files(str(tmp_path / "reference.png"))
    # By default the reference sets its colours' mean and spread and its colourfulness.
    sync_api.expect(message).to_contain_text("0 points and a reference photo (its colours and colourfulness) · ",
                                             timeout=4 * TIMEOUT_MS)
    matched = _result_image(page)
    page.locator("#points-match").get_by_label("Which colours it has", exact=True).check()
    sync_api.expect(message).to_contain_text("0 points and a reference photo · ", timeout=4 * TIMEOUT_MS)
    guided = _result_image(page)
    want = colorfulness(reference)
    got = colorfulness(matched.astype(np.uint8))
    assert abs(got - want) < 0.1 * want < abs(colorfulness(guided.astype(np.uint8)) - want), (got, want)
    # Another gray photo keeps the reference (and the choice) the page shows.
    page.locator("#points-match").get_by_label("Which colours, and how colourful", exact=True).check()
    sync_api.expect(message).to_contain_text("(as colourful as it) · re-colorized in", timeout=4 * TIMEOUT_MS)
    Image.fromarray(gray_ramp(100, 150)).save(tmp_path / "ramp2.png")
    page.locator("#points-photo input[type=file]").set_input_files(str(tmp_path / "ramp2.png"))
    sync_api.expect(message).to_contain_text("(as colourful as it) · re-colorized in", timeout=4 * TIMEOUT_MS)
    sync_api.expect(message).to_contain_text("at 150x100")


def _download(page, selector: str, tries: int = 3):
    """Press a download button and return the download. The colour picker sends two events (the
    typed colour and Enter); a press that lands while the second one's answer briefly disables the
    button does nothing, as it would for a user, who presses again: so do we, a few times."""
    for attempt in range(tries):
        try:
            with page.expect_download(timeout=10_000) as info:
                page.locator(selector).click()
            return info.value
        except sync_api.TimeoutError:
            if attempt == tries - 1:
                raise


def _pick_colour(page, colour: str) -> None:
    """Set the colour picker as a user does: open it, type the hex code, confirm."""
    picker = page.locator("#points-colour")
    picker.locator("button").first.click()
    field = picker.locator("input[type=text]").first
    field.fill(colour)
    field.press("Enter")
    page.keyboard.press("Escape")


def test_a_short_clip_is_colorized_and_played(page, files, tmp_path):
    from tinct.video.io import write_video

    ramp = np.repeat(gray_ramp(120, 160)[..., None], 3, axis=2)
    clip = write_video(tmp_path / "old film.mp4", [np.roll(ramp, 4 * i, axis=1) for i in range(12)], 12)
    page.get_by_text("Video clip: colorize a short clip and play it").click()
    sync_api.expect(page.locator("#clip-limits")).to_contain_text("Clips up to 20 s and 1280x720")
    page.locator("#clip-input input[type=file]").set_input_files(str(clip))
    sync_api.expect(page.locator("#clip-input video")).to_have_count(1, timeout=TIMEOUT_MS)
    page.click("#clip-colorize")
    sync_api.expect(page.locator("#clip-message")).to_contain_text("colorized in", timeout=4 * TIMEOUT_MS)
    video = page.locator("#clip-result video")
    sync_api.expect(video).to_have_count(1)
    page.wait_for_function("() => document.querySelector('#clip-result video').readyState >= 2", timeout=TIMEOUT_MS)
    size = page.evaluate("(() => { const v = document.querySelector('#clip-result video');"
                         " return [v.videoWidth, v.videoHeight, v.duration]; })()")
    assert size[:2] == [160, 120] and abs(size[2] - 1.0) < 0.15, size
    page.locator("#clip").screenshot(path=str(SCREENSHOTS / "web-video.png"))
