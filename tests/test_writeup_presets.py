"""Each seed write-up's system as written, beside tinct's improved version.

* a registry-wide check: every write-up-faithful preset's resolved settings (what a run
  records in ``config.json``) against the values its write-up states, each value tied to the
  phrase of ``../shared/seeds/README.md`` or of the write-up itself that states it;
* every faithful preset trains for 2 epochs on small real photos (``shared_data``) through
  ``tinct train``, with the files the write-up asks for (a checkpoint per epoch, a palette);
* seed 002's staged training, run from the command sequence in docs/models.md;
* the palette options (RGB k-means of a sample photo, the expectation decode, the view);
* reproducibility: two seeded runs of ``palette-cnn`` give bit-identical weights.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinct.cli import main
from tinct.models import create_model, load
from tinct.train import list_presets, resolve_run_config

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"

# preset -> (seed, family, [(where it is written, phrase, dotted key, value)]); "README" is the
# seeds' table (its row for the seed), a number is that seed's write-up file. A value may be a
# callable that checks the resolved setting.
WRITEUP_PRESETS = {
    "window-mlp": ("000", "window-mlp", [
        ("README", "sigmoid", "model_config.activation", "sigmoid"),
        ("README", "hidden [8, 4]", "model_config.hidden", [8, 4]),
        ("README", "Adam", "train.optimizer", "adam"),
        ("README", "L2 1e-4", "model_config.l2_lambda", 1e-4),
        ("README", "batch 1024", "train.batch_size", 1024),
        ("README", "early stopping (patience 10)", "train.patience", 10),
        ("README", "6 rounds of LR/10", "train.rounds", 6),
        ("README", "6 rounds of LR/10", "train.lr_decay", 0.1),
        ("README", "6 rounds of LR/10", "train.schedule", "plateau-rounds"),
        ("README", "Adam state is reset at each of the 6 rounds", "train.reset_optimizer_each_round", True),
        ("README", "the output layer is a sigmoid too", "model_config.activation", "sigmoid"),
        ("README", "CIFAR-100 class 52", "description", lambda text: "cifar100:DIR:52" in text),
    ]),
    "palette-mlp-one-photo-palette": ("001", "palette-mlp", [
        ("README", "k-means palette (16/32/64 colours)", "model_config.num_colors", lambda k: k in (16, 32, 64)),
        ("README", "per-domain palettes", "model_config.palette_fit", "rgb-sample-image"),
        ("001", "a sample image from the dataset is used to derive a representative color set",
         "model_config.palette_fit", "rgb-sample-image"),
        ("001", "Dense(200, input_shape=(w_size**2, ), activation='sigmoid')", "model_config.hidden", [200, 100, 50]),
        ("001", "Dense(50, activation='relu')", "model_config.activations", ["sigmoid", "sigmoid", "relu"]),
        ("001", "produced by a softmax layer", "model_config.decode", "argmax"),
        ("001", "window sizes between 5, 7, 12, and 15", "model_config.window", 7),
    ]),
    "palette-cnn-one-photo-palette": ("001", "palette-cnn", [
        ("README", "k-means palette (16/32/64 colours)", "model_config.num_colors", 16),
        ("001", "reducing the ncolors parameter to 16", "model_config.num_colors", 16),
        ("README", "per-domain palettes", "model_config.palette_fit", "rgb-sample-image"),
        ("001", "Conv2D(10, kernel_size=(6, 6)", "model_config.conv_channels", [10, 20]),
        ("001", "Conv2D(20, kernel_size=(4, 4), padding='valid')", "model_config.conv_kernels", [6, 4]),
        ("001", "Conv2D(20, kernel_size=(4, 4), padding='valid')", "model_config.conv_activation", "none"),
        ("001", "Dense(50, activation='relu')", "model_config.dense", 50),
    ]),
    "pix2pix": ("002", "pix2pix", [
        ("README", "U-Net generator + PatchGAN discriminator", "model_config.disc_layers", 3),
        ("README", "horizontal flips", "data.hflip", True),
        ("README", "filtering of extreme-brightness", "data.filter_brightness", lambda v: v is not None),
        ("README", "low-colourfulness images", "data.filter_min_colorfulness", lambda v: v is not None),
        ("README", "002: trains at 128x128", "model_config.input_size", 128),
        ("README", "002: trains at 128x128", "data.size", 128),
        ("002", "random horizontal flips", "data.hflip", True),
    ]),
    "fc-image-clipped-sgd": ("003", "fc-image", [
        ("README", "whole 16x16 images (Caltech-101)", "model_config.input_size", 16),
        ("README", "whole 16x16 images (Caltech-101)", "data.size", 16),
        ("README", "ReLU / sigmoid / tanh variants", "model_config.activation", "relu"),
        ("README", "grayscale = 0.21R + 0.72G + 0.07B", "model_config.gray", "seed"),
        ("README", "sum-of-squares loss", "model_config.loss", "sse"),
        ("003", "middle_layer_multiple  = 5", "model_config.hidden", [5 * 3 * 16 * 16]),
        ("003", "randomly initializing the weights in the range $[-0.2, 0.2]$", "model_config.init", "uniform"),
        ("003", "randomly initializing the weights in the range $[-0.2, 0.2]$", "model_config.init_scale", 0.2),
        ("003", "everything greater than 255 was set to 255", "model_config.output", "clipped-relu"),
        ("003", "everything greater than 255 was set to 255", "model_config.value_scale", 255.0),
        ("003", "we assumed that the derivative of ReLU = 1 everywhere", "model_config.exact_gradient", False),
        ("003", "learning_rate**2 * layer_1_gradients", "model_config.update", "clipped-sgd"),
        ("003", "np.matmul(layer_1_weights, flattened[j])", "model_config.bias", False),
        ("003", "a batch size of $n=50$", "train.batch_size", 50),
        ("003", "300 iterations through the entire dataset", "train.epochs", 300),
        ("003", "300 iterations through the entire dataset", "train.schedule", "none"),
        ("003", "we use just 100 of the 761 training examples", "data.max_images", 321),
        ("003", "221 for testing", "data.val_fraction", lambda f: int(f * 321 + 0.5) == 221),
        ("003", "np.zeros((len(filenames), 3, n, n))", "model_config.dtype", "float64"),
    ]),
    "unet-relu": ("004", "unet", [
        ("README", "PyTorch U-Net (256x256", "model_config.input_size", 256),
        ("README", "PyTorch U-Net (256x256", "data.size", 256),
        ("README", "Adam 2e-4", "train.optimizer", "adam"),
        ("README", "Adam 2e-4", "train.lr", 2e-4),
        ("README", "batch 16", "train.batch_size", 16),
        ("README", "checkpoints and sample images each epoch", "train.keep_every_epoch", True),
        ("README", "checkpoints and sample images each epoch", "train.samples", lambda n: n > 0),
        ("004", "**Activation:** ReLU for hidden layers", "model_config.encoder_activation", "relu"),
        ("004", "Batch Normalization after each conv layer", "model_config.batch_norm", "all"),
        ("004", "ab channels: [-128, 127] → [-1, 1] via `ab/128`", "model_config.ab_norm", 128.0),
        ("004", "Dropout (p=0.5) on first 3 decoder layers", "model_config.dropout", 0.5),
        ("004", "| Epochs | 50 |", "train.epochs", 50),
        ("004", "down1: 1 → 64", "model_config.width", 64),
        ("004", "down6: 512 → 512", "model_config.depth", 7),
    ]),
}  # fmt: skip


def _seed_text(where: str, seed: str) -> str | None:
    """The README row of ``seed`` (plus the README's notes on its code), or the write-up file."""
    if not SEEDS.is_dir():
        return None
    if where == "README":
        text = (SEEDS / "README.md").read_text(encoding="utf-8")
        row = next(line for line in text.splitlines() if line.startswith(f"| {seed}_"))
        notes = [line for line in text.splitlines() if line.startswith(f"- {seed}:")]
        return "\n".join([row, *notes])
    (path,) = SEEDS.glob(f"{where}_*.txt")
    return path.read_text(encoding="utf-8")


def _setting(run: dict, dotted: str):
    section, _, key = dotted.partition(".")
    return run[section] if not key else run[section][key]


@pytest.mark.parametrize("preset", sorted(WRITEUP_PRESETS))
def test_writeup_presets_record_the_writeups_values(preset, tmp_path):
    seed, family, expectations = WRITEUP_PRESETS[preset]
    assert preset in list_presets()
    # As a run records them in config.json (JSON: tuples become lists).
    run = json.loads(json.dumps(resolve_run_config(preset=preset, sources=[str(tmp_path)]).to_dict()))
    run["description"] = json.loads((REPO / "src" / "tinct" / "presets" / f"{preset}.json").read_text())["description"]
    assert run["model"] == family
    for where, phrase, key, expected in expectations:
        text = _seed_text(where, seed)
        if text is not None:  # the phrase is what the write-up (or the seeds' table) says
            assert phrase in text, f"{preset}: {where} no longer says {phrase!r}"
        value = _setting(run, key)
        if callable(expected):
            assert expected(value), f"{preset}: {key} = {value!r} does not match {phrase!r}"
        else:
            assert value == expected, f"{preset}: {key} = {value!r}, the write-up says {phrase!r} ({expected!r})"


def test_every_family_with_a_writeup_has_a_faithful_preset_beside_an_improved_one():
    presets = set(list_presets())
    improved = {"window-mlp": "window-mlp", "palette-mlp": "palette-mlp", "palette-cnn": "palette-cnn",
                "pix2pix": "pix2pix-cpu", "fc-image": "fc-image", "unet": "unet-cpu"}  # fmt: skip
    for preset, (_, family, _) in WRITEUP_PRESETS.items():
        assert improved[family] in presets, family
    assert {family for _, family, _ in WRITEUP_PRESETS.values()} == set(improved)


def test_preset_names_say_the_method_and_the_writeup_is_named_in_the_description_and_the_docs():
    """Names such as ``seed000`` had to be decoded; the write-up now sits in each faithful preset's
    description and in the docs' preset table."""
    assert not [name for name in list_presets() if name.startswith("seed")]
    table = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    for preset, (seed, family, _) in WRITEUP_PRESETS.items():
        description = json.loads((REPO / "src" / "tinct" / "presets" / f"{preset}.json").read_text())["description"]
        assert f"Seed {seed}" in description and f"../shared/seeds/{seed}_*.txt" in description, preset
        written = sorted(SEEDS.glob(f"{seed}_*.txt")) if SEEDS.is_dir() else []
        row = re.search(rf"^\| `{re.escape(preset)}` \| `{re.escape(family)}` \| .* \| seed {seed}\b(.*)\|$", table, re.M)
        assert row, f"docs/models.md: no preset-table row maps {preset} to seed {seed}"
        for path in written:  # the table names the file (in the first row of each seed)
            assert path.name in table, path.name


def test_unet_relu_is_seed_004s_listing_depth_7_block_for_block():
    """Seed 004's module listing: down1-down6 + bottleneck, up1-up6 + final."""
    run = resolve_run_config(preset="unet-relu", sources=["."])
    model = create_model(run.model, **run.model_config)
    down = [block[0] for block in model.generator.down]
    assert [(c.in_channels, c.out_channels) for c in down] == [
        (1, 64), (64, 128), (128, 256), (256, 512), (512, 512), (512, 512), (512, 512)  # down1-6, bottleneck
    ]
    up = [block[0] for block in model.generator.up] + [model.generator.out]
    assert [(c.in_channels, c.out_channels) for c in up] == [
        (512, 512), (1024, 512), (1024, 512), (1024, 256), (512, 128), (256, 64), (128, 2)  # up1-6, final
    ]
    assert all(isinstance(block[1], torch.nn.BatchNorm2d) for block in model.generator.down)
    assert all(isinstance(block[-1], torch.nn.ReLU) for block in model.generator.down)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.generator.modules()) == 3
    assert model.num_parameters() == 41_826_050
    ab = torch.tensor([[[[128.0]], [[-64.0]]]])
    torch.testing.assert_close(model.normalize_ab(ab), ab / 128)


# ---------------------------------------------------------------------------------------------
# each faithful preset trains for 2 epochs on real photos

QUICK = ["train.epochs=2", "train.samples=2", "train.tensorboard=false", "train.threads=1", "data.cache_dir=null",
         "data.max_images=12", "data.val_fraction=0.25", "train.max_val_images=2"]  # fmt: skip

TINY = {
    "window-mlp": ["data.size=32", "train.max_steps_per_epoch=3"],
    "palette-mlp-one-photo-palette": ["model.input_size=64", "data.size=32", "data.cache_side=64",
                                      "model.hidden=[8,6,4]", "train.batch_size=4", "train.max_steps_per_epoch=2"],
    "palette-cnn-one-photo-palette": ["model.input_size=64", "data.size=32", "data.cache_side=64",
                                      "train.batch_size=4", "train.max_steps_per_epoch=2"],
    "pix2pix": ["model.width=4", "model.disc_width=4", "model.depth=5", "model.input_size=32", "data.size=32",
                "train.batch_size=4", "train.max_steps_per_epoch=2"],
    "fc-image-clipped-sgd": ["model.hidden=[32]"],
    "unet-relu": ["model.width=4", "model.input_size=128", "data.size=128", "train.batch_size=4",
                  "train.max_steps_per_epoch=2"],
}  # fmt: skip


def _train(argv: list[str], settings: list[str]) -> int:
    return main(["train", *argv, "--no-progress", *[part for s in settings for part in ("--set", s)]])


@pytest.mark.parametrize("preset", sorted(WRITEUP_PRESETS))
def test_writeup_preset_trains_two_epochs_on_real_photos(preset, shared_data, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["--preset", preset, "--data", str(shared_data / "cbsd68"), "--out", str(run)]
    assert _train(argv, QUICK + TINY[preset]) == 0, capsys.readouterr().err[-2000:]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "val_psnr" in rows[0]
    assert (run / "samples" / "epoch_002.png").is_file()
    model, _ = load(run / "last.safetensors")
    config = json.loads((run / "config.json").read_text())
    assert model.name == config["model"] == WRITEUP_PRESETS[preset][1]
    if preset == "unet-relu":  # "Model checkpoints for all 50 epochs"
        kept = sorted(p.name for p in (run / "epochs").iterdir())
        assert kept == ["epoch_001.safetensors", "epoch_002.safetensors"]
        assert load(run / "epochs" / "epoch_002.safetensors")[1].metrics["epoch"] == 2
    if preset.endswith("-one-photo-palette"):  # seed 001: "a sample image ... derive a representative color set"
        palette = np.asarray(Image.open(run / "palette.png"))
        colours = model.config.num_colors
        assert palette.shape == (4 * 24, colours * 24, 3)  # RGB centres, then ab at L 75 / 50 / 25
        centres = palette[12, 12::24].astype(float) / 255
        np.testing.assert_allclose(centres, model.palette_rgb.numpy(), atol=1 / 255)


# ---------------------------------------------------------------------------------------------
# seed 002's staged training, from docs/models.md


def _staged_commands() -> list[str]:
    text = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    section = text[text.index("### Staged training\n") :]
    lines = [line.strip() for line in section.splitlines()[1:40] if line.startswith("    .venv/bin/tinct")]
    assert len(lines) >= 4, "docs/models.md: the staged training commands are gone"
    return lines


def test_seed002_staged_training_runs_as_documented(tmp_path, monkeypatch, capsys):
    from test_data import lab_array_parts

    home = tmp_path / "home"
    lab_array_parts(home / "image-colorization", sizes=(4, 4, 3), side=40)
    (tmp_path / "shared" / "data" / "cbsd68").mkdir(parents=True)
    for i in range(2):
        rgb = np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(tmp_path / "shared" / "data" / "cbsd68" / f"{i}.png")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    small = ["train.epochs=1", "train.batch_size=2", "train.max_steps_per_epoch=1", "train.samples=1",
             "train.tensorboard=false", "train.threads=1", "data.val_fraction=0.25"]  # fmt: skip
    new_run = ["model.width=2", "model.disc_width=2"]
    for command in _staged_commands():
        words = [str(home) + w[1:] if w.startswith("~/") else w for w in shlex.split(command)]
        words = [w.replace(":~/", f":{home}/") for w in words]
        args = words[1:]
        if args[0] == "train":
            status = _train(args[1:], small + ([] if "--init" in args else new_run))
        else:
            status = main([*args, "--no-progress", "--out", str(tmp_path / "report")])
        assert status == 0, f"`{command}`: {capsys.readouterr().err[-2000:]}"
    stages = sorted(work.glob("runs/pix2pix-stage*"))
    assert [p.name for p in stages] == ["pix2pix-stage1", "pix2pix-stage2", "pix2pix-stage3"]
    sources = [json.loads((p / "config.json").read_text())["data"]["sources"][0] for p in stages]
    assert [s.rsplit(":", 1)[1] for s in sources] == ["parts=1", "parts=2", "parts=3"]
    second = json.loads((stages[1] / "config.json").read_text())["train"]["init_from"]
    assert second.endswith("pix2pix-stage1/last.safetensors")
    # A stage's checkpoint holds both networks, so --init carries the discriminator over too.
    assert any(k.startswith("discriminator.") for k in load(stages[0] / "last.safetensors")[0].state_dict())


# ---------------------------------------------------------------------------------------------
# palettes: the seed's RGB k-means of a sample photo, the expectation decode


def test_rgb_sample_image_palette_is_kmeans_of_that_photo_and_targets_are_nearest_in_rgb():
    from tinct.color import rgb_to_lab

    colours = np.array([[200, 30, 30], [30, 160, 40], [40, 60, 200], [230, 230, 210]], dtype=np.uint8)
    rng = np.random.default_rng(0)
    photo = colours[rng.integers(0, 4, size=(24, 24))]
    lab = torch.from_numpy(rgb_to_lab(photo)).permute(2, 0, 1)
    model = create_model("palette-cnn", num_colors=4, palette_fit="rgb-sample-image")
    model.fit_statistics_from_dataset([{"l": lab[:1], "ab": lab[1:]}], pixels=1000, seed=0)
    found = np.round(model.palette_rgb.numpy() * 255)
    assert sorted(map(tuple, found.astype(int).tolist())) == sorted(map(tuple, colours.astype(int).tolist()))
    assert np.allclose(model.palette.numpy(), rgb_to_lab(found.astype(np.uint8))[:, 1:], atol=0.05)
    target = model.nearest_colour(lab[None, 1:], lab[None, :1])
    index = {tuple(c): k for k, c in enumerate(found.astype(int).tolist())}
    expected = np.vectorize(lambda i: index[tuple(colours[i].tolist())])(
        np.argmin(((photo[..., None, :].astype(int) - colours[None, None]) ** 2).sum(-1), -1)
    )
    np.testing.assert_array_equal(target[0].numpy(), expected)
    with pytest.raises(ValueError, match="needs a training photo"):
        model.fit_statistics(torch.zeros(10, 2))


def test_expectation_decode_is_the_palette_mean_under_the_softmax():
    model = create_model("palette-mlp", num_colors=3, decode="expectation")
    model.palette.copy_(torch.tensor([[0.0, 0.0], [60.0, 0.0], [0.0, -60.0]]))
    logits = torch.tensor([1.0, 2.0, 0.5]).reshape(1, 3, 1, 1)
    p = torch.softmax(logits.flatten(), 0)
    torch.testing.assert_close(model.decode(logits).flatten(), torch.stack([60 * p[1], -60 * p[2]]))
    model.config.decode = "argmax"
    assert model.decode(logits).flatten().tolist() == [60.0, 0.0]


# ---------------------------------------------------------------------------------------------
# reproducibility


def _photos(folder: Path, count: int = 10) -> Path:
    from conftest import make_sky_grass_photos

    return make_sky_grass_photos(folder, count)


def test_two_seeded_palette_cnn_runs_give_identical_weights(tmp_path, capsys):
    """The leaderboard's preset, one epoch twice with the same seed: the weights agree to the
    bit (the checkpoint files do not: their header records the epoch's timings)."""
    photos = _photos(tmp_path / "photos")
    settings = ["train.epochs=1", "train.batch_size=4", "train.samples=1", "train.tensorboard=false",
                "train.threads=2", "train.statistics_pixels=30000", "data.size=32", "data.cache_side=40",
                "model.input_size=40", "data.val_fraction=0.2"]  # fmt: skip
    weights, rows = [], []
    for name in ("a", "b"):
        run = tmp_path / name
        assert _train(["--preset", "palette-cnn", "--data", str(photos), "--out", str(run)], settings) == 0
        weights.append(load(run / "last.safetensors")[0].state_dict())
        rows.append((run / "metrics.csv").read_text().splitlines())
    assert list(weights[0]) == list(weights[1])
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    header = rows[0][0].split(",")
    timing = {header.index(c) for c in ("seconds", "images_per_second")}
    values = [[v for i, v in enumerate(r[1].split(",")) if i not in timing] for r in rows]
    assert values[0] == values[1]
    capsys.readouterr()


def test_kmeans_palette_does_not_depend_on_the_thread_count():
    from threadpoolctl import threadpool_limits

    from tinct.models.palette import fit_palette

    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.normal(c, 8, size=(8000, 2)) for c in [(0, 0), (20, 30), (-20, 10)]])
    with threadpool_limits(limits=2):
        many = fit_palette(samples, 8)
    with threadpool_limits(limits=1):
        one = fit_palette(samples, 8)
    assert torch.equal(many, one)


def test_zhang16_presets_and_docs_agree_on_the_papers_betas(tmp_path):
    """Zhang et al. 2016: Adam with beta1 = 0.9, beta2 = 0.99, weight decay 1e-3."""
    for preset in ("zhang16", "zhang16-cpu"):
        train = json.loads((REPO / "src" / "tinct" / "presets" / f"{preset}.json").read_text())["train"]
        assert train["betas"] == [0.9, 0.99], preset
    paper = json.loads((REPO / "src" / "tinct" / "presets" / "zhang16.json").read_text())["train"]
    assert paper["weight_decay"] == 1e-3 and paper["lr"] == 3e-5
    text = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    section = text[text.index("## `zhang16`") : text.index("## `palette-mlp`")]
    assert "beta1 = 0.9, beta2 = 0.99 and weight decay 1e-3" in section
    assert "Adam lr 3e-5 with betas (0.9, 0.99)" in section and "the paper's betas (0.9, 0.99)" in section
    assert "0.999" not in section.replace("the trainer's default is (0.9, 0.999)", "")
