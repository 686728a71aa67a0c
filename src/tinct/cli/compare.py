"""``tinct compare``: one leaderboard of several models and the gray baseline on the same images.

    tinct compare --models A B ... --data DIR [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

from tinct.cli import CommandFailed
from tinct.cli.evaluate import EXPECTED_ERRORS, add_optional_metric_args, refuse_existing
from tinct.errors import TinctError, one_line


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="leaderboard of several models (and the gray baseline) on the same held-out images",
        description="Colorize the same held-out truths with every model, in one process, and rank them: "
        "mean metrics, seconds per image (colorization only) and parameter count, with the gray baseline as a row.",
    )
    p.add_argument("--models", nargs="+", required=True, metavar="M", help="shipped weights names or checkpoint paths")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="folder of held-out colour truths")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder to create for leaderboard.md/.html (default reports/compare-<data>-<timestamp>)")
    p.add_argument("--allow-train-data", action="store_true",
                   help="compare even on folders a checkpoint records as its training data")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads for colorization (default: all cores)")
    add_optional_metric_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    """Rank the models as ``args`` asks: print the leaderboard, write its folder. Errors reach
    :func:`tinct.cli.main` as one line: a bad request is a :class:`~tinct.errors.TinctError`
    (status 2), a refused or failed comparison a :class:`~tinct.cli.CommandFailed` (status 1)."""
    if args.limit is not None and args.limit < 1:
        raise TinctError(f"--limit must be >= 1, got {args.limit}")
    refuse_existing(args.out)

    from tinct.evaluate import compare_models, format_leaderboard_markdown, write_leaderboard

    try:
        evaluation = compare_models(
            args.models,
            args.data,
            limit=args.limit,
            allow_train_data=args.allow_train_data,
            fid_weights=args.fid_weights,
            lpips_weights=args.lpips_weights,
            lpips_backbone=args.lpips_backbone,
            threads=args.threads,
            comparisons=args.comparisons,
            progress=not args.no_progress,
        )
        folder = write_leaderboard(evaluation, args.out)  # first: a closed stdout pipe must not lose it
        print(format_leaderboard_markdown(evaluation))
    except EXPECTED_ERRORS as exc:
        raise CommandFailed(one_line(exc), 1) from exc
    print(f"\nleaderboard: {folder / 'leaderboard.html'}")
    return 0
