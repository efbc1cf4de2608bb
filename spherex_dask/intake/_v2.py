# SPDX-License-Identifier: BSD-3-Clause
"""The Intake 2 datatype and reader: *what* the data is (a registry selection) and *how* to
load it (stacked lazy xarray).

Intake 2 discovers readers as subclasses of ``BaseReader``, so importing this module is the
registration; the ``intake.imports`` entry point makes ``import intake`` import it. It must
stay light: xarray, dask and the Butler are imported only when data is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from intake.readers.datatypes import BaseData
from intake.readers.readers import BaseReader

from ._selection import Selection, read_selection, summarize_selection

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["SpherexDatasets", "SpherexXarrayReader"]


class SpherexDatasets(BaseData):
    """Datasets of one type in a spherex_dask repository, selected by a registry query.

    The arguments are those of :class:`spherex_dask.intake.SpherexSource`; they are stored
    as plain attributes so that Intake can write them into a catalog.

    Examples
    --------
    >>> data = SpherexDatasets("raw", repo="/data/repo", collections=["rawexpr"])
    >>> data.selection().collections
    ('rawexpr',)
    """

    structure: ClassVar[set[str]] = {"array"}

    def __init__(
        self,
        dataset_type: str,
        repo: str | None = None,
        collections: str | Sequence[str] | None = None,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
        default_repo: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.dataset_type = dataset_type
        self.repo = repo
        self.collections = [collections] if isinstance(collections, str) else collections
        self.where = where or ""
        self.bind = dict(bind or {})
        self.data_id = dict(data_id or {})
        self.default_repo = default_repo
        super().__init__(metadata=metadata)

    def selection(self, *, parameters: Mapping[str, Any] | None = None) -> Selection:
        """The registry selection these arguments describe."""
        return Selection.build(
            repo=self.repo,
            dataset_type=self.dataset_type,
            collections=self.collections,
            where=self.where,
            bind=self.bind,
            data_id=self.data_id,
            parameters=parameters,
            default_repo=self.default_repo,
        )

    def narrow(
        self, where: str = "", *, bind: Mapping[str, Any] | None = None, **data_id: Any
    ) -> SpherexDatasets:
        """These datasets AND ``where``/``data_id`` (a narrower SQL query; nothing is read)."""
        narrowed = self.selection().narrow(where=where, bind=bind, data_id=data_id)
        return type(self)(
            self.dataset_type,
            repo=self.repo,
            collections=self.collections,
            where=narrowed.where,
            bind=dict(narrowed.bind),
            data_id=dict(narrowed.data_id),
            default_repo=self.default_repo,
            metadata=self.metadata,
        )


class SpherexXarrayReader(BaseReader):
    """Read :class:`SpherexDatasets` as one lazy ``xarray.Dataset`` (no pixel is read).

    ``read()`` stacks the selection along the dimensions that vary (``exposure``,
    ``detector``...) in front of the image dimensions; ``discover()`` opens only the first
    dataset. Keyword arguments of ``read`` narrow the selection: ``where=`` and data ID
    values (``detector=2``) are AND-ed with it; ``parameters=`` go to the formatter.
    """

    imports: ClassVar[set[str]] = {"spherex_dask", "xarray", "dask"}
    implements: ClassVar[set[type[BaseData]]] = {SpherexDatasets}
    output_instance = "xarray:Dataset"
    func = "spherex_dask.intake._selection:read_selection"

    def _read(
        self,
        data: SpherexDatasets,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        **data_id: Any,
    ) -> xr.Dataset | xr.DataArray:
        if where or bind or data_id:
            data = data.narrow(where, bind=bind, **data_id)
        return read_selection(data.selection(parameters=parameters))

    def discover(self, **kwargs: Any) -> xr.Dataset | xr.DataArray:
        """The first dataset of the selection only, lazily (a cheap preview)."""
        kw = {**self.kwargs, **kwargs}
        data: SpherexDatasets = kw.pop("data")
        selection = data.selection(parameters=kw.get("parameters"))
        butler = selection.open_butler()
        try:
            summary = summarize_selection(butler, selection)
            first = type(summary)(
                refs=summary.refs[:1],
                dimensions=summary.dimensions,
                values={d: (summary.refs[0].data_id[d],) for d in summary.dimensions},
            )
            return read_selection(selection, butler=butler, summary=first)
        finally:
            butler.close()

    def search(
        self, where: str = "", *, bind: Mapping[str, Any] | None = None, **data_id: Any
    ) -> SpherexXarrayReader:
        """A reader of this selection AND ``where``/``data_id`` (checked now, read later).

        Raises
        ------
        QuerySyntaxError, UnknownNameError
            For a bad expression or an unknown name.
        """
        kw = dict(self.kwargs)
        data: SpherexDatasets = kw.pop("data")
        narrowed = data.narrow(where, bind=bind, **data_id)
        selection = narrowed.selection()
        butler = selection.open_butler()
        try:
            selection.query(butler)  # validates names and bind values; runs nothing
        finally:
            butler.close()
        return type(self)(data=narrowed, metadata=self.metadata, **kw)
