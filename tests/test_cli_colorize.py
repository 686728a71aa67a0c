import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tinct.cli import main
from tinct.color import cielab_lightness, gray_to_lightness

from conftest import gray_ramp


@pytest.fixture
def scans(tmp_path):
    folder = tmp_path / "scans"
    (folder / "album" / "1950").mkdir(parents=True)
    rng = np.random.default_rng(0)
    sizes = {"a.png": (30, 40), "album/b.png": (41, 23), "album/1950/c.png": (17, 64)}
    for rel, shape in sizes.items():
        Image.fromarray(rng.integers(25, 230, shape, dtype=np.uint8), "L").save(folder / rel)
    Image.fromarray(gray_ramp(), "L").save(folder / "album" / "d.jpg", quality=95)
    (folder / "album" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def test_folder_is_mirrored_and_a_corrupt_file_is_named(scans, tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    status = main(["colorize", str(scans), "-o", str(out), "-m", str(tiny_checkpoint), "-q"])
    err = capsys.readouterr().err
    assert status == 1
    assert "broken.png" in err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "album/1950/c.png", "album/b.png", "album/d.jpg"]
    for rel in ["a.png", "album/b.png", "album/1950/c.png"]:
        gray = np.asarray(Image.open(scans / rel))
        result = Image.open(out / rel)
        assert result.size == (gray.shape[1], gray.shape[0]) and result.mode == "RGB"
        rgb = np.asarray(result)
        assert np.abs(cielab_lightness(rgb) - gray_to_lightness(gray)).mean() < 0.5
        assert np.ptp(rgb.astype(int), axis=2).mean() > 10  # coloured, not gray


def test_summary_counts_failures(scans, tmp_path, tiny_checkpoint, capsys):
    main(["colorize", str(scans), "-o", str(tmp_path / "o"), "-m", str(tiny_checkpoint)])
    err = capsys.readouterr().err
    assert "colorized 4 photos" in err and "1 failed" in err


def test_single_file_goes_beside_it_and_is_not_overwritten(scans, tiny_checkpoint, capsys):
    source = scans / "a.png"
    assert main(["colorize", str(source), "-m", str(tiny_checkpoint)]) == 0
    target = scans / "a_color.png"
    assert target.exists()
    before = target.read_bytes()
    target.write_bytes(b"user's own edit")
    assert main(["colorize", str(source), "-m", str(tiny_checkpoint)]) == 0
    assert target.read_bytes() == b"user's own edit"
    assert "skipped (output exists" in capsys.readouterr().err
    assert main(["colorize", str(source), "-m", str(tiny_checkpoint), "--overwrite"]) == 0
    assert target.read_bytes() == before


def test_input_is_never_overwritten(scans, tiny_checkpoint, capsys):
    source = scans / "a.png"
    before = source.read_bytes()
    assert main(["colorize", str(source), "-o", str(source), "-m", str(tiny_checkpoint)]) == 1
    assert source.read_bytes() == before
    assert "would overwrite the input" in capsys.readouterr().err


def test_globs_and_files_mix_and_o_file(scans, tmp_path, tiny_checkpoint):
    out = tmp_path / "mixed"
    pattern = str(scans / "album" / "**" / "*.png")
    assert main(["colorize", pattern, str(scans / "a.png"), "-o", str(out), "-m", str(tiny_checkpoint)]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    single = tmp_path / "single.jpg"
    assert main(["colorize", str(scans / "a.png"), "-o", str(single), "-m", str(tiny_checkpoint)]) == 0
    assert Image.open(single).format == "JPEG"


def test_o_file_with_many_inputs_is_an_error(scans, tmp_path, tiny_checkpoint, capsys):
    assert main(["colorize", str(scans), "-o", str(tmp_path / "x.png"), "-m", str(tiny_checkpoint)]) == 2
    assert "names one file" in capsys.readouterr().err


def test_missing_input_and_bad_model(tmp_path, tiny_checkpoint, capsys):
    assert main(["colorize", str(tmp_path / "nope.jpg"), "-m", str(tiny_checkpoint)]) == 2
    assert "nope.jpg: no such file" in capsys.readouterr().err
    Image.fromarray(gray_ramp(), "L").save(tmp_path / "g.png")
    assert main(["colorize", str(tmp_path / "g.png"), "-m", "tinctnte"]) == 2
    assert "unknown model 'tinctnte'" in capsys.readouterr().err


def test_console_script_runs(tmp_path, tiny_checkpoint):
    Image.fromarray(gray_ramp(), "L").save(tmp_path / "g.png")
    done = subprocess.run(
        [sys.executable, "-m", "tinct", "colorize", str(tmp_path / "g.png"), "-m", str(tiny_checkpoint)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "g_color.png").exists()


def _color_of(path) -> float:
    """Mean spread between RGB channels: 0 for gray."""
    return float(np.ptp(np.asarray(Image.open(path).convert("RGB")).astype(int), axis=2).mean())


def test_symlinked_files_in_a_folder_are_mirrored(scans, tmp_path, tiny_checkpoint):
    links = tmp_path / "links"
    (links / "inner").mkdir(parents=True)
    (links / "x.png").symlink_to(scans / "a.png")
    (links / "inner" / "y.png").symlink_to(scans / "album" / "b.png")
    out = tmp_path / "out"
    assert main(["colorize", str(links), "-o", str(out), "-m", str(tiny_checkpoint), "-q"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["inner/y.png", "x.png"]
    assert Image.open(out / "x.png").size == Image.open(scans / "a.png").size


def test_running_twice_beside_inputs_does_not_colorize_own_outputs(scans, tiny_checkpoint, capsys):
    (scans / "album" / "broken.png").unlink()
    assert main(["colorize", str(scans), "-m", str(tiny_checkpoint)]) == 0
    first = sorted(p.name for p in scans.rglob("*_color*"))
    assert first == ["a_color.png", "b_color.png", "c_color.png", "d_color.jpg"]
    capsys.readouterr()
    assert main(["colorize", str(scans), "-m", str(tiny_checkpoint)]) == 0
    assert sorted(p.name for p in scans.rglob("*_color*")) == first
    err = capsys.readouterr().err
    assert f"skipped {scans / 'a_color.png'}: output of {scans / 'a.png'}, not colorized again" in err
    assert "4 skipped (output exists" in err


def test_an_output_folder_inside_the_input_folder_is_not_searched(scans, tiny_checkpoint, capsys):
    out = scans / "out"
    for _ in range(2):
        main(["colorize", str(scans), "-o", str(out), "-m", str(tiny_checkpoint), "-q"])
    assert not (out / "out").exists()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == [
        "a.png", "album/1950/c.png", "album/b.png", "album/d.jpg"
    ]
    assert f"skipped {out}: the output folder, not searched" in capsys.readouterr().err


def test_every_file_a_folder_walk_leaves_out_is_named(scans, tmp_path, tiny_checkpoint, capsys):
    (scans / "notes.txt").write_text("not a photo")
    (scans / ".thumb.png").write_bytes((scans / "a.png").read_bytes())
    (scans / ".cache").mkdir()
    (scans / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    main(["colorize", str(scans), "-o", str(tmp_path / "out"), "-m", str(tiny_checkpoint), "-q"])
    err = capsys.readouterr().err
    for path, reason in [
        ("notes.txt", "not an image file (tinct reads .jpg"),
        (".thumb.png", "hidden file"),
        (".cache", "hidden folder, not searched"),
        ("elsewhere", "symlinked folder, not followed"),
    ]:
        assert f"skipped {scans / path}: {reason}" in err


def test_o_name_gif_writes_a_gif_and_a_gif_is_read(scans, tmp_path, tiny_checkpoint):
    out = tmp_path / "one.gif"
    assert main(["colorize", str(scans / "a.png"), "-o", str(out), "-m", str(tiny_checkpoint)]) == 0
    assert out.is_file() and Image.open(out).format == "GIF" and _color_of(out) > 10
    again = tmp_path / "again.png"
    assert main(["colorize", str(out), "-o", str(again), "-m", str(tiny_checkpoint)]) == 0
    assert Image.open(again).size == Image.open(scans / "a.png").size


def test_an_animated_gif_is_colorized_frame_by_frame(tmp_path, tiny_checkpoint):
    frames = [Image.fromarray(np.full((20, 30), level, np.uint8)) for level in (60, 120, 180)]
    source = tmp_path / "folder" / "blink.gif"
    source.parent.mkdir()
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=[100, 250, 400], loop=3)
    assert main(["colorize", str(source.parent), "-o", str(tmp_path / "out"), "-m", str(tiny_checkpoint)]) == 0
    result = Image.open(tmp_path / "out" / "blink.gif")
    assert result.format == "GIF" and result.n_frames == 3 and result.info["loop"] == 3
    durations, means = [], []
    for index in range(3):
        result.seek(index)
        rgb = np.asarray(result.convert("RGB")).astype(int)
        durations.append(result.info["duration"])
        means.append(rgb.mean())
        assert np.ptp(rgb, axis=2).mean() > 10  # coloured
    assert durations == [100, 250, 400] and means == sorted(means)  # each frame keeps its lightness


def test_max_megapixels_is_documented_and_used(scans, tiny_checkpoint, capsys):
    from tinct.batch import ColorizeOptions
    from tinct.cli.colorize import DEFAULT_MAX_MEGAPIXELS
    from tinct.io import DEFAULT_MAX_MEGAPIXELS as LIBRARY_DEFAULT

    assert DEFAULT_MAX_MEGAPIXELS == LIBRARY_DEFAULT == ColorizeOptions().max_megapixels
    with pytest.raises(SystemExit):
        main(["colorize", "--help"])
    assert "--max-megapixels" in capsys.readouterr().out
    source = scans / "a.png"  # 40 x 30 = 1200 pixels
    assert main(["colorize", str(source), "-m", str(tiny_checkpoint), "--max-megapixels", "0.001"]) == 1
    assert "is over the limit of 0.001 megapixels (--max-megapixels)" in capsys.readouterr().err
    assert main(["colorize", str(source), "-m", str(tiny_checkpoint), "--max-megapixels", "0.002"]) == 0


def test_examples_flag_colorizes_the_shipped_photos(tmp_path, tiny_checkpoint, capsys):
    import tinct

    out = tmp_path / "examples"
    assert main(["colorize", "--examples", "-o", str(out), "-m", str(tiny_checkpoint), "-q"]) == 0
    shipped = sorted(p.name for p in tinct.examples_dir().iterdir() if p.suffix in (".jpg", ".png"))
    assert len(shipped) == 5 and sorted(p.name for p in out.iterdir()) == shipped
    assert "CREDITS.md" not in capsys.readouterr().err  # the folder's credits are not reported as a skipped photo


def test_the_library_returns_a_summary_and_prints_nothing(scans, tmp_path, tiny_checkpoint, capsys):
    import tinct
    from tinct.batch import BatchError, InputNotFoundError, expand_inputs, plan_jobs

    summary = tinct.colorize_folder(scans, tmp_path / "out", tiny_checkpoint)
    assert (summary.done, summary.failed, summary.existing) == (4, 1, 0)
    assert len(summary.failures) == 1 and "broken.png" in summary.failures[0]
    assert summary.model_name == "tiny" and len(summary.jobs) == 5
    assert capsys.readouterr().out == "" and capsys.readouterr().err == ""
    heard = []
    again = tinct.colorize_folder([scans], tmp_path / "out", tiny_checkpoint, on_failure=heard.append)
    assert (again.done, again.failed, again.existing, again.model_name) == (0, 1, 4, None)
    assert heard == again.failures
    # Planning alone: an input is never an output, two inputs never share one.
    found, _ = expand_inputs([str(scans / "a.png")])
    plan = plan_jobs(found, str(scans / "a.png"))
    assert plan.jobs == [] and plan.refused == [f"{scans / 'a.png'}: output would overwrite the input; refused"]
    with pytest.raises(BatchError, match="names one file but 5 inputs"):
        plan_jobs(expand_inputs([str(scans)])[0], str(tmp_path / "one.png"))
    with pytest.raises(InputNotFoundError, match="no such file or folder"):
        tinct.colorize_folder(tmp_path / "nowhere", tmp_path / "out")
