"""Early stopping with learning-rate rounds (the schedule of seed 000).

The recipe: train at learning rate ``lr`` until the validation loss has not improved for
``patience`` epochs; then divide the learning rate by 10, reset the optimiser's state
(Adam's moments and step count) and go on; do this for ``rounds`` rounds in total
(``lr, lr/10, ..., lr/10^(rounds-1)``). The weights with the lowest validation loss seen
at any time are kept and loaded into the model at the end.

:func:`fit_with_lr_rounds` only needs a model with ``train_step(x, y) -> float``,
``state_dict()``, ``load_state_dict(d)`` and an ``optimizer`` with a settable
``learning_rate`` and ``reset()`` -- e.g. :class:`tinct.nn.Network`. Data access is left
to the caller through two callables, so the same function serves any data pipeline.

Example::

    rng = np.random.default_rng(0)

    def train_batches(epoch: int):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 1024):
            rows = order[start : start + 1024]
            yield x_train[rows], y_train[rows]

    result = fit_with_lr_rounds(
        network,
        train_batches,
        val_loss_fn=lambda net: net.loss(x_val, y_val, include_l2=False),
        learning_rate=1e-3,
    )
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from tinct.nn.optimizers import Optimizer

__all__ = ["EpochRecord", "LrRoundsResult", "RoundsState", "TrainableModel", "fit_with_lr_rounds"]


class TrainableModel(Protocol):
    """What :func:`fit_with_lr_rounds` needs from a model.

    ``state_dict()`` must return copies (not live views), since it is used to keep the best
    weights while training continues.
    """

    optimizer: Optimizer

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float: ...

    def state_dict(self) -> dict[str, np.ndarray]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


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
class LrRoundsResult:
    """Outcome of :func:`fit_with_lr_rounds`; the model already holds the best weights."""

    initial_val_loss: float
    best_val_loss: float
    best_epoch: int  # 0 means the initial weights were never beaten
    stopped_because: str  # "rounds completed", "max_epochs reached" or "no better validation loss for N epochs"
    epochs: list[EpochRecord] = field(default_factory=list)  # the epochs of this call

    @property
    def epochs_run(self) -> int:
        return len(self.epochs)


@dataclass
class RoundsState:
    """Where :func:`fit_with_lr_rounds` stands after an epoch; give it back to continue exactly.

    The model's weights and optimiser state are not in it: save them at the same moment
    (``model.state_dict()``, ``model.optimizer.state_dict()``) and restore them before
    continuing. ``to_dict()`` holds plain numbers and the best weights' arrays.
    """

    epoch: int = 0  # epochs done, over all rounds
    round_index: int = 0  # 0-based round of the latest epoch
    epochs_without_improvement: int = 0  # in the current round (ends it at ``patience``)
    epochs_since_best: int = 0  # over all rounds (ends training at ``early_stopping``)
    initial_val_loss: float = math.nan
    best_val_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict[str, np.ndarray] | None = None  # the weights with the best validation loss

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RoundsState":
        state = cls(**{f.name: values[f.name] for f in fields(cls)})
        state.best_state = {k: np.array(v, copy=True) for k, v in (state.best_state or {}).items()} or None
        return state


def _validate_arguments(
    learning_rate: float, rounds: int, patience: int, lr_divisor: float, max_epochs: int, min_improvement: float
) -> None:
    if not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience!r}")
    if not lr_divisor > 1:
        raise ValueError(f"lr_divisor must be > 1, got {lr_divisor!r}")
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs!r}")
    if not min_improvement >= 0:
        raise ValueError(f"min_improvement must be >= 0, got {min_improvement!r}")


def _run_epoch(
    model: TrainableModel, batches: Iterable[tuple[np.ndarray, np.ndarray]], epoch: int
) -> float:
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


def _begin_round(model: TrainableModel, state: RoundsState, rate: float, restart_from_best: bool) -> None:
    if restart_from_best and state.round_index > 0:
        model.load_state_dict(state.best_state)
    model.optimizer.learning_rate = rate
    model.optimizer.reset()


def _stop_reason(state: RoundsState, rounds: int, patience: int, max_epochs: int, early_stopping: int) -> str:
    """Why training ends before the next epoch, or ""."""
    if state.epochs_without_improvement >= patience and state.round_index + 1 >= rounds:
        return "rounds completed"
    if state.epoch >= max_epochs:
        return "max_epochs reached"
    if early_stopping and state.epochs_since_best >= early_stopping:
        return f"no better validation loss for {early_stopping} epochs"
    return ""


def _train_epoch(model, train_batches_fn, val_loss_fn, state: RoundsState, rate: float, min_improvement: float):
    state.epoch += 1
    train_loss = _run_epoch(model, train_batches_fn(state.epoch), state.epoch)
    val_loss = float(val_loss_fn(model))
    improved = val_loss < state.best_val_loss - min_improvement
    if improved:
        state.best_val_loss, state.best_state, state.best_epoch = val_loss, model.state_dict(), state.epoch
        state.epochs_without_improvement = state.epochs_since_best = 0
    else:
        state.epochs_without_improvement += 1
        state.epochs_since_best += 1
    return EpochRecord(state.epoch, state.round_index, rate, train_loss, val_loss, improved)


def fit_with_lr_rounds(
    model: TrainableModel,
    train_batches_fn: Callable[[int], Iterable[tuple[np.ndarray, np.ndarray]]],
    val_loss_fn: Callable[[TrainableModel], float],
    learning_rate: float,
    rounds: int = 6,
    patience: int = 10,
    lr_divisor: float = 10.0,
    max_epochs: int = 1000,
    min_improvement: float = 0.0,
    restart_from_best: bool = True,
    progress: Callable[[EpochRecord], None] | None = None,
    early_stopping: int = 0,
    state: RoundsState | None = None,
) -> LrRoundsResult:
    """Train with early stopping, dividing the learning rate after each plateau.

    Round ``r`` (0-based) trains at ``learning_rate / lr_divisor**r`` with freshly reset
    optimiser state and ends once ``patience`` consecutive epochs brought no new best
    validation loss (improvement means ``val < best - min_improvement``). The best
    validation loss is tracked across rounds; the initial weights count as epoch 0.

    Args:
        model: e.g. a :class:`tinct.nn.Network`; its ``optimizer.learning_rate`` is
            overwritten every round (and left at the last round's value).
        train_batches_fn: ``epoch -> iterable of (x (N, D_in), y (N, D_out))`` mini-batches
            for that epoch (1-based epoch number, so the caller can seed its shuffling).
        val_loss_fn: ``model -> float``; lower is better. A NaN counts as no improvement.
        learning_rate: learning rate of the first round.
        rounds: number of rounds (seed 000: 6).
        patience: epochs without improvement that end a round (seed 000: 10).
        lr_divisor: learning-rate divisor between rounds (seed 000: 10).
        max_epochs: budget over all rounds; training stops early when it is used up.
        min_improvement: minimum decrease of the validation loss that counts as progress.
        restart_from_best: if True, each new round starts from the best weights so far
            rather than from the weights at the end of the plateau.
        progress: called with an :class:`EpochRecord` after every epoch.
        early_stopping: stop after this many epochs without improvement, over rounds (0: off).
        state: a :class:`RoundsState` that is kept up to date after every epoch (so
            ``progress`` may save it). To continue an interrupted run, pass the state saved
            after its last epoch, with the model's weights and optimiser restored to that
            moment: the run then ends exactly as an uninterrupted one.

    Returns:
        The history; ``model`` holds the best weights when the function returns.
    """
    _validate_arguments(learning_rate, rounds, patience, lr_divisor, max_epochs, min_improvement)
    state = state if state is not None else RoundsState()
    if state.epoch == 0:  # a fresh start; otherwise the caller restored the model and optimiser
        state.initial_val_loss = float(val_loss_fn(model))
        state.best_val_loss = state.initial_val_loss if not math.isnan(state.initial_val_loss) else math.inf
        state.best_state = model.state_dict()
        _begin_round(model, state, learning_rate, restart_from_best)
    history: list[EpochRecord] = []
    while not (stopped_because := _stop_reason(state, rounds, patience, max_epochs, early_stopping)):
        if state.epochs_without_improvement >= patience:
            state.round_index += 1
            state.epochs_without_improvement = 0
            _begin_round(model, state, learning_rate / lr_divisor**state.round_index, restart_from_best)
        rate = learning_rate / lr_divisor**state.round_index
        history.append(_train_epoch(model, train_batches_fn, val_loss_fn, state, rate, min_improvement))
        if progress is not None:
            progress(history[-1])

    model.load_state_dict(state.best_state)
    return LrRoundsResult(
        initial_val_loss=state.initial_val_loss,
        best_val_loss=state.best_val_loss,
        best_epoch=state.best_epoch,
        stopped_because=stopped_because,
        epochs=history,
    )
