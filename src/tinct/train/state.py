"""The resume state of a run (``state.pt``): everything needed to continue bit-for-bit.

The model checkpoints (``last.safetensors``, ``best.safetensors``) are for *using* a model;
``state.pt`` is for *continuing* a run. It holds the model's tensors again, so that the
weights and the optimiser state it is paired with are always written together, in one
atomic ``os.replace`` (a ``kill -9`` between two separate files could pair new weights with
old moments)::

    {"format_version": 1,
     "epoch": int,            # the epoch in progress (0-based); equals the epochs done at an epoch end
     "step_in_epoch": int,    # global batches of that epoch already done
     "global_step": int,      # optimisation steps since the start of the run
     "model": {name: Tensor},
     "optimizers": {name: optimizer.state_dict()},
     "schedule": LearningRateSchedule.state_dict(),   # the torch loop's
     "processes": [{"rng": ..., "epoch_sums": {...}} per rank],
     "best_val_loss": float,  # the lowest decisive loss so far (best.safetensors)
     "last_metrics": {...},   # the latest epoch's metrics row
     "data_manifest_sha256": str | None,
     "world_size": int,
     "config": run config dict,
     "fit": {...} | None}     # the NumPy loop's own progress (tinct.train.numpy_loop)

Both training loops write it through :func:`save_run_state`.

Only plain containers, numbers, strings and tensors are stored, so it loads with
``torch.load(..., weights_only=True)``: nothing in it can run code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinct.io import atomic_file

__all__ = [
    "STATE_FORMAT_VERSION",
    "capture_rng",
    "restore_rng",
    "save_state",
    "save_run_state",
    "load_state",
    "to_tensors",
    "to_arrays",
]

STATE_FORMAT_VERSION = 1


def capture_rng() -> dict[str, Any]:
    """This process's random states (python, numpy, torch, CUDA) as weights_only-safe values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, flushed, then renamed into place
    (nothing partial is left if that fails; the OSError names ``path``)."""
    from tinct.train.outputs import naming_the_file

    path = Path(path)
    with naming_the_file(path), atomic_file(path) as handle:
        torch.save({"format_version": STATE_FORMAT_VERSION, **state}, handle)
    return path


def save_run_state(
    run_dir: Path,
    *,
    epoch: int,
    step_in_epoch: int,
    global_step: int,
    model,
    processes: list[dict[str, Any]],
    best_val_loss: float,
    last_metrics: dict[str, Any],
    manifest: str | None,
    world_size: int,
    config: dict[str, Any],
    optimizers: dict[str, Any] | None = None,
    schedule: dict[str, Any] | None = None,
    fit: dict[str, Any] | None = None,
) -> Path:
    """Write ``run_dir/state.pt`` (the layout in the module docstring) for either loop.

    ``model``: a torch module or a NumPy model (its ``state_dict()`` arrays become tensors);
    ``optimizers``: name -> torch optimiser; ``fit``: NumPy arrays and numbers."""
    state = {
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
        "model": to_tensors(model.state_dict()),
        "optimizers": {name: optimizer.state_dict() for name, optimizer in (optimizers or {}).items()},
        "schedule": schedule or {},
        "processes": processes,
        "best_val_loss": best_val_loss,
        "last_metrics": dict(last_metrics),
        "data_manifest_sha256": manifest,
        "world_size": world_size,
        "config": config,
        "fit": None if fit is None else to_tensors(fit),
    }
    return save_state(Path(run_dir) / "state.pt", state)


def to_tensors(value: Any) -> Any:
    """Arrays and tensors (and NumPy scalars) inside dicts and lists -> CPU torch tensor copies
    (and Python numbers), so ``state.pt`` still loads with ``weights_only=True``."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value)).clone()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: to_tensors(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_tensors(item) for item in value]
    return value


def to_arrays(value: Any) -> Any:
    """The inverse of :func:`to_tensors` for NumPy state: tensors -> arrays."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {key: to_arrays(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_arrays(item) for item in value]
    return value


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``state.pt`` safely (``weights_only=True``); ValueError for a damaged or foreign file."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # unpickling errors come in many types
        raise ValueError(f"{path}: not a readable tinct resume state ({exc})") from None
    if not isinstance(state, dict) or state.get("format_version") != STATE_FORMAT_VERSION:
        raise ValueError(f"{path}: not a tinct resume state of format {STATE_FORMAT_VERSION}")
    return state
