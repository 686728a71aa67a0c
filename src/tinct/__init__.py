"""tinct: bring black-and-white photographs to colour on an ordinary CPU.

>>> import tinct
>>> colorizer = tinct.Colorizer()            # the shipped model  # doctest: +SKIP
>>> rgb = tinct.colorize(gray_array)          # uint8 (H, W, 3)   # doctest: +SKIP
>>> summary = tinct.colorize_folder("scans", "out")   # a folder -> a mirrored folder  # doctest: +SKIP
>>> sorted(p.name for p in tinct.examples_dir().glob("*.png"))
['bonsai.png']

``Colorizer``, ``colorize`` and ``colorize_folder`` are imported on first use, so
``import tinct`` (and the ``tinct`` command's start) costs nothing until a photo is colorized.
"""

from pathlib import Path

__version__ = "0.1.0"

__all__ = ["Colorizer", "colorize", "colorize_folder", "examples_dir", "TinctError", "__version__"]

_LAZY = {"Colorizer": "tinct.infer", "colorize": "tinct.infer", "colorize_folder": "tinct.batch"}


def examples_dir() -> Path:
    """The folder of gray example photos that ship with tinct (package data; their sources
    and licences are in its ``CREDITS.md``)."""
    return Path(__file__).resolve().with_name("examples")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "TinctError":
        from tinct.errors import TinctError

        return TinctError
    raise AttributeError(f"module 'tinct' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"TinctError"})
