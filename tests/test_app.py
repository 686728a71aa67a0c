"""The web page's logic without a browser: limits, colorizing as the CLI does, zips, and the
Gradio API of a running page (errors come back as one readable line)."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinct.app import (
    Batch,
    Limits,
    Pace,
    Progress,
    UploadRejected,
    Workspace,
    check_added_file,
    check_uploads,
    colorize_file,
    colorize_uploads,
    find_examples,
    load_colorizers,
    result_name,
    zip_results,
)
from tinct.infer import Colorizer

from conftest import REPO, gray_ramp

HAS_GRADIO = importlib.util.find_spec("gradio") is not None  # found, not imported: tinct.app imports it faster


def _save_gray(path: Path, height: int = 24, width: int = 36) -> Path:
    Image.fromarray(gray_ramp(height, width), "L").save(path)
    return path


@pytest.fixture
def colorizer(tiny_checkpoint) -> Colorizer:
    return Colorizer(tiny_checkpoint, threads=1)


# --- limits -----------------------------------------------------------------------------


def test_limits_accept_good_photos(tmp_path):
    paths = [_save_gray(tmp_path / "a.png"), _save_gray(tmp_path / "b.jpg")]
    assert check_uploads([str(p) for p in paths], Limits()) == paths


def test_limits_reject_nothing_uploaded():
    with pytest.raises(UploadRejected, match="No photos"):
        check_uploads([], Limits())


def test_limits_reject_too_many_files(tmp_path):
    paths = [_save_gray(tmp_path / f"p{i}.png") for i in range(4)]
    with pytest.raises(UploadRejected, match=r"4 given, the limit is 3"):
        check_uploads(paths, Limits(max_files=3))


def test_limits_reject_a_text_file_by_name(tmp_path):
    good = _save_gray(tmp_path / "good.png")
    text = tmp_path / "notes.txt"
    text.write_text("not a photo\n")
    with pytest.raises(UploadRejected) as info:
        check_uploads([good, text], Limits())
    message = str(info.value)
    assert message.startswith("notes.txt: not an image") and "\n" not in message
    assert str(tmp_path) not in message  # the server's temp path means nothing to the user


def test_limits_reject_an_empty_file(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.touch()
    with pytest.raises(UploadRejected, match=r"^empty\.jpg: the file is empty"):
        check_uploads([empty], Limits())


def test_limits_reject_too_many_bytes(tmp_path):
    # Random pixels do not compress: 256x256x3 bytes of noise make a PNG of about 0.19 MB.
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    path = tmp_path / "noisy.png"
    Image.fromarray(noise).save(path)
    assert 0.15 < path.stat().st_size / 2**20 < 0.25
    with pytest.raises(UploadRejected) as info:
        check_uploads([path], Limits(max_mb=0.1))
    assert str(info.value) == "noisy.png: 0.2 MB is over the 0.1 MB limit per photo."
    assert check_uploads([path], Limits(max_mb=0.25)) == [path]


def test_limits_reject_too_many_pixels_from_the_header_alone(tmp_path):
    path = _save_gray(tmp_path / "wide.png", height=50, width=40)  # 2000 px = 0.002 MP
    with pytest.raises(UploadRejected) as info:
        check_uploads([path], Limits(max_megapixels=0.0015))
    assert str(info.value) == "wide.png: 40x50 is 0.0020 megapixels, over the 0.0015 megapixel limit."
    assert check_uploads([path], Limits(max_megapixels=0.002)) == [path]  # the limit itself is allowed


def _cut(path: Path, keep: float = 0.5) -> Path:
    """``path`` cut short, as an interrupted download or copy leaves it."""
    data = path.read_bytes()
    cut = path.with_name(f"cut-{path.name}")
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "photo.webp", "photo.tif", "photo.bmp"])
def test_added_file_check_finds_a_file_cut_short_and_says_so_plainly(tmp_path, name):
    whole = _save_gray(tmp_path / name, 120, 160)
    check_added_file(whole, Limits())  # a complete file passes
    with pytest.raises(UploadRejected) as info:
        check_added_file(_cut(whole), Limits())
    assert str(info.value) == (f"cut-{name}: the file is incomplete (it stops part of the way through the image); "
                               "add a complete copy.")


def test_added_file_check_applies_the_limits_and_names_non_images(tmp_path):
    fake = tmp_path / "scan.jpg"
    fake.write_text("a text file with a photo's name")
    with pytest.raises(UploadRejected, match=r"^scan\.jpg: not an image tinct can read \(use JPEG, PNG"):
        check_added_file(fake, Limits())
    wide = _save_gray(tmp_path / "wide.png", 50, 40)
    with pytest.raises(UploadRejected, match=r"^wide\.png: 40x50 is 0\.0020 megapixels"):
        check_added_file(wide, Limits(max_megapixels=0.0015))


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_files"):
        Limits(max_files=0)


# --- colorizing -------------------------------------------------------------------------


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).copy()


def test_page_result_equals_the_library_result(tmp_path, colorizer, tiny_checkpoint):
    source = _save_gray(tmp_path / "ramp.png", 30, 44)
    out = tmp_path / "out"
    out.mkdir()
    result = colorize_file(colorizer, source, out, ".png")
    expected = Colorizer(tiny_checkpoint, threads=1)(source)
    got = _read(result.output)
    assert result.output.name == "ramp_color.png"
    assert got.shape == expected.shape == (30, 44, 3)
    np.testing.assert_array_equal(got, expected)
    # The tiny checkpoint predicts a=+40, b=+30 everywhere: the result is clearly coloured.
    assert np.abs(got[..., 0].astype(int) - got[..., 2]).mean() > 20
    assert (result.width, result.height) == (44, 30) and result.seconds > 0
    assert result.model == "tiny"
    assert result.before is None and sorted(p.name for p in out.iterdir()) == ["ramp_color.png"]


def test_page_keeps_alpha_and_16_bit_like_the_library(tmp_path, colorizer, tiny_checkpoint):
    gray = gray_ramp(20, 28)
    rgba = Image.fromarray(gray, "L").convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(0, 252, 9, dtype=np.uint8), (20, 1))))
    rgba.save(tmp_path / "alpha.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "deep.tif")
    expected_library = Colorizer(tiny_checkpoint, threads=1)
    for name in ("alpha.png", "deep.tif"):
        result = colorize_file(colorizer, tmp_path / name, tmp_path, ".png")
        np.testing.assert_array_equal(_read(result.output), expected_library(tmp_path / name))
    assert _read(tmp_path / "alpha_color.png").shape == (20, 28, 4)


def test_page_honours_exif_orientation_like_the_library(tmp_path, colorizer, tiny_checkpoint):
    gray = gray_ramp(16, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(gray, "L").save(tmp_path / "turned.jpg", exif=exif, quality=95)
    result = colorize_file(colorizer, tmp_path / "turned.jpg", tmp_path, ".png")
    got = _read(result.output)
    assert got.shape == (40, 16, 3)
    np.testing.assert_array_equal(got, Colorizer(tiny_checkpoint, threads=1)(tmp_path / "turned.jpg"))


def test_jpeg_download_is_a_jpeg_close_to_the_png(tmp_path, colorizer):
    source = _save_gray(tmp_path / "ramp.png", 32, 32)
    png = colorize_file(colorizer, source, tmp_path, ".png")
    jpeg = colorize_file(colorizer, source, tmp_path, ".jpg")
    with Image.open(jpeg.output) as image:
        assert image.format == "JPEG"
    difference = np.abs(_read(jpeg.output).astype(int) - _read(png.output).astype(int))
    assert difference.mean() < 3


def test_previews_have_equal_size_and_are_small(tmp_path, colorizer, monkeypatch):
    monkeypatch.setattr("tinct.app.PREVIEW_SIDE", 20)
    result = colorize_file(colorizer, _save_gray(tmp_path / "big.png", 30, 50), tmp_path, ".png", previews=True)
    with Image.open(result.before) as before, Image.open(result.after) as after:
        assert before.size == after.size == (20, 12)
        gray = np.asarray(before.convert("RGB")).astype(int)
    assert np.abs(gray[..., 0] - gray[..., 2]).max() <= 2  # "before" is neutral gray
    assert _read(result.output).shape == (30, 50, 3)  # the download stays full size


def test_previews_of_a_transparent_photo_keep_its_transparency(tmp_path, colorizer, monkeypatch):
    monkeypatch.setattr("tinct.app.PREVIEW_SIDE", 20)
    rgba = Image.fromarray(gray_ramp(30, 40), "L").convert("RGBA")
    alpha = np.zeros((30, 40), np.uint8)
    alpha[:, 20:] = 255  # the left half is transparent
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(tmp_path / "cutout.png")
    result = colorize_file(colorizer, tmp_path / "cutout.png", tmp_path / "out", ".png", previews=True)
    assert _read(result.output).shape == (30, 40, 4)  # the download is the cut-out ...
    for preview in (result.before, result.after):  # ... and so are both previews (PNG, not JPEG)
        with Image.open(preview) as image:
            assert image.format == "PNG" and image.size == (20, 15)
            shown = np.asarray(image.getchannel("A"))
        assert shown[:, :9].max() == 0 and shown[:, 11:].min() == 255
    opaque = colorize_file(colorizer, _save_gray(tmp_path / "plain.png"), tmp_path / "out", ".png", previews=True)
    assert opaque.before.suffix == opaque.after.suffix == ".jpg"  # no alpha: small JPEG previews


def test_colorize_file_reads_up_to_the_limit_it_is_given(tmp_path, colorizer):
    source = _save_gray(tmp_path / "wide.png", 30, 40)  # 0.0012 MP
    with pytest.raises(UploadRejected) as info:
        colorize_file(colorizer, source, tmp_path, ".png", max_megapixels=0.001)
    message = str(info.value)
    assert message.startswith("wide.png: 40 x 30 pixels") and message.endswith("over the 0.001 megapixel limit.")
    assert colorize_file(colorizer, source, tmp_path, ".png", max_megapixels=None).width == 40


def test_truncated_file_is_rejected_by_name(tmp_path, colorizer):
    source = _save_gray(tmp_path / "whole.png", 40, 40)
    data = source.read_bytes()
    broken = tmp_path / "broken.png"
    broken.write_bytes(data[: len(data) // 2])
    check_uploads([broken], Limits())  # the header is fine ...
    with pytest.raises(UploadRejected) as info:  # ... the pixels are not
        colorize_file(colorizer, broken, tmp_path, ".png")
    # Said plainly, not as the decoder says it ("image file is truncated (20 bytes not processed)").
    assert str(info.value).startswith("broken.png: the file is incomplete")
    assert "truncated" not in str(info.value) and "bytes" not in str(info.value)


def test_pace_learns_seconds_per_megapixel_and_counts_small_photos_as_a_minimum():
    pace = Pace(min_megapixels=0.25, weight=0.5)
    assert pace.seconds_left([1.0, 2.0]) is None
    pace.record(megapixels=4.0, seconds=2.0)  # 0.5 s per MP
    assert pace.seconds_left([1.0, 2.0]) == pytest.approx(1.5)
    assert pace.seconds_left([0.01]) == pytest.approx(0.125)  # a tiny photo costs the overhead of 0.25 MP
    assert pace.seconds_left([1.0, 2.0], elapsed=5.0) == pytest.approx(1.0)  # the current one is late: 0 left of it
    pace.record(megapixels=1.0, seconds=1.5)  # 1.5 s per MP: the mean follows, (0.5 + 1.5) / 2
    assert pace.seconds_per_megapixel == pytest.approx(1.0)


def test_progress_names_the_photo_with_n_of_n_and_the_time_left():
    assert Progress("a.jpg", 2, 3, 0.4, 6.2).describe() == "Colorizing a.jpg (2 / 3) · about 6 s left"
    assert Progress("a.jpg", 1, 3, 0.0, None).describe() == "Colorizing a.jpg (1 / 3) · estimating the time left"
    assert Progress("a.jpg", 3, 3, 0.8, 1.2).describe() == "Colorizing a.jpg (3 / 3) · about 1 s left"
    assert Progress("a.jpg", 3, 3, 0.9, 0.4).describe() == "Colorizing a.jpg (3 / 3) · almost done"
    assert Progress("a.jpg", 1, 9, 0.1, 75).describe() == "Colorizing a.jpg (1 / 9) · about 1 min 15 s left"


class _SlowColorizer:
    """A colorizer that takes ``seconds`` per photo, to see progress reported meanwhile."""

    def __init__(self, colorizer, seconds: float):
        self.colorizer, self.seconds, self.name = colorizer, seconds, colorizer.name

    def colorize_photo(self, photo):
        time.sleep(self.seconds)
        return self.colorizer.colorize_photo(photo)


def test_colorize_uploads_reports_progress_while_it_works_then_the_batch(tmp_path, colorizer):
    paths = [_save_gray(tmp_path / "one.png", 20, 30), _save_gray(tmp_path / "two.png", 30, 20)]
    uploads = [(p, 30 if p.name == "one.png" else 20, 20 if p.name == "one.png" else 30) for p in paths]
    pace = Pace()
    out = tmp_path / "out"
    out.mkdir()
    steps = list(colorize_uploads(_SlowColorizer(colorizer, 0.2), uploads, out, ".png", pace, every=0.02))
    reports, batch = steps[:-1], steps[-1]
    assert isinstance(batch, Batch) and all(isinstance(r, Progress) for r in reports)
    assert [r.output.name for r in batch.results] == ["one_color.png", "two_color.png"]
    assert batch.archive is not None and batch.archive.name == "tinct-results.zip"
    # Several reports per photo (the work runs beside them), in order, never going backwards.
    assert sum(r.number == 1 for r in reports) >= 3 and sum(r.number == 2 for r in reports) >= 3
    assert [r.number for r in reports] == sorted(r.number for r in reports)
    assert all(r.name == ("one.png" if r.number == 1 else "two.png") and r.count == 2 for r in reports)
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] < 1
    # Nothing timed before the first photo; from the second on, a time left.
    assert reports[0].seconds_left is None and all(r.seconds_left is not None for r in reports if r.number == 2)
    assert pace.seconds_per_megapixel > 0


def test_result_names_stay_unique():
    taken: set[str] = set()
    names = [result_name(n, ".png", taken) for n in ("a.jpg", "a.png", "b.tif", "a.webp")]
    assert names == ["a_color.png", "a_color-2.png", "b_color.png", "a_color-3.png"]


def test_zip_holds_every_result_unchanged(tmp_path, colorizer):
    taken: set[str] = set()
    results = [
        colorize_file(colorizer, _save_gray(tmp_path / name), tmp_path, ".png", taken)
        for name in ("one.png", "two.jpg")
    ]
    archive = zip_results([r.output for r in results], tmp_path / "all.zip")
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["one_color.png", "two_color.png"]
        for r in results:
            assert z.read(r.output.name) == r.output.read_bytes()


def test_workspace_prunes_old_requests(tmp_path):
    workspace = Workspace(tmp_path / "ws", keep_seconds=60)
    old = workspace.new_request_dir()
    (old / "x.png").write_bytes(b"x")
    import os

    os.utime(old, (0, 0))
    fresh = workspace.new_request_dir()
    assert not old.exists() and fresh.is_dir()
    workspace.remove()
    assert not workspace.root.exists()


def test_model_names_are_unique(tmp_path, tiny_checkpoint):
    (tmp_path / "other").mkdir()
    copy = tmp_path / "other" / "tiny.safetensors"
    copy.write_bytes(Path(tiny_checkpoint).read_bytes())
    (tmp_path / "third").mkdir()
    third = tmp_path / "third" / "tiny.safetensors"
    third.write_bytes(Path(tiny_checkpoint).read_bytes())
    names = list(load_colorizers([tiny_checkpoint, copy, str(tiny_checkpoint), third], threads=1))
    assert names == ["tiny", "other/tiny", "third/tiny"]


def test_examples_are_found_or_absent(tmp_path):
    assert find_examples(tmp_path / "missing") == []
    _save_gray(tmp_path / "b.png")
    _save_gray(tmp_path / "a.jpg")
    (tmp_path / "README.md").write_text("credits")
    assert [p.name for p in find_examples(tmp_path)] == ["a.jpg", "b.png"]


def test_the_shipped_examples_are_package_data():
    # Found beside the package (not by walking up to a checkout), and listed in the wheel's data.
    import tomllib

    import tinct

    shipped = find_examples()
    assert [p.name for p in shipped] == ["bonsai.png", "ferry.jpg", "rooster.jpg", "strawberry.jpg", "sunflower.jpg"]
    assert all(p.parent == tinct.examples_dir() == Path(tinct.__file__).resolve().parent / "examples" for p in shipped)
    assert (tinct.examples_dir() / "CREDITS.md").is_file()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["tinct"]
    weights = [p for p in (Path(tinct.__file__).resolve().parent / "weights").iterdir() if p.is_file()]
    assert "SHA256SUMS" in [p.name for p in weights]  # without it, installed weights are refused as unverified
    for path in [*shipped, tinct.examples_dir() / "CREDITS.md", *weights]:
        assert any(path.match(f"tinct/{pattern}") for pattern in patterns), path


# --- the running page's API -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A page served in this process on 127.0.0.1, with a 40x40-pixel limit of 0.0016 MP."""
    if not HAS_GRADIO:
        pytest.skip("the web page needs the 'app' extra (gradio)")
    gradio_client = pytest.importorskip("gradio_client", reason="needs gradio_client (installed with gradio)")
    from tinct.app import build_app, launch
    from tinct.color import LAB
    from tinct.models import create_model, save_checkpoint

    folder = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    model = create_model("tinctnet", width=4, input_size=32, head="regression")
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.atanh(torch.tensor([40.0, 30.0]) / LAB.ab_norm))
    checkpoint = save_checkpoint(folder / "tiny.safetensors", model)
    colorizers = load_colorizers([checkpoint], threads=1)
    limits = Limits(max_megapixels=0.0016, max_mb=1, max_files=2)
    app = build_app(colorizers, limits, examples=[], workspace=Workspace(folder / "work"))
    port = _free_port()
    launch(app, port=port, block=False)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(folder / "dl"))
        yield client, folder, checkpoint
    finally:
        app.close()


def _gallery(*paths: Path) -> list[dict]:
    from gradio_client import handle_file

    return [{"image": handle_file(str(p)), "caption": None} for p in paths]


def test_api_returns_full_resolution_results_equal_to_the_library(served):
    client, folder, checkpoint = served
    photos = [_save_gray(folder / "one.png", 20, 30), _save_gray(folder / "two.png", 30, 20)]
    files = client.predict(_gallery(*photos), "tiny", "PNG", api_name="/colorize")
    assert [Path(f).name for f in files] == ["one_color.png", "two_color.png"]
    expected = Colorizer(checkpoint, threads=1)
    for photo, file in zip(photos, files):
        np.testing.assert_array_equal(_read(Path(file)), expected(photo))


def test_api_jpeg_format(served):
    client, folder, _ = served
    files = client.predict(_gallery(_save_gray(folder / "three.png")), "tiny", "JPEG", api_name="/colorize")
    assert [Path(f).name for f in files] == ["three_color.jpg"]
    with Image.open(files[0]) as image:
        assert image.format == "JPEG" and image.size == (36, 24)


@pytest.mark.parametrize(
    "case, message",
    [
        ("fake", "scan.jpg: not an image tinct can read"),
        ("pixels", "huge.png: 41x40 is 0.00164 megapixels, over the 0.0016 megapixel limit."),
        ("count", "Too many photos at once: 3 given, the limit is 2."),
        ("text", "notes.txt: not an image tinct can read"),  # tinct, not Gradio, checks the API's files
        ("model", "Unknown model 'nope'; choose one of tiny."),
        ("format", "Unknown download format 'GIF'; choose PNG or JPEG."),
    ],
)
def test_api_errors_are_one_readable_line_and_one_log_line(served, capfd, case, message):
    from gradio_client.exceptions import AppError

    client, folder, _ = served
    model, download_format = "tiny", "PNG"
    if case == "fake":
        fake = folder / "scan.jpg"
        fake.write_text("a text file with a photo's name")
        items = _gallery(fake)
    elif case == "text":
        text = folder / "notes.txt"
        text.write_text("hello")
        items = _gallery(text)
    elif case == "pixels":
        items = _gallery(_save_gray(folder / "huge.png", 40, 41))
    elif case == "count":
        items = _gallery(*(_save_gray(folder / f"n{i}.png") for i in range(3)))
    else:
        items = _gallery(_save_gray(folder / "fine.png"))
        model, download_format = ("nope", "PNG") if case == "model" else ("tiny", "GIF")
    capfd.readouterr()
    with pytest.raises(AppError) as info:
        client.predict(items, model, download_format, api_name="/colorize")
    assert message in str(info.value)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
    # The server's log: one line for the refused request, no traceback.
    log = capfd.readouterr().err
    assert "Traceback" not in log
    assert [line for line in log.splitlines() if line.strip()] == [f"tinct serve: refused: {str(info.value)}"]


@pytest.mark.skipif(not HAS_GRADIO, reason="the web page needs the 'app' extra (gradio)")
def test_gradio_is_imported_only_for_the_page_and_without_rewriting_its_stubs():
    # `import tinct.app` stays cheap; offline_gradio() skips Gradio's import-time .pyi rewriting
    # (about half of `import gradio`, so of `tinct serve`'s start-up).
    code = (
        "import sys, tinct.app as app\n"
        "assert 'gradio' not in sys.modules\n"
        "app.offline_gradio()\n"
        "import gradio.component_meta as meta\n"
        "print(meta.create_or_modify_pyi(object, 'Nothing', []) is None, meta.create_or_modify_pyi.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "<lambda>"]


# --- the command line -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-files", "0"], "tinct serve: --max-files must be positive, got 0"),
        (["--max-mb", "-1"], "tinct serve: --max-mb must be positive, got -1.0"),
        (["--port", "70000"], "tinct serve: --port must be in 1..65535, got 70000"),
        (["--model", "/no/such/model.safetensors"], "tinct serve: /no/such/model.safetensors: no such checkpoint"),
    ],
)
def test_serve_refuses_bad_arguments_in_one_line(capsys, args, message):
    from tinct.cli import main

    assert main(["serve", "--port", str(_free_port()), *args]) == 2
    assert capsys.readouterr().err.strip() == message


def test_serve_refuses_a_busy_port(capsys, tiny_checkpoint):
    from tinct.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--model", str(tiny_checkpoint), "--port", str(port)]) == 2
    expected = f"tinct serve: port {port} on 127.0.0.1 is in use; pick another with --port"
    assert capsys.readouterr().err.strip() == expected


# --- colour with points (issue 18) ------------------------------------------------------


@pytest.fixture(scope="module")
def hint_colorizer():
    from tinct.web.point_tab import HintModel

    return HintModel(threads=1).load()  # the shipped tinct-v2-hints


def _points_session(hint_colorizer, height: int = 48, width: int = 64):
    from tinct.io import photo_from_array
    from tinct.web import points

    return points.start_session(hint_colorizer, photo_from_array(gray_ramp(height, width)), "ramp.png")


def test_a_new_point_takes_the_models_own_colour_there(hint_colorizer):
    from tinct.hints import colorize_with_hints
    from tinct.web import points

    session = _points_session(hint_colorizer)
    automatic = session.result.copy()
    np.testing.assert_array_equal(automatic, colorize_with_hints(hint_colorizer, session.photo))
    points.add_point(hint_colorizer, session, (40, 20))
    assert [(h.x, h.y) for h in session.hints] == [(40.0, 20.0)]
    assert session.hints[0].rgb == tuple(int(v) for v in automatic[20, 40])
    assert session.selected == 0
    np.testing.assert_array_equal(
        session.result, colorize_with_hints(hint_colorizer, session.photo, session.hints)
    )  # re-colorized with the point, at full resolution
    assert session.result.shape == (48, 64, 3)


def test_recolouring_a_point_moves_the_colour_near_it(hint_colorizer):
    from tinct.color import rgb_to_lab
    from tinct.web import points

    session = _points_session(hint_colorizer)
    points.add_point(hint_colorizer, session, (32, 24))
    before = rgb_to_lab(session.result[20:29, 28:37])[..., 2].mean()
    points.recolour_selected(hint_colorizer, session, "#1040e0")  # a strong blue: b far below 0
    after = rgb_to_lab(session.result[20:29, 28:37])[..., 2].mean()
    assert session.hints[0].hex == "#1040e0"
    assert after < before - 5, (before, after)
    with pytest.raises(points.PointRefused, match="is not a colour"):
        points.recolour_selected(hint_colorizer, session, "blue")


def test_points_are_moved_and_deleted_and_refused_without_a_selection(hint_colorizer):
    from tinct.web import points

    session = _points_session(hint_colorizer)
    points.add_point(hint_colorizer, session, (5, 5))
    points.add_point(hint_colorizer, session, (50, 40))
    assert points.point_rows(session)[1][:3] == [2, 50, 40]
    session.selected = 0
    colour = session.hints[0].rgb
    points.move_selected(hint_colorizer, session, (10, 30))
    assert (session.hints[0].x, session.hints[0].y, session.hints[0].rgb) == (10.0, 30.0, colour)
    points.delete_selected(hint_colorizer, session)
    assert [(h.x, h.y) for h in session.hints] == [(50.0, 40.0)] and session.selected is None
    with pytest.raises(points.PointRefused, match="Select a point first"):
        points.delete_selected(hint_colorizer, session)


def test_clicks_map_from_the_preview_to_full_resolution_and_outside_clicks_are_refused():
    from tinct.io import Photo
    from tinct.web import points

    photo = Photo(lightness=np.zeros((2000, 3200), np.float32))  # shown at 1600 x 1000
    session = points.PointSession(photo, "big.png", np.zeros((2000, 3200, 3), np.uint8))
    assert session.preview_size == (1600, 1000)
    assert points.full_position(session, (0, 0)) == (1, 1)  # the centre of preview pixel 0
    assert points.full_position(session, (100, 50)) == (201, 101)
    assert points.full_position(session, (1599, 999)) == (3199, 1999)
    for outside in [(1600, 10), (10, 1000), (-1, 5)]:
        with pytest.raises(points.PointRefused, match=r"is outside the photo \(1600x1000 as shown\)"):
            points.full_position(session, outside)
    with pytest.raises(points.PointRefused, match="Add a gray photo first"):
        points.full_position(None, (1, 1))


def test_the_exact_pointer_position_is_used_when_it_agrees_with_gradios_index():
    from tinct.io import Photo
    from tinct.web import points

    # 1224 x 816 shown in a 702 px wide box (0.574): Chromium's click at 256.72 CSS px is
    # whole pixel 256, which Gradio maps to preview pixel 366; the pointer was over 367.2.
    photo = Photo(lightness=np.zeros((816, 1224), np.float32))
    session = points.PointSession(photo, "ferry.png", np.zeros((816, 1224, 3), np.uint8))
    per_css = 1 / 0.5738549
    exact = f"367.19,652.80,{per_css}"
    assert points.full_position(session, (366, 653), exact) == (367, 652)
    assert points.full_position(session, (366, 653)) == (366, 653)  # no pointer: the centre of Gradio's pixel
    for stale in [f"380.5,652.8,{per_css}", "367.2,652.8", "a,b,c", "nan,652.8,1.7", "367.2,652.8,0", ""]:
        assert points.full_position(session, (366, 653), stale) == (366, 653), stale  # another click's, or malformed
    assert points.full_position(session, (1223, 0), f"1224.4,-0.3,{per_css}") == (1223, 0)  # kept inside the photo
    # On a downscaled preview the pointer picks the photo pixel, finer than a preview pixel.
    big = points.PointSession(Photo(np.zeros((2000, 3200), np.float32)), "big.png", np.zeros((2000, 3200, 3), np.uint8))
    assert points.full_position(big, (100, 50), "100.9,50.2,2.5") == (201, 100)
    with pytest.raises(points.PointRefused, match="is outside the photo"):
        points.full_position(big, (1600, 10), "1599.5,10.5,2.5")  # Gradio's index decides inside or out


def test_hints_json_and_result_downloads_round_trip(tmp_path, hint_colorizer):
    from tinct.hints import read_hints
    from tinct.web import points

    session = _points_session(hint_colorizer)
    points.add_point(hint_colorizer, session, (12, 7))
    points.recolour_selected(hint_colorizer, session, "#c03020")
    points.add_point(hint_colorizer, session, (60, 44))
    result, hints_file = points.write_downloads(session, tmp_path)
    assert (result.name, hints_file.name) == ("ramp_color.png", "ramp.hints.json")
    hints, size = read_hints(hints_file)
    assert hints == session.hints and size == (64, 48)
    with Image.open(result) as image:
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), session.result)
    preview = points.write_preview(session, tmp_path / "preview.jpg")
    with Image.open(preview) as image:
        assert image.size == (64, 48)


@pytest.mark.skipif(not HAS_GRADIO, reason="the web page needs the 'app' extra (gradio)")
def test_point_section_says_in_one_line_why_a_click_is_refused(tmp_path, hint_colorizer, capfd):
    from types import SimpleNamespace

    from tinct.app import offline_gradio
    from tinct.web.point_tab import MOVE, HintModel, PointTab

    model = HintModel()
    model._colorizer = hint_colorizer
    tab = PointTab(offline_gradio(), model, lambda: Path(tempfile_dir(tmp_path)), None)
    tab.ui = SimpleNamespace(state="state", result="result", table="table", picker="picker", message="message",
                             download_result="download_result", download_hints="download_hints")  # fmt: skip
    shown = tab.click(None, "Add a point", SimpleNamespace(index=[3, 4]))
    assert "Add a gray photo first" in shown["message"] and 'data-state="refused"' in shown["message"]
    photo = _save_gray(tmp_path / "old.png", 48, 64)
    shown = tab.open_photo(str(photo))
    session = shown["state"]
    assert shown["table"] == [] and Path(shown["result"]).is_file()
    shown = tab.click(session, "Add a point", SimpleNamespace(index=[64, 10]))
    assert "(64, 10) is outside the photo (64x48 as shown)" in shown["message"]
    shown = tab.click(session, MOVE, SimpleNamespace(index=[3, 4]))
    assert "Select a point first" in shown["message"]
    shown = tab.click(session, "Add a point", SimpleNamespace(index=[30, 20]))
    assert shown["table"][0][:3] == [1, 30, 20] and shown["picker"] == session.hints[0].hex
    assert "1 point · re-colorized in" in shown["message"] and "64x48" in shown["message"]
    shown = tab.click(session, "Add a point", SimpleNamespace(index=[40, 9]), "41.2,8.9,1.3")  # the page's pointer
    assert shown["table"][1][:3] == [2, 41, 8]
    # The picker repeating the selected point's colour shows nothing new; the downloads are
    # written once per result, and asked again they offer the same files, enabled.
    skip = tab.gr.skip()
    assert tab.recolour(session, session.hints[1].hex) == dict.fromkeys(shown, skip)
    first = tab.downloads(session)
    again = tab.downloads(session)
    assert first[0].value and first[1].value
    assert [b.value["path"] for b in again] == [b.value["path"] for b in first] and again[1].interactive
    shown = tab.recolour(session, "#1040e0")
    assert shown["table"][1][3] == "#1040e0" and "2 points · re-colorized in" in shown["message"]
    assert not shown["download_hints"].interactive  # the previous files cannot be taken until the new ones are written
    assert tab.downloads(session)[1].value != first[1].value
    assert "tinct serve: refused: (64, 10) is outside the photo" in capfd.readouterr().err


def tempfile_dir(root: Path) -> Path:
    import uuid

    folder = root / uuid.uuid4().hex[:8]
    folder.mkdir()
    return folder


# --- a video clip (issue 17) ------------------------------------------------------------


def _clip(path: Path, frames: int = 6, size=(64, 48), rate: int = 12) -> Path:
    from tinct.video.io import write_video

    ramp = np.repeat(gray_ramp(size[1], size[0])[..., None], 3, axis=2)
    return write_video(path, [np.roll(ramp, 3 * i, axis=1) for i in range(frames)], rate)


def test_clips_over_the_limits_are_refused_in_one_line_before_any_work(tmp_path):
    from tinct.web.clip import ClipLimits, ClipRefused, check_clip

    clip = _clip(tmp_path / "film.mp4", frames=12, rate=12)  # 1 s
    info = check_clip(clip, ClipLimits())
    assert (info.width, info.height) == (64, 48)
    with pytest.raises(ClipRefused, match=r"^film.mp4: 1.0 s is longer than the 0.5 s limit for clips.$"):
        check_clip(clip, ClipLimits(max_seconds=0.5))
    with pytest.raises(ClipRefused, match=r"^film.mp4: 64x48 is larger than the 60x40 limit for clips.$"):
        check_clip(clip, ClipLimits(max_long=60, max_short=40))
    with pytest.raises(ClipRefused, match=r"MB is over the 0.001 MB limit per clip"):
        check_clip(clip, ClipLimits(max_mb=0.001))
    text = tmp_path / "notes.mp4"
    text.write_text("not a clip")
    with pytest.raises(ClipRefused, match="^notes.mp4: not a video clip tinct can read"):
        check_clip(text)
    assert ClipLimits().describe() == "Clips up to 20 s and 1280x720 (either way round), up to 100 MB."


def test_a_clip_is_colorized_by_the_video_pipeline_with_progress(tmp_path, tiny_checkpoint):
    from tinct.video import VideoColorizer
    from tinct.video.io import probe_video, read_frames
    from tinct.web.clip import ClipLimits, ClipTab

    clip = _clip(tmp_path / "film.mp4")
    video = VideoColorizer(Colorizer(tiny_checkpoint, threads=1))
    reports = []
    tab = ClipTab(None, lambda: video, lambda: tempfile_dir(tmp_path), ClipLimits())
    output, message = tab.colorize(str(clip), lambda done, desc: reports.append((done, desc)))
    assert Path(output).name == "film_color.mp4"
    info = probe_video(output)
    assert (info.width, info.height, info.frames) == (64, 48, 6)
    frames = list(read_frames(output))
    assert all((f[..., 0].astype(int) - f[..., 2]).mean() > 20 for f in frames)  # orange: colour arrived
    assert [done for done, _ in reports] == [(n, 6) for n in range(1, 7)]
    assert reports[-1][1] == "Colorizing film.mp4: frame 6 of about 6"
    assert message.startswith("film.mp4: 64x48, about 6 frames, colorized in ")
    output, message = ClipTab(None, lambda: video, lambda: tmp_path, ClipLimits(max_seconds=0.1)).colorize(str(clip))
    assert output is None and message == "film.mp4: 0.5 s is longer than the 0.1 s limit for clips."


def test_the_reference_choice_sets_what_the_reference_matches(hint_colorizer):
    from tinct.metrics import colorfulness
    from tinct.web import points

    session = _points_session(hint_colorizer)
    assert session.reference_match == "colors"  # the library's default
    assert points.set_reference_match(hint_colorizer, None, "colorfulness") is None  # no photo: nothing to do
    with pytest.raises(points.PointRefused, match="Unknown choice"):
        points.set_reference_match(hint_colorizer, session, "vivid")
    version = session.version
    points.set_reference_match(hint_colorizer, session, "colorfulness")  # no reference yet: not re-colorized
    assert session.reference_match == "colorfulness" and session.version == version
    reference = np.zeros((40, 40, 3), np.uint8)
    reference[:20], reference[20:] = (120, 140, 170), (160, 125, 110)  # a reachable colourfulness
    points.set_reference(hint_colorizer, session, reference)
    matched = colorfulness(session.result)
    points.set_reference_match(hint_colorizer, session, "histogram")
    assert session.version == version + 2
    plain = colorfulness(session.result)
    want = colorfulness(reference)
    assert abs(matched - want) < 0.05 * want < abs(plain - want), (matched, plain, want)
    points.set_reference_match(hint_colorizer, session, "colors")
    assert session.version == version + 3 and abs(colorfulness(session.result) - want) < 0.05 * want


def test_a_new_photo_keeps_the_reference_the_page_shows(tmp_path, hint_colorizer):
    from types import SimpleNamespace

    from tinct.app import offline_gradio
    from tinct.web.point_tab import HintModel, PointTab

    model = HintModel()
    model._colorizer = hint_colorizer
    tab = PointTab(offline_gradio(), model, lambda: Path(tempfile_dir(tmp_path)), None)
    tab.ui = SimpleNamespace(state="state", result="result", table="table", picker="picker", message="message",
                             download_result="download_result", download_hints="download_hints")  # fmt: skip
    photo = _save_gray(tmp_path / "old.png", 48, 64)
    reference = np.zeros((20, 20, 3), np.uint8)
    reference[:, :10], reference[:, 10:] = (120, 140, 170), (160, 125, 110)
    Image.fromarray(reference).save(tmp_path / "reference.png")
    shown = tab.open_photo(str(photo), str(tmp_path / "reference.png"), "colorfulness")
    session = shown["state"]
    np.testing.assert_array_equal(session.reference, reference)
    assert session.reference_match == "colorfulness"
    assert "and a reference photo (as colourful as it)" in shown["message"]
    (tmp_path / "broken.png").write_bytes(b"not a photo")
    shown = tab.open_photo(str(photo), str(tmp_path / "broken.png"))
    assert "broken.png" in shown["message"] and 'data-state="refused"' in shown["message"]
