"""Evaluating video colorization: per-frame fidelity and colour, and temporal steadiness.

Truths are colour clips (e.g. the benchmark set of :mod:`tinct.video.clips`). Every
evaluation scores, on the same clips and frames:

* the system(s): a model with temporal consistency and the same model **per frame** (one
  network run gives both), or another tool's output clips (``--pred``, optionally with its
  per-frame outputs beside them);
* the **gray baseline**: each truth frame's own lightness, no colour;
* the **truth** itself, for the temporal metrics only: the steadiness of the real colours
  (its warp error is not zero: noise, blur and flow errors leave a floor).

Metrics per clip (the mean over frames of the per-frame ones), then the mean over clips:
PSNR, CIEDE2000, colourfulness and mean chroma of each frame against its truth; CDC, the
CDC that colouring adds, and the ab warp error (:mod:`tinct.metrics.temporal`). Clips
stream through one frame at a time.

>>> from tinct.evaluate.video import evaluate_video_model, format_video_table  # doctest: +SKIP
>>> print(format_video_table(evaluate_video_model("default", "bench_clips")))   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from tinct.evaluate.runner import BASELINE_NAME, EvaluationError, system_named
from tinct.metrics.direction import HIGHER, LOWER, TOWARD_TRUTH, short_label

__all__ = [
    "VIDEO_METRICS",
    "TRUTH_NAME",
    "ClipScores",
    "VideoSystem",
    "VideoEvaluation",
    "list_clips",
    "evaluate_video_model",
    "evaluate_video_predictions",
    "video_targets",
    "format_video_table",
    "write_video_report",
]

TRUTH_NAME = "truth"


@dataclass(frozen=True)
class VideoMetric:
    key: str
    label: str
    better: str
    digits: int
    per_frame: bool  # a per-frame fidelity/colour metric (not defined for the truth row)
    definition: str


VIDEO_METRICS: tuple[VideoMetric, ...] = (
    VideoMetric("psnr", "PSNR (dB)", HIGHER, 3, True, "per frame 10 log10(255^2 / MSE) against the truth frame"),
    VideoMetric("ciede2000", "CIEDE2000", LOWER, 3, True, "per frame mean CIEDE2000 against the truth frame"),
    VideoMetric("colorfulness", "colourfulness", TOWARD_TRUTH, 3, True, "per frame Hasler & Suesstrunk colourfulness"),
    VideoMetric("mean_chroma", "mean chroma", TOWARD_TRUTH, 3, True, "per frame mean CIELAB chroma sqrt(a^2 + b^2)"),
    VideoMetric("cdc", "CDC", LOWER, 5, False,
                "colour distribution consistency: JS divergence of RGB histograms, frames 1, 2, 4 apart"),
    VideoMetric("cdc_added", "CDC added", LOWER, 5, False,
                "CDC of the clip minus the CDC of its gray input (the truth's lightness, no colour)"),
    VideoMetric("warp_error", "ab warp error", LOWER, 3, False,
                "mean ab distance (Lab units) to the previous frame warped along the truth's flow, occlusions masked"),
)  # fmt: skip
_METRIC_BY_KEY = {m.key: m for m in VIDEO_METRICS}


@dataclass
class ClipScores:
    """One system's scores on one clip (per-frame metrics are means over the clip's frames)."""

    clip: str
    frames: int
    values: dict[str, float] = field(default_factory=dict)
    cuts: list[int] = field(default_factory=list)  # cuts the temporal filter detected (models)


@dataclass
class VideoSystem:
    """A system's scores on every clip, in clip order."""

    name: str
    kind: str  # "temporal", "per-frame", "predictions", "baseline", "truth"
    clips: list[ClipScores] = field(default_factory=list)
    seconds: float = 0.0  # colorization wall time over all frames (models)
    frames: int = 0

    def mean(self, key: str) -> float:
        """Mean over clips of a metric (``nan`` if any clip lacks it)."""
        values = [c.values.get(key, float("nan")) for c in self.clips]
        return float(np.mean(values)) if values else float("nan")

    @property
    def frames_per_second(self) -> float | None:
        return self.frames / self.seconds if self.seconds else None


@dataclass
class VideoEvaluation:
    mode: str  # "model" or "predictions"
    data: Path
    clips: list[str]
    systems: list[VideoSystem]
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: _dt.datetime.now().astimezone().isoformat(timespec="seconds"))

    def system(self, name: str) -> VideoSystem:
        return system_named(self.systems, name)


# ---------------------------------------------------------------------------------------------
# Scoring one clip
# ---------------------------------------------------------------------------------------------


class _ClipScorer:
    """Streaming scores of one system on one clip."""

    def __init__(self, per_frame: bool = True, fidelity: bool = True):
        from tinct.metrics.temporal import CDCAccumulator, WarpErrorAccumulator

        self.per_frame, self.fidelity = per_frame, fidelity
        self.cdc = CDCAccumulator()
        self.warp = WarpErrorAccumulator()
        self.sums = {"psnr": 0.0, "ciede2000": 0.0, "colorfulness": 0.0, "mean_chroma": 0.0}
        self.frames = 0

    def add(self, output: np.ndarray, truth: np.ndarray, truth_lab: np.ndarray, reference) -> None:
        from tinct import metrics
        from tinct.metrics.chromatic import ciede2000_map_lab, mean_chroma_lab

        if output.shape != truth.shape:
            raise EvaluationError(f"a frame is {output.shape[1]}x{output.shape[0]}, its truth {truth.shape[1]}x{truth.shape[0]}")
        lab = truth_lab if output is truth else metrics.lab_of(output)
        if self.per_frame:
            if self.fidelity:  # not of the truth against itself
                self.sums["psnr"] += metrics.psnr(output, truth)
                self.sums["ciede2000"] += float(np.mean(ciede2000_map_lab(lab, truth_lab)))
            self.sums["colorfulness"] += metrics.colorfulness(output)
            self.sums["mean_chroma"] += mean_chroma_lab(lab)
        self.cdc.add(output)
        self.warp.add(np.ascontiguousarray(np.moveaxis(lab[..., 1:], -1, 0), dtype=np.float32), reference)
        self.frames += 1

    def scores(self, clip: str, gray_cdc: float) -> ClipScores:
        values = {k: v / self.frames for k, v in self.sums.items()} if self.per_frame and self.frames else {}
        if not self.fidelity:
            values.pop("psnr", None), values.pop("ciede2000", None)
        values["cdc"] = self.cdc.value
        values["cdc_added"] = self.cdc.value - gray_cdc
        values["warp_error"] = self.warp.value
        return ClipScores(clip, self.frames, values)


def _score_clip(
    clip: str, truths: Iterator[np.ndarray], outputs: Iterator[dict[str, np.ndarray]], names: Sequence[str]
) -> tuple[dict[str, ClipScores], int]:
    """Score the systems' frames (``outputs`` yields, per truth frame, each system's frame by
    name) in lockstep with ``truths``, and the gray baseline and the truth beside them.
    Returns the scores by system name and the number of frames scored."""
    from tinct import metrics
    from tinct.evaluate.scoring import gray_baseline
    from tinct.metrics.temporal import WarpReference

    reference = WarpReference()
    scorers = {name: _ClipScorer() for name in names}
    gray, truth_scorer = _ClipScorer(), _ClipScorer(fidelity=False)
    count = 0
    for truth in truths:
        produced = next(outputs, None)
        if produced is None:
            raise EvaluationError(f"{clip}: the outputs have {count} frames, the truth more")
        pair = reference.add(truth)
        truth_lab = metrics.lab_of(truth)
        for name in names:
            scorers[name].add(produced[name], truth, truth_lab, pair)
        gray.add(gray_baseline(truth), truth, truth_lab, pair)
        truth_scorer.add(truth, truth, truth_lab, pair)
        count += 1
    if count == 0:
        raise EvaluationError(f"{clip}: no frames")
    gray_cdc = gray.cdc.value
    scores = {name: scorer.scores(clip, gray_cdc) for name, scorer in scorers.items()}
    scores[BASELINE_NAME] = gray.scores(clip, gray_cdc)
    scores[TRUTH_NAME] = truth_scorer.scores(clip, gray_cdc)
    return scores, count


# ---------------------------------------------------------------------------------------------
# Finding clips
# ---------------------------------------------------------------------------------------------


def list_clips(folder: str | os.PathLike) -> list[Path]:
    """Video files under ``folder`` (recursive, sorted, hidden files and folders skipped)."""
    from tinct.video.io import is_video_path

    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder}: clip folder does not exist or is not a folder")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files if not f.startswith(".") and is_video_path(f)]
    return sorted(found)


def _key(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, disable=None if enabled else True, dynamic_ncols=True)


def _frame_total(paths: Sequence[Path], max_frames: int | None) -> int:
    from tinct.video.io import probe_video

    total = 0
    for path in paths:
        frames = probe_video(path).frames
        total += min(frames, max_frames) if max_frames else frames
    return total


def _counted(frames: Iterator[np.ndarray], bar) -> Iterator[np.ndarray]:
    for frame in frames:
        yield frame
        bar.update(1)


# ---------------------------------------------------------------------------------------------
# Evaluations
# ---------------------------------------------------------------------------------------------


def evaluate_video_model(
    model,
    data: str | os.PathLike,
    *,
    limit: int | None = None,
    max_frames: int | None = None,
    temporal=None,
    threads: int | None = None,
    engine: str = "auto",
    batch_size: int = 4,
    progress: bool = True,
    allow_train_data: bool = False,
) -> VideoEvaluation:
    """Colorize the truth clips under ``data`` (each frame's lightness only) with temporal
    consistency and per frame, and score both beside the gray baseline and the truth.

    Clips made by :mod:`tinct.video.clips` record their photo folder (``clips.json``); a model
    that records that folder as training data is refused unless ``allow_train_data``, as
    photo evaluations are (:func:`tinct.evaluate.runner.check_held_out`).

    Args:
        model: a :class:`~tinct.infer.Colorizer` or what it takes (``"default"`` ...).
        limit: the first N clips (sorted by path); ``max_frames``: the first N frames of each.
        temporal: :class:`~tinct.video.temporal.TemporalConfig` (default settings if None).
    """
    from tinct.video.io import read_frames
    from tinct.video.pipeline import VideoColorizer
    from tinct.video.temporal import TemporalConfig

    data = Path(data)
    paths = list_clips(data)[:limit]
    if not paths:
        raise EvaluationError(f"{data}: no video clips found")
    video = VideoColorizer(model, temporal or TemporalConfig(), batch_size=batch_size, threads=threads, engine=engine)
    name = video.colorizer.name
    held_out = _check_photos_held_out(data, video.colorizer.checkpoint, name, allow_train_data)
    temporal_name, per_frame_name = f"{name} temporal", f"{name} per-frame"
    systems = {
        temporal_name: VideoSystem(temporal_name, "temporal"),
        per_frame_name: VideoSystem(per_frame_name, "per-frame"),
        BASELINE_NAME: VideoSystem(BASELINE_NAME, "baseline"),
        TRUTH_NAME: VideoSystem(TRUTH_NAME, "truth"),
    }
    evaluation = VideoEvaluation("model", data, [], list(systems.values()))
    bar = _progress(_frame_total(paths, max_frames), progress, "evaluating clips")
    with bar:
        for path in paths:
            evaluation.clips.append(_key(path, data))
            frames = read_frames(path, max_frames)
            _score_both_ways(video, evaluation.clips[-1], frames, bar, systems, temporal_name, per_frame_name)
    evaluation.notes.append(held_out)
    evaluation.notes.append(
        f"{temporal_name} and {per_frame_name} come from the same network run per frame; their time is the "
        "whole pipeline's (decoding, network, filter, composing both)"
    )
    evaluation.notes.append(f"engine: {video.colorizer.engine}; threads: {video.colorizer.threads}")
    return evaluation


def _score_both_ways(video, clip: str, frames: Iterator[np.ndarray], bar, systems: dict[str, VideoSystem],
                     temporal_name: str, per_frame_name: str) -> None:
    """Colorize one clip's truth ``frames`` (their lightness) with the temporal filter and per
    frame in one network run, score both beside the baseline and the truth, and add the
    scores, the time and the frame count to ``systems``."""
    truths, inputs = itertools.tee(frames)
    timed = _Timed(video.frames(_counted(inputs, bar), per_frame=True))
    outputs = ({temporal_name: done.rgb, per_frame_name: done.per_frame} for done in timed)
    scores, count = _score_clip(clip, truths, outputs, [temporal_name, per_frame_name])
    for system_name, score in scores.items():
        if system_name == temporal_name:
            score.cuts = timed.cuts
        systems[system_name].clips.append(score)
    for system_name in (temporal_name, per_frame_name):
        systems[system_name].seconds += timed.seconds
        systems[system_name].frames += count


def _check_photos_held_out(data: Path, info, name: str, allow_train_data: bool) -> str:
    """The held-out statement for clips made from photos (``clips.json``'s photo folder)."""
    import json as _json

    from tinct.evaluate.runner import check_held_out
    from tinct.video.clips import MANIFEST

    manifest = data / MANIFEST
    if not manifest.is_file():
        return f"{name}: the clips record no photo folder (no {MANIFEST}); held-out status not verified"
    photo_root = Path(_json.loads(manifest.read_text(encoding="utf-8")).get("photo_root", ""))
    if not photo_root.is_absolute():
        photo_root = (Path.cwd() / photo_root).resolve()
    return f"clips made from the photos of {photo_root}: " + check_held_out(photo_root, info, name, allow_train_data)


class _Timed:
    """Iterates :class:`~tinct.video.pipeline.ColorizedFrame` s, timing the pipeline (decoding
    included) and noting the frames where the temporal filter detected a cut."""

    def __init__(self, frames: Iterator):
        self._frames = frames
        self.seconds = 0.0
        self.cuts: list[int] = []

    def __iter__(self):
        index = 0
        while True:
            start = time.perf_counter()
            done = next(self._frames, None)
            self.seconds += time.perf_counter() - start
            if done is None:
                return
            if done.note is not None and done.note.cut and index > 0:
                self.cuts.append(index)
            yield done
            index += 1


def _match_clips(pred: Path, gt: Path) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    truths = {_key(p, gt): p for p in list_clips(gt)}
    preds = {_key(p, pred): p for p in list_clips(pred)}
    pairs = [(k, truths[k], preds[k]) for k in sorted(truths) if k in preds]
    return pairs, sorted(k for k in preds if k not in truths), sorted(k for k in truths if k not in preds)


def evaluate_video_predictions(
    pred: str | os.PathLike,
    gt: str | os.PathLike,
    *,
    per_frame_pred: str | os.PathLike | None = None,
    limit: int | None = None,
    max_frames: int | None = None,
    progress: bool = True,
) -> VideoEvaluation:
    """Score output clips made by any tool (``pred``) against truth clips (``gt``), matched
    by relative path with the extension ignored; ``per_frame_pred`` adds the same tool's
    per-frame outputs as the baseline row."""
    from tinct.video.io import read_frames

    pred, gt = Path(pred), Path(gt)
    pairs, unmatched_pred, unmatched_gt = _match_clips(pred, gt)
    if not pairs:
        raise EvaluationError(f"{pred}: no clip matches a clip of {gt} by relative path (extensions ignored)")
    pairs = pairs[:limit]
    baseline_clips: dict[str, Path] = {}
    if per_frame_pred is not None:
        per_frame_pred = Path(per_frame_pred)
        baseline_clips = {_key(p, per_frame_pred): p for p in list_clips(per_frame_pred)}
        missing = [k for k, _, _ in pairs if k not in baseline_clips]
        if missing:
            raise EvaluationError(f"{per_frame_pred}: no per-frame clip for {', '.join(missing[:5])}")
    name = pred.resolve().name or str(pred)
    systems = {name: VideoSystem(name, "predictions")}
    if per_frame_pred is not None:
        per_name = per_frame_pred.resolve().name or str(per_frame_pred)
        if per_name == name:
            per_name += " (per-frame)"
        systems[per_name] = VideoSystem(per_name, "per-frame")
    systems[BASELINE_NAME] = VideoSystem(BASELINE_NAME, "baseline")
    systems[TRUTH_NAME] = VideoSystem(TRUTH_NAME, "truth")
    evaluation = VideoEvaluation("predictions", gt, [], list(systems.values()))
    bar = _progress(_frame_total([t for _, t, _ in pairs], max_frames), progress, "evaluating clips")
    with bar:
        for clip, truth_path, pred_path in pairs:
            names = [s for s in systems if systems[s].kind in ("predictions", "per-frame")]
            readers = [read_frames(pred_path)] + ([read_frames(baseline_clips[clip])] if per_frame_pred is not None else [])
            outputs = (dict(zip(names, frames)) for frames in zip(*readers))
            scores, _ = _score_clip(clip, _counted(read_frames(truth_path, max_frames), bar), outputs, names)
            evaluation.clips.append(clip)
            for system_name, score in scores.items():
                systems[system_name].clips.append(score)
    if unmatched_pred or unmatched_gt:
        evaluation.notes.append(f"{len(unmatched_pred)} output clip(s) without a truth and {len(unmatched_gt)} truth clip(s) "
                                "without an output were skipped")  # fmt: skip
    evaluation.notes.append("outputs were made by an outside tool: held-out status not verified by tinct")
    return evaluation


# ---------------------------------------------------------------------------------------------
# Targets, table, report
# ---------------------------------------------------------------------------------------------


def video_targets(evaluation: VideoEvaluation) -> dict[str, float] | None:
    """The issue's four quality figures for the temporal system against its per-frame baseline
    (``None`` without a per-frame row): ratios of CDC added, of warp error and of mean chroma,
    and the CIEDE2000 difference."""
    ours = [s for s in evaluation.systems if s.kind in ("temporal", "predictions")]
    base = [s for s in evaluation.systems if s.kind == "per-frame"]
    if not ours or not base:
        return None
    a, b = ours[0], base[0]

    def ratio(key: str) -> float:
        denominator = b.mean(key)
        return a.mean(key) / denominator if denominator else float("nan")

    return {
        "cdc_added_ratio": ratio("cdc_added"),
        "warp_error_ratio": ratio("warp_error"),
        "chroma_ratio": ratio("mean_chroma"),
        "ciede2000_difference": a.mean("ciede2000") - b.mean("ciede2000"),
    }


TARGETS = {
    "cdc_added_ratio": ("CDC added, temporal / per-frame", "<=", 0.5),
    "warp_error_ratio": ("ab warp error, temporal / per-frame", "<=", 0.5),
    "chroma_ratio": ("mean chroma, temporal / per-frame", ">=", 0.8),
    "ciede2000_difference": ("CIEDE2000, temporal - per-frame", "<=", 0.2),
}


def _fmt(value: float, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_video_table(evaluation: VideoEvaluation) -> str:
    """The terminal table: one row per system, one column per metric (means over clips)."""
    frames = sum(c.frames for c in evaluation.systems[0].clips)
    title = f"video evaluation on {evaluation.data.name or evaluation.data}: {len(evaluation.clips)} clips, {frames} frames"
    width = max(14, *(len(s.name) for s in evaluation.systems))
    columns = [m for m in VIDEO_METRICS]
    header = f"{'system':<{width}} " + " ".join(f"{m.label:>13}" for m in columns) + f" {'frames/s':>9}"
    directions = " ".join(f"{short_label(m.better):>13}" for m in columns)
    better = f"{'(better)':<{width}} {directions} {short_label(HIGHER):>9}"
    lines = [title, "", header, better, "-" * len(header)]
    for system in evaluation.systems:
        cells = []
        for m in columns:
            value = system.mean(m.key)
            cells.append(f"{_fmt(value, m.digits):>13}")
        speed = system.frames_per_second
        lines.append(f"{system.name:<{width}} " + " ".join(cells) + f" {_fmt(speed, 1) if speed else '-':>9}")
    targets = video_targets(evaluation)
    if targets:
        lines += ["", "targets (temporal against per-frame):"]
        for key, (label, op, bound) in TARGETS.items():
            value = targets[key]
            met = (value <= bound) if op == "<=" else (value >= bound)
            lines.append(f"  {label:<38} {_fmt(value, 3):>8}  target {op} {bound:g}  {'met' if met else 'NOT met'}")
    cuts = [(c.clip, c.cuts) for s in evaluation.systems if s.kind == "temporal" for c in s.clips]
    if cuts:
        lines += ["", "scene cuts detected (frame indices): " + "; ".join(f"{clip} {found or '-'}" for clip, found in cuts)]
    for note in evaluation.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def summary_of(evaluation: VideoEvaluation) -> dict:
    def safe(v):
        return None if isinstance(v, float) and (math.isnan(v) or math.isinf(v)) else v

    return {
        "mode": evaluation.mode,
        "data": str(evaluation.data),
        "created": evaluation.created,
        "clips": evaluation.clips,
        "metrics": {m.key: {"label": m.label, "better": short_label(m.better), "definition": m.definition} for m in VIDEO_METRICS},
        "systems": [
            {
                "name": s.name,
                "kind": s.kind,
                "mean": {m.key: safe(s.mean(m.key)) for m in VIDEO_METRICS},
                "frames_per_second": s.frames_per_second,
                "clips": [{"clip": c.clip, "frames": c.frames, "cuts": c.cuts, **{k: safe(v) for k, v in c.values.items()}}
                          for c in s.clips],  # fmt: skip
            }
            for s in evaluation.systems
        ],
        "targets": video_targets(evaluation),
        "notes": evaluation.notes,
    }


def write_video_report(evaluation: VideoEvaluation, out: str | os.PathLike | None = None) -> Path:
    """A report folder: ``table.txt``, ``summary.json`` and ``clips.csv`` (one row per system
    and clip). Never overwrites: an existing folder is refused
    (:class:`~tinct.evaluate.report.ReportExistsError`, a FileExistsError)."""
    from tinct.evaluate.report import refuse_existing_report
    from tinct.io import write_text_atomic

    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("reports") / f"video-{evaluation.data.name or 'clips'}-{stamp}"
    out = Path(out)
    refuse_existing_report(out)
    out.mkdir(parents=True)
    write_text_atomic(out / "table.txt", format_video_table(evaluation) + "\n")
    write_text_atomic(out / "summary.json", json.dumps(summary_of(evaluation), indent=1) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["system", "clip", "frames", *[m.key for m in VIDEO_METRICS]])
    for s in evaluation.systems:
        for c in s.clips:
            writer.writerow([s.name, c.clip, c.frames, *[_fmt(c.values.get(m.key, float("nan")), 6) for m in VIDEO_METRICS]])
    write_text_atomic(out / "clips.csv", buffer.getvalue())
    return out
