# SPDX-License-Identifier: BSD-3-Clause
"""Moving bytes into (and out of) a datastore: transfer modes, atomic commits, undo.

Every mode ends with the file complete under its final name or absent: copies go to a
hidden temporary name in the destination directory and are committed with a
no-clobber link (or rename); links are created in one system call; object stores make
each uploaded object visible atomically.

Modes: ``copy``, ``move``, ``symlink``, ``relsymlink``, ``hardlink``, ``direct`` (leave in
place) and ``auto``: a hard link when source and root are local (falling back to a copy
across devices or for directories), a copy otherwise.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import DatastoreError
from ._fs import get_fs, is_local, local_path, remove_local, upload

__all__ = [
    "TRANSFER_MODES",
    "commit_local",
    "fsync_path",
    "hidden_temp_name",
    "remove_path",
    "resolve_mode",
    "transfer",
    "undo_transfer",
]

logger = logging.getLogger(__name__)

TRANSFER_MODES = ("auto", "copy", "move", "symlink", "relsymlink", "hardlink", "direct")
_LINK_MODES = ("symlink", "relsymlink", "hardlink")
_NO_LINK = (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EACCES)


def resolve_mode(mode: str, *, source_local: bool, root_local: bool) -> str:
    """Check ``mode`` is possible between these locations.

    Raises
    ------
    DatastoreError
        For an unknown mode, or a link mode where source or root is not local.
    """
    if mode not in TRANSFER_MODES:
        raise DatastoreError(
            f"Unknown transfer mode {mode!r}; choose one of {', '.join(TRANSFER_MODES)}."
        )
    if mode in _LINK_MODES and not (source_local and root_local):
        raise DatastoreError(
            f"Transfer mode {mode!r} needs a local source and a local datastore root; "
            "use 'copy', 'move' or 'direct' with object stores."
        )
    return mode


def hidden_temp_name(final: str) -> str:
    """A hidden, unique name next to ``final`` (``dir/.name.<hex>.tmp``)."""
    head, tail = os.path.split(final)
    return os.path.join(head, f".{tail}.{uuid.uuid4().hex[:12]}.tmp")


def fsync_path(path: str) -> None:
    """Flush a file (or directory entry) to disk; ignored where the platform cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit_local(temp: str, final: str) -> None:
    """Give a finished temporary file or directory its final name, never replacing one.

    Raises
    ------
    FileExistsError
        If ``final`` exists (the temporary is left for the caller to remove).
    """
    if os.path.isdir(temp) and not os.path.islink(temp):
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "Destination exists", final)
        os.rename(temp, final)
        return
    try:
        os.link(temp, final, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno not in _NO_LINK:
            raise
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "Destination exists", final) from err
        os.rename(temp, final)
        return
    os.unlink(temp)


def _copy_to_local(
    source: str, final: str, storage_options: Mapping[str, Any] | None, *, fsync: bool
) -> None:
    temp = hidden_temp_name(final)
    try:
        if is_local(source):
            src = local_path(source)
            if os.path.isdir(src):
                shutil.copytree(src, temp, symlinks=False)
            else:
                shutil.copyfile(src, temp)
        else:
            fs, fs_path = get_fs(source, storage_options)
            fs.get(fs_path, temp, recursive=fs.isdir(fs_path))
        if fsync and os.path.isfile(temp):
            fsync_path(temp)
        commit_local(temp, final)
    except BaseException:
        remove_local(temp)
        raise


def _copy_to_remote(source: str, final: str, storage_options: Mapping[str, Any] | None) -> None:
    fs, fs_path = get_fs(final, storage_options)
    if fs.exists(fs_path):
        raise FileExistsError(errno.EEXIST, "Destination exists", final)
    try:
        if is_local(source):
            src = local_path(source)
            upload(src, fs, fs_path, is_directory=os.path.isdir(src))
            return
        src_fs, src_path = get_fs(source, storage_options)
        if type(src_fs) is type(fs):
            fs.copy(src_path, fs_path, recursive=src_fs.isdir(src_path))
            return
        with tempfile.TemporaryDirectory(prefix="spherex-dask-") as tmp:
            staging = os.path.join(tmp, "data")
            src_fs.get(src_path, staging, recursive=src_fs.isdir(src_path))
            upload(staging, fs, fs_path, is_directory=os.path.isdir(staging))
    except BaseException:
        remove_path(final, storage_options)
        raise


def remove_path(path: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Remove a file or directory tree, local or remote; a missing path is not an error."""
    if is_local(path):
        remove_local(local_path(path))
        return
    fs, fs_path = get_fs(path, storage_options)
    try:
        fs.rm(fs_path, recursive=True)
    except FileNotFoundError:
        pass


def _link(source: str, final: str, mode: str) -> None:
    src, dst = local_path(source), local_path(final)
    if mode == "hardlink":
        os.link(src, dst)
    elif mode == "symlink":
        os.symlink(os.path.abspath(src), dst)
    else:
        os.symlink(
            os.path.relpath(os.path.abspath(src), os.path.dirname(os.path.abspath(dst))), dst
        )


def _move(
    source: str, final: str, storage_options: Mapping[str, Any] | None, *, fsync: bool
) -> None:
    if is_local(source) and is_local(final):
        src, dst = local_path(source), local_path(final)
        try:
            commit_local(src, dst) if os.path.isfile(src) else _rename_dir(src, dst)
            return
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
    transfer(source, final, "copy", storage_options=storage_options, fsync=fsync)
    remove_path(source, storage_options)


def _rename_dir(src: str, dst: str) -> None:
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "Destination exists", dst)
    os.rename(src, dst)


def transfer(
    source: str,
    final: str,
    mode: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    fsync: bool = True,
    make_parents: bool = True,
) -> str:
    """Put ``source`` at ``final`` by ``mode``; return the mode actually used.

    Parent directories of a local ``final`` are created unless ``make_parents`` is false
    (the caller made them). ``direct`` does nothing.

    Raises
    ------
    FileExistsError
        If ``final`` exists.
    FileNotFoundError
        If ``source`` does not exist.
    OSError
        For any other failure (nothing is left at ``final``).
    """
    if mode == "direct":
        return mode
    if make_parents and is_local(final):
        os.makedirs(os.path.dirname(local_path(final)), exist_ok=True)
    if mode == "auto":
        mode = "copy"
        if is_local(source) and is_local(final) and not os.path.isdir(local_path(source)):
            try:
                _link(source, final, "hardlink")
                return "hardlink"
            except OSError as err:
                if err.errno not in _NO_LINK:
                    raise
    if mode in _LINK_MODES:
        _link(source, final, mode)
    elif mode == "move":
        _move(source, final, storage_options, fsync=fsync)
    elif is_local(final):
        _copy_to_local(source, final, storage_options, fsync=fsync)
    else:
        _copy_to_remote(source, final, storage_options)
    return mode


def undo_transfer(
    source: str, final: str, mode: str, *, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Reverse :func:`transfer`: remove what was created, or move a moved file back."""
    if mode == "direct":
        return
    if mode == "move":
        transfer(final, source, "move", storage_options=storage_options)
        return
    remove_path(final, storage_options)
