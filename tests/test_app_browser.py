"""``tinct serve`` in a real browser: Debian's headless Chromium driven by Playwright.

The server runs as a subprocess (``python -m tinct serve``) on 127.0.0.1 with a tiny checkpoint
whose output bias paints everything a clear orange (a = +40, b = +30), so "the result has
colour" is a meaningful check. The browser may reach 127.0.0.1 only: any other request is
recorded and aborted, and the tests fail if there was one (the page must work offline).
No browser is ever downloaded: without /usr/bin/chromium (``.ci/install-browser.sh``) or the
playwright package these tests skip.
"""

from __future__ import annotations

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
MAX_MEGAPIXELS = 0.01  # 10,000 pixels: a 120x120 photo is "too large" and costs nothing
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
STARTUP_SECONDS = 90  # importing Gradio on a busy 2-core machine can take a while
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM} (.ci/install-browser.sh)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright for Python (dev extra)")
pytest.importorskip("gradio", reason="the web page needs the 'app' extra (gradio)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gray_photo(path: Path, height: int, width: int) -> Path:
    Image.fromarray(gray_ramp(height, width), "L").save(path)
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
    return {
        "folder": folder,
        "checkpoint": save_checkpoint(folder / "orange.safetensors", model),
        "photo": _gray_photo(folder / "street.png", 60, 84),
        "too_large": _gray_photo(folder / "poster.png", 120, 120),
        "text": text,
        "fake": fake,
        "example": _gray_photo(examples / "harbour.png", 40, 56),
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
        "--examples", str(files["example"].parent),
        "--threads", "1",
    ]
    log = open(files["folder"] / "server.log", "w+")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"tinct serve exited with status {process.returncode}:\n{log.read()}")
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

    def __call__(self, route):
        url = route.request.url
        self.requests.append(url)
        scheme = urlparse(url).scheme
        if scheme in ("data", "blob") or urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.external.append(url)
            route.abort()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    network = LocalOnly()
    context.route("**/*", network)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server)
    page.wait_for_selector("#colorize")
    yield page
    context.close()
    assert network.requests, "the page made no requests at all"
    assert network.external == [], f"the page tried to reach the internet: {network.external}"


def _upload(page, *paths: Path) -> None:
    page.locator("#uploads input[type=file]").set_input_files([str(p) for p in paths])
    # Wait until the gallery shows one thumbnail per file: the uploads have reached the server.
    sync_api.expect(page.locator("#uploads .thumbnail-item, #uploads .thumbnail-lg")).to_have_count(
        len(paths), timeout=TIMEOUT_MS
    )


def _expect_error(page, message: str) -> None:
    sync_api.expect(page.get_by_text(message, exact=False).first).to_be_visible(timeout=TIMEOUT_MS)
    assert page.locator(".result").count() == 0  # no result was shown


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


def test_files_that_are_not_images_get_clear_messages(page, files):
    # Plainly not an image: the browser refuses it at once, naming it.
    page.locator("#uploads input[type=file]").set_input_files(str(files["text"]))
    _expect_error(page, "Invalid file type: notes.txt")
    # Claims to be a photo but is not: the server refuses it, naming it.
    _upload(page, files["fake"])
    page.click("#colorize")
    _expect_error(page, "scan.jpg: not an image tinct can read")


def test_an_oversized_image_gets_a_clear_message(page, files):
    _upload(page, files["too_large"])
    page.click("#colorize")
    _expect_error(page, "poster.png: 120x120 is 0.014 megapixels, over the 0.01 megapixel limit.")


def test_limits_and_models_are_shown_and_an_example_is_one_click_away(page):
    sync_api.expect(page.locator("#limits")).to_contain_text("0.01 megapixels")
    sync_api.expect(page.locator("#model input")).to_have_value("orange")
    sync_api.expect(page.locator("#example-gallery img")).to_have_count(1)
    page.locator("#example-gallery").get_by_role("button", name="Thumbnail 1 of 1").click()
    sync_api.expect(page.locator("#download-0")).to_be_visible(timeout=TIMEOUT_MS)
    sync_api.expect(page.locator(".result-caption").first).to_contain_text("harbour.png")
