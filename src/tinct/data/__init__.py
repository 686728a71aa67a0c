"""Training data: photo collections -> Lab tiles (cached on disk or not) -> (L, ab) crops.

>>> from tinct.data import DataConfig, make_datasets
>>> config = DataConfig(sources=["caltech101:/data/101_ObjectCategories"], size=128,
...                     cache_dir="cache")                                     # doctest: +SKIP
>>> train, val = make_datasets(config, seed=0)                                # doctest: +SKIP
>>> train.set_epoch(0); item = train[0]                                       # doctest: +SKIP
>>> item["l"].shape, item["ab"].shape                                         # doctest: +SKIP
(torch.Size([1, 128, 128]), torch.Size([2, 128, 128]))

Modules: :mod:`~tinct.data.config` (``DataConfig``, source strings), :mod:`~tinct.data.sources`
(folders, Caltech-101, COCO, CIFAR-100, seed 002's LAB arrays), :mod:`~tinct.data.preprocess`
(tiles, 8-bit Lab, per-tile statistics), :mod:`~tinct.data.cache` (tile cache), :mod:`~tinct.data.dataset`
(splits, datasets), :mod:`~tinct.data.manifest` (manifest format), :mod:`~tinct.data.download`
(verified downloads of known datasets). Command line: ``tinct data --help``.

Data that cannot be used as given (a malformed source string, a folder without photos, a bad
setting) raises :class:`~tinct.errors.DataError`, a ``ValueError`` and a
:class:`~tinct.errors.TinctError`.
"""

from tinct.data.cache import BrokenImageWarning
from tinct.data.config import DataConfig, SourceSpec, parse_source
from tinct.data.dataset import (
    LabDataset,
    ab_samples,
    make_datasets,
    make_splits,
    make_test_dataset,
    manifest_lines,
    manifest_sha256,
    sample_photo,
)
from tinct.data.preprocess import decode_lab8, encode_lab8
from tinct.errors import DataError

__all__ = [
    "DataConfig",
    "DataError",
    "SourceSpec",
    "parse_source",
    "LabDataset",
    "make_datasets",
    "make_test_dataset",
    "make_splits",
    "ab_samples",
    "sample_photo",
    "manifest_sha256",
    "manifest_lines",
    "BrokenImageWarning",
    "encode_lab8",
    "decode_lab8",
]
