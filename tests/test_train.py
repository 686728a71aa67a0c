"""The trainer: a tiny real run, exact resume after kill -9, config layering, schedules, run folders."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinct.color import LAB, lab_to_rgb
from tinct.models.base import ColorModel, ModelCapabilities
from tinct.train import (
    ConfigError,
    LearningRateSchedule,
    RunConfig,
    TrainConfig,
    TrainError,
    list_presets,
    parse_override,
    prepare_run_dir,
    resolve_run_config,
    train,
)
from tinct.train.sampling import TrainSampler, epoch_permutation

from conftest import make_sky_grass_photos


REPO = Path(__file__).resolve().parents[1]
TINY_TINCTNET = ["model.width=4", "model.input_size=32", "data.size=32"]
QUIET = ["train.threads=1", "train.tensorboard=false", "train.samples=2"]


def make_photos(folder: Path, count: int = 24) -> Path:
    return make_sky_grass_photos(folder, count, seed=0)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


class PairDataset:
    """In-memory (L, ab) pairs where ab is a fixed function of L (learnable), with an epoch flip."""

    def __init__(self, count: int, size: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.l = torch.rand(count, 1, size, size, generator=g) * 80 + 10
        self.ab = torch.cat([self.l - 50, 50 - self.l], 1) * 0.6
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.l)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        l, ab = self.l[i], self.ab[i]
        if (i + self.epoch) % 2:
            l, ab = l.flip(-1), ab.flip(-1)
        return {"l": l, "ab": ab}


# ---------------------------------------------------------------------------------------
# toy models (registered per test by the ``toy_models`` fixture)


class AffineColor(ColorModel):
    """ab = tanh(w * L_norm + b) * 110: one weight and bias per channel."""

    @dataclass
    class Config:
        input_size: int = 16
        width: int = 1  # unused; lets tests change the model config

    def __init__(self, config):
        super().__init__(config)
        self.weight = nn.Parameter(torch.zeros(2))
        self.bias = nn.Parameter(torch.zeros(2))

    def _normalised(self, l):
        return torch.tanh(self.weight[None, :, None, None] * LAB.normalize_l(l) + self.bias[None, :, None, None])

    def predict_ab(self, l):
        return LAB.unnormalize_ab(self._normalised(l))

    def training_loss(self, l, ab):
        loss = F.mse_loss(self._normalised(l), LAB.normalize_ab(ab))
        return loss, {"loss": float(loss.detach())}


class TwoOptimizers(AffineColor):
    """Steps weight and bias with separate optimisers through ``train_step``, like a GAN."""

    custom_training_step = True

    def make_optimizers(self, config):
        self.seen_lrs = []
        return {
            "weight": torch.optim.SGD([self.weight], lr=config.lr),
            "bias": torch.optim.SGD([self.bias], lr=config.lr * 10),
        }

    def train_step(self, l, ab, optimizers):
        self.seen_lrs.append((optimizers["weight"].param_groups[0]["lr"], optimizers["bias"].param_groups[0]["lr"]))
        loss, _ = self.training_loss(l, ab)
        for optimizer in optimizers.values():
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers.values():
            optimizer.step()
        return {"loss": float(loss.detach()), "generator": 1.0}


def _in_memory_run(overrides, model="test-affine") -> RunConfig:
    run = resolve_run_config(model=model, sources=["."], overrides=overrides)
    return dataclasses.replace(run, data={})


class NumpyMeanColor(ModelCapabilities):
    """Predicts the training set's mean ab everywhere; trains with NumPy through ``fit``."""

    backend = "numpy"

    @dataclass
    class Config:
        input_size: int = 16

    def __init__(self, config):
        self.config = config
        self.mean_ab = np.zeros(2, np.float32)

    def state_dict(self):
        return {"mean_ab": self.mean_ab.copy()}

    def load_state_dict(self, state):
        self.mean_ab = np.asarray(state["mean_ab"], np.float32)

    def predict_ab(self, l):
        return torch.from_numpy(self.mean_ab)[None, :, None, None].expand(l.shape[0], 2, *l.shape[-2:]).clone()

    def fit(self, train_data, val_data, train_config, callback):
        total = np.zeros(2)
        for epoch in range(train_config.epochs):
            total += np.mean([train_data[i]["ab"].mean(dim=(1, 2)).numpy() for i in range(len(train_data))], 0)
            self.mean_ab = (total / (epoch + 1)).astype(np.float32)
            callback(epoch + 1, {"train_loss": float(epoch)})
        return {"mean_ab": self.mean_ab.tolist()}


@pytest.fixture
def toy_models(monkeypatch):
    """Register this file's toy models for one test only (so registry-wide tests never see them)."""
    from tinct.models import registry

    toys = {"test-affine": AffineColor, "test-two-optimizers": TwoOptimizers, "test-numpy-mean": NumpyMeanColor}
    for name, cls in toys.items():
        monkeypatch.setattr(cls, "name", name, raising=False)
        monkeypatch.setitem(registry._REGISTRY, name, cls)


# ---------------------------------------------------------------------------------------
# a tiny real run


def test_tiny_run_loss_drops_and_fills_the_run_folder(tmp_path):
    from tinct.data import make_datasets, manifest_sha256
    from tinct.infer import Colorizer
    from tinct.models import load, read_checkpoint_info

    photos = make_photos(tmp_path / "photos")
    overrides = TINY_TINCTNET + QUIET + [
        "model.head=regression", "data.val_fraction=0.25", "train.batch_size=6", "train.epochs=4", "train.lr=0.01",
    ]  # fmt: skip
    run = resolve_run_config(model="tinctnet", sources=[str(photos)], overrides=overrides)
    result = train(run, tmp_path / "run", progress=False)
    out = tmp_path / "run"

    rows = read_metrics(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert result.global_step == 4 * 3  # 18 training photos, global batch 6
    assert float(rows[-1]["train_loss"]) < 0.8 * float(rows[0]["train_loss"])
    assert float(rows[-1]["val_loss"]) < 0.8 * float(rows[0]["val_loss"])

    # The checkpoints rebuild the model and carry the run's description.
    info = read_checkpoint_info(out / "best.safetensors")
    assert info["model"] == "tinctnet" and info["config"] == run.model_config
    assert info["extra"]["train_config"] == run.train.to_dict()
    assert info["extra"]["data_config"] == run.data
    assert info["data_manifest_sha256"] == manifest_sha256(run.data_config())
    assert json.loads((out / "config.json").read_text()) == run.to_dict()
    last, _ = load(out / "last.safetensors")
    for name, value in result.model.state_dict().items():
        assert torch.equal(last.state_dict()[name], value), name
    best_epoch = min(rows, key=lambda r: float(r["val_loss"]))["epoch"]
    assert info["metrics"]["epoch"] == int(best_epoch)
    rgb = Colorizer(out / "best.safetensors", threads=1)(np.full((20, 30), 120, np.uint8))
    assert rgb.shape == (20, 30, 3)
    state = torch.load(out / "state.pt", weights_only=True)  # plain data: no code can run
    assert state["epoch"] == 4 and state["step_in_epoch"] == 0

    # Sample grid: rows gray | prediction | truth for validation items 0 and 5 (evenly spaced).
    from PIL import Image

    grid = np.asarray(Image.open(out / "samples" / "epoch_004.png"))
    assert grid.shape == (3 * 32 + 2 * 2, 2 * 32 + 2, 3)
    _, val = make_datasets(run.data_config(), seed=0)
    assert len(val) == 6
    for column, index in enumerate([0, 5]):
        item = val[index]
        lab = torch.cat([item["l"], item["ab"]]).permute(1, 2, 0).numpy()
        truth = np.round(lab_to_rgb(lab) * 255)
        gray = np.round(lab_to_rgb(np.concatenate([lab[..., :1], np.zeros_like(lab[..., 1:])], -1)) * 255)
        left = column * (32 + 2)
        assert np.abs(grid[2 * 34 : 2 * 34 + 32, left : left + 32] - truth).max() <= 1
        assert np.abs(grid[0:32, left : left + 32] - gray).max() <= 1


# ---------------------------------------------------------------------------------------
# resume


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path):
    from tinct.cli import main
    from tinct.train.state import load_state

    photos = make_photos(tmp_path / "photos")
    sets = TINY_TINCTNET + QUIET + [
        "data.val_fraction=0.25", "train.batch_size=3", "train.epochs=2", "train.checkpoint_every_steps=1",
    ]  # fmt: skip
    argv = ["train", "--model", "tinctnet", "--data", str(photos), "--no-progress"]
    for item in sets:
        argv += ["--set", item]
    total_steps = 2 * 6  # 18 training photos, batch 3, two epochs

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "tinct", *argv, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    seen = -1
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        try:
            seen = load_state(killed / "state.pt")["global_step"]
        except (FileNotFoundError, ValueError):
            seen = -1
        if seen >= 2:  # a mid-epoch checkpoint exists: kill it the hard way
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    state = load_state(killed / "state.pt")
    assert 2 <= state["global_step"] < total_steps and state["step_in_epoch"] > 0  # killed mid-epoch

    assert main([*argv, "--out", str(killed), "--resume"]) == 0
    reference = tmp_path / "reference"
    assert main([*argv, "--out", str(reference)]) == 0

    for name in ("last.safetensors", "best.safetensors"):
        a, b = _load_weights(reference / name), _load_weights(killed / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key].double(), b[key].double(), atol=1e-6, rtol=0), (name, key)
    timing = {"seconds", "images_per_second"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert strip(read_metrics(killed)) == strip(read_metrics(reference))
    assert load_state(killed / "state.pt")["global_step"] == total_steps


class InterruptingPairs(PairDataset):
    """Sends this process a Ctrl-C (SIGINT) while item number ``at_call`` is being loaded."""

    def __init__(self, *args, at_call: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.at_call = at_call

    def __getitem__(self, i):
        self.calls += 1
        if self.calls == self.at_call:
            os.kill(os.getpid(), signal.SIGINT)
        return super().__getitem__(i)


def test_ctrl_c_saves_at_the_step_boundary_and_resumes_exactly(tmp_path, toy_models):
    from tinct.train.state import load_state

    run = _in_memory_run(
        ["train.batch_size=4", "train.epochs=2", "train.lr=0.05", "train.threads=1", "train.tensorboard=false",
         "train.checkpoint_every_steps=0"]
    )  # fmt: skip
    val = PairDataset(4, seed=1)
    reference = train(run, tmp_path / "reference", datasets=(PairDataset(16), val), progress=False)
    interrupting = InterruptingPairs(16, at_call=4 * 5 + 2)  # while loading the batch of step 6
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "stopped", datasets=(interrupting, val), progress=False)
    state = load_state(tmp_path / "stopped" / "state.pt")
    # Step 6 (epoch 2, step 2) was finished, then the run saved exactly there, not at an epoch end.
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 2, 6)
    resumed = train(run, tmp_path / "stopped", datasets=(PairDataset(16), val), resume=True, progress=False)
    assert resumed.global_step == reference.global_step == 8
    for name, value in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


class _Killed(BaseException):
    """Stands for a kill -9 just after a state.pt was written: nothing in tinct catches it."""


def _die_after_saving(monkeypatch, epoch: int) -> None:
    from tinct.train import state as run_state

    save_state = run_state.save_state

    def save_then_die(path, state):
        save_state(path, state)
        if state["epoch"] == epoch:
            raise _Killed

    monkeypatch.setattr(run_state, "save_state", save_then_die)


NUMPY_FC = ["model.hidden=[8]", "model.input_size=8", "train.batch_size=4"]


@pytest.mark.parametrize(
    "model, settings, killed_after",
    [
        # the rounds of lr, lr/10, lr/100: epoch 2 ends round 1 (a new round starts on resume), and
        # the kill after epoch 3 falls inside round 2 (Adam's moments carry on)
        ("window-mlp", ["model.hidden=[4]", "train.batch_size=256", "train.lr=0.05"], 2),
        ("window-mlp", ["model.hidden=[4]", "train.batch_size=256", "train.lr=0.05"], 3),
        ("fc-image", [*NUMPY_FC, "train.lr=0.5"], 3),
        ("fc-image", [*NUMPY_FC, "train.lr=0.05", "train.schedule=cosine", "train.reset_optimizer_each_round=false"], 3),
    ],
)
def test_numpy_resume_after_kill_matches_an_uninterrupted_run(model, settings, killed_after, tmp_path, monkeypatch):
    from tinct.cli import main

    photos = make_photos(tmp_path / "photos", count=12)
    rounds = ["train.schedule=plateau-rounds", "train.patience=1", "train.rounds=3"]
    sets = QUIET + rounds + ["data.size=16", "data.val_fraction=0.25", "train.epochs=6"] + settings
    argv = ["train", "--model", model, "--data", str(photos), "--no-progress", *[a for s in sets for a in ("--set", s)]]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert main([*argv, "--out", str(reference)]) == 0
    assert {row["round"] for row in read_metrics(reference)} != {"1"} or "cosine" in str(settings)

    with monkeypatch.context() as patch:
        _die_after_saving(patch, killed_after)
        with pytest.raises(_Killed):
            main([*argv, "--out", str(killed)])
    assert len(read_metrics(killed)) == killed_after
    assert main([*argv, "--out", str(killed), "--resume"]) == 0

    for name in ("last.safetensors", "best.safetensors"):
        a, b = _load_weights(reference / name), _load_weights(killed / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_metrics(killed)) == strip(read_metrics(reference))


def test_resume_of_a_finished_run_does_nothing_and_epochs_can_be_extended(tmp_path, toy_models):
    overrides = ["train.batch_size=4", "train.epochs=1", "train.threads=1", "train.tensorboard=false"]
    run = _in_memory_run(overrides)
    data = (PairDataset(8), PairDataset(4, seed=1))
    train(run, tmp_path / "run", datasets=data, progress=False)
    again = train(run, tmp_path / "run", datasets=data, resume=True, progress=False)
    assert again.global_step == 2 and len(read_metrics(tmp_path / "run")) == 1
    longer = dataclasses.replace(run, train=dataclasses.replace(run.train, epochs=2))
    more = train(longer, tmp_path / "run", datasets=data, resume=True, progress=False)
    assert more.global_step == 4 and len(read_metrics(tmp_path / "run")) == 2


def test_resume_refuses_other_data_or_model(tmp_path, toy_models):
    run = _in_memory_run(["train.batch_size=4", "train.epochs=1", "train.threads=1", "train.tensorboard=false"])
    data = (PairDataset(8), PairDataset(4, seed=1))
    train(run, tmp_path / "run", datasets=data, data_manifest_sha256="aaaa", progress=False)
    with pytest.raises(TrainError, match="photos changed"):
        train(run, tmp_path / "run", datasets=data, data_manifest_sha256="bbbb", resume=True, progress=False)
    wider = dataclasses.replace(run, model_config={**run.model_config, "width": 3})
    with pytest.raises(TrainError, match="model_config differs"):
        train(wider, tmp_path / "run", datasets=data, data_manifest_sha256="aaaa", resume=True, progress=False)


def test_resume_accepts_settings_added_after_the_run_started(tmp_path, toy_models):
    """A run started by an older tinct (its saved config lacks a setting added since) resumes;
    a setting it did save still has to match."""
    run = _in_memory_run(["train.batch_size=4", "train.epochs=1", "train.threads=1", "train.tensorboard=false"])
    data = (PairDataset(8), PairDataset(4, seed=1))
    train(run, tmp_path / "run", datasets=data, progress=False)
    state_file = tmp_path / "run" / "state.pt"
    state = torch.load(state_file, weights_only=True)
    del state["config"]["model_config"]["width"]  # as if "width" were new since the run began
    torch.save(state, state_file)
    longer = dataclasses.replace(run, train=dataclasses.replace(run.train, epochs=2))
    assert train(longer, tmp_path / "run", datasets=data, resume=True, progress=False).global_step == 4
    state = torch.load(state_file, weights_only=True)
    state["config"]["model_config"]["width"] = 7  # saved again by the resumed run, so it must match
    torch.save(state, state_file)
    with pytest.raises(TrainError, match="model_config differs"):
        train(dataclasses.replace(run, train=dataclasses.replace(run.train, epochs=3)), tmp_path / "run",
              datasets=data, resume=True, progress=False)


# ---------------------------------------------------------------------------------------
# configuration


def test_parse_override_reads_json_values_and_dotted_keys():
    assert parse_override("train.lr=1e-3") == ("train", "lr", 0.001)
    assert parse_override("model.width=16") == ("model_config", "width", 16)
    assert parse_override("model_config.head=regression") == ("model_config", "head", "regression")
    assert parse_override('data.sources=["a", "b:c"]') == ("data", "sources", ["a", "b:c"])
    assert parse_override("train.tensorboard=false") == ("train", "tensorboard", False)
    assert parse_override("data.cache_dir=/tmp/x=y") == ("data", "cache_dir", "/tmp/x=y")
    assert parse_override("model=unet") == ("model", None, "unet")
    for bad in ("lr=3", "train.lr", "optim.lr=3", "train.a.b=1", "=3"):
        with pytest.raises(ConfigError):
            parse_override(bad)


def test_layers_defaults_preset_cli_and_overrides(tmp_path):
    photos = make_photos(tmp_path / "photos", count=2)
    run = resolve_run_config(
        preset="tinctnet", sources=[str(photos)], overrides=["train.lr=3e-4", "model.width=16", "data.size=96"]
    )
    preset = json.loads((REPO / "src" / "tinct" / "presets" / "tinctnet.json").read_text())
    assert run.model == "tinctnet"
    assert run.train.lr == 3e-4  # --set beats the preset
    assert run.train.batch_size == preset["train"]["batch_size"]  # the preset beats the default
    assert run.train.seed == TrainConfig().seed  # defaults fill the rest
    assert run.model_config["width"] == 16 and run.model_config["head"] == "bins"
    assert run.data["size"] == 96 and run.data["sources"] == [f"folder:{photos.absolute()}"]
    assert Path(run.data["cache_dir"]).is_absolute()
    # A saved config.json rebuilds the same run.
    assert resolve_run_config(base=json.loads(json.dumps(run.to_dict()))) == run
    # Ints are fine where floats are expected; JSON lists become the declared tuples.
    assert resolve_run_config(base=run.to_dict(), overrides=["train.lr=1"]).train.lr == 1.0
    assert resolve_run_config(base=run.to_dict(), overrides=["train.betas=[0.5, 0.999]"]).train.betas == (0.5, 0.999)


def test_every_shipped_preset_resolves(tmp_path):
    photos = make_photos(tmp_path / "photos", count=2)
    assert {"tinctnet", "tinctnet-quick"} <= set(list_presets())
    for name in list_presets():
        run = resolve_run_config(preset=name, sources=[str(photos)])
        assert run.train.batch_size > 0, name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.lrr=1"], "train.lrr"),
        (["train.epochs=ten"], "train.epochs"),
        (["train.epochs=2.5"], "train.epochs"),
        (["train.optimizer=adagrad"], "train.optimizer"),
        (["train.schedule=linear"], "train.schedule"),
        (["train.lr=-1"], "train.lr"),
        (["train.betas=[0.5]"], "train.betas"),
        (["model.depth=3"], "model.depth"),
        (["model.width=wide"], "model.width"),
        (["data.sizes=3"], "data.sizes"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, overrides, message):
    photos = make_photos(tmp_path / "photos", count=1)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        resolve_run_config(model="tinctnet", sources=[str(photos)], overrides=overrides)


def test_unknown_model_missing_data_and_unknown_preset(tmp_path):
    photos = make_photos(tmp_path / "photos", count=1)
    with pytest.raises(ConfigError, match="tinctnet") as info:
        resolve_run_config(model="tinctnett", sources=[str(photos)])
    assert "Known models" in str(info.value)
    with pytest.raises(ConfigError, match="nowhere"):
        resolve_run_config(model="tinctnet", sources=[str(tmp_path / "nowhere")])
    with pytest.raises(ConfigError, match="--data"):
        resolve_run_config(model="tinctnet")
    with pytest.raises(ConfigError, match="tinctnet-quick"):
        resolve_run_config(preset="no-such-preset", sources=[str(photos)])


def test_cli_errors_are_one_line(tmp_path, capsys):
    from tinct.cli import main

    photos = make_photos(tmp_path / "photos", count=1)
    cases = [
        (["--model", "nope", "--data", str(photos)], "Known models"),
        (["--model", "tinctnet", "--data", str(tmp_path / "missing")], "missing"),
        (["--model", "tinctnet", "--data", str(photos), "--set", "train.nope=1"], "train.nope"),
        (["--data", str(photos)], "--model"),
    ]
    for args, message in cases:
        assert main(["train", *args, "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("tinct train: ") and message in err and "\n" not in err, err


# ---------------------------------------------------------------------------------------
# run folders


def test_refuses_to_clobber_a_run(tmp_path, capsys):
    from tinct.cli import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "state.pt").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(TrainError, match="not empty"):
        prepare_run_dir(out, resume=False, overwrite=False)
    assert main(["train", "--model", "tinctnet", "--data", str(tmp_path), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    with pytest.raises(TrainError, match="nothing to resume"):
        prepare_run_dir(tmp_path / "empty", resume=True, overwrite=False)
    with pytest.raises(TrainError, match="contradict"):
        prepare_run_dir(out, resume=True, overwrite=True)
    # --overwrite removes what a run writes, and nothing else.
    (out / "samples").mkdir()
    (out / "samples" / "epoch_001.png").write_bytes(b"x")
    prepare_run_dir(out, resume=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------------------------------
# schedules


def test_plateau_rounds_on_a_scripted_sequence():
    config = TrainConfig(schedule="plateau-rounds", lr=1.0, patience=2, rounds=3, epochs=100)
    schedule = LearningRateSchedule(config, steps_per_epoch=5)
    val_losses = [5.0, 4.0, 4.5, 4.2, 3.9, 4.0, 4.0, 3.95, 3.99]
    # Worked by hand: epochs 3-4 do not beat 4.0 -> round 2 (lr / 10); epoch 5 sets best 3.9;
    # epochs 6-7 do not beat it -> round 3 (lr / 100); epochs 8-9 do not -> round 3 was the last: stop.
    expected_factor = [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01]
    expected_new_round = [False, False, False, True, False, False, True, False, False]
    expected_stop = [False] * 8 + [True]
    for epoch, loss in enumerate(val_losses):
        decision = schedule.end_epoch(loss)
        assert decision.new_round == expected_new_round[epoch], epoch
        assert decision.stop == expected_stop[epoch], epoch
        assert schedule.factor((epoch + 1) * 5) == pytest.approx(expected_factor[epoch]), epoch
    assert "round 3 of 3" in decision.reason
    assert schedule.best_val_loss == 3.9


def test_early_stopping_and_resumable_schedule_state():
    schedule = LearningRateSchedule(TrainConfig(early_stopping=2), steps_per_epoch=1)
    assert [schedule.end_epoch(v).stop for v in (3.0, 2.0, 2.5)] == [False, False, False]
    copy = LearningRateSchedule(TrainConfig(early_stopping=2), steps_per_epoch=1)
    copy.load_state_dict(schedule.state_dict())
    decision = copy.end_epoch(2.0)  # equal is not better
    assert decision.stop and "early stopping" in decision.reason


def test_cosine_step_and_warmup_factors():
    cosine = LearningRateSchedule(TrainConfig(schedule="cosine", lr=1.0, min_lr=0.1, epochs=2), steps_per_epoch=3)
    # 6 steps: progress t / 5; factor = 0.1 + 0.9 * (1 + cos(pi t / 5)) / 2
    assert cosine.factor(0) == pytest.approx(1.0)
    assert cosine.factor(5) == pytest.approx(0.1)
    assert cosine.factor(2) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.4)) / 2)
    step = LearningRateSchedule(TrainConfig(schedule="step", step_epochs=2, lr_decay=0.5), steps_per_epoch=4)
    assert [step.factor(s) for s in (0, 7, 8, 15, 16)] == [1, 1, 0.5, 0.5, 0.25]
    warm = LearningRateSchedule(TrainConfig(warmup_steps=4), steps_per_epoch=4)
    assert [warm.factor(s) for s in (0, 1, 3, 10)] == [0.25, 0.5, 1.0, 1.0]


def test_trainer_divides_the_lr_and_stops_on_plateau_rounds(tmp_path, monkeypatch, toy_models):
    from tinct.train import torch_loop

    scripted = iter([1.0, 1.0, 0.5, 0.6, 0.7, 9.0])
    monkeypatch.setattr(torch_loop, "validate", lambda *args: {"val_loss": next(scripted)})
    run = _in_memory_run(
        ["train.schedule=plateau-rounds", "train.patience=1", "train.rounds=2", "train.lr=0.01",
         "train.epochs=10", "train.batch_size=4", "train.threads=1", "train.tensorboard=false"]
    )  # fmt: skip
    result = train(run, tmp_path / "run", datasets=(PairDataset(8), PairDataset(4, seed=1)), progress=False)
    # epoch 2 does not improve -> round 2 at lr 0.001; epoch 3 improves; epoch 4 does not -> stop.
    assert [float(r["lr"]) for r in read_metrics(tmp_path / "run")] == [0.01, 0.01, 0.001, 0.001]
    assert result.epochs_done == 4 and "plateau-rounds" in result.stopped


# ---------------------------------------------------------------------------------------
# sampling


def test_sampler_order_is_a_function_of_seed_and_epoch_and_shards_global_batches():
    assert torch.equal(epoch_permutation(50, 3, 1), epoch_permutation(50, 3, 1))
    assert not torch.equal(epoch_permutation(50, 3, 1), epoch_permutation(50, 3, 2))
    single = TrainSampler(50, batch_size=8, rank=0, world_size=1, seed=3)
    shards = [TrainSampler(50, batch_size=8, rank=r, world_size=2, seed=3) for r in range(2)]
    assert single.steps == 6  # 50 // 8, the incomplete batch dropped
    for s in [single, *shards]:
        s.set_epoch(4)
    whole = list(single)
    halves = [list(s) for s in shards]
    for step in range(6):
        batch = whole[step * 8 : (step + 1) * 8]
        assert halves[0][step * 4 : (step + 1) * 4] + halves[1][step * 4 : (step + 1) * 4] == batch
    single.set_epoch(4, start_step=2)  # resuming after two steps skips exactly those batches
    assert list(single) == whole[16:]
    with pytest.raises(ValueError, match="divisible"):
        TrainSampler(50, batch_size=7, rank=0, world_size=2, seed=0)


# ---------------------------------------------------------------------------------------
# models with their own step (GAN) and NumPy models


def test_models_with_their_own_step_get_every_optimizer_scheduled(tmp_path, toy_models):
    run = _in_memory_run(
        ["train.schedule=step", "train.step_epochs=1", "train.lr_decay=0.5", "train.lr=0.1", "train.epochs=2",
         "train.batch_size=4", "train.threads=1", "train.tensorboard=false", "train.grad_clip=1e-3"],
        model="test-two-optimizers",
    )  # fmt: skip
    result = train(run, tmp_path / "run", datasets=(PairDataset(8), PairDataset(4, seed=1)), progress=False)
    seen = [lr for pair in result.model.seen_lrs for lr in pair]
    assert seen == pytest.approx([0.1, 1.0, 0.1, 1.0, 0.05, 0.5, 0.05, 0.5])
    rows = read_metrics(tmp_path / "run")
    assert "train_generator" in rows[0]
    # The clipping hook runs before each step: 4 SGD steps, gradient norm <= 1e-3, lr <= 1.
    assert float(result.model.bias.detach().abs().max()) <= 4 * 1.0 * 1e-3 + 1e-9


def test_numpy_models_are_delegated_to_fit(tmp_path, toy_models):
    from tinct.models import load

    run = _in_memory_run(["train.epochs=3", "train.threads=1", "train.tensorboard=false"], model="test-numpy-mean")
    train_ds = PairDataset(6)
    result = train(run, tmp_path / "run", datasets=(train_ds, PairDataset(3, seed=1)), progress=False)
    rows = read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and result.epochs_done == 3
    assert {"train_loss", "val_loss", "val_psnr"} <= set(rows[0])
    expected = torch.stack([train_ds[i]["ab"].mean(dim=(1, 2)) for i in range(6)]).mean(0).numpy()
    np.testing.assert_allclose(load(tmp_path / "run" / "last.safetensors")[0].mean_ab, expected, rtol=1e-5)
    assert (tmp_path / "run" / "samples" / "epoch_003.png").exists()


# ---------------------------------------------------------------------------------------
# fine-tuning from existing weights


def test_init_from_starts_from_the_given_weights(tmp_path, toy_models):
    base = ["train.batch_size=4", "train.threads=1", "train.tensorboard=false"]
    data = (PairDataset(8), PairDataset(4, seed=1))
    first = train(_in_memory_run(base + ["train.epochs=3", "train.lr=0.05"]), tmp_path / "a", datasets=data, progress=False)
    trained = {k: v.clone() for k, v in first.model.state_dict().items()}
    assert trained["weight"].abs().max() > 0.05  # the first run moved away from its zero start
    # With a vanishing learning rate, a fine-tuned run ends where it started: on run a's weights ...
    tiny_lr = base + ["train.epochs=1", "train.lr=1e-9"]
    tuned = train(_in_memory_run(tiny_lr + [f"train.init_from={tmp_path / 'a' / 'last.safetensors'}"]),
                  tmp_path / "b", datasets=data, progress=False)
    for name, value in trained.items():
        assert torch.allclose(tuned.model.state_dict()[name], value, atol=1e-6), name
    # ... and a run without init_from stays at the zero start.
    fresh = train(_in_memory_run(tiny_lr), tmp_path / "c", datasets=data, progress=False)
    assert fresh.model.state_dict()["weight"].abs().max() < 1e-6
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    assert saved["train"]["init_from"] == str(tmp_path / "a" / "last.safetensors")


def test_init_from_errors_name_the_problem(tmp_path, toy_models):
    from tinct.models import create_model, save_checkpoint

    base = ["train.batch_size=4", "train.epochs=1", "train.threads=1", "train.tensorboard=false"]
    data = (PairDataset(8, size=16), PairDataset(4, size=16, seed=1))
    with pytest.raises(ConfigError, match="no such checkpoint"):
        _in_memory_run(base + [f"train.init_from={tmp_path / 'missing.safetensors'}"])
    other = save_checkpoint(tmp_path / "net.safetensors", create_model("tinctnet", width=4, input_size=16))
    with pytest.raises(TrainError, match="holds a 'tinctnet' model, this run trains 'test-affine'"):
        train(_in_memory_run(base + [f"train.init_from={other}"]), tmp_path / "x", datasets=data, progress=False)
    wider = _in_memory_run(base + [f"train.init_from={other}", "model.width=8", "model.input_size=16"], model="tinctnet")
    with pytest.raises(TrainError, match="do not fit"):
        train(wider, tmp_path / "y", datasets=data, progress=False)
    with pytest.raises(TrainError, match="unknown model"):
        train(_in_memory_run(base + ["train.init_from=no-such-weights"]), tmp_path / "z", datasets=data, progress=False)


def test_resolve_run_config_init_layers_the_checkpoint_between_preset_and_overrides(tmp_path):
    from tinct.models import create_model, save_checkpoint

    checkpoint = save_checkpoint(tmp_path / "start.safetensors", create_model("tinctnet", width=4, input_size=32))
    run = resolve_run_config(preset="tinctnet", sources=[str(tmp_path)], init=checkpoint,
                             overrides=["model.temperature=0.7"])
    assert (run.model, run.model_config["width"], run.model_config["input_size"]) == ("tinctnet", 4, 32)
    assert run.model_config["temperature"] == 0.7
    assert run.train.init_from == str(checkpoint)
    with pytest.raises(ConfigError, match="--init nope: unknown model"):
        resolve_run_config(preset="tinctnet", sources=[str(tmp_path)], init="nope")


def test_cli_init_takes_the_checkpoint_family_and_settings(tmp_path, capsys):
    from tinct.cli import main
    from tinct.models import create_model, load, save_checkpoint

    torch.manual_seed(0)
    start = create_model("tinctnet", width=4, input_size=32, temperature=0.5)
    checkpoint = save_checkpoint(tmp_path / "start.safetensors", start)
    photos = make_photos(tmp_path / "photos", count=12)
    out = tmp_path / "tuned"
    args = ["train", "--init", str(checkpoint), "--preset", "tinctnet", "--data", str(photos), "--out", str(out),
            "--no-progress", "--set", "data.size=32", "--set", "train.epochs=1", "--set", "train.batch_size=4",
            *sum((["--set", q] for q in QUIET), [])]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert f"starting from {checkpoint}" in capsys.readouterr().err
    saved = json.loads((out / "config.json").read_text())
    # The preset asks for width 32; the checkpoint's own settings win.
    assert saved["model"] == "tinctnet" and saved["model_config"]["width"] == 4
    assert saved["model_config"]["temperature"] == 0.5
    tuned, _ = load(out / "last.safetensors")
    assert tuned.config.width == 4
    assert main(["train", "--init", "no-such-weights", "--data", str(photos), "--out", str(tmp_path / "x")]) == 2
    assert "--init no-such-weights: unknown model" in capsys.readouterr().err
    assert main(["train", "--init", str(checkpoint), "--out", str(out), "--resume"]) == 2
    assert "pick one" in capsys.readouterr().err


def test_tinctnet_learns_the_photo_classes_beside_the_colour(tmp_path):
    # Caltech layout with two classes whose photos differ only in where the horizon lies.
    root = tmp_path / "101_ObjectCategories"
    make_sky_grass_photos(root / "low_horizon", 12, seed=1)
    make_sky_grass_photos(root / "high_horizon", 12, seed=2)
    overrides = TINY_TINCTNET + QUIET + ["data.val_fraction=0.25", "train.batch_size=6", "train.epochs=3"]
    source = [f"caltech101:{root}"]
    with pytest.raises(TrainError, match=r"model.classes=3 but the training photos have 2 classes .*set model.classes=2"):
        train(resolve_run_config(model="tinctnet", sources=source, overrides=overrides + ["model.classes=3"]),
              tmp_path / "bad", progress=False)  # fmt: skip
    run = resolve_run_config(model="tinctnet", sources=source, overrides=overrides + ["model.classes=2"])
    train(run, tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run")
    # The class loss is logged beside the colour loss, starts near ln 2 and the total includes it.
    assert abs(float(rows[0]["train_class_loss"]) - math.log(2)) < 0.3
    for row in rows:
        total = float(row["train_colour_loss"]) + 0.2 * float(row["train_class_loss"])
        assert float(row["train_loss"]) == pytest.approx(total, rel=1e-4)
    # A model without classes is unchanged by labelled data: no class loss.
    plain = resolve_run_config(model="tinctnet", sources=source, overrides=overrides)
    train(plain, tmp_path / "plain", progress=False)
    assert "train_class_loss" not in read_metrics(tmp_path / "plain")[0]


# ---------------------------------------------------------------------------------------
# every family trains as it comes; settings are checked before the run folder is touched


@pytest.fixture
def real_photos(tmp_path) -> Path:
    """Ten real photos (192 x 192 landscapes from ../shared/data) or, without them, generated ones."""
    from conftest import SHARED_DATA

    folder = tmp_path / "photos"
    landscapes = sorted((SHARED_DATA / "landscapes").glob("*.jpg"))[:10]
    if len(landscapes) < 10:
        return make_sky_grass_photos(folder, 10, seed=3)
    folder.mkdir()
    for photo in landscapes:
        (folder / photo.name).write_bytes(photo.read_bytes())
    return folder


# Settings that make one epoch of any family quick; model sizes shrink only where a family
# has a knob for it. Families not listed train with their own model defaults.
SMALL_RUN = ["train.max_steps_per_epoch=2", "train.batch_size=2", "train.max_val_images=2", "train.samples=1",
             "train.statistics_pixels=5000", "train.tensorboard=false", "train.threads=1"]  # fmt: skip
SMALL_MODELS = {
    "tinctnet": ["model.width=4"],
    "tinctnet2": ["model.width=4"],
    "unet": ["model.width=2"],  # depth 8 and input_size 256 as they come
    "pix2pix": ["model.width=2", "model.disc_width=2"],
    "zhang16": ["model.width_multiplier=0.05"],
    "palette-mlp": ["model.hidden=[8, 8, 8]"],
    "fc-image": ["model.hidden=[8]"],
}


@pytest.mark.parametrize("family", __import__("tinct.models", fromlist=["list_models"]).list_models())
def test_every_registered_family_trains_one_epoch_with_its_defaults(family, real_photos, tmp_path, capsys):
    from tinct.cli import main
    from tinct.models import load

    out = tmp_path / "run"
    sets = SMALL_RUN + SMALL_MODELS.get(family, [])
    argv = ["train", "--model", family, "--data", str(real_photos), "--out", str(out), "--epochs", "1", "--no-progress"]
    assert main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0, capsys.readouterr().err[-3000:]
    assert len(read_metrics(out)) == 1
    assert load(out / "last.safetensors")[0].name == family


def test_every_family_default_config_passes_the_checks_before_training(tmp_path):
    from tinct.models import list_models, model_class

    photos = make_photos(tmp_path / "photos", count=2)
    for family in list_models():
        run = resolve_run_config(model=family, sources=[str(photos)])
        size = run.data["size"]
        assert size == 128 or size == run.model_config["input_size"], family
    # unet's 8 levels cannot take the default 128 px crops: it trains at its own 256.
    assert resolve_run_config(model="unet", sources=[str(photos)]).data["size"] == 256
    assert model_class("unet").Config().input_size == 256


def test_settings_that_do_not_fit_together_stop_before_anything_is_written(tmp_path, capsys):
    from tinct.cli import main

    photos = make_photos(tmp_path / "photos", count=8)
    out = tmp_path / "run"
    cases = [
        (["--model", "unet", "--set", "data.size=128"], "data.size=128: model 'unet' cannot train on 128 x 128"),
        (["--model", "zhang16", "--set", "data.size=100"], "data.size=100: model 'zhang16'"),
        (["--model", "unet", "--set", "model.input_size=100"], "model 'unet': unet input_size must be divisible"),
        (["--model", "window-mlp", "--set", "train.weight_decay=0.1"], "train.weight_decay=0.1"),
        (["--model", "fc-image", "--set", "train.grad_clip=1"], "train.grad_clip=1"),
    ]
    for args, message in cases:
        assert main(["train", *args, "--data", str(photos), "--out", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists(), args
    # A run that --overwrite would replace stays as it was when the new one cannot start.
    quick = ["--set", "model.hidden=[2]", "--set", "data.size=16", "--set", "train.tensorboard=false", "--no-progress"]
    assert main(["train", "--model", "window-mlp", "--data", str(photos), "--out", str(out), "--epochs", "1", *quick]) == 0
    before = sorted(p.name for p in out.iterdir())
    assert main(["train", "--model", "unet", "--set", "data.size=100", "--data", str(photos), "--out", str(out),
                 "--overwrite"]) == 2  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == before


def test_init_refuses_a_checkpoint_of_another_family(tmp_path, capsys):
    from tinct.cli import main
    from tinct.models import create_model, save_checkpoint

    unet = save_checkpoint(tmp_path / "unet.safetensors", create_model("unet", width=2, depth=5, input_size=32))
    photos = make_photos(tmp_path / "photos", count=4)
    out = tmp_path / "run"
    for asks in (["--model", "tinctnet"], ["--preset", "tinctnet"], ["--set", "model=zhang16"]):
        argv = ["train", "--init", str(unet), *asks, "--data", str(photos), "--out", str(out)]
        assert main(argv) == 2, asks
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--init {unet} holds a 'unet' model, not " in err, err
        assert not out.exists()
    with pytest.raises(ConfigError, match="holds a 'unet' model, not 'tinctnet'"):
        resolve_run_config(model="tinctnet", sources=[str(photos)], init=unet)


def _damaged_checkpoints(folder: Path) -> dict[str, Path]:
    """Checkpoints whose tinct description is damaged in the ways issue 15 lists."""
    from safetensors.torch import save_file

    from tinct.models import create_model

    folder.mkdir()
    tensors = {k: v.contiguous() for k, v in create_model("tinctnet", width=24, input_size=32).state_dict().items()}
    good = {"format_version": 1, "model": "tinctnet", "config": {"width": 24, "input_size": 32}, "metrics": {}, "extra": {}}
    descriptions = {
        "settings_do_not_fit": {**good, "config": {"width": 8, "input_size": 32}},
        "description_is_a_list": [good],
        "no_model_key": {k: v for k, v in good.items() if k != "model"},
        "wrong_type": {**good, "config": {"width": "wide", "input_size": 32}},
    }
    files = {}
    for name, description in descriptions.items():
        files[name] = folder / f"{name}.safetensors"
        save_file(tensors, str(files[name]), metadata={"tinct": json.dumps(description)})
    files["not_safetensors"] = folder / "not_safetensors.safetensors"
    files["not_safetensors"].write_bytes(b"\x00" * 40)
    return files


def test_init_with_a_damaged_checkpoint_says_so_in_one_line_naming_it(tmp_path, capsys):
    from tinct.cli import main

    photos = make_photos(tmp_path / "photos", count=6)
    out = tmp_path / "run"
    for name, checkpoint in _damaged_checkpoints(tmp_path / "damaged").items():
        argv = ["train", "--init", str(checkpoint), "--data", str(photos), "--out", str(out), "--no-progress",
                "--set", "data.size=32", "--set", "train.batch_size=2", "--epochs", "1"]  # fmt: skip
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(checkpoint) in err and "Traceback" not in err, (name, err)
        assert not out.exists(), name


def test_resume_removes_the_leftovers_of_writes_cut_short(tmp_path, toy_models):
    run = _in_memory_run(["train.batch_size=4", "train.epochs=1", "train.threads=1", "train.tensorboard=false"])
    data = (PairDataset(8), PairDataset(4, seed=1))
    train(run, tmp_path / "run", datasets=data, progress=False)
    # What a kill -9 in the middle of tinct.io.atomic_file leaves behind.
    leftovers = [tmp_path / "run" / ".state.pt.k1x2.part", tmp_path / "run" / ".last.safetensors.a9.part",
                 tmp_path / "run" / "samples" / ".epoch_001.png.zz.part"]  # fmt: skip
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    mine = tmp_path / "run" / "notes.part"  # not a temporary of tinct's: kept
    mine.write_text("mine")
    longer = dataclasses.replace(run, train=dataclasses.replace(run.train, epochs=2))
    train(longer, tmp_path / "run", datasets=data, resume=True, progress=False)
    assert not any(leftover.exists() for leftover in leftovers)
    assert mine.read_text() == "mine"


def full_disk_when_writing(monkeypatch, name: str) -> None:
    """Make the flush of every temporary file for ``name`` fail as a full disk does (tmpfs
    cannot be mounted here): the write gets as far as fsync, then ENOSPC."""
    import errno

    fsync = os.fsync

    def failing_fsync(fd):
        if f"/.{name}." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell files apart")
@pytest.mark.parametrize("name", ["last.safetensors", "state.pt", "metrics.csv", "config.json"])
def test_a_full_disk_stops_training_with_one_line_naming_the_file(name, tmp_path, monkeypatch, capsys):
    from tinct.cli import main

    photos = make_photos(tmp_path / "photos", count=8)
    out = tmp_path / "run"
    argv = ["train", "--model", "window-mlp", "--data", str(photos), "--out", str(out), "--epochs", "1", "--no-progress",
            *[a for s in ["model.hidden=[2]", "data.size=16", *QUIET] for a in ("--set", s)]]  # fmt: skip
    with monkeypatch.context() as patch:
        full_disk_when_writing(patch, name)
        assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"tinct train: {out / name}: No space left on device", err
    assert not list(out.rglob("*.part")) and not (out / "last.safetensors").exists()
    if (out / "state.pt").exists():  # once there is room again, the run goes on
        assert main([*argv, "--resume"]) == 0
        assert (out / "last.safetensors").is_file()
