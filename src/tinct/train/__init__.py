"""Training: any registered model on the user's photos, resumable, on one or N processes.

>>> from tinct.train import resolve_run_config, train                     # doctest: +SKIP
>>> run = resolve_run_config(preset="tinctnet", sources=["~/photos"])    # doctest: +SKIP
>>> result = train(run, "runs/first")                                  # doctest: +SKIP
>>> result = train(run, "runs/first", resume=True)  # after Ctrl-C / kill # doctest: +SKIP

The command line is ``tinct train`` (``tinct train --help``); docs/training.md explains the
run folder, presets, ``--set`` overrides, resuming and ``torchrun``.
"""

from tinct.train.settings import (
    ConfigError,
    RunConfig,
    TrainConfig,
    TrainError,
    apply_overrides,
    list_presets,
    load_preset,
    parse_override,
    resolve_run_config,
)
from tinct.train.schedule import EpochDecision, LearningRateSchedule
from tinct.train.run_folder import RUN_FILES, check_run_dir, prepare_run_dir
from tinct.train.run_setup import TrainResult
from tinct.train.torch_loop import build_optimizer
from tinct.train.trainer import train

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
