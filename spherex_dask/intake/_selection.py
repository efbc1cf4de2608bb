# SPDX-License-Identifier: BSD-3-Clause
"""What an Intake entry reads: a registry selection, and how it becomes one lazy xarray object.

Both Intake APIs (the old ``DataSource`` driver and the 2.x reader) are thin shells over this
module. A :class:`Selection` is a query (dataset type, collections, ``where``, ``bind``, data
ID); :func:`read_selection` asks the registry for the matching datasets in one SQL query,
opens each lazily through the datastore and stacks them along the dimensions that vary.
Nothing here imports xarray, dask or the Butler at module level, so ``import intake`` (which
imports this package through the ``intake.imports`` entry point) stays fast.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    DataIdError,
    DatasetNotFoundError,
    DatasetTypeError,
    QueryError,
    SpherexDaskError,
)

if TYPE_CHECKING:
    import xarray as xr

    from ..butler import Butler
    from ..types import DatasetRef

__all__ = [
    "DEFAULT_REPO",
    "REPO_ENV_VAR",
    "Selection",
    "SelectionSummary",
    "as_dataset",
    "read_selection",
    "resolve_repo",
    "summarize_selection",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the repository an Intake catalog reads.
REPO_ENV_VAR = "SPHEREX_DASK_REPO"
#: The repository used when neither an argument nor the environment names one.
DEFAULT_REPO = "demo-repo"


def resolve_repo(repo: str | os.PathLike[str] | None, *, default_repo: str | None = None) -> str:
    """The repository to open: ``repo``, else ``$SPHEREX_DASK_REPO``, else ``default_repo``.

    Empty strings count as missing (an unset environment variable expands to ``""`` in an
    Intake catalog); the last resort is ``demo-repo`` in the working directory. Local paths
    are normalised (``file://`` prefix and ``..`` parts removed).

    Examples
    --------
    >>> resolve_repo("/data/repo", default_repo="/catalogs/../demo-repo")
    '/data/repo'
    >>> _normalize("file:///work/catalogs/../demo-repo")
    '/work/demo-repo'
    """
    for candidate in (repo, os.environ.get(REPO_ENV_VAR), default_repo):
        if candidate is not None and str(candidate).strip():
            return _normalize(os.fspath(candidate).strip())
    return DEFAULT_REPO


def _normalize(path: str) -> str:
    """Local paths without ``file://`` (Intake 2's ``CATALOG_DIR`` has it) and ``..`` parts."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    if "://" in path:
        return path
    return os.path.normpath(path)


def _as_tuple(collections: str | Sequence[str] | None) -> tuple[str, ...]:
    if collections is None:
        return ()
    if isinstance(collections, str):
        return tuple(c.strip() for c in collections.split(",") if c.strip())
    return tuple(collections)


def combine_where(first: str, second: str) -> str:
    """AND two query expressions, keeping each intact in parentheses.

    Examples
    --------
    >>> combine_where("detector = 2", "")
    'detector = 2'
    >>> combine_where("detector = 2", "exposure > 1")
    '(detector = 2) AND (exposure > 1)'
    """
    parts = [p.strip() for p in (first, second) if p and p.strip()]
    if len(parts) < 2:
        return parts[0] if parts else ""
    return " AND ".join(f"({p})" for p in parts)


def _merge_strict(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    conflicts = {k: (old[k], v) for k, v in new.items() if k in old and old[k] != v}
    if conflicts:
        detail = ", ".join(f"{k}: {a!r} vs {b!r}" for k, (a, b) in conflicts.items())
        raise DataIdError(
            f"Cannot narrow the selection: {kind} already fixes {detail}; "
            "start from the catalog entry again to choose other values."
        )
    return {**old, **new}


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The datasets of one type matching a query, in a repository.

    Parameters
    ----------
    repo
        Repository directory (holding ``butler.yaml``).
    dataset_type
        Dataset type name; ``raw.image`` reads one component.
    collections
        Collections to search, in order; empty means every RUN collection.
    where
        Query expression in the registry's language, e.g. ``"detector IN (1..3)"``.
    bind
        Values for ``:name`` placeholders in ``where``.
    data_id
        Dimension values every dataset must have, e.g. ``{"detector": 2}``.
    parameters
        Read parameters handed to the formatter (``bbox``, ``chunks``).

    Examples
    --------
    >>> s = Selection(repo="repo", dataset_type="raw", where="detector > 1")
    >>> s.narrow(where="exposure < 5", data_id={"instrument": "SPHEREx"}).where
    '(detector > 1) AND (exposure < 5)'
    """

    repo: str
    dataset_type: str
    collections: tuple[str, ...] = ()
    where: str = ""
    bind: Mapping[str, Any] = field(default_factory=dict)
    data_id: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        repo: str | os.PathLike[str] | None,
        dataset_type: str,
        collections: str | Sequence[str] | None = None,
        where: str | None = None,
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        default_repo: str | None = None,
    ) -> Selection:
        """A selection from loosely typed catalog arguments (``None`` for empty)."""
        if not dataset_type:
            raise QueryError("An Intake entry needs a dataset_type, e.g. dataset_type='raw'.")
        return cls(
            repo=resolve_repo(repo, default_repo=default_repo),
            dataset_type=dataset_type,
            collections=_as_tuple(collections),
            where=where or "",
            bind=dict(bind or {}),
            data_id=dict(data_id or {}),
            parameters=dict(parameters or {}),
        )

    @property
    def parent_type(self) -> str:
        """The dataset type name without any component."""
        return self.dataset_type.partition(".")[0]

    @property
    def component(self) -> str | None:
        """The component read (``raw.image`` -> ``image``), or ``None``."""
        return self.dataset_type.partition(".")[2] or None

    def narrow(
        self,
        *,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> Selection:
        """This selection AND another condition (a narrower SQL query, nothing is read).

        Raises
        ------
        DataIdError
            If ``data_id`` or ``bind`` contradicts a value the selection already fixes.
        """
        return replace(
            self,
            where=combine_where(self.where, where),
            bind=_merge_strict("bind", self.bind, bind or {}),
            data_id=_merge_strict("the data ID", self.data_id, data_id or {}),
        )

    def describe(self) -> str:
        """One line naming the query, for messages."""
        parts = [
            f"{self.dataset_type!r} in [{', '.join(self.collections) or 'all RUN collections'}]"
        ]
        if self.where:
            parts.append(f"where {self.where!r}")
        if self.data_id:
            parts.append(f"data ID {dict(self.data_id)}")
        return " ".join(parts) + f" of repository {self.repo!r}"

    # -- registry access -----------------------------------------------------------------
    def open_butler(self) -> Butler:
        """A read-only Butler on the repository.

        Raises
        ------
        ConfigError
            If ``repo`` holds no repository (the message names the environment variable).
        """
        from ..butler import Butler

        try:
            return Butler(self.repo, writeable=False)
        except (SpherexDaskError, OSError) as err:
            err.add_note(
                f"Intake opened repository {str(Path(self.repo))!r}; pass repo=... or set "
                f"${REPO_ENV_VAR} to point the catalog at another repository."
            )
            raise

    def search_path(self, butler: Butler) -> list[str]:
        """The collections to search: as given, or every RUN collection by name."""
        if self.collections:
            return list(self.collections)
        from ..types import CollectionType

        return list(butler.registry.query_collections("*", collection_types=[CollectionType.RUN]))

    def query(self, butler: Butler) -> Iterator[DatasetRef]:
        """Stream the matching datasets (one SQL query; the expression is checked first).

        Raises
        ------
        QuerySyntaxError, UnknownNameError
            For a bad ``where`` (the note names this selection).
        """
        try:
            return butler.registry.query_datasets(
                self.parent_type,
                collections=self.search_path(butler),
                where=self.where,
                bind=dict(self.bind) or None,
                data_id=dict(self.data_id) or None,
                find_first=True,
            )
        except SpherexDaskError as err:
            err.add_note(f"While querying {self.describe()}.")
            raise


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectionSummary:
    """What a selection holds, from the registry alone (no file is opened).

    Attributes
    ----------
    refs
        The matching datasets, in query order.
    dimensions
        The dataset type's dimensions: temporal ones (``exposure``) first, then in universe
        order.
    values
        For each dimension, the sorted distinct values in the selection.
    """

    refs: tuple[DatasetRef, ...]
    dimensions: tuple[str, ...]
    values: Mapping[str, tuple[Any, ...]]

    @property
    def count(self) -> int:
        """Number of datasets."""
        return len(self.refs)

    @property
    def stacked_dims(self) -> tuple[str, ...]:
        """Dimensions with more than one value: the leading dimensions of the stacked result."""
        return tuple(d for d in self.dimensions if len(self.values[d]) > 1)


def summarize_selection(butler: Butler, selection: Selection) -> SelectionSummary:
    """Query the registry once and collect the datasets and their dimension values.

    Raises
    ------
    DatasetNotFoundError
        If nothing matches.
    DatasetTypeError
        If the datasets do not read as xarray (a ``StructuredData`` dict, an astropy table).
    """
    refs = tuple(selection.query(butler))
    if not refs:
        raise DatasetNotFoundError(
            f"No dataset matches {selection.describe()}; list what exists with "
            f"`spherex-dask query-datasets {selection.repo} {selection.parent_type} --collections ...`."
        )
    _check_reads_as_xarray(butler, selection, refs[0].dataset_type.storage_class)
    dimensions = _stack_order(butler, refs[0].dataset_type.dimensions)
    values = {d: tuple(sorted({ref.data_id[d] for ref in refs}, key=_sort_key)) for d in dimensions}
    return SelectionSummary(refs=refs, dimensions=dimensions, values=values)


def _check_reads_as_xarray(butler: Butler, selection: Selection, storage_class: str) -> None:
    from ._entries import reads_as_xarray

    known = butler.datastore.storage_classes
    if not reads_as_xarray(storage_class, known):
        python_type = known[storage_class].python_type
        raise DatasetTypeError(
            f"Dataset type {selection.parent_type!r} has storage class {storage_class!r} "
            f"({python_type.replace(':', '.')}), which this Intake driver cannot return as "
            "xarray; read its datasets with Butler.get, e.g. "
            f"Butler({selection.repo!r}).get({selection.parent_type!r}, data_id, "
            "collections=...)."
        )


def _stack_order(butler: Butler, dimensions: Sequence[str]) -> tuple[str, ...]:
    """Temporal dimensions (observations) outermost, then universe order: ``(exposure,
    detector)`` -- a cube of exposures of detectors."""
    universe = butler.registry.universe
    ordered = universe.sorted(dimensions)
    return tuple(sorted(ordered, key=lambda d: not universe[d].temporal))


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int) else (1, str(value))


def open_refs(
    butler: Butler, selection: Selection, refs: Sequence[DatasetRef]
) -> list[xr.Dataset | xr.DataArray]:
    """Open each dataset lazily through the datastore (file headers are read, pixels are not)."""
    locations = butler.registry.get_locations([ref.id for ref in refs])
    opened = []
    for ref in refs:
        if not locations.get(ref.id):
            raise DatasetNotFoundError(
                f"Dataset {ref.dataset_type.name} {ref.data_id} ({ref.id}) in run {ref.run!r} "
                "is registered but has no stored file."
            )
        opened.append(
            butler.datastore.get(
                ref,
                locations[ref.id],
                parameters=dict(selection.parameters) or None,
                component=selection.component,
            )
        )
    return opened


def as_dataset(obj: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """A Dataset view of what the datastore returned (a component comes as a DataArray)."""
    if hasattr(obj, "data_vars"):
        return obj  # type: ignore[return-value]
    return obj.to_dataset(name=obj.name or "data")


def read_selection(
    selection: Selection,
    *,
    butler: Butler | None = None,
    summary: SelectionSummary | None = None,
) -> xr.Dataset | xr.DataArray:
    """The selection as one lazy xarray object, stacked along the dimensions that vary.

    A single dataset comes back as the datastore returns it, with its data ID values as
    scalar coordinates. Several datasets are stacked along each dimension that takes more
    than one value (e.g. ``exposure`` x ``detector`` in front of ``y``, ``x``); missing
    combinations are filled with NaN. No pixel is read.

    Raises
    ------
    DatasetNotFoundError
        If nothing matches.
    DimensionError
        If the datasets cannot be stacked (different pixel grids).
    """
    from ._stack import stack

    own = butler is None
    butler = butler if butler is not None else selection.open_butler()
    try:
        summary = summary if summary is not None else summarize_selection(butler, selection)
        opened = open_refs(butler, selection, summary.refs)
    finally:
        if own:
            butler.close()
    logger.debug("Opened %d dataset(s) of %s", summary.count, selection.describe())
    return stack(opened, [ref.data_id for ref in summary.refs], summary)
