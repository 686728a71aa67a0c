"""The contract every colorization model honours, whatever its insides (torch or NumPy).

Models take lightness in Lab units and return ab in Lab units:

    predict_ab(l: Tensor (B, 1, H, W), L in [0, 100]) -> Tensor (B, 2, h, w), a/b in Lab units

``h, w`` may be smaller than ``H, W`` (chroma is smooth); inference upsamples it and joins it
to the full-resolution lightness. ``config.input_size`` is the working resolution: inference
resizes (aspect-preserving, padded) every photo to ``input_size x input_size``.

Training asks the model for its own loss:

    training_loss(l, ab) -> (scalar Tensor, dict of float metrics)

with ``l (B, 1, S, S)`` and ``ab (B, 2, S, S)`` in Lab units.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn


class ColorModel(nn.Module):
    """Base class of the torch model families.

    Subclasses define a ``Config`` dataclass (with at least ``input_size: int``), take it as
    their only constructor argument, and implement ``predict_ab`` and ``training_loss``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    backend: ClassVar[str] = "torch"

    def __init__(self, config: Any):
        super().__init__()
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"{type(self).__name__} expects a {type(self).__name__}.Config, got {type(config)}")
        self.config = config

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_loss(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError  # pragma: no cover - abstract

    def load_pretrained(self) -> str | None:
        """Load weights a new training run starts from (e.g. an ImageNet encoder); returns a
        description of what was loaded, or None for families that start from random weights."""
        return None

    def parameter_groups(self, lr: float) -> list[dict]:
        """Optimiser parameter groups at base learning rate ``lr`` (one group by default)."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def num_parameters(self) -> int:
        """How many weights the model has (see :func:`count_parameters`)."""
        return count_parameters(self)


def count_parameters(model: Any) -> int:
    """How many weights a model has: the elements of every parameter of a torch module, or of
    every array in a NumPy model's ``state_dict()`` (frozen parameters count too).

    >>> count_parameters(nn.Linear(3, 2))  # 3 x 2 weights + 2 biases
    8
    """
    if isinstance(model, nn.Module):
        return int(sum(p.numel() for p in model.parameters()))
    return int(sum(np.asarray(v).size for v in model.state_dict().values()))


def check_lightness_batch(l: torch.Tensor) -> None:
    """Validate a model input: ``(B, 1, H, W)`` floating L in Lab units."""
    if l.ndim != 4 or l.shape[1] != 1:
        raise ValueError(f"expected lightness of shape (B, 1, H, W), got {tuple(l.shape)}")
    if not l.is_floating_point():
        raise TypeError(f"expected floating lightness in [0, 100], got {l.dtype}")
