"""A small neural-network library in plain NumPy (no autograd), with hand-written backprop.

Contents:

* :class:`Network` -- fully connected layers, sigmoid / ReLU / clipped ReLU / tanh / softmax /
  identity activations, MSE, summed squared error or fused softmax cross-entropy loss, L2 on
  weights, optional biases, He/Glorot or uniform initialisation, ``forward``,
  ``backward``, ``loss``, ``predict``, ``train_step``, ``state_dict`` / ``load_state_dict``
  (module :mod:`tinct.nn.network`);
* :class:`Adam`, :class:`SGD` and seed 003's :class:`ClippedSGD` (:mod:`tinct.nn.optimizers`);
* :func:`fit_with_lr_rounds` -- early stopping with learning-rate rounds
  (:mod:`tinct.nn.schedule`);
* :mod:`tinct.nn.gradcheck` and :mod:`tinct.nn.xor` -- the correctness checks used by the
  tests and by ``tinct gradcheck`` (imported lazily; nothing runs on import).

Shapes: inputs ``x`` are (N, D_in) float32 / float64, outputs and targets (N, D_out).
"""

from tinct.nn.activations import ACTIVATION_NAMES
from tinct.nn.losses import LOSS_NAMES, mean_squared_error
from tinct.nn.network import DenseLayer, Network
from tinct.nn.optimizers import SGD, Adam, ClippedSGD, Optimizer
from tinct.nn.schedule import EpochRecord, LrRoundsResult, RoundsState, fit_with_lr_rounds

__all__ = [
    "ACTIVATION_NAMES",
    "LOSS_NAMES",
    "SGD",
    "Adam",
    "ClippedSGD",
    "DenseLayer",
    "EpochRecord",
    "LrRoundsResult",
    "Network",
    "Optimizer",
    "RoundsState",
    "fit_with_lr_rounds",
    "mean_squared_error",
]
