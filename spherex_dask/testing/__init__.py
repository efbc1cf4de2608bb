# SPDX-License-Identifier: BSD-3-Clause
"""Testing support: contract suites for plug-in authors, and helpers for task authors.

The pytest fixtures (``spherex_butler``, ``spherex_data_ids``, ``spherex_sim``,
``spherex_client``) come with the ``spherex_dask`` pytest plugin, registered on install.
"""

from ._plugin import make_butler
from ._tasks import load_task_inputs, run_task
from .formatters import FormatterTests
from .registry import RegistryTests

__all__ = ["FormatterTests", "RegistryTests", "load_task_inputs", "make_butler", "run_task"]
