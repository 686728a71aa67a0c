"""The training loop: one run folder, resumable at any step, on one or N processes.

A run folder holds::

    config.json          the resolved run config (model, model_config, train, data)
    state.pt             resume state (see tinct.train.resume), rewritten every
                         ``checkpoint_every_steps`` steps and at every epoch end
    last.safetensors     the model after the latest epoch   } tinct.models checkpoints,
    best.safetensors     the model with the lowest val loss } usable by ``tinct colorize --model``
    epochs/epoch_NNN.safetensors  the model after every epoch (``train.keep_every_epoch``)
    palette.png          the colours of a palette model (models with ``palette_image()``)
    metrics.csv          one row per epoch
    samples/epoch_NNN.png  rows gray | prediction | truth for a few fixed validation images
    tensorboard/         TensorBoard event files

Exactness: the sampler order is a function of (seed, epoch), augmentation a function of
(seed, epoch, index) through ``train_ds.set_epoch``, and the state holds every random
generator, so a run interrupted at any point and resumed ends with the same weights as an
uninterrupted one (on the same machine, thread count and number of processes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from tinct.color import lab_to_rgb_torch
from tinct.errors import TinctError
from tinct.models.base import ColorModel
from tinct.train.config import RunConfig, TrainConfig, checkpoint_problem
from tinct.train.distributed import DistributedContext, init_distributed, shutdown_distributed, world_size_from_env
from tinct.train.outputs import MetricsLog, naming_the_file, predict_full_ab, sample_grid, write_text_atomic
from tinct.train.resume import capture_rng, load_state, restore_rng, save_state
from tinct.train.sampling import ShardSampler, TrainSampler, epoch_seed
from tinct.train.schedule import LearningRateSchedule

__all__ = ["train", "TrainError", "TrainResult", "check_run_dir", "prepare_run_dir", "RUN_FILES", "build_optimizer"]

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
_STEP_LOG_EVERY = 10  # TensorBoard per-step scalars


class TrainError(TinctError, ValueError):
    """A problem with the run the user asked for (message is one line, ready to print)."""


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    global_step: int
    best_val_loss: float
    stopped: str  # why it ended
    last_metrics: dict[str, Any]
    model: Any = dataclasses.field(default=None, repr=False)  # the trained model (this process's copy)


# ---------------------------------------------------------------------------------------
# run folder


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


# ---------------------------------------------------------------------------------------
# pieces


def build_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """``adam`` (L2 weight decay through the gradient, as seed 000) or ``sgd`` with momentum.

    ``parameters``: tensors, or parameter groups (dicts with ``params`` and their own ``lr``);
    parameters that do not require gradients are left out."""
    parameters = list(parameters)
    if parameters and isinstance(parameters[0], dict):
        parameters = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in parameters]
    else:
        parameters = [p for p in parameters if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


class _LossModule(nn.Module):
    """Routes ``training_loss`` through ``forward`` so DistributedDataParallel sees it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, l: torch.Tensor, ab: torch.Tensor, labels: torch.Tensor | None = None):
        if labels is None:
            return self.model.training_loss(l, ab)
        return self.model.training_loss(l, ab, labels=labels)


def _gradient_hook(context: DistributedContext, grad_clip: float):
    # For models that step their own optimisers (GANs): average gradients across processes
    # and clip them just before each optimiser step, where the trainer cannot reach.
    def hook(optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if context.enabled:
            for p in params:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad.div_(context.world_size)
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)

    return hook


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    # Workers get distinct, reproducible seeds from the loader's generator; Ctrl-C is left
    # to the main process, which stops at a step boundary and saves.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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


class _InterruptFlag:
    """First Ctrl-C: finish the current step, save, stop. Second Ctrl-C: stop at once."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True
        print("\ntinct: stopping after this step to save the run (Ctrl-C again to stop at once)", file=sys.stderr)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# ---------------------------------------------------------------------------------------
# the trainer


class Trainer:
    """One training run; see :func:`train`."""

    def __init__(
        self,
        run: RunConfig,
        run_dir: Path,
        resume: bool,
        overwrite: bool,
        datasets: tuple[Any, Any] | None,
        data_manifest_sha256: str | None,
        progress: bool | None,
        context: DistributedContext,
        device: torch.device,
    ):
        self.run = run
        self.config = run.train
        self.run_dir = run_dir
        self.resume = resume
        self.overwrite = overwrite
        self.progress = progress
        self.ctx = context
        self.device = device
        self.datasets = datasets
        self.manifest = data_manifest_sha256

    # -- messages --------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.ctx.is_main:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    # -- setup -----------------------------------------------------------------------------
    def _load_data(self) -> None:
        if self.datasets is None:
            from tinct.data import make_datasets, manifest_sha256

            data_config = self.run.data_config()
            self.train_ds, self.val_ds = make_datasets(data_config, seed=self.config.seed)
            self.manifest = manifest_sha256(data_config)
        else:
            self.train_ds, self.val_ds = self.datasets
        if len(self.train_ds) == 0:
            raise TrainError("the training split is empty: give more photos or lower data.val_fraction")

    def _build_model(self, state: dict | None) -> None:
        from tinct.models import create_model

        _seed_everything(self.config.seed)
        self.model = create_model(self.run.model, **self.run.model_config)
        self.uses_labels = bool(getattr(self.model, "uses_labels", False))
        if self.uses_labels:
            names = getattr(self.train_ds, "label_names", [])
            wanted = self.model.config.classes
            if len(names) != wanted:
                raise TrainError(
                    f"model.classes={wanted} but the training photos have {len(names)} classes"
                    + (f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else
                       " (only Caltech-101 and CIFAR-100 sources carry classes)")
                    + f": set model.classes={len(names)}"
                )
        if state is None and self.config.init_from:
            self._load_initial_weights()
        elif state is None and isinstance(self.model, ColorModel):
            try:
                loaded = self.model.load_pretrained()
            except ImportError as exc:  # the pretrained weights' package is a training extra
                raise TrainError(f"{exc}; or train from random weights with --set model.pretrained=false") from None
            if loaded:
                self.log(f"tinct: starting from {loaded}")
        if state is None and hasattr(self.model, "fit_statistics") and self.config.statistics_pixels:
            from tinct.data import ab_samples

            c = self.config
            if hasattr(self.model, "fit_statistics_from_dataset"):  # statistics beyond ab samples (palettes)
                self.model.fit_statistics_from_dataset(self.train_ds, c.statistics_pixels, c.seed)
            else:
                self.model.fit_statistics(ab_samples(self.train_ds, c.statistics_pixels, c.seed))
        if isinstance(self.model, nn.Module):
            if state is not None:
                self.model.load_state_dict(state["model"])
            self.model.to(self.device)

    def _check_initial_weights(self) -> None:
        """Load ``train.init_from`` before any data work; one line naming the file when it is unusable."""
        from tinct.models import load

        source = self.config.init_from
        try:
            self.initial_model = load(source)
        except (KeyError, ValueError, TypeError, AttributeError, RuntimeError, OSError) as exc:
            raise TrainError(f"train.init_from: {checkpoint_problem(source, exc)}") from None
        family = self.initial_model.name
        if family != self.run.model:
            raise TrainError(f"train.init_from: {source} holds a {family!r} model, this run trains {self.run.model!r}")

    def _load_initial_weights(self) -> None:
        """Copy the weights of ``train.init_from`` into the new model (fine-tuning)."""
        from tinct.models.checkpoint import sha256_file

        source = self.initial_model
        try:
            self.model.load_state_dict(source.state_dict())
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise TrainError(
                f"train.init_from: {self.config.init_from}: its weights do not fit this run's {self.run.model} "
                f"config ({first}); use the same model settings as the checkpoint (tinct models {self.config.init_from})"
            ) from None
        self.log(
            f"tinct: starting from {self.config.init_from} "
            f"(sha256 {sha256_file(source.checkpoint_path)[:16]}...)"
        )

    def _prepare_folder(self) -> None:
        # Touched only now, when the settings, the data and the model have all been checked:
        # a run that cannot start leaves the folder (and a run that --overwrite would replace) as it was.
        self.ctx.barrier()
        if self.ctx.is_main:
            prepare_run_dir(self.run_dir, self.resume, self.overwrite)
        self.ctx.barrier()

    def _wrap_for_processes(self) -> None:
        has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
        if self.ctx.enabled and has_batchnorm:
            if self.device.type == "cuda" and self.config.sync_batchnorm:
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            else:
                self.log(
                    "tinct: note: batch-norm statistics are per process (SyncBatchNorm needs CUDA), so N "
                    "processes do not match one process with the same global batch exactly"
                )

    def _build_optimizers(self) -> None:
        model, c = self.model, self.config
        self.custom_step = hasattr(model, "train_step") and hasattr(model, "make_optimizers")
        if hasattr(model, "make_optimizers"):
            self.optimizers = dict(model.make_optimizers(c))
            if not self.custom_step and len(self.optimizers) != 1:
                raise TrainError(
                    f"model {self.run.model!r} makes {len(self.optimizers)} optimizers but has no train_step to use them"
                )
        else:
            groups = model.parameter_groups(c.lr) if isinstance(model, ColorModel) else model.parameters()
            self.optimizers = {"model": build_optimizer(groups, c)}
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
            if self.custom_step:
                optimizer.register_step_pre_hook(_gradient_hook(self.ctx, c.grad_clip))
        if self.custom_step:
            self.loss_module = None
        else:
            self.loss_module = _LossModule(model)
            if self.ctx.enabled:
                device_ids = [self.device.index] if self.device.type == "cuda" else None
                self.loss_module = nn.parallel.DistributedDataParallel(self.loss_module, device_ids=device_ids)

    def _sample_batch(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        count = min(self.config.samples, len(self.val_ds))
        if count == 0:
            return None
        indices = sorted(set(np.linspace(0, len(self.val_ds) - 1, count).round().astype(int).tolist()))
        items = [self.val_ds[i] for i in indices]
        return torch.stack([item["l"] for item in items]), torch.stack([item["ab"] for item in items])

    # -- per-process state -----------------------------------------------------------------
    def _process_state(self) -> dict[str, Any]:
        return {"rng": capture_rng(), "epoch_sums": dict(self.epoch_sums), "epoch_count": self.epoch_count}

    def _save_state(self, epoch: int, step_in_epoch: int) -> None:
        processes = self.ctx.gather(self._process_state())  # collective: every rank calls it
        if not self.ctx.is_main:
            return
        state = {
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": self.global_step,
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedule": self.schedule.state_dict(),
            "processes": processes,
            "data_manifest_sha256": self.manifest,
            "world_size": self.ctx.world_size,
            "last_metrics": dict(self.last_metrics),
            "config": self.run.to_dict(),
        }
        save_state(self.run_dir / "state.pt", state)

    def _restore(self, state: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            if name not in state["optimizers"]:
                raise TrainError(f"{self.run_dir / 'state.pt'}: no state for optimizer {name!r}")
            optimizer.load_state_dict(state["optimizers"][name])
        self.schedule.load_state_dict(state["schedule"])
        self.global_step = int(state["global_step"])
        self.start_epoch = int(state["epoch"])
        self.start_step = int(state["step_in_epoch"])
        self.last_metrics = dict(state.get("last_metrics", {}))
        processes = state["processes"]
        if len(processes) == self.ctx.world_size:
            mine = processes[self.ctx.rank]
            restore_rng(mine["rng"])
            self.epoch_sums = dict(mine["epoch_sums"])
            self.epoch_count = int(mine["epoch_count"])
        else:
            self.log(
                f"tinct: note: the run was saved by {len(processes)} process(es) and resumes on "
                f"{self.ctx.world_size}; random streams restart, so the result is not bit-identical"
            )
            _seed_everything(epoch_seed(self.config.seed, self.global_step, 1000 + self.ctx.rank))
            # The other processes' partial-epoch sums are lost; the epoch's train metrics
            # then cover the steps done after the resume.
            self.epoch_sums, self.epoch_count = {}, 0

    # -- steps -----------------------------------------------------------------------------
    def _set_lr(self) -> float:
        factor = self.schedule.factor(self.global_step)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
        return self.config.lr * factor

    def _train_step(self, l: torch.Tensor, ab: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        if self.custom_step:
            metrics = {key: float(value) for key, value in self.model.train_step(l, ab, self.optimizers).items()}
            if not math.isfinite(metrics.get("loss", 0.0)):
                raise TrainError(self._diverged(metrics["loss"]))
        else:
            (optimizer,) = self.optimizers.values()
            optimizer.zero_grad(set_to_none=True)
            loss, metrics = self.loss_module(l, ab, labels)  # _LossModule drops labels=None
            metrics = dict(metrics)
            metrics.setdefault("loss", float(loss.detach()))
            if not torch.isfinite(loss.detach()):
                raise TrainError(self._diverged(float(loss)))
            loss.backward()
            if self.config.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            optimizer.step()
        return {key: float(value) for key, value in metrics.items()}

    def _diverged(self, loss: float) -> str:
        return f"the training loss became {loss} at step {self.global_step + 1}; lower train.lr or set train.grad_clip"

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        model = self.model
        count = len(self.val_ds)
        if self.config.max_val_images:
            count = min(count, self.config.max_val_images)
        if count == 0:
            return {}
        loader = DataLoader(
            self.val_ds,
            batch_size=max(1, self.config.batch_size // self.ctx.world_size),
            sampler=ShardSampler(count, self.ctx.rank, self.ctx.world_size),
            num_workers=self.config.num_workers,
            worker_init_fn=_worker_init if self.config.num_workers else None,
        )
        is_module = isinstance(model, nn.Module)
        if is_module:
            model.eval()
        sums = [0.0] * 4  # loss, psnr, ab_l1, images
        try:
            for batch in loader:
                l, ab = batch["l"].to(self.device), batch["ab"].to(self.device)
                n = l.shape[0]
                predicted = predict_full_ab(model, l)
                try:
                    loss, _ = model.training_loss(l, ab)
                    loss_value = float(loss)
                except (AttributeError, NotImplementedError):
                    # No loss of its own (NumPy models): the mean ab error in Lab units.
                    loss_value = float((predicted - ab).abs().mean())
                rgb_pred = lab_to_rgb_torch(torch.cat([l, predicted.to(l)], 1))
                rgb_true = lab_to_rgb_torch(torch.cat([l, ab], 1))
                mse = (rgb_pred - rgb_true).square().flatten(1).mean(1).clamp_min(1e-10)  # (B,)
                sums[0] += loss_value * n
                sums[1] += float((10 * torch.log10(1.0 / mse)).sum())
                sums[2] += float((predicted - ab).abs().flatten(1).mean(1).sum())
                sums[3] += n
        finally:
            if is_module:
                model.train()
        totals = self.ctx.sum(sums)
        n = totals[3]
        return {"val_loss": totals[0] / n, "val_psnr": totals[1] / n, "val_ab_l1": totals[2] / n}

    # -- epoch end -------------------------------------------------------------------------
    def _finish_epoch(self, epoch: int, seconds: float, train_images: int) -> bool:
        """Validate, decide, write everything; returns True when training should stop."""
        keys = sorted(self.epoch_sums)
        totals = self.ctx.sum([self.epoch_sums[k] for k in keys] + [float(self.epoch_count)])
        steps = max(1.0, totals[-1])
        train_metrics = {f"train_{k}": totals[i] / steps for i, k in enumerate(keys)}
        val_metrics = self._validate()
        if "val_loss" in val_metrics:
            decisive = val_metrics["val_loss"]
        else:
            decisive = train_metrics.get("train_loss", math.nan)
        lr = self.config.lr * self.schedule.factor(max(0, self.global_step - 1))
        decision = self.schedule.end_epoch(decisive)
        if decision.new_round and self.config.reset_optimizer_each_round:
            for optimizer in self.optimizers.values():
                optimizer.state.clear()
        epochs_done = epoch + 1
        row = {
            "epoch": epochs_done,
            "global_step": self.global_step,
            "lr": lr,
            **train_metrics,
            **val_metrics,
            "best": int(decision.improved),
            "seconds": round(seconds, 2),
            "images_per_second": round(train_images / seconds, 2) if seconds > 0 else 0.0,
        }
        self.last_metrics = {k: v for k, v in row.items() if isinstance(v, (int, float))}
        if self.ctx.is_main:
            self._write_epoch_outputs(epochs_done, row, decision.improved)
        stop = decision.stop or epochs_done >= self.config.epochs
        self.epoch_sums, self.epoch_count = {}, 0
        self._save_state(epochs_done, 0)
        shown = "  ".join(f"{k} {_short(v)}" for k, v in row.items() if k not in ("epoch", "global_step", "best"))
        self.log(f"epoch {epochs_done}/{self.config.epochs}  {shown}{'  [best]' if decision.improved else ''}")
        if decision.new_round:
            self.log(f"plateau-rounds: round {self.schedule.round} of {self.config.rounds}, lr x{self.schedule.factor(self.global_step):g}")
        if decision.stop:
            self.log(f"stopping: {decision.reason}")
        return stop

    def _write_epoch_outputs(self, epochs_done: int, row: dict[str, Any], improved: bool) -> None:
        if self.sample_batch is not None:
            l, ab = (t.to(self.device) for t in self.sample_batch)
            self.model.eval()
            try:
                grid = sample_grid(self.model, l, ab)
            finally:
                self.model.train()
            _write_sample_grid(self.run_dir, epochs_done, grid)
        self.metrics_log.log_epoch(row, self.global_step)
        metrics = {k: v for k, v in row.items() if isinstance(v, (int, float))}
        extra = {
            "train_config": self.config.to_dict(),
            "data_config": self.run.data,
            "epoch": epochs_done,
            "global_step": self.global_step,
        }
        keep = epochs_done if self.config.keep_every_epoch else None
        _write_checkpoints(self.run_dir, self.model, self.manifest, metrics, extra, improved, keep)

    # -- main loop -------------------------------------------------------------------------
    def run_training(self) -> TrainResult:
        c = self.config
        state = load_state(self.run_dir / "state.pt") if self.resume else None
        if state is None and c.init_from:
            self._check_initial_weights()
        self._load_data()
        if state is not None:
            self._check_resumable(state)
        self._build_model(state)
        self._prepare_folder()
        if self.ctx.is_main and hasattr(self.model, "palette_image"):
            from tinct.io import write_image

            path = self.run_dir / "palette.png"
            with naming_the_file(path):
                write_image(path, self.model.palette_image(), overwrite=True)
        if getattr(self.model, "backend", "torch") == "numpy":
            return self._run_numpy(state)
        self._wrap_for_processes()
        self._build_optimizers()
        sampler = TrainSampler(len(self.train_ds), c.batch_size, self.ctx.rank, self.ctx.world_size, c.seed, c.max_steps_per_epoch)
        if sampler.steps == 0:
            raise TrainError(
                f"{len(self.train_ds)} training images are fewer than train.batch_size={c.batch_size}; "
                "lower it with --set train.batch_size=N"
            )
        self.schedule = LearningRateSchedule(c, sampler.steps)
        self.global_step, self.start_epoch, self.start_step = 0, 0, 0
        self.epoch_sums: dict[str, float] = {}
        self.epoch_count = 0
        self.last_metrics: dict[str, Any] = {}
        if state is not None:
            self._restore(state)
        else:
            # Training randomness (dropout, ...) per process, distinct from the initialisation.
            _seed_everything(epoch_seed(c.seed, 0, 1000 + self.ctx.rank))
        if self.schedule.stopped or self.start_epoch >= c.epochs:
            why = self.schedule.stopped or f"finished {_epochs(self.start_epoch)} (raise train.epochs to continue)"
            return self._result(f"nothing to do: {why}")
        if self.ctx.is_main:
            write_text_atomic(self.run_dir / "config.json", json.dumps(self.run.to_dict(), indent=2) + "\n")
        self.sample_batch = self._sample_batch() if self.ctx.is_main else None
        self.metrics_log = (
            MetricsLog(self.run_dir, self.start_epoch, c.tensorboard, self.global_step) if self.ctx.is_main else None
        )
        parameters = sum(p.numel() for p in self.model.parameters())
        where = f" on {self.ctx.world_size} processes" if self.ctx.enabled else ""
        self.log(
            f"tinct: training {self.run.model} ({parameters / 1e6:.2f} M parameters){where}: "
            f"{len(self.train_ds)} training / {len(self.val_ds)} validation items, "
            f"{sampler.steps} steps of {c.batch_size} per epoch -> {self.run_dir}"
        )
        if state is None:
            self._save_state(0, 0)  # a fresh run is resumable from its first moment
        else:
            self.log(f"tinct: resuming at epoch {self.start_epoch + 1}, step {self.start_step}/{sampler.steps}")
        stopped = ""
        try:
            with _InterruptFlag() as interrupt:
                for epoch in range(self.start_epoch, c.epochs):
                    if self._run_epoch(epoch, sampler, interrupt):
                        stopped = self.schedule.stopped or f"finished {_epochs(c.epochs)}"
                        break
                    if self.ctx.any(interrupt.raised):
                        raise KeyboardInterrupt
        finally:
            if self.metrics_log is not None:
                self.metrics_log.close()
        return self._result(stopped)

    def _run_epoch(self, epoch: int, sampler: TrainSampler, interrupt: _InterruptFlag) -> bool:
        from tqdm import tqdm

        c = self.config
        start_step = self.start_step if epoch == self.start_epoch else 0
        if hasattr(self.train_ds, "set_epoch"):
            self.train_ds.set_epoch(epoch)
        sampler.set_epoch(epoch, start_step)
        loader = DataLoader(
            self.train_ds,
            batch_size=sampler.local_batch,
            sampler=sampler,
            num_workers=c.num_workers,
            worker_init_fn=_worker_init if c.num_workers else None,
            generator=torch.Generator().manual_seed(epoch_seed(c.seed, epoch, 2000 + self.ctx.rank)),
        )
        bar = tqdm(
            total=sampler.steps,
            initial=start_step,
            desc=f"epoch {epoch + 1}/{c.epochs}",
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
            disable=(not self.ctx.is_main) or (None if self.progress is None else not self.progress),
        )
        started = time.perf_counter()
        images = 0
        step = start_step
        try:
            iterator = iter(loader)
            while step < sampler.steps:
                try:
                    batch = next(iterator)
                except RuntimeError:
                    if interrupt.raised:  # a data worker was hit by the same Ctrl-C
                        break
                    raise
                lr = self._set_lr()
                labels = batch["label"].to(self.device) if self.uses_labels else None
                metrics = self._train_step(batch["l"].to(self.device), batch["ab"].to(self.device), labels)
                for key, value in metrics.items():
                    self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + value
                self.epoch_count += 1
                self.global_step += 1
                step += 1
                images += batch["l"].shape[0] * self.ctx.world_size
                bar.update(1)
                bar.set_postfix(loss=f"{self.epoch_sums.get('loss', 0.0) / self.epoch_count:.4g}", lr=f"{lr:.2g}")
                if self.ctx.is_main and self.global_step % _STEP_LOG_EVERY == 0:
                    self.metrics_log.log_step({"loss": metrics.get("loss", math.nan), "lr": lr}, self.global_step)
                if self.ctx.any(interrupt.raised):
                    break
                if c.checkpoint_every_steps and self.global_step % c.checkpoint_every_steps == 0 and step < sampler.steps:
                    self._save_state(epoch, step)
        finally:
            bar.close()
        if step < sampler.steps:  # interrupted: save exactly where we are and leave
            self._save_state(epoch, step)
            self.log(f"tinct: saved at epoch {epoch + 1}, step {step}/{sampler.steps}; continue with --resume")
            raise KeyboardInterrupt
        return self._finish_epoch(epoch, time.perf_counter() - started, images)

    def _check_resumable(self, state: dict[str, Any]) -> None:
        saved = state.get("config", {})
        for key in ("model", "model_config", "data"):
            if key in saved and saved[key] != self.run.to_dict()[key]:
                raise TrainError(
                    f"{self.run_dir}: the run's {key} differs from the one it was started with; "
                    "start a new run to change it"
                )
        if state.get("data_manifest_sha256") and self.manifest and state["data_manifest_sha256"] != self.manifest:
            raise TrainError(
                f"{self.run_dir}: the training photos changed since the run started (data manifest differs); "
                "start a new run (or restore the photos) to continue"
            )

    def _result(self, stopped: str) -> TrainResult:
        return TrainResult(
            run_dir=self.run_dir,
            epochs_done=self.schedule.epochs_done if hasattr(self, "schedule") else 0,
            global_step=getattr(self, "global_step", 0),
            best_val_loss=self.schedule.best_val_loss if hasattr(self, "schedule") else math.nan,
            stopped=stopped,
            last_metrics=dict(getattr(self, "last_metrics", {})),
            model=getattr(self, "model", None),
        )

    # -- NumPy models ----------------------------------------------------------------------
    def _run_numpy(self, state: dict | None) -> TrainResult:
        """Delegate to ``model.fit(train_ds, val_ds, train_config, callback)``.

        ``callback(epoch, metrics)`` is called by the model after each epoch (``epoch``
        1-based, ``metrics`` a dict of floats, ideally with ``train_loss`` and ``val_loss``);
        the trainer writes last/best checkpoints, the metrics row and the sample grid, and a
        resume state holding the weights. A model with ``fit_state()`` (the NumPy families)
        also has its schedule and optimiser state saved there, and a resumed run continues it
        with ``fit(..., resume=...)``, ending with the same weights as an uninterrupted run.
        Other models restart ``fit`` from the last epoch's weights for the remaining epochs.
        """
        if self.ctx.enabled:
            raise TrainError(f"model {self.run.model!r} trains with NumPy in one process; run it without torchrun")
        c = self.config
        # A state saved without fit's own state (by an older tinct) resumes the old way.
        saved_fit = state is None or state["epoch"] == 0 or state.get("fit") is not None
        self.resumable_fit = hasattr(self.model, "fit_state") and saved_fit
        self.epochs_before, self.best_loss, resume = self._restore_numpy(state)
        if self.epochs_before >= c.epochs:
            why = f"nothing to do: finished {_epochs(self.epochs_before)} (raise train.epochs to continue)"
            return TrainResult(self.run_dir, self.epochs_before, 0, self.best_loss, why, {}, self.model)
        write_text_atomic(self.run_dir / "config.json", json.dumps(self.run.to_dict(), indent=2) + "\n")
        self.sample_batch = self._sample_batch()
        self.metrics_log = MetricsLog(self.run_dir, self.epochs_before, c.tensorboard, self.epochs_before)
        if state is None:
            self._save_numpy_state(0)
        if self.resumable_fit:
            fit = {"train_config": c, "resume": resume}
        else:  # fit counts its epochs from 1 again
            fit = {"train_config": dataclasses.replace(c, epochs=c.epochs - self.epochs_before)}
        try:
            self.model.fit(self.train_ds, self.val_ds, callback=self._numpy_epoch_end, **fit)
        finally:
            self.metrics_log.close()
        epochs_done = int(self.last_metrics.get("epoch", self.epochs_before))
        # NumPy models count their own steps; global_step stays 0 for them.
        return TrainResult(
            self.run_dir, epochs_done, 0, self.best_loss, f"finished {_epochs(epochs_done)}", dict(self.last_metrics), self.model
        )

    def _restore_numpy(self, state: dict | None) -> tuple[int, float, dict | None]:
        """(epochs done, best decisive loss, ``fit``'s resume state) of the run so far."""
        self.last_metrics = {}
        if state is None:
            return 0, math.inf, None
        self.model.load_state_dict({k: v.numpy() for k, v in state["model"].items()})
        restore_rng(state["processes"][0]["rng"])
        resume = _to_arrays(state["fit"]) if self.resumable_fit and state.get("fit") else None
        return int(state["epoch"]), float(state.get("best_val_loss", math.inf)), resume

    def _save_numpy_state(self, epochs_done: int) -> None:
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).clone() for k, v in self.model.state_dict().items()}
        fit = _to_tensors(self.model.fit_state()) if self.resumable_fit and epochs_done else None
        save_state(
            self.run_dir / "state.pt",
            {
                "epoch": epochs_done, "step_in_epoch": 0, "global_step": epochs_done, "model": tensors,
                "optimizers": {}, "schedule": {}, "processes": [{"rng": capture_rng()}],
                "best_val_loss": self.best_loss, "data_manifest_sha256": self.manifest, "world_size": 1,
                "config": self.run.to_dict(), "fit": fit,
            },
        )  # fmt: skip

    def _numpy_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """``fit``'s callback: validate, write the epoch's files, save the resume state."""
        c = self.config
        epochs_done = int(epoch) if self.resumable_fit else self.epochs_before + int(epoch)
        values = {k: float(v) for k, v in metrics.items()}
        values.update({k: v for k, v in self._validate().items() if k not in values})
        decisive = values.get("val_loss", values.get("train_loss", math.nan))
        improved = decisive < self.best_loss
        self.best_loss = min(self.best_loss, decisive) if not math.isnan(decisive) else self.best_loss
        row = {"epoch": epochs_done, **values, "best": int(improved)}
        self.last_metrics = row
        if self.sample_batch is not None:
            _write_sample_grid(self.run_dir, epochs_done, sample_grid(self.model, *self.sample_batch))
        self.metrics_log.log_epoch(row, epochs_done)
        self._save_numpy_checkpoints(row, improved)
        self._save_numpy_state(epochs_done)
        self.log(f"epoch {epochs_done}/{c.epochs}  " + "  ".join(f"{k} {_short(v)}" for k, v in values.items()))

    def _save_numpy_checkpoints(self, row: dict[str, Any], improved: bool) -> None:
        extra = {"train_config": self.config.to_dict(), "data_config": self.run.data}
        keep = row["epoch"] if self.config.keep_every_epoch else None
        _write_checkpoints(self.run_dir, self.model, self.manifest, row, extra, improved, keep)


def _write_checkpoints(
    run_dir: Path, model, manifest: str | None, metrics: dict, extra: dict, improved: bool, keep_epoch: int | None = None
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


def _to_tensors(value: Any) -> Any:
    """NumPy arrays (and scalars) inside dicts and lists -> torch tensors (and Python numbers),
    so ``state.pt`` still loads with ``weights_only=True``."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value)).clone()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _to_tensors(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_tensors(item) for item in value]
    return value


def _to_arrays(value: Any) -> Any:
    """The inverse of :func:`_to_tensors`."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {key: _to_arrays(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_arrays(item) for item in value]
    return value


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


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
    device = _pick_device(config, _local_rank_hint())
    context = init_distributed(device)
    try:
        torch.set_num_threads(config.threads or max(1, _default_threads() // context.world_size))
        # Every rank checks the folder (so all fail alike); only rank 0 changes it.
        run_dir = check_run_dir(out_dir, resume, overwrite)
        trainer = Trainer(run, run_dir, resume, overwrite, datasets, data_manifest_sha256, progress, context, device)
        result = trainer.run_training()
        context.barrier()
        return result
    finally:
        shutdown_distributed(context)


def _local_rank_hint() -> int:
    import os

    return int(os.environ.get("LOCAL_RANK", "0") or 0)
