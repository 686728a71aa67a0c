"""Choose a hint model's point spreading (``hint_spread``, ``hint_spread_lightness``,
``hint_spread_floor``) on held-out photos, with hints sampled from the truth as
``tinct evaluate --hints`` samples them.

    .venv/bin/python bench/tune_hint_spread.py MODEL FOLDER [--out rows.json] \\
        [--spreads 0.25 0.4 0.6 0.9] [--lightness 5 10 20] [--floors 0.05 0.2 1] [--counts 10 100] \\
        [--write MODEL-spread.safetensors]

Every setting of the grid, and spreading off, is scored at each number of hints (mean PSNR and
CIEDE2000 over the photos). The chosen setting has the highest mean PSNR over ``--counts`` among
those whose CIEDE2000 is no higher than with spreading off at any count; it is printed, with the
whole table; ``--write`` saves the model with the chosen setting. The network runs once per
photo and number of hints (spreading comes after it).

Use photos the model never trained on, and not the photos a release is then judged on.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np


SETTINGS = ("hint_spread", "hint_spread_lightness", "hint_spread_floor")


def _cached(predict):
    """``predict_ab`` remembering its outputs by the bytes of its inputs."""
    memory = {}

    def wrapper(l, points=None, histogram=None):
        key = hashlib.sha1(b"".join(t.numpy().tobytes() for t in (l, points, histogram) if t is not None)).hexdigest()
        if key not in memory:
            memory[key] = predict(l, points, histogram)
        return memory[key]

    return wrapper


def choose(rows: list[dict], counts: list[int]) -> dict:
    """The row with the highest mean PSNR over ``counts`` among those with CIEDE2000 no higher
    than the first row's (spreading off) at every count."""
    off = rows[0]
    allowed = [r for r in rows if all(r[f"ciede{n}"] <= off[f"ciede{n}"] for n in counts)]
    return max(allowed, key=lambda r: np.mean([r[f"psnr{n}"] for n in counts]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a hint model: shipped name, checkpoint or run folder")
    p.add_argument("folder", help="held-out colour photos (never trained on; not the release's test photos)")
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--counts", type=int, nargs="+", default=[10, 100], help="numbers of hints per photo")
    p.add_argument("--write", help="save the model with the chosen spreading to this .safetensors file")
    p.add_argument("--spreads", type=float, nargs="+", default=[0.25, 0.4, 0.6, 0.9])
    p.add_argument("--lightness", type=float, nargs="+", default=[5.0, 10.0, 20.0])
    p.add_argument("--floors", type=float, nargs="+", default=[0.05, 0.2, 1.0])
    p.add_argument("--limit", type=int, default=None, help="first photos of the folder only")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch
    from tqdm import tqdm

    from tinct import metrics
    from tinct.color import cielab_lightness
    from tinct.hints import colorize_with_hints, hints_from_truth
    from tinct.infer import Colorizer
    from tinct.io import Photo, list_images, read_rgb

    torch.set_num_threads(args.threads)
    colorizer = Colorizer(args.model, engine="torch", threads=args.threads)
    config = colorizer.model.config
    colorizer.model.predict_ab = _cached(colorizer.model.predict_ab)
    photos = []
    for index, path in enumerate(list_images(args.folder)[: args.limit]):
        truth = read_rgb(path)  # the same hints as tinct evaluate: seed 0 + the photo's index
        photos.append((truth, Photo(lightness=cielab_lightness(truth)), hints_from_truth(truth, max(args.counts), seed=index)))
    grid = [(0.0, config.hint_spread_lightness, config.hint_spread_floor)]
    grid += list(itertools.product(args.spreads, args.lightness, args.floors))
    rows = []
    for spread, lightness, floor in tqdm(grid, desc="settings"):
        colorizer.model.config = dataclasses.replace(config, hint_spread=spread, hint_spread_lightness=lightness,
                                                     hint_spread_floor=floor)
        row = dict(zip(SETTINGS, (spread, lightness, floor)))
        for n in args.counts:
            outputs = [(colorize_with_hints(colorizer, photo, hints[:n]), truth) for truth, photo, hints in photos]
            row[f"psnr{n}"] = float(np.mean([metrics.psnr(o, t) for o, t in outputs]))
            row[f"ciede{n}"] = float(np.mean([metrics.ciede2000(o, t) for o, t in outputs]))
        rows.append(row)
    print(f"{len(photos)} photos; " + ", ".join(f"{k}" for k in rows[0] if k.startswith(("psnr", "ciede"))))
    for row in rows:
        print("  ".join(f"{v:8.3f}" for v in row.values()))
    chosen = choose(rows, args.counts)
    print("chosen:", json.dumps(chosen))
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "chosen": chosen}, indent=1))
    if args.write:
        from tinct.models import save_checkpoint

        colorizer.model.config = dataclasses.replace(config, **{k: chosen[k] for k in SETTINGS})
        info = colorizer.checkpoint
        save_checkpoint(args.write, colorizer.model, data_manifest_sha256=info.data_manifest_sha256,
                        metrics=info.metrics, extra=info.extra)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
