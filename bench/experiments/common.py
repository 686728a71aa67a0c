"""What the decoding experiments share: the checkpoint's validation crops and logits, its
whole held-out photos, the Lab -> RGB of a crop, and a guided filter."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from tinct.color import lab_to_rgb_torch, to_uint8
from tinct.evaluate.decoding_search import held_out_photos
from tinct.evaluate.scoring import TargetScorer


def rgb(l: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """``l (1, H, W)`` and ``ab (2, H, W)`` in Lab units -> uint8 RGB ``(H, W, 3)``."""
    return to_uint8(lab_to_rgb_torch(torch.cat([l, ab], 0), dim=0).permute(1, 2, 0).numpy())


def validation_logits(model, checkpoint: str):
    """``(lights, abs, logits)`` of every crop of the checkpoint's validation split.

    Computed once and kept in /tmp (a safetensors file keyed by run folder and file name) for
    the other scripts; every crop has the split's crop size, so each list is stored stacked.
    """
    from tinct.data import DataConfig, make_datasets

    name = f"{os.path.basename(os.path.dirname(checkpoint))}_{os.path.basename(checkpoint)}"
    cache = f"/tmp/val_logits_{name}.safetensors"
    if os.path.exists(cache):
        stored = load_file(cache)
        return list(stored["lights"]), list(stored["abs"]), list(stored["logits"])
    from tinct.models import CheckpointInfo

    _, val = make_datasets(DataConfig.from_dict(CheckpointInfo.read(checkpoint).extra["data_config"]), seed=0)
    lights, abs_, logits = [], [], []
    with torch.inference_mode():
        for i in range(len(val)):
            item = val[i]
            lights.append(item["l"])
            abs_.append(item["ab"])
            logits.append(model(item["l"][None])[0])
    save_file({"lights": torch.stack(lights), "abs": torch.stack(abs_), "logits": torch.stack(logits)}, cache)
    return lights, abs_, logits


def held_out(info, select=None):
    """``(photos, scorer)`` for the whole photos behind the validation split of the checkpoint
    ``info`` (:class:`tinct.models.CheckpointInfo`) describes, read as
    ``tinct tune`` reads them; ``select(keys) -> keys`` keeps some of them.
    Prints the gray baseline's scores."""
    keys, photos, score = held_out_photos(info)
    if select is not None:
        position = {k: i for i, k in enumerate(keys)}
        chosen = [position[k] for k in select(keys)]
        photos, score = [photos[i] for i in chosen], TargetScorer([score.truths[i] for i in chosen])
    print(len(photos), "held-out photos; gray", score.gray(), flush=True)
    return photos, score


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
