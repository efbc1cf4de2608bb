# SPDX-License-Identifier: BSD-3-Clause
"""The Intake driver (old ``DataSource`` API): datasets of one type as lazy xarray."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from intake.source.base import DataSource, Schema

from .. import __version__
from ._selection import (
    Selection,
    SelectionSummary,
    as_dataset,
    open_refs,
    read_selection,
    summarize_selection,
)

if TYPE_CHECKING:
    import xarray as xr

    from ..butler import Butler

__all__ = ["SpherexSource"]

logger = logging.getLogger(__name__)


class SpherexSource(DataSource):
    """Datasets of one type in a spherex_dask repository, as one lazy ``xarray.Dataset``.

    Registered as the Intake driver ``spherex_dask`` (``intake.open_spherex_dask(...)``).
    The selection is a registry query, so narrowing it with :meth:`search` is a SQL query
    however many datasets the repository holds. Instances pickle by their arguments (the
    registry connection is reopened on first use), so they can travel to Dask workers.

    Parameters
    ----------
    dataset_type
        Dataset type name, e.g. ``"raw"`` (``"raw.image"`` reads one component).
    repo
        Repository directory; default ``$SPHEREX_DASK_REPO``, then ``default_repo``, then
        ``demo-repo``.
    collections
        Collections to search, in order (list or comma-separated); default every RUN
        collection.
    where
        Query expression, e.g. ``"detector IN (1..3) AND exposure > 10"``.
    bind
        Values for ``:name`` placeholders in ``where``.
    data_id
        Dimension values every dataset must have, e.g. ``{"detector": 2}``.
    parameters
        Read parameters for the formatter, e.g. ``{"chunks": {"y": 512, "x": 512}}``.
    default_repo
        Repository used when ``repo`` is empty and ``$SPHEREX_DASK_REPO`` is unset
        (catalogs set it relative to their own directory).
    metadata
        Free-form metadata (set by catalogs).

    Examples
    --------
    >>> src = SpherexSource("raw", "/data/repo", collections="rawexpr", where="detector = 2")
    >>> src.selection.collections, src.selection.where
    (('rawexpr',), 'detector = 2')

    With a repository: ``src.search("exposure > 10").to_dask()``.
    """

    container = "xarray"
    name = "spherex_dask"
    version = __version__
    partition_access = True

    def __init__(
        self,
        dataset_type: str,
        repo: str | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        default_repo: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(metadata=dict(metadata or {}))
        self.selection = Selection.build(
            repo=repo,
            dataset_type=dataset_type,
            collections=collections,
            where=where,
            bind=bind,
            data_id=data_id,
            parameters=parameters,
            default_repo=default_repo,
        )
        self._butler: Butler | None = None
        self._summary: SelectionSummary | None = None
        self._dataset: xr.Dataset | xr.DataArray | None = None

    # -- lazily opened state ---------------------------------------------------------------
    def _get_butler(self) -> Butler:
        if self._butler is None:
            self._butler = self.selection.open_butler()
        return self._butler

    def _get_summary(self) -> SelectionSummary:
        if self._summary is None:
            self._summary = summarize_selection(self._get_butler(), self.selection)
        return self._summary

    def _get_schema(self) -> Schema:
        """From the registry (one query) and the first dataset opened lazily (headers only)."""
        summary = self._get_summary()
        first = as_dataset(open_refs(self._get_butler(), self.selection, summary.refs[:1])[0])
        sizes: dict[Hashable, int] = {d: len(summary.values[d]) for d in summary.stacked_dims}
        sizes.update(first.sizes)
        variables = dict(first.data_vars)
        return Schema(
            datashape=None,
            dtype={str(k): str(v.dtype) for k, v in variables.items()},
            shape=tuple(sizes.values()),
            npartitions=summary.count,
            extra_metadata={
                "dataset_type": self.selection.dataset_type,
                "count": summary.count,
                "dims": sizes,
                "dimensions": list(summary.dimensions),
                "data_id_values": {d: list(v) for d, v in summary.values.items()},
                "data_vars": list(map(str, variables)),
                "coords": list(map(str, first.coords)),
            },
        )

    # -- reading ---------------------------------------------------------------------------
    def to_dask(self) -> xr.Dataset | xr.DataArray:
        """The whole selection as one lazy, chunked xarray object (no pixel is read).

        Stacked along the dimensions that take several values, e.g. ``(exposure, detector,
        y, x)``; a single dataset keeps its own dimensions, with its data ID as scalar
        coordinates.
        """
        if self._dataset is None:
            self._dataset = read_selection(
                self.selection, butler=self._get_butler(), summary=self._get_summary()
            )
        return self._dataset

    def read(self) -> xr.Dataset | xr.DataArray:
        """The whole selection loaded into memory (Intake's ``read``); prefer :meth:`to_dask`."""
        return self.to_dask().load()

    def _get_partition(self, i: int) -> xr.Dataset | xr.DataArray:
        """Dataset ``i`` of the selection (query order), loaded into memory."""
        summary = self._get_summary()
        ref = summary.refs[i]
        (one,) = open_refs(self._get_butler(), self.selection, [ref])
        scalars = {d: ref.data_id[d] for d in summary.dimensions}
        return one.assign_coords(scalars).load()

    def read_chunked(self) -> Iterator[xr.Dataset | xr.DataArray]:
        """Yield the datasets one at a time, each loaded into memory."""
        for i in range(self._get_summary().count):
            yield self._get_partition(i)

    # -- narrowing -------------------------------------------------------------------------
    def search(
        self, where: str = "", *, bind: Mapping[str, Any] | None = None, **data_id: Any
    ) -> SpherexSource:
        """A new source for this selection AND ``where``/``data_id`` (checked now, read later).

        Examples: ``src.search("exposure > 10")``, ``src.search(detector=2)``,
        ``src.search("detector IN (:dets)", bind={"dets": [1, 2]})``.

        Raises
        ------
        QuerySyntaxError, UnknownNameError
            For a bad expression or an unknown name (raised here, not at read time).
        DataIdError
            If ``data_id`` contradicts a value already fixed.
        """
        narrowed = self.selection.narrow(where=where, bind=bind, data_id=data_id)
        new = type(self)(
            narrowed.dataset_type,
            narrowed.repo,
            collections=list(narrowed.collections),
            where=narrowed.where,
            bind=dict(narrowed.bind),
            data_id=dict(narrowed.data_id),
            parameters=dict(narrowed.parameters),
            metadata=self.metadata,
        )
        new.name, new.description, new.cat = self.name, self.description, self.cat
        narrowed.query(new._get_butler())  # validates names and bind values; runs nothing
        return new

    def _close(self) -> None:
        if self._butler is not None:
            self._butler.close()
        self._butler = None
        self._summary = None
        self._dataset = None
