import numpy as np
import pytest
import torch
from PIL import Image

import tinct
from tinct.color import cielab_lightness
from tinct.infer import Colorizer, resize_and_pad

from conftest import gray_ramp


def test_resize_and_pad_keeps_aspect_and_never_stretches():
    l = torch.arange(40 * 100, dtype=torch.float32).reshape(1, 1, 40, 100)
    square, box = resize_and_pad(l, 50)
    assert square.shape == (1, 1, 50, 50)
    assert (box.height, box.width) == (20, 50)
    # padding replicates the last content row
    assert torch.equal(square[0, 0, 20:], square[0, 0, 19:20].expand(30, 50))


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
    from tinct.io import photo_from_array

    photos = [photo_from_array(gray), photo_from_array(gray[:, ::-1].copy()), photo_from_array(gray)]
    many = list(colorizer.colorize_many(photos))
    assert len(many) == 3
    np.testing.assert_array_equal(many[0], many[2])
    assert np.abs(many[0].astype(int) - single.astype(int)).max() <= 1


def test_module_level_colorize(tiny_checkpoint):
    rgb = tinct.colorize(gray_ramp(), model=tiny_checkpoint)
    assert rgb.shape == (24, 36, 3)


def test_batch_size_is_validated(tiny_checkpoint):
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        Colorizer(tiny_checkpoint, batch_size=0)


def test_name_says_which_run_a_generic_checkpoint_comes_from(tiny_checkpoint, tmp_path):
    run = tmp_path / "my-run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(tiny_checkpoint.read_bytes())
    assert Colorizer(run / "best.safetensors").name == "my-run/best"
    assert Colorizer(tiny_checkpoint).name == "tiny"
