"""tinct: bring black-and-white photographs to colour on an ordinary CPU.

>>> import tinct
>>> colorizer = tinct.Colorizer()            # the shipped model  # doctest: +SKIP
>>> rgb = tinct.colorize(gray_array)          # uint8 (H, W, 3)   # doctest: +SKIP
"""

__version__ = "0.1.0"

from tinct.infer import Colorizer, colorize  # noqa: E402

__all__ = ["Colorizer", "colorize", "__version__"]
