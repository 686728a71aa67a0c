"""``tinct tune``: choose the decoding of a bins-head checkpoint on its own held-out photos.

    tinct tune CHECKPOINT [--temperatures ...] [--sizes ...] [--out NEW.safetensors] [--previous EARLIER]

Prints one row per setting (beside the gray baseline), the chosen setting and the rule that
chose it; with ``--out`` writes a new checkpoint carrying it (the input is never changed).
The search and the rules are :mod:`tinct.evaluate.decoding_search`.
"""

from __future__ import annotations

from tinct.errors import TinctError, one_line

HELP = "choose a bins-head checkpoint's decoding (T, beta, gates, size) on its held-out photos"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tune",
        help=HELP,
        description="Search the decoding of a bins-head checkpoint -- annealed-mean temperature T, prior "
        "correction beta, chroma floor and gain, hue-confidence gate, mirror averaging and working resolution -- on the whole "
        "photos behind its validation split, pick one setting by the pre-registered rules (see "
        "docs/models.md) and, with --out, write a new checkpoint carrying it.",
    )
    p.add_argument("checkpoint", help="checkpoint .safetensors, run folder or shipped weights name")
    p.add_argument("--temperatures", default="0.38,0.5,0.65,0.8", help="annealed-mean temperatures T")
    p.add_argument("--corrections", default="0,0.15,0.25,0.35,0.5", help="prior_correction values (beta)")
    p.add_argument("--floors", default="0", help="chroma floors c0 (Lab units)")
    p.add_argument("--gains", default="1", help="chroma gains k (with floors > 0 or hue gates)")
    p.add_argument("--hue-gates", default="",
                   help="hue-confidence gates low/high, e.g. 0.4/0.7,0.5/0.8 (no gate is always tried)")
    p.add_argument("--flips", default="0",
                   help="mirror averaging to try: 0 (off), 1 (on) or 0,1 (both; the network runs twice per photo)")
    p.add_argument("--sizes", default="", help="working resolutions (multiples of 16); default: the checkpoint's")
    p.add_argument("--min-chroma-ratio", type=float, default=0.75, help="lower end of the admissible chroma ratio")
    p.add_argument("--psnr-margin", type=float, default=0.1, help="dB above the gray baseline's PSNR required")
    p.add_argument("--max-delta-cf", type=float, default=6.0, help="largest admissible delta colourfulness")
    p.add_argument("--tie-margin", type=float, default=0.05,
                   help="settings within this much of the lowest admissible CIEDE2000 count as tied; the tie goes "
                   "to the highest PSNR (0: lowest CIEDE2000 alone)")
    p.add_argument("--limit", type=int, default=0, help="use at most this many photos (0 = all)")
    p.add_argument("--out", help="write a new checkpoint (.safetensors) with the chosen setting here")
    p.add_argument("--storage", choices=("float32", "float16"), default="float32",
                   help="precision of the tensors written with --out")
    p.add_argument("--previous", help="a checkpoint written by an earlier search (--out) on the same held-out "
                   "photos: its recorded settings join this grid's before the rule picks one")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _grid(args, default_size: int) -> list[dict]:
    from tinct.evaluate.decoding_search import decoding_grid, parse_flips, parse_floats, parse_gates

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [default_size]
    return decoding_grid(sizes, parse_floats(args.temperatures), parse_floats(args.corrections),
                         parse_floats(args.floors), parse_floats(args.gains), parse_gates(args.hue_gates),
                         parse_flips(args.flips))


def run(args) -> int:
    import json

    import torch

    from tinct.color import prepare_gamut_tables
    from tinct.evaluate import decoding_search as ds
    from tinct.models import load, resolve_model_path

    if args.out and not args.out.endswith(".safetensors"):
        raise TinctError(f"--out {args.out}: checkpoints are .safetensors files")
    torch.set_num_threads(args.threads)
    try:
        path = resolve_model_path(args.checkpoint)
        model, info = load(path)
        if not model.tunable_decoding:
            raise TinctError(f"{args.checkpoint}: not a bins-head model; nothing to tune")
        grid = _grid(args, int(model.config.input_size))
        keys, photos, scorer = ds.held_out_photos(info, args.limit, progress=not args.no_progress)
        prepare_gamut_tables()
        gray = scorer.gray()
        earlier = ds.previous_rows(args.previous, len(keys), gray) if args.previous else []
    except ValueError as exc:
        raise TinctError(one_line(exc)) from exc
    print(f"{len(keys)} held-out photos; gray baseline: " + ", ".join(f"{k} {v:.3f}" for k, v in gray.items()))
    rules = ds.SelectionRules(args.min_chroma_ratio, args.psnr_margin, args.max_delta_cf, args.tie_margin)
    search = ds.search_decoding(model, photos, scorer, grid, rules, earlier, args.threads, not args.no_progress)
    if args.previous:
        print(f"{len(earlier)} settings of {args.previous} join the {len(grid)} of this grid")
    print(f"chosen {ds.describe(search.chosen)} (rule: {search.rule})")
    if args.out:
        try:
            ds.write_tuned_checkpoint(args.out, model, info, search, args.storage)
        except ValueError as exc:
            raise TinctError(one_line(exc)) from exc
        print(f"wrote {args.out}")
    print(json.dumps({"gray": search.gray, "chosen": search.chosen}))
    return 0
