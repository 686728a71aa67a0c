"""A screenshot of the web page doing its real job: the shipped model on the shipped example photos.

    .venv/bin/python bench/web_screenshot.py --out docs/images/web-examples-1280.png

Starts ``tinct serve`` (default model, default examples) on a free local port, opens it in
Debian's Chromium (``/usr/bin/chromium``, through Playwright) at 1280 x 900, uploads the
example photos named by ``--photos``, presses *Colorize*, waits for every result and saves
a screenshot of the first result with the slider half-way. Prints the seconds from the click
to the last result. The browser tests' screenshots use a tiny test model on gray ramps; this
one shows what a user sees.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tinct serve exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"tinct serve did not answer on {url} within {seconds:.0f} s")


def screenshot(url: str, photos: list[Path], out: Path) -> float:
    """Upload ``photos``, colorize them and save the page at the first result; returns the
    seconds from the click to the last result."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.locator("#uploads input[type=file]").set_input_files([str(p) for p in photos])
        expect(page.locator("#uploads .thumbnail-item, #uploads .thumbnail-lg")).to_have_count(len(photos))
        start = time.perf_counter()
        page.click("#colorize")
        expect(page.locator("#progress [data-state=done]")).to_be_visible()
        expect(page.locator(f"#download-{len(photos) - 1}")).to_be_visible()
        seconds = time.perf_counter() - start
        page.locator("#slider-0").scroll_into_view_if_needed()
        page.mouse.wheel(0, -120)  # the photo's caption and the page's top edge in view
        page.wait_for_timeout(500)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "web-examples-1280.png")
    parser.add_argument("--photos", nargs="+", default=["rooster.jpg", "ferry.jpg"],
                        help="example photo names (tinct.examples_dir())")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (.ci/install-browser.sh)")
    import tinct

    photos = [tinct.examples_dir() / name for name in args.photos]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise SystemExit(f"no such example photo: {', '.join(missing)}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen([sys.executable, "-m", "tinct", "serve", "--port", str(port)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for(url, process, 300)
        seconds = screenshot(url, photos, args.out)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"{len(photos)} example photos colorized in the page in {seconds:.2f} s (click to last result); "
          f"screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
