"""Video clips in ``tinct colorize``: ``tinct colorize clip.mp4 -o clip_color.mp4``, folders too.

:mod:`tinct.cli.colorize` hands every clip it is given (a named clip, the clips of a folder
or of a pattern) to :func:`run`, and keeps the photos. Clips follow the photos' rules: a
clip without ``-o`` is written beside it as ``NAME_color.EXT``, folders are mirrored under
``-o``, an input is never an output, outputs are written atomically, an existing output is
kept unless ``--overwrite``, and one clip's failure is named in one line while the others
are still done. The work itself is :class:`tinct.video.VideoColorizer`.

Only the standard library is imported at module level (the command line starts fast).
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Equal to tinct.video.io.VIDEO_SUFFIXES (a test checks); not imported, so that parsing the
# command line does not import NumPy.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
DEFAULT_STRENGTH = 0.95  # tinct.video.TemporalConfig's default (a test checks)


def add_arguments(parser) -> None:
    """The video options of ``tinct colorize``."""
    group = parser.add_argument_group(f"video clips ({' '.join(VIDEO_SUFFIXES)})")
    group.add_argument(
        "--temporal", choices=("on", "off"), default="on",
        help="on: colour follows the motion (optical flow, occlusion masks, scene cuts) and does not flicker; "
        "off: every frame colorized on its own, the per-frame baseline (default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--temporal-strength", type=float, default=DEFAULT_STRENGTH, metavar="S",
        help="weight of the motion-compensated past where the flow is trusted, in [0, 1) (default: %(default)s)",
    )  # fmt: skip


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class Split:
    """The command line's inputs divided: clips (as :class:`~tinct.batch.Found`), the
    inputs the photo path still gets, and the clips' paths (so its walk does not list them)."""

    clips: list = field(default_factory=list)
    photo_inputs: list[str] = field(default_factory=list)
    clip_paths: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)


def _is_image(path: str | os.PathLike) -> bool:
    from tinct.io import IMAGE_SUFFIXES

    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _walk_clips(folder: Path, excluded: set[str]) -> tuple[list[Path], bool]:
    """Clips under ``folder`` (hidden files and folders, symlinked folders and ``excluded``
    left out, as the photo walk does), and whether the folder holds photos too."""
    clips, photos = [], False
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and not (Path(root) / d).is_symlink() and os.path.realpath(Path(root) / d) not in excluded
        )  # fmt: skip
        for name in files:
            if name.startswith("."):
                continue
            if is_video(name):
                clips.append(Path(root) / name)
            elif _is_image(name):
                photos = True
    return sorted(clips), photos


def split_inputs(inputs: list[str], output: str | None) -> Split:
    """Divide the inputs: clips go to :func:`run`, the rest stays with the photo path. A folder
    with both goes to both (each takes its own files)."""
    from tinct.batch import Found

    split = Split()
    output_folder = os.path.realpath(output) if output and not is_video(output) else None
    excluded = {output_folder} if output_folder else set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            clips, photos = _walk_clips(path, excluded)
            split.clips += [Found(clip, root=path) for clip in clips]
            if photos or not clips:
                split.photo_inputs.append(item)
        elif path.exists():
            if is_video(path):
                split.clips.append(Found(path, named=True))
            else:
                split.photo_inputs.append(item)
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            clips = [m for m in matches if m.is_file() and is_video(m)]
            if output_folder:
                inside = [m for m in clips if os.path.realpath(m).startswith(output_folder + os.sep)]
                split.skipped += [f"{m}: in the output folder" for m in inside]
                clips = [m for m in clips if m not in inside]
            split.clips += [Found(m) for m in clips]
            if any(_is_image(m) for m in matches) or not clips:
                split.photo_inputs.append(item)
        else:
            split.photo_inputs.append(item)
    split.clip_paths = {str(found.path) for found in split.clips}
    return split


def not_a_clip_line(line: str, clip_paths: set[str]) -> bool:
    """Whether a photo-walk skip line (``"PATH: reason"``) is not about a clip this run handles."""
    return not any(line.startswith(f"{path}: ") for path in clip_paths)


# ---------------------------------------------------------------------------------------------


def _say(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"tinct colorize: {line}", file=sys.stderr)


def _plan(split: Split, args):
    """The clips' jobs (targets as the photo path would name them); a BatchError when the
    output cannot hold them."""
    from tinct.batch import BatchError, Job, checked_plan, job_target

    found = split.clips
    if args.output is not None and is_video(args.output) and not Path(args.output).is_dir():
        if len(found) != 1 or split.photo_inputs:
            raise BatchError(f"-o {args.output} names one clip but {len(found) + len(split.photo_inputs)} inputs were given; pass a folder")
        jobs = [Job(found[0].path, Path(args.output))]
    else:
        if args.output is not None and Path(args.output).exists() and not Path(args.output).is_dir():
            raise BatchError(f"-o {args.output}: is a file, not a folder (name a folder, or a video file for one clip)")
        jobs = [Job(item.path, job_target(item, args.output, args.suffix)) for item in found]
    for job in jobs:
        if not is_video(job.target):
            raise BatchError(f"{job.source}: output {job.target} is not a video file name (use {', '.join(VIDEO_SUFFIXES)})")
    return checked_plan(jobs, found)


def _readable(jobs: list, max_megapixels: float) -> tuple[list, list[str], dict]:
    """The jobs whose clip can be read and whose frames are within the pixel limit, the lines
    for the others, and each readable clip's header facts."""
    from tinct.batch import reason
    from tinct.video.io import VideoReadError, probe_video

    kept, failed, infos = [], [], {}
    for job in jobs:
        try:
            info = probe_video(job.source)
        except VideoReadError as exc:
            failed.append(f"skipped {exc}")
            continue
        except Exception as exc:  # one clip's failure, whatever it is, stops no other
            failed.append(f"skipped {job.source}: cannot read ({reason(exc)})")
            continue
        if info.width * info.height > max_megapixels * 1e6:
            failed.append(f"skipped {job.source}: {info.width} x {info.height} frames are over the limit of "
                          f"{max_megapixels:g} megapixels (--max-megapixels)")  # fmt: skip
            continue
        kept.append(job)
        infos[job.source] = info
    return kept, failed, infos


@dataclass
class _ClipTally:
    """Counts of the clips: written, failed, kept (output exists); frames and scene cuts."""

    done: int = 0
    failed: int = 0
    existing: int = 0
    frames: int = 0
    cuts: int = 0

    def add(self, done: int = 0, failed: int = 0) -> None:
        self.done += done
        self.failed += failed


def _pending(plan, args, tally: _ClipTally) -> tuple[list, dict]:
    """The jobs to colorize (output free or --overwrite, folder writable, clip readable) and
    each one's header facts; every other job named in one line and counted."""
    from tinct.batch import remove_leftovers, writable_jobs

    for partial in remove_leftovers(plan.jobs):
        if not args.quiet:
            _say(f"removed {partial} (left by an interrupted run)")
    pending = [job for job in plan.jobs if args.overwrite or not job.target.exists()]
    tally.existing = len(plan.jobs) - len(pending)
    pending = writable_jobs(pending, tally, _say, "clip")
    pending, unreadable, infos = _readable(pending, args.max_megapixels)
    for line in unreadable:
        _say(line)
    tally.failed += len(unreadable)
    return pending, infos


def _colorize_clips(video, pending: list, infos: dict, args, tally: _ClipTally) -> None:
    """Colorize each clip with a progress bar of its frames; one clip's failure stops no other."""
    from tqdm import tqdm

    from tinct.batch import reason

    for job in pending:
        total = infos[job.source].frames or None
        label = job.source.name if len(job.source.name) <= 30 else job.source.name[:27] + "..."
        with tqdm(total=total, unit="frame", desc=label, disable=True if args.quiet else None, file=sys.stderr,
                  dynamic_ncols=True) as bar:  # fmt: skip
            try:
                result = video.colorize_file(job.source, job.target, overwrite=args.overwrite, on_frame=lambda: bar.update(1))
            except Exception as exc:  # one clip's failure, whatever it is, stops no other
                _say(f"{job.source}: cannot colorize ({reason(exc)}); nothing written to {job.target}")
                tally.failed += 1
                continue
        tally.done += 1
        tally.frames += result.frames
        tally.cuts += len(result.cuts)


def _summary(tally: _ClipTally, elapsed: float, model_name: str | None, temporal: str) -> str:
    from tinct.cli.colorize import summary_line

    first = f"colorized {tally.done} clip{'s' if tally.done != 1 else ''} ({tally.frames} frames) in {elapsed:.1f} s"
    if model_name:
        first += f" with {model_name}, temporal {temporal}"
        if tally.frames and elapsed > 0:
            first += f", {tally.frames / elapsed:.1f} frames/s"
        if temporal == "on":
            first += f", {tally.cuts} scene cut{'s' if tally.cuts != 1 else ''} found"
    return summary_line(first, tally.existing, tally.failed)


def run(args, split: Split) -> int:
    """Colorize the clips of ``split``; returns 0 or 1 (some failed). A bad option or an
    output that cannot hold the clips raises a :class:`~tinct.errors.TinctError`."""
    from tinct.errors import TinctError

    if not 0 <= args.temporal_strength < 1:
        raise TinctError(f"--temporal-strength must be in [0, 1), got {args.temporal_strength:g}")
    for line in split.skipped:
        _say(f"skipped {line}")
    plan = _plan(split, args)
    for line in plan.skipped:
        _say(f"skipped {line}")
    for line in plan.refused:
        _say(line)
    tally = _ClipTally(failed=len(plan.refused))
    pending, infos = _pending(plan, args, tally)

    model_name = None
    start = time.perf_counter()
    if pending:
        from tinct.video import TemporalConfig, VideoColorizer

        temporal = TemporalConfig(strength=args.temporal_strength) if args.temporal == "on" else None
        video = VideoColorizer(args.model, temporal, batch_size=args.batch_size, threads=args.threads, engine=args.engine)
        model_name = video.colorizer.name
        start = time.perf_counter()
        _colorize_clips(video, pending, infos, args, tally)

    if not args.quiet:
        print(_summary(tally, time.perf_counter() - start, model_name, args.temporal), file=sys.stderr)
        if len(plan.jobs) == 1 and tally.done == 1 and not split.photo_inputs:
            print(plan.jobs[0].target)
    return 1 if tally.failed else 0
