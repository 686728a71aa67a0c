"""U-Net regression colorizer (seed 004), and the generator that pix2pix reuses.

Encoder: ``depth`` 4x4 stride-2 convolutions, each halving the resolution; channels
``width, 2 width, 4 width, 8 width, 8 width, ...`` (capped at ``8 width``), batch norm on all
but the first and the innermost, LeakyReLU 0.2. Decoder: 4x4 stride-2 transposed
convolutions back to full resolution, each joined to the encoder feature of the same size
(skip connection), batch norm, ReLU, dropout 0.5 on the first three. Output: ``tanh`` =
``ab / 110``; loss: L1 on normalised ab.

With ``width=64, depth=8, input_size=256`` this is the pix2pix generator of Isola et al.
(2017): encoder C64-C128-C256-C512-C512-C512-C512-C512, 54.4 M parameters, which is the
"~54M" seed 004 reports.

Seed 004's own layer listing is a different network (preset ``unet-relu``):
``depth=7``, ``encoder_activation="relu"`` ("ReLU for hidden layers"), ``batch_norm="all"``
("Batch Normalization after each conv layer", the first block and the bottleneck included)
and ``ab_norm=128`` (its ``ab / 128`` scaling); 41.8 M parameters at width 64. Depth 7 is
the listing block for block: its six encoder blocks down1-down6 (1 -> 64 -> 128 -> 256 ->
512 -> 512 -> 512) and its separate 512-channel bottleneck are tinct's seven levels, and
its decoder up1-up6 + final (512 -> 512, 1024 -> 512, 1024 -> 512, 1024 -> 256,
512 -> 128, 256 -> 64, 128 -> 2) is the decoder of depth 7. The listing calls the
bottleneck 4x4, which is down6's output at 256 px; the bottleneck block's own output is
2x2. See docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tinct.color import LAB
from tinct.models.base import ColorModel, check_lightness_batch
from tinct.models.registry import register_model

__all__ = ["UNetGenerator", "UNet"]

_DROPOUT_BLOCKS = 3  # decoder blocks with dropout, counted from the bottleneck (pix2pix)
_ACTIVATIONS = ("leaky_relu", "relu")
_BATCH_NORMS = ("inner", "all")
SEED004_AB_NORM = 128.0  # seed 004's ab scaling, "ab/128" (tinct.color.LAB.ab_norm is 110)


def _encoder_channels(width: int, depth: int) -> list[int]:
    return [width * min(2**i, 8) for i in range(depth)]


class UNetGenerator(nn.Module):
    """Image-to-image U-Net: ``(B, in_channels, S, S)`` -> ``(B, out_channels, S, S)`` in [-1, 1].

    ``S`` must be a multiple of ``2**depth``. ``encoder_activation``: ``"leaky_relu"`` (0.2,
    pix2pix) or ``"relu"`` (seed 004); ``batch_norm``: ``"inner"`` (none on the first and the
    innermost encoder block, pix2pix) or ``"all"`` (after every encoder conv, seed 004).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        width: int = 64,
        depth: int = 8,
        dropout: float = 0.5,
        encoder_activation: str = "leaky_relu",
        batch_norm: str = "inner",
    ):
        super().__init__()
        if depth < 2:
            raise ValueError(f"U-Net depth must be at least 2, got {depth}")
        if width < 1:
            raise ValueError(f"U-Net width must be positive, got {width}")
        if encoder_activation not in _ACTIVATIONS:
            raise ValueError(
                f"U-Net encoder_activation must be one of {', '.join(_ACTIVATIONS)}, got {encoder_activation!r}"
            )
        if batch_norm not in _BATCH_NORMS:
            raise ValueError(f"U-Net batch_norm must be one of {', '.join(_BATCH_NORMS)}, got {batch_norm!r}")
        self.depth = depth
        channels = _encoder_channels(width, depth)
        self.down = nn.ModuleList()
        c_in = in_channels
        for i, c_out in enumerate(channels):
            # pix2pix: no batch norm on the first block nor on the innermost one, whose
            # output is 1x1 at full depth: a batch of one would have nothing to normalise.
            norm = batch_norm == "all" or 0 < i < depth - 1
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not norm)]
            if norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True) if encoder_activation == "relu" else nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))
            c_in = c_out
        self.up = nn.ModuleList()
        # Decoder block j (j = 0 at the bottleneck) maps to the size of encoder level depth-2-j
        # and is concatenated with it; the last block produces the image.
        for j in range(depth - 1):
            skip = channels[depth - 2 - j]
            c_in_up = channels[-1] if j == 0 else 2 * channels[depth - 1 - j]
            layers = [nn.ConvTranspose2d(c_in_up, skip, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(skip)]
            if j < _DROPOUT_BLOCKS and dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.ReLU(inplace=True))
            self.up.append(nn.Sequential(*layers))
        self.out = nn.ConvTranspose2d(2 * channels[0], out_channels, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        if x.shape[-2] % 2**self.depth or size % 2**self.depth:
            raise ValueError(
                f"U-Net of depth {self.depth} needs height and width divisible by {2**self.depth}, "
                f"got {tuple(x.shape[-2:])}"
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        # skips[-1] is the bottleneck; the others are joined on the way up.
        for j, block in enumerate(self.up):
            x = torch.cat([block(x), skips[-2 - j]], dim=1)
        return torch.tanh(self.out(x))


@register_model("unet")
class UNet(ColorModel):
    """Seed 004's U-Net colorizer: L -> ab at full resolution, L1 loss."""

    @dataclass
    class Config:
        input_size: int = 256  # working resolution; multiple of 2**depth
        width: int = 64  # channels of the first encoder block (64 = published)
        depth: int = 8  # stride-2 levels; 8 at 256 px reaches a 1x1 bottleneck (pix2pix); seed 004's listing: 7
        dropout: float = 0.5  # on the three decoder blocks nearest the bottleneck
        encoder_activation: str = "leaky_relu"  # "leaky_relu" (0.2, pix2pix) | "relu" (seed 004)
        batch_norm: str = "inner"  # "inner" (pix2pix) | "all" (seed 004: after each conv)
        ab_norm: float = 110.0  # the network's ab units, ab / ab_norm (tinct.color.LAB); seed 004: 128

    def __init__(self, config: Config):
        super().__init__(config)
        if config.input_size % 2**config.depth:
            raise ValueError(
                f"{self.name} input_size must be divisible by 2**depth = {2**config.depth}, got {config.input_size}"
            )
        if not config.ab_norm > 0:
            raise ValueError(f"{self.name} ab_norm must be > 0, got {config.ab_norm}")
        self.generator = UNetGenerator(
            1, 2, config.width, config.depth, config.dropout, config.encoder_activation, config.batch_norm
        )

    def normalize_ab(self, ab: torch.Tensor) -> torch.Tensor:
        """ab in Lab units -> the network's units, ``ab / ab_norm``."""
        return ab / self.config.ab_norm

    def unnormalize_ab(self, ab):
        """The network's ab units -> Lab units (a tensor or a float)."""
        return ab * self.config.ab_norm

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` Lab L -> normalised ab ``(B, 2, H, W)`` in [-1, 1] (``ab / ab_norm``)."""
        check_lightness_batch(l)
        return self.generator(LAB.normalize_l(l))

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H, W)`` in Lab units."""
        return self.unnormalize_ab(self(l))

    def training_loss(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """L1 between predicted and true ab, both divided by ``ab_norm`` (110: 0.1 = 11 Lab units)."""
        loss = F.l1_loss(self(l), self.normalize_ab(ab))
        value = float(loss.detach())
        return loss, {"loss": value, "ab_l1": self.unnormalize_ab(value)}
