"""Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV 2016): the classic anchor.

A VGG-like stack of eight convolution blocks (3x3 kernels, ReLU, batch norm at the end of
each block) predicts, at 1/4 resolution, a distribution over quantised ab colours:

    block   channels  convs  resolution   notes
    conv1      64       2      1/2        second conv has stride 2
    conv2     128       2      1/4        second conv has stride 2
    conv3     256       3      1/8        third conv has stride 2
    conv4     512       3      1/8
    conv5     512       3      1/8        dilation 2
    conv6     512       3      1/8        dilation 2
    conv7     512       3      1/8
    conv8     256       3      1/4        first is a 4x4 stride-2 transposed conv; no norm
    head      Q        1x1     1/4        logits over the ab bins

Training: soft-encoded targets and class rebalancing (lambda = 0.5, prior fitted on the
training colours by :meth:`fit_statistics`); decoding: annealed mean, T = 0.38. At
``width_multiplier=1`` the network has about 32 M parameters, as published.

The bins are ``tinct.models.ab_bins`` (``NUM_BINS`` cells of the sRGB gamut), not the
paper's 313, which came from quantising ImageNet's colours; see docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tinct.color import LAB
from tinct.models import ab_bins
from tinct.models.base import ColorModel, check_lightness_batch
from tinct.models.registry import register_model

__all__ = ["Zhang16"]

# (channels, number of 3x3 convs, stride of the last conv, dilation) of conv1..conv7.
_ENCODER = [
    (64, 2, 2, 1),
    (128, 2, 2, 1),
    (256, 3, 2, 1),
    (512, 3, 1, 1),
    (512, 3, 1, 2),
    (512, 3, 1, 2),
    (512, 3, 1, 1),
]
_DECODER_CHANNELS = 256


def _scaled(channels: int, multiplier: float) -> int:
    return max(1, int(round(channels * multiplier)))


@register_model("zhang16")
class Zhang16(ColorModel):
    fit_statistics_from = "ab_samples"  # the rebalancing weights from the training colours

    @dataclass
    class Config:
        input_size: int = 256  # the paper trains on 176x176 crops of 256 images; multiple of 8
        width_multiplier: float = 1.0  # scales every block's channels (0.125 for CPU training)
        temperature: float = ab_bins.ANNEALED_MEAN_T  # annealed-mean decoding
        rebalance_mix: float = 0.5  # lambda: mix of prior and uniform in the rebalancing weights

    def __init__(self, config: Config):
        super().__init__(config)
        if config.input_size % 8:
            raise ValueError(f"zhang16 input_size must be a multiple of 8, got {config.input_size}")
        if config.width_multiplier <= 0:
            raise ValueError(f"zhang16 width_multiplier must be > 0, got {config.width_multiplier}")
        if config.temperature <= 0:
            raise ValueError(f"zhang16 temperature must be > 0, got {config.temperature}")
        m = config.width_multiplier
        blocks = []
        c_in = 1
        for channels, convs, last_stride, dilation in _ENCODER:
            c = _scaled(channels, m)
            layers: list[nn.Module] = []
            for k in range(convs):
                stride = last_stride if k == convs - 1 else 1
                layers += [nn.Conv2d(c_in, c, 3, stride=stride, padding=dilation, dilation=dilation), nn.ReLU(inplace=True)]
                c_in = c
            layers.append(nn.BatchNorm2d(c))
            blocks.append(nn.Sequential(*layers))
        c = _scaled(_DECODER_CHANNELS, m)
        blocks.append(
            nn.Sequential(
                nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1),
                nn.ReLU(inplace=True),
            )
        )
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(c, ab_bins.NUM_BINS, 1)
        self.register_buffer("bin_centers", ab_bins.bin_centers())
        uniform = torch.full((ab_bins.NUM_BINS,), 1.0 / ab_bins.NUM_BINS)
        self.register_buffer("class_weights", ab_bins.rebalancing_weights(uniform, config.rebalance_mix))

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` Lab L -> bin logits ``(B, Q, H/4, W/4)``."""
        check_lightness_batch(l)
        if l.shape[-2] % 8 or l.shape[-1] % 8:
            raise ValueError(f"zhang16 needs height and width divisible by 8, got {tuple(l.shape[-2:])}")
        return self.head(self.blocks(LAB.normalize_l(l)))

    def fit_statistics(self, ab_samples: torch.Tensor) -> None:
        """Rebalancing weights from training colours ``ab_samples (N, 2)`` in Lab units."""
        ab_samples = torch.as_tensor(ab_samples, dtype=torch.float32)
        prior = ab_bins.empirical_prior(ab_samples, self.bin_centers)
        self.class_weights.copy_(ab_bins.rebalancing_weights(prior, self.config.rebalance_mix))

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H/4, W/4)`` in Lab units (annealed mean)."""
        return ab_bins.annealed_mean(self(l), self.bin_centers, self.config.temperature)

    def training_loss(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Rebalanced soft-target cross-entropy against ab area-averaged to the logits' size."""
        loss = ab_bins.rebalanced_cross_entropy(self(l), ab, self.bin_centers, self.class_weights)
        return loss, {"loss": float(loss.detach())}
