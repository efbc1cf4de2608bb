# SPDX-License-Identifier: BSD-3-Clause
"""Imported by each local worker as it starts (a ``distributed`` preload module).

A quantum needs numpy, dask.array, xarray, the FITS and zarr formatters and the built-in
tasks: about 1.5 s of imports. Importing them while the worker starts -- which the CLI and
the demo overlap with building the quantum graph -- keeps that time out of the first
quanta.
"""

from __future__ import annotations

import dask.array  # noqa: F401
import numcodecs.zstd  # noqa: F401
import numpy  # noqa: F401
import xarray  # noqa: F401

from ..io.formatters import _fits_dataset, _zarr_io  # noqa: F401
from . import _worker, tasks  # noqa: F401
from ._cluster import cache_host_facts

# In the fork server, before any worker is forked: the workers inherit the answers.
cache_host_facts()
