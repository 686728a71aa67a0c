"""Palette classifiers (seed 001): colour a pixel by classifying its gray window.

A k-means palette of ``num_colors`` colours is fitted before training
(:meth:`fit_statistics_from_dataset`, which the trainer calls); each pixel's colour is then
one palette entry, chosen by a softmax over the palette from the ``window x window``
lightness patch centred on it (cross-entropy against the palette entry nearest the pixel's
true colour). How the palette is fitted (``palette_fit``):

* ``"ab-kmeans"`` (default): k-means over the ab of ``train.statistics_pixels`` pixels of
  many training photos; the nearest entry is judged in ab.
* ``"rgb-sample-image"`` (seed 001 as written): k-means over the RGB pixels of one sample
  training photo (chosen by ``train.seed``), the seed's "sample image from the dataset ...
  used to derive a representative color set"; the nearest entry is judged in RGB and the
  RGB centres are kept (``palette_rgb``). The model still outputs ab (the photo's own L
  completes the colour), the ab of each RGB centre.

Decoding: the most likely entry (``decode="argmax"``, as the seed), the expectation of the
palette under the softmax (``"expectation"``), or an annealed mean (``"annealed-mean"``,
the softmax sharpened by ``temperature``). :func:`palette_image` draws the palette; the
trainer writes it as ``palette.png`` in the run folder.

Both variants run fully convolutionally, so a whole photo is one pass:

* ``palette-mlp``: the seed's MLP on a flattened window (Dense 200 sigmoid - 100 sigmoid -
  50 ReLU - K) is the same function as a ``window x window`` convolution followed by 1x1
  convolutions.
* ``palette-cnn``: the seed's small CNN (10 filters 6x6, 20 filters 4x4, Dense 50 ReLU, K).
  Its dense layer over the remaining feature window becomes a convolution whose kernel makes
  the total receptive field exactly ``window`` pixels.

The input is padded by replication so that every output pixel has a full window, and the
output (logits ``(B, K, H, W)``) has the input's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinct.color import LAB, lab_to_rgb_torch, rgb_to_lab_torch
from tinct.models import ab_bins
from tinct.models.base import ColorModel, check_lightness_batch
from tinct.models.registry import register_model

__all__ = ["PaletteMLP", "PaletteCNN", "fit_palette", "palette_image"]

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "none": nn.Identity}
_DECODES = ("argmax", "expectation", "annealed-mean")
_PALETTE_FITS = ("ab-kmeans", "rgb-sample-image")
_SWATCH_LIGHTNESS = (75.0, 50.0, 25.0)  # rows of palette_image: each ab entry at three lightnesses


def fit_palette(
    samples: np.ndarray | torch.Tensor, num_colors: int, seed: int = 0, n_init: int = 3, dims: int = 2
) -> torch.Tensor:
    """k-means centres ``(num_colors, dims)`` (float32, the samples' units) of ``samples (N, dims)``.

    ab samples (``dims`` 2, Lab units) or RGB samples (``dims`` 3). scikit-learn runs on one
    thread, so the centres are the same on any number of cores. ValueError if there are
    fewer distinct samples than colours.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    samples = np.asarray(samples.detach().cpu() if isinstance(samples, torch.Tensor) else samples)
    samples = samples.astype(np.float64).reshape(-1, dims)
    if not np.isfinite(samples).all():
        raise ValueError("palette: colour samples contain NaN or infinity")
    distinct = len(np.unique(np.round(samples, 3), axis=0))
    if distinct < num_colors:
        raise ValueError(f"palette: {num_colors} colours need at least {num_colors} distinct samples, got {distinct}")
    if len(samples) > 20000:
        kmeans = MiniBatchKMeans(n_clusters=num_colors, random_state=seed, n_init=n_init, batch_size=4096)
    else:
        kmeans = KMeans(n_clusters=num_colors, random_state=seed, n_init=n_init)
    # One OpenMP thread: k-means' parallel sums could otherwise depend on the core count.
    with threadpool_limits(limits=1):
        kmeans.fit(samples)
    return torch.from_numpy(kmeans.cluster_centers_.astype(np.float32))


def palette_image(model, swatch: int = 24) -> np.ndarray:
    """A view of a palette model's colours: uint8 ``(rows * swatch, K * swatch, 3)``.

    Column k is palette entry k (the class index). For an RGB palette the first row is the
    RGB centre itself; then come the entry's ab at L = 75, 50 and 25 (the model predicts ab,
    and the photo's own L decides how light it is drawn).
    """
    palette = model.palette.detach().cpu().float()  # (K, 2)
    rows = []
    if getattr(model, "palette_rgb", None) is not None:
        rows.append(model.palette_rgb.detach().cpu().float())
    for lightness in _SWATCH_LIGHTNESS:
        lab = torch.cat([torch.full((len(palette), 1), lightness), palette], dim=1)
        rows.append(lab_to_rgb_torch(lab, dim=-1))
    grid = torch.stack(rows)  # (rows, K, 3) in [0, 1]
    pixels = grid.repeat_interleave(swatch, dim=0).repeat_interleave(swatch, dim=1)
    return (pixels.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def _gamut_palette(num_colors: int) -> torch.Tensor:
    """A stand-in palette until :meth:`fit_statistics` sees training colours.

    Farthest-point sampling of the in-gamut ab bins, starting from neutral gray: evenly
    spread, deterministic, and cheap (no k-means when a checkpoint is being loaded).
    """
    centers = ab_bins.bin_centers()
    chosen = [int(centers.norm(dim=1).argmin())]
    distance = (centers - centers[chosen[0]]).norm(dim=1)
    for _ in range(num_colors - 1):
        chosen.append(int(distance.argmax()))
        distance = torch.minimum(distance, (centers - centers[chosen[-1]]).norm(dim=1))
    return centers[chosen].clone()


class _PaletteClassifier(ColorModel):
    """Shared machinery: palette buffer, window padding, decoding and the loss."""

    fit_statistics_from = "dataset"  # the palette: k-means of ab samples or one photo's colours
    has_palette = True

    def _setup_palette(self, config) -> None:
        if config.num_colors < 2:
            raise ValueError(f"{self.name}: num_colors must be at least 2, got {config.num_colors}")
        if config.num_colors > ab_bins.NUM_BINS:
            raise ValueError(f"{self.name}: num_colors must be at most {ab_bins.NUM_BINS}, got {config.num_colors}")
        if config.window < 1:
            raise ValueError(f"{self.name}: window must be positive, got {config.window}")
        if config.decode not in _DECODES:
            raise ValueError(f"{self.name}: decode must be one of {_DECODES}, got {config.decode!r}")
        if config.temperature <= 0:
            raise ValueError(f"{self.name}: temperature must be > 0, got {config.temperature}")
        if config.palette_fit not in _PALETTE_FITS:
            raise ValueError(f"{self.name}: palette_fit must be one of {_PALETTE_FITS}, got {config.palette_fit!r}")
        self.register_buffer("palette", _gamut_palette(config.num_colors))  # (K, 2) ab, Lab units
        if config.palette_fit == "rgb-sample-image":
            # (K, 3) sRGB in [0, 1]: the fitted centres, which decide each pixel's target class.
            mid_gray = torch.full((config.num_colors, 1), 50.0)
            self.register_buffer("palette_rgb", lab_to_rgb_torch(torch.cat([mid_gray, self.palette], 1), dim=-1))
        else:
            self.palette_rgb = None

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        # Windows centred on each pixel; for an even window the extra row/column is after it.
        before = (self.config.window - 1) // 2
        after = self.config.window - 1 - before
        return F.pad(x, (before, after, before, after), mode="replicate")

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` Lab L -> palette logits ``(B, K, H, W)``."""
        check_lightness_batch(l)
        return self.net(self._pad(LAB.normalize_l(l)))

    def fit_statistics(self, ab_samples: torch.Tensor) -> None:
        """Fit an ``ab-kmeans`` palette: k-means on training colours ``ab_samples (N, 2)`` in Lab units."""
        if self.palette_rgb is not None:
            raise ValueError(
                f"{self.name}: palette_fit 'rgb-sample-image' needs a training photo: use fit_statistics_from_dataset"
            )
        self.palette.copy_(fit_palette(ab_samples, self.config.num_colors))

    def fit_rgb_palette(self, lab: torch.Tensor, seed: int = 0) -> None:
        """Fit an ``rgb-sample-image`` palette: k-means over the RGB pixels of one photo
        ``lab (3, H, W)`` in Lab units (scikit-learn's default 10 starts, as the seed's era)."""
        rgb = lab_to_rgb_torch(lab.float(), dim=0).reshape(3, -1).T  # (H W, 3) in [0, 1]
        try:
            centres = fit_palette(rgb * 255.0, self.config.num_colors, seed=seed, n_init=10, dims=3) / 255.0
        except ValueError as exc:
            raise ValueError(
                f"{self.name}: the sample photo cannot give the palette ({exc}); train.seed picks another photo, "
                "and palette_fit 'ab-kmeans' uses many"
            ) from None
        self.palette_rgb.copy_(centres.clamp(0, 1))
        self.palette.copy_(rgb_to_lab_torch(self.palette_rgb, dim=-1)[:, 1:])

    def fit_statistics_from_dataset(self, dataset, pixels: int, seed: int = 0) -> None:
        """Fit the palette from the training set (the trainer calls this on a fresh run):
        ``ab-kmeans`` from ``pixels`` ab samples (:func:`tinct.data.ab_samples`),
        ``rgb-sample-image`` from one photo chosen by ``seed`` (:func:`tinct.data.sample_photo`)."""
        from tinct.data import ab_samples, sample_photo

        if self.palette_rgb is None:
            self.fit_statistics(ab_samples(dataset, pixels, seed))
        else:
            self.fit_rgb_palette(sample_photo(dataset, seed), seed)

    def palette_image(self) -> np.ndarray:
        """uint8 ``(H, W, 3)`` view of the palette (:func:`palette_image`)."""
        return palette_image(self)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` -> ab ``(B, 2, H, W)`` in Lab units."""
        if self.config.decode == "argmax":
            return self.palette[logits.argmax(dim=1)].permute(0, 3, 1, 2)
        temperature = 1.0 if self.config.decode == "expectation" else self.config.temperature
        return ab_bins.annealed_mean(logits, self.palette, temperature)

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H, W)`` in Lab units."""
        return self.decode(self(l))

    def nearest_colour(self, ab: torch.Tensor, l: torch.Tensor | None = None) -> torch.Tensor:
        """Index ``(B, H, W)`` of the palette entry nearest each pixel of ``ab (B, 2, H, W)``:
        in ab, or for an ``rgb-sample-image`` palette in sRGB (which needs ``l (B, 1, H, W)``)."""
        b, _, h, w = ab.shape
        if self.palette_rgb is None:
            colours, centres = ab, self.palette
        else:
            if l is None:
                raise ValueError(f"{self.name}: an RGB palette judges the nearest colour in RGB; pass l")
            colours, centres = lab_to_rgb_torch(torch.cat([l, ab], dim=1)), self.palette_rgb
        flat = colours.permute(0, 2, 3, 1).reshape(b * h * w, -1)
        return torch.cdist(flat, centres.to(flat)).argmin(dim=1).reshape(b, h, w)

    def training_loss(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of each pixel's window against its nearest palette colour."""
        logits = self(l)
        target = self.nearest_colour(ab, l)
        loss = F.cross_entropy(logits, target)
        accuracy = float((logits.detach().argmax(dim=1) == target).float().mean())
        return loss, {"loss": float(loss.detach()), "accuracy": accuracy}


@register_model("palette-mlp")
class PaletteMLP(_PaletteClassifier):
    """Seed 001's MLP: flattened gray window -> hidden layers -> softmax over the palette."""

    @dataclass
    class Config:
        input_size: int = 128  # working resolution (the network itself takes any size)
        num_colors: int = 32  # palette size K (the seed tried 16, 32, 64)
        window: int = 7  # zeta: side of the gray window (the seed tried 5, 7, 11, 12, 15)
        hidden: tuple[int, ...] = (200, 100, 50)
        activations: tuple[str, ...] = ("sigmoid", "sigmoid", "relu")
        decode: str = "argmax"  # "argmax", "expectation" or "annealed-mean"
        temperature: float = ab_bins.ANNEALED_MEAN_T  # of "annealed-mean"
        palette_fit: str = "ab-kmeans"  # or "rgb-sample-image" (the seed's)

    def __init__(self, config: Config):
        super().__init__(config)
        self._setup_palette(config)
        if len(config.hidden) != len(config.activations) or not config.hidden:
            raise ValueError(
                f"palette-mlp: hidden {config.hidden} and activations {config.activations} need equal, non-zero lengths"
            )
        unknown = [a for a in config.activations if a not in _ACTIVATIONS]
        if unknown:
            raise ValueError(f"palette-mlp: unknown activation(s) {unknown}; choose from {sorted(_ACTIVATIONS)}")
        # The first dense layer sees the whole window: a window x window convolution.
        layers: list[nn.Module] = []
        c_in, kernel = 1, config.window
        for units, activation in zip(config.hidden, config.activations):
            layers += [nn.Conv2d(c_in, units, kernel), _ACTIVATIONS[activation]()]
            c_in, kernel = units, 1
        layers.append(nn.Conv2d(c_in, config.num_colors, 1))
        self.net = nn.Sequential(*layers)


@register_model("palette-cnn")
class PaletteCNN(_PaletteClassifier):
    """Seed 001's CNN: two small convolutions, a dense layer over the window, softmax."""

    @dataclass
    class Config:
        input_size: int = 128
        num_colors: int = 16  # the seed found 16 worked better for the CNN
        window: int = 11  # zeta; at least sum(kernels - 1) + 1
        conv_channels: tuple[int, ...] = (10, 20)
        conv_kernels: tuple[int, ...] = (6, 4)
        conv_activation: str = "relu"  # the seed's Keras layers had none ("none")
        dense: int = 50  # units of the dense layer (ReLU)
        decode: str = "argmax"  # "argmax", "expectation" or "annealed-mean"
        temperature: float = ab_bins.ANNEALED_MEAN_T  # of "annealed-mean"
        palette_fit: str = "ab-kmeans"  # or "rgb-sample-image" (the seed's)

    def __init__(self, config: Config):
        super().__init__(config)
        self._setup_palette(config)
        if len(config.conv_channels) != len(config.conv_kernels):
            raise ValueError(
                f"palette-cnn: conv_channels {config.conv_channels} and conv_kernels {config.conv_kernels} differ in length"
            )
        if config.conv_activation not in _ACTIVATIONS:
            raise ValueError(f"palette-cnn: unknown conv_activation {config.conv_activation!r}")
        # Receptive field of the conv stack, then a dense kernel that completes the window.
        dense_kernel = config.window - sum(k - 1 for k in config.conv_kernels)
        if dense_kernel < 1:
            raise ValueError(
                f"palette-cnn: window {config.window} is smaller than the receptive field "
                f"{config.window - dense_kernel + 1} of kernels {config.conv_kernels}"
            )
        layers: list[nn.Module] = []
        c_in = 1
        for channels, kernel in zip(config.conv_channels, config.conv_kernels):
            layers += [nn.Conv2d(c_in, channels, kernel), _ACTIVATIONS[config.conv_activation]()]
            c_in = channels
        layers += [nn.Conv2d(c_in, config.dense, dense_kernel), nn.ReLU(), nn.Conv2d(config.dense, config.num_colors, 1)]
        self.net = nn.Sequential(*layers)
        self.dense_kernel = dense_kernel
