# SPDX-License-Identifier: BSD-3-Clause
"""AstropyTable formatters: ECSV (text, keeps units and meta) and Parquet (columnar).

Read parameter ``columns`` (a list of names) keeps only those columns; component = one
column name returns that ``Column``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from ...errors import FileMissingError, FormatterError, SpherexDaskError
from .._fs import open_file, staged_output
from ._base import Formatter, check_parameters

__all__ = ["EcsvFormatter", "ParquetFormatter"]

logger = logging.getLogger(__name__)


class _TableFormatter(Formatter):
    """Shared read/write logic over ``astropy.table.Table.read``/``write``."""

    storage_classes: ClassVar[tuple[str, ...]] = ("AstropyTable",)
    astropy_format: ClassVar[str]
    mode: ClassVar[str]
    magic: ClassVar[bytes]

    def supported_parameters(self) -> frozenset[str]:
        """``columns``: names of the columns to keep."""
        return frozenset({"columns"})

    def read(
        self,
        path: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        component: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read the table (or one column)."""
        from astropy.table import Table

        check_parameters(self, parameters, path)
        columns = (parameters or {}).get("columns")
        try:
            with open_file(path, self.mode, storage_options=storage_options) as f:
                table = Table.read(self._source(f), format=self.astropy_format)
        except SpherexDaskError:
            raise
        except FileNotFoundError as err:
            raise FileMissingError(f"Table file {path!r} does not exist.") from err
        except Exception as err:  # astropy and pyarrow raise many types for bad input
            raise FormatterError(f"Cannot read {self.name} table {path!r}: {err}") from err
        return self._select(table, columns, component, path)

    def _source(self, f: Any) -> Any:
        """What ``Table.read`` gets: the open file (the text, for ECSV)."""
        return f

    def _select(self, table: Any, columns: Any, component: str | None, path: str) -> Any:
        wanted = [component] if component is not None else list(columns or [])
        missing = [c for c in wanted if c not in table.colnames]
        if missing:
            raise FormatterError(
                f"Table {path!r} has no column(s) {missing}; columns: {', '.join(table.colnames)}."
            )
        if component is not None:
            return table[component]
        return table[wanted] if wanted else table

    def write(
        self, obj: Any, path: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        """Write an astropy Table."""
        from astropy.table import Table

        if not isinstance(obj, Table):
            raise FormatterError(
                f"The {self.name} formatter writes astropy Tables, not {type(obj).__name__}."
            )
        with staged_output(path, storage_options) as target:
            obj.write(target, format=self.astropy_format, overwrite=False)

    def can_read(self, path: str, *, storage_options: Mapping[str, Any] | None = None) -> bool:
        """Whether the file starts with the format's signature."""
        try:
            with open_file(path, "rb", storage_options=storage_options) as f:
                return bool(f.read(len(self.magic)) == self.magic)
        except (OSError, ValueError):
            return False


class EcsvFormatter(_TableFormatter):
    """AstropyTable as ECSV text (units, dtypes and ``meta`` kept)."""

    name: ClassVar[str] = "ecsv"
    extensions: ClassVar[tuple[str, ...]] = (".ecsv",)
    astropy_format: ClassVar[str] = "ascii.ecsv"
    mode: ClassVar[str] = "r"
    magic: ClassVar[bytes] = b"# %ECSV"

    def _source(self, f: Any) -> Any:
        text = f.read()  # astropy's ASCII readers take text, not a file object
        return text if "\n" in text else text + "\n"  # never mistaken for a file name


class ParquetFormatter(_TableFormatter):
    """AstropyTable as Apache Parquet (via pyarrow; units and ``meta`` kept)."""

    name: ClassVar[str] = "parquet"
    extensions: ClassVar[tuple[str, ...]] = (".parquet", ".pq")
    astropy_format: ClassVar[str] = "parquet"
    mode: ClassVar[str] = "rb"
    magic: ClassVar[bytes] = b"PAR1"
