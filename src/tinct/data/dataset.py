"""Training, validation and test datasets of ``(L, ab)`` pairs in Lab units.

Pipeline: sources -> selected photos (class list, ``max_images``) -> tiles (cache or live, see
:mod:`tinct.data.cache`) -> split by *photo* (so crops of one photo never straddle train and
validation) -> per-tile filters -> S x S crops.

Splits, for each source separately (exact counts, rounded half up):
    the source's photos are ordered by SHA-256 of ``"<split_seed>:split:<photo key>"``; the first
    ``round(test_fraction * n)`` are test, the next ``round(val_fraction * n)`` validation, the rest
    training. The order depends only on the seed and the photo's own name, so the split does not
    change with the order of sources, the filters or the cache, and adding a photo moves few
    others.
CIFAR-100 keeps its own files: ``test`` is the test split (``test_fraction`` is not used for it)
    and the validation split is the first V photos of ``train`` in the order above, V = ``val=N``
    if given, else as many as the test split. For seed 000 (``cifar100:<dir>:52``: class 52,
    ``oak_tree``, which the seed calls "trees"; 500 train + 100 test images) that gives the
    seed's 400 / 100 / 100.

Filters (``filter_brightness``, ``filter_min_colorfulness``, ``filter_min_chroma``) judge each
tile by the statistics recorded when it was made, and apply to every split, as seed 002
filtered its whole dataset before splitting; ``dataset.info["filtered_out"]`` counts the drops.

Items: ``{"l": float32 (1, S, S) L in [0, 100], "ab": float32 (2, S, S) a, b in Lab units}``.
Training items are a random S x S crop of a tile (every tile of a training photo is an item)
with a random horizontal flip, both drawn from a BLAKE2b hash of ``(seed, epoch, index)``:
call ``set_epoch(epoch)`` before each epoch and a resumed run sees the same crops. Validation
and test items are the centre S x S crop of each photo's whole-view tile (tile 0), unflipped.
"""

from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import torch
from torch.utils.data import Dataset

from tinct.data.cache import TileStore, open_store
from tinct.data.config import DataConfig
from tinct.data.manifest import FileHashes, manifest_text
from tinct.data.preprocess import AB8_OFFSET, L8_SCALE, STAT_NAMES
from tinct.data.sources import ImageRecord, Source, open_sources
from tinct.errors import DataError

__all__ = [
    "LabDataset",
    "make_datasets",
    "make_test_dataset",
    "make_splits",
    "ab_samples",
    "sample_photo",
    "manifest_lines",
    "manifest_sha256",
    "select_records",
    "assign_splits",
]

SPLITS = ("train", "val", "test")


def _rank(seed: int, purpose: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}:{key}".encode()).digest()[:8], "big")


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def select_records(sources: list[Source], config: DataConfig) -> list[ImageRecord]:
    """All photos of all sources less ``exclude``, reduced to a seeded sample of ``max_images`` if set."""
    records = [r for s in sources for r in s.records()]
    if config.exclude:
        excluded = set(config.exclude)
        unknown = excluded - {r.key for r in records}
        if unknown:
            raise DataError(f"exclude names photos that no source holds: {sorted(unknown)[:5]}")
        records = [r for r in records if r.key not in excluded]
    if config.max_images is not None and len(records) > config.max_images:
        order = sorted(range(len(records)), key=lambda i: _rank(config.split_seed, "sample", records[i].key))
        records = [records[i] for i in sorted(order[: config.max_images])]
    return records


def assign_splits(records: list[ImageRecord], sources: list[Source], config: DataConfig) -> list[str]:
    """The split (``"train"``, ``"val"``, ``"test"``) of every record (see the module docstring)."""
    split = ["train"] * len(records)
    by_source: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        by_source.setdefault(r.source, []).append(i)
    for source_index, members in by_source.items():
        ranked = sorted(members, key=lambda i: _rank(config.split_seed, "split", records[i].key))
        if any(records[i].official_split is not None for i in members):
            tests = [i for i in ranked if records[i].official_split == "test"]
            pool = [i for i in ranked if records[i].official_split != "test"]
            spec = sources[source_index].spec
            n_val = spec.val_count if spec.val_count is not None else len(tests)
            if n_val > len(pool):
                raise DataError(f"{spec.text}: val={n_val} is more than the {len(pool)} training images")
            for i in tests:
                split[i] = "test"
            for i in pool[:n_val]:
                split[i] = "val"
            continue
        n = len(ranked)
        n_test = _round_half_up(config.test_fraction * n)
        n_val = _round_half_up(config.val_fraction * n)
        for i in ranked[:n_test]:
            split[i] = "test"
        for i in ranked[n_test : n_test + n_val]:
            split[i] = "val"
    return split


def _filter_mask(stats: np.ndarray, config: DataConfig) -> np.ndarray:
    """Tiles to keep under the configured filters; ``stats`` is ``(n, 3)`` (see ``STAT_NAMES``)."""
    mean_l, colorful, mean_chroma = (stats[:, STAT_NAMES.index(n)] for n in STAT_NAMES)
    keep = np.ones(len(stats), dtype=bool)
    if config.filter_brightness is not None:
        lo, hi = config.filter_brightness
        keep &= (mean_l >= lo) & (mean_l <= hi)
    if config.filter_min_colorfulness is not None:
        keep &= colorful >= config.filter_min_colorfulness
    if config.filter_min_chroma is not None:
        keep &= mean_chroma >= config.filter_min_chroma
    return keep


class LabDataset(Dataset):
    """S x S Lab crops of a list of tiles.

    Attributes:
        store: the :class:`~tinct.data.cache.TileStore` the tiles come from.
        tiles: int64 tile numbers, one per item.
        size: crop side S.
        train: random crops / flips (True) or centre crops (False).
        split: ``"train"``, ``"val"`` or ``"test"``.
        info: counts for logs (photos, tiles, filtered, unreadable, cache folder).
        label_names: sorted class names of the photos that have one (Caltech-101 folders,
            CIFAR-100 fine labels), shared by the three splits; items carry their index.
    """

    def __init__(
        self,
        store: TileStore,
        tiles: np.ndarray,
        size: int,
        *,
        train: bool,
        random_crop: bool = True,
        hflip: bool = True,
        seed: int = 0,
        split: str = "train",
        info: dict | None = None,
        label_names: list[str] | None = None,
    ):
        if size > store.side:
            raise DataError(f"crop size {size} is larger than the tile side {store.side}")
        self.store = store
        self.tiles = np.asarray(tiles, dtype=np.int64)
        self.size = size
        self.train = train
        self.random_crop = random_crop and train
        self.hflip = hflip and train
        self.seed = int(seed)
        self.epoch = 0
        self.split = split
        self.info = info or {}
        self.label_names = list(label_names or [])
        index = {name: i for i, name in enumerate(self.label_names)}
        # Label index of each photo of the store (-1: none), looked up per item.
        self._record_label = np.array([index.get(r.label, -1) for r in store.records], dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Choose the crops and flips of this epoch (a pure function of seed, epoch and index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.tiles)

    def _record_index(self, index: int) -> int:
        """Position in ``store.records`` of the photo item ``index`` comes from."""
        return int(self.store.tile_record[self.tiles[index]])

    def photo_key(self, index: int) -> str:
        """Name of the photo item ``index`` comes from."""
        return self.store.records[self._record_index(index)].key

    def photo_records(self) -> list:
        """The photos this dataset's items come from, once each, sorted by key
        (:class:`~tinct.data.sources.ImageRecord`: ``key``, ``path`` or ``None`` for arrays)."""
        records = [self.store.records[r] for r in np.unique(self.store.tile_record[self.tiles])]
        return sorted(records, key=lambda record: record.key)

    def crop_box(self, index: int) -> tuple[int, int, bool]:
        """``(top, left, flipped)`` of item ``index`` at the current epoch."""
        margin = self.store.side - self.size
        if not (self.random_crop or self.hflip):
            return margin // 2, margin // 2, False
        # Three 64-bit draws from a hash of (seed, epoch, index): the same on every machine and
        # far cheaper per item than seeding a numpy Generator (modulo bias < 2^-50).
        digest = hashlib.blake2b(struct.pack("<qqq", self.seed, self.epoch, int(index)), digest_size=24).digest()
        u_top, u_left, u_flip = struct.unpack("<QQQ", digest)
        if self.random_crop:
            top, left = u_top % (margin + 1), u_left % (margin + 1)
        else:
            top = left = margin // 2
        flipped = self.hflip and (u_flip >> 63) == 1
        return top, left, flipped

    def tile_lab(self, index: int) -> np.ndarray:
        """The whole tile item ``index`` is cut from: float32 ``(3, T, T)`` Lab (L, a, b)."""
        lab = self.store.lab(int(self.tiles[index]))
        if lab.dtype != np.uint8:
            return np.asarray(lab, dtype=np.float32)
        lab = lab.astype(np.float32)
        lab[0] *= 1.0 / L8_SCALE
        lab[1:] -= AB8_OFFSET
        return lab

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = index % len(self)
        top, left, flipped = self.crop_box(index)
        lab = self.store.lab(int(self.tiles[index]))  # (3, T, T)
        crop = lab[:, top : top + self.size, left : left + self.size]
        if flipped:
            crop = crop[:, :, ::-1]
        # NumPy, not torch, for the element-wise work: torch would spread these tiny ops over
        # its intra-op threads, which costs milliseconds per item when the cores are busy training.
        if crop.dtype == np.uint8:
            crop = crop.astype(np.float32)
            crop[0] *= 1.0 / L8_SCALE
            crop[1:] -= AB8_OFFSET
        else:
            crop = np.ascontiguousarray(crop)
        crop = torch.from_numpy(crop)
        label = self._record_label[self._record_index(index)]
        return {"l": crop[0:1], "ab": crop[1:3], "label": torch.tensor(label)}

    def __repr__(self) -> str:
        return f"LabDataset({self.split}, {len(self)} items, S={self.size}, tiles of {self.store.side})"


def make_splits(config: DataConfig, seed: int = 0) -> dict[str, LabDataset]:
    """All three datasets (``"train"``, ``"val"``, ``"test"``) sharing one tile store."""
    sources = open_sources(config)
    records = select_records(sources, config)
    store = open_store(sources, records, config)
    record_split = assign_splits(records, sources, config)
    keep = _filter_mask(store.stats, config)
    label_names = sorted({r.label for r in store.records if r.label is not None})
    datasets = {}
    for split in SPLITS:
        train = split == "train"
        tiles = []
        photos = 0
        for r, name in enumerate(record_split):
            count = int(store.tile_counts[r])
            if name != split or count == 0:
                continue
            photos += 1
            first = int(store.first_tile[r])
            tiles.extend(range(first, first + (count if train else 1)))
        tiles = np.asarray(tiles, dtype=np.int64)
        kept = tiles[keep[tiles]] if len(tiles) else tiles
        info = {
            "split": split,
            "photos": photos,
            "tiles": len(tiles),
            "items": len(kept),
            "filtered_out": len(tiles) - len(kept),
            "unreadable": [key for key, _ in store.broken],
            "tile_side": store.side,
            "cache": str(store.location) if store.location is not None else None,
        }
        datasets[split] = LabDataset(
            store,
            kept,
            config.size,
            train=train,
            random_crop=config.random_crop,
            hflip=config.hflip,
            seed=seed,
            split=split,
            info=info,
            label_names=label_names,
        )
    return datasets


def make_datasets(config: DataConfig, seed: int = 0) -> tuple[LabDataset, LabDataset]:
    """(train, val) datasets of Lab crops (see the module docstring).

    Items are ``dict(l=float32 (1, S, S) L in [0, 100], ab=float32 (2, S, S) Lab units,
    label=int64 scalar)``, ``label`` the index of the photo's class in ``label_names`` or -1. The
    training set draws its random crop and flip from ``(seed, epoch, index)``; call
    ``train.set_epoch(epoch)`` at the start of each epoch. Validation items are deterministic
    centre crops.
    """
    splits = make_splits(config, seed)
    return splits["train"], splits["val"]


def make_test_dataset(config: DataConfig, seed: int = 0) -> LabDataset:
    """The test split (deterministic centre crops); empty when ``test_fraction`` is 0 (CIFAR: its test file)."""
    return make_splits(config, seed)["test"]


def ab_samples(dataset, n: int, seed: int = 0) -> torch.Tensor:
    """``(n, 2)`` float32 ab values (Lab units) of random pixels of random items of ``dataset``.

    Pixels come from up to 512 items (chosen without replacement), the same number from each,
    so that statistics such as colour priors see many photos. Deterministic given ``seed`` (and
    the dataset's epoch).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if len(dataset) == 0:
        raise DataError("cannot sample ab values from an empty dataset")
    rng = np.random.default_rng(seed)
    m = min(len(dataset), 512, n)
    items = rng.choice(len(dataset), size=m, replace=False)
    per_item = math.ceil(n / m)
    chunks = []
    for i in items:
        ab = dataset[int(i)]["ab"].reshape(2, -1)
        pick = rng.integers(0, ab.shape[1], size=per_item)
        chunks.append(ab[:, torch.from_numpy(pick)].T)
    samples = torch.cat(chunks)
    order = torch.from_numpy(rng.permutation(len(samples))[:n])
    return samples[order].to(torch.float32).contiguous()


def sample_photo(dataset, seed: int = 0) -> torch.Tensor:
    """One training photo chosen by ``seed``: float32 ``(3, T, T)`` Lab of its whole tile
    (a :class:`LabDataset`), or of the item itself for other datasets of ``{"l", "ab"}`` items.

    Seed 001 derived its palette from "a sample image from the dataset"; this is that image.
    """
    if len(dataset) == 0:
        raise DataError("cannot pick a sample photo from an empty dataset")
    index = int(np.random.default_rng(seed).integers(len(dataset)))
    if hasattr(dataset, "tile_lab"):
        return torch.from_numpy(dataset.tile_lab(index))
    item = dataset[index]
    return torch.cat([torch.as_tensor(item["l"]), torch.as_tensor(item["ab"])]).float()


def manifest_lines(config: DataConfig) -> list[str]:
    """The manifest's ``"<relative path>  <sha256>"`` lines, sorted (format in :mod:`tinct.data.manifest`)."""
    sources = open_sources(config)
    chosen = select_records(sources, config)
    hashes = FileHashes(config.cache_dir)
    lines = []
    for s in sources:
        files = s.data_files()
        if files:
            lines.extend(f"{s.relative_name(p)}  {hashes.sha256(p)}" for p in files)
    lines.extend(f"{r.key}  {hashes.sha256(r.path)}" for r in chosen if r.path is not None)
    hashes.save()
    return sorted(lines)


def manifest_sha256(config: DataConfig) -> str:
    """SHA-256 (hex) of the files a config trains on; exact format in :mod:`tinct.data.manifest`."""
    return hashlib.sha256(manifest_text(manifest_lines(config)).encode("utf-8")).hexdigest()
