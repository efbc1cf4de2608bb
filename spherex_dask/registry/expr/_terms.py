# SPDX-License-Identifier: BSD-3-Clause
"""What names resolve to (columns and timespans) and how bind values become SQL operands."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Set
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

import sqlalchemy
from sqlalchemy.sql.elements import ColumnElement

from spherex_dask.errors import QueryError
from spherex_dask.types import INT64_MAX, INT64_MIN, NS_MAX, NS_MIN, Timespan, datetime_to_ns

__all__ = [
    "ColumnTerm",
    "ExpressionResolver",
    "Operand",
    "TimespanTerm",
    "bind_operand",
    "check_int",
    "constant",
    "time_ns",
]

logger = logging.getLogger(__name__)

ValueType = Literal["int", "float", "string", "bool", "time"]

#: Scalar types a column may have; "time" is BIGINT nanoseconds since 1970-01-01 UTC.
SCALAR_TYPES: frozenset[str] = frozenset({"int", "float", "string", "bool", "time"})

_SQL_TYPES: dict[str, Any] = {
    "int": sqlalchemy.BigInteger,
    "time": sqlalchemy.BigInteger,
    "float": sqlalchemy.Float,
    "string": sqlalchemy.String,
    "bool": sqlalchemy.Boolean,
}


@dataclass(frozen=True)
class ColumnTerm:
    """A scalar SQL expression a name resolves to, with its value type.

    A ``"time"`` column holds BIGINT nanoseconds since 1970-01-01 UTC.
    """

    column: ColumnElement[Any]
    type: ValueType


@dataclass(frozen=True)
class TimespanTerm:
    """The two BIGINT nanosecond columns of a half-open timespan ``[begin, end)``."""

    begin: ColumnElement[Any]
    end: ColumnElement[Any]


class ExpressionResolver(Protocol):
    """Turns the names of an expression into SQL; implemented by the registry."""

    def resolve(self, element: str, field: str | None) -> ColumnTerm | TimespanTerm:
        """Resolve ``element`` (``field=None``: its key value) or ``element.field``.

        Raises
        ------
        UnknownNameError
            If the name does not exist; the message lists the names that do.
        """
        ...


#: Marks an operand that has no Python value (a column or a nested condition).
_NO_VALUE: Any = object()


@dataclass(frozen=True, slots=True)
class Operand:
    """A compiled operand.

    ``kind`` is a scalar type, ``"timespan"`` (``sql`` is a (begin, end) pair), ``"list"``
    (``sql`` is a tuple of operands, from a bind value) or ``"range"`` (``value`` is an
    inclusive ``(start, stop, stride)``). ``value`` is the Python value of a constant.
    """

    kind: str
    sql: Any
    text: str
    value: Any = _NO_VALUE

    @property
    def is_constant(self) -> bool:
        """Whether this operand is a literal or bind value (not a column)."""
        return self.value is not _NO_VALUE


def check_int(value: int, text: str) -> int:
    """Return ``value`` if it fits in 64 bits, as every integer column and parameter must.

    Raises
    ------
    QueryError
        Naming ``text`` (the value as written in the expression) and the allowed range.
    """
    if not INT64_MIN <= value <= INT64_MAX:
        raise QueryError(
            f"the integer {value}{'' if text == str(value) else f' in {text}'} is out of "
            "range: integers in a query must lie between "
            f"{INT64_MIN} and {INT64_MAX} (64 bits); check the number of digits"
        )
    return value


def time_ns(value: datetime, text: str) -> int:
    """A time as nanoseconds since 1970-01-01 UTC, for comparison with the time columns.

    Raises
    ------
    QueryError
        If the registry cannot store the time (outside 1823-11-12 to 2116-02-20 UTC).
    """
    try:
        return datetime_to_ns(value)
    except ValueError as err:
        # A literal T'...' is named by the message; a bind parameter is named here.
        raise QueryError(str(err) if text.startswith("T'") else f"{text}: {err}") from None


def constant(kind: str, value: Any, text: str) -> Operand:
    """A bound-parameter operand of scalar ``kind`` (times given as nanoseconds).

    Raises
    ------
    QueryError
        For an integer that does not fit in 64 bits (times come from :func:`time_ns`, which
        checks them).
    """
    if kind == "int":
        check_int(value, text)
    return Operand(kind, sqlalchemy.literal(value, _SQL_TYPES[kind]()), text, value)


def bind_operand(value: Any, text: str) -> Operand:
    """Convert a bind value to an operand, always as a bound parameter (never SQL text).

    Accepts bool, int, float, str, datetime/date (UTC if naive), `Timespan`, and for IN
    lists a list/tuple/set or a ``range``. Objects with ``tolist()`` (numpy scalars and arrays)
    are converted first.

    Raises
    ------
    QueryError
        For any other type.
    """
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, bool):
        return constant("bool", value, text)
    if isinstance(value, numbers.Integral):
        return constant("int", int(value), text)
    if isinstance(value, numbers.Real):
        return constant("float", float(value), text)
    if isinstance(value, str):
        return constant("string", value, text)
    if isinstance(value, date):
        return constant("time", time_ns(_as_datetime(value), text), text)
    if isinstance(value, Timespan):
        ends = [NS_MIN if value.begin is None else time_ns(value.begin, text)]
        ends.append(NS_MAX if value.end is None else time_ns(value.end, text))
        begin, end = (sqlalchemy.literal(ns, sqlalchemy.BigInteger()) for ns in ends)
        return Operand("timespan", (begin, end), text, value)
    if isinstance(value, range):
        return _range_operand(value, text)
    if isinstance(value, list | tuple | Set):
        items = tuple(bind_operand(item, f"{text}[{i}]") for i, item in enumerate(value))
        for item in items:
            if item.kind not in SCALAR_TYPES:
                raise QueryError(
                    f"bind parameter {text} holds {item.text}, which is not a scalar value."
                )
        return Operand("list", items, text, value)
    raise QueryError(
        f"bind parameter {text} has unsupported type {type(value).__name__}; use int, float, "
        "str, bool, datetime, Timespan, or a list/tuple/set/range of scalars for IN (...)."
    )


def _as_datetime(value: date) -> datetime:
    """A date or datetime as an aware datetime (naive values are UTC)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _range_operand(value: range, text: str) -> Operand:
    """A Python ``range`` as an inclusive (start, stop, stride); empty ranges become empty lists."""
    if len(value) == 0:
        return Operand("list", (), text, ())
    ascending = value if value.step > 0 else value[::-1]
    return Operand("range", None, text, (ascending[0], ascending[-1], ascending.step))
