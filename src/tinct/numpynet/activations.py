"""Element-wise and row-wise activation functions with their backward passes.

Every activation works on a 2-D batch ``z`` of shape (N, D) (N samples, D units) and
returns an array of the same shape and dtype. The backward pass receives the
pre-activation ``z``, the activation output ``a = forward(z)`` (cached by the layer, so
sigmoid / tanh / softmax need not recompute it) and the upstream gradient
``grad_output = dL/da`` of shape (N, D), and returns ``dL/dz`` of shape (N, D).

Softmax is applied per row (over the D units of one sample); its backward pass is the
exact Jacobian-vector product, so it can be combined with any loss. For the usual pairing
with cross-entropy, :mod:`tinct.numpynet.losses` provides a fused, numerically stable version
that never goes through this Jacobian.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "ClippedReLU",
    "Identity",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "get_activation",
    "log_softmax",
    "sigmoid",
    "softmax",
]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-z)), computed without overflow for large |z|.

    Args:
        z: any shape, float32 or float64.

    Returns:
        Array of the same shape and dtype as ``z``, values in [0, 1].
    """
    # exp(-|z|) is in (0, 1], so neither branch can overflow.
    exp_neg_abs = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + exp_neg_abs), exp_neg_abs / (1.0 + exp_neg_abs)).astype(
        z.dtype, copy=False
    )


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a batch of logits.

    Args:
        z: (N, D) logits.

    Returns:
        (N, D) probabilities; each row sums to 1.
    """
    shifted = z - z.max(axis=1, keepdims=True)
    exp_shifted = np.exp(shifted)
    return exp_shifted / exp_shifted.sum(axis=1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, stable for large logits (log-sum-exp with the row maximum).

    Args:
        z: (N, D) logits.

    Returns:
        (N, D) log-probabilities.
    """
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class Activation(Protocol):
    """What a layer needs from an activation function."""

    name: str

    def forward(self, z: np.ndarray) -> np.ndarray:
        """(N, D) pre-activation -> (N, D) activation."""
        ...

    def backward(self, z: np.ndarray, a: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        """(N, D) dL/da -> (N, D) dL/dz, given the cached ``z`` and ``a = forward(z)``."""
        ...


class Identity:
    """a = z (linear output, e.g. for regression with MSE)."""

    name = "identity"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def backward(self, z: np.ndarray, a: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output


class Sigmoid:
    """a = 1 / (1 + exp(-z)); da/dz = a (1 - a)."""

    name = "sigmoid"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return sigmoid(z)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * a * (1.0 - a)


class Tanh:
    """a = tanh(z); da/dz = 1 - a^2."""

    name = "tanh"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * (1.0 - a * a)


class ReLU:
    """a = max(0, z); da/dz = 1 where z > 0, else 0 (the sub-gradient 0 is used at z = 0)."""

    name = "relu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0.0).astype(z.dtype, copy=False)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * (z > 0)


class ClippedReLU:
    """a = min(max(0, z), ceiling); da/dz = 1 where 0 < z < ceiling, else 0.

    Seed 003's output layer: ``np.minimum(np.maximum(0, z), 255)``, with ``ceiling`` 255
    when pixel values are in [0, 255] (the network's ``activation_ceiling``).
    """

    name = "clipped_relu"

    def __init__(self, ceiling: float = 1.0) -> None:
        if not np.isfinite(ceiling) or ceiling <= 0:
            raise ValueError(f"clipped_relu ceiling must be a finite number > 0, got {ceiling!r}")
        self.ceiling = float(ceiling)

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.clip(z, 0.0, self.ceiling).astype(z.dtype, copy=False)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * ((z > 0) & (z < self.ceiling))


class Softmax:
    """Row-wise softmax. Backward: dL/dz = a * (g - sum_j g_j a_j) per row, g = dL/da."""

    name = "softmax"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return softmax(z)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        weighted_sum = np.sum(grad_output * a, axis=1, keepdims=True)
        return a * (grad_output - weighted_sum)


_ACTIVATIONS: dict[str, type[Identity | Sigmoid | Tanh | ReLU | ClippedReLU | Softmax]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, ClippedReLU, Softmax)
}

ACTIVATION_NAMES: tuple[str, ...] = tuple(_ACTIVATIONS)
"""Accepted activation names: identity, sigmoid, tanh, relu, clipped_relu, softmax."""


def get_activation(name: str, ceiling: float = 1.0) -> Activation:
    """Return a fresh activation object for ``name`` (one of :data:`ACTIVATION_NAMES`).

    ``ceiling`` is the upper clip of ``clipped_relu`` (ignored by the others).

    Raises:
        ValueError: if the name is unknown.
    """
    try:
        cls = _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATION_NAMES)}"
        ) from None
    return cls(ceiling) if cls is ClippedReLU else cls()
