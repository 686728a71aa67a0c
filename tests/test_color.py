import numpy as np
import pytest
import torch
from skimage import color as skcolor

from tinct.color import (
    LAB,
    cielab_lightness,
    gray_to_lightness,
    lab_to_rgb,
    lab_to_rgb_torch,
    lightness_to_gray,
    rec601_luma,
    rgb_to_lab,
    rgb_to_lab_torch,
    seed_luma,
)


@pytest.fixture
def random_rgb():
    return np.random.default_rng(0).random((17, 23, 3))


def test_rgb_to_lab_matches_scikit_image(random_rgb):
    np.testing.assert_allclose(rgb_to_lab(random_rgb), skcolor.rgb2lab(random_rgb), atol=1e-4)


def test_rgb_to_lab_uint8_matches_scikit_image():
    rgb = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_lab(rgb), skcolor.rgb2lab(rgb), atol=1e-4)


@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB")
def test_lab_to_rgb_matches_scikit_image(random_rgb):
    lab = skcolor.rgb2lab(random_rgb)
    lab[..., 1:] += np.random.default_rng(2).normal(0, 30, lab[..., 1:].shape)  # some out of gamut
    np.testing.assert_allclose(lab_to_rgb(lab), skcolor.lab2rgb(lab), atol=1e-4)


def test_round_trip(random_rgb):
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(random_rgb)), random_rgb, atol=1e-6)


def test_known_values():
    lab = rgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    # scikit-image's rounded sRGB matrix leaves white a few thousandths off neutral.
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=1e-2)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=1e-3)
    # sRGB red in CIELAB D65 (standard reference value).
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.02)


def test_torch_batched_and_differentiable(random_rgb):
    x = torch.from_numpy(random_rgb).permute(2, 0, 1)[None].repeat(2, 1, 1, 1).requires_grad_(True)
    lab = rgb_to_lab_torch(x)
    assert lab.shape == (2, 3, 17, 23)
    np.testing.assert_allclose(lab[0].permute(1, 2, 0).detach().numpy(), skcolor.rgb2lab(random_rgb), atol=1e-4)
    lab.sum().backward()
    assert torch.isfinite(x.grad).all()
    # gradcheck in float64 on a small input away from the piecewise joints
    small = (torch.rand(1, 3, 2, 2, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab_torch, (small,))
    lab_small = rgb_to_lab_torch(small.detach()).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: lab_to_rgb_torch(t, clamp=False), (lab_small,))


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"3 channels"):
        rgb_to_lab_torch(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        rgb_to_lab(np.zeros((2, 2, 4)))


def test_lightness_conventions():
    rgb = np.array([[200, 100, 50]], dtype=np.uint8)
    assert rec601_luma(rgb)[0] == pytest.approx((0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255)
    assert seed_luma(rgb)[0] == pytest.approx((0.21 * 200 + 0.72 * 100 + 0.07 * 50) / 255)
    assert cielab_lightness(rgb)[0] == pytest.approx(skcolor.rgb2lab(rgb)[0, 0], abs=1e-4)


def test_gray_lightness_round_trip():
    levels = np.arange(256, dtype=np.uint8)
    l = gray_to_lightness(levels)
    expected = skcolor.rgb2lab(np.repeat(levels[:, None], 3, axis=1)[None])[0, :, 0]
    np.testing.assert_allclose(l, expected, atol=1e-4)
    np.testing.assert_allclose(lightness_to_gray(l) * 255, levels, atol=1e-3)
    np.testing.assert_allclose(gray_to_lightness(levels.astype(np.float32) / 255), l, atol=1e-4)


def test_lab_scale_pairs_invert():
    x = torch.linspace(0, 100, 11)
    assert torch.allclose(LAB.unnormalize_l(LAB.normalize_l(x)), x)
    assert LAB.normalize_l(torch.tensor(0.0)) == -1 and LAB.normalize_l(torch.tensor(100.0)) == 1
    ab = torch.linspace(-110, 110, 5)
    assert torch.allclose(LAB.unnormalize_ab(LAB.normalize_ab(ab)), ab)


def test_fit_chroma_to_gamut_keeps_lightness_and_hue():
    from tinct.color import fit_chroma_to_gamut

    lab = torch.tensor([[90.0, 60.0, 80.0], [50.0, 10.0, -5.0], [20.0, -90.0, 70.0]])  # 1st, 3rd out of gamut
    fitted = fit_chroma_to_gamut(lab, dim=-1)
    rgb = lab_to_rgb_torch(fitted, dim=-1, clamp=False)
    assert ((rgb > -2e-3) & (rgb < 1 + 2e-3)).all()
    assert torch.equal(fitted[:, 0], lab[:, 0])  # lightness untouched
    assert torch.equal(fitted[1], lab[1])  # an in-gamut colour is left alone
    ratio = fitted[:, 1:] / lab[:, 1:]
    assert torch.allclose(ratio[:, 0], ratio[:, 1])  # same scale on a and b: hue kept
    assert (ratio[[0, 2], 0] < 0.9).all() and (ratio[[0, 2], 0] > 0.1).all()


def test_fast_uint8_path_matches_the_reference():
    from tinct.color import fit_chroma_to_gamut, lab_to_rgb_uint8, to_uint8

    rng = np.random.default_rng(3)
    l = (rng.random((70, 90)) * 100).astype(np.float32)
    a, b = (rng.normal(0, 40, (70, 90)).astype(np.float32) for _ in range(2))
    reference = lab_to_rgb_torch(fit_chroma_to_gamut(torch.from_numpy(np.stack([l, a, b])), dim=0), dim=0)
    reference = to_uint8(reference.permute(1, 2, 0).numpy()).astype(int)
    for threads in (1, 2):
        fast = lab_to_rgb_uint8(l, a, b, threads=threads).astype(int)
        assert np.abs(fast - reference).max() <= 3
        assert (fast != reference).mean() < 0.01
