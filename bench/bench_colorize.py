"""Speed, memory and size-consistency of the shipped model (issue targets of the v1 model).

    .venv/bin/python bench/bench_colorize.py [--model default] [--threads 2]

Measures, on this machine:
1. one forward pass at 256 x 256 of the shipped model and of ``zhang16`` at full published
   width, timed alternately in this one process (median of repeats) -> their ratio;
2. ``tinct colorize`` of a 12-megapixel gray JPEG to JPEG and of a 1-megapixel one, in a
   fresh process each: the time the command reports for the photo (read, colorize, write)
   and the whole command's wall time including Python start-up, plus peak memory (max RSS);
3. consistency: a photo at 0.5x, 1x and 2x its size, colorized, resized to a common size:
   mean CIELAB delta-ab between the results (cbsd68 photos, benchmark-only folder).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def forward_ratio(model_name: str, repeats: int) -> dict:
    from tinct.models import create_model, load

    shipped = load(model_name).eval()
    zhang = create_model("zhang16", width_multiplier=1.0).eval()
    x = torch.full((1, 1, 256, 256), 50.0) + torch.rand(1, 1, 256, 256) * 10
    times = {"shipped": [], "zhang16": []}
    with torch.inference_mode():
        for model in (shipped, zhang):  # warm-up
            model.predict_ab(x)
        for _ in range(repeats):
            for key, model in (("shipped", shipped), ("zhang16", zhang)):
                start = time.perf_counter()
                model.predict_ab(x)
                times[key].append(time.perf_counter() - start)
    shipped_s, zhang_s = statistics.median(times["shipped"]), statistics.median(times["zhang16"])
    return {
        "shipped_ms": 1000 * shipped_s,
        "zhang16_ms": 1000 * zhang_s,
        "ratio": shipped_s / zhang_s,
        "shipped_params": shipped.num_parameters(),
        "zhang16_params": zhang.num_parameters(),
    }


def make_gray_jpeg(path: Path, width: int, height: int) -> Path:
    source = sorted((DATA / "sun80").glob("*.jpg"))[0] if (DATA / "sun80").is_dir() else None
    if source is not None:
        image = Image.open(source).convert("L").resize((width, height), Image.BICUBIC)
    else:  # no shared photos: a smooth synthetic scene
        yy, xx = np.mgrid[0:height, 0:width]
        image = Image.fromarray((128 + 100 * np.sin(xx / 97.0) * np.cos(yy / 61.0)).astype(np.uint8), "L")
    image.save(path, quality=92)
    return path


def timed_colorize(model_name: str, source: Path, threads: int, repeats: int) -> dict:
    reported, wall, peak_mb = [], [], []
    for i in range(repeats):
        out = source.with_name(f"{source.stem}_out{i}.jpg")
        command = [str(REPO / ".venv" / "bin" / "tinct"), "colorize", str(source), "-o", str(out), "-m", model_name]
        command += ["--threads", str(threads)]
        # Each run in its own `time -v`-like wrapper: a child Python that reports its own max RSS.
        wrapper = (
            "import resource, subprocess, sys, time;"
            "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
            "w = time.perf_counter() - t;"
            "print(r.stderr, file=sys.stderr);"
            "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        done = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True)
        seconds, max_rss_kb = done.stdout.split()
        match = re.search(r"colorized 1 photo in ([0-9.]+) s", done.stderr)
        if match is None:
            raise RuntimeError(f"unexpected output: {done.stderr}")
        reported.append(float(match.group(1)))
        wall.append(float(seconds))
        peak_mb.append(int(max_rss_kb) / 1024)
    return {
        "photo_seconds": statistics.median(reported),
        "command_seconds": statistics.median(wall),
        "peak_mb": max(peak_mb),
    }


def consistency(model_name: str, count: int) -> dict:
    from tinct.color import rgb_to_lab
    from tinct.infer import Colorizer

    folder = DATA / "cbsd68"
    if not folder.is_dir():
        return {"skipped": f"{folder} not present"}
    colorizer = Colorizer(model_name)
    per_image = []
    for path in sorted(folder.glob("*.png"))[:count]:
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
    return {"images": len(per_image), "mean_delta_ab_worst_pair": float(np.mean(per_image)), "max": float(np.max(per_image))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--consistency-images", type=int, default=68)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ratio = forward_ratio(args.model, args.repeats)
    print(
        f"forward 256x256: shipped {ratio['shipped_ms']:.1f} ms ({ratio['shipped_params'] / 1e6:.2f} M params), "
        f"zhang16 full width {ratio['zhang16_ms']:.1f} ms ({ratio['zhang16_params'] / 1e6:.2f} M params), "
        f"ratio {ratio['ratio']:.4f} (target <= 0.1)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, (w, h) in (("12 MP", (4000, 3000)), ("1 MP", (1155, 866))):
            source = make_gray_jpeg(Path(tmp) / f"gray_{w}x{h}.jpg", w, h)
            result = timed_colorize(args.model, source, args.threads, args.repeats if w < 2000 else 3)
            print(
                f"tinct colorize {label} ({w}x{h}) JPEG->JPEG: {result['photo_seconds']:.2f} s per photo "
                f"(command incl. start-up {result['command_seconds']:.2f} s), peak memory {result['peak_mb']:.0f} MB"
            )
    result = consistency(args.model, args.consistency_images)
    if "skipped" in result:
        print(f"consistency: skipped ({result['skipped']})")
    else:
        print(
            f"consistency over {result['images']} cbsd68 photos at 0.5x/1x/2x: mean delta-ab (worst pair) "
            f"{result['mean_delta_ab_worst_pair']:.2f}, max {result['max']:.2f} (target < 3)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
