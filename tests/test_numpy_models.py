"""The NumPy seed models: ``window-mlp`` (seed 000) and ``fc-image`` (seed 003).

Window extraction against a naive loop, the hand-counted layer sizes, the gray and RGB
conventions against scikit-image, ``fit`` (schedules, early stopping, refused options,
best weights kept), predictions, checkpoints, and a run through ``tinct train`` and
``tinct colorize`` for each model on tiny synthetic data.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from tinct.cli import main
from tinct.models import create_model, load, save_checkpoint
from tinct.models.fc_image import resize_to
from tinct.models.window_mlp import context_windows
from tinct.numpynet import Adam, Network
from tinct.train.numpy_loop import FitProgress, data_loss, fit_network, fit_numpy_model
from tinct.train.settings import TrainConfig


# ---------------------------------------------------------------------------------------------
# helpers


def smooth_rgb(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` smooth uint8 RGB images ``(n, size, size, 3)`` whose colour follows brightness.

    Dark areas are green, bright ones sky blue (a function of brightness a window can learn).
    """
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 3, 3, generator=generator)
    v = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()
    v = (v - v.min(axis=(1, 2), keepdims=True)) / np.ptp(v, axis=(1, 2), keepdims=True)
    rgb = np.stack([0.1 + 0.7 * v**2, 0.35 + 0.5 * v, 0.1 + 0.85 * v**1.5], axis=-1)
    return (rgb * 255).round().astype(np.uint8)


class LabItems:
    """The trainer's dataset interface over RGB images: items ``{"l": (1, S, S), "ab": (2, S, S)}``."""

    def __init__(self, rgb: np.ndarray):
        lab = torch.from_numpy(rgb2lab(rgb).astype(np.float32)).permute(0, 3, 1, 2)
        self.l, self.ab = lab[:, :1].contiguous(), lab[:, 1:].contiguous()

    def __len__(self) -> int:
        return len(self.l)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"l": self.l[index], "ab": self.ab[index]}


def tiny_window_mlp(**extra):
    torch.manual_seed(0)
    return create_model("window-mlp", **{"window": 1, **extra})


def tiny_fc_image(**extra):
    torch.manual_seed(0)
    return create_model("fc-image", **{"input_size": 8, "hidden": (24,), **extra})


def fit_and_record(model, train, val, **train_values):
    reports = []
    config = TrainConfig(**train_values)
    result = fit_numpy_model(model, train, val, config, lambda epoch, metrics: reports.append((epoch, metrics)))
    return result, reports


# ---------------------------------------------------------------------------------------------
# window extraction and architecture


@pytest.mark.parametrize("window", [0, 1, 2])
def test_context_windows_equal_a_naive_loop_with_clamped_borders(window):
    gray = np.random.default_rng(0).random((2, 4, 5)).astype(np.float32)
    n, height, width = gray.shape
    expected = []
    for image in range(n):
        for row in range(height):
            for col in range(width):
                values = []
                for dy in range(-window, window + 1):
                    for dx in range(-window, window + 1):
                        # Edge padding = the nearest pixel inside the image.
                        r = min(max(row + dy, 0), height - 1)
                        c = min(max(col + dx, 0), width - 1)
                        values.append(gray[image, r, c])
                expected.append(values)
    windows = context_windows(gray, window)
    assert windows.shape == (n * height * width, (2 * window + 1) ** 2)
    np.testing.assert_array_equal(windows, np.array(expected, dtype=np.float32))


def test_context_windows_refuse_bad_input():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        context_windows(np.zeros((4, 4)), 1)
    with pytest.raises(ValueError, match="window"):
        context_windows(np.zeros((1, 4, 4)), -1)


def test_layer_sizes_and_parameter_counts():
    model = create_model("window-mlp")
    assert model.network.layer_sizes == (25, 8, 4, 3)
    # 25*8 + 8, 8*4 + 4, 4*3 + 3
    assert model.num_parameters() == 208 + 36 + 15
    assert model.network.l2_lambda == 1e-4 and model.network.l2_divide_by_batch
    assert {layer.activation.name for layer in model.network.layers} == {"sigmoid"}
    fc = create_model("fc-image")
    assert fc.network.layer_sizes == (256, 3840, 768)
    assert fc.num_parameters() == 256 * 3840 + 3840 + 3840 * 768 + 768
    assert [layer.activation.name for layer in fc.network.layers] == ["relu", "sigmoid"]
    assert create_model("fc-image", activation="tanh", input_size=4, hidden=(5,)).network.layers[0].activation.name == "tanh"


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("window-mlp", {"window": -1}, "window"),
        ("window-mlp", {"activation": "softmax"}, "activation"),
        ("window-mlp", {"hidden": (8, 0)}, "hidden"),
        ("fc-image", {"activation": "identity"}, "activation"),
        ("fc-image", {"input_size": 0}, "input_size"),
        ("fc-image", {"hidden": (True,)}, "hidden"),
        ("window-mlp", {"input_size": 0}, "input_size"),
    ],
)
def test_bad_configs_are_refused(name, values, message):
    with pytest.raises(ValueError, match=message) as info:
        create_model(name, **values)
    assert str(info.value).startswith(f"{name}: ")


# ---------------------------------------------------------------------------------------------
# gray input and RGB targets


def test_window_mlp_examples_use_the_gray_of_l_and_the_rgb_of_lab():
    rgb = smooth_rgb(2, 6)
    items = LabItems(rgb)
    model = tiny_window_mlp()
    x, y = model.examples(items.l, items.ab)
    assert x.shape == (2 * 36, 9) and y.shape == (2 * 36, 3)
    # Targets: the images' own RGB (Lab -> RGB round trip through scikit-image's Lab).
    np.testing.assert_allclose(y, rgb.reshape(-1, 3) / 255.0, atol=1e-4)
    # Input: the window centre is the gray whose CIELAB lightness is the pixel's L, i.e. the
    # sRGB value v with lab(v, v, v).L == L (scikit-image as the reference).
    gray_lab = rgb2lab(np.repeat(x[:, 4:5], 3, axis=1).reshape(-1, 1, 3).astype(np.float64))[:, 0, 0]
    np.testing.assert_allclose(gray_lab, items.l.numpy().reshape(-1), atol=2e-3)


def test_window_mlp_refuses_training_sets_whose_windows_would_not_fit_in_memory():
    huge = torch.zeros(1, 1, 1, 1).expand(20_000, 1, 128, 128)  # a view: no memory behind it
    with pytest.raises(ValueError, match=r"GiB of windows .* lower data.size"):
        tiny_window_mlp(window=2).examples(huge, huge.expand(20_000, 2, 128, 128))


def test_gray_photo_pixels_come_back_as_the_window_input():
    # A black-and-white photo's L is gray_to_lightness(g); the network must see g itself.
    gray = np.arange(40, 220, 5, dtype=np.uint8).reshape(1, 6, 6)
    lightness = rgb2lab(np.repeat(gray[..., None], 3, axis=-1))[..., 0]
    x = tiny_window_mlp()._windows(torch.from_numpy(lightness[:, None].astype(np.float32)))
    np.testing.assert_allclose(x[:, 4], gray.reshape(-1) / 255.0, atol=1e-4)


def test_fc_image_examples_are_whole_images_in_planes():
    rgb = smooth_rgb(3, 8)
    items = LabItems(rgb)
    x, y = tiny_fc_image().examples(items.l, items.ab)
    assert x.shape == (3, 64) and y.shape == (3, 192)
    planes = rgb.transpose(0, 3, 1, 2).reshape(3, -1) / 255.0  # R plane, G plane, B plane, row-major
    np.testing.assert_allclose(y, planes, atol=1e-4)
    gray_lab = rgb2lab(np.repeat(x.reshape(-1, 1, 1), 3, axis=2).astype(np.float64))[:, 0, 0]
    np.testing.assert_allclose(gray_lab, items.l.numpy().reshape(-1), atol=2e-3)


def test_fc_image_resizes_other_sizes_by_area():
    rgb = smooth_rgb(2, 16)
    items = LabItems(rgb)
    x, y = tiny_fc_image().examples(items.l, items.ab)  # 16 x 16 images, model at 8 x 8
    target = rgb.astype(np.float64).reshape(2, 8, 2, 8, 2, 3).mean(axis=(2, 4)) / 255.0  # 2x2 block means
    np.testing.assert_allclose(y, target.transpose(0, 3, 1, 2).reshape(2, -1), atol=1e-4)
    assert x.shape == (2, 64)
    small = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert resize_to(small, 2).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    assert resize_to(small, 4) is small


# ---------------------------------------------------------------------------------------------
# predictions and checkpoints


def test_predict_ab_is_the_ab_of_the_predicted_rgb():
    l = torch.from_numpy(rgb2lab(smooth_rgb(2, 12, seed=1))[..., :1].astype(np.float32)).permute(0, 3, 1, 2)
    l = F.pad(l, (0, 5, 0, 0), mode="replicate")  # (2, 1, 12, 17): not square
    for model, size in ((tiny_window_mlp(), (12, 17)), (tiny_fc_image(), (8, 8))):
        ab = model.predict_ab(l)
        assert ab.shape == (2, 2, *size) and ab.dtype == torch.float32
        assert torch.isfinite(ab).all()
        rgb = model.predict_rgb(l)
        rgb = rgb if rgb.shape[-1] == 3 else rgb.transpose(0, 2, 3, 1)
        expected = rgb2lab(rgb.astype(np.float64))[..., 1:].transpose(0, 3, 1, 2)
        np.testing.assert_allclose(ab.numpy(), expected, atol=2e-3)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        tiny_window_mlp().predict_ab(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("name", ["window-mlp", "fc-image"])
def test_checkpoint_round_trip_gives_identical_predictions(name, tmp_path):
    model = tiny_window_mlp() if name == "window-mlp" else tiny_fc_image()
    l = torch.linspace(5, 95, 2 * 10 * 10).reshape(2, 1, 10, 10)
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    torch.manual_seed(123)  # a fresh model starts from other weights; loading must replace them all
    restored, _ = load(path)
    assert type(restored) is type(model) and restored.config == model.config
    torch.testing.assert_close(restored.predict_ab(l), model.predict_ab(l), rtol=0, atol=0)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(restored.state_dict()[key], value)


def test_load_refuses_weights_of_another_shape(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_window_mlp(window=2))
    other = tiny_window_mlp(window=1)
    state = load(path)[0].state_dict()
    with pytest.raises(ValueError, match="layers.0.weight has shape"):
        other.load_state_dict(state)


# ---------------------------------------------------------------------------------------------
# fit


def test_window_mlp_fit_lowers_the_val_loss_and_keeps_the_best_weights():
    train, val = LabItems(smooth_rgb(6, 12)), LabItems(smooth_rgb(2, 12, seed=5))
    model = tiny_window_mlp(l2_lambda=0.0)
    result, reports = fit_and_record(
        model, train, val, epochs=20, batch_size=32, lr=0.02, schedule="plateau-rounds", patience=2, rounds=2
    )
    epochs = [epoch for epoch, _ in reports]
    assert [metrics["round"] for _, metrics in reports][-1] == 2  # a plateau did end round 1
    assert epochs == list(range(1, len(epochs) + 1)) and result["epochs"] == len(epochs)
    for _, metrics in reports:
        assert {"train_loss", "val_loss", "val_rgb_mse", "lr", "round", "seconds"} <= set(metrics)
        assert metrics["lr"] == pytest.approx(0.02 * 0.1 ** (metrics["round"] - 1))
        # val_rgb_mse is the plain mean over 3 channels of the 1/(2N) sum-of-squares loss.
        assert metrics["val_rgb_mse"] == pytest.approx(2 * metrics["val_loss"] / 3)
    assert result["best_val_loss"] < 0.05 * result["initial_val_loss"]
    best = min(metrics["val_loss"] for _, metrics in reports)
    assert result["best_val_loss"] == pytest.approx(best)
    # The model ends with the best epoch's weights, not the last epoch's.
    x_val, y_val = model.examples(val.l, val.ab)
    assert data_loss(model.network, x_val, y_val) == pytest.approx(best, rel=1e-5)


def test_fc_image_fit_lowers_the_val_loss():
    train, val = LabItems(smooth_rgb(48, 8)), LabItems(smooth_rgb(4, 8, seed=7))
    model = tiny_fc_image()
    result, reports = fit_and_record(model, train, val, epochs=15, batch_size=4, lr=0.01)
    assert [epoch for epoch, _ in reports] == list(range(1, 16))  # schedule "none": every epoch runs
    assert result["best_val_loss"] < 0.5 * result["initial_val_loss"]
    assert reports[-1][1]["train_loss"] < reports[0][1]["train_loss"]
    assert all(metrics["val_rgb_mse"] == pytest.approx(2 * metrics["val_loss"] / 192) for _, metrics in reports)


def test_max_steps_step_schedule_and_early_stopping():
    train, val = LabItems(smooth_rgb(2, 8)), LabItems(smooth_rgb(1, 8, seed=3))
    model = tiny_window_mlp()
    steps = []
    original = model.network.train_step
    model.network.train_step = lambda x, y: steps.append(len(x)) or original(x, y)
    _, reports = fit_and_record(
        model, train, val, epochs=5, batch_size=16, lr=0.01, schedule="step", step_epochs=2, lr_decay=0.5,
        max_steps_per_epoch=3,
    )  # fmt: skip
    assert steps == [16] * 15  # 128 windows would be 8 steps; the cap allows 3 per epoch
    assert [metrics["lr"] for _, metrics in reports] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])
    # A learning rate this small cannot move a model off its initial loss, so it stops early.
    result, reports = fit_and_record(
        tiny_window_mlp(), train, val, epochs=50, batch_size=128, lr=1e-9, optimizer="sgd", momentum=0.0, early_stopping=3
    )
    assert len(reports) < 50 and "no better validation loss for 3 epochs" in result["stopped"]


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"weight_decay": 1e-4}, "train.weight_decay"),
        ({"grad_clip": 1.0}, "train.grad_clip"),
        ({"warmup_steps": 10}, "train.warmup_steps"),
        ({"optimizer": "sgd"}, "train.momentum"),
    ],
)
def test_options_without_a_numpy_meaning_are_refused(values, key):
    items = LabItems(smooth_rgb(1, 4))
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        fit_numpy_model(tiny_window_mlp(), items, items, TrainConfig(epochs=1, **values))


def test_fit_without_validation_data_judges_by_the_training_loss():
    train = LabItems(smooth_rgb(2, 8))
    empty = LabItems(smooth_rgb(1, 8))
    empty.l, empty.ab = empty.l[:0], empty.ab[:0]
    result, reports = fit_and_record(tiny_window_mlp(), train, empty, epochs=3, batch_size=32, lr=0.01)
    assert len(reports) == 3 and all("val_loss" not in metrics for _, metrics in reports)
    assert math.isfinite(result["best_val_loss"])


# ---------------------------------------------------------------------------------------------
# fc-image: seed 003 as written

SEED003 = dict(gray="seed", value_scale=255.0, output="clipped-relu", bias=False, init="uniform", init_scale=0.2,
               loss="sse", exact_gradient=False, update="clipped-sgd")


def test_seed003_gray_is_its_formula_of_the_8_bit_photo_truncated():
    rgb = np.random.default_rng(3).integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    items = LabItems(rgb)
    x, y = tiny_fc_image(**SEED003).examples(items.l, items.ab)
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    expected = (0.21 * r + 0.72 * g + 0.07 * b).astype(np.uint8)  # the seed's uint8 array truncates
    np.testing.assert_array_equal(x, expected.reshape(2, -1))
    # Targets are the photo's RGB in [0, 255], channel planes.
    np.testing.assert_allclose(y, rgb.transpose(0, 3, 1, 2).reshape(2, -1), atol=0.02)
    # A gray photo's own pixel values are the input at inference, as with the default gray.
    gray = np.repeat(np.random.default_rng(4).integers(0, 256, size=(1, 8, 8, 1), dtype=np.uint8), 3, axis=3)
    model = tiny_fc_image(**SEED003)
    l = torch.from_numpy(rgb2lab(gray)[..., :1].astype(np.float32)).permute(0, 3, 1, 2)
    np.testing.assert_allclose(model._gray_rows(l), gray[..., 0].reshape(1, -1), atol=0.01)


def test_seed003_network_is_bias_free_uniform_and_clipped():
    model = create_model("fc-image", **SEED003)
    assert model.network.layer_sizes == (256, 3840, 768)
    assert model.num_parameters() == 256 * 3840 + 3840 * 768  # no biases
    assert [layer.activation.name for layer in model.network.layers] == ["relu", "clipped_relu"]
    assert model.network.layers[1].activation.ceiling == 255.0
    weights = model.network.layers[0].weight
    assert weights.min() >= -0.2 and weights.max() <= 0.2 and abs(float(weights.mean())) < 0.01


def test_seed003_step_is_its_hand_written_update():
    """One batch of ``fit`` against seed 003's own loop: per-image gradients with every
    derivative taken as 1, accumulated, then ``W -= clip(lr^p * 0.2 * G, +-0.01 * batch * 0.2)``."""
    rgb = smooth_rgb(3, 4, seed=5)
    items = LabItems(rgb)
    model = tiny_fc_image(**SEED003, input_size=4, hidden=(6,), dtype="float64")
    w1, w2 = (layer.weight.T.copy() for layer in model.network.layers)  # the seed's (out, in) layout
    x, y = model.examples(items.l, items.ab)
    lr, batch = 0.003, 3
    layer_2_gradients, layer_1_gradients = np.zeros_like(w2), np.zeros_like(w1)
    for j in range(batch):
        flattened, truth = x[j][:, None], y[j][:, None]
        layer_2 = np.maximum(0, np.matmul(w1, flattened))
        output = np.minimum(np.maximum(0, np.matmul(w2, layer_2)), 255)
        output_deltas = 2 * (output - truth)
        layer_2_deltas = np.matmul(np.transpose(w2), output_deltas)
        layer_2_gradients += np.matmul(output_deltas, np.transpose(layer_2))
        layer_1_gradients += np.matmul(layer_2_deltas, np.transpose(flattened))
    bound = 0.01 * batch * 0.2
    w2 -= np.minimum(np.maximum(-bound, lr * layer_2_gradients * 0.2), bound)
    w1 -= np.minimum(np.maximum(-bound, lr**2 * layer_1_gradients * 0.2), bound)

    config = TrainConfig(epochs=1, batch_size=batch, lr=lr, optimizer="sgd", momentum=0.0)
    model.network.optimizer = model.own_optimizer(config)
    model.network.train_step(x, y)
    np.testing.assert_allclose(model.network.layers[0].weight.T, w1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.network.layers[1].weight.T, w2, rtol=1e-12, atol=1e-15)


def test_seed003_fit_reports_rgb_error_in_unit_range():
    train, val = LabItems(smooth_rgb(6, 8)), LabItems(smooth_rgb(2, 8, seed=7))
    model = tiny_fc_image(**SEED003)
    _, reports = fit_and_record(model, train, val, epochs=2, batch_size=3, lr=0.01, optimizer="sgd", momentum=0.0)
    for _, metrics in reports:
        assert metrics["val_rgb_mse"] == pytest.approx(2 * metrics["val_loss"] / 192 / 255**2)
        assert 0 <= metrics["val_rgb_mse"] <= 1
    rgb = model.predict_rgb(val.l)
    assert rgb.min() >= 0 and rgb.max() <= 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"value_scale": 255.0}, "sigmoid output lies in \\[0, 1\\] but value_scale is 255"),
        ({"gray": "luma"}, "gray must be one of lightness, seed"),
        ({"update": "rmsprop"}, "update must be one of optimizer, clipped-sgd"),
        ({"init": "normal"}, "init must be one of default, uniform"),
    ],
)
def test_seed003_options_are_checked(values, message):
    with pytest.raises(ValueError, match=message):
        tiny_fc_image(**values)


# ---------------------------------------------------------------------------------------------
# through the command line


def write_cifar(folder, train: int, test: int) -> None:
    """A CIFAR-100-format folder (pickled ``train``, ``test``, ``meta``) of class 52 only."""
    folder.mkdir(parents=True)
    for split, count in (("train", train), ("test", test)):
        rgb = smooth_rgb(count, 32, seed=len(split))
        batch = {
            b"data": rgb.transpose(0, 3, 1, 2).reshape(count, 3072),  # CIFAR rows: R, G, B planes
            b"fine_labels": [52] * count,
            b"coarse_labels": [10] * count,
            b"filenames": [f"{i}.png".encode() for i in range(count)],
        }
        with open(folder / split, "wb") as handle:
            pickle.dump(batch, handle)
    names = [f"class_{i:02d}".encode() for i in range(100)]
    names[52] = b"oak_tree"
    with open(folder / "meta", "wb") as handle:
        pickle.dump({b"fine_label_names": names, b"coarse_label_names": []}, handle)


QUICK = ["--set", "train.samples=2", "--set", "train.tensorboard=false", "--no-progress"]


def colorize_and_check(checkpoint, tmp_path) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(np.tile(np.linspace(30, 220, 45).astype(np.uint8), (30, 1)), "L").save(photo)
    out = tmp_path / "photo_color.png"
    assert main(["colorize", "-m", str(checkpoint), str(photo), "-o", str(out), "-q"]) == 0
    result = np.asarray(Image.open(out))
    assert result.shape == (30, 45, 3) and result.dtype == np.uint8


def test_seed000_preset_trains_and_colorizes_through_the_cli(tmp_path):
    write_cifar(tmp_path / "cifar", train=14, test=4)  # 10 train / 4 val images of class 52
    run = tmp_path / "run"
    argv = ["train", "--preset", "window-mlp", "--data", f"cifar100:{tmp_path / 'cifar'}:52", "--out", str(run)]
    overrides = ["train.epochs=2", "train.max_steps_per_epoch=4", f"data.cache_dir={tmp_path / 'cache'}"]
    assert main([*argv, *[arg for o in overrides for arg in ("--set", o)], *QUICK]) == 0
    assert (run / "best.safetensors").is_file() and (run / "samples" / "epoch_002.png").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "window-mlp" and config["model_config"]["hidden"] == [8, 4]
    assert config["train"]["schedule"] == "plateau-rounds" and config["train"]["batch_size"] == 1024
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "val_loss" in rows[0] and "val_psnr" in rows[0]
    model, _ = load(run / "best.safetensors")
    assert model.name == "window-mlp" and dataclasses.asdict(model.config)["l2_lambda"] == 1e-4
    colorize_and_check(run / "best.safetensors", tmp_path)


def test_seed003_preset_trains_and_colorizes_through_the_cli(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, rgb in enumerate(smooth_rgb(12, 24, seed=2)):
        Image.fromarray(rgb).save(photos / f"p{i:02d}.png")
    run = tmp_path / "run"
    argv = ["train", "--preset", "fc-image", "--data", str(photos), "--out", str(run)]
    overrides = ["train.epochs=2", "model.hidden=[16]", "data.cache_dir=null", "data.val_fraction=0.25"]
    assert main([*argv, *[arg for o in overrides for arg in ("--set", o)], *QUICK]) == 0
    info, _ = load(run / "best.safetensors")
    assert info.name == "fc-image" and info.config.input_size == 16 and info.config.hidden == (16,)
    colorize_and_check(run / "best.safetensors", tmp_path)


# ---------------------------------------------------------------------------------------------
# fit_network: the epoch loop with learning-rate rounds (seed 000), on any network


def _rounds(lr: float, rounds: int, patience: int, epochs: int = 1000, **more) -> TrainConfig:
    return TrainConfig(lr=lr, rounds=rounds, patience=patience, epochs=epochs, schedule="plateau-rounds", **more)


class _ScriptedModel:
    """Stands in for a network: its 'weights' are the epoch counter, val losses are scripted."""

    def __init__(self, val_losses: list[float]) -> None:
        self.optimizer = Adam(learning_rate=1.0)
        self.val_losses = val_losses
        self.epoch_weights = 0  # which epoch produced the current "weights"
        self.epochs_trained = 0  # epochs of training so far, whatever weights were loaded
        self.loaded: list[int] = []  # the weights every load_state_dict brought back
        self.resets: list[float] = []  # learning rate at every reset
        original_reset = self.optimizer.reset

        def recording_reset() -> None:
            self.resets.append(self.optimizer.learning_rate)
            original_reset()

        self.optimizer.reset = recording_reset  # type: ignore[method-assign]

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.epoch_weights += 1
        self.epochs_trained += 1
        return float(x.sum())

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"epoch": np.array(self.epoch_weights)}

    def load_state_dict(self, state) -> None:
        self.epoch_weights = int(state["epoch"])
        self.loaded.append(self.epoch_weights)

    def val_loss(self, model: "_ScriptedModel") -> float:
        return self.val_losses[model.epoch_weights]

    def val_loss_by_time(self, model: "_ScriptedModel") -> float:
        return self.val_losses[model.epochs_trained]


def test_fit_network_patience_rounds_and_best_weights():
    # Validation loss after k epochs of training; index 0 = initial weights.
    losses = [10.0, 9.0, 8.0, 8.5, 8.7, 7.0, 7.5, 7.6, 7.7, 7.8, 7.9, 8.0]
    model = _ScriptedModel(losses)
    records = []
    result = fit_network(
        model,
        train_batches_fn=lambda epoch: [(np.ones((2, 1)), np.zeros((2, 1)))],
        val_loss_fn=model.val_loss_by_time,
        config=_rounds(0.5, rounds=3, patience=2),
        progress=records.append,
    )
    # Round 0: epochs 1 (9.0), 2 (8.0), 3 (8.5), 4 (8.7) -> 2 epochs without improvement.
    # Round 1: epoch 5 (7.0 best), 6 (7.5), 7 (7.6). Round 2: epochs 8 (7.7), 9 (7.8).
    assert [r.round_index for r in records] == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert [r.learning_rate for r in records] == [0.5] * 4 + [0.05] * 3 + [0.005] * 2
    assert [r.improved for r in records] == [True, True, False, False, True, False, False, False, False]
    assert model.resets == [0.5, 0.05, 0.005]  # Adam reset at the start of every round
    # Each new round restarts from the best weights (those of epoch 2, then of epoch 5, which
    # trained on from epoch 2's and so hold 3), and the best weights are loaded at the end.
    assert model.loaded == [2, 3, 3] and model.epoch_weights == 3
    assert result.best_epoch == 5 and result.best_val_loss == 7.0
    assert result.initial_val_loss == 10.0
    assert result.stopped == "plateau-rounds: round 3 of 3 ended without improvement"
    assert records[0].train_loss == 2.0  # mean over the batch-size-weighted epoch


def test_fit_network_restarts_from_best_and_respects_the_epoch_budget():
    losses = [10.0, 9.0, 9.5, 9.6, 9.7, 9.8]
    model = _ScriptedModel(losses)
    loaded_at_round_start: list[int] = []
    result = fit_network(
        model,
        train_batches_fn=lambda epoch: [(np.ones((1, 1)), np.zeros((1, 1)))],
        val_loss_fn=model.val_loss,
        config=_rounds(1e-3, rounds=6, patience=2, epochs=5),
        progress=lambda record: loaded_at_round_start.append(model.epoch_weights),
    )
    # Round 0: epochs 1-3 (weights 1, 2, 3). Round 1 restarts from weights 1: epochs 4-5
    # produce weights 2 and 3 again, then the budget of 5 epochs is used up.
    assert loaded_at_round_start == [1, 2, 3, 2, 3]
    assert len(result.epochs) == 5
    assert result.stopped == "finished 5 epochs"
    assert model.epoch_weights == 1 and result.best_val_loss == 9.0


def _toy_regression():
    rng = np.random.default_rng(0)
    x_train, x_val = rng.uniform(size=(64, 2)), rng.uniform(size=(32, 2))
    target = lambda x: 0.3 + 0.4 * x[:, :1] * x[:, 1:]  # noqa: E731

    def batches(epoch):
        order = np.random.default_rng(epoch).permutation(64)
        for start in range(0, 64, 16):
            rows = order[start : start + 16]
            yield x_train[rows], target(x_train[rows])

    return batches, lambda net: net.loss(x_val, target(x_val), include_l2=False)


def test_fit_network_on_a_real_network():
    batches, val = _toy_regression()
    network = Network([2, 6, 1], output_activation="sigmoid", seed=0)
    result = fit_network(network, batches, val, _rounds(0.02, rounds=3, patience=3, epochs=60))
    assert result.best_val_loss < 0.5 * result.initial_val_loss
    assert val(network) == result.best_val_loss
    assert any(math.isclose(network.optimizer.learning_rate, lr) for lr in (0.02, 0.002, 0.0002))


@pytest.mark.parametrize("stop_after", [2, 3, 7])
def test_fit_network_resumed_from_its_state_ends_as_an_uninterrupted_run(stop_after):
    batches, val = _toy_regression()
    config = _rounds(0.5, rounds=3, patience=1, epochs=12, early_stopping=4)
    reference = Network([2, 6, 1], output_activation="sigmoid", seed=0)
    whole = fit_network(reference, batches, val, config)
    assert len({r.round_index for r in whole.epochs}) > 1  # the rounds do change

    class _Stop(Exception):
        pass

    saved = {}

    def save_and_stop(record):  # what the trainer writes after an epoch, then a kill
        saved.update(weights=first.state_dict(), optimizer=first.optimizer.state_dict(), progress=state.to_dict())
        if record.epoch == stop_after:
            raise _Stop

    first, state = Network([2, 6, 1], output_activation="sigmoid", seed=0), FitProgress()
    with pytest.raises(_Stop):
        fit_network(first, batches, val, config, progress=save_and_stop, state=state)
    resumed = Network([2, 6, 1], output_activation="sigmoid", seed=1)  # other weights, reloaded below
    resumed.load_state_dict(saved["weights"])
    resumed.optimizer.load_state_dict(saved["optimizer"])
    rest = fit_network(resumed, batches, val, config, state=FitProgress.from_dict(saved["progress"]))
    assert [r.epoch for r in rest.epochs] == [r.epoch for r in whole.epochs[stop_after:]]
    assert rest.stopped == whole.stopped and rest.best_epoch == whole.best_epoch
    for name, value in reference.state_dict().items():
        assert np.array_equal(resumed.state_dict()[name], value), name


def test_fit_network_validation():
    model = _ScriptedModel([1.0])
    with pytest.raises(ValueError, match="train.patience: must be >= 1 with schedule plateau-rounds"):
        _rounds(0.1, rounds=2, patience=0)
    with pytest.raises(ValueError, match=r"train_batches_fn\(1\) yielded no samples"):
        fit_network(model, lambda e: [], model.val_loss, _rounds(0.1, rounds=2, patience=1))
