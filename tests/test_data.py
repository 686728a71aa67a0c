"""tinct.data: sources, splits, tiles, cache, filters, manifest and the downloader.

Expected Lab values come from scikit-image's ``rgb2lab`` of the test's own pixels; the 8-bit
encoding is written out by hand (OpenCV's L * 255 / 100, a + 128, b + 128).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import math
import pickle
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab

from tinct.data import (
    BrokenImageWarning,
    DataConfig,
    ab_samples,
    make_datasets,
    make_splits,
    make_test_dataset,
    manifest_lines,
    manifest_sha256,
    parse_source,
)
from tinct.data import cache as cache_module
from tinct.data.download import (
    ChecksumError,
    DownloadError,
    KnownDataset,
    UnverifiedDownloadWarning,
    download,
    extract,
    fetch,
)
from tinct.data.preprocess import STAT_NAMES, tile_stats
from tinct.errors import DataError, TinctError

L_STEP = 100 / 255  # one step of the 8-bit L encoding
L_TOL = L_STEP / 2 + 1e-4
AB_TOL = 0.5 + 1e-4


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


def smooth_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A colourful uint8 image: random colours at the corners, bilinear in between, plus noise."""
    corners = rng.uniform(20, 235, size=(2, 2, 3))
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(0, 1, width)[None, :, None]
    img = (
        corners[0, 0] * (1 - y) * (1 - x)
        + corners[0, 1] * (1 - y) * x
        + corners[1, 0] * y * (1 - x)
        + corners[1, 1] * y * x
    )
    img = img + rng.normal(0, 6, size=img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def photo_folder(root: Path, count: int = 8, size=(30, 40), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(count):
        write_png(root / f"img_{i:02d}.png", smooth_rgb(rng, *size))
    return root


def item_lab(item) -> np.ndarray:
    """(S, S, 3) Lab of a dataset item."""
    return torch.cat([item["l"], item["ab"]]).permute(1, 2, 0).numpy()


CIFAR_NAMES = [f"class_{i:02d}" for i in range(100)]
CIFAR_NAMES[52] = "oak_tree"
CIFAR_NAMES[47] = "maple_tree"


def cifar_fixture(root: Path, seed: int = 0) -> tuple[Path, dict]:
    """A CIFAR-100-format folder: class 52 has 500 train + 100 test images like the real one,
    classes 3 and 47 a few more, so the label filter has something to exclude."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    batches = {}
    for split, counts in (("train", {52: 500, 3: 20, 47: 15}), ("test", {52: 100, 3: 4, 47: 3})):
        labels = np.concatenate([np.full(n, c) for c, n in counts.items()])
        labels = labels[rng.permutation(len(labels))]
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        batch = {
            b"data": data,
            b"fine_labels": labels.tolist(),
            b"coarse_labels": (labels // 5).tolist(),
            b"filenames": [f"{i}.png".encode() for i in range(len(labels))],
        }
        batches[split] = batch
        with open(folder / split, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [n.encode() for n in CIFAR_NAMES], b"coarse_label_names": []}, f)
    return folder, batches


# ---------------------------------------------------------------------------------------------
# source strings and config
# ---------------------------------------------------------------------------------------------


def test_parse_source_kinds_and_options(tmp_path):
    spec = parse_source(f"cifar100:{tmp_path}:52,oak_tree:val=50")
    assert (spec.kind, spec.path, spec.labels, spec.val_count) == ("cifar100", tmp_path, ("52", "oak_tree"), 50)
    plain = parse_source(str(tmp_path))
    assert plain.kind == "folder" and plain.path == tmp_path
    assert parse_source(f"caltech101:{tmp_path}:crops=3").crops == 3
    with pytest.raises(ValueError, match="unknown option 'val'"):
        parse_source(f"coco:{tmp_path}:val=3")
    with pytest.raises(ValueError, match="crops must be >= 1"):
        parse_source(f"folder:{tmp_path}:crops=0")
    with pytest.raises(ValueError, match="missing folder"):
        parse_source("coco:")


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="val_fraction"):
        DataConfig(sources=["x"], val_fraction=1.2)
    with pytest.raises(ValueError, match="cache_side"):
        DataConfig(sources=["x"], size=64, cache_side=32)
    config = DataConfig(sources=["a"], filter_brightness=[5, 95], size=64)
    assert config.filter_brightness == (5.0, 95.0)
    assert config.tile_side == 72  # ceil(64 * 1.125)
    assert DataConfig(sources=["a"], size=64, random_crop=False).tile_side == 64
    assert DataConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown DataConfig field"):
        DataConfig.from_dict({"sources": [], "colour": 1})


def test_unusable_data_is_a_one_line_data_error_naming_it(tmp_path):
    """What tinct.data refuses for a user's input is a DataError: a TinctError (one catch in
    tinct.cli.main) that is still the ValueError library callers catch."""
    empty = tmp_path / "empty"
    empty.mkdir()
    arrays, _ = lab_array_parts(tmp_path / "kaggle", sizes=(2,))
    (arrays / "ab" / "ab1.npy").write_bytes(b"not an array")
    cases = [
        (lambda: parse_source("coco:"), "coco:: missing folder after 'coco:'"),
        (lambda: parse_source(f"folder:{empty}:crops=x"), f"folder:{empty}:crops=x: crops must be an integer"),
        (lambda: DataConfig(sources=["x"], size=0), "size must be a positive integer, got 0"),
        (lambda: make_splits(DataConfig(sources=[str(empty)])), f"{empty}: no images found under {empty}"),
        (lambda: make_splits(DataConfig(sources=[f"lab-arrays:{arrays}"])), f"{arrays}/ab/ab1.npy: not a NumPy"),
        (lambda: fetch("cifar1000", tmp_path), "unknown dataset 'cifar1000'"),
    ]
    for make, message in cases:
        with pytest.raises(DataError) as info:
            make()
        assert isinstance(info.value, TinctError) and isinstance(info.value, ValueError)
        text = str(info.value)
        assert text.startswith(message) and "\n" not in text, text


# ---------------------------------------------------------------------------------------------
# CIFAR-100 (seed 000)
# ---------------------------------------------------------------------------------------------


def cifar_config(folder: Path, option: str = "52", **kw) -> DataConfig:
    base = dict(sources=[f"cifar100:{folder}:{option}"], size=32, random_crop=False, hflip=False)
    base.update(kw)
    return DataConfig(**base)


def test_cifar_seed000_split_sizes_and_pixels(tmp_path):
    folder, batches = cifar_fixture(tmp_path)
    config = cifar_config(folder)
    splits = make_splits(config)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [400, 100, 100]
    # The test split is the official test file; train and val come from the train file.
    assert all("/test/" in splits["test"].photo_key(i) for i in range(100))
    train_keys = {splits["train"].photo_key(i) for i in range(400)}
    val_keys = {splits["val"].photo_key(i) for i in range(100)}
    assert not train_keys & val_keys and all("/train/" in k for k in train_keys | val_keys)
    # Every image really is class 52, and pixels decode row-major CHW: check against rgb2lab.
    for split in ("val", "test"):
        ds = splits[split]
        for i in (0, 37, 99):
            _, file, row = ds.photo_key(i).rsplit("/", 2)
            assert batches[file][b"fine_labels"][int(row)] == 52
            rgb = batches[file][b"data"][int(row)].reshape(3, 32, 32).transpose(1, 2, 0)
            np.testing.assert_allclose(item_lab(ds[i]), rgb2lab(rgb), atol=2e-3)


def test_cifar_labels_by_name_val_option_and_split_seed(tmp_path):
    folder, _ = cifar_fixture(tmp_path)
    by_name = make_splits(cifar_config(folder, "oak_tree"))
    by_number = make_splits(cifar_config(folder, "52"))
    assert [by_name["val"].photo_key(i) for i in range(100)] == [by_number["val"].photo_key(i) for i in range(100)]
    two = make_splits(cifar_config(folder, "52,47:val=50"))
    assert [len(two[s]) for s in ("train", "val", "test")] == [465, 50, 103]
    other_seed = make_splits(cifar_config(folder, "52", split_seed=1))
    assert {other_seed["val"].photo_key(i) for i in range(100)} != {by_number["val"].photo_key(i) for i in range(100)}
    with pytest.raises(ValueError, match="unknown fine label 'pine'"):
        make_splits(cifar_config(folder, "pine"))


# ---------------------------------------------------------------------------------------------
# folders: broken files, classes, tiles
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cached", [False, True])
def test_broken_image_is_skipped_with_a_warning_naming_it(tmp_path, cached):
    root = photo_folder(tmp_path / "photos", count=4)
    (root / "garbage.jpg").write_bytes(b"definitely not a jpeg")
    good = io.BytesIO()
    Image.fromarray(smooth_rgb(np.random.default_rng(1), 30, 40)).save(good, format="JPEG")
    (root / "sub").mkdir()
    (root / "sub" / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    config = DataConfig(
        sources=[str(root)], size=16, val_fraction=0.0, cache_dir=str(tmp_path / "cache") if cached else None
    )
    with pytest.warns(BrokenImageWarning) as record:
        train, _ = make_datasets(config)
    messages = " ".join(str(w.message) for w in record)
    assert "garbage.jpg" in messages and "truncated.jpg" in messages
    assert len(train) == 4
    assert sorted(train.info["unreadable"]) == ["photos/garbage.jpg", "photos/sub/truncated.jpg"]
    assert all(torch.isfinite(train[i]["ab"]).all() for i in range(len(train)))
    if cached:  # reopening the cache reports them again: a skipped photo is never silent
        with pytest.warns(BrokenImageWarning) as again:
            make_datasets(config)
        assert sorted(Path(str(w.message).split(": ")[1]).name for w in again) == ["garbage.jpg", "truncated.jpg"]


def caltech_layout(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for name, n in (("cats", 3), ("dogs", 4), ("BACKGROUND_Google", 2), ("Faces_easy", 2)):
        for i in range(n):
            write_png(root / name / f"image_{i:04d}.jpg.png", smooth_rgb(rng, 24, 30))
    return root


def test_caltech_class_list(tmp_path):
    root = caltech_layout(tmp_path / "101_ObjectCategories")
    base = dict(size=16, val_fraction=0.0, random_crop=False)
    train, _ = make_datasets(DataConfig(sources=[f"caltech101:{root}"], classes=["cats"], **base))
    keys = [train.photo_key(i) for i in range(len(train))]
    assert len(keys) == 3 and all(k.startswith("101_ObjectCategories/cats/") for k in keys)
    everything, _ = make_datasets(DataConfig(sources=[f"caltech101:{root}"], **base))
    classes = {everything.photo_key(i).split("/")[1] for i in range(len(everything))}
    assert classes == {"cats", "dogs"}  # clutter and duplicate faces are left out by default
    # Items carry their class as an index into label_names, the same in every split.
    assert everything.label_names == ["cats", "dogs"]
    for i in range(len(everything)):
        assert everything.label_names[int(everything[i]["label"])] == everything.photo_key(i).split("/")[1]
    with pytest.raises(ValueError, match="unknown class"):
        make_datasets(DataConfig(sources=[f"caltech101:{root}"], classes=["cows"], **base))
    with pytest.raises(ValueError, match="caltech101:PATH"):  # a plain folder has no classes
        make_datasets(DataConfig(sources=[str(root)], classes=["cats"], **base))


def test_tile_geometry_matches_skimage(tmp_path):
    # A 20 x 40 photo at tile side 20 needs no resampling: tile 0 is its centre 20 x 20.
    rgb = smooth_rgb(np.random.default_rng(5), 20, 40)
    write_png(tmp_path / "p" / "wide.png", rgb)
    config = DataConfig(sources=[str(tmp_path / "p")], size=20, random_crop=False, hflip=False, val_fraction=0)
    train, _ = make_datasets(config)
    np.testing.assert_allclose(item_lab(train[0]), rgb2lab(rgb[:, 10:30]), atol=2e-3)


def test_large_photos_give_extra_tiles_in_one_split(tmp_path):
    rng = np.random.default_rng(6)
    root = tmp_path / "scenes"
    for i in range(10):
        write_png(root / f"big_{i}.png", smooth_rgb(rng, 50, 64))  # short side 50 >= 2 x 20
    write_png(root / "small.png", smooth_rgb(rng, 30, 30))
    config = DataConfig(sources=[str(root)], size=16, cache_side=20, crops_per_large_image=4, val_fraction=0.3)
    splits = make_splits(config)
    assert splits["train"].store.num_tiles == 4 * 10 + 1
    train_keys = [splits["train"].photo_key(i) for i in range(len(splits["train"]))]
    val_keys = [splits["val"].photo_key(i) for i in range(len(splits["val"]))]
    assert len(val_keys) == len(set(val_keys)) == 3  # one whole-view item per validation photo
    assert not set(train_keys) & set(val_keys)
    assert len(train_keys) == sum(1 if k == "scenes/small.png" else 4 for k in set(train_keys))
    assert splits["train"].label_names == [] and int(splits["train"][0]["label"]) == -1  # a plain folder: no classes
    # photo_records: each photo once, sorted, with its file.
    records = splits["val"].photo_records()
    assert [r.key for r in records] == sorted(set(val_keys))
    assert all(Path(r.path).name == r.key.split("/")[-1] for r in records)
    assert len(splits["train"].photo_records()) == len(set(train_keys))


# ---------------------------------------------------------------------------------------------
# LAB arrays (seed 002)
# ---------------------------------------------------------------------------------------------


def test_lab_arrays_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    rgbs = np.stack([smooth_rgb(rng, 24, 24) for _ in range(5)])
    lab = rgb2lab(rgbs)
    # OpenCV's 8-bit Lab, written out by hand.
    lab8 = np.empty(lab.shape, dtype=np.uint8)
    lab8[..., 0] = np.clip(np.round(lab[..., 0] * 255 / 100), 0, 255)
    lab8[..., 1:] = np.clip(np.round(lab[..., 1:] + 128), 0, 255)
    (tmp_path / "l").mkdir()
    (tmp_path / "ab").mkdir()
    np.save(tmp_path / "l" / "gray_scale.npy", lab8[..., 0])
    np.save(tmp_path / "ab" / "ab1.npy", lab8[:3, ..., 1:])
    np.save(tmp_path / "ab" / "ab2.npy", lab8[3:, ..., 1:])
    config = DataConfig(sources=[f"lab-arrays:{tmp_path}"], size=24, random_crop=False, hflip=False, val_fraction=0)
    train, _ = make_datasets(config)
    assert len(train) == 5
    for i in range(5):
        n = int(train.photo_key(i).rsplit("/", 1)[1])
        got = item_lab(train[i])
        assert np.abs(got[..., 0] - lab[n, ..., 0]).max() <= L_TOL
        assert np.abs(got[..., 1:] - lab[n, ..., 1:]).max() <= AB_TOL
    np.save(tmp_path / "ab" / "ab2.npy", lab8[3:, ..., 1:].repeat(2, axis=0))  # two images too many
    with pytest.raises(ValueError, match="ab parts hold 7 images but gray_scale.npy holds only 5"):
        make_datasets(config)


def lab_array_parts(root: Path, sizes=(3, 3, 2), side: int = 16) -> tuple[Path, np.ndarray]:
    """Seed 002's layout: ``l/gray_scale.npy`` of sum(sizes) images and ``ab/abK.npy`` of
    ``sizes[K-1]`` each, in OpenCV 8-bit Lab; returns the folder and the uint8 Lab stack."""
    rng = np.random.default_rng(11)
    lab = rgb2lab(np.stack([smooth_rgb(rng, side, side) for _ in range(sum(sizes))]))
    lab8 = np.empty(lab.shape, dtype=np.uint8)
    lab8[..., 0] = np.clip(np.round(lab[..., 0] * 255 / 100), 0, 255)
    lab8[..., 1:] = np.clip(np.round(lab[..., 1:] + 128), 0, 255)
    (root / "l").mkdir(parents=True)
    (root / "ab").mkdir()
    np.save(root / "l" / "gray_scale.npy", lab8[..., 0])
    start = 0
    for k, size in enumerate(sizes, start=1):
        np.save(root / "ab" / f"ab{k}.npy", lab8[start : start + size, ..., 1:])
        start += size
    return root, lab8


def _rows(dataset) -> list[int]:
    return sorted(int(dataset.photo_key(i).rsplit("/", 1)[1]) for i in range(len(dataset)))


def test_lab_arrays_train_on_any_subset_of_the_ab_parts(tmp_path):
    folder, lab8 = lab_array_parts(tmp_path / "kaggle")

    def dataset(source: str):
        config = DataConfig(sources=[source], size=16, random_crop=False, hflip=False, val_fraction=0)
        return make_datasets(config)[0]

    assert _rows(dataset(f"lab-arrays:{folder}")) == list(range(8))
    staged = [_rows(dataset(f"lab-arrays:{folder}:parts={k}")) for k in (1, 2, 3)]
    assert staged == [[0, 1, 2], [3, 4, 5], [6, 7]]  # each stage sees its own part's rows
    assert _rows(dataset(f"lab-arrays:{folder}:parts=3,1")) == [0, 1, 2, 6, 7]
    part2 = dataset(f"lab-arrays:{folder}:parts=2")
    i = next(i for i in range(len(part2)) if part2.photo_key(i).endswith("000004"))
    got = item_lab(part2[i])
    row = lab8[4].astype(np.float64)
    decoded = np.stack([row[..., 0] * 100 / 255, row[..., 1] - 128, row[..., 2] - 128], -1)
    np.testing.assert_allclose(got, decoded, atol=1e-4)  # part 2's first image is row 3 + 1 of the gray array

    # Only ab1.npy downloaded (seed 002's first stage): its 3 images, not a refusal.
    (folder / "ab" / "ab2.npy").unlink()
    (folder / "ab" / "ab3.npy").unlink()
    assert _rows(dataset(f"lab-arrays:{folder}")) == [0, 1, 2]
    manifest = manifest_lines(DataConfig(sources=[f"lab-arrays:{folder}"]))
    assert [line.split("  ")[0] for line in manifest] == ["kaggle/ab/ab1.npy", "kaggle/l/gray_scale.npy"]
    with pytest.raises(ValueError, match=r"no ab part\(s\) \[2\]"):
        dataset(f"lab-arrays:{folder}:parts=2")
    # ab2.npy alone cannot be placed: its rows start after ab1's, whose size is unknown.
    np.save(folder / "ab" / "ab2.npy", lab8[3:6, ..., 1:])
    (folder / "ab" / "ab1.npy").unlink()
    with pytest.raises(ValueError, match="ab1.npy is missing but ab2.npy is there"):
        dataset(f"lab-arrays:{folder}")


def test_lab_arrays_parts_option_parses():
    spec = parse_source("lab-arrays:/data/kaggle:parts=3,1")
    assert spec.parts == (1, 3) and spec.canonical() == "lab-arrays:/data/kaggle:parts=1,3"
    with pytest.raises(ValueError, match="ab part numbers start at 1"):
        parse_source("lab-arrays:/data:parts=0")
    with pytest.raises(ValueError, match="parts must be ab part numbers"):
        parse_source("lab-arrays:/data:parts=a")
    with pytest.raises(ValueError, match="unknown option 'parts' for folder"):
        parse_source("folder:/data:parts=1")


# ---------------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------------


def mixed_folder(root: Path) -> Path:
    rng = np.random.default_rng(8)
    for i in range(6):
        write_png(root / f"p{i}.png", smooth_rgb(rng, 30 + i, 42))
    write_png(root / "scene.png", smooth_rgb(rng, 48, 70))
    return root


def test_cache_matches_live_up_to_quantisation(tmp_path):
    root = mixed_folder(tmp_path / "photos")
    base = dict(sources=[str(root)], size=16, cache_side=20, crops_per_large_image=3, val_fraction=0.3)
    live = make_splits(DataConfig(**base))
    cached = make_splits(DataConfig(**base, cache_dir=str(tmp_path / "cache")))
    assert live["train"].store.location is None and cached["train"].store.location is not None
    for split in ("train", "val"):
        assert len(live[split]) == len(cached[split]) > 0
        live[split].set_epoch(2)
        cached[split].set_epoch(2)
        worst_l = worst_ab = 0.0
        for i in range(len(live[split])):
            a, b = live[split][i], cached[split][i]
            worst_l = max(worst_l, float((a["l"] - b["l"]).abs().max()))
            worst_ab = max(worst_ab, float((a["ab"] - b["ab"]).abs().max()))
        assert worst_l <= L_TOL and worst_ab <= AB_TOL
        assert worst_l > 0 or worst_ab > 0  # the cache really is the quantised copy
    assert live["train"].store.num_tiles == cached["train"].store.num_tiles == 6 + 3


def test_cache_is_reused_and_rebuilt_when_photos_change(tmp_path):
    root = photo_folder(tmp_path / "photos", count=3)
    config = DataConfig(sources=[str(root)], size=16, val_fraction=0, cache_dir=str(tmp_path / "cache"))
    first, _ = make_datasets(config)
    stamp = (first.store.location / "tiles.u8").stat().st_mtime_ns
    again, _ = make_datasets(config)
    assert again.store.location == first.store.location
    assert (again.store.location / "tiles.u8").stat().st_mtime_ns == stamp
    write_png(root / "new.png", smooth_rgb(np.random.default_rng(9), 30, 30))
    grown, _ = make_datasets(config)
    assert grown.store.location != first.store.location and len(grown) == 4


def test_interrupted_cache_build_is_never_used(tmp_path, monkeypatch):
    root = photo_folder(tmp_path / "photos", count=5)
    config = DataConfig(sources=[str(root)], size=16, val_fraction=0, cache_dir=str(tmp_path / "cache"))
    real = cache_module.make_tiles
    calls = {"n": 0}

    def failing(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(cache_module, "make_tiles", failing)
    with pytest.raises(KeyboardInterrupt):
        make_datasets(config)
    left = [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    assert left == []  # neither a cache nor a half-built leftover
    monkeypatch.setattr(cache_module, "make_tiles", real)
    train, _ = make_datasets(config)
    assert len(train) == 5


def test_processes_starting_together_build_once(tmp_path, monkeypatch):
    root = photo_folder(tmp_path / "photos", count=4)
    config = DataConfig(sources=[str(root)], size=16, val_fraction=0, cache_dir=str(tmp_path / "cache"))
    real = cache_module._build_cache
    builds = []

    def slow_build(*args, **kw):
        builds.append(1)
        threading.Event().wait(0.3)  # give the other caller time to arrive
        return real(*args, **kw)

    monkeypatch.setattr(cache_module, "_build_cache", slow_build)
    results = []
    callers = [threading.Thread(target=lambda: results.append(make_datasets(config)[0])) for _ in range(2)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert len(builds) == 1 and len(results) == 2
    assert results[0].store.location == results[1].store.location


def test_parallel_build_equals_serial(tmp_path):
    root = photo_folder(tmp_path / "photos", count=20, size=(24, 28))
    base = dict(sources=[str(root)], size=16, val_fraction=0)
    serial, _ = make_datasets(DataConfig(**base, cache_dir=str(tmp_path / "c1"), build_workers=1))
    parallel, _ = make_datasets(DataConfig(**base, cache_dir=str(tmp_path / "c2"), build_workers=2))
    assert np.array_equal(np.asarray(serial.store.tiles), np.asarray(parallel.store.tiles))
    assert np.array_equal(serial.store.stats, parallel.store.stats)


def test_cached_dataset_pickles_without_its_pixels(tmp_path):
    root = photo_folder(tmp_path / "photos", count=3)
    config = DataConfig(sources=[str(root)], size=16, val_fraction=0, cache_dir=str(tmp_path / "cache"))
    train, _ = make_datasets(config)
    train[0]  # open the memory map
    blob = pickle.dumps(train)  # what a spawned DataLoader worker receives
    clone = pickle.loads(blob)
    assert clone.store._tiles is None
    assert torch.equal(clone[1]["ab"], train[1]["ab"])


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------


def test_set_epoch_determinism(tmp_path):
    root = photo_folder(tmp_path / "photos", count=6, size=(40, 40))
    config = DataConfig(sources=[str(root)], size=16, cache_side=24, val_fraction=0)
    train, _ = make_datasets(config, seed=3)
    train.set_epoch(5)
    epoch5 = [train[i] for i in range(len(train))]
    train.set_epoch(6)
    epoch6 = [train[i] for i in range(len(train))]
    resumed, _ = make_datasets(config, seed=3)  # a new process resuming at epoch 5
    resumed.set_epoch(5)
    for i, item in enumerate(epoch5):
        again = resumed[i]
        assert torch.equal(item["l"], again["l"]) and torch.equal(item["ab"], again["ab"])
    assert any(not torch.equal(a["l"], b["l"]) for a, b in zip(epoch5, epoch6))
    other_seed, _ = make_datasets(config, seed=4)
    other_seed.set_epoch(5)
    train.set_epoch(5)
    assert [other_seed.crop_box(i) for i in range(len(train))] != [train.crop_box(i) for i in range(len(train))]


def test_split_determinism_and_exact_counts(tmp_path):
    root = photo_folder(tmp_path / "photos", count=20, size=(20, 20))
    config = DataConfig(sources=[str(root)], size=16, val_fraction=0.25, test_fraction=0.1, random_crop=False)

    def keys(splits):
        return {s: sorted(d.photo_key(i) for i in range(len(d))) for s, d in splits.items()}

    a, b = keys(make_splits(config)), keys(make_splits(config))
    assert a == b
    assert [len(a[s]) for s in ("train", "val", "test")] == [13, 5, 2]
    assert len(set(a["train"]) | set(a["val"]) | set(a["test"])) == 20
    assert keys(make_splits(DataConfig(**{**config.to_dict(), "split_seed": 1}))) != a
    test = make_test_dataset(config)
    assert sorted(test.photo_key(i) for i in range(len(test))) == a["test"]
    # Validation items are fixed centre crops: identical whatever the epoch.
    val = make_splits(config)["val"]
    first = val[0]["ab"].clone()
    val.set_epoch(9)
    assert torch.equal(val[0]["ab"], first)


def test_max_images_is_a_deterministic_sample(tmp_path):
    root = photo_folder(tmp_path / "photos", count=12, size=(20, 20))
    config = DataConfig(sources=[str(root)], size=16, val_fraction=0, max_images=5)
    one, _ = make_datasets(config)
    two, _ = make_datasets(config)
    assert len(one) == 5
    assert [one.photo_key(i) for i in range(5)] == [two.photo_key(i) for i in range(5)]



def test_exclude_leaves_photos_out_of_every_split_and_the_manifest(tmp_path):
    root = photo_folder(tmp_path / "photos", count=6, size=(20, 20))
    base = DataConfig(sources=[str(root)], size=16, val_fraction=0.34)
    excluded = ["photos/img_01.png", "photos/img_04.png"]
    config = DataConfig(sources=[str(root)], size=16, val_fraction=0.34, exclude=excluded)
    train, val = make_datasets(config)
    keys = {ds.photo_key(i) for ds in (train, val) for i in range(len(ds))}
    assert keys == {f"photos/img_{i:02d}.png" for i in (0, 2, 3, 5)}
    assert not any(line.startswith(tuple(excluded)) for line in manifest_lines(config))
    assert manifest_sha256(config) != manifest_sha256(base)
    with pytest.raises(ValueError, match="img_99"):
        make_datasets(DataConfig(sources=[str(root)], size=16, exclude=["photos/img_99.png"]))

# ---------------------------------------------------------------------------------------------
# filters and ab samples
# ---------------------------------------------------------------------------------------------


def test_tile_stats_colourfulness_by_hand():
    # R = (255, 0), G = (0, 0), B = (0, 255): rg = (255, 0), yb = (127.5, -255).
    rgb = np.array([[[[255, 0, 0], [0, 0, 255]]], [[[90, 90, 90], [90, 90, 90]]]], dtype=np.uint8)
    expected = math.hypot(127.5, 191.25) + 0.3 * math.hypot(127.5, -63.75)
    lab = rgb2lab(rgb)
    column = STAT_NAMES.index("colorfulness")
    stats = tile_stats(lab, rgb)
    assert stats[0, column] == pytest.approx(expected, rel=1e-9)
    assert stats[1, column] == 0.0
    # Lab-only tiles (seed 002's arrays): the sRGB is recovered from Lab, as floats in [0, 1].
    assert tile_stats(lab)[0, column] == pytest.approx(expected, rel=1e-3)


def solid(rgb, size=24):
    return np.tile(np.array(rgb, dtype=np.uint8), (size, size, 1))


def test_filters_drop_what_they_should(tmp_path):
    root = tmp_path / "photos"
    rng = np.random.default_rng(10)
    write_png(root / "gray.png", solid((128, 128, 128)))
    write_png(root / "near_gray.png", solid((131, 128, 126)))  # chroma about 2.6
    write_png(root / "dark.png", solid((40, 5, 5)))  # L 5.2, chroma 17.8
    write_png(root / "bright.png", solid((255, 245, 200)))  # L 96.3, chroma 23.2
    write_png(root / "dull.png", solid((120, 110, 100)))  # L 47, chroma 7.3, colourfulness 5.4
    for i in range(3):
        write_png(root / f"vivid_{i}.png", smooth_rgb(rng, 24, 24))
    base = dict(sources=[str(root)], size=16, val_fraction=0, random_crop=False)

    def names(**filters):
        train, _ = make_datasets(DataConfig(**base, **filters))
        return sorted(train.photo_key(i).split("/")[-1].split(".")[0] for i in range(len(train)))

    vivid = ["vivid_0", "vivid_1", "vivid_2"]
    assert names() == sorted(["gray", "near_gray", "dark", "bright", "dull", *vivid])
    assert names(filter_min_chroma=3.0) == sorted(["dark", "bright", "dull", *vivid])
    assert names(filter_brightness=(10.0, 90.0)) == sorted(["gray", "near_gray", "dull", *vivid])
    assert names(filter_min_colorfulness=25.0) == vivid  # vivid ones score 40-55, the rest < 16


def test_ab_samples(tmp_path):
    root = tmp_path / "photos"
    colours = [(200, 30, 30), (30, 160, 40), (40, 60, 200)]
    for i, c in enumerate(colours):
        write_png(root / f"c{i}.png", solid(c))
    train, _ = make_datasets(DataConfig(sources=[str(root)], size=16, val_fraction=0))
    samples = ab_samples(train, 300, seed=1)
    assert samples.shape == (300, 2) and samples.dtype == torch.float32
    truth = torch.from_numpy(rgb2lab(np.array([colours], dtype=np.uint8))[0, :, 1:]).float()  # (3, 2)
    distances = (samples[:, None, :] - truth[None, :, :]).norm(dim=-1)  # (300, 3)
    assert float(distances.min(dim=1).values.max()) < 1e-3  # uncached: exact ab of one of the colours
    assert len(torch.unique(distances.argmin(dim=1))) == 3
    assert torch.equal(samples, ab_samples(train, 300, seed=1))


# ---------------------------------------------------------------------------------------------
# manifest
# ---------------------------------------------------------------------------------------------


def test_manifest_format_by_hand(tmp_path):
    root = photo_folder(tmp_path / "photos", count=3)
    (root / "notes.txt").write_text("not an image")
    config = DataConfig(sources=[str(root)], cache_dir=str(tmp_path / "cache"))
    lines = sorted(
        f"photos/{p.name}  {hashlib.sha256(p.read_bytes()).hexdigest()}" for p in root.glob("*.png")
    )
    expected = hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()
    assert manifest_lines(config) == lines
    assert manifest_sha256(config) == expected
    assert (tmp_path / "cache" / "file-sha256.json").exists()
    write_png(root / "img_00.png", smooth_rgb(np.random.default_rng(99), 30, 40))
    assert manifest_sha256(config) != expected  # the memo notices the changed file


def test_manifest_of_cifar_lists_its_files(tmp_path):
    folder, _ = cifar_fixture(tmp_path)
    lines = manifest_lines(cifar_config(folder))
    assert [line.split("  ")[0] for line in lines] == [
        "cifar-100-python/meta",
        "cifar-100-python/test",
        "cifar-100-python/train",
    ]
    assert lines[2].split("  ")[1] == hashlib.sha256((folder / "train").read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# real photos (skipped without ../shared/data)
# ---------------------------------------------------------------------------------------------


def test_real_caltech_class(shared_data):
    config = DataConfig(
        sources=[f"caltech101:{shared_data / 'caltech101'}"], classes=["accordion"], size=32, val_fraction=0.2
    )
    train, val = make_datasets(config)
    assert len(train) + len(val) == len(list((shared_data / "caltech101" / "accordion").iterdir()))
    item = train[0]
    assert item["l"].shape == (1, 32, 32) and item["ab"].shape == (2, 32, 32)
    assert 0 <= float(item["l"].min()) and float(item["l"].max()) <= 100


# ---------------------------------------------------------------------------------------------
# downloader (a local HTTP server; never the internet)
# ---------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    ranges = True
    seen: list = []

    def do_GET(self):
        body = self.files.get(self.path)
        self.seen.append((self.path, self.headers.get("Range")))
        if body is None:
            self.send_error(404, "no such file")
            return
        start = 0
        header = self.headers.get("Range")
        if self.ranges and header and header.startswith("bytes="):
            start = int(header[6:].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"files": {}, "seen": [], "ranges": True})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    handler.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield handler
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_success_and_idempotence(server, tmp_path):
    body = bytes(range(256)) * 4000
    server.files["/data.bin"] = body
    dest = download(f"{server.base}/data.bin", tmp_path / "d" / "data.bin", sha(body), progress=False)
    assert dest.read_bytes() == body and not (tmp_path / "d" / "data.bin.part").exists()
    server.seen.clear()
    download(f"{server.base}/data.bin", dest, sha(body), progress=False)
    assert server.seen == []  # already there and verified: no request


def test_download_checksum_mismatch(server, tmp_path):
    server.files["/data.bin"] = b"tampered content"
    dest = tmp_path / "data.bin"
    with pytest.raises(ChecksumError, match="SHA-256 mismatch") as info:
        download(f"{server.base}/data.bin", dest, sha(b"original content"), progress=False)
    assert sha(b"tampered content") in str(info.value) and "/data.bin" in str(info.value)
    assert not dest.exists() and not (tmp_path / "data.bin.part").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    body = np.random.default_rng(0).bytes(100_000)
    server.files["/big.bin"] = body
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(body[:40_000])
    download(f"{server.base}/big.bin", dest, sha(body), progress=False)
    assert dest.read_bytes() == body
    assert server.seen == [("/big.bin", "bytes=40000-")]
    # A server that ignores Range sends everything; the partial file must not be doubled.
    server.ranges = False
    dest.unlink()
    (tmp_path / "big.bin.part").write_bytes(body[:40_000])
    download(f"{server.base}/big.bin", dest, sha(body), progress=False)
    assert dest.read_bytes() == body


def test_download_errors_and_unverified(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.base}/missing.bin", tmp_path / "m.bin", None, progress=False)
    server.files["/u.bin"] = b"hello"
    with pytest.warns(UnverifiedDownloadWarning, match="UNVERIFIED"):
        download(f"{server.base}/u.bin", tmp_path / "u.bin", None, progress=False)
    assert (tmp_path / "u.bin").read_bytes() == b"hello"


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetch_extracts_cifar_like_archive(server, tmp_path):
    folder, _ = cifar_fixture(tmp_path / "made")
    archive = _tar_gz({f"cifar-100-python/{n}": (folder / n).read_bytes() for n in ("meta", "train", "test")})
    server.files["/cifar.tar.gz"] = archive
    known = KnownDataset(
        name="tiny-cifar",
        url=f"{server.base}/cifar.tar.gz",
        filename="cifar.tar.gz",
        sha256=sha(archive),
        data_path="cifar-100-python",
        kind="cifar100",
    )
    source = fetch(known, tmp_path / "root", progress=False)
    assert source == f"cifar100:{tmp_path / 'root' / 'cifar-100-python'}"
    train, val = make_datasets(cifar_config(Path(source.split(":", 1)[1])))
    assert (len(train), len(val)) == (400, 100)
    server.seen.clear()
    assert fetch(known, tmp_path / "root", progress=False) == source and server.seen == []


def test_fetch_extracts_nested_zip_like_caltech(server, tmp_path):
    png = io.BytesIO()
    Image.fromarray(solid((200, 40, 40), 8)).save(png, format="PNG")
    inner = _tar_gz({"101_ObjectCategories/cats/image_0001.png": png.getvalue()})
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("caltech-101/101_ObjectCategories.tar.gz", inner)
        z.writestr("__MACOSX/._junk", b"x")
    server.files["/c.zip"] = outer.getvalue()
    known = KnownDataset(
        name="tiny-caltech",
        url=f"{server.base}/c.zip",
        filename="c.zip",
        sha256=sha(outer.getvalue()),
        data_path="caltech-101/101_ObjectCategories",
        kind="caltech101",
        inner_archives=("caltech-101/101_ObjectCategories.tar.gz",),
    )
    source = fetch(known, tmp_path, progress=False)
    assert (tmp_path / "caltech-101" / "101_ObjectCategories" / "cats" / "image_0001.png").exists()
    assert not (tmp_path / "__MACOSX").exists()
    assert source.startswith("caltech101:")


def test_extract_refuses_unsafe_members(tmp_path):
    evil_tar = tmp_path / "evil.tar.gz"
    evil_tar.write_bytes(_tar_gz({"../escaped.txt": b"x"}))
    with pytest.raises(DownloadError, match="unsafe"):
        extract(evil_tar, tmp_path / "out")
    evil_zip = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil_zip, "w") as z:
        z.writestr("../../escaped.txt", b"x")
    with pytest.raises(DownloadError, match="unsafe"):
        extract(evil_zip, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
