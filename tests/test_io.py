import ast
import errno
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from tinct.io import (
    Animation,
    ImageReadError,
    ImageTooLargeError,
    check_image,
    check_writable_folder,
    list_images,
    photo_from_array,
    read_image,
    read_photo,
    read_rgb,
    remove_stale_partials,
    scan_folder,
    sha256_file,
    write_animation,
    write_bytes_atomic,
    write_image,
    write_text_atomic,
)

from conftest import gray_ramp


def _expected_lightness(gray_u8: np.ndarray) -> np.ndarray:
    return skcolor.rgb2lab(np.repeat(gray_u8[..., None], 3, axis=2))[..., 0]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif", ".bmp"])
def test_formats_read_gray(tmp_path, suffix):
    gray = gray_ramp()
    path = tmp_path / f"g{suffix}"
    options = {"quality": 100} if suffix in (".jpg", ".webp") else {}
    if suffix == ".webp":
        options["lossless"] = True
    Image.fromarray(gray, "L").save(path, **options)
    photo = read_photo(path)
    assert photo.lightness.shape == gray.shape and photo.alpha is None
    tolerance = 1.0 if suffix == ".jpg" else 1e-3  # JPEG is lossy even at quality 100
    np.testing.assert_allclose(photo.lightness, _expected_lightness(gray), atol=tolerance)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16", "1"])
def test_every_mode(tmp_path, mode):
    gray = gray_ramp()
    base = Image.fromarray(gray, "L")
    if mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode == "LA":
        image = base.convert("LA")
        image.putalpha(Image.fromarray(np.full(gray.shape, 77, np.uint8)))
    elif mode == "RGBA":
        image = base.convert("RGBA")
        image.putalpha(Image.fromarray(np.full(gray.shape, 200, np.uint8)))
    else:
        image = base.convert(mode)
    suffix = ".tif" if mode in ("CMYK", "I;16") else ".png"
    path = tmp_path / f"m{suffix}"
    image.save(path)
    photo = read_photo(path)
    assert photo.lightness.shape == gray.shape
    if mode == "1":
        assert set(np.unique(photo.lightness.round(3))) <= {0.0, 100.0}
        return
    tolerance = 1.0 if mode == "CMYK" else 0.05  # CMYK round trip through Pillow is approximate
    np.testing.assert_allclose(photo.lightness, _expected_lightness(gray), atol=tolerance)
    if mode in ("LA", "RGBA"):
        assert photo.alpha is not None and np.all(photo.alpha == (77 if mode == "LA" else 200))


def test_colour_input_uses_its_lightness(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_allclose(read_photo(tmp_path / "c.png").lightness, skcolor.rgb2lab(rgb)[..., 0], atol=1e-3)


def test_exif_orientation_is_honoured(tmp_path):
    gray = gray_ramp(10, 30)  # landscape on disk
    image = Image.fromarray(gray, "L")
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif, quality=100)
    photo = read_photo(tmp_path / "r.jpg")
    assert photo.lightness.shape == (30, 10)
    # after a clockwise turn, the left (dark) end of the ramp is at the top
    assert photo.lightness[0].mean() < photo.lightness[-1].mean()
    assert read_rgb(tmp_path / "r.jpg").shape == (30, 10, 3)


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"this is not an image at all", "not an image"), (None, "cannot decode")],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    if content is None:  # a truncated JPEG
        Image.fromarray(gray_ramp(64, 64), "L").save(path, quality=90)
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_photo(path)
    message = str(info.value)
    assert str(path) in message and reason in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_photo(tmp_path / "nope.png")


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    out = write_image(tmp_path / "sub" / "o.png", rgb)
    assert out.exists() and sorted(p.name for p in out.parent.iterdir()) == ["o.png"]  # no temp left
    with pytest.raises(FileExistsError, match="exists"):
        write_image(out, rgb)
    rgb[:] = 9
    write_image(out, rgb, overwrite=True)
    assert np.asarray(Image.open(out))[0, 0, 0] == 9


def test_write_keeps_alpha_where_the_format_can(tmp_path):
    rgb = np.full((4, 5, 3), 100, np.uint8)
    alpha = np.full((4, 5), 33, np.uint8)
    png = Image.open(write_image(tmp_path / "a.png", rgb, alpha))
    assert png.mode == "RGBA" and np.asarray(png)[..., 3].max() == 33
    jpg = Image.open(write_image(tmp_path / "a.jpg", rgb, alpha))
    assert jpg.mode == "RGB"


def test_write_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="unknown image suffix"):
        write_image(tmp_path / "a.xyz", np.zeros((2, 2, 3), np.uint8))


def test_photo_from_array_validates():
    with pytest.raises(ValueError, match=r"got \(2, 2, 5\)"):
        photo_from_array(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match="values in \\[0, 1\\]"):
        photo_from_array(np.full((2, 2), 3.0))
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 3] = 128
    photo = photo_from_array(rgba)
    assert photo.alpha.tolist() == [[128] * 3] * 2


def test_list_images_recursive_sorted(tmp_path):
    for rel in ["b/2.png", "a/1.JPG", "a/.hidden.png", "notes.txt", "c/d/3.webp"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a/1.JPG", "b/2.png", "c/d/3.webp"]


def test_list_images_leaves_out_broken_symlinks_and_scan_folder_says_why(tmp_path):
    Image.fromarray(gray_ramp(), "L").save(tmp_path / "a.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    (tmp_path / ".git").mkdir()
    (tmp_path / "readme.md").write_text("x")
    scan = scan_folder(tmp_path)
    assert scan.images == list_images(tmp_path) == [tmp_path / "a.png"]
    assert scan.skipped == [
        (tmp_path / ".git", "hidden folder, not searched"),
        (tmp_path / "gone.png", "broken symlink"),
        (tmp_path / "readme.md", "not an image file (tinct reads .jpg .jpeg .png .webp .tif .tiff .bmp .gif)"),
    ]
    assert scan_folder(tmp_path, exclude=[tmp_path / ".git"]).skipped[0][1] == "the output folder, not searched"


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def _short_writes(monkeypatch, most: int, then_fail_after: int | None = None) -> None:
    """os.write writes at most ``most`` bytes a call; after ``then_fail_after`` calls: disk full."""
    real_write, calls = os.write, []

    def write(fd, data):
        calls.append(fd)
        if then_fail_after is not None and len(calls) > then_fail_after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, bytes(data[:most]))

    monkeypatch.setattr(os, "write", write)


def test_write_bytes_atomic_continues_short_writes(tmp_path, monkeypatch):
    data = np.random.default_rng(0).bytes(10_000)
    with monkeypatch.context() as patch:
        _short_writes(patch, most=999)
        assert write_bytes_atomic(tmp_path / "sub" / "blob.bin", data) == tmp_path / "sub" / "blob.bin"
    assert (tmp_path / "sub" / "blob.bin").read_bytes() == data
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["blob.bin"]


def test_a_failed_atomic_write_names_the_file_keeps_the_old_one_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "report.txt"
    target.write_text("old and complete")
    with monkeypatch.context() as patch:
        _short_writes(patch, most=100, then_fail_after=3)
        with pytest.raises(OSError) as info:
            write_text_atomic(target, "new " * 1000)
    assert info.value.errno == errno.ENOSPC and str(info.value) == f"[Errno 28] No space left on device: '{target}'"
    assert target.read_text() == "old and complete"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]


def test_write_image_encodes_in_memory_so_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with monkeypatch.context() as patch:
        _short_writes(patch, most=1000, then_fail_after=2)
        with pytest.raises(OSError, match="No space left on device"):
            write_image(tmp_path / "o.png", rgb)
    assert list(tmp_path.iterdir()) == []
    assert np.array_equal(np.asarray(Image.open(write_image(tmp_path / "o.png", rgb))), rgb)


def test_atomic_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_bytes_atomic(tmp_path / "a.bin", b"x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_remove_stale_partials_removes_only_leftovers_of_dead_writers(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead = tmp_path / f".a.png.{ended.pid}-0123abcd.part"
    alive = tmp_path / f".a.png.{os.getpid()}-4567cdef.part"
    legacy_old = tmp_path / ".a.png.k2j_x9zq.part"
    other_target = tmp_path / f".b.png.{ended.pid}-89abcdef.part"
    for path in (dead, alive, legacy_old, other_target):
        path.write_bytes(b"partial")
    os.utime(legacy_old, (0, 0))  # written long ago by a version without process ids
    assert sorted(remove_stale_partials([tmp_path / "a.png"])) == sorted([dead, legacy_old])
    assert alive.exists() and other_target.exists()


def test_check_writable_folder(tmp_path):
    check_writable_folder(tmp_path / "new" / "deep")
    assert (tmp_path / "new" / "deep").is_dir() and list((tmp_path / "new" / "deep").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        check_writable_folder(tmp_path / "file")
    with pytest.raises(NotADirectoryError, match=str(tmp_path / "file" / "sub")):
        check_writable_folder(tmp_path / "file" / "sub")


# ---------------------------------------------------------------------------------------------
# The pixel limit, before decoding
# ---------------------------------------------------------------------------------------------


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims ``width x height`` and whose pixel data is garbage: only a
    reader that decodes would notice."""
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))


def test_images_over_the_limit_are_refused_from_the_header(tmp_path):
    path = tmp_path / "huge.png"
    _png_header_only(path, 9_000, 8_000)
    for reader in (read_photo, read_image, check_image):
        with pytest.raises(ImageTooLargeError) as info:
            reader(path, max_megapixels=50)
        assert str(info.value) == (
            f"{path}: 9000 x 8000 pixels (72 megapixels) is over the limit of 50 megapixels (max_megapixels)"
        )
        assert info.value.path == path and info.value.limit == 50
    with pytest.raises(ImageReadError, match="cannot decode"):  # under a raised limit it is decoded
        read_photo(path, max_megapixels=80)


def test_pillows_bomb_error_becomes_image_too_large(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "s.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageTooLargeError, match="0.0004 megapixels is over the limit of 0.0002 megapixels"):
        read_rgb(tmp_path / "s.png")


# ---------------------------------------------------------------------------------------------
# GIF and animations
# ---------------------------------------------------------------------------------------------


def _animated_gif(path, levels=(50, 150, 250), durations=(80, 120, 160), loop=0):
    frames = [Image.fromarray(np.full((6, 8), v, np.uint8)) for v in levels]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=list(durations), loop=loop)
    return path


def test_read_image_gives_an_animation_with_its_timing(tmp_path):
    animation = read_image(_animated_gif(tmp_path / "a.gif"))
    assert isinstance(animation, Animation) and animation.durations == [80, 120, 160] and animation.loop == 0
    means = [float(frame.lightness.mean()) for frame in animation.frames]
    assert means == sorted(means) and means[0] < 30 < 90 < means[-1]  # each frame its own lightness
    assert read_photo(tmp_path / "a.gif").lightness.shape == (6, 8)  # read_photo: the first frame
    with pytest.raises(ImageTooLargeError, match=r"8 x 6 pixels x 3 frames"):
        read_image(tmp_path / "a.gif", max_megapixels=100e-6)  # 144 pixels in all


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_write_animation_round_trip(tmp_path, suffix):
    frames = [np.full((6, 8, 3), (v, 255 - v, 90), np.uint8) for v in (30, 130, 230)]
    path = write_animation(tmp_path / f"a{suffix}", frames, [100, 200, 300], loop=2)
    animation = read_image(path)
    assert isinstance(animation, Animation) and animation.durations == [100, 200, 300] and animation.loop == 2


def test_write_animation_refuses_a_format_without_frames(tmp_path):
    with pytest.raises(ValueError, match="JPEG cannot hold an animation"):
        write_animation(tmp_path / "a.jpg", [np.zeros((2, 2, 3), np.uint8)] * 2, [10, 10])


def test_gif_is_an_image_suffix(tmp_path):
    rgb = np.full((4, 5, 3), (200, 40, 40), np.uint8)
    path = write_image(tmp_path / "one.gif", rgb)
    assert Image.open(path).format == "GIF" and list_images(tmp_path) == [path]
    assert np.allclose(np.asarray(Image.open(path).convert("RGB")), rgb, atol=2)


def test_io_and_colorize_import_no_torch_at_module_level():
    root = Path(__file__).resolve().parents[1] / "src" / "tinct"
    for module in (root / "io.py", root / "cli" / "colorize.py"):
        tree = ast.parse(module.read_text())
        imported = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module for node in tree.body if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] == "torch" or name.startswith("tinct.")], module


def test_sha256_file_matches_hashlib_and_sees_a_rewrite(tmp_path):
    import hashlib

    path = tmp_path / "weights.bin"
    data = bytes(range(256)) * 5000  # more than one 1 MiB block
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1])  # a new size: the remembered digest must not be reused
    assert sha256_file(path) == hashlib.sha256(data[:-1]).hexdigest()
    (tmp_path / "empty.bin").write_bytes(b"")
    assert sha256_file(tmp_path / "empty.bin") == hashlib.sha256(b"").hexdigest()
