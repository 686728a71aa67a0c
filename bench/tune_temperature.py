"""Choose the decoding (annealed-mean temperature T, prior correction beta) of a bins-head
checkpoint on its own validation split.

    .venv/bin/python bench/tune_temperature.py runs/tinct-v0/last.safetensors \
        --out src/tinct/weights/tinct-v1.safetensors

The temperature trades vividness against fidelity: T -> 0 decodes the most likely colour
(vivid, blotchy, low PSNR), T = 1 the mean (safe, brownish). The validation split comes from
the checkpoint's own training data config (photos held out from training, never cbsd68).
For each setting the script reports PSNR, mean CIEDE2000, chroma ratio and delta-CF of the
colorized validation crops next to the gray baseline's, and picks, by the first rule that some
setting passes, the lowest CIEDE2000 among the settings that

1. meet all four quality targets on validation: PSNR >= gray + ``--psnr-margin`` dB, CIEDE2000
   below gray's, delta-CF <= ``--max-delta-cf``, chroma ratio in [``--min-chroma-ratio``, 1.2];
2. meet the PSNR and chroma-ratio conditions;
3. meet the chroma-ratio condition (colour is kept: a sepia or gray model fails users first);
4. anything (last resort).

The margins (0.1 dB, 0.75 rather than the 0.7 of the targets) leave room for the difference
between validation crops and other photos. With ``--out`` it writes a copy of the
checkpoint whose config carries the chosen temperature.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--temperatures", default="0.3,0.38,0.5,0.65,0.8,1.0")
    parser.add_argument("--corrections", default="0,0.5,0.75,1", help="prior_correction values (beta)")
    parser.add_argument("--min-chroma-ratio", type=float, default=0.75, help="lower end of the admissible chroma ratio")
    parser.add_argument("--psnr-margin", type=float, default=0.1, help="dB above the gray baseline's PSNR required")
    parser.add_argument("--max-delta-cf", type=float, default=6.0, help="largest admissible delta colourfulness")
    parser.add_argument("--limit", type=int, default=400, help="validation crops to use")
    parser.add_argument("--out", help="write the checkpoint with the chosen temperature here")
    parser.add_argument("--storage", choices=("float32", "float16"), default="float32",
                        help="precision of the tensors written with --out")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from tinct.color import lab_to_rgb_torch, to_uint8
    from tinct.data import DataConfig, make_datasets
    from tinct.metrics import chroma_ratio, ciede2000, colorfulness, delta_colorfulness, mean_chroma, psnr
    from tinct.models import load, save_checkpoint
    from tinct.models import ab_bins

    model = load(args.checkpoint)
    if getattr(model.config, "head", None) != "bins":
        print(f"{args.checkpoint}: not a bins-head model; nothing to tune", file=sys.stderr)
        return 2
    info = model.checkpoint_info
    data_config = DataConfig.from_dict(info["extra"]["data_config"])
    _, val = make_datasets(data_config, seed=0)
    count = min(args.limit, len(val))

    def rgb(l: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
        return to_uint8(lab_to_rgb_torch(torch.cat([l, ab], 0), dim=0).permute(1, 2, 0).numpy())

    truths, grays, logits, lights = [], [], [], []
    with torch.inference_mode():
        for i in range(count):
            item = val[i]
            l, ab = item["l"], item["ab"]
            truths.append(rgb(l, ab))
            grays.append(rgb(l, torch.zeros_like(ab)))
            logits.append(model(l[None])[0])
            lights.append(l)

    def scores(outputs: list[np.ndarray]) -> dict:
        return {
            "psnr": float(np.mean([psnr(o, t) for o, t in zip(outputs, truths)])),
            "ciede2000": float(np.mean([ciede2000(o, t) for o, t in zip(outputs, truths)])),
            "chroma_ratio": float(chroma_ratio([mean_chroma(o) for o in outputs], truth_chroma)),
            "delta_cf": float(delta_colorfulness([colorfulness(o) for o in outputs], truth_cf)),
        }

    truth_chroma = [mean_chroma(t) for t in truths]
    truth_cf = [colorfulness(t) for t in truths]
    gray = scores(grays)
    print(f"{count} validation crops; gray baseline: " + ", ".join(f"{k} {v:.3f}" for k, v in gray.items()))
    rows = []
    grid = [(float(t), float(c)) for c in args.corrections.split(",") for t in args.temperatures.split(",")]
    for temperature, correction in grid:
        outputs = []
        model.config.prior_correction = correction
        with torch.inference_mode():
            for l, z in zip(lights, logits):
                ab = ab_bins.annealed_mean(model.adjusted_logits(z[None]), model.bin_centers, temperature)
                ab = torch.nn.functional.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)[0]
                outputs.append(rgb(l, ab))
        row = {"temperature": temperature, "prior_correction": correction, **scores(outputs)}
        rows.append(row)
        print(f"T={temperature:<5} beta={correction:<5} " + ", ".join(f"{k} {v:.3f}" for k, v in list(row.items())[2:]))

    def colour_kept(r: dict) -> bool:
        return args.min_chroma_ratio <= r["chroma_ratio"] <= 1.2

    def psnr_kept(r: dict) -> bool:
        return r["psnr"] >= gray["psnr"] + args.psnr_margin

    rules = [
        ("meets all four targets", lambda r: psnr_kept(r) and colour_kept(r) and r["ciede2000"] < gray["ciede2000"]
         and r["delta_cf"] <= args.max_delta_cf),
        (f"PSNR >= gray + {args.psnr_margin} dB, chroma ratio in [{args.min_chroma_ratio}, 1.2]",
         lambda r: psnr_kept(r) and colour_kept(r)),
        (f"chroma ratio in [{args.min_chroma_ratio}, 1.2]", colour_kept),
        ("no rule passed: lowest CIEDE2000 overall", lambda r: True),
    ]
    for rule, passes in rules:
        admissible = [r for r in rows if passes(r)]
        if admissible:
            break
    chosen = min(admissible, key=lambda r: r["ciede2000"])
    print(f"chosen T={chosen['temperature']} beta={chosen['prior_correction']} (rule: {rule})")
    if args.out:
        model.config.temperature = chosen["temperature"]
        model.config.prior_correction = chosen["prior_correction"]
        metrics = {"validation": {"crops": count, "gray": gray, "chosen": chosen, "rule": rule, "all": rows}}
        save_checkpoint(
            args.out,
            model,
            data_manifest_sha256=info.get("data_manifest_sha256"),
            metrics={**info.get("metrics", {}), "temperature_tuning": metrics},
            extra=info.get("extra", {}),
            storage=args.storage,
        )
        print(f"wrote {args.out}")
    print(json.dumps({"gray": gray, "chosen": chosen}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
