"""Imports every built-in model family so that each registers itself."""

from tinct.models import tinctnet  # noqa: F401
from tinct.models import tinctnet2  # noqa: F401
from tinct.models import unet  # noqa: F401
from tinct.models import pix2pix  # noqa: F401
from tinct.models import zhang16  # noqa: F401
from tinct.models import palette  # noqa: F401
from tinct.models import window_mlp  # noqa: F401
from tinct.models import fc_image  # noqa: F401
