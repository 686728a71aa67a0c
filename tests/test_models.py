"""Every registered model family, at a tiny size: shapes, gradients, learning, checkpoints.

The registry-wide tests iterate ``list_models()``, so a new family is covered as soon as it
is registered. Family-specific tests below check the published architectures (parameter
counts, receptive fields) against numbers worked out by hand.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tinct.models import create_model, list_models, load, model_class, save_checkpoint
from tinct.models.base import ColorModel

SIZE = 32
# Small-size overrides; each family takes the keys its Config has.
TINY = {"input_size": SIZE, "width": 4, "depth": 5, "width_multiplier": 0.0625, "disc_width": 4, "num_colors": 8}
# Families too narrow at width 4 to fit the toy colours in STEPS steps.
TINY_PER_FAMILY = {"tinctnet2": {"width": 16}}
STEPS = 40
LR = 5e-3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny tensors gain nothing from a second thread, and the cores are shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(name: str, **extra):
    fields = {f.name for f in dataclasses.fields(model_class(name).Config)}
    config = {key: value for key, value in TINY.items() if key in fields}
    config.update(TINY_PER_FAMILY.get(name, {}))
    config.update(extra)
    return create_model(name, **config)


def is_torch_family(model) -> bool:
    return getattr(model, "backend", "torch") != "numpy"


def toy_batch(n: int = 4, size: int = SIZE, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` smooth random lightness images whose colour is a fixed function of brightness.

    Dark pixels are blue, mid ones green, bright ones orange: learnable from L alone.
    """
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, size // 8, size // 8, generator=generator)
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    low, high = smooth.amin(dim=(2, 3), keepdim=True), smooth.amax(dim=(2, 3), keepdim=True)
    l = 10 + 80 * (smooth - low) / (high - low)  # (n, 1, S, S) in [10, 90]
    t = (l - 50) / 40  # [-1, 1]
    a = 50 * t**2 - 25 * t - 10  # blue-ish (a ~ 15) dark, green (a ~ -10) mid, orange (a ~ 15) bright
    b = 55 * t  # b from -55 (blue) to 55 (yellow)
    return l, torch.cat([a, b], dim=1)


def fit_statistics_if_any(model, ab: torch.Tensor) -> None:
    if hasattr(model, "fit_statistics"):
        model.fit_statistics(ab.permute(0, 2, 3, 1).reshape(-1, 2))


def train_losses(model, l, ab, steps: int = STEPS, lr: float = LR) -> list[float]:
    """Losses of ``steps`` optimisation steps on one fixed batch (the model's own loss)."""
    torch.manual_seed(0)
    model.train()
    if hasattr(model, "train_step"):
        from tinct.train.settings import TrainConfig

        optimizers = model.make_optimizers(TrainConfig(lr=lr))
        return [model.train_step(l, ab, optimizers)["loss"] for _ in range(steps)]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss, metrics = model.training_loss(l, ab)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if "loss" in metrics:  # optional: the trainer falls back to the returned tensor
            assert metrics["loss"] == pytest.approx(losses[-1])
    return losses


# --------------------------------------------------------------------------------------
# registry-wide


def test_there_are_families():
    for name in ("unet", "pix2pix", "zhang16", "palette-mlp", "palette-cnn"):
        assert name in list_models()


@pytest.mark.parametrize("name", list_models())
def test_config_has_input_size_and_model_is_named(name):
    fields = {f.name: f for f in dataclasses.fields(model_class(name).Config)}
    assert "input_size" in fields
    model = tiny_model(name)
    assert model.name == name
    assert model.config.input_size == SIZE


@pytest.mark.parametrize("name", list_models())
def test_forward_shape_and_finite(name):
    model = tiny_model(name)
    l, ab = toy_batch(n=2)
    fit_statistics_if_any(model, ab)
    if is_torch_family(model):
        model.eval()
    with torch.no_grad():
        out = model.predict_ab(l)
    assert out.ndim == 4 and out.shape[:2] == (2, 2), out.shape
    assert SIZE % out.shape[-1] == 0 and out.shape[-2] == out.shape[-1]
    assert torch.isfinite(out).all()
    # Lab units, not network units: the toy colours reach |b| = 55, and nothing sane exceeds 130.
    assert out.abs().max() < 130


@pytest.mark.parametrize("name", list_models())
def test_backward_reaches_every_parameter(name):
    model = tiny_model(name)
    if not is_torch_family(model):
        pytest.skip(f"{name} is a NumPy family (no autograd)")
    l, ab = toy_batch()
    fit_statistics_if_any(model, ab)
    model.train()
    if hasattr(model, "train_step"):
        from tinct.train.settings import TrainConfig

        metrics = model.train_step(l, ab, model.make_optimizers(TrainConfig(lr=1e-4)))
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    else:
        loss, metrics = model.training_loss(l, ab)
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"
    bad = [n for n, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradient for {bad}"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", list_models())
def test_loss_falls_and_checkpoint_round_trips(name, tmp_path):
    model = tiny_model(name)
    l, ab = toy_batch()
    fit_statistics_if_any(model, ab)
    if is_torch_family(model):
        losses = train_losses(model, l, ab)
        first, last = losses[0], sum(losses[-5:]) / 5
        assert last < 0.75 * first, f"{name}: loss {first:.4f} -> {last:.4f}"
        model.eval()
    with torch.no_grad():
        before = model.predict_ab(l)
    path = save_checkpoint(tmp_path / f"{name}.safetensors", model)
    restored, _ = load(path)
    assert type(restored) is type(model)
    assert dataclasses.asdict(restored.config) == dataclasses.asdict(model.config)
    with torch.no_grad():
        after = restored.predict_ab(l)
    torch.testing.assert_close(after, before, rtol=0, atol=0)


class _TinyDataset:
    """The trainer's dataset interface: items ``{"l": (1, S, S), "ab": (2, S, S)}``."""

    def __init__(self, l: torch.Tensor, ab: torch.Tensor):
        self.l, self.ab = l, ab

    def __len__(self) -> int:
        return len(self.l)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"l": self.l[index], "ab": self.ab[index]}

    def set_epoch(self, epoch: int) -> None:
        pass


@pytest.mark.parametrize("name", list_models())
def test_numpy_family_fit_reports_each_epoch(name):
    model = tiny_model(name)
    if is_torch_family(model):
        pytest.skip(f"{name} trains through torch autograd (covered above)")
    from tinct.train.numpy_loop import fit_numpy_model
    from tinct.train.settings import TrainConfig

    l, ab = toy_batch()
    fit_statistics_if_any(model, ab)
    reports = []
    train_config = TrainConfig(epochs=5, batch_size=4)
    fit_numpy_model(model, _TinyDataset(l, ab), _TinyDataset(l[:2], ab[:2]), train_config, lambda e, m: reports.append((e, m)))
    assert [epoch for epoch, _ in reports] == list(range(1, 6))
    for _, metrics in reports:
        assert all(torch.isfinite(torch.tensor(float(v))) for v in metrics.values())
    losses = [m["train_loss"] for _, m in reports if "train_loss" in m]
    if losses:
        assert losses[-1] < losses[0]
    with torch.no_grad():
        assert torch.isfinite(model.predict_ab(l)).all()


def test_unknown_name_lists_known_names():
    with pytest.raises(KeyError) as info:
        create_model("unett")
    message = str(info.value)
    assert "'unet'" in message  # the close match
    for name in list_models():
        assert name in message


def test_unknown_config_key_is_refused():
    with pytest.raises(TypeError, match="widht"):
        create_model("unet", widht=8)


# --------------------------------------------------------------------------------------
# unet / pix2pix


def test_unet_full_size_parameter_count():
    # pix2pix's published generator (3 -> 3 channels) has 54,414,019 parameters. Ours takes 1
    # channel and returns 2: first conv 2*64*16 fewer weights, last transposed conv 128*16
    # weights + 1 bias fewer; and our innermost conv has no batch norm after it, so it keeps
    # its 512 biases: 54,414,019 - 2,048 - 2,049 + 512 = 54,410,434.
    model = create_model("unet", width=64, depth=8, input_size=256)
    assert model.num_parameters() == 54_410_434


def test_unet_validates_size_against_depth():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 256"):
        create_model("unet", input_size=128, depth=8)
    model = tiny_model("unet").eval()
    with pytest.raises(ValueError, match="divisible by 32"):
        model.predict_ab(torch.full((1, 1, 48, 48), 50.0))


def test_unet_output_is_tanh_times_110():
    model = tiny_model("unet").eval()
    l, _ = toy_batch(n=1)
    with torch.no_grad():
        torch.testing.assert_close(model.predict_ab(l), 110 * model(l))
    assert model(l).abs().max() <= 1


def _input_support(network: torch.nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    """Height and width of the input region that the centre output element depends on."""
    network.eval()
    x = torch.randn(*shape, requires_grad=True)
    out = network(x)
    out[..., out.shape[-2] // 2, out.shape[-1] // 2].sum().backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)))
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2)))
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_patchgan_sees_70x70_and_gives_14x14_on_128():
    model = create_model("pix2pix", width=4, depth=5, input_size=128, disc_width=4)
    d = model.discriminator
    assert d(torch.zeros(1, 3, 128, 128)).shape == (1, 1, 14, 14)
    # 4x4 kernels, strides 2, 2, 2, 1, 1: receptive field 1 + 3*(1 + 1 + 2 + 4 + 8) = 70.
    assert _input_support(d, (1, 3, 192, 192)) == (70, 70)


def test_pix2pix_checkpoint_holds_both_networks(tmp_path):
    model = tiny_model("pix2pix")
    keys = set(model.state_dict())
    assert any(k.startswith("generator.") for k in keys) and any(k.startswith("discriminator.") for k in keys)
    restored, _ = load(save_checkpoint(tmp_path / "p.safetensors", model))
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key


def test_pix2pix_optimizers_follow_train_config():
    from tinct.train.settings import TrainConfig

    model = tiny_model("pix2pix")
    optimizers = model.make_optimizers(TrainConfig(lr=3e-4))
    assert set(optimizers) == {"generator", "discriminator"}
    for name, optimizer in optimizers.items():
        group = optimizer.param_groups[0]
        assert group["lr"] == 3e-4 and group["betas"] == (0.5, 0.999)
        owned = {id(p) for p in getattr(model, name).parameters()}
        assert {id(p) for p in group["params"]} == owned


def test_pix2pix_lsgan_trains_too():
    model = tiny_model("pix2pix", gan_loss="lsgan")
    l, ab = toy_batch()
    losses = train_losses(model, l, ab, steps=25)
    assert sum(losses[-5:]) / 5 < 0.7 * losses[0]
    with pytest.raises(ValueError, match="gan_loss"):
        tiny_model("pix2pix", gan_loss="wgan")


# --------------------------------------------------------------------------------------
# zhang16


def test_zhang16_full_width_has_the_published_32m_parameters():
    from tinct.models import ab_bins

    model = create_model("zhang16", width_multiplier=1.0)
    # The published layers, counted by hand: (c_in, c_out, kernel) of every convolution.
    convs = [(1, 64, 3), (64, 64, 3), (64, 128, 3), (128, 128, 3)]
    convs += [(128, 256, 3), (256, 256, 3), (256, 256, 3)]
    convs += [(256, 512, 3)] + [(512, 512, 3)] * 11  # conv4_2..conv7_3
    convs += [(512, 256, 4), (256, 256, 3), (256, 256, 3), (256, ab_bins.NUM_BINS, 1)]
    weights_and_biases = sum(c_in * c_out * k * k + c_out for c_in, c_out, k in convs)
    batch_norm = 2 * (64 + 128 + 256 + 512 * 4)  # scale and shift after conv1..conv7
    assert model.num_parameters() == weights_and_biases + batch_norm
    assert 31.5e6 < model.num_parameters() < 33e6  # "about 32 M" (paper: 313 bins)


def test_zhang16_output_is_quarter_resolution_and_fit_changes_weights():
    model = tiny_model("zhang16")
    l, ab = toy_batch(n=1)
    assert model(l).shape[-2:] == (SIZE // 4, SIZE // 4)
    uniform_weights = model.class_weights.clone()
    fit_statistics_if_any(model, ab)
    assert not torch.allclose(model.class_weights, uniform_weights)
    with pytest.raises(ValueError, match="multiple of 8"):
        create_model("zhang16", input_size=36)


# --------------------------------------------------------------------------------------
# palette-mlp / palette-cnn


def test_palette_fit_recovers_three_clusters():
    model = tiny_model("palette-mlp", num_colors=3)
    generator = torch.Generator().manual_seed(1)
    true_centres = torch.tensor([[-40.0, 30.0], [10.0, -50.0], [60.0, 60.0]])
    samples = true_centres.repeat_interleave(200, dim=0) + torch.randn(600, 2, generator=generator)
    model.fit_statistics(samples)
    found = model.palette[model.palette[:, 0].argsort()]
    torch.testing.assert_close(found, true_centres, atol=0.5, rtol=0)


def test_palette_mlp_convolution_equals_mlp_on_the_window():
    window = 5
    model = tiny_model("palette-mlp", window=window, hidden=(6, 4), activations=("sigmoid", "relu")).eval()
    l, _ = toy_batch(n=1)
    logits = model(l)  # (1, K, S, S)
    assert logits.shape[-2:] == l.shape[-2:]
    first, second, last = model.net[0], model.net[2], model.net[4]
    normalised = (l - 50) / 50
    for row, col in [(10, 20), (2, 2), (16, 7)]:  # interior pixels: their windows need no padding
        patch = normalised[0, 0, row - 2 : row + 3, col - 2 : col + 3].reshape(-1)  # flattened 5x5 window
        hidden = torch.sigmoid(first.weight.reshape(6, -1) @ patch + first.bias)
        hidden = torch.relu(second.weight.reshape(4, 6) @ hidden + second.bias)
        expected = last.weight.reshape(-1, 4) @ hidden + last.bias
        torch.testing.assert_close(logits[0, :, row, col], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("window", [11, 12])
def test_palette_cnn_receptive_field_is_the_window(window):
    model = tiny_model("palette-cnn", window=window)
    # Seed kernels 6 and 4 leave a (window - 8) x (window - 8) "dense" kernel.
    assert model.dense_kernel == window - 8
    assert _input_support(model.net, (1, 1, 40, 40)) == (window, window)
    with pytest.raises(ValueError, match="receptive field"):
        tiny_model("palette-cnn", window=8)


def test_palette_decoders():
    model = tiny_model("palette-mlp", num_colors=4)
    model.palette.copy_(torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [-50.0, -50.0]]))
    logits = torch.tensor([0.0, 4.0, 1.0, 0.0]).reshape(1, 4, 1, 1)
    assert model.decode(logits).flatten().tolist() == [50.0, 0.0]
    model.config.decode = "annealed-mean"
    model.config.temperature = 1.0
    p = torch.softmax(torch.tensor([0.0, 4.0, 1.0, 0.0]), dim=0)
    expected = [50 * p[1] - 50 * p[3], 50 * p[2] - 50 * p[3]]
    torch.testing.assert_close(model.decode(logits).flatten(), torch.stack(expected))
    with pytest.raises(ValueError, match="decode"):
        tiny_model("palette-cnn", decode="mode")


def test_palette_target_is_the_nearest_colour():
    model = tiny_model("palette-mlp", num_colors=2)
    model.palette.copy_(torch.tensor([[0.0, 0.0], [60.0, 60.0]]))
    ab = torch.tensor([[[[1.0, 29.0, 31.0, 80.0]], [[1.0, 29.0, 31.0, 80.0]]]])  # (1, 2, 1, 4)
    assert model.nearest_colour(ab).tolist() == [[[0, 0, 1, 1]]]


def test_every_family_is_a_color_model_or_numpy():
    for name in list_models():
        cls = model_class(name)
        assert issubclass(cls, ColorModel) or getattr(cls, "backend", "") == "numpy", name
