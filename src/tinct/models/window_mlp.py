"""``window-mlp`` (seed 000): a NumPy MLP from a gray context window to the centre pixel's RGB.

For every pixel, the ``(2w+1) x (2w+1)`` gray values around it (flattened row by row, the
pixel itself in the middle) go through a fully connected network ``[(2w+1)^2, *hidden, 3]``
with sigmoid hidden units and a sigmoid output: the pixel's RGB in [0, 1]. Training
minimises seed 000's cost

    J = 1/(2m) sum_i sum_c (y_ic - t_ic)^2 + lambda/(2m) sum ||W||^2       (m = batch size)

over all windows of all training images, with :mod:`tinct.numpynet` (hand-written backprop).

Gray input: the gray value of the pixel's lightness, ``tinct.color.lightness_to_gray(L)``
(the sRGB value in [0, 1] of the neutral colour with that L). A grayscale photo's own pixel
values come back exactly through ``L = gray_to_lightness(g)``, so a user's black-and-white
photo is fed the values it holds; seed 000 instead computed gray from colour with a luma
formula, which differs for saturated colours only.

Border pixels: the gray image is padded by repeating its edge rows and columns (``edge``
padding), so every pixel has a full window.

``predict_ab`` predicts RGB for every pixel, converts it to Lab and returns its a, b at the
input's resolution; the colorizer then joins them to the photo's own L (the predicted L is
dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from tinct.color import lab_to_rgb_torch, lightness_to_gray, rgb_to_lab_torch
from tinct.models.base import check_lightness_batch
from tinct.models.numpy_base import NumpyColorModel, check_mlp_config, initialisation_seed
from tinct.models.registry import register_model
from tinct.numpynet import Network

__all__ = ["WindowMLP", "context_windows"]

_PREDICT_CHUNK = 65536  # windows per forward pass in predict_ab (bounds memory on big inputs)
# Training materialises every window of every image (seed 000: 400 x 32 x 32 x 25 floats = 41 MB);
# refuse sizes that would not fit in an ordinary machine's memory rather than swap.
_MAX_WINDOW_BYTES = 4 * 2**30


def context_windows(gray: np.ndarray, window: int) -> np.ndarray:
    """Every pixel's ``(2 window + 1)^2`` neighbourhood, edge-padded, one row per pixel.

    Args:
        gray: ``(N, H, W)`` gray images.
        window: half-width ``w`` >= 0.

    Returns:
        ``(N * H * W, (2w+1)^2)`` array (a copy) in ``gray``'s dtype; row ``(n * H + i) * W + j``
        holds ``padded[n, i : i + 2w + 1, j : j + 2w + 1]`` flattened row by row, where
        ``padded`` repeats the edge values ``w`` times on each side.
    """
    gray = np.asarray(gray)
    if gray.ndim != 3:
        raise ValueError(f"expected gray images of shape (N, H, W), got {gray.shape}")
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    side = 2 * window + 1
    padded = np.pad(gray, ((0, 0), (window, window), (window, window)), mode="edge")
    views = sliding_window_view(padded, (side, side), axis=(1, 2))  # (N, H, W, side, side), no copy
    return views.reshape(-1, side * side)  # the copy happens here, in one pass


@register_model("window-mlp")
class WindowMLP(NumpyColorModel):
    """Seed 000's colorizer: (2w+1)^2 gray window -> centre pixel RGB, an MLP trained in NumPy."""

    @dataclass
    class Config:
        input_size: int = 32  # working resolution (seed 000: CIFAR-100's 32 x 32)
        window: int = 2  # half-width w: the window is (2w+1) x (2w+1) = 5 x 5
        hidden: tuple[int, ...] = (8, 4)
        activation: str = "sigmoid"  # hidden units: sigmoid | tanh | relu (the output is a sigmoid)
        l2_lambda: float = 1e-4
        l2_divide_by_batch: bool = True  # seed 000's lambda/(2m): the penalty shrinks with the batch
        dtype: str = "float32"  # float64 is exact enough for gradient checks but twice as slow

    def __init__(self, config: Config):
        check_mlp_config("window-mlp", config)
        if config.window < 0:
            raise ValueError(f"window-mlp: window must be >= 0, got {config.window}")
        self.config = config
        side = 2 * config.window + 1
        self.network = Network(
            [side * side, *config.hidden, 3],
            hidden_activation=config.activation,
            output_activation="sigmoid",
            loss="mse",
            l2_lambda=config.l2_lambda,
            l2_divide_by_batch=config.l2_divide_by_batch,
            seed=initialisation_seed(),
            dtype=config.dtype,
        )

    def _windows(self, l: torch.Tensor) -> np.ndarray:
        gray = lightness_to_gray(l[:, 0].detach().cpu().float().numpy())  # (B, H, W) in [0, 1]
        return context_windows(gray.astype(self.network.dtype, copy=False), self.config.window)

    def examples(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``(B H W, (2w+1)^2)`` and centre-pixel RGB targets ``(B H W, 3)`` in [0, 1].

        ``l (B, 1, H, W)`` and ``ab (B, 2, H, W)`` in Lab units; the targets are the sRGB
        values of (L, a, b), clipped to the gamut.
        """
        batch, _, height, width = l.shape
        side = 2 * self.config.window + 1
        needed = batch * height * width * side * side * self.network.dtype.itemsize
        if needed > _MAX_WINDOW_BYTES:
            raise ValueError(
                f"window-mlp: {batch} images of {height}x{width} make {needed / 2**30:.1f} GiB of windows "
                f"(limit {_MAX_WINDOW_BYTES / 2**30:.0f} GiB); lower data.size or data.max_images"
            )
        rgb = lab_to_rgb_torch(torch.cat([l.float(), ab.float()], dim=1))  # (B, 3, H, W)
        targets = rgb.permute(0, 2, 3, 1).reshape(-1, 3).numpy().astype(self.network.dtype)
        return self._windows(l), targets

    def predict_rgb(self, l: torch.Tensor) -> np.ndarray:
        """``l (B, 1, H, W)`` in [0, 100] -> predicted sRGB ``(B, H, W, 3)`` in [0, 1]."""
        check_lightness_batch(l)
        batch, _, height, width = l.shape
        rgb = self.network.predict(self._windows(l), batch_size=_PREDICT_CHUNK)
        return rgb.reshape(batch, height, width, 3)

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H, W)`` (float32, Lab units) of the predicted RGB."""
        rgb = torch.from_numpy(np.ascontiguousarray(self.predict_rgb(l), dtype=np.float32))
        lab = rgb_to_lab_torch(rgb, dim=-1)  # (B, H, W, 3)
        return lab[..., 1:].permute(0, 3, 1, 2).contiguous()
