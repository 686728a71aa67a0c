"""The shipped family's pieces: ab bins, rebalancing, annealed mean, prior correction."""

import math

import pytest
import torch

from tinct.models import ab_bins, create_model


def test_bins_cover_the_gamut_on_a_10_unit_grid():
    centers = ab_bins.bin_centers()
    assert centers.shape == (ab_bins.NUM_BINS, 2)
    assert torch.all(centers % 10 == 0)
    assert ab_bins.NUM_BINS > 250  # the sRGB gamut at grid 10 (Zhang et al. kept 313 of ImageNet)
    for colour in ([0.0, 0.0], [80.0, 67.0], [-86.0, 83.0], [79.0, -108.0]):  # gray, red, green, blue
        assert torch.cdist(torch.tensor([colour]), centers).min() <= 7.1


def test_soft_encoding_sums_to_one_and_peaks_at_the_nearest_bin():
    centers = ab_bins.bin_centers()
    ab = torch.tensor([[20.0, -30.0], [3.0, 4.0]]).T.reshape(1, 2, 1, 2)
    target = ab_bins.soft_encode(ab, centers)
    assert torch.allclose(target.sum(dim=1), torch.ones(1, 1, 2))
    nearest = torch.cdist(ab.reshape(2, 2).T, centers).argmin(dim=1)
    assert torch.equal(target.argmax(dim=1).reshape(-1), nearest)
    assert (target > 0).sum(dim=1).max() == 5


def test_rebalancing_weights_have_unit_expectation_and_favour_rare_bins():
    prior = torch.tensor([0.7, 0.2, 0.1])
    weights = ab_bins.rebalancing_weights(prior, mix=0.5)
    assert torch.isclose((prior * weights).sum(), torch.tensor(1.0))
    assert weights[2] > weights[1] > weights[0]
    # by hand: w = 1 / (0.5 p + 0.5 / 3), then normalised
    raw = 1 / (0.5 * prior + 0.5 / 3)
    assert torch.allclose(weights, raw / (prior * raw).sum())
    with pytest.raises(ValueError, match="mix"):
        ab_bins.rebalancing_weights(prior, mix=1.5)


def test_annealed_mean_goes_from_mean_to_mode():
    centers = torch.tensor([[0.0, 0.0], [50.0, 0.0]])
    logits = torch.log(torch.tensor([0.6, 0.4])).reshape(1, 2, 1, 1)
    assert torch.allclose(ab_bins.annealed_mean(logits, centers, 1.0).flatten(), torch.tensor([20.0, 0.0]))
    assert ab_bins.annealed_mean(logits, centers, 0.01).flatten()[0] < 1e-6  # the mode, bin 0
    with pytest.raises(ValueError, match="temperature"):
        ab_bins.annealed_mean(logits, centers, 0.0)


def test_prior_correction_removes_the_rebalancing_tilt():
    model = create_model("tinctnet", width=4, input_size=32, prior_correction=1.0).eval()
    weights = torch.rand(ab_bins.NUM_BINS) + 0.5
    model.class_weights.copy_(weights)
    logits = torch.randn(1, ab_bins.NUM_BINS, 2, 2)
    expected = torch.softmax(logits - weights.log()[None, :, None, None], dim=1)
    assert torch.allclose(torch.softmax(model.adjusted_logits(logits), dim=1), expected, atol=1e-6)
    model.config.prior_correction = 0.0
    assert torch.equal(model.adjusted_logits(logits), logits)


def test_commit_chroma_drops_faint_tints_and_strengthens_the_rest_at_constant_hue():
    ab = torch.tensor([[3.0, 4.0], [30.0, -40.0], [0.0, 0.0]]).T.reshape(1, 2, 3, 1)  # chroma 5, 50, 0
    out = ab_bins.commit_chroma(ab, floor=10.0, gain=1.5)
    assert torch.equal(out[..., 0, 0], torch.zeros(1, 2))  # chroma 5 <= floor: gray
    assert torch.allclose(out[0, :, 1, 0], torch.tensor([36.0, -48.0]))  # chroma 1.5 * (50 - 10), same hue
    assert torch.equal(out[..., 2, 0], torch.zeros(1, 2))  # gray stays gray (no division by zero)
    assert ab_bins.commit_chroma(ab) is ab
    with pytest.raises(ValueError, match="floor"):
        ab_bins.commit_chroma(ab, floor=-1.0)
    with pytest.raises(ValueError, match="gain"):
        ab_bins.commit_chroma(ab, gain=0.0)


def test_decode_applies_the_configured_chroma_commitment():
    torch.manual_seed(0)
    model = create_model("tinctnet", width=4, input_size=32, temperature=0.5).eval()
    logits = torch.randn(1, ab_bins.NUM_BINS, 3, 3) * 3
    plain = model.decode(logits)
    model.config.chroma_floor, model.config.chroma_gain = 4.0, 1.3
    assert torch.allclose(model.decode(logits), ab_bins.commit_chroma(plain, 4.0, 1.3))
    assert not torch.allclose(model.decode(logits), plain)
    with pytest.raises(ValueError, match="tinctnet chroma_gain must be > 0"):
        create_model("tinctnet", width=4, input_size=32, chroma_gain=0.0)
    with pytest.raises(ValueError, match="tinctnet chroma_floor must be >= 0"):
        create_model("tinctnet", width=4, input_size=32, chroma_floor=-2.0)


def _logits_on(bins: list[list[int]]) -> torch.Tensor:
    """``(1, Q, 1, P)`` logits putting equal mass on each pixel's listed bins (none elsewhere)."""
    logits = torch.full((1, ab_bins.NUM_BINS, 1, len(bins)), -1e4)
    for pixel, chosen in enumerate(bins):
        logits[0, chosen, 0, pixel] = 0.0
    return logits


def test_hue_concentration_is_one_for_one_hue_and_falls_as_hues_disagree():
    centers = ab_bins.bin_centers()

    def nearest(a, b):
        return int(torch.cdist(torch.tensor([[float(a), float(b)]]), centers).argmin())

    red, red2, green, gray = nearest(60, 40), nearest(30, 20), nearest(-60, -40), nearest(0, 0)
    blue = nearest(0, -50)
    logits = _logits_on([[red], [red, red2], [red, green], [gray], [red, blue]])
    r = ab_bins.hue_concentration(logits, centers)[0, 0, 0]
    assert r.shape == (5,)
    assert r[0] == pytest.approx(1.0, abs=1e-5)  # one hue
    assert r[1] == pytest.approx(1.0, abs=1e-5)  # two chromas of the same hue
    assert r[2] < 0.05  # opposite hues cancel
    assert r[3] == 0.0  # gray has no hue
    half_angle = 0.5 * (math.pi / 2 + math.atan2(40, 60))  # red at 33.7 degrees, blue at -90
    assert r[4] == pytest.approx(math.cos(half_angle), abs=1e-4)

    ab = torch.ones(1, 2, 1, 3) * 10
    gated = ab_bins.gate_by_hue(ab, torch.tensor([0.1, 0.55, 0.9]).reshape(1, 1, 1, 3), low=0.4, high=0.7)
    assert torch.allclose(gated[0, 0, 0], torch.tensor([0.0, 5.0, 10.0]))  # gray, half, full
    assert ab_bins.gate_by_hue(ab, torch.zeros(1, 1, 1, 3), 0.0, 0.0) is ab  # high 0: no gate
    with pytest.raises(ValueError, match="low < high"):
        ab_bins.gate_by_hue(ab, torch.zeros(1, 1, 1, 3), 0.7, 0.4)


@pytest.mark.parametrize("temperature", [0.38, 0.5, 1.0])
def test_one_exponential_gives_the_annealed_mean_and_the_hue_concentration(temperature):
    torch.manual_seed(3)
    centers = ab_bins.bin_centers()
    logits = torch.randn(2, ab_bins.NUM_BINS, 5, 4) * 4
    ab, r = ab_bins.annealed_mean_and_hue_concentration(logits, centers, temperature)
    assert torch.allclose(ab, ab_bins.annealed_mean(logits, centers, temperature), atol=1e-4)
    assert torch.allclose(r, ab_bins.hue_concentration(logits, centers), atol=1e-6)
    assert ab.abs().max() > 5 and 0 < r.min() < r.max() < 1  # not trivially zero or one


def test_decode_applies_the_configured_hue_gate_before_the_commitment():
    torch.manual_seed(1)
    model = create_model("tinctnet", width=4, input_size=32, temperature=0.5, prior_correction=0.3).eval()
    logits = torch.randn(1, ab_bins.NUM_BINS, 3, 3) * 3
    plain = model.decode(logits)
    model.config.hue_gate_low, model.config.hue_gate_high, model.config.chroma_gain = 0.2, 0.6, 1.5
    r = ab_bins.hue_concentration(model.adjusted_logits(logits), model.bin_centers)
    expected = plain * 1.5 * ((r - 0.2) / 0.4).clamp(0, 1)
    assert torch.allclose(model.decode(logits), expected, atol=1e-3)  # one exponential for both (below)
    assert 0 < r.min() < r.max() < 1  # the random logits span the gate, so the check has teeth
    with pytest.raises(ValueError, match="tinctnet hue_gate_low and tinctnet hue_gate_high"):
        create_model("tinctnet", width=4, input_size=32, hue_gate_low=0.5, hue_gate_high=1.5)


def test_class_labels_add_a_weighted_cross_entropy_from_the_global_branch():
    torch.manual_seed(2)
    model = create_model("tinctnet", width=4, input_size=32, classes=3, class_loss_weight=0.5)
    assert model.uses_labels and not create_model("tinctnet", width=4, input_size=32).uses_labels
    l, ab = torch.rand(4, 1, 32, 32) * 100, torch.randn(4, 2, 32, 32) * 20
    colour_only, m0 = model.training_loss(l, ab)
    assert set(m0) == {"colour_loss", "loss"} and m0["loss"] == pytest.approx(m0["colour_loss"])
    labels = torch.tensor([0, 2, -1, 1])
    loss, m = model.training_loss(l, ab, labels=labels)
    known = labels >= 0
    with torch.no_grad():
        _, scene = model._forward(l)
        expected = torch.nn.functional.cross_entropy(model.classifier(torch.relu(scene))[known], labels[known])
    assert m["class_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert loss.item() == pytest.approx(colour_only.item() + 0.5 * expected.item(), rel=1e-5)
    # Photos without a class contribute nothing; a batch of them only the colour loss.
    none, _ = model.training_loss(l, ab, labels=torch.full((4,), -1))
    assert none.item() == pytest.approx(colour_only.item(), rel=1e-6)
    with pytest.raises(ValueError, match="label 3 out of range for tinctnet classes=3"):
        model.training_loss(l, ab, labels=torch.tensor([0, 3, 1, 1]))
    # Inference is untouched by the classifier.
    assert model(l).shape == (4, ab_bins.NUM_BINS, 8, 8)


def test_fit_statistics_sets_weights_from_training_colours():
    model = create_model("tinctnet", width=4, input_size=32)
    samples = torch.tensor([[0.0, 0.0]] * 90 + [[60.0, 60.0]] * 10)
    model.fit_statistics(samples)
    centers = model.bin_centers
    gray_bin = torch.cdist(torch.zeros(1, 2), centers).argmin()
    vivid_bin = torch.cdist(torch.tensor([[60.0, 60.0]]), centers).argmin()
    assert model.class_weights[vivid_bin] > model.class_weights[gray_bin]


def test_training_reduces_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = create_model("tinctnet", width=8, input_size=32)
    l = torch.rand(4, 1, 32, 32) * 100
    ab = torch.stack([l[:, 0] * 0.5 - 25, 30 - l[:, 0] * 0.4], dim=1)  # colour follows brightness
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss, _ = model.training_loss(l, ab)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < 0.7 * first
