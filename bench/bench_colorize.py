"""Whole-command speed and memory of ``tinct colorize``, ONNX Runtime against torch, and the
shipped model's forward ratio and size consistency.

    .venv/bin/python bench/bench_colorize.py [--model default] [--threads 2] [--sections ...]

Sections (all by default):
``commands``     wall time of whole commands, each in a fresh process, median of ``--repeats``
                 (5): ``tinct --help``, and ``tinct colorize`` of a 1-megapixel and a
                 12-megapixel gray JPEG to JPEG with each engine (``--engine onnx|torch``).
                 Python's start-up, imports and model loading are included: a user waits
                 for all of it. The time the command reports for the photo is shown beside.
``memory``       peak resident memory (the child's max RSS from ``wait4``) of those commands at
                 12 and 100 megapixels (a 10000 x 10000 gray JPEG), each engine.
``forward``      one forward pass at 256 x 256 of the shipped model and of ``zhang16`` at full
                 published width, in torch, timed alternately in this process -> their ratio.
``consistency``  a photo at 0.5x, 1x and 2x its size, colorized, resized to a common size:
                 mean CIELAB delta-ab between the results (cbsd68 photos, benchmark-only folder;
                 ``--consistency-on heldout``: the checkpoint's own validation photos instead).

Timings depend on what else the machine runs; say so with the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
TINCT = REPO / ".venv" / "bin" / "tinct"
SECTIONS = ("commands", "memory", "forward", "consistency")
SIZES = {"1 MP": (1155, 866), "12 MP": (4000, 3000), "100 MP": (10000, 10000)}


def make_gray_jpeg(path: Path, width: int, height: int) -> Path:
    source = sorted((DATA / "sun80").glob("*.jpg"))[0] if (DATA / "sun80").is_dir() else None
    if source is not None:
        image = Image.open(source).convert("L").resize((width, height), Image.BICUBIC)
    else:  # no shared photos: a smooth synthetic scene
        yy, xx = np.mgrid[0:height, 0:width]
        image = Image.fromarray((128 + 100 * np.sin(xx / 97.0) * np.cos(yy / 61.0)).astype(np.uint8), "L")
    image.save(path, quality=92)
    return path


def run_command(command: list[str]) -> tuple[float, float, str]:
    """Run ``command`` in a fresh process: (wall seconds, peak RSS in MB, stderr).

    ``os.wait4`` gives the resource use of exactly that child (its max RSS), with no wrapper
    process whose own memory or start-up would be counted.
    """
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {stderr.strip()}")
    return seconds, usage.ru_maxrss / 1024, stderr


def colorize_command(model: str, source: Path, engine: str, threads: int) -> list[str]:
    target = source.with_name(f"{source.stem}_{engine}.jpg")
    command = [str(TINCT), "colorize", str(source), "-o", str(target), "--overwrite", "-m", model, "--threads", str(threads)]
    if engine != "auto":
        command += ["--engine", engine]
    if "100MP" in source.name:
        command += ["--max-megapixels", "150"]  # above the default limit on purpose
    return command


def photo_seconds(stderr: str) -> float | None:
    match = re.search(r"colorized 1 photo in ([0-9.]+) s", stderr)
    return float(match.group(1)) if match else None


def commands(model: str, threads: int, repeats: int, folder: Path, engines: list[str]) -> None:
    help_times = [run_command([str(TINCT), "--help"])[0] for _ in range(repeats)]
    print(f"tinct --help: median {statistics.median(help_times):.3f} s over {repeats} (target <= 0.3 s)")
    targets = {"1 MP": 0.6, "12 MP": 1.2}
    for label in ("1 MP", "12 MP"):
        source = make_gray_jpeg(folder / f"gray_{label.replace(' ', '')}.jpg", *SIZES[label])
        for engine in engines:
            runs = [run_command(colorize_command(model, source, engine, threads)) for _ in range(repeats)]
            walls = [r[0] for r in runs]
            photo = [s for s in (photo_seconds(r[2]) for r in runs) if s is not None]
            photo_note = f", of which the photo {statistics.median(photo):.2f} s" if photo else ""
            print(
                f"tinct colorize {label} JPEG->JPEG, --engine {engine}: whole command median "
                f"{statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f}){photo_note}; "
                f"peak {max(r[1] for r in runs):.0f} MB (target <= {targets[label]} s)"
            )


def memory(model: str, threads: int, folder: Path, engines: list[str]) -> None:
    targets = {"12 MP": 400, "100 MP": 1500}
    for label in ("12 MP", "100 MP"):
        source = folder / f"gray_{label.replace(' ', '')}.jpg"
        if not source.exists():
            make_gray_jpeg(source, *SIZES[label])
        for engine in engines:
            seconds, peak, _ = run_command(colorize_command(model, source, engine, threads))
            print(f"peak memory {label}, --engine {engine}: {peak:.0f} MB in {seconds:.1f} s (target <= {targets[label]} MB)")


def forward_ratio(model_name: str, repeats: int, threads: int) -> None:
    import torch

    from tinct.evaluate.decoding_search import with_decoding
    from tinct.models import create_model, load

    torch.set_num_threads(threads)
    shipped = load(model_name)[0].eval()
    models = {"shipped": shipped, "zhang16": create_model("zhang16", width_multiplier=1.0).eval()}
    mirrored = getattr(shipped.config, "flip_average", False)
    if mirrored:  # the same network decoded from one forward pass, for the ratio of one pass
        models["one pass"] = with_decoding(shipped, {"flip_average": False})
    x = torch.full((1, 1, 256, 256), 50.0) + torch.rand(1, 1, 256, 256) * 10
    size = int(shipped.config.input_size)
    inputs = {key: x for key in models} | {"working size": torch.full((1, 1, size, size), 50.0) + torch.rand(1, 1, size, size) * 10}
    models["working size"] = shipped  # what one photo costs: the shipped model at its own working size
    times = {key: [] for key in models}
    with torch.inference_mode():
        for key, model in models.items():  # warm-up
            model.predict_ab(inputs[key])
        for _ in range(repeats):
            for key, model in models.items():
                start = time.perf_counter()
                model.predict_ab(inputs[key])
                times[key].append(time.perf_counter() - start)
    median = {key: statistics.median(t) for key, t in times.items()}
    print(
        f"forward 256x256 (torch): shipped {1000 * median['shipped']:.1f} ms ({shipped.num_parameters() / 1e6:.2f} M "
        f"params{', mirror-averaged: two passes' if mirrored else ''}), zhang16 full width "
        f"{1000 * median['zhang16']:.1f} ms ({models['zhang16'].num_parameters() / 1e6:.2f} M params), "
        f"ratio {median['shipped'] / median['zhang16']:.4f} (target <= 1/8 = 0.125, tinct-v2)"
    )
    if mirrored:
        print(f"  one pass of the same network: {1000 * median['one pass']:.1f} ms, "
              f"ratio {median['one pass'] / median['zhang16']:.4f}")
    print(f"  the shipped model at its working size {size}x{size}, as it colorizes a photo: "
          f"{1000 * median['working size']:.1f} ms, ratio {median['working size'] / median['zhang16']:.4f}")


def _consistency_photos(colorizer, on: str, count: int) -> list[Path] | None:
    """The photos of the consistency section: cbsd68's PNGs, or (``on="heldout"``) the whole
    photos behind the checkpoint's own validation split, so that a release rule can weigh
    consistency without looking at cbsd68. None when they are not on this machine."""
    if on == "heldout":
        from tinct.data import DataConfig, make_splits

        data_config = colorizer.checkpoint.extra.get("data_config") if colorizer.checkpoint else None
        if not data_config:
            raise SystemExit(f"consistency: {colorizer.name} records no training data, so it has no held-out photos")
        records = make_splits(DataConfig.from_dict(data_config), seed=0)["val"].photo_records()
        return [Path(r.path) for r in records[:count]]
    folder = DATA / "cbsd68"
    return sorted(folder.glob("*.png"))[:count] if folder.is_dir() else None


def size_consistency(colorizer, paths: list[Path]) -> list[float]:
    """Per photo, the mean CIELAB delta-ab of the worst pair among its results at 0.5x, 1x
    and 2x (each resized back to the photo's size, bilinear)."""
    from tinct.color import rgb_to_lab

    per_image = []
    for path in paths:
        gray = Image.open(path).convert("L")
        w, h = gray.size
        results = []
        for scale in (0.5, 1.0, 2.0):
            resized = gray.resize((round(w * scale), round(h * scale)), Image.BICUBIC)
            rgb = colorizer(np.asarray(resized))
            results.append(rgb_to_lab(np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))))
        pairs = [(0, 1), (1, 2), (0, 2)]
        per_image.append(
            max(float(np.hypot(*(results[i][..., 1:] - results[j][..., 1:]).transpose(2, 0, 1)).mean()) for i, j in pairs)
        )
    return per_image


def consistency(model_name: str, count: int, on: str = "cbsd68") -> None:
    from tinct.infer import Colorizer

    colorizer = Colorizer(model_name)
    paths = _consistency_photos(colorizer, on, count)
    if paths is None:
        print(f"consistency: skipped ({DATA / 'cbsd68'} not present)")
        return
    per_image = size_consistency(colorizer, paths)
    where = "cbsd68 photos" if on == "cbsd68" else "held-out photos of its validation split"
    print(
        f"consistency over {len(per_image)} {where} at 0.5x/1x/2x ({colorizer.engine} engine): mean delta-ab "
        f"(worst pair) {np.mean(per_image):.2f}, max {np.max(per_image):.2f} (target < 3)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--engines", default="onnx,torch", help="engines to compare (default: %(default)s)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of: " + ", ".join(SECTIONS))
    parser.add_argument("--consistency-images", type=int, default=68)
    parser.add_argument("--consistency-on", choices=("cbsd68", "heldout"), default="cbsd68",
                        help="photos of the consistency section: cbsd68, or the checkpoint's own validation photos")
    args = parser.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    engines = [e for e in args.engines.split(",") if e]
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min)")
    with tempfile.TemporaryDirectory() as tmp:
        if "commands" in sections:
            commands(args.model, args.threads, args.repeats, Path(tmp), engines)
        if "memory" in sections:
            memory(args.model, args.threads, Path(tmp), engines)
    if "forward" in sections:
        forward_ratio(args.model, args.repeats, args.threads)
    if "consistency" in sections:
        consistency(args.model, args.consistency_images, args.consistency_on)
    return 0


if __name__ == "__main__":
    sys.exit(main())
