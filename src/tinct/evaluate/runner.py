"""Running evaluations: colorize held-out truths (or read another tool's outputs) and score them.

Every evaluation scores the gray baseline on the same images: the truth's own CIELAB L
with a = b = 0. A colorizer is only worth its weights where it beats that row.

The truths of a model evaluation (``data``) are a folder or any training source string
(:mod:`tinct.data.config`):

==============================  ===============================================================
``DIR``, ``folder:DIR``,        every image under the folder
``coco:DIR``
``caltech101:DIR``              every image of the class folders (as training reads them:
                                ``BACKGROUND_Google`` and ``Faces_easy`` left out)
``cifar100:DIR[:LABELS]``       the **test** file's images of those fine labels (all 100 when
                                none are given); a ``cifar100:`` training source never trains on
                                it, so the held-out check accepts it
``lab-arrays:DIR[:parts=N]``    every image of the chosen ab parts (all parts present), 8-bit
                                Lab turned into sRGB; a model trained on other parts of the
                                same arrays passes the held-out check
==============================  ===============================================================
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from tinct.errors import TinctError
from tinct.evaluate.scoring import Stats, TruthScores, gray_baseline, score_pair, set_metrics, summarize, truth_scores
from tinct.io import ImageReadError, list_images, read_rgb
from tinct.models.base import count_parameters

if TYPE_CHECKING:
    from tinct.data.config import SourceSpec
    from tinct.models.checkpoint import CheckpointInfo

__all__ = [
    "BASELINE_NAME",
    "EvaluationError",
    "SystemResult",
    "Evaluation",
    "Item",
    "training_folders",
    "training_sources",
    "truth_items",
    "check_held_out",
    "match_predictions",
    "evaluate_model",
    "evaluate_predictions",
    "compare_models",
]

BASELINE_NAME = "gray baseline"
TRUTH_SET = "__truth__"


class EvaluationError(TinctError, ValueError):
    """An evaluation cannot run as asked; the message is one line naming the file or value."""


@dataclass
class SystemResult:
    """The scores of one system (a model, a folder of outputs, or the gray baseline)."""

    name: str
    kind: str  # "model", "predictions" or "baseline"
    rows: list[dict[str, float]] = field(default_factory=list)  # one per image, in order
    seconds: list[float] = field(default_factory=list)  # colorization wall time per image (models)
    set_scores: dict[str, float] = field(default_factory=dict)
    parameters: int | None = None
    source: str | None = None  # checkpoint file or predictions folder
    held_out: str = ""  # what is known about the overlap with the training data

    def stats(self) -> dict[str, Stats]:
        """Per-image metric -> mean / std / min / max over the images."""
        keys = list(self.rows[0]) if self.rows else []
        return {key: summarize(row[key] for row in self.rows) for key in keys}

    @property
    def seconds_per_image(self) -> float | None:
        return float(np.mean(self.seconds)) if self.seconds else None


def system_named(systems: Sequence, name: str):
    """The one of ``systems`` (anything with a ``name``) called ``name``; KeyError if none is."""
    for system in systems:
        if system.name == name:
            return system
    raise KeyError(name)


@dataclass
class Evaluation:
    """Everything a report needs: per-image scores of every system on the same images."""

    mode: str  # "model", "predictions" or "compare"
    data: Path  # the truth folder
    images: list[str]  # image names (relative paths), in scoring order
    systems: list[SystemResult]
    truths: list[dict[str, float]]  # per image: colorfulness, mean_chroma of the truth
    # For the first images: (label, uint8 thumbnail) panels, gray baseline | systems | truth.
    thumbnails: list[list[tuple[str, np.ndarray]]] = field(default_factory=list)
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    optional: dict[str, str] = field(default_factory=dict)  # metric -> weight file(s) used
    created: str = field(default_factory=lambda: _dt.datetime.now().astimezone().isoformat(timespec="seconds"))

    def system(self, name: str) -> SystemResult:
        return system_named(self.systems, name)

    @property
    def baseline(self) -> SystemResult:
        return self.system(BASELINE_NAME)


@dataclass
class Item:
    """One image to score: its name, its truth file and (for --pred) the output file.

    Images of array sources (CIFAR-100, seed 002's arrays) have no file of their own:
    ``load`` returns their uint8 sRGB pixels and ``truth`` names them (``<folder>/<key>``).
    """

    name: str
    truth: Path
    pred: Path | None = None
    load: Callable[[], np.ndarray] | None = None

    def truth_pixels(self) -> np.ndarray:
        """uint8 ``(H, W, 3)`` sRGB of the truth."""
        return self.load() if self.load is not None else read_rgb(self.truth)


@dataclass
class _System:
    result: SystemResult
    produce: Callable[[Item, np.ndarray], tuple[np.ndarray, float | None]]
    warm_up: Callable[[np.ndarray], None] | None = None


# ---------------------------------------------------------------------------------------------
# Held-out check
# ---------------------------------------------------------------------------------------------


def _paths_in(value) -> list[str]:
    """Folder strings inside a ``data_config.sources`` entry (a string, a list, or dicts)."""
    if isinstance(value, (str, os.PathLike)):
        return [str(value)]
    if isinstance(value, dict):
        for key in ("path", "root", "folder", "dir"):
            if key in value:
                return _paths_in(value[key])
        return [p for v in value.values() for p in _paths_in(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths_in(v)]
    return []


def _recorded_source(text: str) -> "SourceSpec":
    """One recorded source (``folder:PATH``, ``caltech101:PATH:crops=2``, ``cifar100:PATH:52``,
    ``lab-arrays:PATH:parts=1``, ... as ``tinct train`` records them, or a bare path), with
    its real path."""
    import dataclasses

    from tinct.data.config import SourceSpec, parse_source

    try:
        spec = parse_source(text)
    except ValueError:  # not a source string this tinct can parse: take it as a path
        spec = SourceSpec(kind="folder", path=Path(text), text=text)
    return dataclasses.replace(spec, path=spec.path.expanduser().resolve())


def training_sources(info: "CheckpointInfo | None") -> list["SourceSpec"] | None:
    """The training sources recorded in a checkpoint's info (``extra.data_config.sources``),
    paths made real, or None when it records none (or there is no checkpoint)."""
    data_config = (info.extra.get("data_config") if info is not None else None) or {}
    if "sources" not in data_config:
        return None
    return [_recorded_source(text) for text in _paths_in(data_config["sources"])]


def training_folders(info: "CheckpointInfo | None") -> list[Path] | None:
    """Real paths of the training folders recorded in a checkpoint's info
    (``extra.data_config.sources``), or None when it records none."""
    sources = training_sources(info)
    return None if sources is None else [source.path for source in sources]


def _held_out_within(data: "SourceSpec | None", trained: "SourceSpec") -> str | None:
    """Why the images of ``data`` are held out from the training source ``trained`` although
    their folders overlap, or None: a CIFAR-100 test split, or lab-array parts not trained on."""
    if data is None or data.path != trained.path or data.kind != trained.kind:
        return None
    if data.kind == "cifar100":
        return f"the test file of {data.path} is held out (tinct trains cifar100: sources on their train file only)"
    if data.kind == "lab-arrays" and data.parts and trained.parts and not set(data.parts) & set(trained.parts):
        return f"ab parts {list(data.parts)} of {data.path} are not the trained parts {list(trained.parts)}"
    return None


def check_held_out(data: Path, info: "CheckpointInfo | None", name: str, allow_train_data: bool,
                   source: "SourceSpec | None" = None) -> str:
    """Refuse to score model ``name`` on ``data`` when ``data`` overlaps the training folders its
    checkpoint ``info`` records (:attr:`tinct.infer.Colorizer.checkpoint`).

    Overlap means: ``data`` equals a training folder, lies inside one, or contains one, except
    where ``source`` (what is scored in ``data``) is held out within that source: the test
    split of a CIFAR-100 source, lab-array parts the model did not train on.
    Returns a one-line statement of what was checked (it goes into the report).
    """
    sources = training_sources(info)
    if sources is None:
        return f"{name}: the checkpoint records no training folders; held-out status not verified"
    data = Path(data).resolve()
    if source is not None:
        source = _recorded_source(source.canonical())
    overlapping = [t for t in sources if data == t.path or data.is_relative_to(t.path) or t.path.is_relative_to(data)]
    reasons = [reason for t in overlapping if (reason := _held_out_within(source, t))]
    overlapping = [t for t in overlapping if not _held_out_within(source, t)]
    if not overlapping:
        if reasons:
            return f"{name}: {reasons[0]}"
        return f"{name}: {data} is outside the {len(sources)} training folder(s) recorded in the checkpoint"
    if not allow_train_data:
        raise EvaluationError(
            f"{data}: {name} was trained on {overlapping[0].path}; scores on training images flatter the model "
            f"(evaluate on held-out images, or pass --allow-train-data to do it anyway)"
        )
    return f"{name}: WARNING evaluated on its own training data ({overlapping[0].path}) by --allow-train-data"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _key_of(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _index(folder: Path, what: str) -> dict[str, Path]:
    try:
        files = list_images(folder)
    except NotADirectoryError:
        raise EvaluationError(f"{folder}: {what} folder does not exist or is not a folder") from None
    index: dict[str, Path] = {}
    for path in files:
        key = _key_of(path, folder)
        if key in index:
            raise EvaluationError(f"{path}: same name as {index[key]} apart from the extension; cannot match {what} files")
        index[key] = path
    return index


def match_predictions(pred: Path, gt: Path) -> tuple[list[Item], list[str], list[str]]:
    """Pair outputs with truths by relative path, ignoring the extension.

    Returns (pairs, unmatched outputs, unmatched truths); unmatched lists hold relative paths.
    """
    preds, truths = _index(Path(pred), "predictions"), _index(Path(gt), "ground-truth")
    pairs = [Item(key, truths[key], preds[key]) for key in sorted(truths) if key in preds]
    unmatched_pred = sorted(preds[k].relative_to(pred).as_posix() for k in preds if k not in truths)
    unmatched_gt = sorted(truths[k].relative_to(gt).as_posix() for k in truths if k not in preds)
    return pairs, unmatched_pred, unmatched_gt


def _upright_size(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header only."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except OSError as exc:
        raise ImageReadError(f"{path}: not an image Pillow can read ({exc})") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC), dtype=np.uint8)


def _thumbnail(rgb: np.ndarray, max_side: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(rgb)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", file=sys.stderr, disable=None, dynamic_ncols=True)


class _OptionalMetrics:
    """FID and LPIPS, built only from weight files the user passed."""

    def __init__(self, fid_weights=None, lpips_weights=None, lpips_backbone=None):
        self.fid = self.lpips = None
        self.used: dict[str, str] = {}
        if (lpips_weights is None) != (lpips_backbone is None):
            raise EvaluationError("LPIPS needs both --lpips-weights (linear layers) and --lpips-backbone (AlexNet/VGG-16)")
        if fid_weights is not None:
            from tinct.metrics import fid

            self.fid = fid.FrechetScorer(fid.fid_inception_from_file(fid_weights))
            self.used["fid"] = str(fid_weights)
        if lpips_weights is not None:
            from tinct.metrics.lpips import lpips_from_files

            self.lpips = lpips_from_files(lpips_weights, lpips_backbone)
            self.used["lpips"] = f"{lpips_weights} + {lpips_backbone}"


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def _run(
    mode: str,
    data: Path,
    items: Sequence[Item],
    systems: list[_System],
    optional: _OptionalMetrics,
    comparisons: int,
    thumbnail_size: int,
    progress: bool,
) -> Evaluation:
    if not items:
        raise EvaluationError(f"{data}: no images to evaluate")
    evaluation = Evaluation(mode=mode, data=data, images=[], systems=[s.result for s in systems], truths=[])
    evaluation.optional = dict(optional.used)
    if optional.fid is not None and len(items) < 2:
        raise EvaluationError("FID needs at least 2 images")
    for index, item in enumerate(_progress(items, len(items), f"evaluating {len(systems) - 1} system(s)", progress)):
        truth = item.truth_pixels()
        if min(truth.shape[:2]) < 7:
            raise EvaluationError(f"{item.truth}: {truth.shape[1]}x{truth.shape[0]} px is too small (SSIM needs 7x7)")
        if index == 0:
            for system in systems:
                if system.warm_up is not None:
                    system.warm_up(truth)  # first-call setup is not charged to the first image
        info: TruthScores = truth_scores(truth)
        evaluation.images.append(item.name)
        evaluation.truths.append({"colorfulness": info.colorfulness, "mean_chroma": info.mean_chroma})
        panels: dict[str, np.ndarray] | None = {} if index < comparisons else None
        for system in systems:
            output = _score_system(system, item, truth, info, optional)
            if panels is not None:
                panels[system.result.name] = output
        if optional.fid is not None:
            optional.fid.add(TRUTH_SET, truth)
        if panels is not None:
            order = [BASELINE_NAME] + [s.result.name for s in systems if s.result.name != BASELINE_NAME]
            labelled = [(name, panels[name]) for name in order] + [("truth", truth)]
            evaluation.thumbnails.append([(label, _thumbnail(rgb, thumbnail_size)) for label, rgb in labelled])
    _score_sets(evaluation, systems, optional)
    return evaluation


def _score_system(system: _System, item: Item, truth: np.ndarray, info: TruthScores,
                  optional: _OptionalMetrics) -> np.ndarray:
    """Colorize (or read) one system's output for ``item``, score it against ``truth`` and add
    the row and the time to the system's result; returns the output, uint8 ``(H, W, 3)``."""
    output, seconds = system.produce(item, truth)
    if output.shape != truth.shape:
        source = item.pred or item.truth
        out_size, truth_size = f"{output.shape[1]}x{output.shape[0]}", f"{truth.shape[1]}x{truth.shape[0]}"
        raise EvaluationError(f"{source}: output {out_size} differs from truth {truth_size}")
    row = score_pair(output, truth, info)
    if optional.lpips is not None:
        row["lpips"] = optional.lpips.distance(output, truth)
    if optional.fid is not None:
        optional.fid.add(system.result.name, output)
    system.result.rows.append(row)
    if seconds is not None:
        system.result.seconds.append(seconds)
    return output


def _score_sets(evaluation: Evaluation, systems: list[_System], optional: _OptionalMetrics) -> None:
    """The set-level metrics of every system (and FID, with a note when it is biased)."""
    for system in systems:
        system.result.set_scores = set_metrics(system.result.rows, evaluation.truths)
        if optional.fid is not None:
            system.result.set_scores["fid"] = optional.fid.distance(system.result.name, TRUTH_SET)
    if optional.fid is not None:
        dims = optional.fid.features(TRUTH_SET).shape[1]
        if len(evaluation.images) <= dims:
            evaluation.notes.append(
                f"FID from {len(evaluation.images)} images of {dims}-d features: the covariances are rank-deficient and "
                "FID is biased upwards; compare FIDs only between systems scored on the same images"
            )


def _baseline_system() -> _System:
    return _System(SystemResult(BASELINE_NAME, "baseline", parameters=0, source="truth L with a = b = 0"),
                   lambda item, truth: (gray_baseline(truth), None))


def _model_system(model, name: str, held_out: str) -> _System:
    from tinct.color import cielab_lightness
    from tinct.infer import Colorizer
    from tinct.io import Photo

    colorizer = model if isinstance(model, Colorizer) else Colorizer(model, engine="torch")

    def produce(item: Item, truth: np.ndarray):
        # Exactly the truth's CIELAB L, in float: no 8-bit rounding of the input.
        photo = Photo(lightness=cielab_lightness(truth), source=item.truth)
        start = time.perf_counter()
        output = colorizer.colorize_photo(photo)
        return output, time.perf_counter() - start

    def warm_up(truth: np.ndarray):
        colorizer.colorize_photo(Photo(lightness=cielab_lightness(truth[:32, :32])))

    path = colorizer.checkpoint.path if colorizer.checkpoint is not None else None
    result = SystemResult(name, "model", parameters=count_parameters(colorizer.model),
                          source=str(path) if path else None, held_out=held_out)
    return _System(result, produce, warm_up)


def _array_item(source, record) -> Item:
    """An image of an array source (CIFAR-100, lab arrays) as a truth, read when scored."""
    from tinct.color import lab_to_rgb, to_uint8
    from tinct.data.preprocess import decode_lab8

    def load() -> np.ndarray:
        pixels = source.load(record)
        if source.encoding == "lab8":
            return to_uint8(lab_to_rgb(decode_lab8(pixels)))
        return np.ascontiguousarray(pixels)

    return Item(record.key, source.root.parent / record.key, load=load)


def truth_items(data: str | os.PathLike, limit: int | None = None) -> tuple[Path, list[Item], "SourceSpec"]:
    """The truths a model evaluation scores: ``(folder, items, parsed source)`` for a folder or
    a source string (module docstring), in the source's order, the first ``limit`` kept."""
    from tinct.data.config import DataConfig, parse_source
    from tinct.data.sources import open_sources

    text = str(data)
    try:
        spec = parse_source(text)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
    if spec.kind in ("folder", "coco"):
        try:
            files = list_images(spec.path)
        except NotADirectoryError:
            raise EvaluationError(f"{text}: data folder does not exist or is not a folder") from None
        items = [Item(f.relative_to(spec.path).as_posix(), f) for f in files]
    else:
        try:
            (source,) = open_sources(DataConfig(sources=[text]))
            records = source.records()
        except (NotADirectoryError, FileNotFoundError, ValueError) as exc:
            raise EvaluationError(str(exc)) from None
        if spec.kind == "caltech101":
            items = [Item(r.path.relative_to(spec.path).as_posix(), r.path) for r in records]
        else:
            if spec.kind == "cifar100":
                records = [r for r in records if r.official_split == "test"]
            items = [_array_item(source, r) for r in records]
    if not items:
        raise EvaluationError(f"{text}: no images found")
    return spec.path, (items[:limit] if limit is not None else items), spec


def _source_note(spec: "SourceSpec", count: int) -> str | None:
    """What a source string made of ``--data`` (None for a plain folder)."""
    if spec.kind == "cifar100":
        labels = ",".join(spec.labels) if spec.labels else "all"
        return f"data: the CIFAR-100 test split of {spec.path} (fine labels {labels}), {count} images"
    if spec.kind == "lab-arrays":
        parts = ",".join(map(str, spec.parts)) if spec.parts else "all present"
        return f"data: seed 002's Lab arrays in {spec.path} (ab parts {parts}), {count} images as sRGB"
    if spec.kind == "caltech101":
        return f"data: the Caltech-101 class folders of {spec.path}, {count} images"
    return None


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise EvaluationError(f"--limit must be >= 1, got {limit}")


def compare_models(
    models: Sequence,
    data: str | os.PathLike,
    *,
    limit: int | None = None,
    allow_train_data: bool = False,
    fid_weights=None,
    lpips_weights=None,
    lpips_backbone=None,
    threads: int | None = None,
    comparisons: int = 100,
    thumbnail_size: int = 192,
    progress: bool = True,
    mode: str = "compare",
) -> Evaluation:
    """Score each model (shipped name, checkpoint path, or model object) and the gray baseline.

    Each truth becomes a gray input with exactly its CIELAB L, is colorized (timed: wall time
    of ``Colorizer.colorize_photo`` only, after one untimed warm-up) and scored.

    ``data`` is a folder or a training source string (``cifar100:DIR:52`` scores its test
    split; see the module docstring).

    Raises:
        EvaluationError: ``data`` overlaps a model's recorded training folders (unless
            ``allow_train_data``), no images, ...
    """
    from tinct.infer import Colorizer

    _check_limit(limit)
    data, items, source = truth_items(data, limit)
    optional = _OptionalMetrics(fid_weights, lpips_weights, lpips_backbone)
    systems, names = [], set()
    for spec in models:
        colorizer = Colorizer(spec, threads=threads, engine="torch")  # evaluation stays in torch
        name = colorizer.name
        if name in names or name == BASELINE_NAME:
            name = str(spec)
        names.add(name)
        held_out = check_held_out(data, colorizer.checkpoint, name, allow_train_data, source)
        systems.append(_model_system(colorizer, name, held_out))
    systems.append(_baseline_system())
    evaluation = _run(mode, data, items, systems, optional, comparisons, thumbnail_size, progress)
    described = _source_note(source, len(items))
    held_out = [s.held_out for s in evaluation.systems if s.held_out]
    evaluation.notes = ([described] if described else []) + held_out + evaluation.notes
    return evaluation


def evaluate_model(model, data: str | os.PathLike, **kwargs) -> Evaluation:
    """:func:`compare_models` for one model (the ``tinct evaluate --model`` report)."""
    return compare_models([model], data, mode="model", **kwargs)


def evaluate_predictions(
    pred: str | os.PathLike,
    gt: str | os.PathLike,
    *,
    limit: int | None = None,
    resize: bool = False,
    fid_weights=None,
    lpips_weights=None,
    lpips_backbone=None,
    comparisons: int = 100,
    thumbnail_size: int = 192,
    progress: bool = True,
) -> Evaluation:
    """Score outputs made by any tool against their truths (matched by relative path, any extension).

    Raises:
        EvaluationError: no file matches, or an output's size differs from its truth's
            (unless ``resize``, which resizes the output to the truth's size, bicubic).
    """
    _check_limit(limit)
    pred, gt = Path(pred), Path(gt)
    pairs, unmatched_pred, unmatched_gt = match_predictions(pred, gt)
    if not pairs:
        raise EvaluationError(f"{pred}: no output matches a file of {gt} by relative path (extensions ignored)")
    if limit is not None:
        pairs = pairs[:limit]
    if not resize:
        for item in pairs:
            if _upright_size(item.pred) != _upright_size(item.truth):
                (pw, ph), (tw, th) = _upright_size(item.pred), _upright_size(item.truth)
                raise EvaluationError(
                    f"{item.pred}: {pw}x{ph} px but its truth {item.truth} is {tw}x{th} (pass --resize to resize outputs)"
                )

    def produce(item: Item, truth: np.ndarray):
        output = read_rgb(item.pred)
        if output.shape != truth.shape and resize:
            output = _resize(output, (truth.shape[1], truth.shape[0]))
        return output, None

    optional = _OptionalMetrics(fid_weights, lpips_weights, lpips_backbone)
    system = _System(SystemResult(pred.resolve().name or str(pred), "predictions", source=str(pred)), produce)
    systems = [system, _baseline_system()]
    evaluation = _run("predictions", gt, pairs, systems, optional, comparisons, thumbnail_size, progress)
    evaluation.unmatched = {"predictions": unmatched_pred, "ground_truth": unmatched_gt}
    if unmatched_pred or unmatched_gt:
        evaluation.notes.append(
            f"{len(unmatched_pred)} output(s) without a truth and {len(unmatched_gt)} truth(s) without an output "
            "were skipped"
        )
    evaluation.notes.append("outputs were made by an outside tool: held-out status not verified by tinct")
    return evaluation
