"""The errors a user can act on, under one base: :class:`TinctError`.

Every error that tinct raises for a user's input (a missing photo, an unknown model name, a
damaged checkpoint, a bad setting) derives from :class:`TinctError`, and its message is one
line that names the bad value. The ``tinct`` command catches ``TinctError`` in one place
(:func:`tinct.cli.main`), prints ``tinct <command>: <message>`` and exits with status 2;
anything else is a bug and keeps its traceback.

Each subclass also keeps the built-in type it had before (``ConfigError`` is a ``ValueError``,
``UnknownModelError`` a ``KeyError``), so ``except ValueError`` in a library user's code goes
on working.

>>> from tinct.errors import TinctError, one_line
>>> issubclass(ModelError, TinctError) and issubclass(ModelError, ValueError)
True
>>> one_line(KeyError("unknown model 'tinctnte'"))
"unknown model 'tinctnte'"

This module imports nothing, so every layer may import it.
"""

from __future__ import annotations

__all__ = ["TinctError", "ModelError", "ModelNotFoundError", "DataError", "one_line"]


class TinctError(Exception):
    """Base of the errors a user can act on; ``str()`` is one line naming the bad value."""


class ModelError(TinctError, ValueError):
    """A model cannot be opened: an unknown name, a damaged or foreign checkpoint, an export
    that does not match its weights, an engine that cannot run it."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model named by a path that does not exist (a ``FileNotFoundError`` too)."""


class DataError(TinctError, ValueError):
    """Training or evaluation data that cannot be used as given: a malformed source string
    (``cifar100:`` without a folder, an unknown option), a folder without photos, CIFAR-100
    or Lab arrays that do not hold what they should, a bad :class:`tinct.data.DataConfig`
    setting. Raised by :mod:`tinct.data`; the message names the source, file or value."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, without the quotes ``str(KeyError)`` adds;
    the type's name when the message is empty."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    text = text.strip()
    return text.splitlines()[0] if text else type(exc).__name__
