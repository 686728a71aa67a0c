"""A fully connected network in plain NumPy with hand-written backpropagation.

Shapes used throughout (N = number of samples in the batch):

* input ``x``: (N, D_in), float32 or float64 (cast to the network's dtype);
* output / prediction: (N, D_out) in the network's dtype;
* targets ``y``: (N, D_out);
* layer ``i`` holds ``layers.i.weight`` of shape (fan_in, fan_out) and ``layers.i.bias`` of
  shape (fan_out,), and computes ``a = activation(x @ W + b)``; a network built with
  ``bias=False`` (seed 003's) has no bias arrays and computes ``a = activation(x @ W)``.

Note the weight layout is (in_features, out_features), the transpose of ``torch.nn.Linear``;
:meth:`Network.load_state_dict` checks shapes and names the expected one when they differ.

The objective minimised by :meth:`Network.train_step` and checked by
:mod:`tinct.numpynet.gradients` is ``data loss + L2 penalty`` (biases are never regularised):

* ``l2_divide_by_batch=False`` (default): penalty ``lambda/2 * sum ||W||^2``, gradient
  ``+ lambda * W``.
* ``l2_divide_by_batch=True``: penalty ``lambda/(2N) * sum ||W||^2``, gradient
  ``+ lambda * W / N``; this is seed 000's cost ``J`` (its ``lambda = 1e-4`` with batch
  1024 is therefore ~1e-7 in the default convention).

See :mod:`tinct.numpynet.losses` for the exact data-loss formulas.

``straight_through=True`` reproduces seed 003's backpropagation, which took the derivative of
every activation as 1 ("For simplicity, we assumed that the derivative of ReLU = 1
everywhere"; its clipped output was treated the same way): :meth:`Network.backward` then
skips the activations' derivatives, so it returns the gradient of the network *without*
its non-linearities at the current activations, not the gradient of the objective (a
gradient check fails by design). Off by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinct.numpynet.activations import Activation, Identity, get_activation
from tinct.numpynet.losses import Loss, get_loss
from tinct.numpynet.optimizers import Adam, Optimizer

__all__ = ["DenseLayer", "Network", "INITIALISATIONS"]

_SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_IDENTITY = Identity()


@dataclass
class DenseLayer:
    """One affine map followed by an activation.

    Attributes:
        weight: (fan_in, fan_out).
        bias: (fan_out,).
        activation: applied element-wise (or row-wise for softmax) to ``x @ weight + bias``.
    """

    weight: np.ndarray
    bias: np.ndarray | None  # None: the layer has no bias (seed 003)
    activation: Activation

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[0])

    @property
    def fan_out(self) -> int:
        return int(self.weight.shape[1])

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, fan_in) input -> ``(z, a)``, both (N, fan_out): pre-activation and activation."""
        z = x @ self.weight
        if self.bias is not None:
            z += self.bias
        return z, self.activation.forward(z)


@dataclass
class _ForwardCache:
    """What :meth:`Network.backward` needs from the last :meth:`Network.forward` call."""

    layer_inputs: list[np.ndarray]  # input of each layer, (N, fan_in)
    pre_activations: list[np.ndarray]  # z of each layer, (N, fan_out)
    activations: list[np.ndarray]  # a of each layer, (N, fan_out)


def _validate_layer_sizes(layer_sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size, got {list(sizes)!r}"
        )
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"every layer size must be an integer >= 1, got {list(sizes)!r}")
    return tuple(int(size) for size in sizes)


INITIALISATIONS = ("default", "uniform")


def _initial_weight(
    fan_in: int,
    fan_out: int,
    activation_name: str,
    rng: np.random.Generator,
    dtype: np.dtype,
    init: str = "default",
    init_scale: float = 0.2,
) -> np.ndarray:
    """``default``: He-normal for ReLU layers, Glorot-uniform for every other activation;
    ``uniform``: U[-init_scale, init_scale] for every layer (seed 003: 0.2)."""
    if init == "uniform":
        weight = rng.uniform(-init_scale, init_scale, size=(fan_in, fan_out))
    elif activation_name in ("relu", "clipped_relu"):
        weight = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
    else:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weight = rng.uniform(-limit, limit, size=(fan_in, fan_out))
    return weight.astype(dtype)


def _check_settings(
    init: str, init_scale: float, l2_lambda: float, dtype: np.dtype, straight_through: bool, loss: Loss
) -> None:
    """ValueError naming the first :class:`Network` argument that cannot be used."""
    if init not in INITIALISATIONS:
        raise ValueError(f"init must be one of {', '.join(INITIALISATIONS)}, got {init!r}")
    if not np.isfinite(init_scale) or init_scale <= 0:
        raise ValueError(f"init_scale must be a finite number > 0, got {init_scale!r}")
    if not np.isfinite(l2_lambda) or l2_lambda < 0:
        raise ValueError(f"l2_lambda must be a finite number >= 0, got {l2_lambda!r}")
    if dtype not in _SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if straight_through and loss.name == "cross_entropy":
        raise ValueError(
            "straight_through is seed 003's shortcut for squared errors; it has no meaning with cross_entropy"
        )


def _initial_layers(network: "Network", rng: np.random.Generator) -> list[DenseLayer]:
    """The layers of ``network`` (sizes, activations, dtype, init settings) with fresh weights
    drawn from ``rng`` in layer order and zero biases."""
    sizes, ceiling = network.layer_sizes, network.activation_ceiling
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        is_output = index == len(sizes) - 2
        activation = get_activation(network.output_activation_name if is_output else network.hidden_activation_name, ceiling)
        weight = _initial_weight(fan_in, fan_out, activation.name, rng, network.dtype, network.init, network.init_scale)
        bias = np.zeros(fan_out, dtype=network.dtype) if network.bias else None
        layers.append(DenseLayer(weight=weight, bias=bias, activation=activation))
    return layers


def _checked_array(name: str, value: Any, target: np.ndarray) -> np.ndarray:
    """``value`` (an array, or a CPU torch tensor) as an array of ``target``'s shape; ValueError naming ``name``."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "cpu"):
        value = value.cpu()
    array = np.asarray(value)
    if array.shape != target.shape:
        raise ValueError(
            f"{name} has shape {array.shape}, expected {target.shape} (weights are stored as (fan_in, fan_out))"
        )
    return array


class Network:
    """Multi-layer perceptron: dense layers, one hidden activation, one output activation.

    Args:
        layer_sizes: ``[D_in, hidden_1, ..., D_out]``; e.g. ``[2, 3, 1]`` for XOR or
            ``[25, 8, 4, 3]`` for seed 000's 5x5-window colouriser.
        hidden_activation: activation of every layer except the last
            (identity, sigmoid, tanh, relu, softmax).
        output_activation: activation of the last layer (same names).
        loss: ``"mse"`` (any output activation) or ``"cross_entropy"`` (needs ``"softmax"``).
        l2_lambda: L2 strength on the weights (never the biases), >= 0.
        l2_divide_by_batch: if True the penalty is divided by the batch size (seed 000's
            convention); see the module docstring.
        optimizer: used by :meth:`train_step`; defaults to ``Adam(learning_rate=1e-3)``.
        seed: seed of the weight initialisation (``numpy.random.default_rng(seed)``).
        dtype: float64 (default, needed for gradient checking) or float32 (faster);
            a NumPy type, dtype or name such as ``"float32"``.
        bias: give every layer a bias (initialised to 0); seed 003's network had none.
        init: ``"default"`` (He-normal for ReLU layers, Glorot-uniform otherwise) or
            ``"uniform"`` (every weight from U[-init_scale, init_scale], seed 003).
        init_scale: half-width of the ``uniform`` initialisation, > 0.
        activation_ceiling: upper clip of ``clipped_relu`` layers (255 for seed 003's
            [0, 255] pixel values).
        straight_through: backpropagate as seed 003's code did, every activation's
            derivative taken as 1 (see the module docstring); not with ``cross_entropy``.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        hidden_activation: str = "sigmoid",
        output_activation: str = "sigmoid",
        loss: str = "mse",
        l2_lambda: float = 0.0,
        l2_divide_by_batch: bool = False,
        optimizer: Optimizer | None = None,
        seed: int | None = 0,
        dtype: type[np.floating[Any]] | np.dtype | str = np.float64,
        bias: bool = True,
        init: str = "default",
        init_scale: float = 0.2,
        activation_ceiling: float = 1.0,
        straight_through: bool = False,
    ) -> None:
        self.layer_sizes = _validate_layer_sizes(layer_sizes)
        self.dtype = np.dtype(dtype)
        self.loss_function: Loss = get_loss(loss)
        _check_settings(init, init_scale, l2_lambda, self.dtype, straight_through, self.loss_function)
        self.hidden_activation_name = hidden_activation
        self.output_activation_name = output_activation
        self.activation_ceiling = float(activation_ceiling)
        self.loss_function.check_output_activation(get_activation(output_activation, self.activation_ceiling))
        get_activation(hidden_activation, self.activation_ceiling)  # validate the name even without hidden layers
        self.bias = bool(bias)
        self.init = init
        self.init_scale = float(init_scale)
        self.straight_through = bool(straight_through)
        self.l2_lambda = float(l2_lambda)
        self.l2_divide_by_batch = bool(l2_divide_by_batch)
        self.optimizer: Optimizer = optimizer if optimizer is not None else Adam(learning_rate=1e-3)
        self.layers: list[DenseLayer] = _initial_layers(self, np.random.default_rng(seed))
        self._cache: _ForwardCache | None = None

    # ------------------------------------------------------------------ description

    @property
    def input_size(self) -> int:
        return self.layer_sizes[0]

    @property
    def output_size(self) -> int:
        return self.layer_sizes[-1]

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this architecture (without weights/optimizer).

        ``Network(**net.config())`` followed by ``load_state_dict(net.state_dict())``
        reproduces ``net``'s predictions exactly.
        """
        return {
            "layer_sizes": list(self.layer_sizes),
            "hidden_activation": self.hidden_activation_name,
            "output_activation": self.output_activation_name,
            "loss": self.loss_function.name,
            "l2_lambda": self.l2_lambda,
            "l2_divide_by_batch": self.l2_divide_by_batch,
            "dtype": self.dtype.name,
            "bias": self.bias,
            "init": self.init,
            "init_scale": self.init_scale,
            "activation_ceiling": self.activation_ceiling,
            "straight_through": self.straight_through,
        }

    def __repr__(self) -> str:
        return (
            f"Network(layer_sizes={list(self.layer_sizes)}, hidden_activation="
            f"{self.hidden_activation_name!r}, output_activation={self.output_activation_name!r}, "
            f"loss={self.loss_function.name!r}, l2_lambda={self.l2_lambda}, dtype={self.dtype.name}"
            + ("" if self.bias else ", bias=False")
            + (", straight_through=True" if self.straight_through else "")
            + ")"
        )

    # ------------------------------------------------------------------ parameters

    def parameter_names(self) -> list[str]:
        """``["layers.0.weight", "layers.0.bias", "layers.1.weight", ...]`` (no ``bias`` entries
        in a network built with ``bias=False``)."""
        kinds = ("weight", "bias") if self.bias else ("weight",)
        return [f"layers.{i}.{kind}" for i in range(len(self.layers)) for kind in kinds]

    def parameters(self) -> list[np.ndarray]:
        """The live parameter arrays (not copies), in :meth:`parameter_names` order."""
        return [array for layer in self.layers for array in (layer.weight, layer.bias) if array is not None]

    def parameter_layers(self) -> list[int]:
        """Index of the layer each of :meth:`parameters` belongs to (for per-layer update rules)."""
        return [int(name.split(".")[1]) for name in self.parameter_names()]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, keyed ``layers.{i}.weight`` (fan_in, fan_out) and
        ``layers.{i}.bias`` (fan_out,)."""
        return {name: array.copy() for name, array in zip(self.parameter_names(), self.parameters())}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy parameters from ``state`` into this network (in place, cast to its dtype).

        Values may be NumPy arrays or anything ``np.asarray`` understands, including CPU
        torch tensors (``.detach()`` / ``.cpu()`` are called when present; torch itself is
        never imported here). Keys must match :meth:`parameter_names` exactly.

        Raises:
            ValueError: on missing or unexpected keys, or a shape mismatch.
        """
        expected = self.parameter_names()
        missing = [name for name in expected if name not in state]
        unexpected = [name for name in state if name not in expected]
        if missing or unexpected:
            raise ValueError(
                f"state dict does not match {self!r}: missing keys {missing}, unexpected keys {unexpected}"
            )
        converted = {name: _checked_array(name, state[name], target) for name, target in zip(expected, self.parameters())}
        # Copy only after every entry has been validated, so a bad dict leaves us untouched.
        for name, target in zip(expected, self.parameters()):
            target[...] = converted[name]
        self._cache = None

    # ------------------------------------------------------------------ computation

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.input_size or x.shape[0] == 0:
            raise ValueError(
                f"x must have shape (N >= 1, {self.input_size}), got {x.shape}"
            )
        return x.astype(self.dtype, copy=False)

    def _as_target(self, y: np.ndarray, batch_size: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (batch_size, self.output_size):
            raise ValueError(f"y must have shape ({batch_size}, {self.output_size}), got {y.shape}")
        return y.astype(self.dtype, copy=False)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run the network and remember the intermediate values for :meth:`backward`.

        Args:
            x: (N, D_in) float32 or float64.

        Returns:
            (N, D_out) output activations, in the network's dtype.
        """
        current = self._as_input(x)
        cache = _ForwardCache(layer_inputs=[], pre_activations=[], activations=[])
        for layer in self.layers:
            cache.layer_inputs.append(current)
            z, current = layer.forward(current)
            cache.pre_activations.append(z)
            cache.activations.append(current)
        self._cache = cache
        return current

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Outputs for ``x`` without touching the backward cache.

        Args:
            x: (N, D_in) float32 or float64.
            batch_size: if given, process ``x`` in chunks of this many rows (bounds memory).

        Returns:
            (N, D_out) in the network's dtype.
        """
        x = self._as_input(x)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size!r}")
        chunk = x.shape[0] if batch_size is None else batch_size
        outputs = []
        for start in range(0, x.shape[0], chunk):
            current = x[start : start + chunk]
            for layer in self.layers:
                _, current = layer.forward(current)
            outputs.append(current)
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=0)

    def l2_penalty(self, batch_size: int) -> float:
        """The L2 term of the objective for a batch of ``batch_size`` samples (0 if lambda = 0)."""
        if self.l2_lambda == 0.0:
            return 0.0
        squared_norm = sum(float(np.sum(layer.weight * layer.weight)) for layer in self.layers)
        scale = self.l2_lambda / (2.0 * batch_size) if self.l2_divide_by_batch else self.l2_lambda / 2.0
        return scale * squared_norm

    def _objective(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, include_l2: bool) -> float:
        """Data loss of output logits ``z`` / activations ``a`` (N, D_out) plus the L2 term."""
        value = self.loss_function.value(z, a, y)
        if include_l2:
            value += self.l2_penalty(batch_size=a.shape[0])
        return value

    def loss(self, x: np.ndarray, y: np.ndarray, include_l2: bool = True) -> float:
        """Objective on a batch: data loss (batch mean) plus, by default, the L2 penalty.

        Args:
            x: (N, D_in).
            y: (N, D_out) targets (one-hot / probabilities for cross-entropy).
            include_l2: set False for a validation loss that ignores the weight penalty.
        """
        output = self.forward(x)
        y = self._as_target(y, batch_size=output.shape[0])
        logits = self._last_cache().pre_activations[-1]
        return self._objective(logits, output, y, include_l2)

    def _last_cache(self) -> _ForwardCache:
        if self._cache is None:
            raise RuntimeError("backward() needs a preceding forward() call")
        return self._cache

    def backward(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the objective (data loss + L2) at the last :meth:`forward` input.

        Args:
            y: (N, D_out) targets for the batch given to the preceding ``forward`` call.

        Returns:
            ``{"layers.0.weight": (fan_in, fan_out), "layers.0.bias": (fan_out,), ...}`` in
            :meth:`parameter_names` order.

        Raises:
            RuntimeError: if ``forward`` has not been called since construction / loading.
        """
        cache = self._last_cache()
        batch_size = cache.activations[-1].shape[0]
        y = self._as_target(y, batch_size)
        l2_scale = self.l2_lambda / batch_size if self.l2_divide_by_batch else self.l2_lambda

        last = len(self.layers) - 1
        output_activation = _IDENTITY if self.straight_through else self.layers[last].activation
        delta = self.loss_function.gradient_wrt_logits(
            cache.pre_activations[last], cache.activations[last], y, output_activation
        )
        gradients: dict[str, np.ndarray] = {}
        for index in range(last, -1, -1):
            layer = self.layers[index]
            weight_gradient = cache.layer_inputs[index].T @ delta
            if l2_scale != 0.0:
                weight_gradient += l2_scale * layer.weight
            if layer.bias is not None:
                gradients[f"layers.{index}.bias"] = delta.sum(axis=0)
            gradients[f"layers.{index}.weight"] = weight_gradient
            if index > 0:
                delta = delta @ layer.weight.T
                if not self.straight_through:
                    previous = self.layers[index - 1]
                    delta = previous.activation.backward(
                        cache.pre_activations[index - 1], cache.activations[index - 1], delta
                    )
        return {name: gradients[name] for name in self.parameter_names()}

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One optimiser step on the batch ``(x, y)``.

        Args:
            x: (N, D_in) mini-batch.
            y: (N, D_out) targets.

        Returns:
            The objective (data loss + L2) on this batch *before* the update.
        """
        output = self.forward(x)
        y = self._as_target(y, batch_size=output.shape[0])
        objective = self._objective(self._last_cache().pre_activations[-1], output, y, include_l2=True)
        gradients = self.backward(y)
        self.optimizer.step(self.parameters(), list(gradients.values()))
        return objective
