"""Training: any registered model on the user's photos, resumable, on one or N processes.

>>> from tinct.train import resolve_run_config, train                     # doctest: +SKIP
>>> run = resolve_run_config(preset="tinctnet", sources=["~/photos"])    # doctest: +SKIP
>>> result = train(run, "runs/first")                                  # doctest: +SKIP
>>> result = train(run, "runs/first", resume=True)  # after Ctrl-C / kill # doctest: +SKIP

The command line is ``tinct train`` (``tinct train --help``); docs/training.md explains the
run folder, presets, ``--set`` overrides, resuming and ``torchrun``.
"""

from tinct.train.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
    apply_overrides,
    list_presets,
    load_preset,
    parse_override,
    resolve_run_config,
)
from tinct.train.schedule import EpochDecision, LearningRateSchedule
from tinct.train.trainer import RUN_FILES, TrainError, TrainResult, build_optimizer, check_run_dir, prepare_run_dir, train

__all__ = [
    "ConfigError",
    "EpochDecision",
    "LearningRateSchedule",
    "RUN_FILES",
    "RunConfig",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "apply_overrides",
    "build_optimizer",
    "check_run_dir",
    "list_presets",
    "load_preset",
    "parse_override",
    "prepare_run_dir",
    "resolve_run_config",
    "train",
]
