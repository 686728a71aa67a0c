"""Fréchet Inception Distance (optional; needs a local Inception weight file).

FID compares two *sets* of images through the statistics of a feature network's
activations: fit a Gaussian ``(mu, Sigma)`` to each set's features and take

    FID = |mu_1 - mu_2|^2 + Tr(Sigma_1 + Sigma_2 - 2 (Sigma_1 Sigma_2)^(1/2))

(the squared Fréchet / 2-Wasserstein distance between the Gaussians). Lower is better.

The feature network is pluggable (:class:`FrechetScorer` takes any module mapping
``(B, 3, H, W)`` RGB in [0, 1] to ``(B, D)``). :class:`FIDInceptionV3` is the network
pytorch-fid uses: Inception-v3 with the 2015-12-05 TensorFlow graph's quirks (average
pools that ignore padding, a max pool in the last block), inputs resized to 299x299
bilinearly and scaled to [-1, 1], features = the 2048-d pool of the last block. Its weights
are the state dict that pytorch-fid distributes as ``pt_inception-2015-12-05-*.pth``;
:func:`fid_inception_from_file` loads it strictly and never downloads anything.

FID is biased on small sets (it needs thousands of images for a full-rank covariance of
2048-d features): compare FIDs only between systems scored on the same images.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinct.metrics.weights import load_strict, read_state_dict

__all__ = ["frechet_distance", "feature_statistics", "FrechetScorer", "FIDInceptionV3", "fid_inception_from_file"]


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (rows are samples, ``N - 1`` normalisation)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need features of shape (N >= 2, D), got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """Squared Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    The matrix square root is scipy's ``sqrtm``. When the product is singular enough for
    the root to be non-finite (few samples), ``eps`` is added to both diagonals; a small
    imaginary part from rounding is dropped, a large one is an error.
    """
    import warnings

    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} {mu2.shape}, sigma {sigma1.shape} {sigma2.shape}")
    with warnings.catch_warnings():
        # Fewer samples than feature dimensions make the product singular; that is expected
        # (the report says FID is biased on small sets) and handled below, not an accident.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(sigma1 @ sigma2)
        if not np.all(np.isfinite(root)):
            offset = np.eye(mu1.size) * eps
            root = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm gave a large imaginary part ({np.max(np.abs(root.imag)):.3g})")
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root))


class FrechetScorer:
    """Collect features of several image sets with one network, then compare them.

    >>> scorer = FrechetScorer(network)              # doctest: +SKIP
    >>> scorer.add("truth", rgb_uint8)               # doctest: +SKIP
    >>> scorer.distance("model", "truth")            # doctest: +SKIP
    """

    def __init__(self, network: nn.Module, batch_size: int = 8):
        self.network = network.eval()
        self.batch_size = batch_size
        self._pending: dict[str, list[torch.Tensor]] = {}
        self._features: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, rgb: np.ndarray) -> None:
        """Queue one uint8 RGB image ``(H, W, 3)`` of set ``name``."""
        x = torch.tensor(rgb).permute(2, 0, 1).float() / 255.0  # copies: PIL arrays are read-only
        self._pending.setdefault(name, []).append(x)
        if len(self._pending[name]) >= self.batch_size:
            self._flush(name)

    def _flush(self, name: str) -> None:
        pending = self._pending.pop(name, [])
        if not pending:
            return
        with torch.inference_mode():
            # Images differ in size; the network resizes, so run them one by one when needed.
            if all(p.shape == pending[0].shape for p in pending):
                feats = self.network(torch.stack(pending))
            else:
                feats = torch.cat([self.network(p[None]) for p in pending])
        self._features.setdefault(name, []).append(feats.double().numpy())

    def features(self, name: str) -> np.ndarray:
        """All features of set ``name``: ``(N, D)``."""
        self._flush(name)
        if name not in self._features:
            raise KeyError(f"no images added to set {name!r}")
        return np.concatenate(self._features[name])

    def distance(self, name_a: str, name_b: str) -> float:
        """FID between two sets (at least 2 images each)."""
        return frechet_distance(*feature_statistics(self.features(name_a)), *feature_statistics(self.features(name_b)))


# ---------------------------------------------------------------------------------------------
# Inception-v3 as pytorch-fid defines it (parameter names match its weight file)
# ---------------------------------------------------------------------------------------------


class _ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as in the TF graph), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x):
    # The TF graph averages only over real pixels at the border.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):  # 35x35 grid
    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = _ConvBN(c_in, 64, 1)
        self.branch5x5_1 = _ConvBN(c_in, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(c_in, pool_features, 1)

    def forward(self, x):
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_3x3(x)),
            ],
            1,
        )


class _BlockB(nn.Module):  # 35x35 -> 17x17
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = _ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class _BlockC(nn.Module):  # 17x17 grid, factorised 7x7
    def __init__(self, c_in: int, c7: int):
        super().__init__()
        self.branch1x1 = _ConvBN(c_in, 192, 1)
        self.branch7x7_1 = _ConvBN(c_in, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(c_in, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool_3x3(x))], 1)


class _BlockD(nn.Module):  # 17x17 -> 8x8
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = _ConvBN(c_in, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class _BlockE(nn.Module):  # 8x8 grid, expanded filter banks
    def __init__(self, c_in: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool  # the graph's last block pools by max, the one before by average
        self.branch1x1 = _ConvBN(c_in, 320, 1)
        self.branch3x3_1 = _ConvBN(c_in, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(c_in, 192, 1)

    def forward(self, x):
        s = self.branch3x3_1(x)
        s = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_3x3(x)
        return torch.cat([self.branch1x1(x), s, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 feature extractor of pytorch-fid: RGB ``(B, 3, H, W)`` in [0, 1] -> ``(B, 2048)``.

    The classifier ``fc`` (1008 classes) is kept only so that the published weight file
    loads strictly; features are taken before it.
    """

    INPUT_SIZE = 299
    FEATURES = 2048

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _BlockA(192, 32)
        self.Mixed_5c = _BlockA(256, 64)
        self.Mixed_5d = _BlockA(288, 64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, 128)
        self.Mixed_6c = _BlockC(768, 160)
        self.Mixed_6d = _BlockC(768, 160)
        self.Mixed_6e = _BlockC(768, 192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(rgb, size=(self.INPUT_SIZE, self.INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2.0 * x - 1.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, 3, stride=2)  # 73x73
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, 3, stride=2)  # 35x35
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)  # ends (B, 2048, 8, 8)
        return x.mean(dim=(2, 3))  # (B, 2048)


def fid_inception_from_file(path: str | os.PathLike) -> FIDInceptionV3:
    """:class:`FIDInceptionV3` with the weights of ``path`` (pytorch-fid's state dict), in eval mode."""
    network = FIDInceptionV3()
    load_strict(network, read_state_dict(path), path, "FID Inception-v3 (pytorch-fid's pt_inception-2015-12-05)")
    return network.eval()
