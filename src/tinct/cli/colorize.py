"""``tinct colorize``: photos, folders and globs in, colour photos out, at full resolution."""

from __future__ import annotations

import argparse
import glob
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROGRESS_THRESHOLD = 3  # show a progress bar for more files than this


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "colorize",
        help="colorize photos, folders or globs",
        description=(
            "Colorize gray photos at full resolution. A single file without -o is written beside "
            "it as NAME_color.EXT; folders are searched recursively and mirrored under -o."
        ),
    )
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", help="output file (single input) or folder")
    p.add_argument("-m", "--model", default="default", help="shipped weights name or checkpoint path (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=4, help="photos per forward pass (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all available)")
    p.add_argument("--suffix", default="_color", help="suffix for outputs written beside inputs (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def _error(message: str) -> int:
    print(f"tinct colorize: {message}", file=sys.stderr)
    return 2


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path | None]]:
    """Each input file with the folder it was found under (None for files named directly).

    Raises FileNotFoundError for an input that matches nothing.
    """
    from tinct.io import IMAGE_SUFFIXES, list_images

    found: list[tuple[Path, Path | None]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend((f, path) for f in list_images(path))
        elif path.exists():
            found.append((path, None))
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES]
            if not files:
                raise FileNotFoundError(f"{item}: pattern matches no image files")
            found.extend((m, None) for m in files)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    unique: dict[Path, Path | None] = {}
    for source, root in found:
        unique.setdefault(source.resolve(), root)
    return [(Path(s), r) for s, r in unique.items()]


def plan_jobs(found: list[tuple[Path, Path | None]], output: str | None, suffix: str) -> list[Job]:
    """Where each input goes; ValueError when -o cannot hold them."""
    from tinct.io import IMAGE_SUFFIXES

    if output is not None and Path(output).suffix.lower() in IMAGE_SUFFIXES and not Path(output).is_dir():
        if len(found) != 1:
            raise ValueError(f"-o {output} names one file but {len(found)} inputs were given; pass a folder")
        return [Job(found[0][0], Path(output))]
    jobs = []
    for source, root in found:
        if output is None:
            target = source.with_name(f"{source.stem}{suffix}{source.suffix}")
        elif root is not None:
            target = Path(output) / source.relative_to(root.resolve())
        else:
            target = Path(output) / source.name
        jobs.append(Job(source, target))
    targets: dict[Path, Path] = {}
    for job in jobs:
        key = job.target.resolve()
        if key in targets:
            raise ValueError(f"{targets[key]} and {job.source} would both be written to {job.target}")
        targets[key] = job.source
    return jobs


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        return _error(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 1 <= args.quality <= 100:
        return _error(f"--quality must be in 1..100, got {args.quality}")
    try:
        found = expand_inputs(args.inputs)
        jobs = plan_jobs(found, args.output, args.suffix)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        return _error(str(exc))
    if not jobs:
        return _error("no image files found in " + ", ".join(args.inputs))

    from tqdm import tqdm

    from tinct.infer import Colorizer
    from tinct.io import ImageReadError, read_photo, write_image

    try:
        colorizer = Colorizer(args.model, threads=args.threads, batch_size=args.batch_size)
    except (KeyError, ValueError, FileNotFoundError, TypeError) as exc:
        return _error(str(exc).strip("'\""))

    failures: list[str] = []
    skipped: list[Path] = []
    pending: list[Job] = []
    for job in jobs:
        if job.target.resolve() == job.source.resolve() and not args.overwrite:
            failures.append(f"{job.source}: output would overwrite the input (pass --overwrite to allow)")
        elif job.target.exists() and not args.overwrite:
            skipped.append(job.target)
        else:
            pending.append(job)

    start = time.perf_counter()
    done = 0
    show_bar = not args.quiet and len(pending) > PROGRESS_THRESHOLD and sys.stderr.isatty()
    with tqdm(total=len(pending), unit="photo", disable=not show_bar, file=sys.stderr) as bar:
        for index in range(0, len(pending), args.batch_size):
            batch_jobs, photos = [], []
            for job in pending[index : index + args.batch_size]:
                try:
                    photos.append(read_photo(job.source))
                    batch_jobs.append(job)
                except ImageReadError as exc:
                    failures.append(str(exc))
                    tqdm.write(f"tinct colorize: skipped {exc}", file=sys.stderr)
                    bar.update(1)
            for job, photo, rgb in zip(batch_jobs, photos, colorizer.colorize_many(photos)):
                try:
                    write_image(job.target, rgb, alpha=photo.alpha, quality=args.quality, overwrite=args.overwrite)
                    done += 1
                except (OSError, ValueError) as exc:
                    failures.append(f"{job.target}: cannot write ({exc})")
                    tqdm.write(f"tinct colorize: {job.target}: cannot write ({exc})", file=sys.stderr)
                bar.update(1)

    elapsed = time.perf_counter() - start
    for message in failures:
        if "would overwrite" in message:
            print(f"tinct colorize: {message}", file=sys.stderr)
    if not args.quiet:
        parts = [f"colorized {done} photo{'s' if done != 1 else ''} in {elapsed:.1f} s with {colorizer.name}"]
        if skipped:
            parts.append(f"{len(skipped)} skipped (output exists; --overwrite to replace)")
        if failures:
            parts.append(f"{len(failures)} failed")
        print("; ".join(parts), file=sys.stderr)
        if len(jobs) == 1 and done == 1:
            print(jobs[0].target)
    return 1 if failures else 0
