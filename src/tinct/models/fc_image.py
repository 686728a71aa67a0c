"""``fc-image`` (seed 003): a NumPy fully connected network from a whole n x n gray image to its RGB.

The ``n * n`` gray values of an image (row by row) go through ``[n^2, *hidden, 3 n^2]``
fully connected layers; the ``3 n^2`` sigmoid outputs are the image's R, G and B planes in
[0, 1] (channel-major: all of R, then G, then B, each row by row). Hidden units use ReLU
(the seed's main model), sigmoid or tanh (its other attempts). The loss is the seed's sum of
squared RGB errors over the image, halved and averaged over the batch:

    L = 1/(2m) sum_images sum_pixels sum_channels (y - t)^2          (m = batch size)

(:mod:`tinct.numpynet`'s ``mse``; the seed summed in [0, 255] units without the 1/2 and the batch
mean, a constant factor that Adam does not see).

Gray input: the seed's gray was ``0.21 R + 0.72 G + 0.07 B``, computed from colour. The
trainer hands the model Lab images, and at colorization time only L exists, so the input
here is the gray value of each pixel's lightness, ``tinct.color.lightness_to_gray(L)`` (the
sRGB value of the neutral colour with that L); for a grayscale photo these are its own pixel
values. The target RGB is ``tinct.color.lab_to_rgb`` of the training image's (L, a, b).

Resolution: the model works on ``input_size`` x ``input_size`` images (seed 003: 16). Inputs
of another size are resized to it (area averaging when shrinking, bilinear when enlarging),
for training as well as for ``predict_ab``, which returns ab at ``n x n``; inference
upsamples it and joins it to the photo's own L.

Seed 003 as written (preset ``fc-image-clipped-sgd``), each part a config option beside this
project's default:

==================  ==============================  =========================================
key                 default (improved)              seed 003 as written
==================  ==============================  =========================================
``gray``            ``lightness``: gray of L        ``seed``: ``0.21 R + 0.72 G + 0.07 B`` of the
                                                    8-bit photo, truncated to 8 bits (training
                                                    input; a gray photo's own pixels at
                                                    inference, as for ``lightness``)
``value_scale``     1: pixels in [0, 1]             255: pixels in [0, 255]
``output``          ``sigmoid``                     ``clipped-relu``: ``min(max(0, z), 255)``
``bias``            true                            false (``x @ W`` only)
``init``            ``default``: He / Glorot        ``uniform``: U[-0.2, 0.2] (``init_scale``)
``loss``            ``mse``: ``1/(2m) sum``         ``sse``: the plain sum over the batch
``exact_gradient``  true                            false: every activation's derivative taken
                                                    as 1, as the seed's backprop did
``update``          ``optimizer`` (train's Adam)    ``clipped-sgd``: ``W_k -= clip(lr^p * 0.2 *
                                                    G_k, +-0.01 * batch * 0.2)``, p = 2 for the
                                                    first layer, 1 for the second
==================  ==============================  =========================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tinct.color import lab_to_rgb_torch, lightness_to_gray, rgb_to_lab_torch, seed_luma
from tinct.models.base import check_lightness_batch
from tinct.models.numpy_base import NumpyColorModel, check_mlp_config, initialisation_seed
from tinct.models.registry import register_model
from tinct.numpynet import ClippedSGD, Network

__all__ = ["FullyConnectedImage", "resize_to"]

_PREDICT_CHUNK = 256  # images per forward pass
_GRAYS = ("lightness", "seed")
_OUTPUTS = {"sigmoid": "sigmoid", "clipped-relu": "clipped_relu"}  # config name -> tinct.numpynet name
_LOSSES = ("mse", "sse")
_UPDATES = ("optimizer", "clipped-sgd")
# Seed 003's clip bound is 0.01 * batch_size * weight scale (0.1 for its batch of 50).
_SEED_CLIP_PER_IMAGE = 0.01


def resize_to(images: torch.Tensor, side: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, side, side)``: area averaging when shrinking, else bilinear."""
    height, width = images.shape[-2:]
    if (height, width) == (side, side):
        return images
    if height >= side and width >= side:
        return F.interpolate(images, size=(side, side), mode="area")
    return F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)


@register_model("fc-image")
class FullyConnectedImage(NumpyColorModel):
    """Seed 003's colorizer: a whole n x n gray image -> its n x n RGB image, fully connected (NumPy)."""

    @dataclass
    class Config:
        input_size: int = 16  # n: the model sees n x n images (seed 003: 16)
        # Seed 003: one hidden layer of 5 x the output size, 5 x 3 x 16 x 16 = 3840 units.
        hidden: tuple[int, ...] = (3840,)
        activation: str = "relu"  # hidden units: relu (the seed's main model) | sigmoid | tanh
        l2_lambda: float = 0.0  # the seed did not use one
        dtype: str = "float32"
        # Seed 003 as written, beside this project's defaults (module docstring):
        gray: str = "lightness"  # training input: "lightness" (gray of L) | "seed" (0.21 R + 0.72 G + 0.07 B)
        value_scale: float = 1.0  # pixel values in network units: [0, 1] | 255 (the seed's [0, 255])
        output: str = "sigmoid"  # "sigmoid" | "clipped-relu" (min(max(0, z), value_scale), the seed's)
        bias: bool = True  # the seed's layers had no bias
        init: str = "default"  # "default" (He-normal / Glorot) | "uniform" (U[-init_scale, init_scale])
        init_scale: float = 0.2  # the seed's weight scale (uniform init and clipped-sgd steps)
        loss: str = "mse"  # "mse" (1/(2m) sum of squares) | "sse" (the seed's plain sum)
        exact_gradient: bool = True  # False: the seed's backprop, every activation's derivative 1
        update: str = "optimizer"  # "optimizer" (train.optimizer) | "clipped-sgd" (the seed's rule)

    def __init__(self, config: Config):
        check_mlp_config("fc-image", config)
        _check_seed_options(config)
        self.config = config
        self.value_scale = float(config.value_scale)
        pixels = config.input_size * config.input_size
        self.network = Network(
            [pixels, *config.hidden, 3 * pixels],
            hidden_activation=config.activation,
            output_activation=_OUTPUTS[config.output],
            loss=config.loss,
            l2_lambda=config.l2_lambda,
            seed=initialisation_seed(),
            dtype=config.dtype,
            bias=config.bias,
            init=config.init,
            init_scale=config.init_scale,
            activation_ceiling=config.value_scale,
            straight_through=not config.exact_gradient,
        )

    def own_optimizer(self, train_config) -> ClippedSGD | None:
        """None (``train.optimizer``), or with ``update="clipped-sgd"`` seed 003's rule: layer k of
        L steps by ``clip(lr^(L - k) * init_scale * G, +-0.01 * batch_size * init_scale)``
        (k from 0: ``lr^2`` for the seed's first layer, ``lr`` for its second)."""
        if self.config.update != "clipped-sgd":
            return None
        layers = len(self.network.layers)
        scale = self.config.init_scale
        return ClippedSGD(
            learning_rate=train_config.lr,
            scale=scale,
            bound=_SEED_CLIP_PER_IMAGE * train_config.batch_size * scale,
            powers=[layers - k for k in self.network.parameter_layers()],
        )

    def _gray_rows(self, l: torch.Tensor) -> np.ndarray:
        """``l (B, 1, n, n)`` -> gray ``(B, n^2)`` in [0, value_scale], the network's dtype."""
        gray = lightness_to_gray(l[:, 0].detach().cpu().float().numpy()) * self.value_scale
        return gray.reshape(len(gray), -1).astype(self.network.dtype, copy=False)

    def _seed_gray_rows(self, rgb: torch.Tensor) -> np.ndarray:
        """Seed 003's gray of ``rgb (B, 3, n, n)`` in [0, 1]: ``0.21 R + 0.72 G + 0.07 B`` of the
        8-bit values, truncated to an integer as its uint8 array did -> ``(B, n^2)`` in
        [0, value_scale]."""
        rgb8 = np.round(rgb.permute(0, 2, 3, 1).numpy().astype(np.float64) * 255.0)
        gray8 = np.trunc(seed_luma(rgb8))  # float input keeps its [0, 255] units
        rows = gray8.reshape(len(gray8), -1) * (self.value_scale / 255.0)
        return rows.astype(self.network.dtype)

    def examples(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Gray images ``(B, n^2)`` and RGB targets ``(B, 3 n^2)`` in [0, value_scale], from Lab
        ``(B, 1|2, S, S)``."""
        n = self.config.input_size
        rgb = lab_to_rgb_torch(torch.cat([l.float(), ab.float()], dim=1))  # (B, 3, S, S)
        rgb = resize_to(rgb, n)
        targets = (rgb.reshape(len(rgb), -1).numpy() * self.value_scale).astype(self.network.dtype)
        if self.config.gray == "seed":
            return self._seed_gray_rows(rgb), targets
        return self._gray_rows(resize_to(l.float(), n)), targets

    def predict_rgb(self, l: torch.Tensor) -> np.ndarray:
        """``l (B, 1, H, W)`` in [0, 100] -> predicted sRGB ``(B, 3, n, n)`` in [0, 1]."""
        check_lightness_batch(l)
        n = self.config.input_size
        rows = self._gray_rows(resize_to(l.detach().cpu().float(), n))
        outputs = self.network.predict(rows, batch_size=_PREDICT_CHUNK).reshape(len(rows), 3, n, n)
        if self.value_scale != 1.0:
            outputs = np.clip(outputs / self.value_scale, 0.0, 1.0)
        return outputs

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, n, n)`` (float32, Lab units) of the predicted RGB."""
        rgb = torch.from_numpy(np.ascontiguousarray(self.predict_rgb(l), dtype=np.float32))
        return rgb_to_lab_torch(rgb, dim=-3)[:, 1:].contiguous()


def _check_seed_options(config) -> None:
    """ValueError naming the ``fc-image`` key whose value cannot be used."""
    choices = (("gray", _GRAYS), ("output", tuple(_OUTPUTS)), ("loss", _LOSSES), ("update", _UPDATES))
    for key, allowed in choices:
        if getattr(config, key) not in allowed:
            raise ValueError(f"fc-image: {key} must be one of {', '.join(allowed)}, got {getattr(config, key)!r}")
    for key in ("value_scale", "init_scale"):
        value = getattr(config, key)
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"fc-image: {key} must be a number > 0, got {value!r}")
    if config.output == "sigmoid" and config.value_scale != 1.0:
        raise ValueError(
            f"fc-image: a sigmoid output lies in [0, 1] but value_scale is {config.value_scale:g}; "
            "use output clipped-relu or value_scale 1"
        )
