"""Choose the decoding of a bins-head checkpoint -- annealed-mean temperature T, prior
correction beta, chroma floor and gain, hue-confidence gate, and working resolution -- on its
own held-out photos.

    .venv/bin/python bench/tune_temperature.py runs/tinct-w32-e12/best.safetensors \
        --out src/tinct/weights/tinct-v1.safetensors --storage float16

The photos are the *whole* files behind the checkpoint's validation split (photos of its
training folders that training never saw; never cbsd68), colorized the way ``tinct colorize``
does it: each truth's own CIELAB L resized to the working resolution, ab predicted, upsampled
and joined to the full-resolution L. T trades vividness against fidelity (T -> 0 decodes the
most likely colour: vivid, blotchy; T = 1 the mean: safe, brownish); beta removes a share of
the training-time rebalancing (0 vivid, 1 faithful); the chroma floor c0 and gain k turn each
decoded chroma c into k * max(c - c0, 0) (faint tints go gray, confident colours get stronger);
a hue gate low/high scales each pixel's colour by clip((R - low) / (high - low), 0, 1), R the
concentration of its predicted hues (colour where the network is sure of the hue, gray where not);
a larger working resolution gives finer colour at a higher cost per photo.

For each setting the script reports PSNR, mean CIEDE2000, chroma ratio and delta-CF next to
the gray baseline's, and picks, by the first rule that some setting passes, the lowest
CIEDE2000 (settings within ``--tie-margin`` of it count as tied, and the tie goes to the
highest PSNR) among the settings that

1. meet all four quality targets: PSNR >= gray + ``--psnr-margin`` dB, CIEDE2000 below gray's,
   delta-CF <= ``--max-delta-cf``, chroma ratio in [``--min-chroma-ratio``, 1.2];
2. meet the PSNR and chroma-ratio conditions;
3. meet the chroma-ratio and delta-CF conditions (the two colour targets);
4. meet the chroma-ratio condition (colour is kept: a sepia or gray model fails users first);
5. anything (last resort).

The margins (0.1 dB, 0.75 rather than the 0.7 of the targets) leave room for the difference
between these photos and others. With ``--out`` it writes a copy of the checkpoint whose
config carries the chosen setting and whose metrics record the whole grid.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _describe(setting: dict) -> str:
    return (f"size={setting['input_size']:<4} T={setting['temperature']:<5} beta={setting['prior_correction']:<5} "
            f"c0={setting['chroma_floor']:<4} k={setting['chroma_gain']:<4} "
            f"gate={setting['hue_gate_low']}/{setting['hue_gate_high']:<4}")


def _gates(text: str) -> list[tuple[float, float]]:
    """``"0.4/0.7,0.5/0.8"`` -> [(0.4, 0.7), (0.5, 0.8)]; always includes (0, 0), no gate."""
    pairs = [tuple(float(v) for v in pair.split("/")) for pair in text.split(",") if pair]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit(f"--hue-gates wants low/high pairs such as 0.4/0.7, got {text!r}")
    return [(0.0, 0.0)] + [p for p in pairs if p != (0.0, 0.0)]


def held_out_photos(model, limit: int = 0):
    """``(keys, photos, scorer)`` for the whole photos behind ``model``'s validation split.

    ``keys`` are the sorted photo names (at most ``limit`` of them, 0 = all), ``photos`` their
    :class:`tinct.io.Photo` (the truth's own CIELAB L), ``scorer`` a
    :class:`tinct.evaluate.scoring.TargetScorer` holding the truths. Raises ``ValueError`` when
    the split's photos are arrays, not files.
    """
    from tqdm import tqdm

    from tinct.color import cielab_lightness
    from tinct.data import DataConfig, make_splits
    from tinct.evaluate.scoring import TargetScorer
    from tinct.io import Photo, read_rgb

    val = make_splits(DataConfig.from_dict(model.checkpoint_info["extra"]["data_config"]), seed=0)["val"]
    records = val.photo_records()[: limit or None]
    if any(r.path is None for r in records):
        raise ValueError("this checkpoint's validation photos are arrays, not files; tune on crops instead")
    truths = [read_rgb(r.path) for r in tqdm(records, desc="reading held-out photos", leave=False)]
    photos = [Photo(lightness=cielab_lightness(t)) for t in truths]
    return [r.key for r in records], photos, TargetScorer(truths)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--temperatures", default="0.38,0.5,0.65,0.8")
    parser.add_argument("--corrections", default="0,0.15,0.25,0.35,0.5", help="prior_correction values (beta)")
    parser.add_argument("--floors", default="0", help="chroma floors c0 (Lab units)")
    parser.add_argument("--gains", default="1", help="chroma gains k (with floors > 0 or hue gates)")
    parser.add_argument("--hue-gates", default="", help="hue-confidence gates low/high, e.g. 0.4/0.7,0.5/0.8 (no gate is always tried)")
    parser.add_argument("--sizes", default="", help="working resolutions (multiples of 16); default: the checkpoint's")
    parser.add_argument("--min-chroma-ratio", type=float, default=0.75, help="lower end of the admissible chroma ratio")
    parser.add_argument("--psnr-margin", type=float, default=0.1, help="dB above the gray baseline's PSNR required")
    parser.add_argument("--max-delta-cf", type=float, default=6.0, help="largest admissible delta colourfulness")
    parser.add_argument("--tie-margin", type=float, default=0.05,
                        help="settings within this much of the lowest admissible CIEDE2000 count as tied; the tie goes to the highest PSNR (0: lowest CIEDE2000 alone)")
    parser.add_argument("--limit", type=int, default=0, help="use at most this many photos (0 = all)")
    parser.add_argument("--out", help="write the checkpoint with the chosen setting here")
    parser.add_argument("--storage", choices=("float32", "float16"), default="float32",
                        help="precision of the tensors written with --out")
    parser.add_argument("--previous", help="a checkpoint written by an earlier search (--out) on the same held-out "
                        "photos: its recorded settings join this grid's before the rule picks one")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from tqdm import tqdm

    from tinct.color import prepare_gamut_tables
    from tinct.infer import Colorizer
    from tinct.models import load, read_checkpoint_info, resolve_model_path, save_checkpoint

    model = load(args.checkpoint)
    if getattr(model.config, "head", None) != "bins":
        print(f"{args.checkpoint}: not a bins-head model; nothing to tune", file=sys.stderr)
        return 2
    info = model.checkpoint_info
    try:
        keys, photos, scores = held_out_photos(model, args.limit)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    prepare_gamut_tables()
    gray = scores.gray()
    print(f"{len(keys)} held-out photos; gray baseline: " + ", ".join(f"{k} {v:.3f}" for k, v in gray.items()))
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [int(model.config.input_size)]
    grid = [
        {"input_size": s, "temperature": t, "prior_correction": c, "chroma_floor": f, "chroma_gain": g,
         "hue_gate_low": low, "hue_gate_high": high}
        for s in sizes
        for c in _floats(args.corrections)
        for t in _floats(args.temperatures)
        for low, high in _gates(args.hue_gates)
        for f in _floats(args.floors)
        for g in (_floats(args.gains) if f > 0 or high > 0 else [1.0])  # plain annealed mean: gain 1
    ]
    rows = []
    network_outputs: dict[int, list] = {}  # working size -> per photo (network output, content box)
    for setting in tqdm(grid, desc="settings", leave=False):
        for key, value in setting.items():
            setattr(model.config, key, value)
        size = setting["input_size"]
        colorizer = Colorizer(model, threads=args.threads)
        if size not in network_outputs:  # the network runs once per size (sizes are the outer loop)
            network_outputs = {size: []}
            with torch.inference_mode():
                for photo in photos:
                    squares, boxes = colorizer.working_squares([photo])
                    network_outputs[size].append((model(torch.from_numpy(squares)), boxes[0]))
        with torch.inference_mode():
            abs_ = [colorizer.crop_to_content(model.decode(out), [box])[0] for out, box in network_outputs[size]]
        outputs = [colorizer.compose(p, ab) for p, ab in zip(photos, abs_)]
        row = {**setting, **scores(outputs)}
        rows.append(row)
        tqdm.write(_describe(setting) + "  " + ", ".join(f"{k} {v:.3f}" for k, v in list(row.items())[len(setting):]))

    if args.previous:
        earlier = read_checkpoint_info(resolve_model_path(args.previous))["metrics"]["decoding_tuning"]["validation_photos"]
        if earlier["photos"] != len(keys) or abs(earlier["gray"]["ciede2000"] - gray["ciede2000"]) > 1e-9:
            print(f"{args.previous}: its search ran on other held-out photos", file=sys.stderr)
            return 2
        rows = earlier["all"] + rows
        print(f"{len(earlier['all'])} settings of {args.previous} join the {len(grid)} of this grid")

    def colour_kept(r: dict) -> bool:
        return args.min_chroma_ratio <= r["chroma_ratio"] <= 1.2

    def psnr_kept(r: dict) -> bool:
        return r["psnr"] >= gray["psnr"] + args.psnr_margin

    rules = [
        ("meets all four targets", lambda r: psnr_kept(r) and colour_kept(r) and r["ciede2000"] < gray["ciede2000"]
         and r["delta_cf"] <= args.max_delta_cf),
        (f"PSNR >= gray + {args.psnr_margin} dB, chroma ratio in [{args.min_chroma_ratio}, 1.2]",
         lambda r: psnr_kept(r) and colour_kept(r)),
        (f"chroma ratio in [{args.min_chroma_ratio}, 1.2], delta-CF <= {args.max_delta_cf}",
         lambda r: colour_kept(r) and r["delta_cf"] <= args.max_delta_cf),
        (f"chroma ratio in [{args.min_chroma_ratio}, 1.2]", colour_kept),
        ("no rule passed: lowest CIEDE2000 overall", lambda r: True),
    ]
    for rule, passes in rules:
        admissible = [r for r in rows if passes(r)]
        if admissible:
            break
    best = min(r["ciede2000"] for r in admissible)
    chosen = max((r for r in admissible if r["ciede2000"] <= best + args.tie_margin), key=lambda r: r["psnr"])
    print(f"chosen {_describe(chosen)} (rule: {rule})")
    if args.out:
        for key in grid[0]:
            setattr(model.config, key, chosen[key])
        metrics = {"validation_photos": {"photos": len(keys), "gray": gray, "chosen": chosen, "rule": rule, "all": rows}}
        save_checkpoint(
            args.out,
            model,
            data_manifest_sha256=info.get("data_manifest_sha256"),
            metrics={**info.get("metrics", {}), "decoding_tuning": metrics},
            extra=info.get("extra", {}),
            storage=args.storage,
        )
        print(f"wrote {args.out}")
    print(json.dumps({"gray": gray, "chosen": chosen}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
