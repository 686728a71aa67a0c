"""Which images each process sees, in which order: a function of (seed, epoch) only.

One epoch is a random permutation of the training set drawn from ``(seed, epoch)``, cut
into ``steps`` global batches of ``batch_size`` images (an incomplete last batch is dropped,
so every step sees the same number of images). With N processes, process ``r`` takes the
``r``-th slice of ``batch_size / N`` images of every global batch, so the union of a step's
per-process batches is exactly the batch a single process would take.

Because the order is a pure function, a run resumed in the middle of an epoch skips the
batches it has already done and sees exactly the batches the interrupted run would have
seen. (``torch.utils.data.DistributedSampler`` deals the permutation out round-robin and
cannot skip; this sampler plays its role here.)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["epoch_permutation", "TrainSampler", "ShardSampler", "epoch_seed"]


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 63-bit seed derived from ``(seed, epoch, stream)`` (independent streams, no collisions
    between nearby seeds and epochs as ``seed + epoch`` would have)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def epoch_permutation(length: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``length`` items for ``epoch``: int64 ``(length,)``."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(length, generator=generator)


class TrainSampler(Sampler[int]):
    """This process's indices for one training epoch, from batch ``start_step`` on.

    Args:
        length: training-set size.
        batch_size: the global batch.
        rank, world_size: this process and the number of processes.
        seed: the run's seed.
        max_steps: cap on steps per epoch (0 = as many full batches as fit).
    """

    def __init__(self, length: int, batch_size: int, rank: int, world_size: int, seed: int, max_steps: int = 0):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
        self.length = length
        self.batch_size = batch_size
        self.local_batch = batch_size // world_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        full = length // batch_size
        self.steps = min(full, max_steps) if max_steps else full
        self.epoch = 0
        self.start_step = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        if not 0 <= start_step <= self.steps:
            raise ValueError(f"start_step {start_step} outside the epoch's {self.steps} steps")
        self.epoch = epoch
        self.start_step = start_step

    def __iter__(self):
        order = epoch_permutation(self.length, self.seed, self.epoch)
        for step in range(self.start_step, self.steps):
            begin = step * self.batch_size + self.rank * self.local_batch
            yield from order[begin : begin + self.local_batch].tolist()

    def __len__(self) -> int:
        return (self.steps - self.start_step) * self.local_batch


class ShardSampler(Sampler[int]):
    """Indices ``0 .. length-1`` (in order) dealt to processes: ``rank, rank + N, ...``.

    Used for validation: every image is seen exactly once across processes, no padding.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
