"""``tinct evaluate``: score a model (or another tool's outputs) against held-out truths.

    tinct evaluate --model M --data DIR|SOURCE [--out REPORT] [--limit N]
    tinct evaluate --pred DIR --gt DIR [--resize] [--out REPORT]

Prints the table (the gray baseline beside the model) and writes a report folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinct.cli import CommandFailed, add_reference_match, reference_match_problem
from tinct.errors import TinctError, one_line


def add_optional_metric_args(p: argparse.ArgumentParser) -> None:
    """Options shared with ``tinct compare``."""
    p.add_argument("--limit", type=int, metavar="N", help="score only the first N images (sorted by path)")
    p.add_argument("--comparisons", type=int, default=100, metavar="N",
                   help="comparison thumbnails in the report (first N images; default 100)")
    p.add_argument("--fid-weights", type=Path, metavar="PATH",
                   help="pytorch-fid Inception state dict (pt_inception-2015-12-05-*.pth): adds FID; never downloaded")
    p.add_argument("--lpips-weights", type=Path, metavar="PATH",
                   help="lpips linear-layer weights (alex.pth or vgg.pth): adds LPIPS, with --lpips-backbone")
    p.add_argument("--lpips-backbone", type=Path, metavar="PATH",
                   help="torchvision AlexNet or VGG-16 state dict matching --lpips-weights")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a model or a folder of outputs on held-out truths (with the gray baseline)",
        description="Score colorizations against colour truths: PSNR, SSIM, CIEDE2000, ab AuC, colourfulness, "
        "chroma ratio and more, always beside the gray baseline (each truth's own lightness with no colour). "
        "Either colorize the truths with --model, or score another tool's outputs with --pred/--gt.",
    )
    source = p.add_argument_group("what to score (one of)")
    source.add_argument("--model", metavar="M", help="shipped weights name or checkpoint path; needs --data")
    source.add_argument(
        "--data", metavar="DIR|SOURCE",
        help="colour truths held out from training: a folder, or a training source: cifar100:DIR[:LABELS] (its "
        "test split), lab-arrays:DIR[:parts=N] (seed 002's arrays), coco:DIR, caltech101:DIR",
    )
    source.add_argument("--pred", type=Path, metavar="DIR", help="folder of outputs made by any tool; needs --gt")
    source.add_argument("--gt", type=Path, metavar="DIR", help="folder of truths matching --pred by relative path")
    p.add_argument("--out", type=Path, metavar="REPORT",
                   help="report folder to create (default reports/<model>-<data>-<timestamp>); never overwritten")
    p.add_argument("--resize", action="store_true", help="with --pred: resize outputs to their truth's size (bicubic)")
    p.add_argument("--allow-train-data", action="store_true",
                   help="evaluate even on folders the checkpoint records as training data (numbers will flatter)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads for colorization (default: all cores)")
    hints = p.add_argument_group("hint models (docs/hints.md)")
    hints.add_argument("--hints", type=int, metavar="N",
                       help="give a hint model N colour points per photo, sampled from the truth with a fixed seed; "
                       "the report plots PSNR and CIEDE2000 against 0, 1, 2, 5, 10, 20, 50, 100 and N hints")
    hints.add_argument("--reference", choices=("truth",), help="truth: also give each photo its truth's colour histogram")
    add_reference_match(hints)
    hints.add_argument("--seed", type=int, default=0, help="hint sampling seed (default: %(default)s)")
    add_optional_metric_args(p)
    from tinct.cli import evaluate_video  # video clips: their options (and their evaluation, in run)

    evaluate_video.add_arguments(p)
    p.set_defaults(func=run)


# The errors of an evaluation that cannot be done as asked: EvaluationError, DataError,
# ModelError, HintError, ... (TinctErrors that are ValueErrors) and what tinct.evaluate and
# the metrics still raise as built-in types (LPIPS on photos smaller than its network, a hint
# curve's --data that is not a folder, a disk that fills while a video report is written). tinct
# evaluate, compare and the video evaluation raise them again as CommandFailed(message, 1):
# tinct.cli.main prints "tinct <command>: <message>" and exits with status 1, the status
# these commands have always given a refused evaluation. A bad request (--model with --pred,
# --limit 0) is a TinctError (status 2), and so is an unknown model (UnknownModelError, a
# KeyError), which reaches tinct.cli.main as it is.
EXPECTED_ERRORS = (ValueError, OSError)  # OSError: missing, existing, unwritable files and folders


def refuse_existing(out: Path | None) -> None:
    """CommandFailed (status 1) when the report folder ``out`` exists: checked before any
    work, as reports are never overwritten (the writers check again:
    :func:`tinct.evaluate.report.refuse_existing_report`, whose message this is; that module
    is not imported here, so a refusal comes at once, before importing tinct.evaluate)."""
    if out is not None and out.exists():
        raise CommandFailed(f"{out}: already exists; reports are never overwritten (choose another --out)", 1)


def _validate(args) -> str | None:
    problem = reference_match_problem(args, "truth")
    if problem:
        return problem
    if args.model and args.pred:
        return "--model and --pred cannot be combined (score a model or a folder of outputs, not both)"
    if args.model:
        if args.data is None:
            return "--model needs --data DIR (a folder of held-out colour truths, or a source such as cifar100:DIR)"
        if args.gt is not None or args.resize:
            return "--gt and --resize go with --pred, not --model"
        return None
    if args.pred:
        if args.gt is None:
            return "--pred needs --gt DIR (the truths)"
        if args.data is not None or args.allow_train_data:
            return "--data and --allow-train-data go with --model, not --pred"
        return None
    return "give --model M --data DIR, or --pred DIR --gt DIR"


def run(args) -> int:
    """Score as ``args`` asks: print the table, write the report. Errors reach
    :func:`tinct.cli.main` as one line: a bad request is a :class:`~tinct.errors.TinctError`
    (status 2), a refused or failed evaluation a :class:`~tinct.cli.CommandFailed` (status 1)."""
    from tinct.cli import evaluate_video

    if evaluate_video.wants_video(args):  # the folder holds clips: temporal metrics too
        return evaluate_video.run(args)
    problem = _validate(args)
    if problem:
        raise TinctError(problem)
    if args.hints is not None or args.reference:
        return _run_hints(args)
    if args.limit is not None and args.limit < 1:
        raise TinctError(f"--limit must be >= 1, got {args.limit}")
    refuse_existing(args.out)

    from tinct.evaluate import evaluate_model, evaluate_predictions, format_table, write_report

    optional = dict(
        fid_weights=args.fid_weights,
        lpips_weights=args.lpips_weights,
        lpips_backbone=args.lpips_backbone,
        comparisons=args.comparisons,
        progress=not args.no_progress,
        limit=args.limit,
    )
    try:
        if args.model:
            evaluation = evaluate_model(
                args.model, args.data, allow_train_data=args.allow_train_data, threads=args.threads, **optional
            )
        else:
            evaluation = evaluate_predictions(args.pred, args.gt, resize=args.resize, **optional)
        folder = write_report(evaluation, args.out)  # first: a closed stdout pipe must not lose the report
        print(format_table(evaluation))
    except EXPECTED_ERRORS as exc:
        raise CommandFailed(one_line(exc), 1) from exc
    if evaluation.unmatched:
        for side, names in evaluation.unmatched.items():
            if names:
                shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
                what = side.replace("_", "-")
                print(f"tinct: warning: {len(names)} unmatched {what} file(s) skipped: {shown}", file=sys.stderr)
    print(f"\nreport: {folder / 'index.html'}")
    return 0


def _run_hints(args) -> int:
    """``--hints N`` / ``--reference truth``: the hint curve of a hint model beside gray and the
    automatic default (:mod:`tinct.evaluate.hints`)."""
    import time

    from tinct.evaluate.hints import HINT_COUNTS, evaluate_hints, hint_table, write_hint_report

    if not args.model:
        raise TinctError("--hints and --reference score a hint model: give --model M --data DIR")
    if args.hints is not None and args.hints < 0:
        raise TinctError(f"--hints must be >= 0, got {args.hints}")
    counts = sorted(set(HINT_COUNTS) | ({args.hints} if args.hints is not None else set()))
    if args.hints is None:  # --reference alone: the reference's effect without and with 10 points
        counts = [0, 10]
    out = args.out or Path("reports") / f"hints-{Path(str(args.model)).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    refuse_existing(out)
    try:
        curve = evaluate_hints(args.model, args.data, counts, seed=args.seed, reference=args.reference,
                               reference_match=args.reference_match, allow_train_data=args.allow_train_data, limit=args.limit, progress=not args.no_progress,
                               threads=args.threads)
        report = write_hint_report(curve, out)
    except EXPECTED_ERRORS as exc:
        raise CommandFailed(one_line(exc), 1) from exc
    print(hint_table(curve))
    print(f"\nreport: {report}")
    return 0
