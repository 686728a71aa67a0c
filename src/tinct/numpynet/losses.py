"""Data losses: mean squared error, sum of squared errors and softmax cross-entropy (fused).

``mse`` and ``cross_entropy`` are **averaged over the N samples of the batch** so that the
learning rate does not depend on the batch size:

* ``mse``: ``L = 1/(2N) * sum_i sum_c (a_ic - y_ic)^2`` -- the "half sum of squares per
  sample, averaged over the batch" form used by seed 000's cost ``J``. Its gradient is
  ``dL/da = (a - y) / N``. Note that this is *not* ``np.mean((a - y)**2)``: it sums over the
  D_out outputs and halves. The report-friendly error (plain mean of squares over every
  element) is :func:`mean_squared_error`.
* ``cross_entropy``: ``L = -1/N * sum_i sum_c y_ic * log softmax(z_i)_c``, computed from
  the logits ``z`` with log-sum-exp, never from ``log(softmax(z))``. It is only defined
  together with a softmax output layer, and the gradient w.r.t. the logits is taken in one
  fused step: ``dL/dz = (p * s - y) / N`` with ``p = softmax(z)`` and ``s`` the row sums of
  ``y``; for probability / one-hot targets (``s = 1``) that is the familiar ``(p - y) / N``.

``sse`` is seed 003's loss as its code computed it: ``L = sum_i sum_c (a_ic - y_ic)^2``,
summed (not averaged) over the batch and not halved, so ``dL/da = 2 (a - y)``; its gradients
are the seed's ``+=``-accumulated gradients of a batch. Only update rules that do not scale
with the gradient's size (Adam) or that were tuned to it (seed 003's clipped steps) suit it.

Shapes: ``z`` (pre-activation of the output layer), ``a`` (its activation) and the targets
``y`` are all (N, D_out).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from tinct.numpynet.activations import Activation, log_softmax

__all__ = [
    "LOSS_NAMES",
    "CrossEntropyLoss",
    "Loss",
    "MeanSquaredErrorLoss",
    "SumSquaredErrorLoss",
    "get_loss",
    "mean_squared_error",
]


def mean_squared_error(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Plain mean of squared differences over every element: ``mean((p - t)^2)``.

    This is the error used for reporting (e.g. the XOR test); it is *not* the training
    loss ``mse`` (which is half the per-sample sum of squares, see the module docstring).

    Args:
        predictions: any shape.
        targets: same shape as ``predictions``.
    """
    if predictions.shape != targets.shape:
        raise ValueError(
            f"predictions shape {predictions.shape} does not match targets shape {targets.shape}"
        )
    return float(np.mean((predictions - targets) ** 2))


class Loss(Protocol):
    """What the network needs from a data loss."""

    name: str

    def check_output_activation(self, output_activation: Activation) -> None:
        """Raise ValueError if this loss cannot be combined with that output activation."""
        ...

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
        """Loss averaged over the batch, from (N, D_out) logits ``z``, outputs ``a``, targets ``y``."""
        ...

    def gradient_wrt_logits(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, output_activation: Activation
    ) -> np.ndarray:
        """(N, D_out) dL/dz of the output layer's pre-activation."""
        ...


class MeanSquaredErrorLoss:
    """``L = 1/(2N) sum (a - y)^2``; works with any output activation."""

    name = "mse"

    def check_output_activation(self, output_activation: Activation) -> None:
        return None

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
        batch_size = a.shape[0]
        difference = a - y
        return float(np.sum(difference * difference) / (2.0 * batch_size))

    def gradient_wrt_logits(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, output_activation: Activation
    ) -> np.ndarray:
        batch_size = a.shape[0]
        return output_activation.backward(z, a, (a - y) / batch_size)


class SumSquaredErrorLoss:
    """``L = sum (a - y)^2`` over the batch and the outputs (seed 003); works with any output activation."""

    name = "sse"

    def check_output_activation(self, output_activation: Activation) -> None:
        return None

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
        difference = a - y
        return float(np.sum(difference * difference))

    def gradient_wrt_logits(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, output_activation: Activation
    ) -> np.ndarray:
        return output_activation.backward(z, a, 2.0 * (a - y))


class CrossEntropyLoss:
    """Softmax cross-entropy on the logits, fused with the softmax output layer."""

    name = "cross_entropy"

    def check_output_activation(self, output_activation: Activation) -> None:
        if output_activation.name != "softmax":
            raise ValueError(
                "loss 'cross_entropy' is fused with a softmax output layer; got output "
                f"activation {output_activation.name!r} (use output_activation='softmax')"
            )

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
        batch_size = z.shape[0]
        return float(-np.sum(y * log_softmax(z)) / batch_size)

    def gradient_wrt_logits(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, output_activation: Activation
    ) -> np.ndarray:
        # a = softmax(z). d/dz of -sum_c y_c log p_c is p * sum_c(y_c) - y.
        batch_size = z.shape[0]
        target_mass = y.sum(axis=1, keepdims=True)
        return (a * target_mass - y) / batch_size


_LOSSES: dict[str, type[MeanSquaredErrorLoss | SumSquaredErrorLoss | CrossEntropyLoss]] = {
    cls.name: cls for cls in (MeanSquaredErrorLoss, SumSquaredErrorLoss, CrossEntropyLoss)
}

LOSS_NAMES: tuple[str, ...] = tuple(_LOSSES)
"""Accepted loss names: mse, sse, cross_entropy."""


def get_loss(name: str) -> Loss:
    """Return the loss object for ``name`` (one of :data:`LOSS_NAMES`).

    Raises:
        ValueError: if the name is unknown.
    """
    try:
        return _LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSS_NAMES)}") from None
