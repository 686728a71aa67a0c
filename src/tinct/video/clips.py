"""Test clips with real motion, made from still photos, with their colour truth.

No video data set is on this machine, so clips are filmed from photos by a virtual camera:
each **shot** moves a window over one photo (pan, zoom, roll, hand-held shake, or a mix) and
renders it with **motion blur** (the shutter stays open for part of each frame interval and
the frame averages the views in between) and **sensor noise**; a clip is shots joined by hard
**scene cuts**. The colour frames are the truth; their lightness is what a colorizer sees.

The fixed **benchmark set** (:func:`benchmark_specs`) is made from the cbsd68 photos only, so
it stays out of every training set; :func:`random_specs` makes any number of clips from any
photo folder (training data, more tests). Clips are rendered when asked for (they stream, one
frame at a time) and never stored in the repository.

    .venv/bin/python -m tinct.video.clips benchmark ../shared/data/cbsd68 bench_clips
    .venv/bin/python -m tinct.video.clips random ~/photos train_clips --clips 100 --seed 1

write lossless truth clips (FFV1 in Matroska, every pixel exact) and ``clips.json``, which
records each clip's shots, photos, moves and cut frames.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

__all__ = [
    "BENCHMARK",
    "BenchmarkSettings",
    "CameraMove",
    "Shot",
    "ClipSpec",
    "MOVES",
    "random_move",
    "random_specs",
    "benchmark_specs",
    "render_clip",
    "write_clips",
    "read_manifest",
]

MOVES = ("pan", "zoom-in", "zoom-out", "roll", "pan-roll", "handheld")


@dataclass(frozen=True)
class CameraMove:
    """A camera path over one photo, from its start (``*_start``) to its end (``*_end``).

    Attributes:
        centre_start, centre_end: window centre as fractions ``(x, y)`` of the room the window
            has to move in (0: touching the left/top edge, 1: the right/bottom edge).
        zoom_start, zoom_end: window size as a fraction of the largest upright window that
            fits the photo (smaller: closer in).
        angle_start, angle_end: camera roll in degrees.
        shake: hand-held shake amplitude in output pixels (a few incommensurate sines).
    """

    centre_start: tuple[float, float] = (0.5, 0.5)
    centre_end: tuple[float, float] = (0.5, 0.5)
    zoom_start: float = 0.8
    zoom_end: float = 0.8
    angle_start: float = 0.0
    angle_end: float = 0.0
    shake: float = 0.0
    kind: str = "custom"


@dataclass(frozen=True)
class Shot:
    """``frames`` frames of one photo filmed along ``move``."""

    photo: str
    frames: int
    move: CameraMove


@dataclass(frozen=True)
class ClipSpec:
    """A clip: shots joined by hard cuts.

    Attributes:
        size: ``(width, height)`` of the frames.
        rate: frames per second.
        noise: standard deviation of the sensor noise, in 8-bit levels (per channel).
        shutter: fraction of the frame interval the shutter is open (motion blur; 0: none).
        blur_samples: views averaged per frame while the shutter is open.
    """

    name: str
    shots: tuple[Shot, ...]
    size: tuple[int, int] = (384, 256)
    rate: int = 24
    noise: float = 2.0
    shutter: float = 0.5
    blur_samples: int = 5
    seed: int = 0

    @property
    def frames(self) -> int:
        return sum(shot.frames for shot in self.shots)

    @property
    def cuts(self) -> list[int]:
        """Indices of the frames that start a new shot (a cut lies just before each)."""
        starts, total = [], 0
        for shot in self.shots[:-1]:
            total += shot.frames
            starts.append(total)
        return starts

    def to_dict(self) -> dict:
        return {**asdict(self), "frames": self.frames, "cuts": self.cuts}

    @classmethod
    def from_dict(cls, data: dict) -> "ClipSpec":
        shots = tuple(
            Shot(s["photo"], int(s["frames"]), CameraMove(**{**s["move"], "centre_start": tuple(s["move"]["centre_start"]),
                                                               "centre_end": tuple(s["move"]["centre_end"])}))
            for s in data["shots"]
        )  # fmt: skip
        return cls(data["name"], shots, tuple(data["size"]), int(data["rate"]), float(data["noise"]),
                   float(data["shutter"]), int(data["blur_samples"]), int(data["seed"]))  # fmt: skip


def random_move(rng: np.random.Generator, kind: str) -> CameraMove:
    """A camera move of one of :data:`MOVES`, with magnitudes drawn from ``rng``."""
    def point() -> tuple[float, float]:
        return float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.85))

    if kind == "pan":
        start = point()
        direction = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(0.35, 0.7)
        end = (float(np.clip(start[0] + length * math.cos(direction), 0, 1)),
               float(np.clip(start[1] + length * math.sin(direction), 0, 1)))  # fmt: skip
        zoom = float(rng.uniform(0.55, 0.8))
        return CameraMove(start, end, zoom, zoom, kind=kind)
    if kind in ("zoom-in", "zoom-out"):
        near, far = float(rng.uniform(0.45, 0.6)), float(rng.uniform(0.85, 0.97))
        start, end = point(), point()
        zooms = (far, near) if kind == "zoom-in" else (near, far)
        return CameraMove(start, end, *zooms, kind=kind)
    if kind == "roll":
        angle = float(rng.uniform(4, 10) * rng.choice([-1, 1]))
        zoom = float(rng.uniform(0.55, 0.7))
        return CameraMove((0.5, 0.5), (0.5, 0.5), zoom, zoom, -angle / 2, angle / 2, kind=kind)
    if kind == "pan-roll":
        angle = float(rng.uniform(3, 7) * rng.choice([-1, 1]))
        zoom = float(rng.uniform(0.5, 0.65))
        return CameraMove(point(), point(), zoom, zoom * float(rng.uniform(0.85, 1.0)), 0.0, angle, kind=kind)
    if kind == "handheld":
        zoom = float(rng.uniform(0.6, 0.8))
        start = point()
        end = (float(np.clip(start[0] + rng.normal(0, 0.08), 0, 1)), float(np.clip(start[1] + rng.normal(0, 0.08), 0, 1)))
        return CameraMove(start, end, zoom, zoom, 0.0, float(rng.normal(0, 1.0)), shake=float(rng.uniform(1.0, 2.5)), kind=kind)
    raise ValueError(f"camera move must be one of {', '.join(MOVES)}, got {kind!r}")


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _smooth(u: float) -> float:
    """Ease in and out (a camera operator starts and stops gently)."""
    return u * u * (3 - 2 * u)


def _pose(move: CameraMove, u: float, photo_size: tuple[int, int], size: tuple[int, int], time: float):
    """Window centre (photo px), scale (photo px per output px) and angle (radians) at ``u`` in [0, 1]."""
    photo_w, photo_h = photo_size
    width, height = size
    e = _smooth(min(max(u, 0.0), 1.0))
    angle = math.radians(move.angle_start + (move.angle_end - move.angle_start) * e)
    zoom = move.zoom_start + (move.zoom_end - move.zoom_start) * e
    scale = zoom * min(photo_w / width, photo_h / height)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    half_x = (width * cos + height * sin) * scale / 2
    half_y = (width * sin + height * cos) * scale / 2
    fit = min(1.0, (photo_w - 1) / (2 * half_x), (photo_h - 1) / (2 * half_y))  # a rolled window stays inside
    scale, half_x, half_y = scale * fit, half_x * fit, half_y * fit
    fx = move.centre_start[0] + (move.centre_end[0] - move.centre_start[0]) * e
    fy = move.centre_start[1] + (move.centre_end[1] - move.centre_start[1]) * e
    cx = half_x + fx * (photo_w - 1 - 2 * half_x)
    cy = half_y + fy * (photo_h - 1 - 2 * half_y)
    if move.shake:
        room_x = min(cx - half_x, photo_w - 1 - half_x - cx)
        room_y = min(cy - half_y, photo_h - 1 - half_y - cy)
        dx = move.shake * scale * (math.sin(7.3 * time) + 0.6 * math.sin(13.1 * time + 1.0))
        dy = move.shake * scale * (math.sin(5.9 * time + 2.0) + 0.6 * math.sin(11.7 * time))
        cx += float(np.clip(dx, -room_x, room_x))
        cy += float(np.clip(dy, -room_y, room_y))
    return cx, cy, scale, angle


def _view(photo: np.ndarray, move: CameraMove, u: float, size: tuple[int, int], time: float) -> np.ndarray:
    import cv2

    photo_h, photo_w = photo.shape[:2]
    width, height = size
    cx, cy, scale, angle = _pose(move, u, (photo_w, photo_h), size, time)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    ox, oy = (width - 1) / 2, (height - 1) / 2
    # Output pixel (x, y) shows photo point centre + scale R(angle) (p - output centre).
    matrix = np.array([[cos, -sin, cx - cos * ox + sin * oy], [sin, cos, cy - sin * ox - cos * oy]], np.float64)
    return cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


def _prefiltered(photo: np.ndarray, shot: Shot, size: tuple[int, int]) -> np.ndarray:
    """The photo blurred as much as the shot's widest view shrinks it (no aliasing shimmer)."""
    import cv2

    photo_h, photo_w = photo.shape[:2]
    widest = max(shot.move.zoom_start, shot.move.zoom_end) * min(photo_w / size[0], photo_h / size[1])
    if widest <= 1.0:
        return photo
    return cv2.GaussianBlur(photo, (0, 0), sigmaX=0.5 * math.sqrt(widest**2 - 1))


def _load_photo(path: str | os.PathLike) -> np.ndarray:
    from tinct.io import read_rgb

    return read_rgb(path).astype(np.float32)


def render_clip(spec: ClipSpec, photo_root: str | os.PathLike | None = None, photos: dict | None = None) -> Iterator[np.ndarray]:
    """The clip's frames, uint8 RGB ``(height, width, 3)``, one at a time.

    Photos are read from ``photo_root / shot.photo``, or taken from ``photos`` (name -> uint8
    RGB array), one shot's photo in memory at a time. Deterministic for a given spec.
    """
    rng = np.random.default_rng(spec.seed)
    frame_time = 1.0 / spec.rate
    samples = max(1, spec.blur_samples if spec.shutter > 0 else 1)
    clip_time = 0.0
    for shot in spec.shots:
        if photos is not None and shot.photo in photos:
            photo = np.asarray(photos[shot.photo], dtype=np.float32)
        else:
            photo = _load_photo(Path(photo_root or ".") / shot.photo)
        photo = _prefiltered(photo, shot, spec.size)
        span = max(1, shot.frames - 1)
        for index in range(shot.frames):
            acc = np.zeros((spec.size[1], spec.size[0], 3), np.float32)
            for k in range(samples):
                offset = spec.shutter * ((k + 0.5) / samples - 0.5) if samples > 1 else 0.0
                u = (index + offset) / span
                acc += _view(photo, shot.move, u, spec.size, clip_time + (index + offset) * frame_time)
            frame = acc / samples
            if spec.noise > 0:
                frame += rng.normal(0.0, spec.noise, frame.shape).astype(np.float32)
            yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)
        clip_time += shot.frames * frame_time


# ---------------------------------------------------------------------------------------------
# Sets of clips
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkSettings:
    """The fixed benchmark: ``clips`` clips of two shots each (one cut), from cbsd68 photos."""

    clips: int = 8
    frames: int = 48
    size: tuple[int, int] = (384, 256)
    rate: int = 24
    noise: float = 2.0
    shutter: float = 0.5
    seed: int = 68


BENCHMARK = BenchmarkSettings()


def _photo_names(folder: Path) -> list[str]:
    from tinct.io import list_images

    names = [p.relative_to(folder).as_posix() for p in list_images(folder)]
    if len(names) < 2:
        raise ValueError(f"{folder}: needs at least 2 photos (a cut joins two different photos), found {len(names)}")
    return names


def _two_shot_specs(names: Sequence[str], count: int, frames: int, size, rate: int, noise: float, shutter: float,
                    seed: int, prefix: str) -> list[ClipSpec]:  # fmt: skip
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(names)))
    while len(order) < 2 * count:
        order += list(rng.permutation(len(names)))
    specs = []
    for i in range(count):
        first, second = order[2 * i], order[2 * i + 1]
        if first == second:  # only when photos are reused: a cut always joins two photos
            second = (second + 1) % len(names)
        cut = int(rng.integers(max(1, round(frames * 0.4)), max(2, round(frames * 0.6)) + 1)) if frames > 2 else 1
        kinds = MOVES[(2 * i) % len(MOVES)], MOVES[(2 * i + 3) % len(MOVES)]
        shots = (Shot(names[first], cut, random_move(rng, kinds[0])),
                 Shot(names[second], frames - cut, random_move(rng, kinds[1])))  # fmt: skip
        specs.append(ClipSpec(f"{prefix}{i:02d}", shots, tuple(size), rate, noise, shutter, seed=seed * 1000 + i))
    return specs


def benchmark_specs(folder: str | os.PathLike, settings: BenchmarkSettings = BENCHMARK) -> list[ClipSpec]:
    """The fixed benchmark clips from the photos in ``folder`` (cbsd68: held out of training).

    The same folder and settings always give the same clips: photos, moves and cuts come
    from ``settings.seed``. Each clip has two shots of two different photos (one cut near
    its middle); the moves cycle through :data:`MOVES`.
    """
    folder = Path(folder)
    if settings.frames < 2:
        raise ValueError(f"a benchmark clip needs at least 2 frames (one each side of the cut), got {settings.frames}")
    return _two_shot_specs(_photo_names(folder), settings.clips, settings.frames, settings.size, settings.rate,
                           settings.noise, settings.shutter, settings.seed, "clip_")  # fmt: skip


def random_specs(folder: str | os.PathLike, clips: int, frames: int = 48, size=(384, 256), rate: int = 24,
                 noise: float = 2.0, shutter: float = 0.5, seed: int = 0) -> list[ClipSpec]:  # fmt: skip
    """``clips`` two-shot clips from any photo folder (e.g. training clips), drawn with ``seed``."""
    return _two_shot_specs(_photo_names(Path(folder)), clips, frames, size, rate, noise, shutter, seed, "clip_")


MANIFEST = "clips.json"


def write_clips(specs: Sequence[ClipSpec], photo_root: str | os.PathLike, out: str | os.PathLike,
                overwrite: bool = False, progress: bool = False) -> Path:  # fmt: skip
    """Render ``specs`` into ``out/<name>.mkv`` (lossless FFV1) and ``out/clips.json``."""
    from tinct.io import write_text_atomic
    from tinct.video.io import LOSSLESS, write_video

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        if progress:
            print(f"{out / spec.name}.mkv: {spec.frames} frames, cut before frame {spec.cuts}", file=sys.stderr)
        write_video(out / f"{spec.name}.mkv", render_clip(spec, photo_root), spec.rate, LOSSLESS, overwrite=overwrite)
    manifest = {"photo_root": str(Path(photo_root).resolve()), "clips": [spec.to_dict() for spec in specs]}
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return out


def read_manifest(folder: str | os.PathLike) -> dict[str, ClipSpec]:
    """Clip name -> spec, from ``folder/clips.json`` ({} when there is none)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {clip["name"]: ClipSpec.from_dict(clip) for clip in data.get("clips", [])}


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"frames must be at least 16x16, got {text}")
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinct.video.clips", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    bench = sub.add_parser("benchmark", help="the fixed benchmark set (give it the cbsd68 folder)")
    rand = sub.add_parser("random", help="clips drawn from any photo folder (training data)")
    for p in (bench, rand):
        p.add_argument("photos", type=Path, help="photo folder")
        p.add_argument("out", type=Path, help="folder to write the clips and clips.json into")
        p.add_argument("--frames", type=int, default=BENCHMARK.frames, help="frames per clip (default: %(default)s)")
        p.add_argument("--size", type=_size, default=BENCHMARK.size, help="WIDTHxHEIGHT (default: 384x256)")
        p.add_argument("--overwrite", action="store_true", help="replace clips already there")
    bench.add_argument("--clips", type=int, default=BENCHMARK.clips, help="clips (default: %(default)s)")
    rand.add_argument("--clips", type=int, default=10, help="clips (default: %(default)s)")
    rand.add_argument("--seed", type=int, default=0, help="draws photos and moves (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.clips < 1 or args.frames < 2:
        parser.error("--clips must be >= 1 and --frames >= 2")
    try:
        if args.what == "benchmark":
            settings = BenchmarkSettings(clips=args.clips, frames=args.frames, size=args.size)
            specs = benchmark_specs(args.photos, settings)
        else:
            specs = random_specs(args.photos, args.clips, args.frames, args.size, seed=args.seed)
        write_clips(specs, args.photos, args.out, overwrite=args.overwrite, progress=True)
    except (ValueError, FileExistsError, NotADirectoryError, OSError) as exc:
        print(f"tinct.video.clips: {exc}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
