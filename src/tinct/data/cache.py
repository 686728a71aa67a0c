"""Tile stores: where a dataset's prepared tiles come from (a disk cache, or decoding on the fly).

Both stores scan every selected photo once: a photo that cannot be read is reported with a
:class:`BrokenImageWarning` that names it and is left out (never replaced by another photo),
and each tile's statistics (mean L, colourfulness, mean chroma) are recorded so the seed-002
filters can be applied without decoding again.

The cache (``DataConfig.cache_dir`` set) lives in ``<cache_dir>/tiles-T<side>-<key>/``:

    tiles.u8     raw uint8 array (count, 3, T, T), C order: tile t, channel (L8, a8, b8), row, column,
                 in the 8-bit Lab encoding of :mod:`tinct.data.preprocess`; read with ``numpy.memmap``
    stats.npy    float32 (count, 3): mean L, colourfulness, mean chroma of each tile, computed
                 from the unquantised tile (so filters decide the same with and without cache)
    index.json   format version, key, side, count, and for each photo in order its key, first
                 tile and tile count (0 = unreadable, with the reason under "broken")

Why 8-bit Lab rather than 8-bit sRGB: the loader then needs one affine step per channel, not
the sRGB -> Lab conversion (two power laws and a matrix) for every pixel of every epoch; the
price is at most 0.196 in L and 0.5 in a, b (below a just-noticeable difference), and the
LAB-array source is stored exactly since it already is 8-bit Lab.

The key is a SHA-256 over the cache format version, the tile side, each source (kind, absolute
path, tiles per large photo) and every selected photo's key, byte size and modification time,
so adding, removing or editing a photo builds a new cache instead of serving a stale one. Split
settings and filter thresholds are not in the key: one cache serves them all. A cache is built
under a temporary name and renamed into place when complete, so an interrupted build is never
read; leftovers of builds whose process is gone are removed at the next build. Builders take
an exclusive lock on ``<cache folder>.lock``, so processes starting together build it once.
Caches of older keys are not deleted automatically: remove folders you no longer train on.

Photos are decoded on ``DataConfig.build_workers`` threads (Pillow's decoders and resamplers
and torch release the GIL) in chunks of 16, so the Lab conversion runs once per chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent builders then both build
    fcntl = None

from tinct.data.config import DataConfig
from tinct.data.preprocess import (
    STAT_NAMES,
    decode_lab8,
    encode_lab8,
    make_tiles,
    rgb_tiles_to_lab,
    tile_stats,
)
from tinct.data.sources import ImageRecord, Source
from tinct.io import ImageReadError

__all__ = ["BrokenImageWarning", "TileStore", "CachedTileStore", "LiveTileStore", "open_store", "CACHE_FORMAT"]

log = logging.getLogger("tinct.data")

CACHE_FORMAT = 1


class BrokenImageWarning(UserWarning):
    """A training photo could not be read and was left out; the message names the file."""


@dataclass
class _PhotoResult:
    tiles: np.ndarray | None  # uint8 (k, 3, T, T) 8-bit Lab, when kept
    stats: np.ndarray  # float64 (k, 3)
    error: str | None = None


def photo_tiles_lab(source: Source, record: ImageRecord, side: int, which: list[int] | None = None):
    """A photo's tiles as float32 Lab ``(k, T, T, 3)`` (the uncached path, one photo at a time)."""
    tiles = np.stack(make_tiles(source.load(record), side, record.crops, record.key, which))
    return decode_lab8(tiles) if source.encoding == "lab8" else rgb_tiles_to_lab(tiles)


def _process_chunk(sources: list[Source], records: list[ImageRecord], side: int, keep_tiles: bool):
    """Tiles and statistics of a few photos; Lab conversion batched over all their tiles."""
    pixel_tiles: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for record in records:
        try:
            tiles = make_tiles(sources[record.source].load(record), side, record.crops, record.key)
            pixel_tiles.append(np.stack(tiles))
            errors.append(None)
        except ImageReadError as exc:
            pixel_tiles.append(None)
            errors.append(str(exc))
    stats: list[np.ndarray | None] = [None] * len(records)
    encoded: list[np.ndarray | None] = [None] * len(records)
    for encoding in ("rgb", "lab8"):
        members = [
            i
            for i, r in enumerate(records)
            if pixel_tiles[i] is not None and sources[r.source].encoding == encoding
        ]
        if not members:
            continue
        stack = np.concatenate([pixel_tiles[i] for i in members])  # (n, T, T, 3) uint8
        if encoding == "rgb":
            batch_lab = rgb_tiles_to_lab(stack)
            batch_stats = tile_stats(batch_lab, stack)
            batch_encoded = encode_lab8(batch_lab) if keep_tiles else None
        else:
            batch_lab = decode_lab8(stack)
            batch_stats = tile_stats(batch_lab)
            batch_encoded = stack
        at = 0
        for i in members:
            k = len(pixel_tiles[i])
            stats[i] = batch_stats[at : at + k]
            if keep_tiles:
                encoded[i] = np.ascontiguousarray(batch_encoded[at : at + k].transpose(0, 3, 1, 2))
            at += k
    return [
        _PhotoResult(None, np.zeros((0, len(STAT_NAMES))), errors[i])
        if errors[i] is not None
        else _PhotoResult(encoded[i], stats[i])
        for i in range(len(records))
    ]


class TileStore:
    """Tiles of the selected photos, with per-tile statistics.

    Attributes:
        side: tile side T.
        records: the photos, in order.
        first_tile: int64 ``(n_photos,)``, index of each photo's first tile.
        tile_counts: int64 ``(n_photos,)``, tiles per photo (0 = unreadable).
        stats: float32 ``(n_tiles, 3)``: mean L, colourfulness, mean chroma.
        broken: ``[(photo key, reason)]`` of unreadable photos.
        quantised: whether :meth:`lab` returns 8-bit Lab (cache) or float Lab (live).
        location: the cache folder, or ``None``.
    """

    quantised = False
    location: Path | None = None

    def __init__(self, side: int, records: list[ImageRecord], tile_counts, stats, broken):
        self.side = side
        self.records = records
        self.tile_counts = np.asarray(tile_counts, dtype=np.int64)
        self.first_tile = np.concatenate([[0], np.cumsum(self.tile_counts)[:-1]]).astype(np.int64)
        self.stats = np.asarray(stats, dtype=np.float32).reshape(-1, len(STAT_NAMES))
        self.broken = list(broken)
        self.tile_record = np.repeat(np.arange(len(records)), self.tile_counts)

    @property
    def num_tiles(self) -> int:
        return int(self.tile_counts.sum())

    def lab(self, tile: int) -> np.ndarray:  # pragma: no cover - abstract
        """Tile ``tile`` as ``(3, T, T)``: uint8 8-bit Lab if :attr:`quantised`, else float32 Lab."""
        raise NotImplementedError

    def warn_broken(self) -> None:
        for _key, reason in self.broken:
            warnings.warn(f"skipping unreadable training image: {reason}", BrokenImageWarning, stacklevel=4)


class CachedTileStore(TileStore):
    """Tiles read from a cache folder through a memory map (opened lazily, once per process)."""

    quantised = True

    def __init__(self, location: Path, records: list[ImageRecord]):
        index = json.loads((location / "index.json").read_text())
        stats = np.load(location / "stats.npy", allow_pickle=False)
        counts = [entry[2] for entry in index["photos"]]
        super().__init__(index["side"], records, counts, stats, [tuple(b) for b in index["broken"]])
        self.location = location
        self.count = index["count"]
        self.build_seconds = index.get("build_seconds")
        self._tiles: np.ndarray | None = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_tiles"] = None  # never pickle the mapped data; reopen in the worker
        return state

    @property
    def tiles(self) -> np.ndarray:
        if self._tiles is None:
            shape = (self.count, 3, self.side, self.side)
            if self.count == 0:
                self._tiles = np.zeros(shape, dtype=np.uint8)
            else:
                mapped = np.memmap(self.location / "tiles.u8", dtype=np.uint8, mode="r", shape=shape)
                self._tiles = mapped.view(np.ndarray)  # same pages, without memmap's per-slice overhead
        return self._tiles

    def lab(self, tile: int) -> np.ndarray:
        return self.tiles[tile]

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.location.iterdir())


class LiveTileStore(TileStore):
    """Tiles recomputed from the photo at every access (no disk cache)."""

    def __init__(self, sources: list[Source], side: int, records, tile_counts, stats, broken):
        super().__init__(side, records, tile_counts, stats, broken)
        self.sources = sources

    def lab(self, tile: int) -> np.ndarray:
        r = int(self.tile_record[tile])
        record = self.records[r]
        k = int(tile - self.first_tile[r])
        lab = photo_tiles_lab(self.sources[record.source], record, self.side, [k])[0]
        return np.ascontiguousarray(lab.transpose(2, 0, 1))


# ---------------------------------------------------------------------------------------------
# Scanning and building
# ---------------------------------------------------------------------------------------------


class _single_torch_thread:
    """Decode threads each run small torch ops: one intra-op thread each avoids oversubscription."""

    def __init__(self, active: bool):
        self.active = active

    def __enter__(self):
        if self.active:
            self.saved = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.active:
            torch.set_num_threads(self.saved)


_CHUNK = 16  # photos per work unit: enough to amortise the per-call cost of the Lab conversion


def _scan(sources, records, side, workers, keep_tiles, desc):
    """Yield ``(record index, _PhotoResult)`` in record order, decoding on ``workers`` threads."""
    progress = tqdm(total=len(records), desc=desc, unit="img", mininterval=1.0, disable=None, leave=False)
    chunks = [range(i, min(i + _CHUNK, len(records))) for i in range(0, len(records), _CHUNK)]

    def work(chunk):
        return _process_chunk(sources, [records[i] for i in chunk], side, keep_tiles)

    with _single_torch_thread(workers > 1), progress:
        if workers == 1 or len(chunks) < 2:
            for chunk in chunks:
                yield from zip(chunk, work(chunk))
                progress.update(len(chunk))
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinct-data") as pool:
            # Submit a few chunks ahead so finished-but-unwritten results stay bounded.
            ahead = 2 * workers
            pending = {}
            for c, chunk in enumerate(chunks):
                for d in range(c, min(c + ahead, len(chunks))):
                    if d not in pending:
                        pending[d] = pool.submit(work, chunks[d])
                yield from zip(chunk, pending.pop(c).result())
                progress.update(len(chunk))


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def cache_key(sources: list[Source], records: list[ImageRecord], side: int) -> str:
    """The SHA-256 that names a cache (see the module docstring for what goes in)."""
    h = hashlib.sha256()
    header = {
        "format": CACHE_FORMAT,
        "side": side,
        "sources": [
            {"spec": s.spec.canonical(), "crops": s.crops, "encoding": s.encoding, "type": type(s).__name__}
            for s in sources
        ],
    }
    h.update(json.dumps(header, sort_keys=True).encode())
    array_prints = {
        s.index: ";".join(f"{p.name}={_fingerprint(p)}" for p in s.data_files()) for s in sources if s.data_files()
    }
    for r in records:
        where = _fingerprint(r.path) if r.path is not None else f"{array_prints[r.source]}#{r.item}"
        h.update(f"{r.source}\t{r.key}\t{r.crops}\t{where}\n".encode())
    return h.hexdigest()


def _remove_dead_builds(cache_dir: Path) -> None:
    for leftover in cache_dir.glob("*.building-*"):
        try:
            pid = int(leftover.name.rsplit(".building-", 1)[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        if not alive:
            shutil.rmtree(leftover, ignore_errors=True)


def _cache_is_valid(location: Path, key: str, side: int, records: list[ImageRecord]) -> bool:
    try:
        index = json.loads((location / "index.json").read_text())
        if index.get("format") != CACHE_FORMAT or index.get("key") != key or index.get("side") != side:
            return False
        if [entry[0] for entry in index["photos"]] != [r.key for r in records]:
            return False
        expected = index["count"] * 3 * side * side
        return (location / "tiles.u8").stat().st_size == expected and (location / "stats.npy").exists()
    except (OSError, ValueError, KeyError, TypeError):
        return False


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive advisory lock on ``lock_path`` (no-op where ``fcntl`` is missing)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _build_cache(sources, records, side, workers, location: Path, key: str) -> None:
    cache_dir = location.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_dead_builds(cache_dir)
    token = hashlib.sha256(f"{time.time_ns()}:{threading.get_ident()}".encode()).hexdigest()[:8]
    building = cache_dir / f"{location.name}.building-{os.getpid()}-{token}"
    building.mkdir()
    started = time.perf_counter()
    log.info("building tile cache %s from %d photos on %d thread(s)", location, len(records), workers)
    try:
        photos, stats, broken = [], [], []
        count = 0
        with open(building / "tiles.u8", "wb", buffering=4 << 20) as out:
            for i, result in _scan(sources, records, side, workers, True, "building tile cache"):
                if result.error is not None:
                    broken.append((records[i].key, result.error))
                    photos.append((records[i].key, count, 0))
                    continue
                out.write(result.tiles.tobytes())
                photos.append((records[i].key, count, len(result.tiles)))
                stats.extend(result.stats)
                count += len(result.tiles)
            out.flush()
            os.fsync(out.fileno())
        np.save(building / "stats.npy", np.asarray(stats, dtype=np.float32).reshape(-1, len(STAT_NAMES)))
        seconds = time.perf_counter() - started
        index = {
            "format": CACHE_FORMAT,
            "key": key,
            "side": side,
            "count": count,
            "layout": "uint8 (count, 3, side, side), C order",
            "encoding": "L8 = round(L * 255 / 100), a8 = round(a) + 128, b8 = round(b) + 128",
            "stats": list(STAT_NAMES),
            "sources": [s.spec.canonical() for s in sources],
            "build_seconds": round(seconds, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "photos": photos,
            "broken": broken,
        }
        (building / "index.json").write_text(json.dumps(index))
        if location.exists():
            shutil.rmtree(location)  # an invalid cache of the same name (valid ones are never rebuilt)
        os.rename(building, location)
        log.info("built tile cache %s: %d tiles in %.1f s", location, count, seconds)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)


def open_store(sources: list[Source], records: list[ImageRecord], config: DataConfig) -> TileStore:
    """The tile store for ``records``: the cache (built now if missing) or a live store."""
    side = config.tile_side
    if config.cache_dir is None:
        counts, stats, broken = [], [], []
        for i, result in _scan(sources, records, side, config.build_workers, False, "scanning photos"):
            if result.error is not None:
                broken.append((records[i].key, result.error))
            counts.append(len(result.stats))
            stats.extend(result.stats)
        store: TileStore = LiveTileStore(sources, side, records, counts, stats, broken)
    else:
        key = cache_key(sources, records, side)
        location = Path(config.cache_dir).expanduser().absolute() / f"tiles-T{side}-{key[:20]}"
        if not _cache_is_valid(location, key, side, records):
            # One builder at a time (e.g. several training processes on one machine): the others
            # wait for the lock, then find the finished cache.
            with _exclusive(location.with_name(location.name + ".lock")):
                if not _cache_is_valid(location, key, side, records):
                    _build_cache(sources, records, side, config.build_workers, location, key)
        store = CachedTileStore(location, records)
    store.warn_broken()
    return store
