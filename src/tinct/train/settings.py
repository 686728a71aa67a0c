"""Training configuration: the typed :class:`TrainConfig`, presets, and ``--set`` overrides.

A run is described by four sections, saved together as ``config.json`` in the run folder
and inside every checkpoint::

    {"model": "tinctnet",                      # registered model family
     "model_config": {...},                    # that family's Config, every field resolved
     "train": {...},                           # TrainConfig, every field resolved
     "data": {...}}                            # tinct.data.DataConfig, every field resolved

The sections are layered: defaults, then a preset (``src/tinct/presets/<name>.json``, same
four keys, any of them partial), then the command line (``--model``, ``--data``), then
``--set key=value`` overrides with dotted keys (``train.lr=1e-3``, ``model.width=16``,
``data.size=96``). Values are read as JSON when they parse (``3``, ``1e-3``, ``true``,
``["a", "b"]``) and as plain strings otherwise.

>>> run = resolve_run_config(model="tinctnet", sources=["."], overrides=["train.lr=3e-4"])
>>> run.train.lr, run.model_config["width"]
(0.0003, 32)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from tinct.errors import TinctError

__all__ = [
    "ConfigError",
    "TrainError",
    "TrainConfig",
    "RunConfig",
    "OPTIMIZERS",
    "SCHEDULES",
    "list_presets",
    "load_preset",
    "parse_override",
    "apply_overrides",
    "resolve_run_config",
]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("none", "cosine", "step", "plateau-rounds")
DEVICES = ("cpu", "cuda", "auto")
SECTIONS = ("model", "model_config", "train", "data")
# ``--set model.width=16`` is the short spelling of ``--set model_config.width=16``.
_SECTION_ALIASES = {"model": "model_config", "model_config": "model_config", "train": "train", "data": "data"}


class ConfigError(TinctError, ValueError):
    """A configuration value or key that cannot be used; the message names it."""


class TrainError(TinctError, ValueError):
    """A problem with the run the user asked for (message is one line, ready to print)."""


@dataclass
class TrainConfig:
    """How to train: optimisation, schedule, stopping, determinism, bookkeeping.

    ``batch_size`` is the *global* batch: under ``torchrun`` with N processes each one
    takes ``batch_size / N`` images per step, so a run means the same thing on any number
    of processes.
    """

    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.9  # sgd only
    betas: tuple[float, float] = (0.9, 0.999)  # adam only
    weight_decay: float = 0.0  # L2 penalty through the optimiser
    grad_clip: float = 0.0  # clip the global gradient norm to this; 0 = off
    schedule: str = "none"  # none | cosine | step | plateau-rounds
    warmup_steps: int = 0  # linear warm-up from lr / warmup_steps, with any schedule
    min_lr: float = 0.0  # cosine: the learning rate reached at the last step
    step_epochs: int = 10  # step: epochs between two decays
    lr_decay: float = 0.1  # step and plateau-rounds: the factor applied at each decay
    patience: int = 10  # plateau-rounds: epochs without a better val loss that end a round
    rounds: int = 6  # plateau-rounds: rounds (lr, lr/10, ...) before training stops
    reset_optimizer_each_round: bool = True  # plateau-rounds: forget Adam moments at a new round (seed 000)
    early_stopping: int = 0  # stop after this many epochs without a better val loss; 0 = off
    seed: int = 0
    num_workers: int = 0  # DataLoader worker processes per training process
    max_steps_per_epoch: int = 0  # cap on optimisation steps per epoch (quick runs); 0 = all
    max_val_images: int = 0  # cap on validation images; 0 = the whole validation split
    samples: int = 6  # validation images in the per-epoch sample grid; 0 = no grid
    threads: int = 0  # torch threads per process; 0 = the usable cores shared by the processes
    checkpoint_every_steps: int = 100  # resumable state mid-epoch every N steps; 0 = epoch ends only
    keep_every_epoch: bool = False  # also keep epochs/epoch_NNN.safetensors for every epoch (seed 004)
    statistics_pixels: int = 100_000  # ab pixels sampled for model.fit_statistics
    tensorboard: bool = True  # write TensorBoard logs to <run>/tensorboard when it is installed
    device: str = "cpu"  # cpu | cuda | auto
    sync_batchnorm: bool = True  # under DDP on CUDA, share batch-norm statistics across processes
    init_from: str = ""  # fine-tune: start from these weights (shipped name, checkpoint, run folder); "" = random

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first value that cannot be used."""
        _check_types(self, "train")
        betas = self.betas
        if (
            not isinstance(betas, (list, tuple))
            or len(betas) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)
        ):
            raise ConfigError(f"train.betas: expected two numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        positive = ["epochs", "batch_size", "rounds", "step_epochs"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: must be >= 1, got {getattr(self, name)}")
        non_negative = [
            "weight_decay", "grad_clip", "warmup_steps", "min_lr", "patience", "early_stopping",
            "num_workers", "max_steps_per_epoch", "max_val_images", "samples", "threads",
            "checkpoint_every_steps", "statistics_pixels", "momentum", "seed",
        ]  # fmt: skip
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}: must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr: must be > 0, got {self.lr}")
        if not 0 < self.lr_decay < 1:
            raise ConfigError(f"train.lr_decay: must be between 0 and 1, got {self.lr_decay}")
        if self.schedule == "plateau-rounds" and self.patience < 1:
            raise ConfigError("train.patience: must be >= 1 with schedule plateau-rounds")
        if self.init_from and (self.init_from.endswith(".safetensors") or os.sep in self.init_from):
            if not Path(self.init_from).expanduser().exists():
                raise ConfigError(f"train.init_from: {self.init_from}: no such checkpoint or run folder")
            # Absolute, so a run resumed from another folder still records where it started.
            self.init_from = str(Path(self.init_from).expanduser().absolute())
        for name, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("device", DEVICES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"train.{name}: must be one of {', '.join(choices)}, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build from a (partial) dict; unknown keys and ill-typed values raise ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"train.{unknown[0]}: unknown key; train keys are {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples become lists, as JSON would make them)."""
        values = dataclasses.asdict(self)
        values["betas"] = list(self.betas)
        return values


_TYPE_NAMES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _check_types(config: Any, section: str) -> None:
    # Config values arrive from JSON and the command line; give numbers their declared type
    # (an int where a float is expected is fine) and refuse the rest with the key's name.
    for f in dataclasses.fields(config):
        declared = f.type if isinstance(f.type, str) else f.type.__name__
        accepted = _TYPE_NAMES.get(declared)
        if accepted is None:
            continue
        value = getattr(config, f.name)
        bad_bool = isinstance(value, bool) and declared != "bool"
        if bad_bool or not isinstance(value, accepted):
            raise ConfigError(f"{section}.{f.name}: expected {declared}, got {value!r}")
        if declared == "float":
            setattr(config, f.name, float(value))


@dataclass
class RunConfig:
    """Everything that defines a training run (see the module docstring)."""

    model: str
    model_config: dict[str, Any]
    train: TrainConfig = field(default_factory=TrainConfig)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_config": copy.deepcopy(self.model_config),
            "train": self.train.to_dict(),
            "data": copy.deepcopy(self.data),
        }

    def data_config(self):
        """The run's data section as a :class:`tinct.data.DataConfig`."""
        from tinct.data import DataConfig

        return DataConfig.from_dict(self.data)


# ---------------------------------------------------------------------------------------
# presets


def _preset_dir() -> Path:
    return Path(str(resources.files("tinct") / "presets"))


def list_presets() -> list[str]:
    """Names of the presets shipped in ``tinct/presets``."""
    folder = _preset_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_preset(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """A preset by name (``tinct/presets/<name>.json``) or by path to a JSON file."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = _preset_dir() / f"{name_or_path}.json"
        if not path.is_file():
            known = ", ".join(list_presets()) or "none"
            raise ConfigError(f"{name_or_path}: unknown preset; presets: {known}")
    elif not path.is_file():
        raise ConfigError(f"{path}: no such preset file")
    try:
        preset = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(preset, dict):
        raise ConfigError(f"{path}: a preset is a JSON object with keys {', '.join(SECTIONS)}")
    unknown = sorted(set(preset) - set(SECTIONS) - {"description"})
    if unknown:
        raise ConfigError(f"{path}: unknown preset key {unknown[0]!r}; keys are {', '.join(SECTIONS)}, description")
    for section in ("model_config", "train", "data"):
        if not isinstance(preset.get(section, {}), dict):
            raise ConfigError(f"{path}: {section} must be a JSON object")
    return preset


# ---------------------------------------------------------------------------------------
# --set overrides


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_override(text: str) -> tuple[str, str | None, Any]:
    """``"train.lr=1e-3"`` -> ``("train", "lr", 0.001)``; ``"model=unet"`` -> ``("model", None, "unet")``."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text}: expected key=value, e.g. train.lr=1e-3")
    section, dot, name = key.partition(".")
    if not dot:
        if section != "model":
            raise ConfigError(f"--set {key}: keys look like train.lr, model.width or data.size")
        return "model", None, _parse_value(raw)
    if section not in _SECTION_ALIASES or not name or "." in name:
        raise ConfigError(f"--set {key}: unknown key; keys look like train.<name>, model.<name> or data.<name>")
    return _SECTION_ALIASES[section], name, _parse_value(raw)


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` strings to a raw (dict) run config; returns a new dict."""
    raw = copy.deepcopy(raw)
    for text in overrides:
        section, name, value = parse_override(text)
        if name is None:
            raw["model"] = value
        else:
            raw.setdefault(section, {})[name] = value
    return raw


# ---------------------------------------------------------------------------------------
# resolution


def _resolve_model(raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from tinct.models import build_config, model_class

    name = raw.get("model")
    if not name:
        raise ConfigError("no model: pass --model NAME (tinct models lists them) or a --preset")
    if not isinstance(name, str):
        raise ConfigError(f"model: expected a model name, got {name!r}")
    try:
        model_class(name)
    except KeyError as exc:
        raise ConfigError(exc.args[0]) from None
    values = raw.get("model_config") or {}
    try:
        config = build_config(name, values)
    except TypeError as exc:
        known = ", ".join(f.name for f in dataclasses.fields(model_class(name).Config))
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(model_class(name).Config)})
        if unknown:
            raise ConfigError(f"model.{unknown[0]}: model {name!r} has no such key; its keys are {known}") from None
        raise ConfigError(f"model {name!r}: {exc}") from None
    _check_types(config, "model")
    return name, dataclasses.asdict(config)


def _resolve_data(values: dict[str, Any]) -> dict[str, Any]:
    from tinct.data import DataConfig
    from tinct.data.config import parse_source

    known = {f.name for f in dataclasses.fields(DataConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"data.{unknown[0]}: unknown key; data keys are {', '.join(sorted(known))}")
    sources = values.get("sources")
    if not sources:
        raise ConfigError("no training data: pass --data FOLDER (or kind:path sources)")
    if isinstance(sources, str):
        sources = [sources]
    try:
        specs = [parse_source(str(s)) for s in sources]
        for spec in specs:
            if not spec.path.exists():
                raise ConfigError(f"{spec.path}: no such folder (data source {spec.text!r})")
        # Absolute, explicit sources, so a run resumed from another folder finds its data.
        values = {**values, "sources": [spec.canonical() for spec in specs]}
        if values.get("cache_dir"):
            values["cache_dir"] = str(Path(values["cache_dir"]).expanduser().absolute())
        config = DataConfig.from_dict(values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"data: {exc}") from None
    return config.to_dict()


def checkpoint_problem(name_or_path: str | os.PathLike, exc: Exception) -> str:
    """``"NAME: what is wrong"`` in one line, for a checkpoint that cannot be read or loaded."""
    if type(exc) is KeyError:  # not UnknownModelError, whose message is already a sentence
        detail = f"damaged checkpoint: its tinct description has no {exc.args[0]!r} entry"
    elif isinstance(exc, (TypeError, AttributeError)):
        detail = f"damaged checkpoint: its tinct description is malformed ({exc})"
    elif isinstance(exc, RuntimeError):  # torch's load_state_dict: a header line, then one per tensor
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        first = next((line for line in lines if "mismatch" in line), lines[0])
        detail = f"damaged checkpoint: its tensors do not fit the settings in its header ({first})"
    else:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        detail = detail.removeprefix(f"{name_or_path}: ")
    return f"{name_or_path}: {detail}"


def _read_initial_weights(name_or_path: str | os.PathLike) -> tuple[Path, str, dict[str, Any]]:
    """(checkpoint file, model family, its checked settings) of a ``--init`` checkpoint."""
    from tinct.models import build_config, read_checkpoint_info, resolve_model_path

    try:
        path = resolve_model_path(name_or_path)
        info = read_checkpoint_info(path)
        family, settings = info["model"], dict(info["config"])
        config = build_config(family, settings)
        _check_types(config, "model")
    except ConfigError as exc:
        raise ConfigError(f"--init {name_or_path}: damaged checkpoint: {exc}") from None
    except (KeyError, ValueError, TypeError, AttributeError, OSError) as exc:
        raise ConfigError(f"--init {checkpoint_problem(name_or_path, exc)}") from None
    return path, family, settings


def _layer_initial_weights(raw: dict[str, Any], name_or_path: str | os.PathLike) -> dict[str, Any]:
    path, family, settings = _read_initial_weights(name_or_path)
    _check_init_family(raw.get("model"), family, name_or_path)
    # A shipped name stays a name; a file or run folder becomes the checkpoint file it names.
    source = str(path) if Path(name_or_path).exists() else str(name_or_path)
    raw = copy.deepcopy(raw)
    raw["model"], raw["model_config"] = family, settings
    raw.setdefault("train", {})["init_from"] = source
    return raw


def _check_init_family(wanted: Any, family: str, name_or_path: str | os.PathLike) -> None:
    if wanted not in (None, family):
        raise ConfigError(
            f"--init {name_or_path} holds a {family!r} model, not {wanted!r}: the family and its settings "
            f"come from the checkpoint, so leave out --model and --set model=, and use a {family} preset or none"
        )


def _model_for_checks(name: str, model_config: dict[str, Any]):
    """The model a run would build, for the checks below (the global random state is left alone)."""
    import torch

    from tinct.models import create_model

    try:
        with torch.random.fork_rng(devices=[]):
            model = create_model(name, **model_config)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
    return model.eval() if isinstance(model, torch.nn.Module) else model


def _size_problem(model, size: int) -> str | None:
    """Why ``model`` cannot colorize ``size x size`` training crops (one forward pass), or None."""
    import torch

    try:
        with torch.no_grad():
            model.predict_ab(torch.full((1, 1, size, size), 50.0))
    except (ValueError, RuntimeError) as exc:
        return (str(exc).splitlines() or [type(exc).__name__])[0]
    return None


def _fit_training_size(name: str, model_config: dict[str, Any], data: dict[str, Any], given: bool) -> dict[str, Any]:
    """``data`` with a ``size`` the model trains at, checked before anything is written.

    A ``data.size`` that was not given falls back to the model's ``input_size`` when the
    model cannot take the default (unet's 8 levels need multiples of 256)."""
    from tinct.data import DataConfig

    model = _model_for_checks(name, model_config)
    size = data["size"]
    problem = _size_problem(model, size)
    fallback = model_config.get("input_size")
    if problem and not given and isinstance(fallback, int) and not _size_problem(model, fallback):
        return DataConfig.from_dict({**data, "size": fallback}).to_dict()
    if problem:
        raise ConfigError(f"data.size={size}: model {name!r} cannot train on {size} x {size} crops ({problem})")
    return data


def _check_train_for_model(name: str, train: TrainConfig) -> None:
    """Train settings a model family refuses (NumPy models: ``weight_decay``, ``grad_clip``, ...)."""
    from tinct.models import model_class
    from tinct.models.numpy_base import NumpyColorModel

    if issubclass(model_class(name), NumpyColorModel):
        from tinct.train.numpy_loop import check_train_config

        try:
            check_train_config(train)
        except ValueError as exc:
            raise ConfigError(f"model {name!r}: {exc}") from None


def resolve_run_config(
    preset: str | os.PathLike | None = None,
    model: str | None = None,
    sources: list[str] | None = None,
    overrides: Iterable[str] = (),
    base: dict[str, Any] | None = None,
    init: str | os.PathLike | None = None,
) -> RunConfig:
    """Layer ``base`` (e.g. a saved ``config.json``), a preset, CLI values, ``init`` and overrides.

    ``init`` (``--init``: shipped weights name, checkpoint or run folder) starts the run from
    those weights: its model family and settings replace the preset's, and ``train.init_from``
    names it; ``overrides`` still apply on top (say ``model.temperature``).

    Every section comes back complete (defaults filled in) and validated, also against each
    other, before a run writes anything: the model is built and colorizes one ``data.size``
    crop, and its family checks the train settings. An unset ``data.size`` the model cannot
    take becomes its ``input_size``. ``init`` must hold the family the run asks for.
    Problems raise :class:`ConfigError` with a message naming the key, value or file.
    """
    raw: dict[str, Any] = copy.deepcopy(base) if base else {}
    if preset is not None:
        for section, value in load_preset(preset).items():
            if section == "description":
                continue
            if isinstance(value, dict):
                raw[section] = {**raw.get(section, {}), **value}
            else:
                raw[section] = value
    if model is not None:
        if raw.get("model") not in (None, model):
            # A preset's model settings describe its own model, not this one.
            raw["model_config"] = {}
        raw["model"] = model
    if sources:
        raw.setdefault("data", {})["sources"] = [str(s) for s in sources]
    init_family = None
    if init is not None:
        raw = _layer_initial_weights(raw, init)
        init_family = raw["model"]
    raw = apply_overrides(raw, overrides)
    if init_family is not None:
        _check_init_family(raw.get("model"), init_family, init)
    name, model_config = _resolve_model(raw)
    train_values = raw.get("train") or {}
    if not isinstance(train_values, dict):
        raise ConfigError("train: must be a JSON object")
    train = TrainConfig.from_dict(train_values)
    _check_train_for_model(name, train)
    data_values = dict(raw.get("data") or {})
    data = _fit_training_size(name, model_config, _resolve_data(data_values), given="size" in data_values)
    return RunConfig(model=name, model_config=model_config, train=train, data=data)
