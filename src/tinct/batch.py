"""Colorize many photos: files, folders and patterns in, colour files out, at full resolution.

The library behind ``tinct colorize``, for code that needs the same rules:

>>> import tinct
>>> summary = tinct.colorize_folder(["scans"], "out")    # scans/** mirrored under out/  # doctest: +SKIP
>>> summary.done, summary.failed, summary.failures       # doctest: +SKIP
(12, 1, ['skipped scans/notes.png: cannot read (...)'])

Or step by step: :func:`expand_inputs` (what to colorize, and what a folder walk leaves
out), :func:`plan_jobs` (where each input goes) and :func:`colorize_jobs` (the work).

The rules, whatever the arguments:

- an input is never an output: a job whose target is an input (the same path, a symlink or
  a hard link to it) is refused, and two inputs never share a target;
- an existing output is kept unless ``overwrite``; files an earlier run wrote beside their
  inputs (``*_color``) are not colorized again when a folder walk or a pattern finds them;
- every output is written atomically, and temporary files an interrupted run left are removed;
- one photo's failure (unreadable, over ``max_megapixels``, out of memory, a folder that cannot
  be written) is one line in :attr:`Summary.failures` and stops no other photo.

Only the standard library and :mod:`tinct.errors` are imported at module level; photos are
read and written by :mod:`tinct.io`, colorized by :class:`tinct.infer.Colorizer`.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from tinct.errors import TinctError

__all__ = [
    "BatchError",
    "InputNotFoundError",
    "Found",
    "Job",
    "Plan",
    "ColorizeOptions",
    "Summary",
    "Tally",
    "expand_inputs",
    "plan_jobs",
    "colorize_jobs",
    "colorize_folder",
    "colorize_pipelined",
]

PIPELINE_DEPTH = 2  # batches decoded ahead of, and encoded behind, the one being colorized
DEFAULT_SUFFIX = "_color"


class BatchError(TinctError, ValueError):
    """The inputs and the output cannot go together (e.g. one output file for many inputs,
    two inputs with one target, nothing to colorize)."""


class InputNotFoundError(TinctError, FileNotFoundError):
    """An input names no file or folder, or a pattern matches no image file."""


@dataclass(frozen=True)
class Found:
    """An input file: its path as found (symlinks kept, so folders mirror as they look), the
    folder it was found under, and whether it was named on the command line."""

    path: Path
    root: Path | None = None
    named: bool = False


@dataclass(frozen=True)
class Job:
    """One input and the file its colour version is written to."""

    source: Path
    target: Path


@dataclass
class Plan:
    """The jobs to do, files left out (``"PATH: reason"``, not failures) and jobs refused
    because their output is an input (``"PATH: ...; refused"``, failures)."""

    jobs: list[Job]
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ColorizeOptions:
    """How photos are written: JPEG/WebP ``quality`` (1..100), whether an existing output is
    replaced, the pixel limit checked from each header before decoding (all frames of an
    animation together), and photos per network run."""

    quality: int = 95
    overwrite: bool = False
    max_megapixels: float = 50.0  # tinct.io.DEFAULT_MAX_MEGAPIXELS (a test checks)
    batch_size: int = 4

    def __post_init__(self):
        if self.batch_size < 1:
            raise BatchError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 1 <= self.quality <= 100:
            raise BatchError(f"quality must be in 1..100, got {self.quality}")
        if not self.max_megapixels > 0:
            raise BatchError(f"max_megapixels must be > 0, got {self.max_megapixels:g}")


@dataclass
class Tally:
    """Counts of a run, safe to add to from the reading and writing threads."""

    done: int = 0
    failed: int = 0
    existing: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, done: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.done += done
            self.failed += failed


@dataclass
class Summary:
    """What a run did: photos written (``done``), failed (refusals included) and kept because
    their output exists (``existing``); one line per failure; the model's name (None when
    nothing needed colorizing) and the seconds spent colorizing (model loading excluded)."""

    jobs: list[Job]
    done: int = 0
    failed: int = 0
    existing: int = 0
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    model_name: str | None = None
    seconds: float = 0.0


def reason(exc: BaseException) -> str:
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


def names_one_file(output: str | os.PathLike) -> bool:
    """Whether ``output`` names one image file (by its suffix) rather than a folder."""
    from tinct.io import IMAGE_SUFFIXES

    return Path(output).suffix.lower() in IMAGE_SUFFIXES and not Path(output).is_dir()


def _is_inside(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def _expand_pattern(pattern: str, output_folder: Path | None) -> tuple[list[Found], list[str]]:
    from tinct.io import image_skip_reason

    found, skipped = [], []
    for match in sorted(Path(m) for m in glob.glob(pattern, recursive=True)):
        if match.is_dir():
            why = "a folder (patterns pick files; name the folder to search it)"
        elif output_folder is not None and _is_inside(match, output_folder):
            why = "in the output folder"
        else:
            why = image_skip_reason(match)
        if why:
            skipped.append(f"{match}: {why}")
        else:
            found.append(Found(match))
    if not found:
        raise InputNotFoundError(f"{pattern}: pattern matches no image files")
    return found, skipped


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

    ``inputs`` are files, folders (walked recursively, except ``output_folder``) and glob
    patterns (``**`` included). Raises :class:`InputNotFoundError` for an input that matches
    nothing.
    """
    from tinct.io import scan_folder

    found: list[Found] = []
    skipped: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            scan = scan_folder(path, exclude=[output_folder] if output_folder else [])
            found.extend(Found(f, root=path) for f in scan.images)
            skipped.extend(f"{p}: {why}" for p, why in scan.skipped)
        elif path.exists():
            found.append(Found(path, named=True))
        elif glob.has_magic(item):
            matched, left_out = _expand_pattern(item, output_folder)
            found.extend(matched)
            skipped.extend(left_out)
        else:
            raise InputNotFoundError(f"{item}: no such file or folder")
    found, duplicates = _unique(found)
    return found, skipped + duplicates


def job_target(item: Found, output: str | os.PathLike | None, suffix: str = DEFAULT_SUFFIX) -> Path:
    """Where ``item`` goes: beside it as ``NAME{suffix}.EXT`` without ``output``, else under
    the ``output`` folder (mirroring the folder it was found under)."""
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
            raise BatchError(f"{targets[key]} and {job.source} would both be written to {job.target}")
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


def checked_plan(jobs: list[Job], found: list[Found]) -> Plan:
    """The plan for ``jobs`` (one per ``found`` item, in order): earlier runs' outputs left
    out, distinct targets checked (:class:`BatchError`), inputs as outputs refused."""
    jobs, skipped = _without_own_outputs(jobs, found)
    _check_distinct_targets(jobs)
    jobs, refused = _refuse_inputs_as_outputs(jobs)
    return Plan(jobs, skipped, refused)


def plan_jobs(found: list[Found], output: str | os.PathLike | None, suffix: str = DEFAULT_SUFFIX) -> Plan:
    """Where each input goes: ``output`` is None (beside each input), a folder, or one image
    file for one input; :class:`BatchError` when it cannot hold them."""
    if output is not None and names_one_file(output):
        if len(found) != 1:
            raise BatchError(f"-o {output} names one file but {len(found)} inputs were given; pass a folder")
        jobs = [Job(found[0].path, Path(output))]
    else:
        if output is not None and Path(output).exists() and not Path(output).is_dir():
            raise BatchError(f"-o {output}: is a file, not a folder (name a folder, or an image file for one input)")
        jobs = [Job(item.path, job_target(item, output, suffix)) for item in found]
    return checked_plan(jobs, found)


# ---------------------------------------------------------------------------------------------
# Before any photo is colorized
# ---------------------------------------------------------------------------------------------


def remove_leftovers(jobs: list[Job]) -> list[Path]:
    """Remove the temporary files that an interrupted run (kill -9) left beside the outputs;
    returns them."""
    from tinct.io import remove_stale_partials

    return remove_stale_partials(job.target for job in jobs)


def writable_jobs(jobs: list[Job], tally: Tally, report: Callable[[str], None], noun: str = "photo") -> list[Job]:
    """The jobs whose output folder can be written; one ``report`` line for each folder that
    cannot (``noun``: what the jobs are, "photo" or "clip"), its jobs counted as failed."""
    from tinct.io import check_writable_folder

    unwritable: dict[Path, str] = {}
    for folder in dict.fromkeys(job.target.parent for job in jobs):
        try:
            check_writable_folder(folder)
        except OSError as exc:
            unwritable[folder] = reason(exc)
    for folder, why in unwritable.items():
        count = sum(job.target.parent == folder for job in jobs)
        report(f"{folder}: cannot write there ({why}); {count} {noun}{'s' if count != 1 else ''} not colorized")
        tally.add(failed=count)
    return [job for job in jobs if job.target.parent not in unwritable]


def _unreadable(job: Job, exc: BaseException) -> str:
    """The one line for a photo that cannot be read."""
    from tinct.io import ImageReadError, ImageTooLargeError

    if isinstance(exc, ImageTooLargeError):
        return f"skipped {exc.path}: {exc.description} is over the limit of {exc.limit:g} megapixels (--max-megapixels)"
    if isinstance(exc, MemoryError):
        return f"skipped {job.source}: out of memory while decoding"
    if isinstance(exc, ImageReadError):
        return f"skipped {exc}"
    return f"skipped {job.source}: cannot read ({reason(exc)})"  # a decoder's own failure


def _checked(jobs: list[Job], max_megapixels: float, tally: Tally, report: Callable[[str], None]) -> list[Job]:
    """The jobs whose input is an image within the pixel limit, judged from headers alone,
    so that a decompression bomb is refused at once, before the model is even loaded."""
    from tinct.io import check_image

    kept = []
    for job in jobs:
        try:
            check_image(job.source, max_megapixels=max_megapixels)
            kept.append(job)
        except Exception as exc:  # one file's failure, whatever it is, stops no other
            report(_unreadable(job, exc))
            tally.add(failed=1)
    return kept


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


@dataclass
class _Run:
    """What every step of one run shares: the colorizer, the options, the counts and where
    failure lines go (called from the reading and writing threads too)."""

    colorizer: object
    options: ColorizeOptions
    tally: Tally
    report: Callable[[str], None]

    def read(self, job: Job):
        """The job's Photo or Animation, or None after reporting the failure."""
        from tinct.io import read_image

        try:
            return read_image(job.source, max_megapixels=self.options.max_megapixels)
        except Exception as exc:  # one file's failure, whatever it is, stops no other
            self.report(_unreadable(job, exc))
            self.tally.add(failed=1)
            return None

    def read_batch(self, batch: list[Job]) -> list[tuple[Job, object]]:
        """Each job with its decoded Photo or Animation (None after reporting a failure)."""
        return [(job, self.read(job)) for job in batch]

    def save(self, job: Job, write: Callable[[], object]) -> None:
        try:
            write()
            self.tally.add(done=1)
        except Exception as exc:  # one file's failure, whatever it is, stops no other
            self.report(f"{job.target}: cannot write ({reason(exc)})")
            self.tally.add(failed=1)

    def colorize_animation(self, job: Job, animation) -> None:
        from tinct.io import write_animation

        frames = []
        for index, result in enumerate(_colorized(self.colorizer, animation.frames)):
            if isinstance(result, Exception):
                self.report(f"{job.source}: cannot colorize frame {index + 1} ({reason(result)})")
                self.tally.add(failed=1)
                return
            frames.append(result)
        options = self.options
        self.save(job, lambda: write_animation(job.target, frames, animation.durations, loop=animation.loop,
                                               quality=options.quality, overwrite=options.overwrite))  # fmt: skip

    def colorize_batch(self, items: list[tuple[Job, object]], write_later: Callable[[Callable[[], None]], None]) -> None:
        """Colorize one batch of read items; ``write_later(fn)`` runs a save (here or in a thread)."""
        from tinct.io import Animation, write_image

        stills = []
        for job, item in items:
            if isinstance(item, Animation):
                self.colorize_animation(job, item)
            elif item is not None:
                stills.append((job, item))
        options = self.options
        for (job, photo), rgb in zip(stills, _colorized(self.colorizer, [photo for _, photo in stills])):
            if isinstance(rgb, Exception):
                self.report(f"{job.source}: cannot colorize ({reason(rgb)})")
                self.tally.add(failed=1)
                continue

            def save(job=job, photo=photo, rgb=rgb):
                self.save(job, lambda: write_image(job.target, rgb, alpha=photo.alpha, quality=options.quality,
                                                   overwrite=options.overwrite))  # fmt: skip

            write_later(save)


def colorize_pipelined(run: _Run, pending: list[Job], on_batch: Callable[[int], object]) -> None:
    """Colorize ``pending`` in batches of ``run.options.batch_size``: decode the next batches
    and encode the last ones in two threads while the network runs on the current one
    (Pillow and ONNX Runtime release the GIL), so a folder keeps both cores busy. At most
    ``PIPELINE_DEPTH`` batches wait on either side, so memory stays bounded. ``on_batch(n)``
    is called after each batch of ``n`` jobs is colorized."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    size = run.options.batch_size
    batches = [pending[i : i + size] for i in range(0, len(pending), size)]
    with ThreadPoolExecutor(1, thread_name_prefix="tinct-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="tinct-write") as writer:  # fmt: skip
        reads = deque(reader.submit(run.read_batch, b) for b in batches[:PIPELINE_DEPTH])
        writes: deque = deque()
        for index, batch in enumerate(batches):
            items = reads.popleft().result()
            if index + PIPELINE_DEPTH < len(batches):
                reads.append(reader.submit(run.read_batch, batches[index + PIPELINE_DEPTH]))
            run.colorize_batch(items, lambda save: writes.append(writer.submit(save)))
            while len(writes) > PIPELINE_DEPTH * size:
                writes.popleft().result()
            on_batch(len(batch))
        for future in writes:
            future.result()


class _NoProgress:
    def __init__(self, total: int):
        self.total = total

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


def _reporter(summary: Summary, on_failure: Callable[[str], None] | None) -> Callable[[str], None]:
    lock = threading.Lock()

    def report(line: str) -> None:
        with lock:
            summary.failures.append(line)
        if on_failure is not None:
            on_failure(line)

    return report


def colorize_jobs(
    plan: Plan,
    model="default",
    options: ColorizeOptions = ColorizeOptions(),
    *,
    threads: int | None = None,
    engine: str = "auto",
    on_failure: Callable[[str], None] | None = None,
    on_removed: Callable[[Path], None] | None = None,
    progress: Callable[[int], ContextManager] | None = None,
) -> Summary:
    """Do ``plan``'s jobs with ``model`` (a name, a checkpoint or export path, or a
    :class:`~tinct.infer.Colorizer`); returns the :class:`Summary`.

    The plan's refusals count as failures (their lines are already in ``plan.refused``).
    ``on_failure(line)`` hears each failure as it happens (from worker threads too),
    ``on_removed(path)`` each temporary file of an interrupted run that was removed, and
    ``progress(total)`` gives a context manager with ``update(n)`` (e.g. ``tqdm``), entered
    once the model is loaded. The model is loaded only when a photo needs colorizing;
    :class:`tinct.errors.ModelError` when it cannot be.
    """
    summary = Summary(jobs=list(plan.jobs), skipped=list(plan.skipped))
    report = _reporter(summary, on_failure)
    for partial in remove_leftovers(plan.jobs):
        if on_removed is not None:
            on_removed(partial)
    tally = Tally(failed=len(plan.refused))
    pending = [job for job in plan.jobs if options.overwrite or not job.target.exists()]
    tally.existing = len(plan.jobs) - len(pending)
    pending = writable_jobs(_checked(pending, options.max_megapixels, tally, report), tally, report)
    if pending:
        from tinct.infer import Colorizer

        colorizer = model if isinstance(model, Colorizer) else Colorizer(
            model, threads=threads, batch_size=options.batch_size, engine=engine)  # fmt: skip
        summary.model_name = colorizer.name
        start = time.perf_counter()
        with (progress or _NoProgress)(len(pending)) as bar:
            colorize_pipelined(_Run(colorizer, options, tally, report), pending, bar.update)
        summary.seconds = time.perf_counter() - start
    summary.done, summary.failed, summary.existing = tally.done, tally.failed, tally.existing
    return summary


def colorize_folder(
    inputs: str | os.PathLike | list,
    output: str | os.PathLike | None = None,
    model="default",
    *,
    suffix: str = DEFAULT_SUFFIX,
    options: ColorizeOptions = ColorizeOptions(),
    **kwargs,
) -> Summary:
    """Colorize files, folders and glob patterns (one, or a list): folders are walked
    recursively and mirrored under ``output``; without ``output`` each photo is written beside
    it as ``NAME{suffix}.EXT``; an ``output`` with an image suffix names the one output of one
    input. Files the walk leaves out are in :attr:`Summary.skipped`, refusals and failures in
    :attr:`Summary.failures`. ``kwargs`` go to :func:`colorize_jobs` (threads, engine,
    callbacks). Raises :class:`InputNotFoundError` or :class:`BatchError` (nothing to do,
    or an ``output`` that cannot hold the inputs)."""
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    inputs = [str(item) for item in inputs]
    output = None if output is None else str(output)
    output_folder = Path(output) if output and not names_one_file(output) else None
    found, skipped = expand_inputs(inputs, output_folder)
    plan = plan_jobs(found, output, suffix)
    if not plan.jobs and not plan.refused:
        raise BatchError("no image files found in " + ", ".join(inputs))
    summary = colorize_jobs(plan, model, options, **kwargs)
    summary.skipped = skipped + summary.skipped
    summary.failures = plan.refused + summary.failures
    return summary


def guided_colorizer(model: str | None = None, hints=None, reference=None, threads: int | None = None,
                     reference_match: str | None = None):
    """A :class:`tinct.infer.Colorizer` (torch engine; ``model`` by default the shipped hint
    model, :data:`tinct.hints.HINT_MODEL`) that colours every photo it is given
    with the same ``hints``, ``reference`` and ``reference_match`` (None: the default; as
    :meth:`tinct.infer.Colorizer.__call__` takes them), so :func:`tinct.batch.colorize_jobs` writes guided photos with its usual
    rules. A model trained without hints is refused at once. (Here, above :mod:`tinct.infer`,
    so that :mod:`tinct.hints` stays below it.)"""
    from tinct.hints import (
        HINT_MODEL, REFERENCE_MATCH, as_hints, check_reference_match, colorize_with_hints, reference_rgb,
        require_hint_model,
    )
    from tinct.infer import Colorizer, _as_photo

    model = HINT_MODEL if model is None else model
    match = REFERENCE_MATCH if reference_match is None else reference_match
    check_reference_match(match)
    points, size, source = as_hints(hints)
    reference = reference_rgb(reference)

    class GuidedColorizer(Colorizer):
        def colorize_many(self, images):
            for image in images:
                yield colorize_with_hints(self, _as_photo(image), points, reference, size, source, match)

    colorizer = GuidedColorizer(model, threads=threads, batch_size=1, engine="torch")
    require_hint_model(colorizer)
    return colorizer
