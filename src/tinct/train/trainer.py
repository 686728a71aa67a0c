"""``train``: one training run into one run folder, resumable at any step, on one or N processes.

The run folder's files are listed in :mod:`tinct.train.run_folder`. :func:`train` sets the
run up (:mod:`tinct.train.run_setup`: settings, data, model, folder) and hands it to the
torch loop (:mod:`tinct.train.torch_loop`) or, for NumPy models, the NumPy loop
(:mod:`tinct.train.numpy_loop`); both validate, schedule the learning rate, save
``state.pt`` and write checkpoints, metrics and sample grids through the same modules.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from tinct.train.distributed import init_distributed, shutdown_distributed, world_size_from_env
from tinct.train.numpy_loop import NumpyLoop
from tinct.train.run_folder import RUN_FILES, check_run_dir, prepare_run_dir
from tinct.train.run_setup import TrainResult, set_up_run
from tinct.train.settings import RunConfig, TrainConfig, TrainError
from tinct.train.torch_loop import TorchLoop, build_optimizer

__all__ = ["train", "TrainError", "TrainResult", "check_run_dir", "prepare_run_dir", "RUN_FILES", "build_optimizer"]


def train(
    run: RunConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    datasets: tuple[Any, Any] | None = None,
    data_manifest_sha256: str | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``run`` into the folder ``out_dir``; continue it there with ``resume=True``.

    Args:
        run: the resolved run config (:func:`tinct.train.resolve_run_config`).
        out_dir: the run folder (must be empty or absent for a new run, unless ``overwrite``).
        resume: continue the run saved in ``out_dir`` (its ``state.pt``).
        overwrite: remove a previous run's files from ``out_dir`` first.
        datasets: ``(train_ds, val_ds)`` to use instead of ``tinct.data.make_datasets(run.data)``
            (items ``{"l": (1, S, S), "ab": (2, S, S)}`` in Lab units).
        data_manifest_sha256: the data's manifest hash when ``datasets`` is given.
        progress: show a progress bar (``None``: only when stderr is a terminal).

    Under ``torchrun`` (``WORLD_SIZE > 1``) this joins the process group, and each process
    must call it with the same arguments; only rank 0 writes files.
    """
    config = run.train
    world_size = world_size_from_env()
    if config.batch_size % world_size:
        raise TrainError(
            f"train.batch_size={config.batch_size} (the global batch) is not divisible by the {world_size} processes"
        )
    device = _pick_device(config, int(os.environ.get("LOCAL_RANK", "0") or 0))
    context = init_distributed(device)
    try:
        torch.set_num_threads(config.threads or max(1, _default_threads() // context.world_size))
        # Every rank checks the folder (so all fail alike); only rank 0 changes it.
        run_dir = check_run_dir(out_dir, resume, overwrite)
        setup = set_up_run(run, run_dir, resume, overwrite, datasets, data_manifest_sha256, progress, context, device)
        loop = NumpyLoop(setup) if setup.model.backend == "numpy" else TorchLoop(setup)
        result = loop.run()
        context.barrier()
        return result
    finally:
        shutdown_distributed(context)


def _pick_device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if config.device == "cuda":
            raise TrainError("train.device is cuda but no CUDA device is available")
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def _default_threads() -> int:
    from tinct.infer import default_threads

    return default_threads()
