"""Training on two CPU processes (torchrun, gloo) equals training on one with the same global batch.

The model here has no batch norm: with BN, each process normalises with the statistics of
its own half-batch (SyncBatchNorm needs CUDA), which legitimately differs from one process
normalising the whole batch. This file is also the script torchrun runs:
``python -m torch.distributed.run --nproc_per_node=2 tests/test_distributed.py OUT DATA``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinct.color import LAB
from tinct.models import register_model
from tinct.models.base import ColorModel

from conftest import make_sky_grass_photos


PROBE = "ddp-probe"


class ProbeNet(ColorModel):
    """Two convolutions, L1 on normalised ab: small, smooth, no batch statistics."""

    @dataclass
    class Config:
        input_size: int = 32
        width: int = 4

    def __init__(self, config: Config):
        super().__init__(config)
        self.conv1 = nn.Conv2d(1, config.width, 3, padding=1)
        self.conv2 = nn.Conv2d(config.width, 2, 3, padding=1)

    def _normalised_ab(self, l: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv2(torch.relu(self.conv1(LAB.normalize_l(l)))))

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        return LAB.unnormalize_ab(self._normalised_ab(l))

    def training_loss(self, l, ab):
        loss = F.l1_loss(self._normalised_ab(l), LAB.normalize_ab(ab))
        return loss, {"loss": float(loss.detach())}


def run_config(data_dir: Path):
    from tinct.train import resolve_run_config

    overrides = [
        "data.size=32",
        "data.val_fraction=0.2",
        "train.batch_size=8",
        "train.epochs=2",
        "train.optimizer=sgd",
        "train.lr=0.05",
        "train.threads=1",
        "train.samples=2",
        "train.tensorboard=false",
        "train.checkpoint_every_steps=2",
    ]
    return resolve_run_config(model=PROBE, sources=[str(data_dir)], overrides=overrides)


def make_photos(folder: Path, count: int = 20) -> Path:
    return make_sky_grass_photos(folder, count, seed=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def probe_model(monkeypatch):
    """Register the probe for one test only (registry-wide tests must not see it)."""
    from tinct.models import registry

    monkeypatch.setattr(ProbeNet, "name", PROBE, raising=False)
    monkeypatch.setitem(registry._REGISTRY, PROBE, ProbeNet)


def test_two_processes_match_one(tmp_path, probe_model):
    from tinct.models import load
    from tinct.train import train

    data = make_photos(tmp_path / "photos")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        __file__, str(tmp_path / "ddp"), str(data),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    single = train(run_config(data), tmp_path / "single", progress=False)
    assert single.global_step == 2 * 2  # 16 training photos / global batch 8, two epochs

    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in range(2)]
    ddp_checkpoint = load(tmp_path / "ddp" / "last.safetensors")[0].state_dict()
    for name, value in single.model.state_dict().items():
        # Both processes hold the very same weights (DDP averages gradients before each step) ...
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        assert torch.equal(ranks[0][name], ddp_checkpoint[name]), name
        # ... and they match one process with the same global batch, to float rounding.
        assert torch.allclose(ranks[0][name], value, atol=1e-6, rtol=0), (name, (ranks[0][name] - value).abs().max())
    # Something was learned, so the comparison is not between two untouched initialisations.
    start = torch.load(tmp_path / "ddp" / "initial.pt", weights_only=True)
    assert any(not torch.allclose(start[n], v) for n, v in single.model.state_dict().items())
    rows = (tmp_path / "ddp" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3  # header + one row per epoch, written by rank 0 only


def test_batch_must_divide_among_processes(tmp_path, monkeypatch, probe_model):
    from tinct.train import TrainError, train

    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    config = run_config(make_photos(tmp_path / "photos", count=4))
    # Checked before any process group is joined, so no peers are needed to see the error.
    with pytest.raises(TrainError, match="not divisible by the 3 processes"):
        train(config, tmp_path / "run", progress=False)


def _main(out: str, data: str) -> None:
    from tinct.models import create_model
    from tinct.train import train

    register_model(PROBE)(ProbeNet)
    config = run_config(Path(data))
    rank = int(os.environ["RANK"])
    torch.manual_seed(config.train.seed)
    initial = create_model(PROBE, **config.model_config)  # the trainer starts from the same draw
    result = train(config, out, progress=False)
    out_dir = Path(out)
    torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()}, out_dir / f"rank{rank}.pt")
    if rank == 0:
        torch.save(initial.state_dict(), out_dir / "initial.pt")


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
