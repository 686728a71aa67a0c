"""``fc-image`` (seed 003): a NumPy fully connected network from a whole n x n gray image to its RGB.

The ``n * n`` gray values of an image (row by row) go through ``[n^2, *hidden, 3 n^2]``
fully connected layers; the ``3 n^2`` sigmoid outputs are the image's R, G and B planes in
[0, 1] (channel-major: all of R, then G, then B, each row by row). Hidden units use ReLU
(the seed's main model), sigmoid or tanh (its other attempts). The loss is the seed's sum of
squared RGB errors over the image, halved and averaged over the batch:

    L = 1/(2m) sum_images sum_pixels sum_channels (y - t)^2          (m = batch size)

(:mod:`tinct.nn`'s ``mse``; the seed summed in [0, 255] units without the 1/2 and the batch
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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tinct.color import lab_to_rgb_torch, lightness_to_gray, rgb_to_lab_torch
from tinct.models.base import check_lightness_batch
from tinct.models.numpy_base import NumpyColorModel, check_mlp_config, initialisation_seed
from tinct.models.registry import register_model
from tinct.nn import Network

__all__ = ["FullyConnectedImage", "resize_to"]

_PREDICT_CHUNK = 256  # images per forward pass


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

    def __init__(self, config: Config):
        check_mlp_config("fc-image", config)
        self.config = config
        pixels = config.input_size * config.input_size
        self.network = Network(
            [pixels, *config.hidden, 3 * pixels],
            hidden_activation=config.activation,
            output_activation="sigmoid",
            loss="mse",
            l2_lambda=config.l2_lambda,
            seed=initialisation_seed(),
            dtype=config.dtype,
        )

    def _gray_rows(self, l: torch.Tensor) -> np.ndarray:
        """``l (B, 1, n, n)`` -> gray ``(B, n^2)`` in [0, 1], the network's dtype."""
        gray = lightness_to_gray(l[:, 0].detach().cpu().float().numpy())
        return gray.reshape(len(gray), -1).astype(self.network.dtype, copy=False)

    def examples(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Gray images ``(B, n^2)`` and RGB targets ``(B, 3 n^2)`` in [0, 1], from Lab ``(B, 1|2, S, S)``."""
        n = self.config.input_size
        rgb = lab_to_rgb_torch(torch.cat([l.float(), ab.float()], dim=1))  # (B, 3, S, S)
        rgb = resize_to(rgb, n)
        targets = rgb.reshape(len(rgb), -1).numpy().astype(self.network.dtype)
        return self._gray_rows(resize_to(l.float(), n)), targets

    def predict_rgb(self, l: torch.Tensor) -> np.ndarray:
        """``l (B, 1, H, W)`` in [0, 100] -> predicted sRGB ``(B, 3, n, n)`` in [0, 1]."""
        check_lightness_batch(l)
        n = self.config.input_size
        rows = self._gray_rows(resize_to(l.detach().cpu().float(), n))
        return self.network.predict(rows, batch_size=_PREDICT_CHUNK).reshape(len(rows), 3, n, n)

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, n, n)`` (float32, Lab units) of the predicted RGB."""
        rgb = torch.from_numpy(np.ascontiguousarray(self.predict_rgb(l), dtype=np.float32))
        return rgb_to_lab_torch(rgb, dim=-3)[:, 1:].contiguous()
