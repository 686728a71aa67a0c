"""``tinct colorize``: photos, folders and globs in, colour photos out, at full resolution.

Nothing is lost: an input is never an output, whatever the flags; every output is written
atomically; one photo's failure is named in one line and the others are still done; and
every file a folder walk leaves out is named on stderr with the reason.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

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
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
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
    from tinct.cli import colorize_video  # video clips: their options (and their path, in run)

    colorize_video.add_arguments(p)
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Found:
    """An input file: its path as found (symlinks kept, so folders mirror as they look), the
    folder it was found under, and whether it was named on the command line."""

    path: Path
    root: Path | None = None
    named: bool = False


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class Plan:
    """The jobs to do, files left out (``"PATH: reason"``, not failures) and jobs refused
    because their output is an input (failures)."""

    jobs: list[Job]
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    existing: int = 0

    def add(self, done: int = 0, failed: int = 0) -> None:
        """Count from any thread (reading and writing run beside the network)."""
        with _TALLY_LOCK:
            self.done += done
            self.failed += failed


_TALLY_LOCK = threading.Lock()
PIPELINE_DEPTH = 2  # batches decoded ahead of, and encoded behind, the one being colorized


def _error(message: str) -> int:
    print(f"tinct colorize: {message}", file=sys.stderr)
    return 2


def _say(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"tinct colorize: {line}", file=sys.stderr)  # above a progress bar, if one is shown


def _reason(exc: BaseException) -> str:
    """One line on why something failed."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().strip("'\"")
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# What to colorize and where it goes
# ---------------------------------------------------------------------------------------------


def _names_one_file(output: str) -> bool:
    from tinct.io import IMAGE_SUFFIXES

    return Path(output).suffix.lower() in IMAGE_SUFFIXES and not Path(output).is_dir()


def _expand_pattern(pattern: str, output_folder: Path | None) -> tuple[list[Found], list[str]]:
    from tinct.io import image_skip_reason

    found, skipped = [], []
    for match in sorted(Path(m) for m in glob.glob(pattern, recursive=True)):
        if match.is_dir():
            reason = "a folder (patterns pick files; name the folder to search it)"
        elif output_folder is not None and _is_inside(match, output_folder):
            reason = "in the output folder"
        else:
            reason = image_skip_reason(match)
        if reason:
            skipped.append(f"{match}: {reason}")
        else:
            found.append(Found(match))
    if not found:
        raise FileNotFoundError(f"{pattern}: pattern matches no image files")
    return found, skipped


def _is_inside(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def _unique(found: list[Found]) -> tuple[list[Found], list[str]]:
    """The first of each file found more than once (by real path), naming the others."""
    first: dict[str, Found] = {}
    skipped = []
    for item in found:
        key = os.path.realpath(item.path)
        if key in first:
            skipped.append(f"{item.path}: same file as {first[key].path}")
        else:
            first[key] = item
    return list(first.values()), skipped


def expand_inputs(inputs: list[str], output_folder: Path | None = None) -> tuple[list[Found], list[str]]:
    """Every input file, and every file or folder left out with the reason (``"PATH: reason"``).

    Folders are walked recursively, except ``output_folder``. Raises FileNotFoundError for an
    input that matches nothing.
    """
    from tinct.io import scan_folder

    found: list[Found] = []
    skipped: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            scan = scan_folder(path, exclude=[output_folder] if output_folder else [])
            found.extend(Found(f, root=path) for f in scan.images)
            skipped.extend(f"{p}: {reason}" for p, reason in scan.skipped)
        elif path.exists():
            found.append(Found(path, named=True))
        elif glob.has_magic(item):
            matched, left_out = _expand_pattern(item, output_folder)
            found.extend(matched)
            skipped.extend(left_out)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    found, duplicates = _unique(found)
    return found, skipped + duplicates


def _target(item: Found, output: str | None, suffix: str) -> Path:
    if output is None:
        return item.path.with_name(f"{item.path.stem}{suffix}{item.path.suffix}")
    if item.root is not None:
        return Path(output) / item.path.relative_to(item.root)
    return Path(output) / item.path.name


def _without_own_outputs(jobs: list[Job], found: list[Found]) -> tuple[list[Job], list[str]]:
    """Leave out files a folder walk or a pattern found that are another job's output (the
    ``*_color`` files of an earlier run): they are not colorized again."""
    writers = {os.path.realpath(job.target): job.source for job in jobs}
    kept, skipped = [], []
    for job, item in zip(jobs, found):
        writer = writers.get(os.path.realpath(job.source))
        if writer is not None and writer != job.source and not item.named:
            skipped.append(f"{job.source}: output of {writer}, not colorized again")
        else:
            kept.append(job)
    return kept, skipped


def _check_distinct_targets(jobs: list[Job]) -> None:
    targets: dict[str, Path] = {}
    for job in jobs:
        key = os.path.realpath(job.target)
        if key in targets:
            raise ValueError(f"{targets[key]} and {job.source} would both be written to {job.target}")
        targets[key] = job.source


def _input_index(sources: list[Path]) -> dict:
    """Each input by real path and by (device, inode), so that symlinks and hard links match."""
    index: dict = {}
    for source in sources:
        index[os.path.realpath(source)] = source
        try:
            info = os.stat(source)
            index[(info.st_dev, info.st_ino)] = source
        except OSError:
            pass
    return index


def _input_at(index: dict, target: Path) -> Path | None:
    hit = index.get(os.path.realpath(target))
    if hit is None:
        try:
            info = os.stat(target)
            hit = index.get((info.st_dev, info.st_ino))
        except OSError:
            pass
    return hit


def _refuse_inputs_as_outputs(jobs: list[Job]) -> tuple[list[Job], list[str]]:
    """Refuse every job whose output is an input: the same path, a symlink to it or a hard link."""
    index = _input_index([job.source for job in jobs])
    kept, refused = [], []
    for job in jobs:
        source = _input_at(index, job.target)
        if source is None:
            kept.append(job)
        elif os.path.abspath(job.target) == os.path.abspath(job.source):
            refused.append(f"{job.source}: output would overwrite the input; refused")
        else:
            refused.append(f"{job.source}: output {job.target} would overwrite the input {source}; refused")
    return kept, refused


def plan_jobs(found: list[Found], output: str | None, suffix: str) -> Plan:
    """Where each input goes; ValueError when -o cannot hold them."""
    if output is not None and _names_one_file(output):
        if len(found) != 1:
            raise ValueError(f"-o {output} names one file but {len(found)} inputs were given; pass a folder")
        jobs = [Job(found[0].path, Path(output))]
    else:
        if output is not None and Path(output).exists() and not Path(output).is_dir():
            raise ValueError(f"-o {output}: is a file, not a folder (name a folder, or an image file for one input)")
        jobs = [Job(item.path, _target(item, output, suffix)) for item in found]
    jobs, skipped = _without_own_outputs(jobs, found)
    _check_distinct_targets(jobs)
    jobs, refused = _refuse_inputs_as_outputs(jobs)
    return Plan(jobs, skipped, refused)


# ---------------------------------------------------------------------------------------------
# Before any photo is colorized
# ---------------------------------------------------------------------------------------------


def _remove_leftovers(jobs: list[Job], quiet: bool) -> None:
    """Remove the temporary files that an interrupted run (kill -9) left beside the outputs."""
    from tinct.io import remove_stale_partials

    for partial in remove_stale_partials(job.target for job in jobs):
        if not quiet:
            _say(f"removed {partial} (left by an interrupted run)")


def _writable(jobs: list[Job], tally: Tally, noun: str = "photo") -> list[Job]:
    """The jobs whose output folder can be written; one line for each folder that cannot
    (``noun``: what the jobs are, "photo" or "clip")."""
    from tinct.io import check_writable_folder

    unwritable: dict[Path, str] = {}
    for folder in dict.fromkeys(job.target.parent for job in jobs):
        try:
            check_writable_folder(folder)
        except OSError as exc:
            unwritable[folder] = _reason(exc)
    for folder, reason in unwritable.items():
        count = sum(job.target.parent == folder for job in jobs)
        _say(f"{folder}: cannot write there ({reason}); {count} {noun}{'s' if count != 1 else ''} not colorized")
        tally.failed += count
    return [job for job in jobs if job.target.parent not in unwritable]


# ---------------------------------------------------------------------------------------------
# Colorizing
# ---------------------------------------------------------------------------------------------


def _colorized(colorizer, photos: list) -> Iterator:
    """Each photo's uint8 RGB, or the exception that stopped it, in order. Photos go through
    in batches; after a failure the rest go one by one, so only the photo at fault fails."""
    done = 0
    try:
        for rgb in colorizer.colorize_many(photos):
            yield rgb
            done += 1
        return
    except Exception as exc:  # one photo's failure (memory included) must not stop the others
        if done == len(photos) - 1:
            yield exc
            return
    for photo in photos[done:]:
        try:
            yield next(iter(colorizer.colorize_many([photo])))
        except Exception as exc:
            yield exc


def _unreadable(job: Job, exc: BaseException) -> str:
    """The one line for a photo that cannot be read."""
    from tinct.io import ImageReadError, ImageTooLargeError

    if isinstance(exc, ImageTooLargeError):
        return f"skipped {exc.path}: {exc.description} is over the limit of {exc.limit:g} megapixels (--max-megapixels)"
    if isinstance(exc, MemoryError):
        return f"skipped {job.source}: out of memory while decoding"
    if isinstance(exc, ImageReadError):
        return f"skipped {exc}"
    return f"skipped {job.source}: cannot read ({_reason(exc)})"  # a decoder's own failure


def _checked(jobs: list[Job], max_megapixels: float, tally: Tally) -> list[Job]:
    """The jobs whose input is an image within the pixel limit, judged from headers alone,
    so that a decompression bomb is refused at once, before the model is even loaded."""
    from tinct.io import check_image

    kept = []
    for job in jobs:
        try:
            check_image(job.source, max_megapixels=max_megapixels)
            kept.append(job)
        except Exception as exc:  # one file's failure, whatever it is, stops no other
            _say(_unreadable(job, exc))
            tally.add(failed=1)
    return kept


def _read(job: Job, max_megapixels: float, tally: Tally):
    """The job's Photo or Animation, or None after naming the failure."""
    from tinct.io import read_image

    try:
        return read_image(job.source, max_megapixels=max_megapixels)
    except Exception as exc:  # one file's failure, whatever it is, stops no other
        _say(_unreadable(job, exc))
        tally.add(failed=1)
        return None


def _save(job: Job, write, tally: Tally) -> None:
    try:
        write()
        tally.add(done=1)
    except Exception as exc:  # one file's failure, whatever it is, stops no other
        _say(f"{job.target}: cannot write ({_reason(exc)})")
        tally.add(failed=1)


def _colorize_animation(colorizer, job: Job, animation, args, tally: Tally) -> None:
    from tinct.io import write_animation

    frames = []
    for index, result in enumerate(_colorized(colorizer, animation.frames)):
        if isinstance(result, Exception):
            _say(f"{job.source}: cannot colorize frame {index + 1} ({_reason(result)})")
            tally.add(failed=1)
            return
        frames.append(result)
    _save(
        job,
        lambda: write_animation(
            job.target, frames, animation.durations, loop=animation.loop, quality=args.quality, overwrite=args.overwrite
        ),
        tally,
    )


def _read_batch(batch: list[Job], args, tally: Tally) -> list[tuple[Job, object]]:
    """Each job with its decoded Photo or Animation (None after naming a failure)."""
    return [(job, _read(job, args.max_megapixels, tally)) for job in batch]


def _colorize_batch(colorizer, items: list[tuple[Job, object]], args, tally: Tally, write_later) -> None:
    """Colorize one batch of read items; ``write_later(fn)`` runs a save (here or in a thread)."""
    from tinct.io import Animation, write_image

    stills = []
    for job, item in items:
        if isinstance(item, Animation):
            _colorize_animation(colorizer, job, item, args, tally)
        elif item is not None:
            stills.append((job, item))
    results = _colorized(colorizer, [photo for _, photo in stills])
    for (job, photo), rgb in zip(stills, results):
        if isinstance(rgb, Exception):
            _say(f"{job.source}: cannot colorize ({_reason(rgb)})")
            tally.add(failed=1)
            continue

        def save(job=job, photo=photo, rgb=rgb):
            _save(job, lambda: write_image(job.target, rgb, alpha=photo.alpha, quality=args.quality,
                                           overwrite=args.overwrite), tally)

        write_later(save)


def _colorize_pipelined(colorizer, pending: list[Job], args, tally: Tally, bar) -> None:
    """Decode the next batches and encode the last ones in two threads while the network runs
    on the current one (Pillow and ONNX Runtime release the GIL), so a folder keeps both cores
    busy. At most ``PIPELINE_DEPTH`` batches wait on either side, so memory stays bounded."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    batches = [pending[i : i + args.batch_size] for i in range(0, len(pending), args.batch_size)]
    with ThreadPoolExecutor(1, thread_name_prefix="tinct-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="tinct-write") as writer:
        reads = deque(reader.submit(_read_batch, b, args, tally) for b in batches[:PIPELINE_DEPTH])
        writes: deque = deque()
        for index, batch in enumerate(batches):
            items = reads.popleft().result()
            if index + PIPELINE_DEPTH < len(batches):
                reads.append(reader.submit(_read_batch, batches[index + PIPELINE_DEPTH], args, tally))
            _colorize_batch(colorizer, items, args, tally, lambda save: writes.append(writer.submit(save)))
            while len(writes) > PIPELINE_DEPTH * args.batch_size:
                writes.popleft().result()
            bar.update(len(batch))
        for future in writes:
            future.result()


def _summary(tally: Tally, elapsed: float, model_name: str | None) -> str:
    parts = [f"colorized {tally.done} photo{'s' if tally.done != 1 else ''} in {elapsed:.1f} s"]
    if model_name:
        parts[0] += f" with {model_name}"
    if tally.existing:
        parts.append(f"{tally.existing} skipped (output exists; --overwrite to replace)")
    if tally.failed:
        parts.append(f"{tally.failed} failed")
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Clips go to :mod:`tinct.cli.colorize_video`; photos (and anything else) stay here."""
    from tinct.cli import colorize_video

    split = colorize_video.split_inputs(args.inputs, args.output)
    if not split.clips:
        return _run_photos(args)
    if args.batch_size < 1:
        return _error(f"--batch-size must be >= 1, got {args.batch_size}")
    status = colorize_video.run(args, split)
    if split.photo_inputs and status != 2:
        args.inputs = split.photo_inputs
        status = max(status, _run_photos(args, split.clip_paths))
    return status


def _run_photos(args: argparse.Namespace, clip_paths: set[str] = frozenset()) -> int:
    if args.batch_size < 1:
        return _error(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 1 <= args.quality <= 100:
        return _error(f"--quality must be in 1..100, got {args.quality}")
    if not args.max_megapixels > 0:
        return _error(f"--max-megapixels must be > 0, got {args.max_megapixels:g}")
    output_folder = Path(args.output) if args.output and not _names_one_file(args.output) else None
    try:
        found, skipped = expand_inputs(args.inputs, output_folder)
        plan = plan_jobs(found, args.output, args.suffix)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        return _error(str(exc))
    from tinct.cli.colorize_video import not_a_clip_line  # clips in a folder are colorized there, not skipped

    for line in skipped + plan.skipped:
        if not_a_clip_line(line, clip_paths):
            _say(f"skipped {line}")
    for line in plan.refused:
        _say(line)
    if not plan.jobs and not plan.refused:
        return _error("no image files found in " + ", ".join(args.inputs))

    _remove_leftovers(plan.jobs, args.quiet)
    tally = Tally(failed=len(plan.refused))
    pending = [job for job in plan.jobs if args.overwrite or not job.target.exists()]
    tally.existing = len(plan.jobs) - len(pending)
    pending = _writable(_checked(pending, args.max_megapixels, tally), tally)

    model_name = None
    start = time.perf_counter()
    if pending:
        from tqdm import tqdm

        from tinct.infer import Colorizer

        try:
            colorizer = Colorizer(args.model, threads=args.threads, batch_size=args.batch_size, engine=args.engine)
        except (KeyError, ValueError, FileNotFoundError, TypeError) as exc:
            return _error(str(exc).strip("'\""))
        model_name = colorizer.name
        start = time.perf_counter()
        show_bar = not args.quiet and len(pending) > PROGRESS_THRESHOLD and sys.stderr.isatty()
        with tqdm(total=len(pending), unit="photo", disable=not show_bar, file=sys.stderr) as bar:
            _colorize_pipelined(colorizer, pending, args, tally, bar)

    if not args.quiet:
        print(_summary(tally, time.perf_counter() - start, model_name), file=sys.stderr)
        if len(plan.jobs) == 1 and tally.done == 1:
            print(plan.jobs[0].target)
    return 1 if tally.failed else 0
