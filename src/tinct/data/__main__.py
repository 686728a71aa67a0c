"""``python -m tinct.data``: fetch known datasets, build a tile cache ahead of training, print manifests.

    python -m tinct.data datasets
    python -m tinct.data download cifar100 ~/data
    python -m tinct.data build-cache caltech101:~/data/101_ObjectCategories ~/data/sun80 \\
        --cache-dir cache --size 128 --cache-side 144 --crops 8
    python -m tinct.data manifest ~/data/photos [--lines]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings


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

    lines = manifest_lines(_config(args))
    if args.lines:
        sys.stdout.write(manifest_text(lines))
    print(hashlib.sha256(manifest_text(lines).encode("utf-8")).hexdigest())
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinct.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list the datasets 'download' knows").set_defaults(func=_datasets)
    p = sub.add_parser("download", help="download and extract a known dataset; prints its source string")
    p.add_argument("name")
    p.add_argument("root", help="folder to download into")
    p.set_defaults(func=_download)
    for name, func, text in (("build-cache", _build_cache, "build (or find) the tile cache"),
                             ("manifest", _manifest, "print the data manifest's SHA-256")):
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
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"tinct: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tinct: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
