"""Everything a training loop starts from: data, model, run folder, resume state, messages.

:func:`set_up_run` checks the settings, the data and the model before the run folder is
touched, then hands a :class:`RunSetup` to the torch loop (:mod:`tinct.train.torch_loop`)
or the NumPy loop (:mod:`tinct.train.numpy_loop`).
"""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tinct.models.base import ColorModel
from tinct.train.distributed import DistributedContext
from tinct.train.run_folder import prepare_run_dir, write_palette
from tinct.train.settings import RunConfig, TrainConfig, TrainError, checkpoint_problem
from tinct.train.state import load_state

__all__ = ["RunSetup", "TrainResult", "set_up_run", "seed_everything", "epochs_text", "short"]


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    global_step: int
    best_val_loss: float
    stopped: str  # why it ended
    last_metrics: dict[str, Any]
    model: Any = dataclasses.field(default=None, repr=False)  # the trained model (this process's copy)


@dataclasses.dataclass
class RunSetup:
    """A checked run, its folder prepared: what both loops need.

    ``state`` is the loaded ``state.pt`` of a resumed run (None for a new one); ``model``
    already holds its weights for torch models. Items of ``train_ds`` and ``val_ds`` are
    ``{"l": (1, S, S), "ab": (2, S, S)}`` in Lab units (plus ``"label"`` for class-aware models).
    """

    run: RunConfig
    run_dir: Path
    context: DistributedContext
    device: torch.device
    train_ds: Any
    val_ds: Any
    manifest: str | None
    model: Any
    state: dict[str, Any] | None
    progress: bool | None

    @property
    def config(self) -> TrainConfig:
        return self.run.train

    def log(self, message: str) -> None:
        """One line on stderr from the main process (above the progress bar)."""
        if self.context.is_main:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    def sample_batch(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``l (N, 1, S, S)``, ``ab (N, 2, S, S)``: ``train.samples`` validation items, evenly spaced."""
        count = min(self.config.samples, len(self.val_ds))
        if count == 0:
            return None
        indices = sorted(set(np.linspace(0, len(self.val_ds) - 1, count).round().astype(int).tolist()))
        items = [self.val_ds[i] for i in indices]
        return torch.stack([item["l"] for item in items]), torch.stack([item["ab"] for item in items])


def set_up_run(
    run: RunConfig,
    run_dir: Path,
    resume: bool,
    overwrite: bool,
    datasets: tuple[Any, Any] | None,
    manifest: str | None,
    progress: bool | None,
    context: DistributedContext,
    device: torch.device,
) -> RunSetup:
    """Load the resume state, the initial weights, the data and the model (raising
    :class:`TrainError` on any problem), then prepare the folder and write ``palette.png``."""
    state = load_state(run_dir / "state.pt") if resume else None
    initial = _initial_model(run) if state is None and run.train.init_from else None
    train_ds, val_ds, manifest = _load_data(run, datasets, manifest)
    setup = RunSetup(run, run_dir, context, device, train_ds, val_ds, manifest, None, state, progress)
    if state is not None:
        _check_resumable(setup, state)
    setup.model = _build_model(setup, initial)
    # Touched only now, when the settings, the data and the model have all been checked:
    # a run that cannot start leaves the folder (and a run that --overwrite would replace) as it was.
    context.barrier()
    if context.is_main:
        prepare_run_dir(run_dir, resume, overwrite)
    context.barrier()
    if context.is_main and setup.model.has_palette:
        write_palette(run_dir, setup.model)
    return setup


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epochs_text(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _load_data(run: RunConfig, datasets: tuple[Any, Any] | None, manifest: str | None):
    if datasets is None:
        from tinct.data import make_datasets, manifest_sha256

        data_config = run.data_config()
        train_ds, val_ds = make_datasets(data_config, seed=run.train.seed)
        manifest = manifest_sha256(data_config)
    else:
        train_ds, val_ds = datasets
    if len(train_ds) == 0:
        raise TrainError("the training split is empty: give more photos or lower data.val_fraction")
    return train_ds, val_ds, manifest


def _initial_model(run: RunConfig):
    """Load ``train.init_from`` before any data work: ``(model, CheckpointInfo)``; one line
    naming the file when it is unusable."""
    from tinct.models import load

    source = run.train.init_from
    try:
        initial, info = load(source)
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError, OSError) as exc:
        raise TrainError(f"train.init_from: {checkpoint_problem(source, exc)}") from None
    if initial.name != run.model:
        raise TrainError(f"train.init_from: {source} holds a {initial.name!r} model, this run trains {run.model!r}")
    return initial, info


def _check_resumable(setup: RunSetup, state: dict[str, Any]) -> None:
    saved = state.get("config", {})
    current = setup.run.to_dict()
    for key in ("model", "model_config", "data"):
        if key in saved and not _unchanged(saved[key], current[key]):
            raise TrainError(
                f"{setup.run_dir}: the run's {key} differs from the one it was started with; "
                "start a new run to change it"
            )
    if state.get("data_manifest_sha256") and setup.manifest and state["data_manifest_sha256"] != setup.manifest:
        raise TrainError(
            f"{setup.run_dir}: the training photos changed since the run started (data manifest differs); "
            "start a new run (or restore the photos) to continue"
        )


def _unchanged(saved: Any, current: Any) -> bool:
    """Whether a setting the run started with is still the same. Settings of a mapping that the
    saved one lacks were added by a later tinct (with defaults that keep the old behaviour), so a
    run started before an upgrade still resumes after it."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return all(key in current and _unchanged(value, current[key]) for key, value in saved.items())
    return saved == current


def _build_model(setup: RunSetup, initial) -> Any:
    from tinct.models import create_model

    run, state = setup.run, setup.state
    seed_everything(run.train.seed)
    model = create_model(run.model, **run.model_config)
    if model.uses_labels:
        _check_classes(model, setup.train_ds)
    if initial is not None:
        _load_initial_weights(setup, model, initial)
    elif state is None and isinstance(model, ColorModel):
        try:
            loaded = model.load_pretrained()
        except ImportError as exc:  # the pretrained weights' package is a training extra
            raise TrainError(f"{exc}; or train from random weights with --set model.pretrained=false") from None
        if loaded:
            setup.log(f"tinct: starting from {loaded}")
    if state is None and model.fit_statistics_from and run.train.statistics_pixels:
        _fit_statistics(model, setup.train_ds, run.train)
    if isinstance(model, nn.Module):
        if state is not None:
            model.load_state_dict(state["model"])
        model.to(setup.device)
    return model


def _check_classes(model, train_ds) -> None:
    names = getattr(train_ds, "label_names", [])
    wanted = model.config.classes
    if len(names) != wanted:
        raise TrainError(
            f"model.classes={wanted} but the training photos have {len(names)} classes"
            + (f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else
               " (only Caltech-101 and CIFAR-100 sources carry classes)")
            + f": set model.classes={len(names)}"
        )  # fmt: skip


def _fit_statistics(model, train_ds, c: TrainConfig) -> None:
    from tinct.data import ab_samples

    if model.fit_statistics_from == "dataset":  # statistics beyond ab samples (palettes)
        model.fit_statistics_from_dataset(train_ds, c.statistics_pixels, c.seed)
    else:
        model.fit_statistics(ab_samples(train_ds, c.statistics_pixels, c.seed))


def _load_initial_weights(setup: RunSetup, model, initial) -> None:
    """Copy the weights of ``train.init_from`` (``initial``: :func:`_initial_model`'s
    ``(model, info)``) into the new model (fine-tuning)."""
    from tinct.models.checkpoint import sha256_file

    source = setup.config.init_from
    initial, info = initial
    try:
        model.load_state_dict(initial.state_dict())
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise TrainError(
            f"train.init_from: {source}: its weights do not fit this run's {setup.run.model} "
            f"config ({first}); use the same model settings as the checkpoint (tinct models {source})"
        ) from None
    setup.log(f"tinct: starting from {source} (sha256 {sha256_file(info.path)[:16]}...)")

