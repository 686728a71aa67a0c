"""Loading speed of tinct.data: cached vs uncached training items, and cache build rate.

    .venv/bin/python bench/bench_data.py [--photos 400] [--size 128] [--source caltech101:PATH]

Builds a throwaway cache of ``--photos`` photos in a temporary folder, then reads every training
item once (single process, as a ``DataLoader`` with ``num_workers=0`` would) from the cache and
decoding the photos each time. Prints photos/second for the scan, the build and both loaders.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from tinct.data import DataConfig, make_datasets

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = f"caltech101:{REPO.parent / 'shared' / 'data' / 'caltech101'}"


def items_per_second(dataset, batch_size: int, limit: int) -> tuple[float, int]:
    dataset.set_epoch(1)
    loader = DataLoader(torch.utils.data.Subset(dataset, range(min(limit, len(dataset)))), batch_size=batch_size)
    started = time.perf_counter()
    count = 0
    for batch in loader:
        count += len(batch["l"])
    return count / (time.perf_counter() - started), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads and build workers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = dict(sources=[args.source], size=args.size, max_images=args.photos, val_fraction=0.0,
                build_workers=args.threads)
    print(f"source {args.source}, {args.photos} photos, S={args.size}, {args.threads} thread(s)")

    started = time.perf_counter()
    live, _ = make_datasets(DataConfig(**base))
    scan = time.perf_counter() - started
    print(f"uncached: scan {scan:.1f} s ({len(live.store.records) / scan:.0f} photos/s)")
    rate, n = items_per_second(live, args.batch_size, args.photos)
    print(f"uncached: {rate:.0f} items/s ({n} items)")

    with tempfile.TemporaryDirectory() as cache_dir:
        started = time.perf_counter()
        cached, _ = make_datasets(DataConfig(**base, cache_dir=cache_dir))
        build = time.perf_counter() - started
        size_mb = cached.store.nbytes / 1e6
        print(f"cached:   build {build:.1f} s ({len(cached.store.records) / build:.0f} photos/s, {size_mb:.1f} MB)")
        started = time.perf_counter()
        make_datasets(DataConfig(**base, cache_dir=cache_dir))
        print(f"cached:   reopen {time.perf_counter() - started:.2f} s")
        rate, n = items_per_second(cached, args.batch_size, 10**9)
        print(f"cached:   {rate:.0f} items/s ({n} items)")


if __name__ == "__main__":
    main()
