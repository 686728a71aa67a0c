"""What the decoding experiments share: the checkpoint's validation crops and logits, the
Lab -> RGB of a crop, scoring against the truths, and a guided filter."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from tinct.color import lab_to_rgb_torch, lab_to_rgb_uint8, to_uint8
from tinct.evaluate.scoring import target_scores, truth_scores

DATA_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")


def rgb(l: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """``l (1, H, W)`` and ``ab (2, H, W)`` in Lab units -> uint8 RGB ``(H, W, 3)``."""
    return to_uint8(lab_to_rgb_torch(torch.cat([l, ab], 0), dim=0).permute(1, 2, 0).numpy())


def validation_logits(model, checkpoint: str):
    """``(lights, abs, logits)`` of every crop of the checkpoint's validation split.

    Computed once and kept in /tmp (keyed by run folder and file name) for the other scripts.
    """
    from tinct.data import DataConfig, make_datasets

    cache = f"/tmp/val_logits_{os.path.basename(os.path.dirname(checkpoint))}_{os.path.basename(checkpoint)}.pt"
    if os.path.exists(cache):
        return torch.load(cache)
    _, val = make_datasets(DataConfig.from_dict(model.checkpoint_info["extra"]["data_config"]), seed=0)
    lights, abs_, logits = [], [], []
    with torch.inference_mode():
        for i in range(len(val)):
            item = val[i]
            lights.append(item["l"])
            abs_.append(item["ab"])
            logits.append(model(item["l"][None])[0])
    torch.save((lights, abs_, logits), cache)
    return lights, abs_, logits


def held_out_keys(model) -> list[str]:
    """Sorted keys (``source/relative path``) of the photos behind the checkpoint's validation split."""
    from tinct.data import DataConfig
    from tinct.data.dataset import make_splits

    val = make_splits(DataConfig.from_dict(model.checkpoint_info["extra"]["data_config"]), seed=0)["val"]
    return sorted({val.photo_key(i) for i in range(len(val))})


def read_held_out(keys: list[str]):
    """``(photos, scorer)`` for whole held-out photos; prints the gray baseline's scores."""
    from tinct.io import read_photo, read_rgb

    photos = [read_photo(os.path.join(DATA_ROOT, k)) for k in keys]
    score = Scorer([read_rgb(os.path.join(DATA_ROOT, k)) for k in keys])
    gray = score([lab_to_rgb_uint8(p.lightness, 0 * p.lightness, 0 * p.lightness) for p in photos])
    print(len(keys), "held-out photos; gray", gray, flush=True)
    return photos, score


class Scorer:
    """Scores lists of uint8 RGB outputs against fixed truths (``tinct.evaluate.scoring``)."""

    def __init__(self, truths: list[np.ndarray]):
        self.truths = truths
        self.infos = [truth_scores(t) for t in truths]

    def __call__(self, outputs: list[np.ndarray]) -> dict[str, float]:
        return {k: round(v, 3) for k, v in target_scores(outputs, self.truths, self.infos).items()}


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided(guide: torch.Tensor, p: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """He et al.'s guided filter of ``p (B, C, H, W)`` by ``guide (B, 1, H, W)``."""
    mean_i, mean_p = _box(guide, r), _box(p, r)
    cov = _box(guide * p, r) - mean_i * mean_p
    var = _box(guide * guide, r) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, r) * guide + _box(b, r)
