"""The torch training loop: optimisation steps on one or N processes, resumable at any step.

Exactness: the sampler order is a function of (seed, epoch), augmentation a function of
(seed, epoch, index) through ``train_ds.set_epoch``, and the state holds every random
generator, so a run interrupted at any point and resumed ends with the same weights as an
uninterrupted one (on the same machine, thread count and number of processes).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from tinct.models.base import ColorModel, count_parameters
from tinct.train.distributed import DistributedContext
from tinct.train.outputs import MetricsLog
from tinct.train.run_folder import write_config, write_epoch_files
from tinct.train.run_setup import RunSetup, TrainResult, epochs_text, seed_everything, short
from tinct.train.sampling import TrainSampler, epoch_seed
from tinct.train.schedule import LearningRateSchedule
from tinct.train.settings import TrainConfig, TrainError
from tinct.train.state import capture_rng, restore_rng, save_run_state
from tinct.train.validation import validate, worker_init

__all__ = ["TorchLoop", "build_optimizer"]

_STEP_LOG_EVERY = 10  # TensorBoard per-step scalars


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


def _progress_bar(setup: RunSetup, epoch: int, start_step: int, steps: int):
    """The epoch's progress bar on stderr: main process only, and only on a terminal unless
    ``setup.progress`` says otherwise."""
    from tqdm import tqdm

    shown = setup.progress
    return tqdm(
        total=steps,
        initial=start_step,
        desc=f"epoch {epoch + 1}/{setup.config.epochs}",
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
        disable=(not setup.context.is_main) or (None if shown is None else not shown),
    )


class TorchLoop:
    """Trains a torch model of a :class:`RunSetup`: ``TorchLoop(setup).run()``."""

    def __init__(self, setup: RunSetup):
        c = setup.config
        self.setup = setup
        self.config = c
        self.ctx = setup.context
        self.uses_labels = bool(setup.model.uses_labels)
        self.sampler = TrainSampler(
            len(setup.train_ds), c.batch_size, self.ctx.rank, self.ctx.world_size, c.seed, c.max_steps_per_epoch
        )
        if self.sampler.steps == 0:
            raise TrainError(
                f"{len(setup.train_ds)} training images are fewer than train.batch_size={c.batch_size}; "
                "lower it with --set train.batch_size=N"
            )
        self.model = self._wrap_for_processes(setup.model)
        self.custom_step = setup.model.custom_training_step
        self.optimizers = self._build_optimizers()
        self.loss_module = self._build_loss_module()
        self.schedule = LearningRateSchedule(c, self.sampler.steps)
        self.global_step, self.start_epoch, self.start_step = 0, 0, 0
        self.epoch_sums: dict[str, float] = {}
        self.epoch_count = 0
        self.last_metrics: dict[str, Any] = {}
        self.sample_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self.metrics_log: MetricsLog | None = None

    # -- setup -----------------------------------------------------------------------------
    def _wrap_for_processes(self, model):
        has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if self.ctx.enabled and has_batchnorm:
            if self.setup.device.type == "cuda" and self.config.sync_batchnorm:
                return nn.SyncBatchNorm.convert_sync_batchnorm(model)
            self.setup.log(
                "tinct: note: batch-norm statistics are per process (SyncBatchNorm needs CUDA), so N "
                "processes do not match one process with the same global batch exactly"
            )
        return model

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        model, c = self.model, self.config
        if self.custom_step:
            optimizers = dict(model.make_optimizers(c))
        else:
            groups = model.parameter_groups(c.lr) if isinstance(model, ColorModel) else model.parameters()
            optimizers = {"model": build_optimizer(groups, c)}
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
            if self.custom_step:
                optimizer.register_step_pre_hook(_gradient_hook(self.ctx, c.grad_clip))
        return optimizers

    def _build_loss_module(self) -> nn.Module | None:
        if self.custom_step:
            return None
        loss_module = _LossModule(self.model)
        if self.ctx.enabled:
            device = self.setup.device
            device_ids = [device.index] if device.type == "cuda" else None
            loss_module = nn.parallel.DistributedDataParallel(loss_module, device_ids=device_ids)
        return loss_module

    # -- resume state ----------------------------------------------------------------------
    def _save_state(self, epoch: int, step_in_epoch: int) -> None:
        process = {"rng": capture_rng(), "epoch_sums": dict(self.epoch_sums), "epoch_count": self.epoch_count}
        processes = self.ctx.gather(process)  # collective: every rank calls it
        if not self.ctx.is_main:
            return
        setup = self.setup
        save_run_state(
            setup.run_dir, epoch=epoch, step_in_epoch=step_in_epoch, global_step=self.global_step,
            model=self.model, processes=processes, best_val_loss=self.schedule.best_val_loss,
            last_metrics=self.last_metrics, manifest=setup.manifest, world_size=self.ctx.world_size,
            config=setup.run.to_dict(), optimizers=self.optimizers, schedule=self.schedule.state_dict(),
        )  # fmt: skip

    def _restore(self, state: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            if name not in state["optimizers"]:
                raise TrainError(f"{self.setup.run_dir / 'state.pt'}: no state for optimizer {name!r}")
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
            return
        self.setup.log(
            f"tinct: note: the run was saved by {len(processes)} process(es) and resumes on "
            f"{self.ctx.world_size}; random streams restart, so the result is not bit-identical"
        )
        seed_everything(epoch_seed(self.config.seed, self.global_step, 1000 + self.ctx.rank))
        # The other processes' partial-epoch sums are lost; the epoch's train metrics
        # then cover the steps done after the resume.
        self.epoch_sums, self.epoch_count = {}, 0

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> TrainResult:
        c, setup, state = self.config, self.setup, self.setup.state
        if state is not None:
            self._restore(state)
        else:
            # Training randomness (dropout, ...) per process, distinct from the initialisation.
            seed_everything(epoch_seed(c.seed, 0, 1000 + self.ctx.rank))
        if self.schedule.stopped or self.start_epoch >= c.epochs:
            why = self.schedule.stopped or f"finished {epochs_text(self.start_epoch)} (raise train.epochs to continue)"
            return self._result(f"nothing to do: {why}")
        if self.ctx.is_main:
            write_config(setup.run_dir, setup.run)
            self.sample_batch = setup.sample_batch()
            self.metrics_log = MetricsLog(setup.run_dir, self.start_epoch, c.tensorboard, self.global_step)
        self._announce()
        if isinstance(setup.model, nn.Module):  # through the model's own train(): what it keeps frozen (batch-norm
            setup.model.train()  # statistics) stays frozen from the first step, not only after the first validation
        stopped = ""
        try:
            with _InterruptFlag() as interrupt:
                for epoch in range(self.start_epoch, c.epochs):
                    if self._run_epoch(epoch, interrupt):
                        stopped = self.schedule.stopped or f"finished {epochs_text(c.epochs)}"
                        break
                    if self.ctx.any(interrupt.raised):
                        raise KeyboardInterrupt
        finally:
            if self.metrics_log is not None:
                self.metrics_log.close()
        return self._result(stopped)

    def _announce(self) -> None:
        setup, c, steps = self.setup, self.config, self.sampler.steps
        parameters = count_parameters(self.model)
        where = f" on {self.ctx.world_size} processes" if self.ctx.enabled else ""
        setup.log(
            f"tinct: training {setup.run.model} ({parameters / 1e6:.2f} M parameters){where}: "
            f"{len(setup.train_ds)} training / {len(setup.val_ds)} validation items, "
            f"{steps} steps of {c.batch_size} per epoch -> {setup.run_dir}"
        )
        if setup.state is None:
            self._save_state(0, 0)  # a fresh run is resumable from its first moment
        else:
            setup.log(f"tinct: resuming at epoch {self.start_epoch + 1}, step {self.start_step}/{steps}")

    def _result(self, stopped: str) -> TrainResult:
        return TrainResult(
            run_dir=self.setup.run_dir,
            epochs_done=self.schedule.epochs_done,
            global_step=self.global_step,
            best_val_loss=self.schedule.best_val_loss,
            stopped=stopped,
            last_metrics=dict(self.last_metrics),
            model=self.model,
        )

    def _loader(self, epoch: int, start_step: int) -> DataLoader:
        c, train_ds = self.config, self.setup.train_ds
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(epoch)
        self.sampler.set_epoch(epoch, start_step)
        return DataLoader(
            train_ds,
            batch_size=self.sampler.local_batch,
            sampler=self.sampler,
            num_workers=c.num_workers,
            worker_init_fn=worker_init if c.num_workers else None,
            generator=torch.Generator().manual_seed(epoch_seed(c.seed, epoch, 2000 + self.ctx.rank)),
        )

    def _run_epoch(self, epoch: int, interrupt: _InterruptFlag) -> bool:
        """Train one epoch (from ``start_step`` when resuming into it); True when training should stop."""
        c, steps = self.config, self.sampler.steps
        step = self.start_step if epoch == self.start_epoch else 0
        iterator = iter(self._loader(epoch, step))
        bar = _progress_bar(self.setup, epoch, step, steps)
        started, images = time.perf_counter(), 0
        try:
            while step < steps:
                try:
                    batch = next(iterator)
                except RuntimeError:
                    if interrupt.raised:  # a data worker was hit by the same Ctrl-C
                        break
                    raise
                images += self._step(batch, bar)
                step += 1
                if self.ctx.any(interrupt.raised):
                    break
                if c.checkpoint_every_steps and self.global_step % c.checkpoint_every_steps == 0 and step < steps:
                    self._save_state(epoch, step)
        finally:
            bar.close()
        if step < steps:  # interrupted: save exactly where we are and leave
            self._save_state(epoch, step)
            self.setup.log(f"tinct: saved at epoch {epoch + 1}, step {step}/{steps}; continue with --resume")
            raise KeyboardInterrupt
        return self._finish_epoch(epoch, time.perf_counter() - started, images)

    def _step(self, batch: dict[str, torch.Tensor], bar) -> int:
        """One optimisation step on ``batch``; returns the images it held over all processes."""
        device = self.setup.device
        lr = self._set_lr()
        labels = batch["label"].to(device) if self.uses_labels else None
        metrics = self._train_step(batch["l"].to(device), batch["ab"].to(device), labels)
        for key, value in metrics.items():
            self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + value
        self.epoch_count += 1
        self.global_step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{self.epoch_sums.get('loss', 0.0) / self.epoch_count:.4g}", lr=f"{lr:.2g}")
        if self.ctx.is_main and self.global_step % _STEP_LOG_EVERY == 0:
            self.metrics_log.log_step({"loss": metrics.get("loss", math.nan), "lr": lr}, self.global_step)
        return batch["l"].shape[0] * self.ctx.world_size

    def _set_lr(self) -> float:
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = self.schedule.learning_rate(group["initial_lr"], self.global_step)
        return self.schedule.learning_rate(self.config.lr, self.global_step)

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

    # -- epoch end -------------------------------------------------------------------------
    def _finish_epoch(self, epoch: int, seconds: float, train_images: int) -> bool:
        """Validate, decide, write everything; returns True when training should stop."""
        c, setup = self.config, self.setup
        keys = sorted(self.epoch_sums)
        totals = self.ctx.sum([self.epoch_sums[k] for k in keys] + [float(self.epoch_count)])
        steps = max(1.0, totals[-1])
        train_metrics = {f"train_{k}": totals[i] / steps for i, k in enumerate(keys)}
        val_metrics = validate(self.model, setup.val_ds, c, self.ctx, setup.device)
        decisive = val_metrics.get("val_loss", train_metrics.get("train_loss", math.nan))
        lr = self.schedule.learning_rate(c.lr, max(0, self.global_step - 1))
        decision = self.schedule.end_epoch(decisive)
        if decision.new_round and c.reset_optimizer_each_round:
            for optimizer in self.optimizers.values():
                optimizer.state.clear()
        epochs_done = epoch + 1
        row = {
            "epoch": epochs_done, "global_step": self.global_step, "lr": lr, **train_metrics, **val_metrics,
            "best": int(decision.improved), "seconds": round(seconds, 2),
            "images_per_second": round(train_images / seconds, 2) if seconds > 0 else 0.0,
        }  # fmt: skip
        self.last_metrics = {k: v for k, v in row.items() if isinstance(v, (int, float))}
        if self.ctx.is_main:
            extra = {"train_config": c.to_dict(), "data_config": setup.run.data, "epoch": epochs_done,
                     "global_step": self.global_step}  # fmt: skip
            write_epoch_files(
                setup.run_dir, self.model, row, improved=decision.improved, metrics_log=self.metrics_log,
                log_step=self.global_step, sample_batch=self.sample_batch, device=setup.device,
                manifest=setup.manifest, extra=extra, keep_every_epoch=c.keep_every_epoch,
            )  # fmt: skip
        self.epoch_sums, self.epoch_count = {}, 0
        self._save_state(epochs_done, 0)
        self._log_epoch(row, decision)
        return decision.stop or epochs_done >= c.epochs

    def _log_epoch(self, row: dict[str, Any], decision) -> None:
        c = self.config
        shown = "  ".join(f"{k} {short(v)}" for k, v in row.items() if k not in ("epoch", "global_step", "best"))
        self.setup.log(f"epoch {row['epoch']}/{c.epochs}  {shown}{'  [best]' if decision.improved else ''}")
        if decision.new_round:
            factor = self.schedule.factor(self.global_step)
            self.setup.log(f"plateau-rounds: round {self.schedule.round} of {c.rounds}, lr x{factor:g}")
        if decision.stop:
            self.setup.log(f"stopping: {decision.reason}")
