# SPDX-License-Identifier: BSD-3-Clause
"""Conversion between dimension records and rows of the dimension-element tables."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..dimensions import DimensionElement, DimensionField, DimensionUniverse
from ..errors import DataIdError, DimensionError
from ..types import NS_MAX, NS_MIN, DimensionRecord, Timespan, datetime_to_ns

__all__ = ["ElementLayout", "record_to_row", "row_to_record"]


class ElementLayout:
    """The column layout of one dimension element's table.

    Examples
    --------
    >>> layout = ElementLayout(DimensionUniverse.default(), "exposure")
    >>> layout.key_columns, layout.implied
    (('instrument', 'id'), ('planning_period',))
    """

    def __init__(self, universe: DimensionUniverse, name: str) -> None:
        self.universe = universe
        self.element: DimensionElement = universe[name]
        self.name = name
        self.required: tuple[str, ...] = universe.sorted(self.element.requires)
        self.key_name = self.element.key.name
        #: Primary-key columns: required dimensions, then the element's own key.
        self.key_columns: tuple[str, ...] = (*self.required, self.key_name)
        #: The dimensions the primary-key columns hold (the element itself last).
        self.key_dimensions: tuple[str, ...] = (*self.required, name)
        self.implied: tuple[str, ...] = self.element.implies
        self.fields: dict[str, DimensionField] = {f.name: f for f in self.element.metadata}
        self.columns: tuple[str, ...] = (*self.key_columns, *self.implied, *self.fields)
        if self.element.temporal:
            self.columns += ("timespan_begin", "timespan_end")

    def allowed_names(self) -> list[str]:
        """Names a record mapping may use."""
        names = [*self.key_columns, *self.implied, *self.fields]
        if self.name != self.key_name:
            names.append(self.name)
        if self.element.temporal:
            names.append("timespan")
        return names


def _coerce_field(element: str, field: DimensionField, value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    kind = field.type
    if kind == "int" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind == "float" and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        if len(value) > field.length:
            raise DimensionError(
                f"{element}.{field.name} value {value!r} is longer than {field.length} characters."
            )
        return value
    raise DimensionError(
        f"{element}.{field.name} value {value!r} has type {type(value).__name__}; expected {kind}."
    )


def _timespan_columns(layout: ElementLayout, values: dict[str, Any]) -> tuple[Any, Any]:
    timespan = values.pop("timespan", None)
    begin = values.pop("timespan_begin", None)
    end = values.pop("timespan_end", None)
    if timespan is not None:
        if not isinstance(timespan, Timespan):
            raise DimensionError(
                f"{layout.name}.timespan must be a Timespan, got {type(timespan).__name__}."
            )
        return timespan.begin_ns, timespan.end_ns
    begin = datetime_to_ns(begin) if isinstance(begin, datetime) else begin
    end = datetime_to_ns(end) if isinstance(end, datetime) else end
    return begin, end


def record_to_row(
    layout: ElementLayout, record: Mapping[str, Any] | DimensionRecord
) -> dict[str, Any]:
    """Validate a record (a mapping or a :class:`DimensionRecord`) and return its table row.

    Raises
    ------
    DataIdError
        If a key value is missing or of the wrong type.
    DimensionError
        For an unknown field or a metadata value of the wrong type.
    """
    if isinstance(record, DimensionRecord):
        values = dict(record.values)
        if record.timespan is not None:
            values["timespan"] = record.timespan
    else:
        values = dict(record)
    if layout.name != layout.key_name and layout.name in values:
        values.setdefault(layout.key_name, values.pop(layout.name))
    unknown = set(values) - set(layout.allowed_names()) - {"timespan_begin", "timespan_end"}
    if unknown:
        raise DimensionError(
            f"Unknown field(s) {sorted(unknown)} in {layout.name} record; allowed: "
            f"{', '.join(layout.allowed_names())}."
        )
    row: dict[str, Any] = {}
    for column, dimension in zip(layout.key_columns, layout.key_dimensions, strict=True):
        if values.get(column) is None:
            raise DataIdError(
                f"{layout.name} record {values!r} lacks its key {column!r} "
                f"(keys: {', '.join(layout.key_columns)})."
            )
        row[column] = layout.universe.coerce_value(dimension, values[column])
    for name in layout.implied:
        value = values.get(name)
        row[name] = None if value is None else layout.universe.coerce_value(name, value)
    for name, field in layout.fields.items():
        row[name] = _coerce_field(layout.name, field, values.get(name))
    if layout.element.temporal:
        row["timespan_begin"], row["timespan_end"] = _timespan_columns(layout, values)
    return row


def row_to_record(layout: ElementLayout, row: Mapping[Any, Any]) -> DimensionRecord:
    """Build the :class:`DimensionRecord` of a table row."""
    values = {name: row[name] for name in layout.columns[: -2 if layout.element.temporal else None]}
    timespan = None
    if layout.element.temporal:
        begin, end = row["timespan_begin"], row["timespan_end"]
        if begin is not None or end is not None:
            timespan = Timespan.from_ns(
                NS_MIN if begin is None else begin, NS_MAX if end is None else end
            )
    return DimensionRecord(element=layout.name, values=values, timespan=timespan)


def describe_key(layout: ElementLayout, key: tuple[Any, ...]) -> str:
    """``instrument='SPHEREx', exposure=12`` for error messages."""
    return ", ".join(f"{d}={v!r}" for d, v in zip(layout.key_dimensions, key, strict=True))
