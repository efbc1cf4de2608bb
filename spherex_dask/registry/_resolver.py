# SPDX-License-Identifier: BSD-3-Clause
"""Resolve the names of a query expression (``detector``, ``exposure.obs_id``) to columns.

A :class:`DimensionResolver` is built per query from the columns that already hold each
dimension's key value (the dataset table's dimension columns, or the dimension tables of a
data-ID query).  Referencing a metadata field or a timespan joins the element's table on
demand; :meth:`DimensionResolver.apply_joins` adds those joins to the query's FROM clause.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..dimensions import DimensionUniverse
from ..errors import DimensionNotInQueryError, UnknownNameError
from ..types import DataId
from ._records import ElementLayout
from ._schema import RegistryTables
from .expr import ColumnTerm, TimespanTerm, compile_expression

__all__ = ["DimensionResolver"]

logger = logging.getLogger(__name__)


class DimensionResolver:
    """An :class:`~spherex_dask.registry.expr.ExpressionResolver` for one query.

    Parameters
    ----------
    universe, tables, layouts
        The registry's universe, tables and element layouts.
    key_columns
        Dimension name -> the column holding its key value in the query's FROM clause.
    tables_in_from
        Element name -> its table when it is already part of the FROM clause.
    """

    def __init__(
        self,
        universe: DimensionUniverse,
        tables: RegistryTables,
        layouts: Mapping[str, ElementLayout],
        key_columns: Mapping[str, sa.ColumnElement[Any]],
        tables_in_from: Mapping[str, sa.FromClause] | None = None,
    ) -> None:
        self.universe = universe
        self.tables = tables
        self.layouts = layouts
        self.key_columns = dict(key_columns)
        self._in_from = dict(tables_in_from or {})
        self._joins: dict[str, tuple[sa.FromClause, sa.ColumnElement[bool]]] = {}

    def _unknown(self, element: str) -> UnknownNameError:
        if element not in self.universe:
            return UnknownNameError(
                f"Unknown name {element!r}; dimensions are: {', '.join(self.universe.elements)} "
                "(use element.field for metadata, e.g. exposure.obs_id)."
            )
        return DimensionNotInQueryError(
            f"Dimension {element!r} is not part of this query, whose dimensions are "
            f"{', '.join(self.key_columns) or 'none'}."
        )

    def resolve(self, element: str, field: str | None) -> ColumnTerm | TimespanTerm:
        """Resolve ``element`` or ``element.field`` to a column or timespan term."""
        if element not in self.key_columns:
            raise self._unknown(element)
        layout = self.layouts[element]
        if field is None or field == layout.key_name:
            return ColumnTerm(self.key_columns[element], self.universe[element].key.type)  # type: ignore[arg-type]
        if field in layout.implied:
            column = self.key_columns.get(field)
            if column is None:
                column = self.table(element).c[field]
            return ColumnTerm(column, self.universe[field].key.type)  # type: ignore[arg-type]
        if field == "timespan" and layout.element.temporal:
            table = self.table(element)
            return TimespanTerm(table.c.timespan_begin, table.c.timespan_end)
        if field in layout.fields:
            return ColumnTerm(self.table(element).c[field], layout.fields[field].type)  # type: ignore[arg-type]
        names = [layout.key_name, *layout.implied, *layout.fields]
        if layout.element.temporal:
            names.append("timespan")
        raise UnknownNameError(
            f"Dimension {element!r} has no field {field!r}; its fields are: {', '.join(names)}."
        )

    def table(self, element: str) -> sa.FromClause:
        """The element's table in the query, joining it on its key columns when needed."""
        if element in self._in_from:
            return self._in_from[element]
        if element not in self._joins:
            layout = self.layouts[element]
            table = self.tables.elements[element].alias(f"{element}_j")
            onclause = sa.and_(
                *[
                    table.c[c] == self.key_columns[d]
                    for c, d in zip(layout.key_columns, layout.key_dimensions, strict=True)
                ]
            )
            self._joins[element] = (table, onclause)
        return self._joins[element][0]

    def apply_joins(self, from_clause: sa.FromClause) -> sa.FromClause:
        """``from_clause`` with the element tables referenced so far joined in."""
        for table, onclause in self._joins.values():
            from_clause = from_clause.join(table, onclause)
        return from_clause

    def where(
        self,
        expression: str,
        bind: Mapping[str, Any] | None,
        data_id: Mapping[str, Any] | None,
    ) -> list[sa.ColumnElement[bool]]:
        """Conditions for a ``where`` expression and a (partial) data ID constraint."""
        conditions: list[sa.ColumnElement[bool]] = []
        if expression and expression.strip():
            conditions.append(compile_expression(expression, self, bind))
        values = data_id.to_dict() if isinstance(data_id, DataId) else dict(data_id or {})
        for name, value in values.items():
            conditions.append(self._equals(name, value))
        return conditions

    def _equals(self, name: str, value: Any) -> sa.ColumnElement[bool]:
        element, _, field = name.partition(".")
        if field:
            term = self.resolve(element, field)
            if isinstance(term, TimespanTerm):
                raise UnknownNameError(
                    f"A data ID cannot constrain {name}; use a where expression."
                )
            return term.column == value
        if element not in self.universe:
            raise self._unknown(element)
        key_type = self.universe[element].key.type
        alternate = self.universe[element].alternate_key
        if (
            alternate
            and key_type == "int"
            and isinstance(value, str)
            and not value.strip().lstrip("-").isdigit()
        ):
            return self._equals(f"{element}.{alternate}", value)
        term = self.resolve(element, None)
        assert isinstance(term, ColumnTerm)
        return term.column == self.universe.coerce_value(element, value)
