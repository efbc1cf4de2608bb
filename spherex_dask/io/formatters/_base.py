# SPDX-License-Identifier: BSD-3-Clause
"""The :class:`Formatter` ABC, optional-capability protocols and the formatter registry.

A formatter reads and writes one file format for one or more storage classes. Formatters
are stateless and pickle cleanly, so a Dask worker can receive one with its task.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from ...errors import FormatterError, UnknownFormatterError

__all__ = [
    "Formatter",
    "FormatterRegistry",
    "SupportsComponents",
    "SupportsReadParameters",
    "check_parameters",
]

logger = logging.getLogger(__name__)


class Formatter(ABC):
    """Reads and writes one file format.

    Subclasses set the class attributes and implement :meth:`read` and :meth:`write`.

    Attributes
    ----------
    name
        Registry key, stored by the registry as an opaque string (``"fits"``).
    extensions
        File-name extensions, the first one used for new files (``(".fits",)``).
    storage_classes
        Names of the storage classes this formatter serves (``("SpectralImage",)``).
    is_directory
        Whether a "file" of this format is a directory (zarr stores).
    """

    name: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]]
    storage_classes: ClassVar[tuple[str, ...]]
    is_directory: ClassVar[bool] = False

    @abstractmethod
    def read(
        self,
        path: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        component: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read the object (or one ``component`` of it) stored at ``path``.

        Raises
        ------
        FileMissingError
            If ``path`` does not exist.
        FormatterError
            If the file is corrupt, or a parameter or component is not supported; the
            message names the file.
        """

    @abstractmethod
    def write(
        self, obj: Any, path: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        """Write ``obj`` to exactly ``path`` (not atomic: the datastore stages and renames)."""

    def can_read(self, path: str, *, storage_options: Mapping[str, Any] | None = None) -> bool:
        """Whether ``path`` looks like this format; the default checks the extension."""
        return path.lower().endswith(tuple(e.lower() for e in self.extensions))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


@runtime_checkable
class SupportsReadParameters(Protocol):
    """A formatter that accepts read ``parameters`` (region, chunks...)."""

    def supported_parameters(self) -> frozenset[str]:
        """Names of the read parameters understood."""
        ...


@runtime_checkable
class SupportsComponents(Protocol):
    """A formatter that can list the components stored in one file."""

    def list_components(
        self, path: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> tuple[str, ...]:
        """Components present in the file at ``path``."""
        ...


def check_parameters(formatter: Formatter, parameters: Mapping[str, Any] | None, path: str) -> None:
    """Raise :class:`FormatterError` if ``parameters`` holds names ``formatter`` does not support.

    Examples
    --------
    >>> from spherex_dask.io.formatters import JsonFormatter
    >>> check_parameters(JsonFormatter(), {"bbox": (0, 1, 0, 1)}, "a.json")
    Traceback (most recent call last):
    ...
    spherex_dask.errors.FormatterError: Formatter 'json' does not support read parameter(s) ['bbox'] (reading 'a.json'); supported: none.
    """
    if not parameters:
        return
    supported = (
        formatter.supported_parameters()
        if isinstance(formatter, SupportsReadParameters)
        else frozenset()
    )
    unknown = sorted(set(parameters) - supported)
    if unknown:
        raise FormatterError(
            f"Formatter {formatter.name!r} does not support read parameter(s) {unknown} "
            f"(reading {path!r}); supported: {', '.join(sorted(supported)) or 'none'}."
        )


class FormatterRegistry(Mapping[str, Formatter]):
    """A name -> formatter mapping; build a fresh one with :func:`default_formatters`.

    Examples
    --------
    >>> from spherex_dask.io.formatters import JsonFormatter
    >>> reg = FormatterRegistry()
    >>> reg.register(JsonFormatter())
    >>> reg["json"].extensions
    ('.json',)
    >>> reg["nope"]
    Traceback (most recent call last):
    ...
    spherex_dask.errors.UnknownFormatterError: No formatter named 'nope'; registered: json.
    """

    def __init__(self) -> None:
        self._formatters: dict[str, Formatter] = {}

    def register(self, formatter: Formatter, *, replace: bool = False) -> None:
        """Add ``formatter`` under its ``name``.

        Raises
        ------
        FormatterError
            If the name is taken and ``replace`` is false.
        """
        existing = self._formatters.get(formatter.name)
        if existing is not None and not replace and existing != formatter:
            raise FormatterError(
                f"A formatter named {formatter.name!r} is already registered "
                f"({existing!r}); pass replace=True to override it."
            )
        self._formatters[formatter.name] = formatter

    def __getitem__(self, name: str) -> Formatter:
        try:
            return self._formatters[name]
        except KeyError:
            raise UnknownFormatterError(
                f"No formatter named {name!r}; registered: {', '.join(sorted(self)) or 'none'}."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._formatters

    def __iter__(self) -> Iterator[str]:
        return iter(self._formatters)

    def __len__(self) -> int:
        return len(self._formatters)

    def for_storage_class(self, storage_class: str) -> list[Formatter]:
        """Formatters serving ``storage_class``, in registration order."""
        return [f for f in self._formatters.values() if storage_class in f.storage_classes]

    def guess(
        self,
        path: str,
        *,
        storage_class: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Formatter:
        """The first formatter (serving ``storage_class`` if given) whose ``can_read`` accepts ``path``.

        Raises
        ------
        UnknownFormatterError
            If no formatter recognises the file; the message lists the candidates tried.
        """
        candidates = (
            self.for_storage_class(storage_class)
            if storage_class is not None
            else list(self._formatters.values())
        )
        for formatter in candidates:
            if formatter.can_read(path, storage_options=storage_options):
                logger.debug("Guessed formatter %s for %s", formatter.name, path)
                return formatter
        names = ", ".join(f.name for f in candidates) or "none"
        scope = f" for storage class {storage_class!r}" if storage_class else ""
        raise UnknownFormatterError(
            f"No formatter{scope} recognises {path!r} (tried: {names}); pass the formatter "
            "name explicitly or check the file."
        )
