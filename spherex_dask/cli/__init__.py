# SPDX-License-Identifier: BSD-3-Clause
"""The ``spherex-dask`` command line (click). Commands are thin: parse, call the library, print."""

from ._main import cli, main

__all__ = ["cli", "main"]
