"""``tinct data``: fetch known datasets, build a tile cache ahead of training, print manifests.

    tinct data datasets
    tinct data download cifar100 ~/data
    tinct data build-cache caltech101:~/data/101_ObjectCategories ~/data/sun80 \\
        --cache-dir cache --size 128 --cache-side 144 --crops 8
    tinct data manifest ~/data/photos [--lines]

The work is :mod:`tinct.data` (``fetch``, ``make_splits``, ``manifest_lines``); this module
parses the options and prints. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

SOURCE_COMMANDS = {"build-cache": "build (or find) the tile cache", "manifest": "print the data manifest's SHA-256"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "data",
        help="list and download datasets, build the tile cache, print a data manifest",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("datasets", help="list the datasets 'download' knows").set_defaults(action_run=_datasets)
    download = sub.add_parser("download", help="download and extract a known dataset; prints its source string")
    download.add_argument("name", help="dataset name (tinct data datasets lists them)")
    download.add_argument("root", help="folder to download into")
    download.set_defaults(action_run=_download)
    for name, text in SOURCE_COMMANDS.items():
        _add_source_parser(sub, name, text)
    p.set_defaults(func=run)


def _add_source_parser(sub, name: str, text: str) -> None:
    p = sub.add_parser(name, help=text)
    p.add_argument("sources", nargs="+", help="folders or kind:path sources")
    p.add_argument("--cache-dir", default=None if name == "manifest" else "cache")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--cache-side", type=int, default=None)
    p.add_argument("--crops", type=int, default=1, help="crops_per_large_image")
    p.add_argument("--classes", nargs="*", default=None)
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--workers", type=int, default=2)
    if name == "manifest":
        p.add_argument("--lines", action="store_true", help="print the manifest lines too")
    p.set_defaults(action_run=_build_cache if name == "build-cache" else _manifest)


def _config(args):
    from tinct.data import DataConfig

    return DataConfig(
        sources=args.sources,
        size=args.size,
        cache_side=args.cache_side,
        crops_per_large_image=args.crops,
        cache_dir=args.cache_dir,
        classes=args.classes,
        max_images=args.max_images,
        build_workers=args.workers,
    )


def _build_cache(args) -> int:
    from tinct.data import make_splits

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = make_splits(_config(args))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    store = splits["train"].store
    print(f"cache:   {store.location}")
    print(f"photos:  {len(store.records)} ({len(store.broken)} unreadable)")
    print(f"tiles:   {store.num_tiles} of {store.side} x {store.side}")
    print(f"size:    {store.nbytes / 1e6:.1f} MB")
    print(f"time:    {time.perf_counter() - started:.1f} s (build alone: {store.build_seconds} s)")
    return 0


def _manifest(args) -> int:
    import hashlib

    from tinct.data import manifest_lines
    from tinct.data.manifest import manifest_text

    text = manifest_text(manifest_lines(_config(args)))
    if args.lines:
        sys.stdout.write(text)
    print(hashlib.sha256(text.encode("utf-8")).hexdigest())  # tinct.data.manifest_sha256 of the config
    return 0


def _download(args) -> int:
    from tinct.data.download import fetch

    print(fetch(args.name, args.root))
    return 0


def _datasets(args) -> int:
    from tinct.data.download import DATASETS

    for d in DATASETS.values():
        check = f"sha256 {d.sha256}" if d.sha256 else "UNVERIFIED (no known SHA-256)"
        print(f"{d.name:12s} {d.url}\n{'':12s} {check}; {d.license}")
    return 0


def run(args: argparse.Namespace) -> int:
    """The chosen action. Data that cannot be used (a malformed source, a folder without
    photos: :class:`~tinct.errors.DataError`) and a download that fails are TinctErrors and
    reach :func:`tinct.cli.main` (one line, status 2). A file the system refuses (a source
    folder that does not exist, a cache that cannot be written) is an ``OSError``, raised
    again as :class:`~tinct.cli.CommandFailed` (one line from tinct.cli.main too, status 1)."""
    from tinct.cli import CommandFailed
    from tinct.errors import TinctError, one_line

    try:
        return args.action_run(args)
    except TinctError:
        raise
    except OSError as exc:
        raise CommandFailed(one_line(exc), 1) from exc
