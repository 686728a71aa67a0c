"""Video colorization against the issue's targets: flicker, colour, accuracy, speed, memory.

    .venv/bin/python bench/bench_video.py [--sections quality speed memory] [--model default]

Sections (all by default):
``quality``  the fixed benchmark clips (:func:`tinct.video.clips.benchmark_specs`: 8 clips of
             48 frames at 384 x 256, a cut in each, made from ../shared/data/cbsd68 only),
             rendered into a temporary folder (or read from ``--clips``), evaluated with
             :func:`tinct.evaluate.video.evaluate_video_model`: temporal against per-frame
             against the gray baseline, and the four quality targets.
``speed``    ``tinct colorize`` of an 854 x 480 clip with sound (``--seconds``, default 20 s at
             24 frames/s, made from cbsd68 photos with camera moves), gray (an old film) and
             in colour, in a fresh process, with ``--temporal on`` and ``off``: frames per
             second of the whole command (start-up and model loading included), of the clip
             alone (as the command reports it), and the CPU time per frame.
``memory``   peak resident memory (the child's max RSS from ``wait4``) of ``tinct colorize``
             on 854 x 480 clips of ``--memory-seconds`` (default 10 and 120 s): flat in the
             clip's length means the two agree.

Clips are generated on the fly and never kept. Timings depend on what else the machine
runs; say so with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CBSD68 = REPO.parent / "shared" / "data" / "cbsd68"
TINCT = REPO / ".venv" / "bin" / "tinct"
SECTIONS = ("quality", "speed", "memory")
SIZE = (854, 480)
RATE = 24


# Runs a command and prints its resource use. A child's peak RSS counts the pages it shared
# with its parent at fork (Linux keeps the high-water mark across exec), so the command is
# started from this small launcher, not from the bench process that holds rendered clips.
_LAUNCHER = """
import json, os, subprocess, sys
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime]))
"""


def run_command(command: list[str]) -> tuple[float, float, str, float]:
    """Run ``command`` in a fresh process: (wall seconds, peak RSS in MB, stderr, CPU seconds)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    status, rss, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return seconds, rss, done.stderr, cpu


def make_long_clip(path: Path, seconds: float, photos: Path = CBSD68, gray: bool = True) -> Path:
    """An 854 x 480 H.264 clip with a 440 Hz tone: shots of 4 s over cbsd68 photos, cut to cut;
    ``gray``: an old film's (each frame's lightness as neutral gray), else in colour."""
    from tinct.video.clips import MOVES, ClipSpec, Shot, random_move, render_clip
    from tinct.video.io import write_video
    from tinct.io import list_images

    names = [p.name for p in list_images(photos)]
    frames = int(round(seconds * RATE))
    rng = np.random.default_rng(0)
    shots, left, index = [], frames, 0
    while left > 0:
        count = min(4 * RATE, left)
        shots.append(Shot(names[index % len(names)], count, random_move(rng, MOVES[index % len(MOVES)])))
        left -= count
        index += 1
    # Two views per frame (a shorter shutter than the benchmark's) keep rendering quick.
    spec = ClipSpec("long", tuple(shots), SIZE, RATE, noise=2.0, shutter=0.3, blur_samples=2, seed=1)
    t = np.arange(int(frames / RATE * 44100)) / 44100
    tone = np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    frames = render_clip(spec, photos)
    if gray:
        frames = (_gray(rgb) for rgb in frames)
    return write_video(path, frames, RATE, audio=(tone, 44100), overwrite=True)


def _gray(rgb: np.ndarray) -> np.ndarray:
    from tinct.color import cielab_lightness, lightness_to_gray

    gray = np.round(lightness_to_gray(cielab_lightness(rgb)) * 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def colorize(model: str, source: Path, temporal: str, threads: int | None) -> tuple[float, float, str, float]:
    target = source.with_name(f"{source.stem}_{temporal}.mp4")
    command = [str(TINCT), "colorize", str(source), "-o", str(target), "--overwrite", "-m", model, "--temporal", temporal]
    if threads:
        command += ["--threads", str(threads)]
    return run_command(command)


def _reported_rate(stderr: str) -> float | None:
    match = re.search(r"([\d.]+) frames/s", stderr)
    return float(match.group(1)) if match else None


def quality(args, folder: Path) -> None:
    from tinct.evaluate.video import evaluate_video_model, format_video_table
    from tinct.video.clips import benchmark_specs, write_clips

    clips = args.clips
    if clips is None:
        clips = folder / "benchmark"
        print(f"rendering the benchmark clips from {CBSD68} ...", file=sys.stderr)
        write_clips(benchmark_specs(CBSD68), CBSD68, clips)
    start = time.perf_counter()
    evaluation = evaluate_video_model(args.model, clips, threads=args.threads, progress=not args.no_progress)
    print(format_video_table(evaluation))
    print(f"(evaluated in {time.perf_counter() - start:.0f} s)\n")


def speed(args, folder: Path) -> None:
    frames = int(round(args.seconds * RATE))
    print(f"speed: {SIZE[0]} x {SIZE[1]}, {frames} frames ({args.seconds:g} s at {RATE} frames/s, with sound), fresh process;")
    print("  CPU ms/frame is the child's user + system time per frame (the machine's load does not inflate it)")
    for kind in ("gray", "colour"):
        clip = make_long_clip(folder / f"speed_{kind}.mp4", args.seconds, gray=kind == "gray")
        for temporal in ("on", "off"):
            seconds, rss, stderr, cpu = colorize(args.model, clip, temporal, args.threads)
            print(f"  {kind:<6} input, --temporal {temporal:<3}  whole command {frames / seconds:5.1f} frames/s ({seconds:.1f} s)"
                  f"   clip alone {_reported_rate(stderr) or float('nan'):5.1f} frames/s   CPU {1000 * cpu / frames:4.0f} ms/frame"
                  f"   peak RSS {rss:.0f} MB")  # fmt: skip
    print()


def memory(args, folder: Path) -> None:
    print(f"memory: peak RSS of tinct colorize on {SIZE[0]} x {SIZE[1]} clips, --temporal on, fresh process")
    for seconds in args.memory_seconds:
        clip = make_long_clip(folder / f"memory_{seconds:g}.mp4", seconds)
        wall, rss, stderr, _ = colorize(args.model, clip, "on", args.threads)
        print(f"  {seconds:6g} s ({int(round(seconds * RATE))} frames): peak RSS {rss:6.0f} MB   "
              f"{_reported_rate(stderr) or float('nan'):.1f} frames/s   ({wall:.0f} s)")
        clip.unlink()
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clips", type=Path, help="benchmark clips already rendered (python -m tinct.video.clips benchmark)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the speed clip (default: %(default)s)")
    parser.add_argument("--memory-seconds", type=float, nargs="+", default=[10.0, 120.0])
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if not CBSD68.is_dir() and (args.clips is None or set(args.sections) - {"quality"}):
        print(f"bench_video: needs the cbsd68 photos at {CBSD68}", file=sys.stderr)
        return 1
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores\n")
    with tempfile.TemporaryDirectory(prefix="bench_video_") as tmp:
        for section in args.sections:
            globals()[section](args, Path(tmp))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
