"""tinct.metrics: every expected value is worked out by hand (arithmetic written out below)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tinct import metrics
from tinct.metrics import fid as fid_module
from tinct.metrics.lpips import LPIPS, AlexNetFeatures, VGG16Features, lpips_from_files
from tinct.metrics.weights import WeightsError, load_strict, read_state_dict

# A 2x2 truth and prediction (R, G, B per pixel), used by the fidelity tests.
TRUTH = np.array([[[100, 50, 0], [200, 100, 50]], [[0, 0, 0], [255, 255, 255]]], np.uint8)
PRED = np.array([[[110, 50, 0], [190, 100, 60]], [[0, 20, 0], [255, 255, 255]]], np.uint8)
# truth - pred:  R: -10, +10, 0, 0   G: 0, 0, -20, 0   B: 0, -10, 0, 0
# squared sums:  R: 100 + 100 = 200  G: 400            B: 100        all: 700 over 12 values
# truth^2 sums:  R: 100^2 + 200^2 + 255^2 = 10000 + 40000 + 65025 = 115025
#                G: 50^2 + 100^2 + 255^2 = 2500 + 10000 + 65025 = 77525
#                B: 0 + 50^2 + 255^2 = 2500 + 65025 = 67525       all: 260075


def test_mse_rmse_by_hand():
    assert metrics.mse(PRED, TRUTH) == pytest.approx(700 / 12)  # 58.333...
    assert metrics.rmse(PRED, TRUTH) == pytest.approx(math.sqrt(700 / 12))  # 7.6376
    np.testing.assert_allclose(metrics.channel_mse(PRED, TRUTH), [200 / 4, 400 / 4, 100 / 4])  # 50, 100, 25
    np.testing.assert_allclose(metrics.channel_rmse(PRED, TRUTH), [math.sqrt(50), 10.0, 5.0])


def test_psnr_by_hand():
    # 10 log10(255^2 / (700/12)) = 10 log10(65025 * 12 / 700) = 10 log10(1114.714) = 30.4716 dB
    assert metrics.psnr(PRED, TRUTH) == pytest.approx(30.4716, abs=1e-4)
    # per channel: 10 log10(65025/50) = 31.1411, 10 log10(65025/100) = 28.1308, 10 log10(65025/25) = 34.1514
    np.testing.assert_allclose(metrics.channel_psnr(PRED, TRUTH), [31.1411, 28.1308, 34.1514], atol=1e-4)
    assert metrics.psnr(TRUTH, TRUTH) == math.inf


def test_snr_by_hand():
    # 10 log10(260075 / 700) = 10 log10(371.5357) = 25.7000 dB; the truth is the signal.
    assert metrics.snr(PRED, TRUTH) == pytest.approx(25.7000, abs=1e-4)
    # R: 10 log10(575.125) = 27.5976; G: 10 log10(193.8125) = 22.8738; B: 10 log10(675.25) = 28.2946
    np.testing.assert_allclose(metrics.channel_snr(PRED, TRUTH), [27.5976, 22.8738, 28.2946], atol=1e-4)


def test_torch_mse_psnr_match_the_hand_values():
    pred = torch.from_numpy(PRED).permute(2, 0, 1)[None].double() / 255
    truth = torch.from_numpy(TRUTH).permute(2, 0, 1)[None].double() / 255
    assert float(metrics.mse_torch(pred * 255, truth * 255)[0]) == pytest.approx(700 / 12)
    assert float(metrics.psnr_torch(pred, truth, data_range=1.0)[0]) == pytest.approx(30.4716, abs=1e-4)
    batch = metrics.psnr_torch(torch.cat([pred, truth]), torch.cat([truth, truth]))
    assert batch.shape == (2,) and math.isinf(float(batch[1]))


def test_ssim_one_window_by_hand():
    # A 7x7 image has exactly one 7x7 window (scikit-image crops 3 pixels at each border).
    # truth: one pixel of 255, 48 of 0; prediction: all 0.
    # mu_x = 255/49, mu_x^2 = 65025/2401 = 27.0825
    # var_x (sample, N/(N-1) = 49/48) = 49/48 * (65025/49 - 65025/2401) = 65025/49 = 1327.041
    # mu_y = var_y = cov_xy = 0; C1 = (0.01*255)^2 = 6.5025, C2 = (0.03*255)^2 = 58.5225
    # SSIM = C1/(mu_x^2 + C1) * C2/(var_x + C2) = 6.5025/33.5850 * 58.5225/1385.5635 = 0.193613 * 0.042237
    truth = np.zeros((7, 7, 3), np.uint8)
    truth[2, 5] = 255
    pred = np.zeros_like(truth)
    expected = (6.5025 / (65025 / 2401 + 6.5025)) * (58.5225 / (65025 / 49 + 58.5225))
    assert expected == pytest.approx(0.0081777, abs=1e-6)
    assert metrics.ssim(pred, truth) == pytest.approx(expected, rel=1e-6)
    assert metrics.ssim(truth, truth) == pytest.approx(1.0)


def test_ssim_rejects_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="7x7"):
        metrics.ssim(PRED, TRUTH)


# sRGB 128 -> CIELAB L by hand: 128/255 = 0.501961; linear Y = ((0.501961 + 0.055)/1.055)^2.4 = 0.215861
# (a gray's Y is its linear value: the Y row of the sRGB matrix sums to 1); f = Y^(1/3) = 0.599875;
# L = 116 f - 16 = 53.5855.  White: L = 100.  Black: L = 0.
WHITE, BLACK, GRAY128, RED = (255, 255, 255), (0, 0, 0), (128, 128, 128), (255, 0, 0)
RED_LAB = (53.2408, 80.0925, 67.2032)  # the standard CIELAB of sRGB red (D65)


def _image(*pixels) -> np.ndarray:
    return np.array(pixels, np.uint8).reshape(2, 2, 3)


def test_ciede2000_by_hand():
    # Neutral pairs: a = b = 0, so CIEDE2000 = |dL| / S_L with S_L = 1 + 0.015 (Lm - 50)^2 / sqrt(20 + (Lm - 50)^2).
    # white vs black: Lm = 50 -> S_L = 1 -> 100.   identical pixels -> 0.
    pred = _image(WHITE, BLACK, WHITE, RED)
    truth = _image(BLACK, BLACK, WHITE, RED)
    assert metrics.ciede2000(pred, truth) == pytest.approx((100 + 0 + 0 + 0) / 4, abs=0.01)
    # white (L 100) vs gray 128 (L 53.5855): dL = 46.4145, Lm = 76.7928, (Lm - 50)^2 = 717.85,
    # S_L = 1 + 0.015 * 717.85 / sqrt(737.85) = 1 + 10.7678 / 27.1634 = 1.39641 -> 46.4145 / 1.39641 = 33.2385
    pred = _image(WHITE, WHITE, WHITE, WHITE)
    truth = _image(GRAY128, GRAY128, GRAY128, GRAY128)
    assert metrics.ciede2000(pred, truth) == pytest.approx(33.2385, abs=0.01)


def test_colorfulness_by_hand():
    # pixels (R, G, B): (200,100,50) (100,100,100) (50,0,0) (0,0,0)
    # rg = R - G = 100, 0, 50, 0           mean 37.5, var (62.5^2 + 37.5^2 + 12.5^2 + 37.5^2)/4 = 6875/4 = 1718.75
    # yb = (R+G)/2 - B = 100, 0, 25, 0     mean 31.25, var (68.75^2 + 31.25^2 + 6.25^2 + 31.25^2)/4 = 6718.75/4 = 1679.6875
    # sigma = sqrt(1718.75 + 1679.6875) = 58.29612, mu = sqrt(37.5^2 + 31.25^2) = 48.81406
    # CF = 58.29612 + 0.3 * 48.81406 = 72.94034
    image = _image((200, 100, 50), (100, 100, 100), (50, 0, 0), (0, 0, 0))
    assert metrics.colorfulness(image) == pytest.approx(72.94034, abs=1e-4)


def test_colorfulness_uses_signed_opponents():
    # rg = +50, -50, +50, -50 (mean 0, std 50); yb = 75 - 75 = 0 everywhere -> CF = 50 + 0.3 * 0 = 50.
    # (With |R - G| it would be 0 + 0.3 * 50 = 15.)
    image = _image((100, 50, 75), (50, 100, 75), (100, 50, 75), (50, 100, 75))
    assert metrics.colorfulness(image) == pytest.approx(50.0)
    assert metrics.colorfulness(np.full((3, 5, 3), 77, np.uint8)) == 0.0


def test_colorfulness_batch_agrees_with_each_image():
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (4, 5, 7, 3), dtype=np.uint8)
    expected = [metrics.colorfulness(image) for image in batch]
    assert metrics.chromatic.colorfulness_batch(batch).tolist() == expected  # the same numbers exactly
    # float input is sRGB in [0, 1]
    assert metrics.chromatic.colorfulness_batch(batch / 255.0) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        metrics.chromatic.colorfulness_batch(batch[0])
    with pytest.raises(ValueError, match="uint8 RGB image"):
        metrics.colorfulness(batch[0].astype(np.float32))


def test_metric_directions():
    from tinct.evaluate.scoring import METRICS, SET_METRICS
    from tinct.evaluate.video import VIDEO_METRICS
    from tinct.metrics import direction

    assert [direction.short_label(d) for d in (direction.HIGHER, direction.LOWER)] == ["higher", "lower"]
    assert direction.short_label(direction.TOWARD_ONE) == "->1"
    assert direction.phrase(direction.HIGHER) == "higher is better"
    assert direction.phrase(direction.TOWARD_TRUTH) == "closer to truth"
    assert all(len(label) <= 7 for label in direction.SHORT_LABELS.values())  # the table's column width
    with pytest.raises(ValueError, match="unknown metric direction 'up'"):
        direction.short_label("up")
    by_key = {m.key: m.better for m in (*METRICS, *SET_METRICS, *VIDEO_METRICS)}
    assert by_key["psnr"] == direction.HIGHER and by_key["ciede2000"] == direction.LOWER
    assert by_key["colorfulness"] == direction.TOWARD_TRUTH and by_key["chroma_ratio"] == direction.TOWARD_ONE
    assert all(better in direction.SHORT_LABELS for better in by_key.values())


def test_mean_chroma_and_set_level_metrics_by_hand():
    # chroma of sRGB red = sqrt(80.0925^2 + 67.2032^2) = 104.5525; black has chroma 0.
    image = _image(RED, RED, BLACK, BLACK)
    assert metrics.mean_chroma(image) == pytest.approx(104.5525 / 2, abs=2e-3)
    # |mean(10, 20) - mean(30, 40)| = |15 - 35| = 20
    assert metrics.delta_colorfulness([10, 20], [30, 40]) == pytest.approx(20.0)
    # mean(10, 30) / mean(40, 40) = 20 / 40 = 0.5
    assert metrics.chroma_ratio([10, 30], [40, 40]) == pytest.approx(0.5)
    assert math.isnan(metrics.chroma_ratio([1.0], [0.0]))
    with pytest.raises(ValueError):
        metrics.delta_colorfulness([], [])


def test_ab_auc_from_errors_by_hand():
    # errors 0, 3, 10, 200: F(t) = 0.25 for t = 0..2, 0.5 for t = 3..9, 0.75 for t = 10..150.
    # trapezoids of width 1: [0,2]: 2 * 0.25 = 0.5; [2,3]: 0.375; [3,9]: 6 * 0.5 = 3; [9,10]: 0.625;
    # [10,150]: 140 * 0.75 = 105.  Sum 109.5 / 150 = 0.73.
    errors = np.array([0.0, 3.0, 10.0, 200.0])
    curve = metrics.ab_error_curve(errors)
    assert curve.shape == (151,)
    assert (curve[0], curve[2], curve[3], curve[9], curve[10], curve[150]) == (0.25, 0.25, 0.5, 0.5, 0.75, 0.75)
    assert metrics.auc_from_errors(errors) == pytest.approx(0.73)


def test_ab_auc_of_images_by_hand():
    # black (a = b = 0) against red: every ab error is red's chroma, 104.55, so F = 0 up to t = 104 and 1 from 105:
    # area = (0 + 1)/2 for [104, 105] + 45 for [105, 150] = 45.5 -> 45.5 / 150 = 0.303333
    red = _image(RED, RED, RED, RED)
    black = _image(BLACK, BLACK, BLACK, BLACK)
    np.testing.assert_allclose(metrics.ab_errors(black, red), 104.5525, atol=2e-3)
    assert metrics.ab_auc(black, red) == pytest.approx(45.5 / 150)
    assert metrics.ab_auc(red, red) == pytest.approx(1.0)


def test_lab_agrees_with_published_red():
    np.testing.assert_allclose(metrics.lab_of(_image(RED, RED, RED, RED))[0, 0], RED_LAB, atol=1e-3)


@pytest.mark.parametrize(
    "pred, truth, message",
    [
        (PRED.astype(np.float32), TRUTH, "uint8"),
        (PRED[..., :2], TRUTH, r"\(H, W, 3\)"),
        (PRED[:1], TRUTH, "differs"),
    ],
)
def test_metrics_reject_bad_inputs(pred, truth, message):
    with pytest.raises(ValueError, match=message):
        metrics.psnr(pred, truth)


# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------


def test_frechet_distance_of_diagonal_gaussians_by_hand():
    # |mu1 - mu2|^2 = 1 + 4 = 5; for commuting covariances the trace term is sum (s1 - s2)^2 over
    # standard deviations: (1 - 2)^2 + (2 - 3)^2 = 2.  FID = 7.
    value = fid_module.frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 9.0]))
    assert value == pytest.approx(7.0, abs=1e-8)
    assert fid_module.frechet_distance([3.0], [[2.0]], [3.0], [[2.0]]) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_symmetric_formula():
    # Tr sqrt(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2): computed here with eigendecompositions only.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    s1, s2 = a @ a.T + 0.1 * np.eye(3), b @ b.T + 0.1 * np.eye(3)
    mu1, mu2 = rng.normal(size=3), rng.normal(size=3)

    def sym_sqrt(m):
        w, v = np.linalg.eigh(m)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root1 = sym_sqrt(s1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(sym_sqrt(root1 @ s2 @ root1))
    assert fid_module.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


class _TinyFeatures(torch.nn.Module):
    """A tiny stand-in feature network: conv, ReLU, global mean -> 4 features."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def test_frechet_scorer_with_a_tiny_network():
    torch.manual_seed(0)
    network = _TinyFeatures()
    rng = np.random.default_rng(1)
    images_a = [rng.integers(0, 256, (9, 11, 3), dtype=np.uint8) for _ in range(5)]
    images_b = [np.clip(im.astype(int) + 60, 0, 255).astype(np.uint8) for im in images_a]
    scorer = fid_module.FrechetScorer(network, batch_size=2)
    for a, b in zip(images_a, images_b):
        scorer.add("a", a)
        scorer.add("b", b)
    def features(images):
        with torch.no_grad():
            batch = [network(torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255) for im in images]
        return torch.cat(batch).double().numpy()

    feats_a, feats_b = features(images_a), features(images_b)
    np.testing.assert_allclose(scorer.features("a"), feats_a, rtol=1e-5)
    expected = fid_module.frechet_distance(feats_a.mean(0), np.cov(feats_a.T), feats_b.mean(0), np.cov(feats_b.T))
    assert scorer.distance("a", "b") == pytest.approx(expected, rel=1e-5)
    assert scorer.distance("a", "b") > 0
    assert scorer.distance("a", "a") == pytest.approx(0.0, abs=1e-6)


def test_fid_inception_has_pytorch_fid_shape():
    # torchvision's Inception3 has 27,161,264 parameters with aux logits and 1000 classes; pytorch-fid's
    # has no aux branch (-3,326,696) and 1008 classes (+8 * 2048 + 8): 23,850,960.
    network = fid_module.FIDInceptionV3()
    assert sum(p.numel() for p in network.parameters()) == 27_161_264 - 3_326_696 + 8 * 2048 + 8
    with torch.inference_mode():
        assert network.eval()(torch.rand(1, 3, 20, 24)).shape == (1, 2048)


def test_weights_loading_is_strict_and_names_the_file(tmp_path):
    missing = tmp_path / "pt_inception.pth"
    with pytest.raises(WeightsError, match="pt_inception.pth: no such weight file"):
        fid_module.fid_inception_from_file(missing)
    wrong = tmp_path / "wrong.pth"
    torch.save(_TinyFeatures().state_dict(), wrong)
    with pytest.raises(WeightsError, match=r"wrong.pth: does not fit the FID Inception-v3 .*missing Conv2d_1a_3x3"):
        fid_module.fid_inception_from_file(wrong)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(WeightsError, match="garbage.pth: cannot read weights"):
        read_state_dict(garbage)
    # a state dict that fits loads, values and all
    source, target = _TinyFeatures(), _TinyFeatures()
    good = tmp_path / "tiny.pth"
    torch.save(source.state_dict(), good)
    load_strict(target, read_state_dict(good), good, "tiny network")
    assert torch.equal(target.conv.weight, source.conv.weight)
    shape = {"conv.weight": torch.zeros(4, 3, 5, 5), "conv.bias": torch.zeros(4)}
    with pytest.raises(WeightsError, match="wrong shape conv.weight"):
        load_strict(target, shape, good, "tiny network")


# ---------------------------------------------------------------------------------------------
# LPIPS
# ---------------------------------------------------------------------------------------------


class _IdentityFeatures(torch.nn.Module):
    def forward(self, x):
        return [x]


def test_lpips_by_hand_on_one_pixel():
    # With the identity as feature network the distance is sum_c w_c (u_c - v_c)^2 for the unit
    # vectors u, v of the standardised pixels s = (2 x - 1 - shift) / scale.
    pred = np.array([[[255, 0, 0]]], np.uint8)
    truth = np.array([[[0, 0, 255]]], np.uint8)
    shift, scale = np.array([-0.030, -0.088, -0.188]), np.array([0.458, 0.448, 0.450])
    s_pred = (np.array([1.0, -1.0, -1.0]) - shift) / scale  # (2.2489, -2.0357, -1.8044)
    s_truth = (np.array([-1.0, -1.0, 1.0]) - shift) / scale  # (-2.1179, -2.0357, 2.6400)
    u, v = s_pred / np.linalg.norm(s_pred), s_truth / np.linalg.norm(s_truth)
    weights = np.array([0.5, 1.0, 2.0])
    expected = float(np.sum(weights * (u - v) ** 2))
    lpips = LPIPS(_IdentityFeatures(), [torch.tensor(weights, dtype=torch.float32)])
    assert lpips.distance(pred, truth) == pytest.approx(expected, rel=1e-5)
    assert lpips.distance(truth, truth) == pytest.approx(0.0, abs=1e-7)


def test_lpips_backbones_match_torchvision_sizes():
    # conv parameters: AlexNet 23,296 + 307,392 + 663,936 + 884,992 + 590,080 = 2,469,696;
    # VGG-16 features: 14,714,688.
    assert sum(p.numel() for p in AlexNetFeatures().parameters()) == 2_469_696
    assert sum(p.numel() for p in VGG16Features().parameters()) == 14_714_688


def test_lpips_from_files_with_random_alexnet(tmp_path):
    torch.manual_seed(0)
    backbone = AlexNetFeatures()
    state = dict(backbone.state_dict())
    state["classifier.1.weight"] = torch.zeros(2, 2)  # torchvision files carry the classifier: ignored
    torch.save(state, tmp_path / "alexnet.pth")
    linear = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(AlexNetFeatures.CHANNELS)}
    torch.save(linear, tmp_path / "alex.pth")
    lpips = lpips_from_files(tmp_path / "alex.pth", tmp_path / "alexnet.pth")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    assert lpips.distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert lpips.distance(a, b) > 0
    with pytest.raises(ValueError, match="at least 32"):
        lpips.distance(a[:20], a[:20])
    # VGG linear weights with an AlexNet backbone: a clear error naming the backbone file
    vgg_linear = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(VGG16Features.CHANNELS)}
    torch.save(vgg_linear, tmp_path / "vgg.pth")
    with pytest.raises(WeightsError, match="alexnet.pth: does not fit the torchvision vgg features"):
        lpips_from_files(tmp_path / "vgg.pth", tmp_path / "alexnet.pth")
    with pytest.raises(WeightsError, match="nowhere.pth: no such weight file"):
        lpips_from_files(tmp_path / "alex.pth", tmp_path / "nowhere.pth")
