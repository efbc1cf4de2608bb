# SPDX-License-Identifier: BSD-3-Clause
"""spherex_dask: organise and process SPHEREx survey data on the Pangeo stack.

The public API is the names in ``__all__``. Every name is imported on first use (scientific
Python's SPEC 1 lazy loading, with the names spelled out here rather than generated): the
classes that pull in xarray, zarr, astropy or dask (``Butler``, ``Pipeline``...) so that
``spherex-dask --help`` and registry-only scripts start fast, and the light value types too, so
that importing a submodule (the CLI, the worker fork server's first module) does not load the
dimension universe (YAML, dataclasses) before it needs it.
"""

import typing as _typing

from ._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from .butler import Butler, FileDataset
    from .dimensions import DimensionUniverse
    from .errors import SpherexDaskError
    from .pipeline import Pipeline, PipelineTask, QuantumGraph
    from .registry import Registry
    from .types import CollectionType, DataId, DatasetRef, DatasetType, Timespan

__version__ = "0.1.0"

#: Public name -> module that defines it, imported on first attribute access.
_LAZY = {
    "CollectionType": ".types",
    "DataId": ".types",
    "DatasetRef": ".types",
    "DatasetType": ".types",
    "DimensionUniverse": ".dimensions",
    "SpherexDaskError": ".errors",
    "Timespan": ".types",
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

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)
