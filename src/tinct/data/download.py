"""Verified downloads of datasets: SHA-256 check, atomic write, resume, safe extraction.

>>> from tinct.data.download import fetch
>>> source = fetch("cifar100", "~/data")      # doctest: +SKIP
>>> source                                      # doctest: +SKIP
'cifar100:/home/me/data/cifar-100-python'

``download`` writes to ``<dest>.part`` and renames it to ``dest`` only after the size and the
SHA-256 check out, so ``dest`` is either absent or complete. An interrupted download resumes
from the ``.part`` file with an HTTP ``Range`` request (servers that ignore it send the whole
file again, which is detected and handled). A checksum mismatch deletes the ``.part`` file and
raises :class:`ChecksumError` naming the URL and both hashes. Without a known SHA-256 the file
is kept but an :class:`UnverifiedDownloadWarning` says so, with the hash to check by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from tinct.errors import DataError, TinctError
from tinct.io import sha256_file, sha256_hasher

__all__ = [
    "DownloadError",
    "ChecksumError",
    "UnverifiedDownloadWarning",
    "KnownDataset",
    "DATASETS",
    "download",
    "extract",
    "fetch",
]

_USER_AGENT = "tinct-data/0.1 (+https://pypi.org/project/tinct)"


class DownloadError(TinctError, RuntimeError):
    """A download failed (network, HTTP status, truncated body, unsafe archive)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected SHA-256."""


class UnverifiedDownloadWarning(UserWarning):
    """A file was downloaded without a known SHA-256 to check it against."""


@dataclass(frozen=True)
class KnownDataset:
    """A dataset tinct knows how to fetch.

    Attributes:
        name: registry name.
        url: official download address.
        filename: name of the downloaded archive.
        sha256: SHA-256 of the archive, or ``None`` if not reliably known (then "unverified").
        data_path: folder (relative to the download root) to hand to ``DataConfig.sources``.
        kind: source kind for that folder (``cifar100``, ``caltech101``, ...).
        inner_archives: archives inside the archive that must be extracted too (relative paths).
        size: expected byte size, if known.
        md5: the MD5 the publisher lists, for reference (the check uses SHA-256).
        homepage, license: where it comes from and on what terms.
    """

    name: str
    url: str
    filename: str
    sha256: str | None
    data_path: str
    kind: str
    inner_archives: tuple[str, ...] = ()
    size: int | None = None
    md5: str | None = None
    homepage: str = ""
    license: str = ""


DATASETS: dict[str, KnownDataset] = {
    "cifar100": KnownDataset(
        name="cifar100",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        filename="cifar-100-python.tar.gz",
        # The hash Keras's cifar100 loader pins; the publisher lists MD5 eb9058c3...
        sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        size=169_001_437,
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        data_path="cifar-100-python",
        kind="cifar100",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        license="no explicit licence; cite Krizhevsky 2009",
    ),
    "caltech101": KnownDataset(
        name="caltech101",
        url="https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1",
        filename="caltech-101.zip",
        # CaltechDATA record 20086 v1.0; SHA-256 as pinned by several independent projects
        # (the TFDS-era archive); the record itself lists MD5 3138e192...
        sha256="331234750fc7f77520e50d9565e8b6907b03565e30320da1401130db08c61f91",
        size=137_414_764,
        md5="3138e1922a9193bfa496528edbbc45d0",
        data_path="caltech-101/101_ObjectCategories",
        kind="caltech101",
        inner_archives=("caltech-101/101_ObjectCategories.tar.gz",),
        homepage="https://data.caltech.edu/records/mzrjq-6wc02",
        license="CC BY 4.0",
    ),
}


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None  # nothing past the end: the .part file is already whole
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None,
    *,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, verified against ``sha256`` (see the module docstring).

    Args:
        url: ``http``, ``https`` or ``file`` address.
        dest: file to create (its folder is created).
        sha256: expected SHA-256 (hex), or ``None`` to accept any content with a warning.
        progress: show a tqdm progress bar on stderr.
        timeout: seconds to wait for the server on each read.
    Returns:
        ``dest`` as a Path.
    Raises:
        ChecksumError: the content's SHA-256 differs (the partial file is deleted).
        DownloadError: network or HTTP failure, or a body shorter than announced (the partial
            file is kept and the next call resumes it).
    """
    dest = Path(dest).expanduser()
    expected = sha256.lower() if sha256 else None
    if expected is not None and (len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected)):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if dest.exists():
        return _check_existing(url, dest, expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset, timeout)
    if response is None:
        digest = sha256_hasher(part)
    else:
        with response:
            digest = _receive(url, response, part, offset, progress)
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: SHA-256 mismatch: expected {expected}, got {actual}; the download was deleted")
    os.replace(part, dest)
    if expected is None:
        _warn_unverified(url, dest, actual)
    return dest


def _check_existing(url: str, dest: Path, expected: str | None) -> Path:
    """``dest``, already downloaded: warned about if unverifiable, ChecksumError if it differs."""
    if expected is None:
        _warn_unverified(url, dest, sha256_file(dest))
        return dest
    actual = sha256_file(dest)
    if actual != expected:
        raise ChecksumError(f"{dest}: exists but its SHA-256 is {actual}, expected {expected}; delete it to download again")
    return dest


def _receive(url: str, response, part: Path, offset: int, progress: bool):
    """Append the body of ``response`` to ``part`` (``offset`` bytes already there, resumed with
    a Range request) and return the SHA-256 hasher of the whole file; DownloadError if the
    connection drops or the body is shorter than announced (the partial file is kept)."""
    if offset and getattr(response, "status", 200) != 206:
        offset = 0  # the server ignored the Range request and sent everything
    digest = sha256_hasher(part) if offset else hashlib.sha256()
    length = response.headers.get("Content-Length")
    total = offset + int(length) if length is not None else None
    received = offset
    bar_settings = dict(unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False)
    with open(part, "ab" if offset else "wb") as out, tqdm(
        total=total, initial=offset, desc=part.name.removesuffix(".part"), disable=not progress or None, **bar_settings
    ) as bar:
        while True:
            try:
                block = response.read(1 << 20)
            except (OSError, urllib.error.URLError) as exc:
                raise DownloadError(f"{url}: connection lost after {received} bytes ({exc}); run again to resume") from None
            if not block:
                break
            out.write(block)
            digest.update(block)
            received += len(block)
            bar.update(len(block))
        out.flush()
        os.fsync(out.fileno())
    if total is not None and received != total:
        raise DownloadError(f"{url}: got {received} of {total} bytes; run again to resume")
    return digest


def _warn_unverified(url: str, dest: Path, actual: str) -> None:
    message = (
        f"UNVERIFIED DOWNLOAD: {dest} ({url}) has no known SHA-256 to check against; "
        f"its SHA-256 is {actual}: compare it with the publisher's before trusting the file"
    )
    warnings.warn(message, UnverifiedDownloadWarning, stacklevel=3)


def _safe_zip_members(archive: zipfile.ZipFile, path: Path) -> list[zipfile.ZipInfo]:
    members = []
    for info in archive.infolist():
        name = PurePosixPath(info.filename)
        if name.is_absolute() or ".." in name.parts or ":" in info.filename or "\\" in info.filename:
            raise DownloadError(f"{path}: unsafe member path {info.filename!r}; refusing to extract")
        if name.parts and name.parts[0] == "__MACOSX":
            continue  # resource forks of the macOS archiver, not data
        members.append(info)
    return members


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> list[Path]:
    """Extract a ``.tar``/``.tar.gz``/``.tgz``/``.tar.bz2``/``.tar.xz`` or ``.zip`` into ``dest_dir``.

    Members that would land outside ``dest_dir`` (absolute paths, ``..``, links pointing out)
    are refused. Extraction happens in a temporary folder inside ``dest_dir``; each top-level
    entry is then renamed into place, and entries that already exist are kept as they are.

    Returns:
        The top-level paths in ``dest_dir`` that the archive holds.
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir).expanduser()
    dest_dir.mkdir(parents=True, exist_ok=True)
    staging = dest_dir / f".extract-{archive.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                z.extractall(staging, members=_safe_zip_members(z, archive))
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                try:
                    t.extractall(staging, filter="data")
                except tarfile.FilterError as exc:
                    raise DownloadError(f"{archive}: unsafe member ({exc}); refusing to extract") from None
        else:
            raise DownloadError(f"{archive}: not a zip or tar archive")
        top = []
        for entry in sorted(staging.iterdir()):
            target = dest_dir / entry.name
            if not target.exists():
                os.replace(entry, target)
            top.append(target)
        return top
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(dataset: str | KnownDataset, root: str | os.PathLike, *, progress: bool = True) -> str:
    """Download (if needed) and extract a known dataset under ``root``; return its source string.

    ``dataset`` is a name from :data:`DATASETS` or a :class:`KnownDataset`. The result, e.g.
    ``"cifar100:/data/cifar-100-python"``, goes straight into ``DataConfig.sources``.
    """
    if isinstance(dataset, str):
        if dataset not in DATASETS:
            raise DataError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(DATASETS))}")
        dataset = DATASETS[dataset]
    root = Path(root).expanduser().absolute()
    data = root / dataset.data_path
    if not data.is_dir():
        archive = download(dataset.url, root / dataset.filename, dataset.sha256, progress=progress)
        extract(archive, root)
        for inner in dataset.inner_archives:
            inner_path = root / inner
            if not inner_path.exists():
                raise DownloadError(f"{archive}: expected {inner} inside it")
            extract(inner_path, inner_path.parent)
        if not data.is_dir():
            raise DownloadError(f"{archive}: extracted, but {data} is missing")
    return f"{dataset.kind}:{data}"
