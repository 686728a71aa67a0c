import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from tinct.io import ImageReadError, list_images, photo_from_array, read_photo, read_rgb, write_image

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
