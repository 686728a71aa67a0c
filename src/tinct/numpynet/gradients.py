"""Gradient checking: compare backpropagation with central finite differences (float64).

For a parameter array P with backprop gradient ``G_bp`` and numerical gradient ``G_num``
the reported figure is the ratio

    r = ||G_num - G_bp|| / ||G_num + G_bp||      (Frobenius norms)

which is scale-free; 0 would be perfect agreement, and a pass is ``r < 1e-10``. Every
numerical entry is a central difference of the full objective J (data loss plus L2
penalty), so the L2 gradient is checked too. Nothing runs on import: call
:func:`gradient_ratios` for one network or :func:`check_all_configurations` for the sweep
used by the tests and by ``tinct gradcheck``.

Choice of stencil and step. The error of a central difference has two parts: truncation,
about ``h^k * |J^(k+1)|`` for a stencil of order k, and rounding, about
``1e-16 * |J| / h``. The textbook two-point stencil (order 2) cannot reach 1e-10 on every
configuration: measured on the default sweep of the time (540 arrays, before clipped_relu
and ``sse``), h = 1e-5 gives a worst ratio of 3.0e-9 (116 arrays at or above 1e-10),
h = 1e-6 gives 2.0e-8 and h = 1e-4 gives 3.1e-8, because
shrinking h trades truncation for rounding. The sixth-order central stencil

    J'(p) ~ [J(p+3h) - 9 J(p+2h) + 45 J(p+h) - 45 J(p-h) + 9 J(p-2h) - J(p-3h)] / (60 h)

lets h grow to 2e-3, where both errors are small: worst ratio 2.3e-11 (median 2.3e-13) on
the default sweep (seed 0) and below 7.1e-11 on seeds 0-7. Measured again after clipped_relu
and ``sse`` joined the sweep (864 arrays): worst 4.6e-11 (median 2.2e-13) on seed 0, below
5.0e-11 on seeds 0-7. Orders 2 and 4 remain available.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from tinct.numpynet.activations import ACTIVATION_NAMES
from tinct.numpynet.network import Network

__all__ = [
    "DEFAULT_ORDER",
    "DEFAULT_STEP",
    "RATIO_THRESHOLD",
    "GradientCheckResult",
    "check_all_configurations",
    "gradient_ratios",
    "numerical_gradients",
]

# Ceiling of clipped_relu in the sweep: wide enough that random units spend time on the slope.
_CHECK_CEILING = 2.0

RATIO_THRESHOLD = 1e-10
"""A backprop gradient passes when its ratio is strictly below this value."""

DEFAULT_STEP = 2e-3
"""Finite-difference step h used by default (see the module docstring)."""

DEFAULT_ORDER = 6
"""Accuracy order of the central-difference stencil used by default."""

# order -> (offsets in units of h, weights); derivative = sum(w * J(p + k h)) / h.
_CENTRAL_DIFFERENCE_STENCILS: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {
    2: ((1, -1), (1 / 2, -1 / 2)),
    4: ((2, 1, -1, -2), (-1 / 12, 8 / 12, -8 / 12, 1 / 12)),
    6: ((3, 2, 1, -1, -2, -3), (1 / 60, -9 / 60, 45 / 60, -45 / 60, 9 / 60, -1 / 60)),
}


@dataclass(frozen=True)
class GradientCheckResult:
    """One parameter array of one network configuration."""

    configuration: str  # e.g. "[4, 5, 3, 3] hidden=tanh output=softmax loss=cross_entropy l2=0.01"
    parameter: str  # e.g. "layers.1.weight"
    ratio: float

    @property
    def passed(self) -> bool:
        return self.ratio < RATIO_THRESHOLD


def numerical_gradients(
    network: Network,
    x: np.ndarray,
    y: np.ndarray,
    step: float = DEFAULT_STEP,
    order: int = DEFAULT_ORDER,
) -> dict[str, np.ndarray]:
    """Central-difference gradient of ``network.loss(x, y)`` (L2 included) for every parameter.

    Every entry is moved to each point of the stencil (p +- h, p +- 2h, ... depending on
    ``order``) and then restored to its exact original value, so the network is unchanged
    afterwards. Cost: ``order`` loss evaluations per scalar parameter.

    Args:
        network: a float64 network.
        x: (N, D_in).
        y: (N, D_out).
        step: finite-difference step h > 0.
        order: accuracy order of the central stencil, 2, 4 or 6.

    Returns:
        Same keys and shapes as ``network.state_dict()``.
    """
    if network.dtype != np.float64:
        raise ValueError(f"gradient checking needs a float64 network, got {network.dtype}")
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    try:
        offsets, weights = _CENTRAL_DIFFERENCE_STENCILS[order]
    except KeyError:
        raise ValueError(
            f"order must be one of {sorted(_CENTRAL_DIFFERENCE_STENCILS)}, got {order!r}"
        ) from None
    result: dict[str, np.ndarray] = {}
    for name, parameter in zip(network.parameter_names(), network.parameters()):
        gradient = np.zeros_like(parameter)
        for index in np.ndindex(parameter.shape):
            original = parameter[index]
            weighted_sum = 0.0
            for offset, weight in zip(offsets, weights):
                parameter[index] = original + offset * step
                weighted_sum += weight * network.loss(x, y)
            parameter[index] = original
            gradient[index] = weighted_sum / step
        result[name] = gradient
    return result


def _ratio(numerical: np.ndarray, backprop: np.ndarray) -> float:
    denominator = float(np.linalg.norm(numerical + backprop))
    numerator = float(np.linalg.norm(numerical - backprop))
    if denominator == 0.0:
        # Both gradients are exactly zero (or exact opposites, which the numerator catches).
        return 0.0 if numerator == 0.0 else float("inf")
    return numerator / denominator


def gradient_ratios(
    network: Network,
    x: np.ndarray,
    y: np.ndarray,
    step: float = DEFAULT_STEP,
    order: int = DEFAULT_ORDER,
) -> dict[str, float]:
    """Per-parameter ratio ``||G_num - G_bp|| / ||G_num + G_bp||`` for one network and batch.

    Args:
        network: a float64 network (its weights are left unchanged).
        x: (N, D_in).
        y: (N, D_out).
        step: finite-difference step h.
        order: accuracy order of the central stencil, 2, 4 or 6.

    Returns:
        ``{"layers.0.weight": ratio, "layers.0.bias": ratio, ...}``.
    """
    network.forward(x)
    backprop = network.backward(y)
    numerical = numerical_gradients(network, x, y, step, order)
    return {name: _ratio(numerical[name], backprop[name]) for name in network.parameter_names()}


def _relu_statistics(network: Network, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """For a batch ``x`` (N, D_in): per-sample smallest distance of a ReLU pre-activation to
    a kink (0, and the ceiling of a clipped ReLU; inf without ReLUs), and whether every ReLU
    unit is active (on its sloped part) for some sample."""
    distance = np.full(x.shape[0], np.inf)
    every_unit_alive = True
    current = x
    for layer in network.layers:
        z, current = layer.forward(current)
        name = layer.activation.name
        if name in ("relu", "clipped_relu"):
            ceiling = layer.activation.ceiling if name == "clipped_relu" else np.inf
            kinks = np.minimum(np.abs(z), np.abs(z - ceiling))
            distance = np.minimum(distance, np.min(kinks, axis=1))
            sloped = (z > 0) & (z < ceiling)
            every_unit_alive = every_unit_alive and bool(np.all(np.any(sloped, axis=0)))
    return distance, every_unit_alive


def _random_inputs(
    network: Network, batch_size: int, kink_margin: float, rng: np.random.Generator
) -> np.ndarray | None:
    """(N, D_in) standard-normal inputs that suit a finite-difference check, or None.

    For (clipped) ReLU networks the batch must (a) keep every pre-activation more than
    ``kink_margin`` away from a kink (0, the ceiling), so a stencil never straddles one, and
    (b) put every such unit on its sloped part for some sample: through a dead unit the backprop gradient is exactly 0
    and the ratio would compare rounding noise with 0. None if 50 draws all fail (the
    weights themselves are then unsuitable).
    """
    for _attempt in range(50):
        candidates = rng.normal(0.0, 1.0, size=(4 * batch_size, network.input_size))
        distance, _ = _relu_statistics(network, candidates)
        x = candidates[distance > kink_margin][:batch_size]
        if x.shape[0] == batch_size and _relu_statistics(network, x)[1]:
            return x
    return None


def _random_targets(network: Network, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """(N, D_out) one-hot rows for cross-entropy, uniform [0, 1) values for MSE."""
    if network.loss_function.name == "cross_entropy":
        labels = rng.integers(0, network.output_size, size=batch_size)
        return np.eye(network.output_size)[labels]
    return rng.uniform(0.0, 1.0, size=(batch_size, network.output_size))


def _checkable_network(
    layer_sizes: tuple[int, ...], settings: dict, batch_size: int, kink_margin: float, step: float,
    rng: np.random.Generator,
) -> tuple[Network, np.ndarray]:
    """A float64 network built with ``settings`` (non-zero random biases) and inputs
    ``(batch_size, D_in)`` away from its kinks; RuntimeError after 20 tries."""
    for _network_attempt in range(20):
        network = Network(
            layer_sizes, seed=int(rng.integers(2**31)), dtype=np.float64, activation_ceiling=_CHECK_CEILING, **settings
        )
        for layer in network.layers:
            layer.bias[...] = rng.normal(0.2, 0.5, size=layer.bias.shape)
        x = _random_inputs(network, batch_size, kink_margin, rng)
        if x is not None:
            return network, x
    raise RuntimeError(f"no usable weights/inputs found for {network!r} with step {step}")


def check_all_configurations(
    seed: int = 0,
    step: float = DEFAULT_STEP,
    order: int = DEFAULT_ORDER,
    layer_sizes: tuple[int, ...] = (4, 5, 3, 3),
    batch_size: int = 6,
    l2_lambdas: tuple[float, ...] = (0.0, 0.01),
) -> list[GradientCheckResult]:
    """Gradient-check every hidden activation x output activation x loss x L2 setting.

    Configurations: hidden in {identity, sigmoid, tanh, relu, clipped_relu, softmax} x output
    in the same set with ``mse``, every hidden activation with ``softmax`` output and
    ``cross_entropy``, and a tanh hidden layer with every output activation and ``sse``; each
    with every lambda in ``l2_lambdas`` and, for lambda > 0, both L2 conventions (plain and
    divided by the batch size). The default ``(4, 5, 3, 3)``
    has two hidden layers so hidden-to-hidden backpropagation is exercised. Biases are set
    to non-zero random values. For ReLU networks, inputs (and if necessary weights) are
    redrawn so the check is meaningful (see :func:`_random_inputs`; the kink margin is 10x
    the stencil's reach, e.g. 10 * 3h for order 6).

    Returns:
        One :class:`GradientCheckResult` per parameter array per configuration
        (6 per configuration with the default sizes; 48 activation/loss triples x 3 L2
        settings = 144 configurations, 864 results by default).
    """
    if order not in _CENTRAL_DIFFERENCE_STENCILS:
        raise ValueError(f"order must be one of {sorted(_CENTRAL_DIFFERENCE_STENCILS)}, got {order!r}")
    kink_margin = 10 * max(_CENTRAL_DIFFERENCE_STENCILS[order][0]) * step
    rng = np.random.default_rng(seed)
    combinations = [(h, o, "mse") for h, o in itertools.product(ACTIVATION_NAMES, ACTIVATION_NAMES)]
    combinations += [(h, "softmax", "cross_entropy") for h in ACTIVATION_NAMES]
    combinations += [("tanh", o, "sse") for o in ACTIVATION_NAMES]
    l2_settings = [(lam, divide) for lam in l2_lambdas for divide in ((False, True) if lam > 0 else (False,))]

    results: list[GradientCheckResult] = []
    for (hidden, output, loss), (l2_lambda, divide_by_batch) in itertools.product(combinations, l2_settings):
        settings = dict(
            hidden_activation=hidden, output_activation=output, loss=loss, l2_lambda=l2_lambda,
            l2_divide_by_batch=divide_by_batch,
        )  # fmt: skip
        network, x = _checkable_network(layer_sizes, settings, batch_size, kink_margin, step, rng)
        y = _random_targets(network, batch_size, rng)
        l2_text = f"l2={l2_lambda:g}" + ("/N" if divide_by_batch else "")
        configuration = f"{list(layer_sizes)} hidden={hidden} output={output} loss={loss} {l2_text}"
        for parameter, ratio in gradient_ratios(network, x, y, step, order).items():
            results.append(GradientCheckResult(configuration, parameter, ratio))
    return results
