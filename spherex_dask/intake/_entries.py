# SPDX-License-Identifier: BSD-3-Clause
"""One catalog entry per dataset type: which types, in which collections, described how.

Shared by the live :class:`~spherex_dask.intake.SpherexCatalog` and by
:func:`~spherex_dask.intake.export_catalog`, so both list the same entries.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MissingCollectionError, MissingDatasetTypeError

if TYPE_CHECKING:
    from ..io import StorageClass
    from ..registry import Registry
    from ..types import DatasetType

__all__ = ["EntrySpec", "entry_specs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EntrySpec:
    """What a catalog says about one dataset type."""

    dataset_type: DatasetType
    collections: tuple[str, ...]

    @property
    def name(self) -> str:
        """Entry name: the dataset type name."""
        return self.dataset_type.name

    @property
    def description(self) -> str:
        """One sentence for people browsing the catalog."""
        dt = self.dataset_type
        kind = "calibration " if dt.is_calibration else ""
        return (
            f"{dt.name}: {kind}{dt.storage_class} datasets with dimensions "
            f"({', '.join(dt.dimensions)}) in collections {', '.join(self.collections)}; "
            "read lazily as xarray, stacked along the dimensions that vary."
        )

    @property
    def metadata(self) -> dict[str, Any]:
        """Plain (YAML-safe) facts about the entry."""
        dt = self.dataset_type
        return {
            "dataset_type": dt.name,
            "dimensions": list(dt.dimensions),
            "storage_class": dt.storage_class,
            "is_calibration": dt.is_calibration,
            "collections": list(self.collections),
        }

    @property
    def args(self) -> dict[str, Any]:
        """Arguments of the reader/driver, without the repository."""
        return {"dataset_type": self.name, "collections": list(self.collections)}


def _has_datasets(registry: Registry, dataset_type: str, collections: Sequence[str]) -> bool:
    found = registry.query_datasets(dataset_type, collections=list(collections), find_first=False)
    return next(iter(found), None) is not None


def _run_collections(registry: Registry) -> list[str]:
    from ..types import CollectionType

    return list(registry.query_collections("*", collection_types=[CollectionType.RUN]))


def _check_collections(registry: Registry, collections: Sequence[str]) -> None:
    known = set(registry.query_collections("*"))
    missing = [c for c in collections if c not in known]
    if missing:
        raise MissingCollectionError(
            f"No collection {', '.join(map(repr, missing))} in repository; "
            f"existing: {', '.join(sorted(known)) or 'none'}."
        )


def reads_as_xarray(storage_class: str, known: Mapping[str, StorageClass] | None = None) -> bool:
    """Whether datasets of ``storage_class`` read back as xarray objects (the only kind an
    Intake entry of this package can stack and return), by the storage classes ``known``
    (a datastore's; default: the built-in ones)."""
    if known is None:
        from ..io import default_storage_classes

        known = default_storage_classes()
    return storage_class in known and known[storage_class].python_type.startswith("xarray:")


def _select_types(registry: Registry, patterns: Sequence[str]) -> list[DatasetType]:
    matching = [
        t
        for t in registry.query_dataset_types("*")
        if t.component is None and any(fnmatch.fnmatchcase(t.name, p) for p in patterns)
    ]
    types = [t for t in matching if reads_as_xarray(t.storage_class)]
    for t in matching:
        if t not in types:
            logger.info(
                "Dataset type %s (storage class %s) does not read as xarray; no entry",
                t.name,
                t.storage_class,
            )
    if not types:
        known = [t.name for t in registry.query_dataset_types("*")]
        others = "".join(
            f" {t.name!r} is {t.storage_class}, which does not read as xarray (read it with "
            "Butler.get);"
            for t in matching
        )
        raise MissingDatasetTypeError(
            f"No xarray dataset type matches {', '.join(map(repr, patterns))};{others} "
            f"registered: {', '.join(known) or 'none'}."
        )
    return types


def _search_path(registry: Registry, dt: DatasetType, collections: Sequence[str]) -> list[str]:
    """``collections`` as given, or flattened without CALIBRATION collections for calibration
    types: an entry has no exposure time to choose a validity range with, so it reads the
    calibrations from the RUN (or TAGGED) collections that hold them (only those, so that a
    chain's timestamped output runs do not leak into the catalog)."""
    from ..types import CollectionType

    if not dt.is_calibration:
        return list(collections)
    members = [
        m
        for name in collections
        for m in registry.query_collections(name, flatten_chains=True, include_chains=False)
    ]
    return [
        c
        for c in dict.fromkeys(members)
        if registry.get_collection_type(c) is not CollectionType.CALIBRATION
        and _has_datasets(registry, dt.name, [c])
    ]


def entry_specs(
    registry: Registry,
    *,
    collections: Sequence[str] | None = None,
    dataset_types: Sequence[str] | None = None,
) -> list[EntrySpec]:
    """One entry per dataset type that has datasets in the collections.

    Parameters
    ----------
    registry
        The repository's registry.
    collections
        Search path shared by every entry; by default each entry gets the RUN collections
        (sorted by name) that hold datasets of its type.
    dataset_types
        Glob patterns of dataset type names (default: all).

    Raises
    ------
    MissingCollectionError
        If a collection given does not exist.
    MissingDatasetTypeError
        If no dataset type matches ``dataset_types``.
    """
    types = _select_types(registry, list(dataset_types or ["*"]))
    if collections:
        _check_collections(registry, collections)
    runs = _run_collections(registry) if not collections else []
    specs = []
    for dt in types:
        if collections:
            search = _search_path(registry, dt, collections)
            found = tuple(search) if search and _has_datasets(registry, dt.name, search) else ()
        else:
            found = tuple(r for r in runs if _has_datasets(registry, dt.name, [r]))
        if found:
            specs.append(EntrySpec(dataset_type=dt, collections=found))
        else:
            logger.info("Dataset type %s has no datasets in the collections; no entry", dt.name)
    return specs
