# SPDX-License-Identifier: BSD-3-Clause
"""JSON formatter for StructuredData (a ``dict``); component = one top-level key."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from ...errors import FileMissingError, FormatterError, SpherexDaskError
from .._fs import open_file
from ._base import Formatter, check_parameters

__all__ = ["JsonFormatter"]

logger = logging.getLogger(__name__)


class JsonFormatter(Formatter):
    """StructuredData as a UTF-8 JSON object.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "meta.json")
    ...     JsonFormatter().write({"a": 1, "b": [1, 2]}, path)
    ...     JsonFormatter().read(path, component="b")
    [1, 2]
    """

    name: ClassVar[str] = "json"
    extensions: ClassVar[tuple[str, ...]] = (".json",)
    storage_classes: ClassVar[tuple[str, ...]] = ("StructuredData",)

    def read(
        self,
        path: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        component: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read the object, or the value of one top-level key."""
        check_parameters(self, parameters, path)
        try:
            with open_file(path, "rb", storage_options=storage_options) as f:
                data = json.loads(f.read().decode("utf-8"))
        except SpherexDaskError:
            raise
        except FileNotFoundError as err:
            raise FileMissingError(f"JSON file {path!r} does not exist.") from err
        except (ValueError, OSError) as err:
            raise FormatterError(f"Cannot read JSON file {path!r}: {err}") from err
        if not isinstance(data, dict):
            raise FormatterError(
                f"JSON file {path!r} holds a {type(data).__name__}, not an object."
            )
        if component is None:
            return data
        if component not in data:
            raise FormatterError(
                f"JSON file {path!r} has no key {component!r}; keys: {', '.join(map(str, data))}."
            )
        return data[component]

    def write(
        self, obj: Any, path: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        """Write a dict as indented JSON."""
        if not isinstance(obj, Mapping):
            raise FormatterError(f"The json formatter writes dicts, not {type(obj).__name__}.")
        try:
            text = json.dumps(dict(obj), indent=1, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise FormatterError(f"Cannot encode {path!r} as JSON: {err}") from err
        with open_file(path, "wb", storage_options=storage_options) as f:
            f.write(text.encode("utf-8"))

    def can_read(self, path: str, *, storage_options: Mapping[str, Any] | None = None) -> bool:
        """Whether the file is a JSON object (starts with ``{``)."""
        try:
            with open_file(path, "rb", storage_options=storage_options) as f:
                return f.read(64).lstrip()[:1] == b"{"
        except (OSError, ValueError):
            return False
