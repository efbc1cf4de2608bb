# SPDX-License-Identifier: BSD-3-Clause
"""Compile a parsed expression to a SQLAlchemy Core boolean expression.

Every literal and bind value becomes a bound parameter; no part of the expression text is
ever pasted into SQL.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy
from sqlalchemy.sql.elements import ColumnElement

from spherex_dask.errors import QueryError, UnknownNameError

from ._ast import (
    BindParameter,
    Comparison,
    EmptyExpression,
    Identifier,
    InList,
    LiteralValue,
    LogicalOp,
    Node,
    NotOp,
    Overlaps,
    RangeItem,
    TimespanTuple,
)
from ._parser import parse_expression
from ._terms import (
    SCALAR_TYPES,
    ExpressionResolver,
    Operand,
    TimespanTerm,
    bind_operand,
    check_int,
    constant,
    time_ns,
)

__all__ = ["compile_expression"]

logger = logging.getLogger(__name__)

_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FAMILY = {"int": "number", "float": "number", "string": "string", "bool": "bool", "time": "time"}


def compile_expression(
    expr: str | Node | None,
    resolver: ExpressionResolver,
    bind: Mapping[str, Any] | None = None,
) -> ColumnElement[bool]:
    """Compile a query expression to a SQLAlchemy boolean expression for a WHERE clause.

    Parameters
    ----------
    expr
        Expression text or a tree from `parse_expression`; empty means no restriction.
    resolver
        Maps ``(element, field)`` names to columns (`ColumnTerm`) or timespans (`TimespanTerm`).
    bind
        Values of ``:name`` parameters; a bare name (no dot) that is a key here is also a
        bind parameter.

    Returns
    -------
    sqlalchemy.ColumnElement
        The condition; ``sqlalchemy.true()`` for an empty expression.

    Raises
    ------
    QuerySyntaxError
        If the text does not parse.
    UnknownNameError
        For an unknown name (from the resolver) or an unknown ``:name`` bind parameter.
    QueryError
        For operands of incompatible types, e.g. a string column compared with an integer.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> from spherex_dask.registry.expr import ColumnTerm
    >>> table = sa.table("t", sa.column("detector", sa.Integer))
    >>> class Resolver:
    ...     def resolve(self, element, field):
    ...         return ColumnTerm(table.c.detector, "int")
    >>> print(compile_expression("detector IN (1..3)", Resolver()))
    t.detector BETWEEN :detector_1 AND :detector_2
    """
    node = parse_expression(expr) if isinstance(expr, str) else expr
    if node is None or isinstance(node, EmptyExpression):
        return sqlalchemy.true()
    return _Compiler(resolver, bind or {}).condition(node)


class _Compiler:
    """Walks a syntax tree, resolving names and checking types."""

    def __init__(self, resolver: ExpressionResolver, bind: Mapping[str, Any]) -> None:
        self.resolver = resolver
        self.bind = bind

    # -- conditions ------------------------------------------------------------------------
    def condition(self, node: Node) -> ColumnElement[bool]:
        """Compile a node that must be a condition."""
        if isinstance(node, LogicalOp):
            combine = sqlalchemy.and_ if node.op == "AND" else sqlalchemy.or_
            return combine(*(self.condition(operand) for operand in node.operands))
        if isinstance(node, NotOp):
            return sqlalchemy.not_(self.condition(node.operand))
        if isinstance(node, Comparison):
            return self._comparison(node)
        if isinstance(node, InList):
            return self._in_list(node)
        if isinstance(node, Overlaps):
            return self._overlaps(node)
        return _truth(self.operand(node))

    def _comparison(self, node: Comparison) -> ColumnElement[bool]:
        left, right = self.operand(node.left), self.operand(node.right)
        _check_comparable(left, right, node)
        if left.is_constant and right.is_constant:
            raise QueryError(
                f"the comparison {node} involves no column (both sides are values); "
                "compare a name with a value, e.g. exposure.obs_id = 'x'"
            )
        if left.kind == "bool" and node.op not in ("=", "!="):
            raise QueryError(f"cannot order boolean values with '{node.op}' in: {node}")
        return _OPS[node.op](left.sql, right.sql)

    def _in_list(self, node: InList) -> ColumnElement[bool]:
        target = self.operand(node.operand)
        if target.kind not in SCALAR_TYPES:
            raise QueryError(f"{target.text} ({target.kind}) cannot be used with IN, in: {node}")
        values: list[Any] = []
        conditions: list[ColumnElement[bool]] = []
        for piece in self._in_pieces(node.items):
            if piece.kind == "range":
                conditions.append(_range_condition(target, piece, node))
                continue
            _check_comparable(target, piece, node)
            if piece.is_constant:
                values.append(piece.value)
            else:
                conditions.append(target.sql == piece.sql)
        if values or not conditions:
            conditions.insert(0, target.sql.in_(values))
        result = conditions[0] if len(conditions) == 1 else sqlalchemy.or_(*conditions)
        return sqlalchemy.not_(result) if node.negated else result

    def _in_pieces(self, items: tuple[Node, ...]) -> list[Operand]:
        """Operands of an IN list, with list-valued bind parameters expanded."""
        pieces: list[Operand] = []
        for item in items:
            if isinstance(item, RangeItem):
                bounds = (item.start, item.stop, item.stride)
                pieces.append(Operand("range", None, str(item), bounds))
                continue
            operand = self.operand(item, in_list=True)
            pieces.extend(operand.sql if operand.kind == "list" else (operand,))
        return pieces

    def _overlaps(self, node: Overlaps) -> ColumnElement[bool]:
        left, right = self.operand(node.left), self.operand(node.right)
        for side in (left, right):
            if side.kind not in ("time", "timespan"):
                raise QueryError(
                    f"OVERLAPS needs timespans or times, but {side.text} is {side.kind}, in: "
                    f"{node}. Example: exposure.timespan OVERLAPS (T'2025-05-01', T'2025-05-02')"
                )
        if left.kind == "time" and right.kind == "time":
            raise QueryError(
                f"OVERLAPS needs a timespan on at least one side, in: {node}; "
                "compare two times with =, <, <=, > or >= instead"
            )
        if left.kind == "time":
            left, right = right, left
        begin, end = left.sql
        if right.kind == "time":
            return sqlalchemy.and_(begin <= right.sql, right.sql < end)
        other_begin, other_end = right.sql
        return sqlalchemy.and_(begin < other_end, other_begin < end)

    # -- operands --------------------------------------------------------------------------
    def operand(self, node: Node, *, in_list: bool = False) -> Operand:
        """Compile a value; list-valued bind parameters are allowed only with ``in_list``."""
        if isinstance(node, LiteralValue):
            result = _literal(node)
        elif isinstance(node, Identifier):
            result = self._identifier(node)
        elif isinstance(node, BindParameter):
            result = self._bind(node.name, str(node))
        elif isinstance(node, TimespanTuple):
            result = self._timespan_tuple(node)
        elif isinstance(node, RangeItem):
            raise QueryError(f"the range {node} is only allowed inside IN (...)")
        else:
            result = Operand("bool", self.condition(node), f"({node})")
        if result.kind in ("list", "range") and not in_list:
            raise QueryError(
                f"bind parameter {result.text} holds several values; use it in an IN list, "
                f"e.g. detector IN ({result.text})"
            )
        return result

    def _identifier(self, node: Identifier) -> Operand:
        if node.field is None and node.element in self.bind:
            return self._bind(node.element, str(node))
        try:
            term = self.resolver.resolve(node.element, node.field)
        except UnknownNameError as err:
            if self.bind and node.field is None:
                err.add_note(f"Bind parameters given: {', '.join(sorted(self.bind))}.")
            raise
        if isinstance(term, TimespanTerm):
            if node.bound is None:
                return Operand("timespan", (term.begin, term.end), str(node))
            return Operand("time", getattr(term, node.bound), str(node))
        if node.bound is not None:
            raise QueryError(
                f"{node.element}.{node.field} is not a timespan, so it has no .{node.bound}; "
                "use e.g. exposure.timespan.begin"
            )
        if term.type not in SCALAR_TYPES:
            raise QueryError(f"{node} resolved to unsupported type {term.type!r}")
        return Operand(term.type, term.column, str(node))

    def _bind(self, name: str, text: str) -> Operand:
        if name not in self.bind:
            given = ", ".join(sorted(self.bind)) or "none"
            raise UnknownNameError(
                f"unknown bind parameter :{name}; bind parameters given: {given}. "
                f"Pass its value with bind={{{name!r}: value}}."
            )
        return bind_operand(self.bind[name], text)

    def _timespan_tuple(self, node: TimespanTuple) -> Operand:
        begin, end = self.operand(node.begin), self.operand(node.end)
        for side in (begin, end):
            if side.kind != "time":
                raise QueryError(
                    f"a timespan (begin, end) needs two times, but {side.text} is {side.kind}; "
                    "e.g. (T'2025-05-01', T'2025-05-02')"
                )
        if begin.is_constant and end.is_constant and end.value < begin.value:
            raise QueryError(f"the timespan {node} ends before it begins")
        return Operand("timespan", (begin.sql, end.sql), str(node))


def _literal(node: LiteralValue) -> Operand:
    """A literal as a bound parameter (booleans as SQL TRUE/FALSE)."""
    value = node.value
    if isinstance(value, bool):
        return Operand("bool", sqlalchemy.true() if value else sqlalchemy.false(), str(node), value)
    if isinstance(value, datetime):
        return constant("time", time_ns(value, str(node)), str(node))
    if isinstance(value, int):
        return constant("int", value, str(node))
    if isinstance(value, float):
        return constant("float", value, str(node))
    return constant("string", value, str(node))


def _truth(operand: Operand) -> ColumnElement[bool]:
    """A boolean operand used on its own as a condition."""
    if operand.kind != "bool":
        raise QueryError(
            f"{operand.text} is a {operand.kind} value, not a condition; "
            f"compare it with something, e.g. {operand.text} = ..."
        )
    if operand.is_constant:
        return sqlalchemy.true() if operand.value else sqlalchemy.false()
    return operand.sql.is_(sqlalchemy.true())


def _check_comparable(left: Operand, right: Operand, node: Node) -> None:
    """Raise a `QueryError` naming both operands unless they can be compared."""
    for side in (left, right):
        if side.kind == "timespan":
            raise QueryError(
                f"cannot compare the timespan {side.text} in: {node}; use OVERLAPS, "
                "or its .begin / .end (e.g. exposure.timespan.begin > T'2025-05-01')"
            )
    if _FAMILY[left.kind] == _FAMILY[right.kind]:
        return
    hint = ""
    if "time" in (left.kind, right.kind):
        hint = "; times compare only with times, e.g. T'2025-05-01T12:00' or a datetime bind value"
    raise QueryError(
        f"cannot compare {left.text} ({left.kind}) with {right.text} ({right.kind}) "
        f"in: {node}{hint}"
    )


def _range_condition(target: Operand, piece: Operand, node: InList) -> ColumnElement[bool]:
    """``start <= x <= stop`` (BETWEEN), plus a modulo test when the stride is not 1."""
    start, stop, stride = piece.value
    for bound in (start, stop):
        check_int(bound, piece.text)
    if _FAMILY[target.kind] != "number" or (stride != 1 and target.kind != "int"):
        wanted = "an integer" if stride != 1 else "a number"
        raise QueryError(
            f"the range {piece.text} needs {wanted}, but {target.text} is {target.kind}, in: {node}"
        )
    condition = target.sql.between(start, stop)
    if stride == 1:
        return condition
    return sqlalchemy.and_(condition, (target.sql - start) % stride == 0)
