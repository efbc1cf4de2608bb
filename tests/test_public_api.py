"""The package's public surface: an explicit ``__all__`` that matches what it exposes."""

from __future__ import annotations

import subprocess
import sys

import pytest

import spherex_dask


def test_all_names_resolve() -> None:
    """Every name in __all__ is importable (lazy ones included)."""
    for name in spherex_dask.__all__:
        assert getattr(spherex_dask, name) is not None, name


def test_all_matches_public_names() -> None:
    """__all__ lists exactly the public, non-module names of the package."""
    import types

    public = {
        name
        for name in dir(spherex_dask)
        if not name.startswith("_") and not isinstance(getattr(spherex_dask, name), types.ModuleType)
    }
    assert public == set(spherex_dask.__all__) - {"__version__"}


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A typo raises AttributeError naming the attribute."""
    with pytest.raises(AttributeError, match="Butlr"):
        spherex_dask.Butlr  # noqa: B018


def test_import_is_light() -> None:
    """Importing the package (and the CLI) loads neither xarray, dask, astropy nor sqlalchemy."""
    code = (
        "import sys, spherex_dask, spherex_dask.cli; "
        "print(','.join(m for m in ('xarray', 'dask', 'astropy', 'sqlalchemy', 'zarr') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
