"""Training throughput: images per second at 128 x 128 for the default model, data cache off vs on.

Runs the real trainer (``tinct.train.train``) for a fixed number of steps on real photos
(``../shared/data/caltech101`` beside the repository, or ``--data``) and reads the
``images_per_second`` it measures around the training loop (data loading, forward,
backward and optimiser step; not validation or checkpoint writing).

    .venv/bin/python bench/bench_train.py                    # default: tinctnet, batch 16, 20 steps
    .venv/bin/python bench/bench_train.py --steps 10 --images 200 --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "caltech101"


def measure(data: Path, cache_dir: str | None, threads: int, args, workdir: Path) -> dict:
    from tinct.train import resolve_run_config, train

    overrides = [
        f"data.size={args.size}",
        f"data.max_images={args.images}",
        "data.val_fraction=0.05",
        f"data.cache_dir={cache_dir}" if cache_dir else "data.cache_dir=null",
        f"train.batch_size={args.batch_size}",
        "train.epochs=1",
        f"train.max_steps_per_epoch={args.steps}",
        f"train.num_workers={args.workers}",
        f"train.threads={threads}",
        "train.max_val_images=8",
        "train.samples=0",
        "train.tensorboard=false",
        "train.checkpoint_every_steps=0",
        "train.statistics_pixels=20000",
    ]
    run = resolve_run_config(model=args.model, sources=[str(data)], overrides=overrides)
    started = time.perf_counter()
    result = train(run, workdir / f"run-{'cache' if cache_dir else 'nocache'}-{threads}", progress=False)
    total = time.perf_counter() - started
    return {
        "images_per_second": float(result.last_metrics["images_per_second"]),
        "train_seconds": float(result.last_metrics["seconds"]),
        "total_seconds": total,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="photo folder (default: shared caltech101)")
    parser.add_argument("--model", default="tinctnet", help="model family, default config (default: tinctnet)")
    parser.add_argument("--size", type=int, default=128, help="training crop side (default: 128)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--images", type=int, default=400, help="photos used (data.max_images)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[0], help="torch thread counts to try (0: all usable cores)"
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"bench_train: {args.data}: no such folder (pass --data FOLDER)", file=sys.stderr)
        return 1

    import torch

    print(f"# tinct training throughput: {args.model} (default config), {args.size}x{args.size} crops, "
          f"batch {args.batch_size}, {args.steps} steps, {args.workers} workers, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinct-bench-") as tmp:
        workdir = Path(tmp)
        cache_dir = workdir / "cache"
        from tinct.data import DataConfig, make_datasets

        started = time.perf_counter()  # build the cache once, outside the measurement
        make_datasets(DataConfig(sources=[str(args.data)], size=args.size, max_images=args.images, cache_dir=str(cache_dir)))
        build = time.perf_counter() - started
        for threads in args.threads:
            for label, cache in (("off", None), ("on", str(cache_dir))):
                result = measure(args.data, cache, threads, args, workdir)
                rows.append((label, threads or torch.get_num_threads(), result))
    print()
    print("| data cache | torch threads | images / s | training loop (s) | whole run incl. setup (s) |")
    print("|---|---:|---:|---:|---:|")
    for label, threads, r in rows:
        print(
            f"| {label} | {threads} | {r['images_per_second']:.1f} | {r['train_seconds']:.1f} | {r['total_seconds']:.1f} |"
        )
    print(f"\ncache build for {args.images} photos: {build:.1f} s (once; later runs reuse it)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    print("command: " + " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/bench_train.py", *sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
