"""The data manifest: which files a model was trained on, as one SHA-256.

Format (stable; a model card quotes the result):

    one line per file used:   "<relative path>  <SHA-256 of the file, 64 lowercase hex>"
                              (two spaces between the fields, as ``sha256sum`` separates them,
                              but path first)
    relative path:            "<source folder name>/<path inside the source folder>", with "/"
                              separators, e.g. "caltech101/accordion/image_0001.jpg" or
                              "cifar-100-python/train"
    manifest text:            the lines sorted (Python string order), each ending in "\\n"
    manifest SHA-256:         SHA-256 of that text encoded as UTF-8, 64 lowercase hex

"Files used" are the selected photos of folder sources (after the class list and
``max_images``; before the content filters, which are a pure function of the files and the
config, and including any unreadable file, which the warnings name) and all data files of
array sources (CIFAR-100's ``meta``, ``test``, ``train``; seed 002's ``.npy`` arrays).

File hashes are remembered in ``<cache_dir>/file-sha256.json`` keyed by absolute path, byte
size and modification time, so recomputing the manifest costs one ``stat`` per file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tinct.io import atomic_file, sha256_file

__all__ = ["FileHashes", "manifest_text", "MANIFEST_FORMAT"]

MANIFEST_FORMAT = "sorted '<relative path>  <sha256>' lines, each + '\\n', UTF-8, SHA-256"


class FileHashes:
    """File SHA-256s remembered on disk, keyed by (absolute path, size, mtime).

    ``FileHashes(None)`` remembers nothing between calls (every hash is computed).
    """

    FILE_NAME = "file-sha256.json"

    def __init__(self, cache_dir: str | os.PathLike | None):
        self.path = None if cache_dir is None else Path(cache_dir).expanduser().absolute() / self.FILE_NAME
        self.entries: dict[str, list] = {}
        self.dirty = False
        if self.path is not None and self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.entries = {}  # a damaged memo is only a lost speed-up

    def sha256(self, path: Path) -> str:
        path = Path(path).absolute()
        st = path.stat()
        entry = self.entries.get(str(path))
        if entry is not None and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return entry[2]
        digest = sha256_file(path)
        self.entries[str(path)] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Merge with what another process may have written meanwhile, then replace atomically.
        merged = {}
        if self.path.exists():
            try:
                merged = json.loads(self.path.read_text())
            except (OSError, ValueError):
                merged = {}
        merged.update(self.entries)
        with atomic_file(self.path, "w") as handle:
            json.dump(merged, handle)
        self.dirty = False


def manifest_text(lines: list[str]) -> str:
    """Sorted lines, each terminated by a newline: the text whose SHA-256 is the manifest hash."""
    return "".join(line + "\n" for line in sorted(lines))
