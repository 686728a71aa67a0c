"""The run folder: checking and clearing it, and the files both training loops write into it.

A run folder holds::

    config.json          the resolved run config (model, model_config, train, data)
    state.pt             resume state (see tinct.train.state), rewritten every
                         ``checkpoint_every_steps`` steps and at every epoch end
    last.safetensors     the model after the latest epoch   } tinct.models checkpoints,
    best.safetensors     the model with the lowest val loss } usable by ``tinct colorize --model``
    epochs/epoch_NNN.safetensors  the model after every epoch (``train.keep_every_epoch``)
    palette.png          the colours of a palette model (models with ``palette_image()``)
    metrics.csv          one row per epoch
    samples/epoch_NNN.png  rows gray | prediction | truth for a few fixed validation images
    tensorboard/         TensorBoard event files
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tinct.train.outputs import MetricsLog, naming_the_file, sample_grid, write_text_atomic
from tinct.train.settings import RunConfig, TrainError

__all__ = [
    "RUN_FILES",
    "check_run_dir",
    "prepare_run_dir",
    "write_config",
    "write_palette",
    "write_epoch_files",
]

RUN_FILES = (
    "config.json",
    "state.pt",
    "last.safetensors",
    "best.safetensors",
    "epochs",
    "palette.png",
    "metrics.csv",
    "samples",
    "tensorboard",
)


def check_run_dir(out_dir: str | Path, resume: bool, overwrite: bool) -> Path:
    """Raise :class:`TrainError` unless ``out_dir`` suits the run; changes nothing.

    A new run needs an empty or absent folder (or ``overwrite``); ``resume`` needs ``state.pt``.
    """
    out = Path(out_dir).expanduser()
    if resume and overwrite:
        raise TrainError("--resume and --overwrite contradict each other; pick one")
    if out.exists() and not out.is_dir():
        raise TrainError(f"{out}: exists and is not a folder")
    if resume:
        if not (out / "state.pt").is_file():
            raise TrainError(f"{out}: nothing to resume (no state.pt); start a new run without --resume")
        return out
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TrainError(f"{out}: folder is not empty; continue its run with --resume or start over with --overwrite")
    return out


def prepare_run_dir(out_dir: str | Path, resume: bool, overwrite: bool) -> Path:
    """Check the run folder and, for ``overwrite``, clear it; never loses files by surprise.

    ``overwrite`` removes only the files a run writes (listed in :data:`RUN_FILES`), so a
    mistaken ``--out ~/Pictures --overwrite`` cannot delete photos. ``resume`` and
    ``overwrite`` both remove the temporaries of writes that a kill -9 cut short.
    """
    out = check_run_dir(out_dir, resume, overwrite)
    if overwrite and out.exists():
        for name in RUN_FILES:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    if resume or overwrite:
        _remove_partial_writes(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _remove_partial_writes(out: Path) -> None:
    # tinct.io.atomic_file writes ".<name>.<random>.part" beside its target and renames it
    # when complete; one still there was never finished.
    for folder in (out, out / "samples", out / "epochs"):
        for leftover in folder.glob(".*.part"):
            leftover.unlink(missing_ok=True)


def write_config(run_dir: Path, run: RunConfig) -> None:
    """``config.json``: the resolved run config, the same dict every checkpoint carries."""
    write_text_atomic(run_dir / "config.json", json.dumps(run.to_dict(), indent=2) + "\n")


def write_palette(run_dir: Path, model) -> None:
    """``palette.png`` of a palette model (one with ``palette_image() -> uint8 (H, W, 3)``)."""
    from tinct.io import write_image

    path = run_dir / "palette.png"
    with naming_the_file(path):
        write_image(path, model.palette_image(), overwrite=True)


def write_epoch_files(
    run_dir: Path,
    model,
    row: dict[str, Any],
    *,
    improved: bool,
    metrics_log: MetricsLog,
    log_step: int,
    sample_batch: tuple[torch.Tensor, torch.Tensor] | None,
    device: torch.device,
    manifest: str | None,
    extra: dict[str, Any],
    keep_every_epoch: bool,
) -> None:
    """The files of one finished epoch, in this order: the sample grid, the ``metrics.csv`` row
    (TensorBoard at ``log_step``), ``last.safetensors``, ``best.safetensors`` when ``improved``
    and ``epochs/epoch_NNN.safetensors`` with ``keep_every_epoch``.

    ``row`` holds ``epoch`` (epochs done, 1-based) and the epoch's metrics; ``sample_batch`` is
    ``l (N, 1, S, S)``, ``ab (N, 2, S, S)`` in Lab units; ``extra`` goes into the checkpoints.
    """
    epochs_done = int(row["epoch"])
    if sample_batch is not None:
        _write_sample_grid(run_dir, epochs_done, _grid(model, sample_batch, device))
    metrics_log.log_epoch(row, log_step)
    metrics = {key: value for key, value in row.items() if isinstance(value, (int, float))}
    _write_checkpoints(run_dir, model, manifest, metrics, extra, improved, epochs_done if keep_every_epoch else None)


def _grid(model, sample_batch: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> np.ndarray:
    l, ab = (tensor.to(device) for tensor in sample_batch)
    if not isinstance(model, nn.Module):
        return sample_grid(model, l, ab)
    model.eval()
    try:
        return sample_grid(model, l, ab)
    finally:
        model.train()


def _write_checkpoints(
    run_dir: Path, model, manifest: str | None, metrics: dict, extra: dict, improved: bool, keep_epoch: int | None
) -> None:
    """``last.safetensors``, ``best.safetensors`` when the epoch improved, and
    ``epochs/epoch_NNN.safetensors`` when ``keep_epoch`` is given (an OSError names the file)."""
    from tinct.models import save_checkpoint

    paths = [run_dir / f"{name}.safetensors" for name in (("last", "best") if improved else ("last",))]
    if keep_epoch is not None:
        (run_dir / "epochs").mkdir(exist_ok=True)
        paths.append(run_dir / "epochs" / f"epoch_{keep_epoch:03d}.safetensors")
    for path in paths:
        with naming_the_file(path):
            save_checkpoint(path, model, manifest, metrics, extra)


def _write_sample_grid(run_dir: Path, epochs_done: int, grid: np.ndarray) -> None:
    from tinct.io import write_image

    path = run_dir / "samples" / f"epoch_{epochs_done:03d}.png"
    with naming_the_file(path):
        write_image(path, grid, overwrite=True)
