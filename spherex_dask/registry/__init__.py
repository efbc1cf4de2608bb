# SPDX-License-Identifier: BSD-3-Clause
"""The registry: a SQL catalogue (SQLAlchemy Core) of dimensions, dataset types, collections
and datasets, on SQLite or PostgreSQL.

It knows nothing of files, xarray or Dask: a dataset's location is an opaque record that only
the datastore interprets.
"""

from ._registry import Registry

__all__ = ["Registry"]
