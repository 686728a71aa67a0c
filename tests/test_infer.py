import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import tinct
import tinct.infer
from tinct.color import cielab_lightness, gray_to_lightness, lab_to_rgb_uint8
from tinct.infer import Colorizer, resize_and_pad, upsample_bilinear
from tinct.io import Photo, photo_from_array

from conftest import gray_ramp


def test_resize_and_pad_keeps_aspect_and_never_stretches():
    l = np.arange(40 * 100, dtype=np.float32).reshape(40, 100)
    square, box = resize_and_pad(l, 50)
    assert square.shape == (50, 50) and square.dtype == np.float32
    assert (box.height, box.width) == (20, 50)
    # padding replicates the last content row
    np.testing.assert_array_equal(square[20:], np.broadcast_to(square[19:20], (30, 50)))


@pytest.mark.parametrize("shape", [(300, 451), (451, 300), (97, 64), (40, 100), (13, 7), (1, 5), (144, 144)])
@pytest.mark.parametrize("size", [48, 144])
def test_resize_and_pad_matches_torch_area_and_bilinear(shape, size):
    # The reference is what the torch engine did before: F.interpolate (area down, bilinear up)
    # and replicate padding.
    l = np.random.default_rng(0).uniform(0, 100, shape).astype(np.float32)
    h, w = shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    x = torch.from_numpy(l)[None, None]
    if scale < 1:
        resized = F.interpolate(x, size=(new_h, new_w), mode="area")
    else:
        resized = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    reference = F.pad(resized, (0, size - new_w, 0, size - new_h), mode="replicate")[0, 0].numpy()
    square, box = resize_and_pad(l, size)
    assert (box.height, box.width) == (new_h, new_w)
    np.testing.assert_allclose(square, reference, atol=1e-4)


@pytest.mark.parametrize("source,target", [((12, 16), (300, 401)), ((48, 48), (48, 48)), ((5, 9), (7, 30))])
def test_upsample_bilinear_matches_torch(source, target):
    ab = np.random.default_rng(1).normal(0, 30, (2, *source)).astype(np.float32)
    reference = F.interpolate(torch.from_numpy(ab)[None], size=target, mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(upsample_bilinear(ab, *target), reference.numpy(), atol=1e-4)


def _photo(shape, seed=0) -> Photo:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    gray = 128 + 90 * np.sin(xx / 37.0) * np.cos(yy / 23.0) + rng.normal(0, 8, shape)
    return photo_from_array(np.clip(gray, 0, 255).astype(np.uint8))


def test_compose_in_strips_matches_one_piece_and_the_torch_reference(tiny_checkpoint, monkeypatch):
    colorizer = Colorizer(tiny_checkpoint, threads=2)
    photo = _photo((301, 517))
    ab = np.random.default_rng(2).normal(0, 25, (2, 8, 13)).astype(np.float32)
    strips = colorizer.compose(photo, ab)
    monkeypatch.setattr(tinct.infer, "STRIP_PIXELS", 10**9)
    np.testing.assert_array_equal(strips, colorizer.compose(photo, ab))
    full = F.interpolate(torch.from_numpy(ab)[None], size=(301, 517), mode="bilinear", align_corners=False)[0].numpy()
    reference = lab_to_rgb_uint8(photo.lightness, full[0], full[1])
    assert np.abs(strips.astype(int) - reference.astype(int)).max() <= 1


def test_compose_memory_stays_near_the_output_size(tiny_checkpoint):
    # 6 MP: the output is 18 MB; composing all of it at once would add a and b planes
    # (2 x 24 MB) and the conversion's temporaries (several times that).
    colorizer = Colorizer(tiny_checkpoint, threads=2)
    photo = Photo(lightness=np.full((2000, 3000), 55.0, np.float32))
    ab = np.full((2, 8, 8), 20.0, np.float32)
    tracemalloc.start()
    try:
        rgb = colorizer.compose(photo, ab)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rgb.shape == (2000, 3000, 3)
    assert peak < rgb.nbytes + 12e6, f"peak {peak / 1e6:.1f} MB for an output of {rgb.nbytes / 1e6:.1f} MB"


@pytest.mark.parametrize("shape", [(24, 36), (37, 11), (5, 200)])
def test_output_has_input_size_and_lightness(tiny_checkpoint, shape):
    gray = np.random.default_rng(0).integers(30, 226, shape, dtype=np.uint8)
    rgb = Colorizer(tiny_checkpoint)(gray)
    assert rgb.shape == (*shape, 3) and rgb.dtype == np.uint8
    expected_l = cielab_lightness(np.repeat(gray[..., None], 3, axis=2))
    assert np.abs(cielab_lightness(rgb) - expected_l).mean() < 0.5


def test_colour_comes_from_the_model(tiny_checkpoint):
    # The tiny model predicts a=40, b=30 everywhere: a mid-gray must come out orange-red.
    rgb = Colorizer(tiny_checkpoint)(np.full((16, 16), 128, np.uint8)).astype(int)
    r, g, b = rgb[8, 8]
    assert r > g + 30 and g > b


def test_alpha_is_kept(tiny_checkpoint):
    rgba = np.zeros((12, 10, 4), np.uint8)
    rgba[..., :3] = 100
    rgba[..., 3] = np.arange(10, dtype=np.uint8) * 20
    out = Colorizer(tiny_checkpoint)(rgba)
    assert out.shape == (12, 10, 4) and np.array_equal(out[..., 3], rgba[..., 3])


def test_pil_input_and_batches_agree(tiny_checkpoint):
    colorizer = Colorizer(tiny_checkpoint, batch_size=2)
    gray = gray_ramp()
    single = colorizer(Image.fromarray(gray, "L"))
    photos = [photo_from_array(gray), photo_from_array(gray[:, ::-1].copy()), photo_from_array(gray)]
    many = list(colorizer.colorize_many(photos))
    assert len(many) == 3
    np.testing.assert_array_equal(many[0], many[2])
    assert np.abs(many[0].astype(int) - single.astype(int)).max() <= 1


def test_colorize_many_takes_arrays_pil_images_and_paths(tiny_checkpoint, tmp_path):
    # As the README shows: colorizer.colorize_many(photos) with whatever a photo is.
    gray = gray_ramp()
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    rgba = np.dstack([np.repeat(gray[..., None], 3, axis=2), np.full(gray.shape, 200, np.uint8)])
    colorizer = Colorizer(tiny_checkpoint, batch_size=2)
    inputs = [gray, Image.fromarray(gray, "L"), tmp_path / "g.png", str(tmp_path / "g.png"), rgba, photo_from_array(gray)]
    outputs = list(colorizer.colorize_many(inputs))
    expected = colorizer(gray)
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert out.shape == (*gray.shape, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="expected an image of shape"):
        list(colorizer.colorize_many([np.zeros((2, 3, 5))]))


def test_module_level_colorize(tiny_checkpoint):
    rgb = tinct.colorize(gray_ramp(), model=tiny_checkpoint)
    assert rgb.shape == (24, 36, 3)


def test_batch_size_and_engine_are_validated(tiny_checkpoint):
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        Colorizer(tiny_checkpoint, batch_size=0)
    with pytest.raises(ValueError, match="engine must be one of auto, onnx, torch, got 'gpu'"):
        Colorizer(tiny_checkpoint, engine="gpu")


def test_name_says_which_run_a_generic_checkpoint_comes_from(tiny_checkpoint, tmp_path):
    run = tmp_path / "my-run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(tiny_checkpoint.read_bytes())
    assert Colorizer(run / "best.safetensors").name == "my-run/best"
    assert Colorizer(tiny_checkpoint).name == "tiny"


def test_lightness_without_torch_agrees_with_the_torch_formulas():
    # gray_to_lightness and cielab_lightness are NumPy now (no torch on the colorize path);
    # the torch formulas they replaced are the reference, to within one float32 step.
    from tinct.color import _lab_f, _srgb_to_linear

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    linear = _srgb_to_linear(torch.from_numpy(rgb.astype(np.float64) / 255))
    y = linear @ torch.tensor([0.212671, 0.715160, 0.072169], dtype=torch.float64)
    reference = (116 * _lab_f(y) - 16).numpy()
    np.testing.assert_allclose(cielab_lightness(rgb), reference, atol=2e-5)
    gray = rng.random((50, 40)).astype(np.float32)
    reference = (116 * _lab_f(_srgb_to_linear(torch.from_numpy(gray.astype(np.float64)))) - 16).numpy()
    np.testing.assert_allclose(gray_to_lightness(gray), reference, atol=2e-5)
    assert gray_to_lightness(gray).dtype == np.float32 and cielab_lightness(rgb).dtype == np.float32
