# SPDX-License-Identifier: BSD-3-Clause
"""Intake catalogs of spherex_dask repositories: the way scientists meet the data.

Both Intake APIs are served, over one registry-backed core:

- the old ``DataSource`` API: the driver ``spherex_dask`` (:class:`SpherexSource`) and the
  live catalog ``spherex_dask_cat`` (:class:`SpherexCatalog`), registered through the
  ``intake.drivers`` entry-point group;
- Intake 2: the datatype :class:`SpherexDatasets` and the reader
  :class:`SpherexXarrayReader`, imported by ``import intake`` through ``intake.imports``.

:func:`export_catalog` (``spherex-dask export-catalog``) writes a YAML catalog of either
kind for any repository. Names are imported on first use, so that ``import intake`` (which
imports :mod:`spherex_dask.intake._v2`) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._catalog import SpherexCatalog
    from ._export import export_catalog
    from ._selection import REPO_ENV_VAR, Selection, read_selection, resolve_repo
    from ._source import SpherexSource
    from ._v2 import SpherexDatasets, SpherexXarrayReader

__all__ = [
    "REPO_ENV_VAR",
    "Selection",
    "SpherexCatalog",
    "SpherexDatasets",
    "SpherexSource",
    "SpherexXarrayReader",
    "export_catalog",
    "read_selection",
    "resolve_repo",
]

_LAZY = {
    "REPO_ENV_VAR": "._selection",
    "Selection": "._selection",
    "read_selection": "._selection",
    "resolve_repo": "._selection",
    "SpherexCatalog": "._catalog",
    "SpherexSource": "._source",
    "SpherexDatasets": "._v2",
    "SpherexXarrayReader": "._v2",
    "export_catalog": "._export",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
