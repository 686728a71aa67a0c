"""Model registry: families registered by decorator, built by name from a typed config.

Every model family is a class with a ``Config`` dataclass. ``create_model("unet", width=16)``
builds it; an unknown name raises a ``KeyError`` that lists the known ones, and an unknown
config key raises a ``TypeError`` that lists the accepted keys.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, TypeVar

from tinct.errors import TinctError

__all__ = ["UnknownModelError", "register_model", "create_model", "model_class", "list_models", "build_config"]

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)


class UnknownModelError(TinctError, KeyError):
    """No model family or weights by that name; ``str()`` is the message itself (a plain
    KeyError would wrap it in quotes on the one-line errors users see)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def register_model(name: str) -> Callable[[T], T]:
    """Class decorator: register a model family under ``name``.

    The class must define a ``Config`` dataclass and accept an instance of it as its only
    constructor argument.
    """

    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        config_cls = getattr(cls, "Config", None)
        if config_cls is None or not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"{cls.__qualname__} must define a dataclass named Config")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _ensure_builtin_models_imported() -> None:
    # Importing the families registers them; done lazily so `import tinct` stays light.
    import tinct.models.families  # noqa: F401


def list_models() -> list[str]:
    """Sorted names of every registered model family."""
    _ensure_builtin_models_imported()
    return sorted(_REGISTRY)


def model_class(name: str) -> type:
    """The class registered under ``name``; KeyError naming close matches and all known names."""
    _ensure_builtin_models_imported()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(_REGISTRY))}") from None


def build_config(name: str, values: dict[str, Any] | None = None):
    """The ``Config`` of family ``name`` with ``values`` applied; TypeError for unknown keys."""
    config_cls = model_class(name).Config
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"model {name!r} has no config key(s) {unknown}; accepted keys: {sorted(known)}")
    for field in dataclasses.fields(config_cls):
        # JSON turns tuples into lists; give the dataclass back the type it declared.
        if field.name in values and isinstance(values[field.name], list) and "tuple" in str(field.type):
            values[field.name] = tuple(values[field.name])
    return config_cls(**values)


def create_model(name: str, **config: Any):
    """Build model family ``name`` with config overrides, e.g. ``create_model("unet", width=16)``."""
    cls = model_class(name)
    return cls(build_config(name, config))
