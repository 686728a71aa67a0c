"""What data to train on and how to prepare it: :class:`DataConfig` and the source grammar.

A *source* is one string:

    FOLDER                       a folder of images, searched recursively
    folder:FOLDER[:crops=N]      the same, spelled out (``crops`` overrides crops_per_large_image)
    coco:FOLDER[:crops=N]        a COCO-style flat folder of photos (``val2017/*.jpg``)
    caltech101:FOLDER[:crops=N]  Caltech-101's ``101_ObjectCategories/<class>/*.jpg`` layout;
                                 ``DataConfig.classes`` selects classes; one tile per photo unless
                                 ``crops=N`` is given (object photos are framed around the object)
    cifar100:FOLDER[:LABELS][:val=N]
                                 CIFAR-100's Python format (``train``, ``test``, ``meta``);
                                 LABELS = fine labels as numbers or names, comma-separated
                                 (``52`` or ``oak_tree,maple_tree``); ``val=N`` sets the size of
                                 the validation split (default: as many as the test split)
    lab-arrays:FOLDER[:parts=N,M]
                                 seed 002's arrays: ``gray_scale.npy`` and ``ab1.npy``, ``ab2.npy``...
                                 (OpenCV 8-bit Lab), found anywhere under FOLDER; ``parts`` keeps
                                 only the images of those ab parts (seed 002's staged training),
                                 and any leading subset of the parts may be present

Options follow the path, separated by ``:``. A string whose prefix is not a known kind is a
plain folder path (so Windows paths such as ``C:\\photos`` work).

A malformed source string or setting raises :class:`tinct.errors.DataError` (a ``ValueError``)
whose one-line message names it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from tinct.errors import DataError

__all__ = ["DataConfig", "SourceSpec", "parse_source", "SOURCE_KINDS"]

SOURCE_KINDS = ("folder", "coco", "caltech101", "cifar100", "lab-arrays")
_OPTIONS_BY_KIND = {
    "folder": ("crops",),
    "coco": ("crops",),
    "caltech101": ("crops",),
    "cifar100": ("val",),
    "lab-arrays": ("parts",),
}


@dataclass(frozen=True)
class SourceSpec:
    """One parsed source string.

    Attributes:
        kind: one of :data:`SOURCE_KINDS`.
        path: the folder, made absolute.
        crops: tiles per large photo for this source, or ``None`` to use the config's value.
        labels: CIFAR-100 fine labels (numbers or names) selected by the option, or ``()``.
        val_count: CIFAR-100 validation-split size given by ``val=N``, or ``None``.
        parts: lab-arrays ab part numbers chosen by ``parts=N,M`` (``()``: every part present).
        text: the string as given.
    """

    kind: str
    path: Path
    crops: int | None = None
    labels: tuple[str, ...] = ()
    val_count: int | None = None
    parts: tuple[int, ...] = ()
    text: str = ""

    def canonical(self) -> str:
        """The spec with an absolute path, for cache keys and logs."""
        parts = [self.kind, str(self.path)]
        if self.labels:
            parts.append(",".join(self.labels))
        if self.crops is not None:
            parts.append(f"crops={self.crops}")
        if self.val_count is not None:
            parts.append(f"val={self.val_count}")
        if self.parts:
            parts.append("parts=" + ",".join(str(n) for n in self.parts))
        return ":".join(parts)


def _positive_int(text: str, what: str, source: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DataError(f"{source}: {what} must be an integer, got {text!r}") from None
    if value < 0 or (what == "crops" and value < 1):
        raise DataError(f"{source}: {what} must be {'>= 1' if what == 'crops' else '>= 0'}, got {value}")
    return value


def parse_source(text: str) -> SourceSpec:
    """Parse a source string (see the module docstring) into a :class:`SourceSpec`.

    >>> parse_source("cifar100:/data/cifar-100-python:52").labels
    ('52',)
    """
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"a data source must be a non-empty string, got {text!r}")
    head, sep, rest = text.partition(":")
    if not sep or head not in SOURCE_KINDS:
        return SourceSpec(kind="folder", path=Path(text).expanduser().absolute(), text=text)
    kind = head
    parts = rest.split(":")
    path_text = parts.pop(0)
    # A Windows drive letter ("C:\\x") is part of the path, not an option separator.
    if len(path_text) == 1 and path_text.isalpha() and parts:
        path_text = f"{path_text}:{parts.pop(0)}"
    if not path_text:
        raise DataError(f"{text}: missing folder after '{kind}:'")
    crops = val_count = None
    labels: tuple[str, ...] = ()
    ab_parts: tuple[int, ...] = ()
    for option in parts:
        key, eq, value = option.partition("=")
        if eq:
            if key not in _OPTIONS_BY_KIND[kind]:
                known = ", ".join(f"{k}=N" for k in _OPTIONS_BY_KIND[kind]) or "none"
                raise DataError(f"{text}: unknown option {key!r} for {kind} (known: {known})")
            if key == "crops":
                crops = _positive_int(value, "crops", text)
            elif key == "parts":
                ab_parts = _part_numbers(value, text)
            else:
                val_count = _positive_int(value, "val", text)
        elif kind == "cifar100" and option and not labels:
            labels = tuple(label.strip() for label in option.split(",") if label.strip())
        else:
            raise DataError(f"{text}: unexpected option {option!r} for {kind}")
    return SourceSpec(
        kind=kind,
        path=Path(path_text).expanduser().absolute(),
        crops=crops,
        labels=labels,
        val_count=val_count,
        parts=ab_parts,
        text=text,
    )


def _part_numbers(text: str, source: str) -> tuple[int, ...]:
    """``"1,3"`` -> ``(1, 3)``: distinct ab part numbers >= 1, sorted."""
    numbers = []
    for piece in text.split(","):
        try:
            number = int(piece)
        except ValueError:
            raise DataError(f"{source}: parts must be ab part numbers such as 1 or 1,2, got {text!r}") from None
        if number < 1:
            raise DataError(f"{source}: ab part numbers start at 1, got {number}")
        numbers.append(number)
    return tuple(sorted(set(numbers)))


@dataclass
class DataConfig:
    """Which photos to train on and how to turn them into ``(L, ab)`` training pairs.

    Attributes:
        sources: source strings (see :mod:`tinct.data.config`).
        size: training crop side S in pixels; items are ``(1, S, S)`` L and ``(2, S, S)`` ab.
        random_crop: random S x S crops of each tile for training (else the centre crop).
        hflip: random horizontal flips for training.
        val_fraction, test_fraction: share of each source's photos held out (exact counts,
            rounded); CIFAR-100 follows its own train/test files instead.
        split_seed: seed of the train/val/test assignment (and of the ``max_images`` sample).
        classes: class subset for class layouts (``caltech101`` folders, CIFAR-100 fine label
            names); other sources ignore it.
        max_images: keep a deterministic random sample of this many photos (before splitting).
        filter_min_colorfulness: drop tiles whose Hasler-Suesstrunk colourfulness is lower.
        filter_brightness: keep tiles whose mean L (0-100) lies in ``[lo, hi]``.
        filter_min_chroma: drop tiles whose mean CIELAB chroma is lower (3 drops near-gray).
        cache_dir: folder of the preprocessed cache; ``None`` decodes photos at every access.
        crops_per_large_image: tiles taken from each large photo (short side >= 2 x tile side):
            the whole view plus ``N - 1`` crops at twice the scale.
        cache_side: side of the stored tiles; default ``ceil(1.125 * size)`` with random crops
            (so crops still vary) and ``size`` without.
        build_workers: threads used to decode photos while building the cache or scanning.
        exclude: photo keys (``<source folder name>/<path inside it>``, e.g.
            ``caltech101/sunflower/image_0001.jpg``) left out of every split; a key that no
            source holds is an error, so a typo cannot silently include a photo.
    """

    sources: list[str] = field(default_factory=list)
    size: int = 128
    random_crop: bool = True
    hflip: bool = True
    val_fraction: float = 0.05
    test_fraction: float = 0.0
    split_seed: int = 0
    classes: list[str] | None = None
    max_images: int | None = None
    filter_min_colorfulness: float | None = None
    filter_brightness: tuple[float, float] | None = None
    cache_dir: str | None = None
    crops_per_large_image: int = 1
    cache_side: int | None = None
    filter_min_chroma: float | None = None
    build_workers: int = 2
    exclude: list[str] = field(default_factory=list)

    def __post_init__(self):
        if isinstance(self.sources, str):
            self.sources = [self.sources]
        self.sources = [str(s) for s in self.sources]
        if self.classes is not None:
            if isinstance(self.classes, str):
                self.classes = [self.classes]
            self.classes = [str(c) for c in self.classes]
        if self.filter_brightness is not None:
            lo_hi = tuple(float(v) for v in self.filter_brightness)
            if len(lo_hi) != 2 or not lo_hi[0] <= lo_hi[1]:
                raise DataError(f"filter_brightness must be (lo, hi) with lo <= hi, got {self.filter_brightness}")
            self.filter_brightness = lo_hi
        if self.cache_dir is not None:
            self.cache_dir = str(self.cache_dir)
        if not isinstance(self.size, int) or self.size < 1:
            raise DataError(f"size must be a positive integer, got {self.size!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise DataError(f"{name} must be in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise DataError(
                f"val_fraction + test_fraction must be < 1, got {self.val_fraction} + {self.test_fraction}"
            )
        if self.max_images is not None and self.max_images < 1:
            raise DataError(f"max_images must be >= 1 or None, got {self.max_images}")
        if self.crops_per_large_image < 1:
            raise DataError(f"crops_per_large_image must be >= 1, got {self.crops_per_large_image}")
        if self.cache_side is not None and self.cache_side < self.size:
            raise DataError(f"cache_side ({self.cache_side}) must be >= size ({self.size})")
        if self.build_workers < 1:
            raise DataError(f"build_workers must be >= 1, got {self.build_workers}")
        for spec in self.sources:
            parse_source(spec)  # fail early on a malformed source string

    @property
    def tile_side(self) -> int:
        """Side of the prepared (cached) tiles from which training crops are cut."""
        if self.cache_side is not None:
            return self.cache_side
        return math.ceil(self.size * 1.125) if self.random_crop else self.size

    def source_specs(self) -> list[SourceSpec]:
        return [parse_source(s) for s in self.sources]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (for checkpoints and run logs)."""
        d = dataclasses.asdict(self)
        if d["filter_brightness"] is not None:
            d["filter_brightness"] = list(d["filter_brightness"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error that lists the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(f"unknown DataConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)
