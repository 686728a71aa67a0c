"""TinctNet: the compact CPU colorizer that ships inside the package.

An encoder reduces the lightness to 1/16 resolution; a global-context branch (Iizuka et al.
2016) pools the whole scene into one vector and adds it back everywhere, so a photo agrees
with itself; a decoder with skip connections returns to 1/4 resolution, where chroma is
predicted (it is smooth, and full-resolution detail comes from the photo's own lightness).

Two heads:
    ``bins``       : logits over the in-gamut ab bins, rebalanced cross-entropy, annealed-mean
                     decoding (Zhang et al. 2016) -- vivid colour; optionally faint decoded
                     tints are dropped and confident colours strengthened (``commit_chroma``);
    ``regression`` : ab directly, L1 loss -- simple, tends to brownish averages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tinct.color import LAB
from tinct.models import ab_bins
from tinct.models.base import ColorModel, check_lightness_batch
from tinct.models.registry import register_model


def _conv_block(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


@dataclass
class BinsDecodingConfig:
    """The head and decoding settings of the families that use :class:`BinsDecoding`."""

    head: str = "bins"  # "bins" or "regression"
    temperature: float = ab_bins.ANNEALED_MEAN_T  # annealed-mean decoding (bins head)
    rebalance_mix: float = 0.5  # lambda of the rebalancing weights (bins head)
    prior_correction: float = 0.0  # beta: decode from logits - beta * log(class weight)
    chroma_floor: float = 0.0  # decoded chroma c -> chroma_gain * max(c - chroma_floor, 0)
    chroma_gain: float = 1.0  # (bins head; see ab_bins.commit_chroma)
    hue_gate_low: float = 0.0  # ab scaled by clip((R - low) / (high - low), 0, 1), R the hue
    hue_gate_high: float = 0.0  # concentration (ab_bins.gate_by_hue); high 0: no gate
    flip_average: bool = False  # test time: decode the mean output of the photo and its mirror image


class BinsDecoding:
    """Decoding shared by the families with a ``bins`` or ``regression`` head (``tinctnet``,
    ``tinctnet2``). Their ``Config`` carries ``head``, ``temperature``, ``rebalance_mix``,
    ``prior_correction``, ``chroma_floor``, ``chroma_gain``, ``hue_gate_low``,
    ``hue_gate_high`` and ``flip_average``; a bins model has the buffers ``bin_centers (Q, 2)`` and
    ``class_weights (Q,)``."""

    fit_statistics_from = "ab_samples"  # the rebalancing weights (a bins head; a no-op for regression)

    @property
    def tunable_decoding(self) -> bool:
        """A bins head: ``tinct tune`` searches its decoding settings."""
        return self.config.head == "bins"

    def _check_decoding(self, config, family: str) -> None:
        if config.head not in ("bins", "regression"):
            raise ValueError(f"{family} head must be 'bins' or 'regression', got {config.head!r}")
        ab_bins.check_commitment(config.chroma_floor, config.chroma_gain, (f"{family} chroma_floor", f"{family} chroma_gain"))
        ab_bins.check_hue_gate(config.hue_gate_low, config.hue_gate_high, (f"{family} hue_gate_low", f"{family} hue_gate_high"))

    def _build_bins_buffers(self) -> int:
        """Register the bin buffers for a bins head; return the head's output channels."""
        if self.config.head != "bins":
            return 2
        self.register_buffer("bin_centers", ab_bins.bin_centers())
        uniform = torch.full((ab_bins.NUM_BINS,), 1.0 / ab_bins.NUM_BINS)
        self.register_buffer("class_weights", ab_bins.rebalancing_weights(uniform, self.config.rebalance_mix))
        return ab_bins.NUM_BINS

    def colour_loss(self, output: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Rebalanced cross-entropy (bins) or L1 on normalised ab (regression) of ``output``
        ``(B, Q or 2, h, w)`` against the truth ``ab (B, 2, H, W)`` in Lab units."""
        if self.config.head == "bins":
            return ab_bins.rebalanced_cross_entropy(output, ab, self.bin_centers, self.class_weights)
        target = F.adaptive_avg_pool2d(LAB.normalize_ab(ab), output.shape[-2:])
        return F.l1_loss(torch.tanh(output), target)

    def fit_statistics(self, ab_samples: torch.Tensor) -> None:
        """Set the rebalancing weights from training colours ``ab_samples (N, 2)`` (Lab units)."""
        if self.config.head != "bins":
            return
        prior = ab_bins.empirical_prior(ab_samples, self.bin_centers)
        self.class_weights.copy_(ab_bins.rebalancing_weights(prior, self.config.rebalance_mix))

    def adjusted_logits(self, output: torch.Tensor) -> torch.Tensor:
        """Undo a share ``beta`` of the rebalancing bias before decoding.

        A classifier trained with per-class weights w learns probabilities tilted by w
        (rare, saturated colours boosted); subtracting ``beta * log w`` from the logits
        removes that tilt entirely at beta = 1 and leaves it at beta = 0, so one trained
        network offers a dial between faithful and vivid colour.
        """
        if not self.config.prior_correction:
            return output
        return output - self.config.prior_correction * self.class_weights.log()[None, :, None, None]

    def test_time_output(self, l: torch.Tensor, *maps: torch.Tensor | None) -> torch.Tensor:
        """The network's output for ``l (B, 1, H, W)`` (and any hint ``maps``, passed on to
        ``forward``) that :meth:`decode` turns into colour.

        With ``flip_average`` it is the mean of the output and the mirrored output of the
        mirrored photo: one batch of 2B. A network's colour changes by several Lab units when
        the photo is mirrored; the mean keeps what both views agree on. Maps of shape
        ``(B, C, H, W)`` are mirrored with the photo; others (a histogram ``(B, Q)``) are not.
        """
        if not self.config.flip_average:
            return self(l, *maps)
        both = [torch.cat([m, m.flip(-1)]) if m is not None and m.ndim == 4 else
                (None if m is None else torch.cat([m, m])) for m in maps]
        out = self(torch.cat([l, l.flip(-1)]), *both).unflatten(0, (2, -1))  # (2, B, ...): a batch size an export keeps free
        return (out[0] + out[1].flip(-1)) / 2

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        if self.config.head == "bins":
            logits = self.adjusted_logits(output)
            if self.config.hue_gate_high:
                ab, concentration = ab_bins.annealed_mean_and_hue_concentration(
                    logits, self.bin_centers, self.config.temperature
                )
                ab = ab_bins.gate_by_hue(ab, concentration, self.config.hue_gate_low, self.config.hue_gate_high)
            else:
                ab = ab_bins.annealed_mean(logits, self.bin_centers, self.config.temperature)
            return ab_bins.commit_chroma(ab, self.config.chroma_floor, self.config.chroma_gain)
        return LAB.unnormalize_ab(torch.tanh(output))


@register_model("tinctnet")
class TinctNet(BinsDecoding, ColorModel):
    @dataclass
    class Config(BinsDecodingConfig):
        input_size: int = 224  # working resolution (pixels, square)
        width: int = 32  # channels of the first stage; stages use 1, 2, 4, 8 x width
        classes: int = 0  # > 0: also classify the photo from the global branch (Iizuka et al. 2016)
        class_loss_weight: float = 0.2  # weight of that cross-entropy beside the colour loss

    def __init__(self, config: Config):
        super().__init__(config)
        self._check_decoding(config, "tinctnet")
        if config.input_size % 16:
            raise ValueError(f"tinctnet input_size must be a multiple of 16, got {config.input_size}")
        if config.classes < 0 or config.class_loss_weight < 0:
            raise ValueError(f"tinctnet classes and class_loss_weight must be >= 0, got {config.classes} and {config.class_loss_weight}")
        w = config.width
        self.stage1 = nn.Sequential(_conv_block(1, w, 2), _conv_block(w, w))  # 1/2
        self.stage2 = nn.Sequential(_conv_block(w, 2 * w, 2), _conv_block(2 * w, 2 * w))  # 1/4
        self.stage3 = nn.Sequential(_conv_block(2 * w, 4 * w, 2), _conv_block(4 * w, 4 * w))  # 1/8
        self.stage4 = nn.Sequential(
            _conv_block(4 * w, 8 * w, 2), _conv_block(8 * w, 8 * w, dilation=2), _conv_block(8 * w, 8 * w)
        )  # 1/16
        self.global_context = nn.Sequential(nn.Linear(8 * w, 8 * w), nn.ReLU(inplace=True), nn.Linear(8 * w, 8 * w))
        self.classifier = nn.Linear(8 * w, config.classes) if config.classes else None
        self.up3 = _conv_block(8 * w + 4 * w, 4 * w)
        self.up2 = nn.Sequential(_conv_block(4 * w + 2 * w, 2 * w), _conv_block(2 * w, 2 * w))
        self.head = nn.Conv2d(2 * w, self._build_bins_buffers(), 1)

    @property
    def uses_labels(self) -> bool:
        """Whether ``training_loss`` wants the photos' class labels (``labels=``)."""
        return self.classifier is not None

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` Lab L -> ``(B, Q or 2, H/4, W/4)`` logits or normalised ab."""
        return self._forward(l)[0]

    def _forward(self, l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The colour output of :meth:`forward` and the global scene vector ``(B, 8w)``."""
        check_lightness_batch(l)
        x = LAB.normalize_l(l)
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        s3 = self.stage3(s2)
        s4 = self.stage4(s3)
        scene = self.global_context(s4.mean(dim=(2, 3)))  # (B, 8w)
        s4 = s4 + scene[:, :, None, None]
        u3 = self.up3(torch.cat([F.interpolate(s4, size=s3.shape[-2:], mode="bilinear", align_corners=False), s3], 1))
        u2 = self.up2(torch.cat([F.interpolate(u3, size=s2.shape[-2:], mode="bilinear", align_corners=False), s2], 1))
        return self.head(u2), scene

    def predict_ab(self, l: torch.Tensor) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H/4, W/4)`` in Lab units."""
        return self.decode(self.test_time_output(l))

    def training_loss(
        self, l: torch.Tensor, ab: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Colour loss of ``l (B, 1, H, W)`` against ``ab (B, 2, H, W)``; with ``labels`` (int64
        ``(B,)``, -1 for photos without a class) and ``classes > 0``, plus ``class_loss_weight``
        times the cross-entropy of the photo's class predicted from the global branch."""
        output, scene = self._forward(l)
        loss = self.colour_loss(output, ab)
        metrics = {"colour_loss": float(loss.detach())}
        if self.classifier is not None and labels is not None:
            class_logits = self.classifier(F.relu(scene))
            known = labels >= 0
            if known.any() and int(labels.max()) >= self.config.classes:
                raise ValueError(f"label {int(labels.max())} out of range for tinctnet classes={self.config.classes}")
            # Zero (with a gradient path) when no photo of the batch has a class.
            class_loss = F.cross_entropy(class_logits[known], labels[known]) if known.any() else class_logits.sum() * 0
            loss = loss + self.config.class_loss_weight * class_loss
            metrics["class_loss"] = float(class_loss.detach())
        metrics["loss"] = float(loss.detach())
        return loss, metrics
