# SPDX-License-Identifier: BSD-3-Clause
"""Small helpers over local paths and fsspec URLs shared by formatters and the datastore.

Local paths (no protocol, or ``file://``) use the standard library directly, which is
faster than fsspec; everything else goes through ``fsspec.core.url_to_fs``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from ..errors import FileMissingError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = [
    "CHECKSUM_ALGORITHMS",
    "checksum",
    "get_fs",
    "is_local",
    "join",
    "local_path",
    "open_file",
    "path_exists",
    "path_size",
    "remove_local",
    "staged_output",
    "upload",
]

logger = logging.getLogger(__name__)

CHECKSUM_ALGORITHMS = ("blake2b", "md5")
_BLOCK = 1 << 20


def is_local(path: str) -> bool:
    """Whether ``path`` is a local path (no protocol, or ``file://``).

    Examples
    --------
    >>> is_local("/data/a.fits"), is_local("file:///data/a.fits"), is_local("s3://b/a.fits")
    (True, True, False)
    """
    if path.startswith("file://"):
        return True
    head, sep, _ = path.partition("://")
    return not sep or len(head) <= 1  # "C:\\..." would be a drive, not a protocol


def local_path(path: str) -> str:
    """``path`` without a ``file://`` prefix."""
    return path[len("file://") :] if path.startswith("file://") else path


def join(root: str, relative: str) -> str:
    """Join a root (local path or URL) and a '/'-separated relative path.

    Examples
    --------
    >>> join("s3://bucket/repo/", "a/b.fits")
    's3://bucket/repo/a/b.fits'
    """
    if is_local(root):
        return os.path.join(local_path(root), *relative.split("/"))
    return root.rstrip("/") + "/" + relative


def get_fs(
    path: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem and its internal path for ``path``."""
    import fsspec.core

    fs, fs_path = fsspec.core.url_to_fs(path, **dict(storage_options or {}))
    return fs, fs_path


def open_file(
    path: str,
    mode: str = "rb",
    *,
    storage_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> IO[Any]:
    """Open a local path with :func:`open` or a URL with fsspec.

    Raises
    ------
    FileMissingError
        If a file opened for reading does not exist.
    """
    try:
        if is_local(path):
            return open(local_path(path), mode)
        fs, fs_path = get_fs(path, storage_options)
        return fs.open(fs_path, mode, **kwargs)
    except FileNotFoundError as err:
        raise FileMissingError(f"File {path!r} does not exist.") from err
    except IsADirectoryError as err:
        raise FileMissingError(f"{path!r} is a directory, not a file.") from err


def path_exists(path: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether a file or directory exists at ``path`` (a dangling symlink counts as missing)."""
    if is_local(path):
        return os.path.exists(local_path(path))
    fs, fs_path = get_fs(path, storage_options)
    return bool(fs.exists(fs_path))


def path_size(path: str, storage_options: Mapping[str, Any] | None = None) -> int:
    """Size in bytes of a file, or the total of the files under a directory."""
    if is_local(path):
        p = local_path(path)
        if os.path.isdir(p):
            return sum(os.path.getsize(f) for f in _walk_files(p))
        return os.path.getsize(p)
    fs, fs_path = get_fs(path, storage_options)
    if fs.isdir(fs_path):
        return int(fs.du(fs_path, total=True))
    return int(fs.size(fs_path))


def _walk_files(directory: str) -> list[str]:
    found: list[str] = []
    for base, dirs, files in os.walk(directory):
        dirs.sort()
        found.extend(os.path.join(base, f) for f in sorted(files))
    return found


def _relative_files(directory: str) -> list[str]:
    """'/'-separated relative names of the files under ``directory``, sorted."""
    return sorted(
        os.path.relpath(f, directory).replace(os.sep, "/") for f in _walk_files(directory)
    )


def checksum(path: str, algorithm: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """``"{algorithm}:{hexdigest}"`` of a file, or of a directory's relative names and bytes.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "x.txt")
    ...     _ = open(p, "w").write("abc")
    ...     checksum(p, "md5")
    'md5:900150983cd24fb0d6963f7d28e17f72'
    """
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ValueError(
            f"Unknown checksum algorithm {algorithm!r}; choose one of {CHECKSUM_ALGORITHMS}."
        )
    digest = hashlib.new(algorithm)
    if is_local(path):
        root = local_path(path)
        files = _relative_files(root) if os.path.isdir(root) else None
        for relative in files or ():
            digest.update(relative.encode() + b"\0")
            _update(digest, os.path.join(root, relative), None)
        if files is None:
            _update(digest, root, None)
    else:
        fs, fs_path = get_fs(path, storage_options)
        files = sorted(fs.find(fs_path)) if fs.isdir(fs_path) else None
        for file in files or ():
            digest.update(file[len(fs_path) :].lstrip("/").encode() + b"\0")
            _update_from(digest, fs.open(file, "rb"))
        if files is None:
            _update_from(digest, fs.open(fs_path, "rb"))
    return f"{algorithm}:{digest.hexdigest()}"


def _update(digest: Any, path: str, storage_options: Mapping[str, Any] | None) -> None:
    _update_from(digest, open_file(path, "rb", storage_options=storage_options))


def _update_from(digest: Any, f: IO[bytes]) -> None:
    with f:
        while block := f.read(_BLOCK):
            digest.update(block)


def upload(local: str, fs: AbstractFileSystem, fs_path: str, *, is_directory: bool) -> None:
    """Copy a local file or directory to ``fs_path``; for directories zarr metadata goes last.

    Object stores make each object visible atomically, so a reader never sees a zarr group
    whose ``zarr.json`` appears before the chunks it describes.
    """
    if not is_directory:
        fs.put_file(local, fs_path)
        return
    files = _walk_files(local)
    # Data first, then metadata from the deepest level up to the root zarr.json.
    files.sort(key=lambda f: (os.path.basename(f) == "zarr.json", -f.count(os.sep)))
    for file in files:
        relative = os.path.relpath(file, local).replace(os.sep, "/")
        fs.put_file(file, f"{fs_path.rstrip('/')}/{relative}")


@contextmanager
def staged_output(
    path: str, storage_options: Mapping[str, Any] | None = None, *, is_directory: bool = False
) -> Iterator[str]:
    """Yield a local path to write; for a remote ``path``, upload it there afterwards.

    Used by formatters whose libraries can only write local files.
    """
    if is_local(path):
        yield local_path(path)
        return
    with tempfile.TemporaryDirectory(prefix="spherex-dask-") as tmp:
        staging = os.path.join(tmp, path.rstrip("/").rsplit("/", 1)[-1])
        yield staging
        fs, fs_path = get_fs(path, storage_options)
        upload(staging, fs, fs_path, is_directory=is_directory)


def remove_local(path: str) -> None:
    """Remove a local file, symlink or directory tree; a missing path is not an error."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
