"""LPIPS, the learned perceptual image patch similarity (optional; needs local weight files).

LPIPS (Zhang et al. 2018) runs both images through a backbone network, and at each of
several layers ``l``:

1. unit-normalises every feature vector along the channel axis, ``f / (|f| + 1e-10)``;
2. takes the squared difference of the two normalised maps;
3. weights the channels with the learned non-negative ``w_l`` (a 1x1 convolution to one
   channel) and averages over the spatial positions.

The distance is the sum over layers. Inputs are RGB in [0, 1], mapped to [-1, 1] and then
standardised with the scaling layer's shift ``(-0.030, -0.088, -0.188)`` and scale
``(0.458, 0.448, 0.450)``. Lower is better; identical images score 0.

Two files are needed: the backbone (torchvision's AlexNet or VGG-16 state dict, e.g.
``alexnet-owt-7be5be79.pth``; only ``features.*`` is used) and the linear weights that
the lpips package ships (``alex.pth`` / ``vgg.pth``, keys ``lin0.model.1.weight`` ...).
The backbone kind is recognised from the linear weights' channel counts. The feature
network is pluggable: :class:`LPIPS` takes any module returning a list of feature maps.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinct.metrics.weights import WeightsError, load_strict, read_state_dict

__all__ = ["LPIPS", "AlexNetFeatures", "VGG16Features", "BACKBONE_CHANNELS", "lpips_from_files"]

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


class AlexNetFeatures(nn.Module):
    """torchvision AlexNet's ``features`` (same parameter names); returns the 5 ReLU outputs."""

    CHANNELS = (64, 192, 384, 256, 256)
    MIN_SIZE = 32  # smaller inputs vanish in the pooling

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(),  # 0, 1 -> tap
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),  # 3, 4 -> tap
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),  # 6, 7 -> tap
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),  # 8, 9 -> tap
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),  # 10, 11 -> tap
        )
        self.taps = (1, 4, 7, 9, 11)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
        return outputs


class VGG16Features(AlexNetFeatures):
    """torchvision VGG-16's ``features`` up to relu5_3; returns relu1_2, 2_2, 3_3, 4_3, 5_3."""

    CHANNELS = (64, 128, 256, 512, 512)
    MIN_SIZE = 16

    def __init__(self):
        nn.Module.__init__(self)
        layers: list[nn.Module] = []
        c_in = 3
        plan = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
        for item in plan:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU()]
                c_in = item
        self.features = nn.Sequential(*layers)
        self.taps = (3, 8, 15, 22, 29)


BACKBONE_CHANNELS = {"alex": AlexNetFeatures, "vgg": VGG16Features}


class LPIPS(nn.Module):
    """LPIPS distance over a pluggable feature network.

    Args:
        features: module mapping ``(B, 3, H, W)`` standardised RGB to a list of maps.
        linear_weights: one non-negative weight vector ``(C_l,)`` per feature map.
    """

    def __init__(self, features: nn.Module, linear_weights: list[torch.Tensor]):
        super().__init__()
        self.features = features.eval()
        for index, weight in enumerate(linear_weights):
            self.register_buffer(f"weight{index}", weight.detach().reshape(-1).float().clone())
        self.num_layers = len(linear_weights)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def forward(self, pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        """Distances ``(B,)`` between two batches of RGB ``(B, 3, H, W)`` in [0, 1]."""
        maps_p = self.features((2 * pred - 1 - self.shift) / self.scale)
        maps_t = self.features((2 * truth - 1 - self.shift) / self.scale)
        if len(maps_p) != self.num_layers:
            raise ValueError(f"feature network gave {len(maps_p)} maps for {self.num_layers} linear layers")
        total = torch.zeros(pred.shape[0], dtype=pred.dtype, device=pred.device)
        for index, (fp, ft) in enumerate(zip(maps_p, maps_t)):
            fp = fp / (fp.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            ft = ft / (ft.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            weight = getattr(self, f"weight{index}").view(1, -1, 1, 1)
            total = total + ((fp - ft) ** 2 * weight).sum(dim=1).mean(dim=(1, 2))
        return total

    def distance(self, pred: np.ndarray, truth: np.ndarray) -> float:
        """LPIPS between two uint8 RGB images ``(H, W, 3)``."""
        def to_tensor(rgb: np.ndarray) -> torch.Tensor:
            return torch.tensor(rgb).permute(2, 0, 1)[None].float() / 255.0  # copies: PIL arrays are read-only

        min_size = getattr(self.features, "MIN_SIZE", 1)
        if min(truth.shape[:2]) < min_size:
            raise ValueError(f"LPIPS needs images of at least {min_size} px on the short side, got {truth.shape[:2]}")
        with torch.inference_mode():
            return float(self(to_tensor(pred), to_tensor(truth))[0])


def _linear_weights(state: dict[str, torch.Tensor], path) -> list[torch.Tensor]:
    """``lin<i>.model.<j>.weight`` (lpips) or ``lin<i>.weight`` -> weights in layer order."""
    found: dict[int, torch.Tensor] = {}
    for key, value in state.items():
        match = re.fullmatch(r"lin(\d+)(?:\.model\.\d+)?\.weight", key)
        if match is None:
            raise WeightsError(f"{path}: unexpected key {key!r} in LPIPS linear weights (expected lin0.model.1.weight ...)")
        found[int(match.group(1))] = value
    if sorted(found) != list(range(len(found))) or not found:
        raise WeightsError(f"{path}: LPIPS linear weights must be lin0 ... linN, got {sorted(state)}")
    return [found[i] for i in range(len(found))]


def lpips_from_files(linear_path: str | os.PathLike, backbone_path: str | os.PathLike) -> LPIPS:
    """Build LPIPS from lpips's linear weights and a torchvision AlexNet/VGG-16 state dict."""
    linear = _linear_weights(read_state_dict(linear_path), linear_path)
    channels = tuple(int(w.numel()) for w in linear)
    kinds = [name for name, cls in BACKBONE_CHANNELS.items() if cls.CHANNELS == channels]
    if not kinds:
        known = "; ".join(f"{n}: {c.CHANNELS}" for n, c in BACKBONE_CHANNELS.items())
        raise WeightsError(f"{linear_path}: linear weights with channels {channels} fit no known backbone ({known})")
    if any(float(w.min()) < 0 for w in linear):
        raise WeightsError(f"{linear_path}: LPIPS linear weights must be non-negative")
    backbone = BACKBONE_CHANNELS[kinds[0]]()
    load_strict(
        backbone,
        read_state_dict(backbone_path),
        Path(backbone_path),
        f"torchvision {kinds[0]} features (the backbone of LPIPS-{kinds[0]})",
        ignore_prefixes=("classifier.",),
    )
    return LPIPS(backbone, linear).eval()
