"""Parameter counts and CPU forward time of the model families at 256x256.

Run from the repository root:

    .venv/bin/python bench/bench_models.py [--threads 1] [--repeats 5] [--batch 1] [--no-train]

Prints two Markdown tables (the ones in docs/models.md). Forward: each family at its
published width and at the width of its ``-cpu`` preset; ``predict_ab`` in eval mode
without gradients, on a batch of 256x256 lightness images; the fastest of ``--repeats``
runs after one warm-up run (the fastest is the least disturbed by other work on shared
cores). Training: one optimisation step (the model's own ``train_step`` or
``training_loss`` + backward + Adam) of each CPU-sized preset at its crop size and batch size.
The machine's load average is printed too: the cores may be shared, which slows every row.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from tinct.models import create_model

# (label, family, config) -- "published" widths first, then the CPU presets' widths.
CASES = [
    ("unet, published (width 64, depth 8)", "unet", {"width": 64, "depth": 8, "input_size": 256}),
    ("unet-cpu (width 16, depth 7)", "unet", {"width": 16, "depth": 7, "input_size": 128}),
    ("pix2pix generator, published (width 64, depth 7)", "pix2pix", {"width": 64, "depth": 7}),
    ("pix2pix-cpu (width 16, depth 7)", "pix2pix", {"width": 16, "depth": 7, "disc_width": 16}),
    ("zhang16, published (width x1)", "zhang16", {"width_multiplier": 1.0}),
    ("zhang16-cpu (width x0.125)", "zhang16", {"width_multiplier": 0.125}),
    ("palette-mlp (K 32, window 7)", "palette-mlp", {}),
    ("palette-cnn (K 16, window 11)", "palette-cnn", {}),
    ("tinctnet (width 32, for comparison)", "tinctnet", {}),
]


def forward_seconds(model, batch: int, repeats: int) -> float:
    l = torch.rand(batch, 1, 256, 256) * 100
    model.eval()
    with torch.no_grad():
        model.predict_ab(l)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.predict_ab(l)
            times.append(time.perf_counter() - start)
    return min(times)


def train_step_seconds(preset: str, repeats: int) -> tuple[str, int, float]:
    from tinct.train.settings import TrainConfig, load_preset

    values = load_preset(preset)
    model = create_model(values["model"], **values.get("model_config", {}))
    size = values.get("data", {}).get("size", model.config.input_size)
    batch = values.get("train", {}).get("batch_size", 16)
    l = torch.rand(batch, 1, size, size) * 100
    ab = (torch.rand(batch, 2, size, size) - 0.5) * 100
    if hasattr(model, "fit_statistics"):
        model.fit_statistics(ab.permute(0, 2, 3, 1).reshape(-1, 2)[:20000])
    model.train()
    if hasattr(model, "train_step"):
        optimizers = model.make_optimizers(TrainConfig(lr=1e-4))

        def step():
            model.train_step(l, ab, optimizers)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            loss, _ = model.training_loss(l, ab)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return f"{size}x{size}", batch, min(times)


TRAIN_PRESETS = ["unet-cpu", "pix2pix-cpu", "zhang16-cpu", "palette-mlp", "palette-cnn", "tinctnet"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--no-train", action="store_true", help="skip the training-step table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, load average {os.getloadavg()}")
    print()
    print("| model | parameters (total) | of which used at inference | forward 256x256 (ms) |")
    print("|---|---:|---:|---:|")
    for label, family, config in CASES:
        model = create_model(family, **config)
        total = model.num_parameters()
        inference = sum(p.numel() for p in model.generator.parameters()) if family == "pix2pix" else total
        ms = 1000 * forward_seconds(model, args.batch, args.repeats)
        print(f"| {label} | {total:,} | {inference:,} | {ms:,.0f} |", flush=True)
    if not args.no_train:
        print()
        print("| preset | crop | batch | one training step (s) |")
        print("|---|---|---:|---:|")
        for preset in TRAIN_PRESETS:
            crop, batch, seconds = train_step_seconds(preset, args.repeats)
            print(f"| {preset} | {crop} | {batch} | {seconds:.2f} |", flush=True)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
