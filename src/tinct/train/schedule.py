"""Learning-rate schedules and stopping rules, as plain state that survives a resume.

The one schedule of both training loops: the torch loop asks it per optimisation step
(``steps_per_epoch`` steps an epoch), the NumPy loop per epoch (``steps_per_epoch=1``, so a
"step" is an epoch). It gives the learning rate of a parameter group from the group's base
rate, so one schedule drives every optimiser of a model (a GAN's generator and
discriminator keep their own base rates); :meth:`LearningRateSchedule.factor` is that rate
for a base of 1:

    ``none``            1 (plus warm-up)
    ``cosine``          half a cosine from 1 at step 0 to ``min_lr / lr`` at the last step
    ``step``            ``lr_decay ** (epoch // step_epochs)``
    ``plateau-rounds``  seed 000's rule: train until the validation loss has not improved for
                        ``patience`` epochs, then divide the learning rate by 10
                        (``1 / lr_decay``) and start the next round; after ``rounds`` rounds, stop.

Early stopping (``early_stopping`` epochs without a better validation loss) works with any
schedule. "Better" means strictly lower than the best validation loss of the run so far.

>>> from tinct.train.settings import TrainConfig
>>> s = LearningRateSchedule(TrainConfig(schedule="plateau-rounds", patience=1, rounds=2), 10)
>>> [s.end_epoch(v).stop for v in (1.0, 1.0, 1.0)]
[False, False, True]
>>> s.factor(0)
0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tinct.train.settings import TrainConfig

__all__ = ["LearningRateSchedule", "EpochDecision"]


@dataclass(frozen=True)
class EpochDecision:
    """What the end of an epoch decided."""

    improved: bool  # the validation loss is the best of the run so far
    new_round: bool  # plateau-rounds started a new round (the learning rate just dropped)
    stop: bool  # training should end now
    reason: str = ""  # why it stops, for the log


class LearningRateSchedule:
    """Learning-rate factor per step and the end-of-epoch decisions of one run."""

    def __init__(self, config: TrainConfig, steps_per_epoch: int):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.epochs_done = 0
        self.best_val_loss = math.inf
        self.epochs_since_best = 0  # for early stopping
        self.round = 1  # plateau-rounds: 1-based round number
        self.round_epochs_since_best = 0  # plateau-rounds: the counter that ends a round
        self.stopped = ""  # why a stopping rule ended the run ("" while it runs); the epoch budget is the trainer's

    # -- learning rate ---------------------------------------------------------------------
    def learning_rate(self, base_lr: float, global_step: int) -> float:
        """The learning rate of step ``global_step`` (0-based) for a group whose base rate is ``base_lr``."""
        c = self.config
        warmup = min(1.0, (global_step + 1) / c.warmup_steps) if c.warmup_steps else 1.0
        if c.schedule == "plateau-rounds":
            # Divided by 1 / lr_decay per round, as seed 000 wrote it (lr / 10, not lr * 0.1:
            # the two differ in the last bit).
            return base_lr * warmup / (1.0 / c.lr_decay) ** (self.round - 1)
        if c.schedule == "cosine":
            total = max(1, c.epochs * self.steps_per_epoch - 1)
            progress = min(1.0, global_step / total)
            floor = c.min_lr / c.lr
            scale = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        elif c.schedule == "step":
            scale = c.lr_decay ** (global_step // self.steps_per_epoch // c.step_epochs)
        else:
            scale = 1.0
        return base_lr * (warmup * scale)

    def factor(self, global_step: int) -> float:
        """Multiplier on the base learning rate for optimisation step ``global_step`` (0-based)."""
        return self.learning_rate(1.0, global_step)

    # -- end of epoch ----------------------------------------------------------------------
    def start_from(self, initial_loss: float) -> None:
        """Count the initial weights as epoch 0 (the NumPy loop): the first epoch must beat
        ``initial_loss`` to count as an improvement (a NaN counts as no loss at all)."""
        self.best_val_loss = initial_loss if not math.isnan(initial_loss) else math.inf

    def end_epoch(self, val_loss: float) -> EpochDecision:
        """Record one finished epoch's validation loss; decide on rounds and stopping."""
        c = self.config
        self.epochs_done += 1
        improved = val_loss < self.best_val_loss  # NaN never improves
        if improved:
            self.best_val_loss = float(val_loss)
            self.epochs_since_best = 0
            self.round_epochs_since_best = 0
        else:
            self.epochs_since_best += 1
            self.round_epochs_since_best += 1
        new_round = False
        reason = ""
        if c.schedule == "plateau-rounds" and self.round_epochs_since_best >= c.patience:
            if self.round >= c.rounds:
                reason = f"plateau-rounds: round {self.round} of {c.rounds} ended without improvement"
            else:
                self.round += 1
                self.round_epochs_since_best = 0
                new_round = True
        if not reason and c.early_stopping and self.epochs_since_best >= c.early_stopping:
            reason = f"early stopping: no better validation loss for {self.epochs_since_best} epochs"
        self.stopped = reason
        return EpochDecision(improved=improved, new_round=new_round, stop=bool(reason), reason=reason)

    # -- resume ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "epochs_done": self.epochs_done,
            "best_val_loss": self.best_val_loss,
            "epochs_since_best": self.epochs_since_best,
            "round": self.round,
            "round_epochs_since_best": self.round_epochs_since_best,
            "stopped": self.stopped,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs_done = int(state["epochs_done"])
        self.best_val_loss = float(state["best_val_loss"])
        self.epochs_since_best = int(state["epochs_since_best"])
        self.round = int(state["round"])
        self.round_epochs_since_best = int(state["round_epochs_since_best"])
        self.stopped = str(state["stopped"])
