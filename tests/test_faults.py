"""Fault injection for ``tinct colorize`` and the writers in ``tinct.io`` (issue 15, "nothing lost").

Each case checks what a user relies on: no input changes, no partial or truncated file is left
or counted as done, every failure is named in one line, and the exit status tells the truth.
Faults: a full disk (a real 1 MB tmpfs when this process may mount one, and a write that fails
partway everywhere), folders that refuse new files, memory running out, ``kill -9`` during a
write, decompression bombs, and inputs given as outputs by path, symlink or hard link.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinct.cli import main


def _checksums(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _lines_naming(err: str, name: str) -> list[str]:
    return [line for line in err.splitlines() if name in line]


def _no_traceback(err: str) -> bool:
    return "Traceback" not in err


@pytest.fixture
def album(tmp_path) -> Path:
    """Four small gray photos: a.png, b.png, c.jpg and sub/d.png."""
    folder = tmp_path / "album"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for rel, shape in {"a.png": (30, 40), "b.png": (41, 23), "c.jpg": (24, 36), "sub/d.png": (17, 64)}.items():
        Image.fromarray(rng.integers(25, 230, shape, dtype=np.uint8), "L").save(folder / rel)
    return folder


def _colorize(*args: str | Path, model: Path) -> int:
    return main(["colorize", *map(str, args), "-m", str(model)])


# ---------------------------------------------------------------------------------------------
# An input is never the output
# ---------------------------------------------------------------------------------------------


def test_overwrite_into_the_input_folder_changes_no_input(album, tiny_checkpoint, capsys):
    before = _checksums(album)
    assert _colorize(album, "-o", album, "--overwrite", model=tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert _checksums(album) == before
    for rel in before:
        assert len(_lines_naming(err, f"{rel}: output would overwrite the input; refused")) == 1


def test_symlink_and_hard_link_to_an_input_are_refused_and_the_rest_done(album, tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    os.link(album / "a.png", out / "a.png")  # a hard link: another name for the input
    (out / "b.png").symlink_to(album / "b.png")
    before = _checksums(album)
    assert _colorize(album, "-o", out, "--overwrite", model=tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert _checksums(album) == before
    for name in ["a.png", "b.png"]:
        assert _lines_naming(err, f"{out / name}") == [
            f"tinct colorize: {album / name}: output {out / name} would overwrite the input {album / name}; refused"
        ]
    assert Image.open(out / "c.jpg").mode == "RGB" and Image.open(out / "sub" / "d.png").mode == "RGB"
    assert os.path.samefile(out / "a.png", album / "a.png") and (out / "b.png").is_symlink()


def test_an_output_that_is_another_named_input_is_refused(album, tiny_checkpoint, capsys):
    other = album / "a_color.png"
    shutil.copy(album / "b.png", other)
    before = other.read_bytes()
    assert _colorize(album / "a.png", other, "--overwrite", model=tiny_checkpoint) == 1
    assert other.read_bytes() == before
    assert len(_lines_naming(capsys.readouterr().err, f"would overwrite the input {other}")) == 1
    assert (album / "a_color_color.png").exists()  # the other input is still done


# ---------------------------------------------------------------------------------------------
# Full disk: nothing partial is left or counted as done
# ---------------------------------------------------------------------------------------------


def _fail_partway(monkeypatch) -> None:
    """Writes to tinct's temporary files stop partway: one short write, then "disk full"."""
    real_write = os.write
    calls = {"count": 0}

    def write(fd, data):
        if ".part" not in os.readlink(f"/proc/self/fd/{fd}"):
            return real_write(fd, data)
        calls["count"] += 1
        if calls["count"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell file descriptors apart")
def test_a_write_failing_partway_leaves_nothing_and_a_rerun_redoes_it(
    album, tmp_path, tiny_checkpoint, monkeypatch, capsys
):
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _fail_partway(patch)
        assert _colorize(album / "a.png", "-o", out / "one.png", model=tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert list(out.iterdir()) == []  # neither the photo nor a temporary file
    assert len(_lines_naming(err, f"{out / 'one.png'}: cannot write (No space left on device)")) == 1
    assert "colorized 0 photos" in err
    assert _colorize(album / "a.png", "-o", out / "one.png", model=tiny_checkpoint) == 0
    assert Image.open(out / "one.png").size == (40, 30)


@pytest.fixture
def small_tmpfs(tmp_path) -> Path:
    """An empty 1 MB tmpfs (needs the right to mount one), or skip."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; the partway-failing write covers this case")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill_leaving(folder: Path, free: int) -> None:
    stats = os.statvfs(folder)
    (folder / "filler").write_bytes(bytes(stats.f_bavail * stats.f_frsize - free))
    stats = os.statvfs(folder)
    assert stats.f_bavail * stats.f_frsize == free


def test_a_nearly_full_disk_leaves_no_truncated_jpeg(tmp_path, tiny_checkpoint, small_tmpfs, capsys):
    noise = np.random.default_rng(1).integers(0, 256, (150, 200), dtype=np.uint8)
    Image.fromarray(noise, "L").save(tmp_path / "noise.png")
    assert _colorize(tmp_path / "noise.png", "-o", tmp_path / "reference.jpg", model=tiny_checkpoint) == 0
    size = (tmp_path / "reference.jpg").stat().st_size  # one write: Pillow's JPEG blocks are 64 KB
    page = os.statvfs(small_tmpfs).f_frsize
    _fill_leaving(small_tmpfs, (size // page) * page)  # all but the last page: the write is cut short
    target = small_tmpfs / "one.jpg"
    for _ in range(2):  # a rerun fails the same way rather than skipping it as "output exists"
        assert _colorize(tmp_path / "noise.png", "-o", target, model=tiny_checkpoint) == 1
        err = capsys.readouterr().err
        assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler"]
        assert len(_lines_naming(err, f"{target}: cannot write (No space left on device)")) == 1
        assert "output exists" not in err and "colorized 0 photos" in err


# ---------------------------------------------------------------------------------------------
# One photo's failure, memory included, stops nothing else
# ---------------------------------------------------------------------------------------------


def test_running_out_of_memory_on_one_photo_names_it_and_does_the_rest(
    album, tmp_path, tiny_checkpoint, monkeypatch, capsys
):
    from tinct.infer import Colorizer

    original = Colorizer.colorize_many

    def colorize_many(self, photos):
        photos = list(photos)
        if any(p.lightness.shape == (41, 23) for p in photos):  # b.png
            raise MemoryError
        yield from original(self, photos)

    monkeypatch.setattr(Colorizer, "colorize_many", colorize_many)
    out = tmp_path / "out"
    assert _colorize(album, "-o", out, model=tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert _lines_naming(err, "b.png") == [f"tinct colorize: {album / 'b.png'}: cannot colorize (out of memory)"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == ["a.png", "c.jpg", "sub/d.png"]
    assert "3 photos" in err and "1 failed" in err and _no_traceback(err)


def test_running_out_of_memory_while_decoding_names_the_photo(album, tmp_path, tiny_checkpoint, monkeypatch, capsys):
    import tinct.io

    original = tinct.io.read_image

    def read_image(path, **options):
        if Path(path).name == "c.jpg":
            raise MemoryError
        return original(path, **options)

    monkeypatch.setattr(tinct.io, "read_image", read_image)
    assert _colorize(album, "-o", tmp_path / "out", model=tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert _lines_naming(err, "c.jpg") == [f"tinct colorize: skipped {album / 'c.jpg'}: out of memory while decoding"]
    assert len(list((tmp_path / "out").rglob("*.*"))) == 3 and _no_traceback(err)


# ---------------------------------------------------------------------------------------------
# Folders that refuse new files, and -o naming a plain file
# ---------------------------------------------------------------------------------------------


def test_an_unwritable_output_folder_is_reported_before_any_photo_is_colorized(
    album, tmp_path, tiny_checkpoint, monkeypatch, capsys
):
    from tinct.infer import Colorizer

    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open

    def open_(path, flags, *args, **kwargs):  # root ignores permission bits, so refuse here
        if flags & os.O_CREAT and os.fspath(path).startswith(os.fspath(locked)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    colorized = []
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(Colorizer, "colorize_many", lambda self, photos: colorized.append(photos) or [])
    assert _colorize(album, "-o", locked, model=tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert colorized == []
    assert _lines_naming(err, "cannot write") == [
        f"tinct colorize: {locked}: cannot write there (Permission denied); 3 photos not colorized",
        f"tinct colorize: {locked / 'sub'}: cannot write there (Permission denied); 1 photo not colorized",
    ]
    assert "4 failed" in err


def test_o_naming_an_existing_plain_file_is_one_line(album, tmp_path, tiny_checkpoint, capsys):
    plain = tmp_path / "notes"
    plain.write_text("mine")
    assert _colorize(album, "-o", plain, model=tiny_checkpoint) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"tinct colorize: -o {plain}: is a file, not a folder (name a folder, or an image file for one input)"
    ]
    assert plain.read_text() == "mine"


def test_an_output_folder_under_a_plain_file_is_one_line(album, tmp_path, tiny_checkpoint, capsys):
    plain = tmp_path / "notes"
    plain.write_text("mine")
    assert _colorize(album / "a.png", album / "b.png", "-o", plain / "out", model=tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert "Errno" not in err
    assert _lines_naming(err, "cannot write") == [
        f"tinct colorize: {plain / 'out'}: cannot write there (Not a directory); 2 photos not colorized"
    ]


# ---------------------------------------------------------------------------------------------
# kill -9 during a write
# ---------------------------------------------------------------------------------------------

_STALLED_WRITER = """
import os, sys, time
from tinct.io import write_bytes_atomic

def stall(fd):
    print("writing", flush=True)
    time.sleep(60)

os.fsync = stall  # stop after the bytes are written, before the rename
write_bytes_atomic(sys.argv[1], b"x" * 100_000)
"""


def test_kill_9_during_a_write_leaves_no_output_and_a_rerun_cleans_up(album, tmp_path, tiny_checkpoint, capsys):
    target = tmp_path / "out" / "a.png"
    writer = subprocess.Popen([sys.executable, "-c", _STALLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
    finally:
        writer.kill()
        writer.wait()
    leftovers = [p.name for p in target.parent.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".a.png.") and leftovers[0].endswith(".part")
    assert _colorize(album / "a.png", "-o", target.parent, model=tiny_checkpoint) == 0
    assert [p.name for p in target.parent.iterdir()] == ["a.png"]
    assert Image.open(target).size == (40, 30)
    assert f"removed {target.parent / leftovers[0]} (left by an interrupted run)" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Decompression bombs
# ---------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_bomb(path: Path, side: int = 30_000) -> Path:
    """A valid all-black 1-bit PNG of side x side pixels: about 110 KB on disk for 30000,
    over 13 GB once decoded and colorized. Written row block by row block, never in memory."""
    rows = (b"\x00" + bytes((side + 7) // 8)) * 1000  # filter byte + packed bits, 1000 rows
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(rows) for _ in range(side // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, gray
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(signature + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_refused_at_once(tmp_path, tiny_checkpoint, capsys):
    bomb = write_png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200_000
    start = time.perf_counter()
    assert _colorize(bomb, model=tiny_checkpoint) == 1
    assert time.perf_counter() - start < 1.0
    err = capsys.readouterr().err
    assert _lines_naming(err, "bomb.png") == [
        f"tinct colorize: skipped {bomb}: 30000 x 30000 pixels (900 megapixels) is over the limit of "
        "50 megapixels (--max-megapixels)"
    ]
    assert not (tmp_path / "bomb_color.png").exists()


def test_pillows_own_bomb_error_is_the_same_one_line(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses above 200 pixels
    assert _colorize(tmp_path / "small.png", "--max-megapixels", "1000", model=tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert _lines_naming(err, "small.png") == [
        f"tinct colorize: skipped {tmp_path / 'small.png'}: 0.0004 megapixels is over the limit of "
        "0.0002 megapixels (--max-megapixels)"
    ]
