# SPDX-License-Identifier: BSD-3-Clause
"""The file datastore: where datasets' bytes live, local or on an object store (fsspec).

The datastore never touches the registry. It turns a :class:`~spherex_dask.types.DatasetRef`
into a path with its :class:`FileTemplates`, writes and reads through formatters, and hands
back :class:`~spherex_dask.types.DatasetLocation` records (path relative to the root, or an
absolute URI for ``direct`` ingest; formatter name; size; optional checksum) that the Butler
stores in the registry as opaque strings.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import (
    ChecksumError,
    DatastoreError,
    FileMissingError,
    FormatterError,
    SpherexDaskError,
)
from ..types import DatasetLocation, DatasetRef
from ._fs import (
    CHECKSUM_ALGORITHMS,
    checksum,
    get_fs,
    is_local,
    join,
    local_path,
    path_exists,
    path_size,
    remove_local,
)
from ._storage_classes import StorageClassRegistry, default_storage_classes
from ._templates import FileTemplates
from ._transfer import (
    commit_local,
    fsync_path,
    hidden_temp_name,
    remove_path,
    resolve_mode,
    undo_transfer,
)
from ._transfer import transfer as transfer_file
from .formatters import Formatter, FormatterRegistry, default_formatters

__all__ = ["FileDatastore"]

logger = logging.getLogger(__name__)


def describe(ref: DatasetRef) -> str:
    """``raw {detector: 1, ...} in run 'r' (id ...)`` for messages."""
    return f"{ref.dataset_type.name} {ref.data_id!r} in run {ref.run!r} (id {ref.id})"


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or "://" in path


class FileDatastore:
    """Datasets as files under ``root`` (a local directory or an fsspec URL such as ``s3://b/p``).

    Parameters
    ----------
    root
        Directory or URL holding the files.
    templates
        :class:`FileTemplates`, or a mapping of dataset type -> template (key ``default``
        for the rest).
    formatters
        Dataset type name -> formatter name, overriding the storage class default.
    storage_options
        fsspec options for a remote root (``endpoint_url``, ``key``, ``secret``...).
    checksum
        ``"blake2b"``, ``"md5"`` or None: checksum recorded at put and ingest.
    verify_on_get
        Check size and checksum before every :meth:`get`.
    fsync
        Flush written and copied files to disk before they get their final name.
    formatter_registry, storage_classes
        Registries to use (fresh built-in ones by default).
    """

    def __init__(
        self,
        root: str,
        *,
        templates: Mapping[str, str] | FileTemplates | None = None,
        formatters: Mapping[str, str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        checksum: str | None = None,
        verify_on_get: bool = False,
        fsync: bool = True,
        formatter_registry: FormatterRegistry | None = None,
        storage_classes: StorageClassRegistry | None = None,
    ) -> None:
        if checksum is not None and checksum not in CHECKSUM_ALGORITHMS:
            raise DatastoreError(
                f"Unknown checksum {checksum!r}; choose one of {CHECKSUM_ALGORITHMS} or None."
            )
        self.is_local = is_local(root)
        self.root = os.path.abspath(local_path(root)) if self.is_local else root.rstrip("/")
        self.templates = (
            templates if isinstance(templates, FileTemplates) else FileTemplates(templates)
        )
        self.formatter_overrides = dict(formatters or {})
        self.storage_options = dict(storage_options or {})
        self.checksum = checksum
        self.verify_on_get = verify_on_get
        self.fsync = fsync
        self.formatters = (
            formatter_registry if formatter_registry is not None else default_formatters()
        )
        self.storage_classes = (
            storage_classes if storage_classes is not None else default_storage_classes()
        )
        self._moved: dict[str, str] = {}
        for name in self.formatter_overrides.values():
            self.formatters[name]  # raises UnknownFormatterError listing the names

    def __repr__(self) -> str:
        return f"FileDatastore({self.root!r})"

    # -- paths ------------------------------------------------------------------------
    def uri(self, location: DatasetLocation) -> str:
        """Absolute local path or URL of a location."""
        return location.path if _is_absolute(location.path) else join(self.root, location.path)

    def exists(self, location: DatasetLocation) -> bool:
        """Whether the location's file (or store directory) exists."""
        return path_exists(self.uri(location), self.storage_options)

    def _formatter_for(self, ref: DatasetRef, name: str | None) -> Formatter:
        if name is None:
            name = self.formatter_overrides.get(ref.dataset_type.parent_name)
        if name is None:
            name = self.storage_classes[ref.dataset_type.storage_class].default_formatter
        return self.formatters[name]

    # -- put / get --------------------------------------------------------------------
    def put(self, obj: Any, ref: DatasetRef, *, formatter: str | None = None) -> DatasetLocation:
        """Write ``obj`` as dataset ``ref``, atomically; return its location.

        Raises
        ------
        DatastoreError
            If the target file exists (this dataset was stored already, or the template
            maps two datasets to one path), or ``ref`` is a component.
        FormatterError
            If ``obj`` is not of the storage class's type or cannot be written.
        TemplateError
            If the template cannot give ``ref`` a unique, safe path.
        """
        if ref.dataset_type.component is not None:
            raise DatastoreError(f"Cannot put component dataset {describe(ref)}; put its parent.")
        fmt = self._formatter_for(ref, formatter)
        if ref.dataset_type.storage_class in self.storage_classes:
            self.storage_classes[ref.dataset_type.storage_class].validate(obj)
        relative = self.templates.format(ref) + fmt.extensions[0]
        final = join(self.root, relative)
        try:
            size, digest = (self._put_local if self.is_local else self._put_remote)(obj, fmt, final)
        except FileExistsError as err:
            raise DatastoreError(
                f"Cannot put {describe(ref)}: {final!r} exists. Either this dataset was stored "
                "already, or the file template gives two datasets the same path (make it more "
                "specific)."
            ) from err
        except SpherexDaskError as err:
            err.add_note(f"while putting {describe(ref)} to {final!r}")
            raise
        logger.debug("Put %s at %s", describe(ref), final)
        return DatasetLocation(
            dataset_id=ref.id, path=relative, formatter=fmt.name, size=size, checksum=digest
        )

    def _put_local(self, obj: Any, fmt: Formatter, final: str) -> tuple[int, str | None]:
        if os.path.lexists(final):
            raise FileExistsError(final)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        temp = hidden_temp_name(final)
        try:
            fmt.write(obj, temp)
            if self.fsync and not fmt.is_directory:
                fsync_path(temp)
            measured = self._measure(temp)
            commit_local(temp, final)
        except BaseException:
            remove_local(temp)
            raise
        if self.fsync:
            fsync_path(os.path.dirname(final))
        return measured

    def _put_remote(self, obj: Any, fmt: Formatter, final: str) -> tuple[int, str | None]:
        fs, fs_path = get_fs(final, self.storage_options)
        if fs.exists(fs_path):
            raise FileExistsError(final)
        with tempfile.TemporaryDirectory(prefix="spherex-dask-") as tmp:
            staging = os.path.join(tmp, os.path.basename(fs_path))
            fmt.write(obj, staging)
            measured = self._measure(staging)
            transfer_file(staging, final, "copy", storage_options=self.storage_options)
        return measured

    def _measure(
        self, path: str, storage_options: Mapping[str, Any] | None = None
    ) -> tuple[int, str | None]:
        size = path_size(path, storage_options)
        digest = checksum(path, self.checksum, storage_options) if self.checksum else None
        return size, digest

    def get(
        self,
        ref: DatasetRef,
        locations: Sequence[DatasetLocation] | DatasetLocation,
        *,
        parameters: Mapping[str, Any] | None = None,
        component: str | None = None,
        verify: bool | None = None,
    ) -> Any:
        """Read dataset ``ref`` (lazily for images), or one ``component`` of it.

        ``component`` defaults to the component of ``ref``'s dataset type (``raw.flags``).

        Raises
        ------
        FileMissingError
            If the file is missing (names the dataset and the path).
        ChecksumError
            If verification is on and size or checksum differ from the recorded ones.
        FormatterError
            If the file is corrupt, or the component or a parameter is unknown.
        """
        location = self._pick(ref, locations, component)
        component = component or ref.dataset_type.component
        if location.component is not None:
            component = None  # the file holds the component itself
        uri = self.uri(location)
        if verify if verify is not None else self.verify_on_get:
            self.verify(location)
        fmt = self.formatters[location.formatter]
        try:
            return fmt.read(
                uri,
                parameters=parameters,
                component=component,
                storage_options=self.storage_options,
            )
        except FileNotFoundError as err:
            raise FileMissingError(
                f"The file of dataset {describe(ref)} is missing: {uri!r}. It was removed outside "
                "the Butler; prune the dataset or restore the file."
            ) from err
        except FormatterError as err:
            err.add_note(f"while reading {describe(ref)}")
            raise

    def _pick(
        self,
        ref: DatasetRef,
        locations: Sequence[DatasetLocation] | DatasetLocation,
        component: str | None,
    ) -> DatasetLocation:
        candidates = [locations] if isinstance(locations, DatasetLocation) else list(locations)
        if not candidates:
            raise FileMissingError(f"Dataset {describe(ref)} has no stored location.")
        wanted = component or ref.dataset_type.component
        for location in candidates:
            if wanted is not None and location.component == wanted:
                return location
        for location in candidates:
            if location.component is None:
                return location
        raise DatastoreError(
            f"Dataset {describe(ref)} is stored as components "
            f"{sorted(str(c.component) for c in candidates)}; ask for one of them."
        )

    # -- integrity ----------------------------------------------------------------------
    def verify(self, location: DatasetLocation) -> None:
        """Check the file exists and has the recorded size and checksum.

        Raises
        ------
        FileMissingError, ChecksumError
        """
        uri = self.uri(location)
        if not path_exists(uri, self.storage_options):
            raise FileMissingError(f"File {uri!r} of dataset {location.dataset_id} is missing.")
        size = path_size(uri, self.storage_options)
        if location.size >= 0 and size != location.size:
            raise ChecksumError(
                f"File {uri!r} of dataset {location.dataset_id} has {size} bytes; "
                f"{location.size} were recorded. It changed after it was stored."
            )
        if location.checksum:
            algorithm = location.checksum.partition(":")[0]
            actual = checksum(uri, algorithm, self.storage_options)
            if actual != location.checksum:
                raise ChecksumError(
                    f"File {uri!r} of dataset {location.dataset_id} has checksum {actual}; "
                    f"{location.checksum} was recorded. It changed after it was stored."
                )

    # -- ingest -------------------------------------------------------------------------
    def prepare_ingest(
        self,
        items: Sequence[tuple[str, DatasetRef]],
        *,
        transfer: str = "auto",
        formatter: str | None = None,
    ) -> list[DatasetLocation]:
        """Transfer existing files into the datastore, all or none, and return their locations.

        Every file is checked first (exists, readable by its formatter, destination free);
        then the transfers run, and a failure undoes those already made. The formatter is
        guessed from each file's content when ``formatter`` is None. ``auto`` hard-links
        local files (copying across devices or for directories) and copies otherwise.

        Raises
        ------
        IngestError
            Naming the file that failed; nothing is left transferred.
        """
        from ._ingest import plan_ingest, run_ingest

        plans = plan_ingest(self, items, transfer, formatter)
        return run_ingest(self, plans, transfer)

    def undo_ingest(self, locations: Sequence[DatasetLocation], *, transfer: str) -> None:
        """Reverse :meth:`prepare_ingest` (when the registry insert failed afterwards).

        Copies and links are removed; moved files go back where they came from (this needs
        the same datastore instance that moved them); ``direct`` does nothing.

        Raises
        ------
        DatastoreError
            If a moved file's origin is unknown to this instance.
        """
        if transfer == "direct":
            return
        for location in locations:
            if _is_absolute(location.path):
                continue
            final = self.uri(location)
            if transfer == "move" and final in self._moved:
                undo_transfer(
                    self._moved.pop(final), final, "move", storage_options=self.storage_options
                )
            elif transfer == "move" and self.exists(location):
                raise DatastoreError(
                    f"Cannot move {final!r} back: its origin is unknown to this datastore instance; "
                    "call undo_ingest on the instance that ran prepare_ingest."
                )
            else:
                self.remove(location)

    def retrieve(
        self,
        locations: Sequence[DatasetLocation],
        destination: str,
        *,
        transfer: str = "copy",
        preserve_path: bool = True,
    ) -> list[str]:
        """Copy (or link) datasets' files out to ``destination``; return the new paths.

        With ``preserve_path`` the paths relative to the root are kept (files ingested in
        place keep their base name). All or nothing: a failure removes what was written.

        Raises
        ------
        DatastoreError
            For ``move``/``direct``, two files with one destination, or a taken destination.
        FileMissingError
            If a file is missing from the datastore.
        """
        if transfer in ("move", "direct"):
            raise DatastoreError(
                f"retrieve cannot use transfer {transfer!r}; use copy or a link mode."
            )
        if is_local(destination):
            destination = os.path.abspath(local_path(destination))
        pairs: dict[str, str] = {}
        for location in locations:
            relative = (
                os.path.basename(location.path) if _is_absolute(location.path) else location.path
            )
            target = join(destination, relative if preserve_path else relative.rsplit("/", 1)[-1])
            if target in pairs or path_exists(target):
                raise DatastoreError(
                    f"Cannot retrieve {self.uri(location)!r}: {target!r} is taken."
                )
            if not self.exists(location):
                raise FileMissingError(
                    f"File {self.uri(location)!r} of dataset {location.dataset_id} is missing."
                )
            pairs[target] = self.uri(location)
        done: list[str] = []
        try:
            for target, source in pairs.items():
                resolve_mode(transfer, source_local=is_local(source), root_local=is_local(target))
                transfer_file(source, target, transfer, storage_options=self.storage_options)
                done.append(target)
        except BaseException:
            for target in done:
                undo_transfer(pairs[target], target, "copy", storage_options=self.storage_options)
            raise
        return done

    def remove(self, locations: Sequence[DatasetLocation] | DatasetLocation) -> None:
        """Delete the files of datasets inside the datastore.

        Files ingested with ``direct`` (absolute URIs) are left alone: the datastore does not
        own them. Missing files are ignored, so removal can be retried.
        """
        for location in [locations] if isinstance(locations, DatasetLocation) else locations:
            if _is_absolute(location.path):
                logger.debug("Not removing %s: ingested in place", location.path)
                continue
            uri = self.uri(location)
            remove_path(uri, self.storage_options)
            if self.is_local:
                self._prune_empty_dirs(os.path.dirname(uri))
            logger.debug("Removed %s", uri)

    def _prune_empty_dirs(self, directory: str) -> None:
        while directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)
