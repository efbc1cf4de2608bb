# SPDX-License-Identifier: BSD-3-Clause
"""Storage classes: the Python type a dataset reads back as, its components and formatters."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FormatterError, UnknownFormatterError

__all__ = ["StorageClass", "StorageClassRegistry", "default_storage_classes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageClass:
    """A named in-memory type for datasets.

    Attributes
    ----------
    name
        The name dataset types refer to (``"SpectralImage"``).
    python_type
        ``"module:qualname"`` of the type, imported only when checked.
    components
        Names readable on their own (``raw.flags``); empty for atomic types.
    default_formatter
        Formatter for ``put`` (pipeline outputs).
    ingest_formatters
        Formatters accepted for ingested files, tried in order when guessing.
    """

    name: str
    python_type: str
    components: tuple[str, ...] = ()
    default_formatter: str
    ingest_formatters: tuple[str, ...] = ()

    def resolve_type(self) -> type:
        """The Python type (imported on demand)."""
        module, _, qualname = self.python_type.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def validate(self, obj: Any) -> None:
        """Raise :class:`FormatterError` if ``obj`` is not of this storage class's type."""
        module = self.python_type.partition(":")[0].split(".")[0]
        if not any(
            c.__module__.split(".")[0] == module for c in type(obj).__mro__
        ) or not isinstance(obj, self.resolve_type()):
            raise FormatterError(
                f"Storage class {self.name!r} holds {self.python_type.replace(':', '.')} objects, "
                f"got {type(obj).__module__}.{type(obj).__qualname__}."
            )


class StorageClassRegistry(Mapping[str, StorageClass]):
    """Name -> :class:`StorageClass`; unknown names raise with the list of known ones."""

    def __init__(self, classes: Mapping[str, StorageClass] | None = None) -> None:
        self._classes = dict(classes or {})

    def register(self, storage_class: StorageClass) -> None:
        """Add (or replace) a storage class."""
        self._classes[storage_class.name] = storage_class

    def __getitem__(self, name: str) -> StorageClass:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownFormatterError(
                f"Unknown storage class {name!r}; known: {', '.join(sorted(self._classes))}."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


def default_storage_classes() -> StorageClassRegistry:
    """A new registry with the built-in storage classes.

    Examples
    --------
    >>> sc = default_storage_classes()["SpectralImage"]
    >>> sc.default_formatter, sc.ingest_formatters
    ('zarr', ('fits', 'zarr'))
    >>> sc.validate({"a": 1})
    Traceback (most recent call last):
    ...
    spherex_dask.errors.FormatterError: Storage class 'SpectralImage' holds xarray.Dataset objects, got builtins.dict.
    """
    registry = StorageClassRegistry()
    registry.register(
        StorageClass(
            name="SpectralImage",
            python_type="xarray:Dataset",
            components=("image", "flags", "variance", "zodi", "psf", "wavelength", "bandwidth"),
            default_formatter="zarr",
            ingest_formatters=("fits", "zarr"),
        )
    )
    registry.register(
        StorageClass(
            name="AstropyTable",
            python_type="astropy.table:Table",
            default_formatter="parquet",
            ingest_formatters=("ecsv", "parquet"),
        )
    )
    registry.register(
        StorageClass(
            name="StructuredData",
            python_type="builtins:dict",
            default_formatter="json",
            ingest_formatters=("json",),
        )
    )
    return registry
