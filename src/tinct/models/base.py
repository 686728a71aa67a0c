"""The contract every colorization model honours, whatever its insides (torch or NumPy).

Models take lightness in Lab units and return ab in Lab units:

    predict_ab(l: Tensor (B, 1, H, W), L in [0, 100]) -> Tensor (B, 2, h, w), a/b in Lab units

``h, w`` may be smaller than ``H, W`` (chroma is smooth); inference upsamples it and joins it
to the full-resolution lightness. ``config.input_size`` is the working resolution: inference
resizes (aspect-preserving, padded) every photo to ``input_size x input_size``.

Training asks the model for its own loss:

    training_loss(l, ab) -> (scalar Tensor, dict of float metrics)

with ``l (B, 1, S, S)`` and ``ab (B, 2, S, S)`` in Lab units.

What a family can do beyond that it declares in the attributes of :class:`ModelCapabilities`
(``backend``, ``uses_labels``, ``fit_statistics_from``, ``has_palette``,
``custom_training_step``, ``tunable_decoding``, ``takes_hints``); the trainer, the evaluator,
``tinct tune`` and the engine read them and never probe a model for methods.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn


class ModelCapabilities:
    """What a model family can do, declared once with a default for every family.

    Attributes:
        backend: ``"torch"`` (an ``nn.Module``), ``"numpy"`` (a
            :class:`~tinct.models.numpy_base.NumpyColorModel`, trained by
            :mod:`tinct.train.numpy_loop`) or ``"onnx"`` (:class:`tinct.engine.OnnxModel`).
        uses_labels: ``training_loss`` takes the photos' class labels (``labels=``); a
            property where the config decides (tinctnet's ``classes``).
        fit_statistics_from: what a fresh training run fits the model's statistics from:
            None (nothing), ``"ab_samples"`` (``fit_statistics(ab (N, 2))``, Lab units) or
            ``"dataset"`` (``fit_statistics_from_dataset(dataset, pixels, seed)``, palettes).
        has_palette: ``palette_image() -> uint8 (H, W, 3)`` draws its colours (the trainer
            writes it as ``palette.png``).
        custom_training_step: ``make_optimizers(train_config) -> {name: optimizer}`` and
            ``train_step(l, ab, optimizers) -> metrics`` replace the loop's one-optimiser step
            (pix2pix's generator and discriminator).
        tunable_decoding: a bins head whose decoding settings (temperature, prior correction,
            hue gate, chroma commitment) ``tinct tune`` searches.
        takes_hints: ``predict_ab`` takes user hints (ab points and a reference histogram).
    """

    backend: ClassVar[str] = "torch"
    uses_labels: bool = False
    fit_statistics_from: ClassVar[str | None] = None
    has_palette: ClassVar[bool] = False
    custom_training_step: ClassVar[bool] = False
    tunable_decoding: bool = False
    takes_hints: bool = False


class ColorModel(ModelCapabilities, nn.Module):
    """Base class of the torch model families.

    Subclasses define a ``Config`` dataclass (with at least ``input_size: int``), take it as
    their only constructor argument, and implement ``predict_ab`` and ``training_loss``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]

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
