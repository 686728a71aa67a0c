"""The validation pass at every epoch end, the same for both training loops."""

from __future__ import annotations

import random
import signal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from tinct.color import lab_to_rgb_torch
from tinct.metrics import psnr_torch
from tinct.train.distributed import DistributedContext
from tinct.train.outputs import predict_full_ab
from tinct.train.sampling import ShardSampler
from tinct.train.settings import TrainConfig

__all__ = ["validate", "worker_init"]

# PSNR of an image whose MSE is 1e-10 or lower: the ceiling that keeps a perfect prediction
# finite, so the mean over images stays a number.
_PSNR_CEILING = float(10.0 * torch.log10(1.0 / torch.tensor([1e-10])))


def worker_init(worker_id: int) -> None:
    """DataLoader workers: distinct, reproducible seeds from the loader's generator; Ctrl-C is
    left to the main process, which stops at a step boundary and saves."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@torch.no_grad()
def validate(model, val_ds, config: TrainConfig, context: DistributedContext, device: torch.device) -> dict[str, float]:
    """``val_loss``, ``val_psnr`` (dB, RGB in [0, 1]) and ``val_ab_l1`` (Lab units), means over
    the validation images (the first ``config.max_val_images``), summed across processes.

    ``val_loss`` is the model's ``training_loss``; a model without one (NumPy models) gets the
    mean ab error. Returns ``{}`` without validation images.
    """
    count = len(val_ds)
    if config.max_val_images:
        count = min(count, config.max_val_images)
    if count == 0:
        return {}
    loader = DataLoader(
        val_ds,
        batch_size=max(1, config.batch_size // context.world_size),
        sampler=ShardSampler(count, context.rank, context.world_size),
        num_workers=config.num_workers,
        worker_init_fn=worker_init if config.num_workers else None,
    )
    is_module = isinstance(model, nn.Module)
    if is_module:
        model.eval()
    sums = [0.0] * 4  # loss, psnr, ab_l1, images
    try:
        for batch in loader:
            _add_batch(model, batch["l"].to(device), batch["ab"].to(device), sums)
    finally:
        if is_module:
            model.train()
    totals = context.sum(sums)
    n = totals[3]
    return {"val_loss": totals[0] / n, "val_psnr": totals[1] / n, "val_ab_l1": totals[2] / n}


def _add_batch(model, l: torch.Tensor, ab: torch.Tensor, sums: list[float]) -> None:
    """Add one batch's loss, PSNR and ab error sums (and its image count) to ``sums``."""
    n = l.shape[0]
    predicted = predict_full_ab(model, l)
    try:
        loss, _ = model.training_loss(l, ab)
        loss_value = float(loss)
    except (AttributeError, NotImplementedError):
        # No loss of its own (NumPy models): the mean ab error in Lab units.
        loss_value = float((predicted - ab).abs().mean())
    rgb_pred = lab_to_rgb_torch(torch.cat([l, predicted.to(l)], 1))
    rgb_true = lab_to_rgb_torch(torch.cat([l, ab], 1))
    psnr = psnr_torch(rgb_pred, rgb_true).clamp_max(_PSNR_CEILING)  # (B,)
    sums[0] += loss_value * n
    sums[1] += float(psnr.sum())
    sums[2] += float((predicted - ab).abs().flatten(1).mean(1).sum())
    sums[3] += n
