# SPDX-License-Identifier: BSD-3-Clause
"""Public names imported from their submodules on first use (scientific Python's SPEC 1)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names load on first access.

    Parameters
    ----------
    package
        The package's ``__name__``.
    names
        Public name -> relative module defining it (``"._builder"``).

    Examples
    --------
    In a package's ``__init__.py``::

        _LAZY = {"Butler": ".butler"}
        __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
    """
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
            setattr(module, name, value)  # found directly from now on
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(getattr(module, "__all__", ())))

    return __getattr__, __dir__
