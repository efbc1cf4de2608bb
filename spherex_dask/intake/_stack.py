# SPDX-License-Identifier: BSD-3-Clause
"""Stack lazily opened datasets into one xarray object along their data-ID dimensions."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DimensionError

if TYPE_CHECKING:
    import xarray as xr

    from ._selection import SelectionSummary

__all__ = ["stack"]

logger = logging.getLogger(__name__)

#: Name of the temporary dimension the datasets are concatenated along before unstacking.
_STACK = "__spherex_dask_dataset__"


def stack(
    opened: Sequence[xr.Dataset | xr.DataArray],
    data_ids: Sequence[Mapping[str, Any]],
    summary: SelectionSummary,
) -> xr.Dataset | xr.DataArray:
    """Stack ``opened`` along the dimensions of ``summary`` that take several values.

    Dimensions with one value become scalar coordinates. The stacked dimensions come first,
    in universe order, with the data-ID values as their coordinates; combinations missing
    from the selection are filled with NaN. Everything stays lazy: concatenation, unstacking
    and transposition only rearrange dask graphs.

    Raises
    ------
    DimensionError
        If the datasets do not share their pixel grid (``y``/``x`` coordinates).
    """
    import pandas as pd
    import xarray as xr

    dims = summary.stacked_dims
    scalars = {d: summary.values[d][0] for d in summary.dimensions if d not in dims}
    if not dims:
        return opened[0].assign_coords(scalars)
    try:
        combined = xr.concat(  # type: ignore[call-overload]  # stubs reject a Dataset|DataArray list
            list(opened),
            dim=_STACK,
            data_vars="all",
            coords="all",
            compat="override",
            join="exact",
            combine_attrs="drop_conflicts",
        )
    except ValueError as err:
        raise DimensionError(
            f"Cannot stack {len(opened)} {summary.refs[0].dataset_type.name!r} datasets along "
            f"({', '.join(dims)}): their pixel grids differ ({err}). Narrow the selection "
            "(e.g. search(detector=...)) or read the datasets one by one."
        ) from err
    keys = [tuple(data_id[d] for d in dims) for data_id in data_ids]
    index = pd.MultiIndex.from_tuples(keys, names=list(dims))
    combined = combined.assign_coords(xr.Coordinates.from_pandas_multiindex(index, _STACK))
    result = combined.unstack(_STACK).transpose(*dims, ...)
    logger.debug("Stacked %d datasets along %s", len(opened), dims)
    return result.assign_coords(scalars)
