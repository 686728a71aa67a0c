"""Plot the decoding search recorded in a checkpoint: every setting on the held-out photos.

    .venv/bin/python bench/plot_decoding_front.py src/tinct/weights/tinct-v2.safetensors \
        --out docs/images/tinct-v2-decoding-front.png

Reads ``metrics.decoding_tuning`` (written by ``tinct tune --out``) and draws two
panels: CIEDE2000 against delta-CF, and PSNR against chroma ratio, with the gray baseline's
values as dashed lines, the target regions shaded and the chosen setting circled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--psnr-margin", type=float, default=0.3, help="PSNR target above gray (dB)")
    parser.add_argument("--max-delta-cf", type=float, default=6.0)
    parser.add_argument("--chroma-ratio", default="0.8,1.2", help="admissible chroma ratio range")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.models import read_checkpoint_info, resolve_model_path

    info = read_checkpoint_info(resolve_model_path(args.checkpoint))
    try:
        tuning = info["metrics"]["decoding_tuning"]["validation_photos"]
    except KeyError:
        print(f"{args.checkpoint}: no decoding search recorded (run tinct tune --out)", file=sys.stderr)
        return 2
    rows, gray, chosen = tuning["all"], tuning["gray"], tuning["chosen"]
    lo, hi = (float(v) for v in args.chroma_ratio.split(","))
    sizes = sorted({r["input_size"] for r in rows})
    markers = dict(zip(sizes, "os^Dv"))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for size in sizes:
        part = [r for r in rows if r["input_size"] == size]
        sc = left.scatter([r["delta_cf"] for r in part], [r["ciede2000"] for r in part], c=[r["psnr"] for r in part],
                          cmap="viridis", marker=markers[size], label=f"size {size}", edgecolors="none")
        right.scatter([r["chroma_ratio"] for r in part], [r["psnr"] for r in part], c=[r["ciede2000"] for r in part],
                      cmap="magma_r", marker=markers[size], label=f"size {size}", edgecolors="none")
    fig.colorbar(sc, ax=left, label="PSNR (dB)")
    left.axhline(gray["ciede2000"], ls="--", c="gray", label=f"gray CIEDE2000 {gray['ciede2000']:.2f}")
    left.axvspan(0, args.max_delta_cf, color="green", alpha=0.07, label=f"delta-CF <= {args.max_delta_cf:g}")
    left.scatter([chosen["delta_cf"]], [chosen["ciede2000"]], s=160, facecolors="none", edgecolors="red", label="chosen")
    left.set_xlabel("delta colourfulness (lower is better)")
    left.set_ylabel("CIEDE2000 (lower is better)")
    right.axhline(gray["psnr"] + args.psnr_margin, ls="--", c="gray", label=f"gray PSNR + {args.psnr_margin:g} dB")
    right.axvspan(lo, hi, color="green", alpha=0.07, label=f"chroma ratio {lo:g}-{hi:g}")
    right.scatter([chosen["chroma_ratio"]], [chosen["psnr"]], s=160, facecolors="none", edgecolors="red", label="chosen")
    right.set_xlabel("chroma ratio (-> 1)")
    right.set_ylabel("PSNR (dB)")
    for ax in (left, right):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{Path(args.checkpoint).name}: {len(rows)} decodings on {tuning['photos']} held-out photos")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
