"""The photo collections tinct reads, each as a list of :class:`ImageRecord` plus a pixel loader.

Kinds (see :mod:`tinct.data.config` for the source-string grammar):

* ``folder`` / ``coco``: every image under a folder (``tinct.io.list_images``: jpg, jpeg, png,
  webp, tif, tiff, bmp; recursive; hidden files skipped), decoded by ``tinct.io.read_rgb``.
* ``caltech101``: ``<root>/<class>/*.jpg``. ``BACKGROUND_Google`` (clutter) and ``Faces_easy``
  (crops of ``Faces``) are left out unless ``DataConfig.classes`` names them.
* ``cifar100``: the Python version of CIFAR-100: ``train``, ``test`` and ``meta``, each a pickle
  of a dict with byte-string keys; ``data`` is uint8 ``(N, 3072)``, every row one 32 x 32 image
  stored as its R, G and B planes in row-major order. These are read with
  ``pickle.load(f, encoding="bytes")``: that is the dataset's own format, and the only place in
  tinct that unpickles anything, so only point it at a copy of the official archive (the
  downloader checks its SHA-256).
* ``lab-arrays``: seed 002's Kaggle layout: ``gray_scale.npy`` (N, H, W) uint8 holding L and
  ``ab1.npy``, ``ab2.npy``, ... each (n_i, H, W, 2) uint8 holding a and b for consecutive
  images: part k covers rows ``n_1 + ... + n_(k-1)`` onwards of ``gray_scale.npy``. The values
  are OpenCV's 8-bit Lab (L * 255 / 100, a + 128, b + 128), the encoding
  :func:`tinct.data.preprocess.decode_lab8` turns back into Lab units. Arrays are memory-mapped
  (``allow_pickle=False``). The parts on disk must run from ``ab1.npy`` without a gap (their
  sizes place every later part), but need not reach the end of ``gray_scale.npy``: a folder
  with only ``ab1.npy`` holds that part's images. ``parts=N,M`` keeps only those parts' images
  (seed 002 trained in stages, one part after another). A photo's key is its row in
  ``gray_scale.npy``, so its split is the same whichever parts are chosen.

A source that holds no usable photos, or files that are not what its kind needs, raises
:class:`tinct.errors.DataError` (a ``ValueError``) naming the source or file; a folder that does
not exist stays a ``NotADirectoryError`` (a missing CIFAR-100 file a ``FileNotFoundError``).
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinct.data.config import DataConfig, SourceSpec
from tinct.errors import DataError
from tinct.io import list_images, read_rgb

__all__ = ["ImageRecord", "Source", "open_sources", "CALTECH_EXCLUDED_BY_DEFAULT"]

CALTECH_EXCLUDED_BY_DEFAULT = ("BACKGROUND_Google", "Faces_easy")
_CIFAR_SIDE = 32


@dataclass(frozen=True)
class ImageRecord:
    """One photo of a source.

    Attributes:
        source: index of its source in ``DataConfig.sources``.
        key: stable name ``<source folder name>/<path inside it>`` (CIFAR: ``.../train/00042``);
            it decides the photo's split and the position of its extra crops.
        path: the file to decode, or ``None`` for array sources.
        item: row in the source's arrays, or ``None`` for files.
        official_split: ``"train"`` / ``"test"`` where the dataset defines one (CIFAR-100).
        crops: tiles wanted if the photo is large (``crops_per_large_image`` or ``crops=N``).
        label: class name (folder or CIFAR fine label), if any.
    """

    source: int
    key: str
    path: Path | None
    item: int | None
    official_split: str | None
    crops: int
    label: str | None = None


class Source:
    """Base class: a source lists its records and its files, and loads a record's pixels."""

    #: ``"rgb"`` (pixels are uint8 sRGB) or ``"lab8"`` (uint8 OpenCV 8-bit Lab).
    encoding = "rgb"

    def __init__(self, spec: SourceSpec, index: int, config: DataConfig):
        self.spec = spec
        self.index = index
        self.root = spec.path
        if not self.root.is_dir():
            named = "" if spec.text == str(self.root) else f"{spec.text}: "  # a bare path is named once
            raise NotADirectoryError(f"{named}{self.root} is not a folder")
        self.crops = spec.crops if spec.crops is not None else self._default_crops(config)

    def _default_crops(self, config: DataConfig) -> int:
        return config.crops_per_large_image

    def records(self) -> list[ImageRecord]:  # pragma: no cover - abstract
        raise NotImplementedError

    def data_files(self) -> list[Path] | None:
        """Files that hold every record's pixels (array sources), or ``None`` (one file per record)."""
        return None

    def load(self, record: ImageRecord) -> np.ndarray:  # pragma: no cover - abstract
        """Pixels of a record: uint8 ``(H, W, 3)`` in this source's :attr:`encoding`."""
        raise NotImplementedError

    def relative_name(self, path: Path) -> str:
        """``<source folder name>/<path inside it>``, with forward slashes."""
        text, prefix = str(path), str(self.root) + os.sep
        if text.startswith(prefix):  # string slicing: pathlib is slow for thousands of files
            inside = text[len(prefix) :].replace(os.sep, "/")
        else:
            inside = path.relative_to(self.root).as_posix()  # raises for a path outside the source
        return f"{self.root.name}/{inside}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.canonical()!r})"


class FolderSource(Source):
    """Image files under a folder (``folder`` and ``coco`` kinds)."""

    def records(self) -> list[ImageRecord]:
        files = list_images(self.root)
        if not files:
            hint = ""
            if (self.root / "meta").exists() and (self.root / "train").exists():
                hint = f" (for CIFAR-100 use 'cifar100:{self.root}')"
            elif any(self.root.rglob("gray_scale.npy")):
                hint = f" (for LAB arrays use 'lab-arrays:{self.root}')"
            raise DataError(f"{self.spec.text}: no images found under {self.root}{hint}")
        return [
            ImageRecord(self.index, self.relative_name(p), p, None, None, self.crops, None) for p in files
        ]

    def load(self, record: ImageRecord) -> np.ndarray:
        return read_rgb(record.path)


class CaltechSource(FolderSource):
    """``<root>/<class>/<image>``: one class per top-level folder."""

    def __init__(self, spec: SourceSpec, index: int, config: DataConfig):
        super().__init__(spec, index, config)
        self.classes = config.classes

    def _default_crops(self, config: DataConfig) -> int:
        return 1  # object photos are framed on the object: keep the whole view

    def class_names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def records(self) -> list[ImageRecord]:
        available = self.class_names()
        if self.classes is not None:
            missing = sorted(set(self.classes) - set(available))
            if missing:
                raise DataError(
                    f"{self.spec.text}: unknown class(es) {missing}; available: {', '.join(available)}"
                )
            chosen = [c for c in available if c in set(self.classes)]
        else:
            chosen = [c for c in available if c not in CALTECH_EXCLUDED_BY_DEFAULT]
        records = []
        for name in chosen:
            for p in list_images(self.root / name):
                records.append(ImageRecord(self.index, self.relative_name(p), p, None, None, self.crops, name))
        if not records:
            raise DataError(f"{self.spec.text}: no images found in the class folders of {self.root}")
        return records


def _load_cifar_pickle(path: Path) -> dict:
    # CIFAR-100's own format is a Python pickle (see the module docstring for why this is here).
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="bytes")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (CIFAR-100 needs train, test and meta)") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a CIFAR-100 pickle ({exc})") from None


class CifarSource(Source):
    """CIFAR-100, Python version, filtered by fine label.

    The chosen labels are those of the source option (``cifar100:PATH:52,oak_tree``) together
    with ``DataConfig.classes`` (fine label names or numbers); neither given = all 100.
    """

    _FILES = ("meta", "test", "train")

    def __init__(self, spec: SourceSpec, index: int, config: DataConfig):
        super().__init__(spec, index, config)
        self.classes = config.classes
        self._images: dict[str, np.ndarray] = {}  # split -> uint8 (n, 32, 32, 3) of chosen labels
        self._rows: dict[str, np.ndarray] = {}  # split -> row numbers in the pickle
        self._labels: dict[str, np.ndarray] = {}
        self.names: list[str] = []

    def data_files(self) -> list[Path]:
        return [self.root / name for name in self._FILES]

    def _chosen_labels(self, names: list[str]) -> set[int]:
        wanted: list[str] = list(self.spec.labels) + list(self.classes or [])
        if not wanted:
            return set(range(len(names)))
        chosen = set()
        for label in wanted:
            if label.isdigit():
                number = int(label)
                if not 0 <= number < len(names):
                    raise DataError(f"{self.spec.text}: fine label {number} out of range 0..{len(names) - 1}")
                chosen.add(number)
            elif label in names:
                chosen.add(names.index(label))
            else:
                raise DataError(f"{self.spec.text}: unknown fine label {label!r}; known: {', '.join(names)}")
        return chosen

    def _load(self) -> None:
        if self._images:
            return
        meta = _load_cifar_pickle(self.root / "meta")
        if b"fine_label_names" not in meta:
            raise DataError(f"{self.root / 'meta'}: no b'fine_label_names' (is this CIFAR-100?)")
        self.names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"fine_label_names"]]
        chosen = np.array(sorted(self._chosen_labels(self.names)))
        for split in ("train", "test"):
            batch = _load_cifar_pickle(self.root / split)
            if b"data" not in batch or b"fine_labels" not in batch:
                raise DataError(f"{self.root / split}: expected keys b'data' and b'fine_labels'")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[b"fine_labels"], dtype=np.int64)
            if data.ndim != 2 or data.shape[1] != 3 * _CIFAR_SIDE * _CIFAR_SIDE or len(labels) != len(data):
                raise DataError(f"{self.root / split}: expected data (N, 3072) and N labels, got {data.shape}")
            rows = np.flatnonzero(np.isin(labels, chosen))
            # (N, 3072) -> (N, 3, 32, 32) planes -> (N, 32, 32, 3) pixels
            self._images[split] = data[rows].reshape(-1, 3, _CIFAR_SIDE, _CIFAR_SIDE).transpose(0, 2, 3, 1).copy()
            self._rows[split] = rows
            self._labels[split] = labels[rows]

    def records(self) -> list[ImageRecord]:
        self._load()
        records = []
        for split in ("train", "test"):
            for i, (row, label) in enumerate(zip(self._rows[split], self._labels[split])):
                key = f"{self.root.name}/{split}/{int(row):05d}"
                records.append(
                    ImageRecord(self.index, key, None, i, split, self.crops, self.names[int(label)])
                )
        if not records:
            raise DataError(f"{self.spec.text}: no images with the chosen labels")
        return records

    def load(self, record: ImageRecord) -> np.ndarray:
        self._load()
        return self._images[record.official_split][record.item]


_AB_PART = re.compile(r"^ab(\d+)\.npy$")


def _map_array(path: Path) -> np.ndarray:
    """``path`` memory-mapped read-only (``allow_pickle=False``); a file that is not a plain
    ``.npy`` array (pickled, truncated, another format) is a :class:`DataError` naming it."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a NumPy array file ({exc})") from None


class LabArraySource(Source):
    """Seed 002's ``gray_scale.npy`` + ``ab1.npy``, ``ab2.npy``, ... (8-bit Lab)."""

    encoding = "lab8"

    def __init__(self, spec: SourceSpec, index: int, config: DataConfig):
        super().__init__(spec, index, config)
        grays = sorted(self.root.rglob("gray_scale.npy"))
        if len(grays) != 1:
            found = ", ".join(str(g) for g in grays) or "none"
            raise DataError(f"{spec.text}: expected exactly one gray_scale.npy under {self.root}, found {found}")
        parts = [p for p in self.root.rglob("ab*.npy") if _AB_PART.match(p.name)]
        if not parts:
            raise DataError(f"{spec.text}: no ab1.npy, ab2.npy, ... under {self.root}")
        numbers = [int(_AB_PART.match(p.name).group(1)) for p in parts]
        if len(set(numbers)) != len(numbers):
            raise DataError(f"{spec.text}: duplicate ab part numbers in {sorted(map(str, parts))}")
        self.gray_path = grays[0]
        self.part_numbers = sorted(numbers)
        self.ab_paths = [p for _, p in sorted(zip(numbers, parts))]
        gap = next((k for k in range(1, self.part_numbers[-1] + 1) if k not in numbers), None)
        if gap is not None:
            # Part k's rows start after parts 1 .. k-1, so their sizes are needed to place it.
            raise DataError(
                f"{spec.text}: ab{gap}.npy is missing but ab{self.part_numbers[-1]}.npy is there; the rows of a "
                f"part start after all earlier parts, so put ab1.npy ... ab{self.part_numbers[-1] - 1}.npy beside it "
                "and choose parts with ':parts=N'"
            )
        unknown = sorted(set(spec.parts) - set(numbers))
        if unknown:
            raise DataError(
                f"{spec.text}: no ab part(s) {unknown} under {self.root}; parts found: {self.part_numbers}"
            )
        self.chosen_parts = list(spec.parts) or self.part_numbers
        self._arrays: tuple[np.ndarray, list[np.ndarray], np.ndarray] | None = None
        self._check()

    def _open(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        if self._arrays is None:
            gray = _map_array(self.gray_path)
            abs_ = [_map_array(p) for p in self.ab_paths]
            starts = np.cumsum([0] + [len(a) for a in abs_])
            self._arrays = (gray, abs_, starts)
        return self._arrays

    def _check(self) -> None:
        gray, abs_, starts = self._open()
        if gray.dtype != np.uint8 or gray.ndim != 3:
            raise DataError(f"{self.gray_path}: expected uint8 (N, H, W), got {gray.dtype} {gray.shape}")
        for path, ab in zip(self.ab_paths, abs_):
            if ab.dtype != np.uint8 or ab.ndim != 4 or ab.shape[1:] != (*gray.shape[1:], 2):
                raise DataError(
                    f"{path}: expected uint8 (n, {gray.shape[1]}, {gray.shape[2]}, 2), got {ab.dtype} {ab.shape}"
                )
        if starts[-1] > len(gray):
            raise DataError(
                f"{self.spec.text}: ab parts hold {starts[-1]} images but gray_scale.npy holds only {len(gray)}"
            )

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_arrays"] = None  # memory maps reopen in the receiving process
        return state

    def data_files(self) -> list[Path]:
        """``gray_scale.npy`` and the chosen ab parts (earlier parts lend only their sizes)."""
        return [self.gray_path, *(p for k, p in zip(self.part_numbers, self.ab_paths) if k in self.chosen_parts)]

    def records(self) -> list[ImageRecord]:
        _, _, starts = self._open()
        name = self.relative_name(self.gray_path).rsplit("/", 1)[0]
        rows = [
            i
            for k, start, stop in zip(self.part_numbers, starts[:-1], starts[1:])
            if k in self.chosen_parts
            for i in range(int(start), int(stop))
        ]
        return [ImageRecord(self.index, f"{name}/{i:06d}", None, i, None, self.crops, None) for i in rows]

    def load(self, record: ImageRecord) -> np.ndarray:
        gray, abs_, starts = self._open()
        i = record.item
        part = int(np.searchsorted(starts, i, side="right")) - 1
        lab8 = np.empty((*gray.shape[1:], 3), dtype=np.uint8)
        lab8[..., 0] = gray[i]
        lab8[..., 1:] = abs_[part][i - starts[part]]
        return lab8


_SOURCE_CLASSES = {
    "folder": FolderSource,
    "coco": FolderSource,
    "caltech101": CaltechSource,
    "cifar100": CifarSource,
    "lab-arrays": LabArraySource,
}


def open_sources(config: DataConfig) -> list[Source]:
    """One :class:`Source` per entry of ``config.sources`` (folders are checked now)."""
    if not config.sources:
        raise DataError("DataConfig.sources is empty: give at least one folder or 'kind:path'")
    specs = config.source_specs()
    if config.classes is not None and not any(spec.kind in ("caltech101", "cifar100") for spec in specs):
        raise DataError(
            f"classes {config.classes} only apply to caltech101: and cifar100: sources, and none is given "
            f"(a Caltech-101 folder needs the prefix: 'caltech101:PATH')"
        )
    return [_SOURCE_CLASSES[spec.kind](spec, i, config) for i, spec in enumerate(specs)]
