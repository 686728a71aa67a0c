"""tinct: bring black-and-white photographs to colour on an ordinary CPU.

>>> import tinct
>>> colorizer = tinct.Colorizer()            # the shipped model  # doctest: +SKIP
>>> rgb = tinct.colorize(gray_array)          # uint8 (H, W, 3)   # doctest: +SKIP

``Colorizer`` and ``colorize`` are imported on first use, so ``import tinct`` (and the
``tinct`` command's start) costs nothing until a photo is colorized.
"""

__version__ = "0.1.0"

__all__ = ["Colorizer", "colorize", "__version__"]


def __getattr__(name: str):
    if name in ("Colorizer", "colorize"):
        from tinct import infer

        return getattr(infer, name)
    raise AttributeError(f"module 'tinct' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"Colorizer", "colorize"})
