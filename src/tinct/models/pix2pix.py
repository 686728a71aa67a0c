"""pix2pix colorizer (seed 002): U-Net generator + 70x70 PatchGAN discriminator.

The generator is :class:`tinct.models.unet.UNetGenerator` (L -> ab / 110). The
discriminator (Isola et al. 2017) sees ``concat(L, ab)`` and scores overlapping patches:
C64-C128-C256-C512 (4x4 convolutions, stride 2, 2, 2, 1, batch norm on all but the first,
LeakyReLU 0.2) then a 4x4 convolution to one logit per patch. Each logit sees a 70x70
window of the input; on 128x128 inputs the score map is 14x14 (the size seed 002 quotes).

Generator loss: ``l1_weight`` (100) x L1(ab / 110) + adversarial loss, binary
cross-entropy on logits (``gan_loss="bce"``) or least squares (``"lsgan"``). Training
alternates one discriminator step and one generator step per batch (:meth:`train_step`);
:meth:`training_loss` returns only the generator's L1, comparable across families for
validation. Checkpoints hold both networks, so training can resume in stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tinct.color import LAB
from tinct.models.base import check_lightness_batch, count_parameters
from tinct.models.registry import register_model
from tinct.models.unet import UNet

__all__ = ["PatchDiscriminator", "Pix2Pix"]


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``(B, in_channels, H, W)`` -> patch logits ``(B, 1, h, w)``.

    ``layers`` stride-2 blocks (C64, C128, C256 at ``width=64, layers=3``), one stride-1
    block (C512), then a stride-1 convolution to one channel. With ``layers=3`` each output
    sees 70x70 input pixels.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3):
        super().__init__()
        if layers < 1:
            raise ValueError(f"discriminator needs at least one stride-2 layer, got {layers}")
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        c = width
        for i in range(1, layers + 1):
            c_out = width * min(2**i, 8)
            stride = 2 if i < layers else 1
            blocks += [
                nn.Conv2d(c, c_out, 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            c = c_out
        blocks.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _setting(train_config: Any, key: str, default: Any) -> Any:
    """Read ``key`` from a train config given as a dataclass/namespace, a dict, or None."""
    if train_config is None:
        return default
    if isinstance(train_config, dict):
        value = train_config.get(key, default)
    else:
        value = getattr(train_config, key, default)
    return default if value is None else value


@register_model("pix2pix")
class Pix2Pix(UNet):
    """Seed 002's pix2pix: a U-Net generator trained against a 70x70 PatchGAN discriminator.

    The generator is seed 004's U-Net, inherited with its forward, ``predict_ab`` and L1
    ``training_loss`` (the validation loss); only the generator runs at inference.
    """

    custom_training_step = True  # generator and discriminator each have an optimiser

    @dataclass
    class Config:
        input_size: int = 128  # seed 002's code trains at 128x128
        width: int = 64  # generator's first-layer channels
        depth: int = 7  # generator levels: 128 / 2**7 = 1x1 bottleneck
        dropout: float = 0.5
        encoder_activation: str = "leaky_relu"  # generator options, as unet's
        batch_norm: str = "inner"
        ab_norm: float = 110.0
        disc_width: int = 64  # discriminator's first-layer channels
        disc_layers: int = 3  # 3 -> 70x70 patches
        l1_weight: float = 100.0  # lambda of the L1 term
        gan_loss: str = "bce"  # "bce" (logits) or "lsgan" (least squares)
        beta1: float = 0.5  # Adam beta1 of both optimisers: part of the GAN recipe, so kept here

    def __init__(self, config: Config):
        super().__init__(config)  # validates input_size against depth, builds the generator
        if config.gan_loss not in ("bce", "lsgan"):
            raise ValueError(f"pix2pix gan_loss must be 'bce' or 'lsgan', got {config.gan_loss!r}")
        if not 0 <= config.beta1 < 1:
            raise ValueError(f"pix2pix beta1 must be in [0, 1), got {config.beta1}")
        if config.l1_weight < 0:
            raise ValueError(f"pix2pix l1_weight must be >= 0, got {config.l1_weight}")
        self.discriminator = PatchDiscriminator(3, config.disc_width, config.disc_layers)

    def _adversarial(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.full_like(logits, 1.0 if real else 0.0)
        if self.config.gan_loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)

    def _score(self, logits: torch.Tensor) -> float:
        """Mean "real" score the discriminator gives: a probability (bce) or raw output (lsgan)."""
        logits = logits.detach()
        return float((torch.sigmoid(logits) if self.config.gan_loss == "bce" else logits).mean())

    def make_optimizers(self, train_config: Any = None) -> dict[str, torch.optim.Optimizer]:
        """Adam for each network, betas ``(beta1, 0.999)``; ``lr`` and ``weight_decay`` from the
        train config (``train.optimizer`` is not consulted: pix2pix always uses Adam)."""
        lr = float(_setting(train_config, "lr", 2e-4))
        betas = (self.config.beta1, 0.999)
        weight_decay = float(_setting(train_config, "weight_decay", 0.0))
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas, weight_decay=weight_decay),
            "discriminator": torch.optim.Adam(
                self.discriminator.parameters(), lr=lr, betas=betas, weight_decay=weight_decay
            ),
        }

    def train_step(
        self, l: torch.Tensor, ab: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        """One discriminator step then one generator step on a batch; returns float losses.

        ``loss`` is the generator's L1 (as :meth:`training_loss`); ``g_adv`` its adversarial
        term; ``d_loss`` the discriminator's loss (mean of real and fake terms).
        """
        check_lightness_batch(l)
        l_norm = LAB.normalize_l(l)
        ab_real = self.normalize_ab(ab)
        ab_fake = self.generator(l_norm)  # (B, 2, H, W)

        # Discriminator: real pairs -> 1, generated pairs -> 0.
        self.discriminator.requires_grad_(True)
        optimizers["discriminator"].zero_grad(set_to_none=True)
        logits_real = self.discriminator(torch.cat([l_norm, ab_real], dim=1))
        logits_fake = self.discriminator(torch.cat([l_norm, ab_fake.detach()], dim=1))
        d_loss = 0.5 * (self._adversarial(logits_real, True) + self._adversarial(logits_fake, False))
        d_loss.backward()
        optimizers["discriminator"].step()

        # Generator: fool the (just updated, now frozen) discriminator and stay close in L1.
        self.discriminator.requires_grad_(False)
        optimizers["generator"].zero_grad(set_to_none=True)
        g_adv = self._adversarial(self.discriminator(torch.cat([l_norm, ab_fake], dim=1)), True)
        g_l1 = F.l1_loss(ab_fake, ab_real)
        (g_adv + self.config.l1_weight * g_l1).backward()
        optimizers["generator"].step()
        self.discriminator.requires_grad_(True)

        l1 = float(g_l1.detach())
        return {
            "loss": l1,
            "ab_l1": self.unnormalize_ab(l1),
            "g_adv": float(g_adv.detach()),
            "d_loss": float(d_loss.detach()),
            "d_real": self._score(logits_real),
            "d_fake": self._score(logits_fake),
        }

    def num_parameters_by_network(self) -> dict[str, int]:
        return {
            "generator": count_parameters(self.generator),
            "discriminator": count_parameters(self.discriminator),
        }
