"""The model side of the NumPy families (seeds 000 and 003): network, weights, examples.

A NumPy family wraps one :class:`tinct.numpynet.Network` (hand-written backprop, no autograd)
and says how a batch of Lab images becomes network examples (``examples``) and how network
outputs become ab (``predict_ab``). Here are what every family shares: ``state_dict`` /
``load_state_dict`` / ``num_parameters`` (the network's arrays, keyed ``layers.{i}.weight``
(fan_in, fan_out) and ``layers.{i}.bias``), and the hook for a family's own update rule
(:meth:`NumpyColorModel.own_optimizer`).

Training them is :mod:`tinct.train.numpy_loop`'s job (``tinct train`` runs it); its
docstring lists how each train setting is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from tinct.models.base import ModelCapabilities
from tinct.numpynet import Network, Optimizer

__all__ = ["NumpyColorModel", "HIDDEN_ACTIVATIONS", "check_mlp_config", "initialisation_seed"]

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")


def initialisation_seed() -> int:
    """A weight-initialisation seed drawn from torch's global generator.

    The trainer seeds torch with ``train.seed`` before it builds a model, so NumPy families
    start from the same weights for the same seed, as the torch families do.
    """
    return int(torch.randint(0, 2**31 - 1, ()).item())


def check_mlp_config(name: str, config) -> None:
    """ValueError naming model ``name`` and the key when an MLP family's ``input_size``,
    ``activation`` or ``hidden`` layer sizes cannot be used."""
    if config.input_size < 1:
        raise ValueError(f"{name}: input_size must be >= 1, got {config.input_size}")
    if config.activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"{name}: activation must be one of {', '.join(HIDDEN_ACTIVATIONS)}, got {config.activation!r}")
    if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in config.hidden):
        raise ValueError(f"{name}: hidden must be a list of layer sizes >= 1, got {list(config.hidden)}")


class NumpyColorModel(ModelCapabilities):
    """Base class of the NumPy families; subclasses set ``Config`` and build ``self.network``.

    Subclasses implement:

    * ``examples(l, ab) -> (x (N, D_in), y (N, D_out))``: network inputs and RGB targets in
      [0, 1] from ``l (B, 1, S, S)`` and ``ab (B, 2, S, S)`` torch tensors in Lab units;
    * ``predict_ab(l) -> ab``.

    Their capabilities are :class:`~tinct.models.base.ModelCapabilities`'s defaults but for
    ``backend = "numpy"``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    backend: ClassVar[str] = "numpy"

    network: Network
    #: pixel values in network units: RGB in [0, value_scale] (seed 003 as written: 255).
    value_scale: float = 1.0

    # -- weights ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the network's arrays: ``layers.{i}.weight`` (fan_in, fan_out), ``layers.{i}.bias``."""
        return self.network.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load arrays saved by :meth:`state_dict` (ValueError naming a missing key or bad shape)."""
        self.network.load_state_dict(state)

    def num_parameters(self) -> int:
        return int(sum(array.size for array in self.network.parameters()))

    def examples(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- training --------------------------------------------------------------------------
    def own_optimizer(self, train_config) -> Optimizer | None:
        """The family's own update rule for ``train_config``, or None to use ``train.optimizer``
        (``fc-image``'s ``update="clipped-sgd"`` is seed 003's rule)."""
        return None
