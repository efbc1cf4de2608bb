# SPDX-License-Identifier: BSD-3-Clause
"""The registry's query expression language: a parser and a compiler to SQLAlchemy Core.

An expression such as ``detector IN (1..3) AND exposure.timespan OVERLAPS T'2025-05-01T12:00'``
is tokenized and parsed (never ``eval``-ed) into a small syntax tree, then compiled to a
SQLAlchemy boolean expression in which every value is a bound parameter.

Examples
--------
>>> node = parse_expression("exposure.obs_id = :obs AND detector != 3")
>>> print(node)
exposure.obs_id = :obs AND detector != 3
>>> sorted(referenced_names(node))
[('detector', None), ('exposure', 'obs_id')]

A bare name that is a key of ``bind`` is a bind parameter, not a dimension; a timespan bound
refers to the timespan:

>>> node = parse_expression("detector IN (ids) AND exposure.timespan.end > T'2025-05-01'")
>>> sorted(referenced_names(node, {"ids": [1, 2]}))
[('detector', None), ('exposure', 'timespan')]
"""

from __future__ import annotations

from ._ast import EmptyExpression, Node, referenced_names
from ._compile import compile_expression
from ._parser import parse_expression
from ._terms import ColumnTerm, ExpressionResolver, TimespanTerm

__all__ = [
    "ColumnTerm",
    "EmptyExpression",
    "ExpressionResolver",
    "Node",
    "TimespanTerm",
    "compile_expression",
    "parse_expression",
    "referenced_names",
]
