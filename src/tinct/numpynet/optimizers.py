"""First-order optimisers that update NumPy parameter arrays in place: SGD, Adam and seed
003's clipped SGD.

An optimiser is given, at every step, the list of parameter arrays and the list of their
gradients in the same order (the network always passes them in :meth:`Network.parameters`
order). Parameters are updated **in place**, so views held elsewhere stay valid.

Adam follows Kingma & Ba (2014), Algorithm 1, with bias correction::

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
    p <- p - lr * m_hat / (sqrt(v_hat) + eps)

``reset()`` forgets the moments and the step counter (seed 000 resets Adam at every
learning-rate round; see :mod:`tinct.train.numpy_loop`). ``state_dict()`` /
``load_state_dict()`` save and restore the learning rate and that state (copies), so a
resumed run takes exactly the steps an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

__all__ = ["SGD", "Adam", "ClippedSGD", "Optimizer"]


def _validate_learning_rate(learning_rate: float) -> float:
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    return float(learning_rate)


def _validate_step_arguments(parameters: Sequence[np.ndarray], gradients: Sequence[np.ndarray]) -> None:
    if len(parameters) != len(gradients):
        raise ValueError(
            f"got {len(parameters)} parameter arrays but {len(gradients)} gradient arrays"
        )
    for index, (parameter, gradient) in enumerate(zip(parameters, gradients)):
        if parameter.shape != gradient.shape:
            raise ValueError(
                f"parameter {index} has shape {parameter.shape} but its gradient has shape "
                f"{gradient.shape}"
            )


class Optimizer(Protocol):
    """What training code needs from an optimiser."""

    learning_rate: float

    def step(self, parameters: Sequence[np.ndarray], gradients: Sequence[np.ndarray]) -> None:
        """Update every ``parameters[i]`` in place using ``gradients[i]`` (same shape)."""
        ...

    def reset(self) -> None:
        """Forget any internal state (moments, step count); keep the learning rate."""
        ...

    def state_dict(self) -> dict:
        """The learning rate and internal state, as copies."""
        ...

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        ...


class SGD:
    """Plain stochastic gradient descent: ``p <- p - lr * g`` (no momentum, no state)."""

    def __init__(self, learning_rate: float = 0.01) -> None:
        self.learning_rate = _validate_learning_rate(learning_rate)

    def step(self, parameters: Sequence[np.ndarray], gradients: Sequence[np.ndarray]) -> None:
        _validate_step_arguments(parameters, gradients)
        for parameter, gradient in zip(parameters, gradients):
            parameter -= self.learning_rate * gradient

    def reset(self) -> None:
        return None

    def state_dict(self) -> dict:
        return {"learning_rate": self.learning_rate}

    def load_state_dict(self, state: dict) -> None:
        self.learning_rate = _validate_learning_rate(state["learning_rate"])

    def __repr__(self) -> str:
        return f"SGD(learning_rate={self.learning_rate})"


class ClippedSGD(SGD):
    """Seed 003's update: ``p <- p - clip(lr**k * scale * g, -bound, bound)``, no state.

    Seed 003's code updates its two weight matrices after each batch as::

        layer_2_weights -= clip(learning_rate    * layer_2_gradients * scale, -bound, bound)
        layer_1_weights -= clip(learning_rate**2 * layer_1_gradients * scale, -bound, bound)

    with ``scale`` its initial weight scale (0.2) and ``bound = 0.01 * batch_size * scale``;
    the gradients are those of the batch's summed squared error (loss ``sse``). ``powers``
    gives each parameter array's exponent k (``[2, 1]`` for the seed's two layers; all 1 by
    default), so the clip applies per element after the layer's own learning-rate power.
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        scale: float = 0.2,
        bound: float = 0.1,
        powers: Sequence[int] | None = None,
    ) -> None:
        super().__init__(learning_rate)  # state: the learning rate alone, as SGD
        for name, value in (("scale", scale), ("bound", bound)):
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self.scale = float(scale)
        self.bound = float(bound)
        self.powers = None if powers is None else [int(k) for k in powers]

    def step(self, parameters: Sequence[np.ndarray], gradients: Sequence[np.ndarray]) -> None:
        _validate_step_arguments(parameters, gradients)
        powers = self.powers if self.powers is not None else [1] * len(parameters)
        if len(powers) != len(parameters):
            raise ValueError(
                f"ClippedSGD has {len(powers)} learning-rate powers for {len(parameters)} parameter arrays"
            )
        for parameter, gradient, power in zip(parameters, gradients, powers):
            change = (self.learning_rate**power * self.scale) * gradient
            parameter -= np.clip(change, -self.bound, self.bound).astype(parameter.dtype, copy=False)

    def __repr__(self) -> str:
        return (
            f"ClippedSGD(learning_rate={self.learning_rate}, scale={self.scale}, bound={self.bound}, "
            f"powers={self.powers})"
        )


class Adam:
    """Adam with bias-corrected moments (defaults beta1=0.9, beta2=0.999, eps=1e-8).

    The moment buffers are created lazily on the first :meth:`step` with the shapes and
    dtypes of the parameters; the step counter ``t`` starts at 1 on that first step.
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        self.learning_rate = _validate_learning_rate(learning_rate)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.epsilon = float(epsilon)
        self.step_count = 0
        self._first_moments: list[np.ndarray] = []
        self._second_moments: list[np.ndarray] = []

    def step(self, parameters: Sequence[np.ndarray], gradients: Sequence[np.ndarray]) -> None:
        _validate_step_arguments(parameters, gradients)
        if not self._first_moments:
            self._first_moments = [np.zeros_like(p) for p in parameters]
            self._second_moments = [np.zeros_like(p) for p in parameters]
        elif len(self._first_moments) != len(parameters) or any(
            m.shape != p.shape for m, p in zip(self._first_moments, parameters)
        ):
            raise ValueError(
                "Adam was stepped with parameters of shapes "
                f"{[m.shape for m in self._first_moments]} and now gets "
                f"{[p.shape for p in parameters]}; call reset() before switching parameters"
            )
        self.step_count += 1
        # m_hat / (sqrt(v_hat) + eps) == (sqrt(c2) / c1) * m / (sqrt(v) + eps * sqrt(c2)) with
        # c1 = 1 - beta1^t, c2 = 1 - beta2^t: the same update with two scalars folded in,
        # which saves two array divisions per parameter.
        first_correction = 1.0 - self.beta1**self.step_count
        root_second_correction = math.sqrt(1.0 - self.beta2**self.step_count)
        step_size = self.learning_rate * root_second_correction / first_correction
        scaled_epsilon = self.epsilon * root_second_correction
        for parameter, gradient, first, second in zip(
            parameters, gradients, self._first_moments, self._second_moments
        ):
            first *= self.beta1
            first += (1.0 - self.beta1) * gradient
            second *= self.beta2
            second += (1.0 - self.beta2) * (gradient * gradient)
            parameter -= step_size * first / (np.sqrt(second) + scaled_epsilon)

    def reset(self) -> None:
        self.step_count = 0
        self._first_moments = []
        self._second_moments = []

    def state_dict(self) -> dict:
        """``learning_rate``, ``step_count`` and the moment arrays (copies, in parameter order)."""
        return {
            "learning_rate": self.learning_rate,
            "step_count": self.step_count,
            "first_moments": [m.copy() for m in self._first_moments],
            "second_moments": [v.copy() for v in self._second_moments],
        }

    def load_state_dict(self, state: dict) -> None:
        first, second = list(state["first_moments"]), list(state["second_moments"])
        if len(first) != len(second):
            raise ValueError(f"Adam state has {len(first)} first and {len(second)} second moment arrays")
        self.learning_rate = _validate_learning_rate(state["learning_rate"])
        self.step_count = int(state["step_count"])
        self._first_moments = [np.array(m, copy=True) for m in first]
        self._second_moments = [np.array(v, copy=True) for v in second]

    def __repr__(self) -> str:
        return (
            f"Adam(learning_rate={self.learning_rate}, beta1={self.beta1}, "
            f"beta2={self.beta2}, epsilon={self.epsilon})"
        )
