"""Shared machinery of the NumPy model families (seeds 000 and 003): weights, fit, schedules.

A NumPy family wraps one :class:`tinct.nn.Network` (hand-written backprop, no autograd) and
says how a batch of Lab images becomes network examples (``examples``) and how network
outputs become ab (``predict_ab``). Everything else is here:

* ``state_dict`` / ``load_state_dict`` / ``num_parameters`` (the network's arrays, keyed
  ``layers.{i}.weight`` (fan_in, fan_out) and ``layers.{i}.bias``);
* ``fit(train_data, val_data, train_config, callback)``, which the trainer delegates to;
  ``fit_state()`` (in the callback) and ``fit(..., resume=state)`` continue an interrupted
  run exactly where it stopped (the trainer's ``--resume``).

How ``fit`` reads the trainer's :class:`~tinct.train.config.TrainConfig`:

==========================  ==================================================================
``schedule="plateau-rounds"``  :func:`tinct.nn.fit_with_lr_rounds`: ``rounds`` rounds at
                            ``lr, lr * lr_decay, ...``; a round ends after ``patience`` epochs
                            without a better validation loss and the next one restarts from the
                            best weights; Adam's moments are reset at each round unless
                            ``reset_optimizer_each_round`` is false (seed 000).
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
                            replace it with its own rule (:meth:`NumpyColorModel.make_optimizer`:
                            seed 003's clipped SGD, ``fc-image``'s ``update="clipped-sgd"``).
``seed``                    the shuffling order of every epoch (the initial weights come from
                            torch's global generator, which the trainer seeds with it).
``threads``                 BLAS threads (through threadpoolctl); 0 leaves NumPy's default.
==========================  ==================================================================

Not available here, and refused with a message saying what to use instead: ``weight_decay``
(the L2 penalty is part of the network's cost, so it is the model's ``l2_lambda``),
``grad_clip``, ``warmup_steps`` and SGD ``momentum``.

The model always ends ``fit`` holding the weights with the best validation loss, and the
validation loss is ``1/(2N) sum (output - target)^2`` on the validation examples, in network
units (the weight penalty left out, whatever the training loss), so it can be compared
across epochs and rounds. ``val_rgb_mse`` is the same error as a plain mean in [0, 1] RGB
units (divided by ``value_scale**2`` for a model working in [0, 255]).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from tinct.nn import SGD, Adam, EpochRecord, Network, RoundsState, fit_with_lr_rounds

__all__ = ["NumpyColorModel", "HIDDEN_ACTIVATIONS", "check_mlp_config", "dataset_arrays", "initialisation_seed"]

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")

_VALIDATION_CHUNK = 8192  # rows per forward pass when scoring validation examples


def initialisation_seed() -> int:
    """A weight-initialisation seed drawn from torch's global generator.

    The trainer seeds torch with ``train.seed`` before it builds a model, so NumPy families
    start from the same weights for the same seed, as the torch families do.
    """
    return int(torch.randint(0, 2**31 - 1, ()).item())


def check_mlp_config(name: str, config) -> None:
    """ValueError naming model ``name`` and the key when an MLP family's ``input_size``,
    ``activation`` or ``hidden`` layer sizes cannot be used."""
    if config.input_size < 1:
        raise ValueError(f"{name}: input_size must be >= 1, got {config.input_size}")
    if config.activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"{name}: activation must be one of {', '.join(HIDDEN_ACTIVATIONS)}, got {config.activation!r}")
    if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in config.hidden):
        raise ValueError(f"{name}: hidden must be a list of layer sizes >= 1, got {list(config.hidden)}")


def dataset_arrays(dataset, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
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


def _is_augmented(dataset) -> bool:
    # LabDataset draws new crops / flips per epoch; anything else is read once.
    return bool(getattr(dataset, "random_crop", False) or getattr(dataset, "hflip", False))


class _KeepMoments:
    """An optimiser whose ``reset`` does nothing (``reset_optimizer_each_round = false``)."""

    def __init__(self, optimizer):
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


def _check_train_config(c) -> None:
    refused = [
        (c.weight_decay, "train.weight_decay", "the L2 penalty of a NumPy model is model.l2_lambda"),
        (c.grad_clip, "train.grad_clip", "gradient clipping is not implemented for NumPy models"),
        (c.warmup_steps, "train.warmup_steps", "learning-rate warm-up is not implemented for NumPy models"),
    ]
    for value, key, why in refused:
        if value:
            raise ValueError(f"{key}={value}: {why}; set it to 0")
    if c.optimizer == "sgd" and c.momentum:
        raise ValueError(f"train.momentum={c.momentum}: tinct.nn.SGD has no momentum; set train.momentum=0")
    if c.optimizer not in ("adam", "sgd"):
        raise ValueError(f"train.optimizer={c.optimizer!r}: NumPy models use adam or sgd")


def _train_optimizer(c):
    """The update rule ``train.optimizer`` names (``adam`` with ``betas``, or plain ``sgd``)."""
    if c.optimizer == "sgd":
        return SGD(learning_rate=c.lr)
    return Adam(learning_rate=c.lr, beta1=c.betas[0], beta2=c.betas[1])


def _epoch_learning_rate(c, epochs_done: int) -> float:
    """Learning rate of the epoch after ``epochs_done`` for the per-epoch schedules."""
    if c.schedule == "step":
        return c.lr * c.lr_decay ** (epochs_done // c.step_epochs)
    if c.schedule == "cosine":
        progress = min(1.0, epochs_done / max(1, c.epochs - 1))
        return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return c.lr


def _thread_limit(threads: int):
    if not threads:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it NumPy keeps its default
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


class NumpyColorModel:
    """Base class of the NumPy families; subclasses set ``Config`` and build ``self.network``.

    Subclasses implement:

    * ``examples(l, ab) -> (x (N, D_in), y (N, D_out))``: network inputs and RGB targets in
      [0, 1] from ``l (B, 1, S, S)`` and ``ab (B, 2, S, S)`` torch tensors in Lab units;
    * ``predict_ab(l) -> ab``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    backend: ClassVar[str] = "numpy"

    network: Network
    #: pixel values in network units: RGB in [0, value_scale] (seed 003 as written: 255).
    value_scale: float = 1.0

    # -- weights ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the network's arrays: ``layers.{i}.weight`` (fan_in, fan_out), ``layers.{i}.bias``."""
        return self.network.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load arrays saved by :meth:`state_dict` (ValueError naming a missing key or bad shape)."""
        self.network.load_state_dict(state)

    def num_parameters(self) -> int:
        return int(sum(array.size for array in self.network.parameters()))

    def examples(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- training --------------------------------------------------------------------------
    @staticmethod
    def check_train_config(train_config) -> None:
        """ValueError naming a train setting that NumPy models cannot honour (module docstring)."""
        _check_train_config(train_config)

    def make_optimizer(self, train_config):
        """The update rule ``fit`` uses: ``train.optimizer`` unless the family has its own."""
        return _train_optimizer(train_config)

    def data_loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The network's data loss (no weight penalty) on ``(x, y)``, computed in chunks.

        Same formula as the training loss, ``1/(2N) sum_i sum_c (output_ic - y_ic)^2``.
        """
        total = 0.0
        for start in range(0, len(x), _VALIDATION_CHUNK):
            difference = self.network.predict(x[start : start + _VALIDATION_CHUNK]) - y[start : start + _VALIDATION_CHUNK]
            total += float(np.sum(difference.astype(np.float64) ** 2))
        return total / (2.0 * len(x))

    def fit(
        self,
        train_data,
        val_data,
        train_config,
        callback: Callable[[int, dict[str, float]], None] | None = None,
        resume: Mapping[str, Any] | None = None,
    ) -> dict:
        """Train on ``train_data``, choosing weights by the loss on ``val_data``.

        Args:
            train_data, val_data: indexable datasets of ``{"l": (1, S, S), "ab": (2, S, S)}``
                in Lab units (``val_data`` may be empty: the training loss then decides).
            train_config: a :class:`tinct.train.config.TrainConfig` (see the module docstring).
            callback: ``callback(epoch, metrics)`` after every epoch, ``epoch`` 1-based over
                the whole run and ``metrics`` with ``train_loss``, ``val_loss`` (when there is
                validation data), ``val_rgb_mse`` (plain mean of squared RGB errors in [0, 1]
                units, whatever ``value_scale``), ``lr``, ``round`` and ``seconds``.
            resume: what :meth:`fit_state` returned in the callback of an earlier call with the
                same data and ``train_config``, this model holding that moment's weights: the
                run goes on from that epoch and ends exactly as an uninterrupted call would.

        Returns:
            ``{"epochs": ..., "best_epoch": ..., "best_val_loss": ..., "initial_val_loss": ...,
            "stopped": ...}`` (epochs over the whole run); the model holds the best weights.
        """
        c = train_config
        self.check_train_config(c)
        with _thread_limit(c.threads):
            return self._fit(_FitData(self, train_data, val_data, c), c, callback, resume)

    def fit_state(self) -> dict[str, Any]:
        """Inside :meth:`fit`'s callback: the schedule's and optimiser's state to resume from.

        ``{"rounds": RoundsState.to_dict(), "optimizer": optimizer.state_dict()}``: numbers
        and NumPy arrays (the best weights so far, Adam's moments)."""
        return {"rounds": self._rounds.to_dict(), "optimizer": self.network.optimizer.state_dict()}

    def _fit(self, data: "_FitData", c, callback, resume) -> dict:
        network = self.network
        optimizer = self.make_optimizer(c)
        network.optimizer = optimizer if c.reset_optimizer_each_round else _KeepMoments(optimizer)
        self._rounds = RoundsState.from_dict(resume["rounds"]) if resume else RoundsState()
        if resume:
            network.optimizer.load_state_dict(resume["optimizer"])
        plateau = c.schedule == "plateau-rounds"
        result = fit_with_lr_rounds(
            network,
            data.batches,
            data.val_loss,
            learning_rate=c.lr,
            rounds=c.rounds if plateau else 1,
            patience=c.patience if plateau else c.epochs,
            lr_divisor=1.0 / c.lr_decay,
            max_epochs=c.epochs,
            progress=self._epoch_hook(c, callback, data.validation is not None),
            early_stopping=c.early_stopping,
            state=self._rounds,
        )
        best = result.best_val_loss
        return {
            "epochs": self._rounds.epoch,
            "best_epoch": result.best_epoch,
            "best_val_loss": best if math.isfinite(best) else math.nan,
            "initial_val_loss": result.initial_val_loss,
            "stopped": result.stopped_because,
        }

    def _epoch_hook(self, c, callback, has_validation: bool) -> Callable[[EpochRecord], None]:
        """Reports each epoch to ``callback`` and sets the next epoch's rate (step, cosine)."""
        outputs_per_example = self.network.output_size
        squared_scale = float(self.value_scale) ** 2
        started = [time.perf_counter()]

        def after_epoch(record: EpochRecord) -> None:
            metrics = {"train_loss": record.train_loss}
            if has_validation:
                metrics["val_loss"] = record.val_loss
                # data loss = sum of squares / (2N) over D outputs -> plain mean = 2 loss / D,
                # then from network units to [0, 1] RGB units.
                metrics["val_rgb_mse"] = 2.0 * record.val_loss / outputs_per_example / squared_scale
            metrics.update(lr=self.network.optimizer.learning_rate, round=record.round_index + 1)
            metrics["seconds"] = round(time.perf_counter() - started[0], 3)
            if c.schedule in ("step", "cosine"):
                self.network.optimizer.learning_rate = _epoch_learning_rate(c, record.epoch)
            if callback is not None:
                callback(record.epoch, metrics)
            started[0] = time.perf_counter()

        return after_epoch


class _FitData:
    """The network examples :meth:`NumpyColorModel.fit` trains and validates on, per epoch."""

    def __init__(self, model: NumpyColorModel, train_data, val_data, c):
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

    def val_loss(self, _network) -> float:
        if self.validation is not None:
            return self.model.data_loss(*self.validation)
        # No validation split: judge by the training examples (the latest epoch's crops).
        return self.model.data_loss(*(self.fixed or self.current or self.examples(1)))
