# SPDX-License-Identifier: BSD-3-Clause
"""Syntax tree of the query expression language.

Nodes are small frozen dataclasses. Each one remembers the 1-based ``column`` where it starts
in the source text (for error messages); the column takes no part in equality, so two trees
parsed from differently spaced texts compare equal. ``str(node)`` renders canonical text that
parses back to an equal tree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

__all__ = [
    "BindParameter",
    "Comparison",
    "EmptyExpression",
    "Identifier",
    "InList",
    "LiteralValue",
    "LogicalOp",
    "Node",
    "NotOp",
    "Overlaps",
    "RangeItem",
    "TimespanTuple",
    "iter_nodes",
    "referenced_names",
]

logger = logging.getLogger(__name__)

#: Binding strength used to decide where ``str()`` needs parentheses.
_PRECEDENCE = {"OR": 1, "AND": 2, "NOT": 3}
_ATOM = 4


@dataclass(frozen=True, slots=True)
class Node:
    """Base class of every syntax tree node."""

    column: int = field(default=0, compare=False, kw_only=True)

    def precedence(self) -> int:
        """How tightly this node binds when rendered inside a logical operator."""
        return _ATOM


@dataclass(frozen=True, slots=True)
class EmptyExpression(Node):
    """An empty (or blank) expression: no restriction at all. It is falsy."""

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class LiteralValue(Node):
    """An integer, float, string, boolean or time (``T'...'``, an aware UTC datetime) literal."""

    value: int | float | str | bool | datetime

    def __str__(self) -> str:
        value = self.value
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        if isinstance(value, datetime):
            return f"T'{value.isoformat()}'"
        return repr(value)


@dataclass(frozen=True, slots=True)
class Identifier(Node):
    """A dimension (``detector``), a field (``exposure.obs_id``) or a timespan bound.

    ``bound`` is ``"begin"`` or ``"end"`` for ``exposure.timespan.begin``-style names.
    """

    element: str
    field: str | None = None
    bound: str | None = None

    def __str__(self) -> str:
        return ".".join(p for p in (self.element, self.field, self.bound) if p is not None)


@dataclass(frozen=True, slots=True)
class BindParameter(Node):
    """A ``:name`` placeholder whose value comes from the ``bind`` mapping."""

    name: str

    def __str__(self) -> str:
        return f":{self.name}"


@dataclass(frozen=True, slots=True)
class RangeItem(Node):
    """An inclusive integer range ``start..stop`` with an optional ``:stride`` (IN lists only)."""

    start: int
    stop: int
    stride: int = 1

    def __str__(self) -> str:
        text = f"{self.start}..{self.stop}"
        return text if self.stride == 1 else f"{text}:{self.stride}"


@dataclass(frozen=True, slots=True)
class TimespanTuple(Node):
    """A literal timespan ``(begin, end)``, half-open like every timespan."""

    begin: Node
    end: Node

    def __str__(self) -> str:
        return f"({self.begin}, {self.end})"


@dataclass(frozen=True, slots=True)
class Comparison(Node):
    """``left op right`` with ``op`` one of ``= != < <= > >=``."""

    op: str
    left: Node
    right: Node

    def __str__(self) -> str:
        return f"{_operand_text(self.left)} {self.op} {_operand_text(self.right)}"


@dataclass(frozen=True, slots=True)
class InList(Node):
    """``operand [NOT] IN (item, ...)``; items are values, bind parameters or ranges."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool = False

    def __str__(self) -> str:
        keyword = "NOT IN" if self.negated else "IN"
        items = ", ".join(str(item) for item in self.items)
        return f"{_operand_text(self.operand)} {keyword} ({items})"


@dataclass(frozen=True, slots=True)
class Overlaps(Node):
    """``left OVERLAPS right``: timespans (or a timespan and an instant) that intersect."""

    left: Node
    right: Node

    def __str__(self) -> str:
        return f"{_operand_text(self.left)} OVERLAPS {_operand_text(self.right)}"


@dataclass(frozen=True, slots=True)
class LogicalOp(Node):
    """``AND`` or ``OR`` over two or more conditions."""

    op: str
    operands: tuple[Node, ...]

    def precedence(self) -> int:
        return _PRECEDENCE[self.op]

    def __str__(self) -> str:
        mine = self.precedence()
        parts = [_wrap(operand, mine + 1) for operand in self.operands]
        return f" {self.op} ".join(parts)


@dataclass(frozen=True, slots=True)
class NotOp(Node):
    """``NOT condition``."""

    operand: Node

    def precedence(self) -> int:
        return _PRECEDENCE["NOT"]

    def __str__(self) -> str:
        return f"NOT {_wrap(self.operand, _PRECEDENCE['NOT'])}"


def _wrap(node: Node, minimum: int) -> str:
    """Render ``node``, in parentheses when it binds less tightly than ``minimum``."""
    text = str(node)
    return text if node.precedence() >= minimum else f"({text})"


def _operand_text(node: Node) -> str:
    """Render an operand of a comparison, parenthesizing nested conditions."""
    if isinstance(node, Comparison | InList | Overlaps | LogicalOp | NotOp):
        return f"({node})"
    return str(node)


def iter_nodes(node: Node) -> Iterator[Node]:
    """Yield ``node`` and all its descendants, depth first."""
    yield node
    for spec in fields(node):
        value = getattr(node, spec.name)
        children = value if isinstance(value, tuple) else (value,)
        for child in children:
            if isinstance(child, Node):
                yield from iter_nodes(child)


def referenced_names(
    node: Node, bind: Mapping[str, Any] | None = None
) -> set[tuple[str, str | None]]:
    """The ``(element, field)`` pairs an expression refers to, bind parameters excluded.

    ``field`` is ``None`` for a bare dimension name (its key value); a timespan bound such as
    ``exposure.timespan.begin`` gives ``("exposure", "timespan")``. A bare name that is a key
    of ``bind`` is a bind parameter, not a dimension.

    See Also
    --------
    spherex_dask.registry.expr : has an example.
    """
    bind = bind or {}
    names: set[tuple[str, str | None]] = set()
    for item in iter_nodes(node):
        if not isinstance(item, Identifier):
            continue
        if item.field is None and item.element in bind:
            continue
        names.add((item.element, item.field))
    return names
