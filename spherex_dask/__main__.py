# SPDX-License-Identifier: BSD-3-Clause
"""``python -m spherex_dask`` runs the command line."""

from .cli import main

if __name__ == "__main__":
    main()
