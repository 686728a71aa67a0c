"""``tinct colorize``: photos, folders and globs in, colour photos out, at full resolution.

Nothing is lost: an input is never an output, whatever the flags; every output is written
atomically; one photo's failure is named in one line and the others are still done; and
every file a folder walk leaves out is named on stderr with the reason. Those rules, the
planning and the batched, pipelined work are the library's (:mod:`tinct.batch`); this module
parses the options and prints what happened.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROGRESS_THRESHOLD = 3  # show a progress bar for more files than this
# Equal to tinct.io.DEFAULT_MAX_MEGAPIXELS (a test checks); not imported, so that parsing
# the command line does not import NumPy and Pillow.
DEFAULT_MAX_MEGAPIXELS = 50.0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "colorize",
        help="colorize photos, folders or globs",
        description=(
            "Colorize gray photos at full resolution. A single file without -o is written beside "
            "it as NAME_color.EXT; folders are searched recursively and mirrored under -o. "
            "An input is never overwritten. An animated GIF, PNG or WebP is colorized frame by frame. "
            "Video clips are colorized without flicker, keeping their frame rate and sound (docs/video.md)."
        ),
    )
    p.add_argument("inputs", nargs="*", help="image files, folders or glob patterns")
    p.add_argument("--examples", action="store_true", help="colorize the example photos that ship with tinct (tinct.examples_dir())")
    p.add_argument("-o", "--output", help="output file (single input) or folder")
    p.add_argument("-m", "--model", default="default", help="shipped weights name or checkpoint path (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=4, help="photos per forward pass (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all available)")
    p.add_argument("--engine", choices=("auto", "onnx", "torch"), default="auto", help="auto: ONNX Runtime for models with an export (tinct export), else torch (default: %(default)s)")
    p.add_argument("--suffix", default="_color", help="suffix for outputs written beside inputs (default: %(default)s)")
    p.add_argument(
        "--max-megapixels",
        type=float,
        default=DEFAULT_MAX_MEGAPIXELS,
        help=(
            "refuse larger images (all frames of an animation together), checked from the file "
            "header before decoding; guards against decompression bombs (default: %(default)g)"
        ),
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--hints", metavar="JSON", help="colour points for the one photo given (docs/hints.md); "
                   "uses the hint model tinct-v2-hints unless --model names another")
    p.add_argument("--reference", metavar="PHOTO", help="a colour photo whose colours guide every photo "
                   "(hint model, as --hints)")
    from tinct.cli import add_reference_match, colorize_video  # video clips: their options (and their path, in run)

    add_reference_match(p)
    colorize_video.add_arguments(p)
    p.set_defaults(func=run)


def _say(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"tinct colorize: {line}", file=sys.stderr)  # above a progress bar, if one is shown


def _check_options(args: argparse.Namespace, photos: bool = True) -> None:
    """A :class:`~tinct.errors.TinctError` naming the first option out of range (clips take
    only ``--batch-size`` of these)."""
    from tinct.errors import TinctError

    if args.batch_size < 1:
        raise TinctError(f"--batch-size must be >= 1, got {args.batch_size}")
    from tinct.cli import reference_match_problem

    problem = reference_match_problem(args, "PHOTO")
    if problem:
        raise TinctError(problem)
    if not photos:
        return
    if not 1 <= args.quality <= 100:
        raise TinctError(f"--quality must be in 1..100, got {args.quality}")
    if not args.max_megapixels > 0:
        raise TinctError(f"--max-megapixels must be > 0, got {args.max_megapixels:g}")


def _inputs(args: argparse.Namespace) -> list[str]:
    """The inputs named, with the shipped example photos for ``--examples``."""
    from tinct.errors import TinctError

    inputs = list(args.inputs)
    if args.examples:  # the photos only: the folder's CREDITS.md is no photo to skip
        from tinct import examples_dir
        from tinct.io import list_images

        inputs.extend(str(path) for path in list_images(examples_dir()))
    if not inputs:
        raise TinctError("give photos, folders or glob patterns to colorize (or --examples)")
    return inputs


def summary_line(first: str, existing: int, failed: int) -> str:
    """The last line of a colorize run (photos or clips): what was done, then what was skipped
    because its output exists and what failed, when any was."""
    parts = [first]
    if existing:
        parts.append(f"{existing} skipped (output exists; --overwrite to replace)")
    if failed:
        parts.append(f"{failed} failed")
    return "; ".join(parts)


def _summary(summary) -> str:
    done = summary.done
    first = f"colorized {done} photo{'s' if done != 1 else ''} in {summary.seconds:.1f} s"
    if summary.model_name:
        first += f" with {summary.model_name}"
    return summary_line(first, summary.existing, summary.failed)


def run(args: argparse.Namespace) -> int:
    """Clips go to :mod:`tinct.cli.colorize_video`; photos (and anything else) stay here."""
    from tinct.cli import colorize_video

    args.inputs = _inputs(args)
    split = colorize_video.split_inputs(args.inputs, args.output)
    if not split.clips:
        return _run_photos(args)
    _check_options(args, photos=False)
    status = colorize_video.run(args, split)
    if split.photo_inputs:
        args.inputs = split.photo_inputs
        status = max(status, _run_photos(args, split.clip_paths))
    return status


def _progress_bar(quiet: bool):
    """A tqdm bar on stderr for more than ``PROGRESS_THRESHOLD`` photos, shown on a terminal."""
    from tqdm import tqdm

    def bar(total: int):
        show = not quiet and total > PROGRESS_THRESHOLD and sys.stderr.isatty()
        return tqdm(total=total, unit="photo", disable=not show, file=sys.stderr)

    return bar


def _run_photos(args: argparse.Namespace, clip_paths: set[str] = frozenset()) -> int:
    from tinct.batch import BatchError, ColorizeOptions, colorize_jobs, expand_inputs, names_one_file, plan_jobs
    from tinct.cli.colorize_video import not_a_clip_line  # clips in a folder are colorized there, not skipped

    _check_options(args)
    options = ColorizeOptions(args.quality, args.overwrite, args.max_megapixels, args.batch_size)
    output_folder = Path(args.output) if args.output and not names_one_file(args.output) else None
    found, skipped = expand_inputs(args.inputs, output_folder)
    plan = plan_jobs(found, args.output, args.suffix)
    for line in skipped + plan.skipped:
        if not_a_clip_line(line, clip_paths):
            _say(f"skipped {line}")
    for line in plan.refused:
        _say(line)
    if not plan.jobs and not plan.refused:
        raise BatchError("no image files found in " + ", ".join(args.inputs))

    summary = colorize_jobs(
        plan, _guided(args, plan) if args.hints or args.reference else args.model, options, threads=args.threads, engine=args.engine, on_failure=_say,
        on_removed=None if args.quiet else lambda path: _say(f"removed {path} (left by an interrupted run)"),
        progress=_progress_bar(args.quiet),
    )  # fmt: skip
    if not args.quiet:
        print(_summary(summary), file=sys.stderr)
        if len(plan.jobs) == 1 and summary.done == 1:
            print(plan.jobs[0].target)
    return 1 if summary.failed else 0


def _guided(args: argparse.Namespace, plan):
    """The hint model with ``--hints``/``--reference`` applied to every photo of ``plan``."""
    from tinct.batch import guided_colorizer
    from tinct.errors import TinctError
    from tinct.hints import HINT_MODEL

    if args.hints and len(plan.jobs) != 1:
        raise TinctError(f"--hints holds points of one photo; got {len(plan.jobs)} photos to colorize")
    if args.engine == "onnx":
        raise TinctError("--hints and --reference run the hint model in torch; drop --engine onnx")
    model = HINT_MODEL if args.model == "default" else args.model
    return guided_colorizer(model, args.hints, args.reference, threads=args.threads,
                            reference_match=args.reference_match)
