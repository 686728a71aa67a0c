"""The NumPy training loop: the ``window-mlp`` and ``fc-image`` families (seeds 000 and 003).

Three layers, each usable alone:

* :func:`fit_network` trains anything with ``train_step(x, y) -> float``, ``state_dict()``,
  ``load_state_dict()`` and an ``optimizer`` (a :class:`tinct.numpynet.Network`) epoch by
  epoch, with the learning rate and the stopping rules of :mod:`tinct.train.schedule` (the
  same schedule as the torch loop, asked once per epoch);
* :class:`NumpyFit` (and :func:`fit_numpy_model`) turns a :class:`NumpyColorModel` and two
  datasets into network examples, batches and a validation loss, and runs ``fit_network``;
* :class:`NumpyLoop` is what ``tinct train`` runs: the run folder, ``state.pt``, checkpoints,
  metrics and sample grids after every epoch, and an exact ``--resume``.

How the train config is read:

==========================  ==================================================================
``schedule="plateau-rounds"``  ``rounds`` rounds at ``lr, lr * lr_decay, ...``; a round ends
                            after ``patience`` epochs without a better validation loss and the
                            next one restarts from the best weights; Adam's moments are reset at
                            each round unless ``reset_optimizer_each_round`` is false (seed 000).
``schedule="none"``         one round at ``lr`` for ``epochs`` epochs.
``schedule="step"``         ``lr * lr_decay ** (epoch // step_epochs)``, set per epoch.
``schedule="cosine"``       half a cosine from ``lr`` to ``min_lr`` over the epochs, per epoch.
``epochs``                  the budget over all rounds.
``early_stopping``          stop after this many epochs without a better validation loss.
``batch_size``              examples per step (windows for ``window-mlp``, images for
                            ``fc-image``).
``max_steps_per_epoch``     cap on steps per epoch (quick runs); ``max_val_images`` caps
                            the validation images.
``optimizer``, ``betas``    ``adam`` (with ``betas``) or ``sgd`` (plain, no momentum); a family may
                            replace it with its own rule (:meth:`NumpyColorModel.own_optimizer`:
                            ``fc-image``'s ``update="clipped-sgd"``, seed 003's clipped SGD).
``seed``                    the shuffling order of every epoch (the initial weights come from
                            torch's global generator, which the trainer seeds with it).
``threads``                 BLAS threads (through threadpoolctl); 0 leaves NumPy's default.
==========================  ==================================================================

Not available here, and refused with a message saying what to use instead: ``weight_decay``
(the L2 penalty is part of the network's cost, so it is the model's ``l2_lambda``),
``grad_clip``, ``warmup_steps`` and SGD ``momentum``.

The initial weights count as epoch 0: an epoch improves when its validation loss is below
every earlier one, the initial weights' included. The model always ends holding the weights
with the best validation loss, and the validation loss is ``1/(2N) sum (output - target)^2``
on the validation examples, in network units (the weight penalty left out, whatever the
training loss), so it can be compared across epochs and rounds. ``val_rgb_mse`` is the same
error as a plain mean in [0, 1] RGB units (divided by ``value_scale**2`` for a model working
in [0, 255]).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from tinct.models.numpy_base import NumpyColorModel
from tinct.numpynet import SGD, Adam, Network, Optimizer
from tinct.train.outputs import MetricsLog
from tinct.train.run_folder import write_config, write_epoch_files
from tinct.train.run_setup import RunSetup, TrainResult, epochs_text, short
from tinct.train.schedule import LearningRateSchedule
from tinct.train.settings import TrainConfig, TrainError
from tinct.train.state import capture_rng, restore_rng, save_run_state, to_arrays
from tinct.train.validation import validate

__all__ = [
    "EpochRecord",
    "FitProgress",
    "FitResult",
    "NumpyFit",
    "NumpyLoop",
    "check_train_config",
    "data_loss",
    "dataset_arrays",
    "fit_network",
    "fit_numpy_model",
]

_VALIDATION_CHUNK = 8192  # rows per forward pass when scoring validation examples


def check_train_config(c: TrainConfig) -> None:
    """ValueError naming a train setting that the NumPy loop cannot honour (module docstring)."""
    refused = [
        (c.weight_decay, "train.weight_decay", "the L2 penalty of a NumPy model is model.l2_lambda"),
        (c.grad_clip, "train.grad_clip", "gradient clipping is not implemented for NumPy models"),
        (c.warmup_steps, "train.warmup_steps", "learning-rate warm-up is not implemented for NumPy models"),
    ]
    for value, key, why in refused:
        if value:
            raise ValueError(f"{key}={value}: {why}; set it to 0")
    if c.optimizer == "sgd" and c.momentum:
        raise ValueError(f"train.momentum={c.momentum}: tinct.numpynet.SGD has no momentum; set train.momentum=0")
    if c.optimizer not in ("adam", "sgd"):
        raise ValueError(f"train.optimizer={c.optimizer!r}: NumPy models use adam or sgd")


# ---------------------------------------------------------------------------------------
# the epoch loop


@dataclass(frozen=True)
class EpochRecord:
    """What happened in one epoch (passed to ``progress`` and kept in the result)."""

    epoch: int  # 1-based, counted over all rounds
    round_index: int  # 0-based
    learning_rate: float
    train_loss: float  # mean of train_step losses over the epoch, weighted by batch size
    val_loss: float
    improved: bool  # True if this epoch set a new best validation loss


@dataclass
class FitResult:
    """Outcome of :func:`fit_network`; the model already holds the best weights."""

    initial_val_loss: float
    best_val_loss: float
    best_epoch: int  # 0 means the initial weights were never beaten
    stopped: str  # the schedule's stopping rule, or "finished N epochs"
    epochs: list[EpochRecord] = field(default_factory=list)  # the epochs of this call


@dataclass
class FitProgress:
    """Where :func:`fit_network` stands after an epoch; give it back to continue exactly.

    The model's weights and optimiser state are not in it: save them at the same moment
    (``model.state_dict()``, ``model.optimizer.state_dict()``) and restore them before
    continuing. ``to_dict()`` holds plain numbers, dicts and the best weights' arrays.
    """

    schedule: dict[str, Any] | None = None  # LearningRateSchedule.state_dict(); None before the start
    round_begun: int = 0  # the round the optimiser (and weights) were last set up for
    initial_val_loss: float = math.nan
    best_epoch: int = 0
    best_state: dict[str, np.ndarray] | None = None  # the weights with the best validation loss

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "FitProgress":
        progress = cls(**{f.name: values[f.name] for f in fields(cls)})
        progress.best_state = {k: np.array(v, copy=True) for k, v in (progress.best_state or {}).items()} or None
        return progress


def _train_batches(model, batches: Iterable[tuple[np.ndarray, np.ndarray]], epoch: int) -> float:
    """Train on every batch once; return the sample-weighted mean training loss."""
    weighted_loss_sum = 0.0
    sample_count = 0
    for x, y in batches:
        batch_size = len(x)
        weighted_loss_sum += model.train_step(x, y) * batch_size
        sample_count += batch_size
    if sample_count == 0:
        raise ValueError(f"train_batches_fn({epoch}) yielded no samples")
    return weighted_loss_sum / sample_count


def _begin_epoch(model, schedule: LearningRateSchedule, progress: FitProgress, base_lr: float) -> None:
    """Set the epoch's learning rate; at a new round, reset the optimiser and (after the
    first round) go back to the best weights."""
    new_round = schedule.round != progress.round_begun
    if new_round and progress.round_begun:
        model.load_state_dict(progress.best_state)
    model.optimizer.learning_rate = schedule.learning_rate(base_lr, schedule.epochs_done)
    if new_round:
        model.optimizer.reset()
        progress.round_begun = schedule.round


def _train_epoch(model, train_batches_fn, val_loss_fn, schedule: LearningRateSchedule, progress: FitProgress):
    epoch, round_index = schedule.epochs_done + 1, schedule.round - 1
    rate = model.optimizer.learning_rate
    train_loss = _train_batches(model, train_batches_fn(epoch), epoch)
    val_loss = float(val_loss_fn(model))
    decision = schedule.end_epoch(val_loss)
    if decision.improved:
        progress.best_state, progress.best_epoch = model.state_dict(), epoch
    progress.schedule = schedule.state_dict()
    return EpochRecord(epoch, round_index, rate, train_loss, val_loss, decision.improved)


def fit_network(
    model,
    train_batches_fn: Callable[[int], Iterable[tuple[np.ndarray, np.ndarray]]],
    val_loss_fn: Callable[[Any], float],
    config: TrainConfig,
    progress: Callable[[EpochRecord], None] | None = None,
    state: FitProgress | None = None,
) -> FitResult:
    """Train ``model`` epoch by epoch under ``config``'s schedule; keep the best weights.

    Args:
        model: e.g. a :class:`tinct.numpynet.Network`; its ``optimizer.learning_rate`` is set
            before every epoch, and its optimiser is reset at the start of every round.
        train_batches_fn: ``epoch -> iterable of (x (N, D_in), y (N, D_out))`` mini-batches
            for that epoch (1-based epoch number, so the caller can seed its shuffling).
        val_loss_fn: ``model -> float``; lower is better. A NaN counts as no improvement.
        config: ``lr``, ``epochs`` (the budget over all rounds), ``schedule`` and its keys,
            ``early_stopping`` (see :mod:`tinct.train.schedule`).
        progress: called with an :class:`EpochRecord` after every epoch.
        state: a :class:`FitProgress` kept up to date after every epoch (so ``progress`` may
            save it). To continue an interrupted run, pass the state saved after its last
            epoch, with the model's weights and optimiser restored to that moment: the run then
            ends exactly as an uninterrupted one.

    Returns:
        The history; ``model`` holds the best weights when the function returns.
    """
    state = state if state is not None else FitProgress()
    schedule = LearningRateSchedule(config, steps_per_epoch=1)  # the NumPy loop's steps are epochs
    if state.schedule is None:  # a fresh start; otherwise the caller restored the model and optimiser
        state.initial_val_loss = float(val_loss_fn(model))
        schedule.start_from(state.initial_val_loss)
        state.best_state = model.state_dict()
    else:
        schedule.load_state_dict(state.schedule)
    history: list[EpochRecord] = []
    while not schedule.stopped and schedule.epochs_done < config.epochs:
        _begin_epoch(model, schedule, state, config.lr)
        history.append(_train_epoch(model, train_batches_fn, val_loss_fn, schedule, state))
        if progress is not None:
            progress(history[-1])
    model.load_state_dict(state.best_state)
    stopped = schedule.stopped or f"finished {epochs_text(schedule.epochs_done)}"
    return FitResult(state.initial_val_loss, schedule.best_val_loss, state.best_epoch, stopped, history)


# ---------------------------------------------------------------------------------------
# a NumPy colour model on datasets


def dataset_arrays(dataset, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack a dataset's items into arrays.

    Args:
        dataset: indexable, items ``{"l": (1, S, S), "ab": (2, S, S)}`` in Lab units.
        limit: use only the first ``limit`` items.

    Returns:
        ``l (N, 1, S, S)`` and ``ab (N, 2, S, S)``, float32 torch tensors.
    """
    count = len(dataset) if not limit else min(len(dataset), limit)
    if count == 0:
        return torch.zeros(0, 1, 1, 1), torch.zeros(0, 2, 1, 1)
    items = [dataset[i] for i in range(count)]
    l = torch.stack([torch.as_tensor(item["l"]) for item in items]).float()
    ab = torch.stack([torch.as_tensor(item["ab"]) for item in items]).float()
    if l.ndim != 4 or l.shape[1] != 1 or ab.shape != (count, 2, *l.shape[2:]):
        raise ValueError(f"expected items l (1, S, S) and ab (2, S, S), got {tuple(l.shape[1:])} and {tuple(ab.shape[1:])}")
    return l, ab


def data_loss(network: Network, x: np.ndarray, y: np.ndarray) -> float:
    """The network's data loss (no weight penalty) on ``x (N, D_in)``, ``y (N, D_out)``, in chunks.

    Same formula as the training loss, ``1/(2N) sum_i sum_c (output_ic - y_ic)^2``.
    """
    total = 0.0
    for start in range(0, len(x), _VALIDATION_CHUNK):
        difference = network.predict(x[start : start + _VALIDATION_CHUNK]) - y[start : start + _VALIDATION_CHUNK]
        total += float(np.sum(difference.astype(np.float64) ** 2))
    return total / (2.0 * len(x))


def _is_augmented(dataset) -> bool:
    # LabDataset draws new crops / flips per epoch; anything else is read once.
    return bool(getattr(dataset, "random_crop", False) or getattr(dataset, "hflip", False))


class _KeepMoments:
    """An optimiser whose ``reset`` does nothing (``reset_optimizer_each_round = false``)."""

    def __init__(self, optimizer: Optimizer):
        self._optimizer = optimizer

    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._optimizer.learning_rate = value

    def step(self, parameters, gradients) -> None:
        self._optimizer.step(parameters, gradients)

    def reset(self) -> None:
        return None

    def state_dict(self) -> dict:
        return self._optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._optimizer.load_state_dict(state)


def _optimizer(model: NumpyColorModel, c: TrainConfig):
    """The family's own update rule, else the one ``train.optimizer`` names (``adam`` with
    ``betas``, or plain ``sgd``); wrapped to keep its moments across rounds when asked."""
    optimizer = model.own_optimizer(c)
    if optimizer is None:
        optimizer = _train_optimizer(c)
    return optimizer if c.reset_optimizer_each_round else _KeepMoments(optimizer)


def _train_optimizer(c: TrainConfig) -> Optimizer:
    if c.optimizer == "sgd":
        return SGD(learning_rate=c.lr)
    return Adam(learning_rate=c.lr, beta1=c.betas[0], beta2=c.betas[1])


def _thread_limit(threads: int):
    if not threads:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it NumPy keeps its default
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


class _FitData:
    """The network examples :class:`NumpyFit` trains and validates on, per epoch."""

    def __init__(self, model: NumpyColorModel, train_data, val_data, c: TrainConfig):
        self.model, self.train_data, self.c = model, train_data, c
        val_l, val_ab = dataset_arrays(val_data, c.max_val_images or None)
        self.validation = model.examples(val_l, val_ab) if len(val_l) > 0 else None
        self.fixed = None if _is_augmented(train_data) else model.examples(*dataset_arrays(train_data))
        if self.fixed is not None and len(self.fixed[0]) == 0:
            raise ValueError("the training split is empty")
        self.current: tuple[np.ndarray, np.ndarray] | None = None  # the latest epoch's augmented examples

    def examples(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self.fixed is not None:
            return self.fixed
        self.train_data.set_epoch(epoch - 1)  # the trainer's epochs are 0-based
        self.current = self.model.examples(*dataset_arrays(self.train_data))
        return self.current

    def batches(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The epoch's shuffled mini-batches: a function of (seed, epoch), so a resume sees the same."""
        c = self.c
        x, y = self.examples(epoch)
        order = np.random.default_rng([c.seed, epoch]).permutation(len(x))
        steps = math.ceil(len(x) / c.batch_size)
        if c.max_steps_per_epoch:
            steps = min(steps, c.max_steps_per_epoch)
        for step in range(steps):
            rows = order[step * c.batch_size : (step + 1) * c.batch_size]
            # np.take gathers rows about twice as fast as fancy indexing x[rows].
            yield np.take(x, rows, axis=0), np.take(y, rows, axis=0)

    def val_loss(self, network: Network) -> float:
        if self.validation is not None:
            return data_loss(network, *self.validation)
        # No validation split: judge by the training examples (the latest epoch's crops).
        return data_loss(network, *(self.fixed or self.current or self.examples(1)))


class NumpyFit:
    """Trains one :class:`NumpyColorModel` on two datasets under a train config.

    ``train_data``, ``val_data``: indexable datasets of ``{"l": (1, S, S), "ab": (2, S, S)}``
    in Lab units (``val_data`` may be empty: the training loss then decides).
    """

    def __init__(self, model: NumpyColorModel, train_data, val_data, train_config: TrainConfig):
        check_train_config(train_config)
        self.model = model
        self.train_data, self.val_data = train_data, val_data
        self.config = train_config
        self.progress = FitProgress()

    def run(
        self, callback: Callable[[int, dict[str, float]], None] | None = None, resume: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Train; the model ends holding the best weights.

        Args:
            callback: ``callback(epoch, metrics)`` after every epoch, ``epoch`` 1-based over
                the whole run and ``metrics`` with ``train_loss``, ``val_loss`` (when there is
                validation data), ``val_rgb_mse`` (plain mean of squared RGB errors in [0, 1]
                units, whatever ``value_scale``), ``lr``, ``round`` and ``seconds``.
            resume: what :meth:`state` returned in the callback of an earlier run with the
                same data and train config, the model holding that moment's weights: the run
                goes on from that epoch and ends exactly as an uninterrupted one would.

        Returns:
            ``{"epochs": ..., "best_epoch": ..., "best_val_loss": ..., "initial_val_loss": ...,
            "stopped": ...}`` (epochs over the whole run).
        """
        c, network = self.config, self.model.network
        with _thread_limit(c.threads):
            data = _FitData(self.model, self.train_data, self.val_data, c)
            network.optimizer = _optimizer(self.model, c)
            if resume:
                self.progress = FitProgress.from_dict(resume["progress"])
                network.optimizer.load_state_dict(resume["optimizer"])
            hook = self._epoch_hook(callback, data.validation is not None)
            result = fit_network(network, data.batches, data.val_loss, c, progress=hook, state=self.progress)
        best = result.best_val_loss
        return {
            "epochs": int(self.progress.schedule["epochs_done"]) if self.progress.schedule else 0,
            "best_epoch": result.best_epoch,
            "best_val_loss": best if math.isfinite(best) else math.nan,
            "initial_val_loss": result.initial_val_loss,
            "stopped": result.stopped,
        }

    def state(self) -> dict[str, Any]:
        """Inside :meth:`run`'s callback: the progress and optimiser state to resume from.

        ``{"progress": FitProgress.to_dict(), "optimizer": optimizer.state_dict()}``: numbers
        and NumPy arrays (the best weights so far, Adam's moments)."""
        return {"progress": self.progress.to_dict(), "optimizer": self.model.network.optimizer.state_dict()}

    def _epoch_hook(self, callback, has_validation: bool) -> Callable[[EpochRecord], None]:
        """Reports each epoch to ``callback`` with its metrics."""
        outputs_per_example = self.model.network.output_size
        squared_scale = float(self.model.value_scale) ** 2
        started = [time.perf_counter()]

        def after_epoch(record: EpochRecord) -> None:
            metrics = {"train_loss": record.train_loss}
            if has_validation:
                metrics["val_loss"] = record.val_loss
                # data loss = sum of squares / (2N) over D outputs -> plain mean = 2 loss / D,
                # then from network units to [0, 1] RGB units.
                metrics["val_rgb_mse"] = 2.0 * record.val_loss / outputs_per_example / squared_scale
            metrics.update(lr=record.learning_rate, round=record.round_index + 1)
            metrics["seconds"] = round(time.perf_counter() - started[0], 3)
            if callback is not None:
                callback(record.epoch, metrics)
            started[0] = time.perf_counter()

        return after_epoch


def fit_numpy_model(
    model: NumpyColorModel,
    train_data,
    val_data,
    train_config: TrainConfig,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """``NumpyFit(model, train_data, val_data, train_config).run(callback)``: train in one call."""
    return NumpyFit(model, train_data, val_data, train_config).run(callback)


# ---------------------------------------------------------------------------------------
# the loop of ``tinct train``


class NumpyLoop:
    """Trains the NumPy model of a :class:`RunSetup` in one process: ``NumpyLoop(setup).run()``.

    A :class:`NumpyColorModel` trains through :class:`NumpyFit`, and its progress and
    optimiser are saved in ``state.pt`` after every epoch, so a resumed run ends with the same
    weights as an uninterrupted one. Any other model with ``backend = "numpy"`` brings its own
    ``fit(train_ds, val_ds, train_config, callback)``; a resumed run restarts that ``fit`` from
    the last epoch's weights for the remaining epochs (as does a state saved by an older tinct).
    """

    def __init__(self, setup: RunSetup):
        if setup.context.enabled:
            raise TrainError(f"model {setup.run.model!r} trains with NumPy in one process; run it without torchrun")
        state = setup.state
        self.setup = setup
        self.config = setup.config
        self.model = setup.model
        saved_fit = None if state is None else state.get("fit")
        fresh = state is None or state["epoch"] == 0
        self.resumable = isinstance(self.model, NumpyColorModel) and (fresh or "progress" in (saved_fit or {}))
        self.epochs_before = 0 if state is None else int(state["epoch"])
        self.best_loss = math.inf if state is None else float(state.get("best_val_loss", math.inf))
        self.resume = to_arrays(saved_fit) if self.resumable and saved_fit else None
        self.fit: NumpyFit | None = None
        self.last_metrics: dict[str, Any] = {}
        self.sample_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self.metrics_log: MetricsLog | None = None

    def run(self) -> TrainResult:
        setup, c = self.setup, self.config
        if setup.state is not None:
            self.model.load_state_dict({k: v.numpy() for k, v in setup.state["model"].items()})
            restore_rng(setup.state["processes"][0]["rng"])
        if self.epochs_before >= c.epochs:
            why = f"nothing to do: finished {epochs_text(self.epochs_before)} (raise train.epochs to continue)"
            return TrainResult(setup.run_dir, self.epochs_before, 0, self.best_loss, why, {}, self.model)
        write_config(setup.run_dir, setup.run)
        self.sample_batch = setup.sample_batch()
        self.metrics_log = MetricsLog(setup.run_dir, self.epochs_before, c.tensorboard, self.epochs_before)
        if setup.state is None:
            self._save_state(0)
        try:
            self._fit()
        finally:
            self.metrics_log.close()
        epochs_done = int(self.last_metrics.get("epoch", self.epochs_before))
        # NumPy models count their own steps; global_step stays 0 for them.
        why = f"finished {epochs_text(epochs_done)}"
        return TrainResult(setup.run_dir, epochs_done, 0, self.best_loss, why, dict(self.last_metrics), self.model)

    def _fit(self) -> None:
        setup, c = self.setup, self.config
        if not self.resumable:  # fit counts its epochs from 1 again
            c = dataclasses.replace(c, epochs=c.epochs - self.epochs_before)
        if not isinstance(self.model, NumpyColorModel):
            self.model.fit(setup.train_ds, setup.val_ds, train_config=c, callback=self._epoch_end)
            return
        self.fit = NumpyFit(self.model, setup.train_ds, setup.val_ds, c)
        self.fit.run(self._epoch_end, self.resume)

    def _save_state(self, epochs_done: int) -> None:
        setup = self.setup
        fit = self.fit.state() if self.fit is not None and self.resumable and epochs_done else None
        save_run_state(
            setup.run_dir, epoch=epochs_done, step_in_epoch=0, global_step=epochs_done, model=self.model,
            processes=[{"rng": capture_rng()}], best_val_loss=self.best_loss, last_metrics=self.last_metrics,
            manifest=setup.manifest, world_size=1, config=setup.run.to_dict(), fit=fit,
        )  # fmt: skip

    def _epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """The fit's callback: validate, write the epoch's files, save the resume state."""
        setup, c = self.setup, self.config
        epochs_done = int(epoch) if self.resumable else self.epochs_before + int(epoch)
        values = {k: float(v) for k, v in metrics.items()}
        validation = validate(self.model, setup.val_ds, c, setup.context, setup.device)
        values.update({k: v for k, v in validation.items() if k not in values})
        decisive = values.get("val_loss", values.get("train_loss", math.nan))
        improved = decisive < self.best_loss
        self.best_loss = min(self.best_loss, decisive) if not math.isnan(decisive) else self.best_loss
        row = {"epoch": epochs_done, **values, "best": int(improved)}
        self.last_metrics = row
        write_epoch_files(
            setup.run_dir, self.model, row, improved=improved, metrics_log=self.metrics_log, log_step=epochs_done,
            sample_batch=self.sample_batch, device=setup.device, manifest=setup.manifest,
            extra={"train_config": c.to_dict(), "data_config": setup.run.data}, keep_every_epoch=c.keep_every_epoch,
        )  # fmt: skip
        self._save_state(epochs_done)
        setup.log(f"epoch {epochs_done}/{c.epochs}  " + "  ".join(f"{k} {short(v)}" for k, v in values.items()))
