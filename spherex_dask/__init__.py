# SPDX-License-Identifier: BSD-3-Clause
"""spherex_dask: organise and process SPHEREx survey data on the Pangeo stack.

The public API is the names in ``__all__``. The light value types are imported eagerly; the
classes that pull in xarray, zarr, astropy or dask (``Butler``, ``Pipeline``...) are imported on
first use, so that ``spherex-dask --help`` and registry-only scripts start fast (scientific
Python's SPEC 1 lazy loading, with the names spelled out here rather than generated).
"""

import importlib as _importlib
import typing as _typing

from .dimensions import DimensionUniverse
from .errors import SpherexDaskError
from .types import CollectionType, DataId, DatasetRef, DatasetType, Timespan

if _typing.TYPE_CHECKING:
    from .butler import Butler, FileDataset
    from .pipeline import Pipeline, PipelineTask, QuantumGraph
    from .registry import Registry

__version__ = "0.1.0"

#: Public name -> module that defines it, imported on first attribute access.
_LAZY = {
    "Butler": ".butler",
    "FileDataset": ".butler",
    "Registry": ".registry",
    "Pipeline": ".pipeline",
    "PipelineTask": ".pipeline",
    "QuantumGraph": ".pipeline",
}

__all__ = [
    "Butler",
    "CollectionType",
    "DataId",
    "DatasetRef",
    "DatasetType",
    "DimensionUniverse",
    "FileDataset",
    "Pipeline",
    "PipelineTask",
    "QuantumGraph",
    "Registry",
    "SpherexDaskError",
    "Timespan",
    "__version__",
]


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spherex_dask' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
