"""A small neural-network library in plain NumPy (no autograd), with hand-written backprop.

Contents:

* :class:`Network` -- fully connected layers, sigmoid / ReLU / clipped ReLU / tanh / softmax /
  identity activations, MSE, summed squared error or fused softmax cross-entropy loss, L2 on
  weights, optional biases, He/Glorot or uniform initialisation, ``forward``,
  ``backward``, ``loss``, ``predict``, ``train_step``, ``state_dict`` / ``load_state_dict``
  (module :mod:`tinct.numpynet.network`);
* :class:`Adam`, :class:`SGD` and seed 003's :class:`ClippedSGD` (:mod:`tinct.numpynet.optimizers`);
* :mod:`tinct.numpynet.gradients` and :mod:`tinct.numpynet.xor` -- the correctness checks used by
  the tests and by ``tinct gradcheck`` (imported lazily; nothing runs on import).

Training a network on images (epochs, schedules, resume) is :mod:`tinct.train.numpy_loop`.

Shapes: inputs ``x`` are (N, D_in) float32 / float64, outputs and targets (N, D_out).
"""

from tinct.numpynet.activations import ACTIVATION_NAMES
from tinct.numpynet.losses import LOSS_NAMES, mean_squared_error
from tinct.numpynet.network import DenseLayer, Network
from tinct.numpynet.optimizers import SGD, Adam, ClippedSGD, Optimizer

__all__ = [
    "ACTIVATION_NAMES",
    "LOSS_NAMES",
    "SGD",
    "Adam",
    "ClippedSGD",
    "DenseLayer",
    "Network",
    "Optimizer",
    "mean_squared_error",
]
