"""Video clips in ``tinct evaluate``: temporal metrics beside the per-frame and gray baselines.

    tinct evaluate --model M --data CLIPS [--limit N] [--max-frames N] [--out REPORT]
    tinct evaluate --pred CLIPS --gt CLIPS [--per-frame-pred CLIPS] [--out REPORT]

:mod:`tinct.cli.evaluate` hands over when the folder it is given holds video clips
(``--data``, or ``--gt`` with ``--pred``); the work is :mod:`tinct.evaluate.video`. Only the
standard library is imported at module level.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tinct.cli.colorize_video import is_video


def add_arguments(parser) -> None:
    group = parser.add_argument_group("video clips (when --data or --gt holds clips: docs/video.md)")
    group.add_argument("--per-frame-pred", type=Path, metavar="DIR",
                       help="with --pred: the same tool's per-frame outputs, scored as the baseline row")  # fmt: skip
    group.add_argument("--max-frames", type=int, metavar="N", help="score only the first N frames of each clip")
    group.add_argument("--temporal-strength", type=float, metavar="S",
                       help="with --model: the temporal filter's strength (default: tinct colorize's)")  # fmt: skip


def _holds_clips(folder) -> bool:
    if folder is None or not Path(folder).is_dir():
        return False
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(is_video(name) and not name.startswith(".") for name in files):
            return True
    return False


def wants_video(args) -> bool:
    """Whether the folder to score holds clips (then this module runs the evaluation)."""
    if args.pred is not None or args.gt is not None:
        return _holds_clips(args.gt)
    return _holds_clips(args.data)


def _validate(args) -> str | None:
    """What is wrong with the request (one line), or None."""
    if args.model and args.pred:
        return "--model and --pred cannot be combined (score a model or a folder of outputs, not both)"
    if args.pred is not None and args.gt is None:
        return "--pred needs --gt DIR (the truth clips)"
    if args.gt is not None and args.pred is None:
        return "--gt needs --pred DIR (the output clips)"
    if args.per_frame_pred is not None and args.pred is None:
        return "--per-frame-pred goes with --pred"
    if args.model is None and args.pred is None:
        return "give --model M --data CLIPS, or --pred CLIPS --gt CLIPS"
    for name, value in (("--limit", args.limit), ("--max-frames", args.max_frames)):
        if value is not None and value < 1:
            return f"{name} must be >= 1, got {value}"
    if args.temporal_strength is not None and not 0 <= args.temporal_strength < 1:
        return f"--temporal-strength must be in [0, 1), got {args.temporal_strength:g}"
    return None


def run(args) -> int:
    """Score the clips as ``args`` asks (errors as :func:`tinct.cli.evaluate.run`'s: a bad
    request is a TinctError, status 2; a refused or failed evaluation a CommandFailed, status 1)."""
    from tinct.cli import CommandFailed
    from tinct.cli.evaluate import EXPECTED_ERRORS, refuse_existing
    from tinct.errors import TinctError, one_line

    problem = _validate(args)
    if problem:
        raise TinctError(problem)
    refuse_existing(args.out)

    from tinct.evaluate.video import evaluate_video_model, evaluate_video_predictions, format_video_table, write_video_report

    try:
        if args.model:
            from tinct.video.temporal import TemporalConfig

            temporal = TemporalConfig(strength=args.temporal_strength) if args.temporal_strength is not None else None
            evaluation = evaluate_video_model(args.model, args.data, limit=args.limit, max_frames=args.max_frames,
                                              temporal=temporal, threads=args.threads, progress=not args.no_progress,
                                              allow_train_data=args.allow_train_data)  # fmt: skip
        else:
            evaluation = evaluate_video_predictions(args.pred, args.gt, per_frame_pred=args.per_frame_pred, limit=args.limit,
                                                    max_frames=args.max_frames, progress=not args.no_progress)  # fmt: skip
        folder = write_video_report(evaluation, args.out)
        print(format_video_table(evaluation))
    except EXPECTED_ERRORS as exc:
        raise CommandFailed(one_line(exc), 1) from exc
    print(f"\nreport: {folder}", file=sys.stdout)
    return 0
