# SPDX-License-Identifier: BSD-3-Clause
"""Recursive-descent parser of the query expression language.

Grammar (keywords are case-insensitive; precedence NOT > AND > OR)::

    expression := or_expr EOF
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | predicate
    predicate  := operand [ cmp_op operand
                          | ["NOT"] "IN" ( "(" item ("," item)* ")" | BIND )
                          | "OVERLAPS" operand ]
    item       := operand | INT ".." INT [":" INT]
    operand    := INT | FLOAT | STRING | TIME | "TRUE" | "FALSE" | "-" number
                | IDENT | BIND | "(" or_expr ["," or_expr] ")"

A parenthesized pair ``(a, b)`` is a literal timespan. Whether a bare identifier is a usable
condition (a boolean column or bind parameter) is decided when compiling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from spherex_dask.errors import QuerySyntaxError

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
from ._lexer import Token, TokenKind, tokenize

__all__ = ["parse_expression"]

logger = logging.getLogger(__name__)

_LITERALS = (TokenKind.INT, TokenKind.FLOAT, TokenKind.STRING, TokenKind.TIME)
_COMPARISON_HINT = "a comparison operator (=, !=, <, <=, >, >=), IN or OVERLAPS"


def parse_expression(text: str) -> Node:
    """Parse a query expression into a syntax tree.

    Parameters
    ----------
    text
        The expression, e.g. ``"detector IN (1..3) AND exposure.obs_id = '2025W19_2B_0073_2'"``.

    Returns
    -------
    Node
        The root node; an (falsy) `EmptyExpression` when ``text`` is empty or blank.

    Raises
    ------
    QuerySyntaxError
        With the 1-based column where parsing failed and what was expected there.

    Examples
    --------
    >>> node = parse_expression("detector in (1..3, 6) and not exposure.obs_id = 'x'")
    >>> print(node)
    detector IN (1..3, 6) AND NOT exposure.obs_id = 'x'
    >>> bool(parse_expression("   "))
    False
    >>> parse_expression("detector = )")
    Traceback (most recent call last):
    ...
    spherex_dask.errors.QuerySyntaxError: expected a value after '=', found ')' (at column 12)
      detector = )
                 ^
    """
    if not text or text.isspace():
        return EmptyExpression()
    return _Parser(text).parse()


class _Parser:
    """One parse of one expression: a token list and a cursor."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    # -- token helpers -------------------------------------------------------------------
    def _peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def _advance(self) -> Token:
        token = self._peek()
        self.pos += 1
        return token

    def _at_keyword(self, word: str, offset: int = 0) -> bool:
        token = self._peek(offset)
        return token.kind is TokenKind.KEYWORD and token.value == word

    def _expect(self, kind: TokenKind, message: str) -> Token:
        if self._peek().kind is not kind:
            raise self._error(f"{message}, found {_describe(self._peek())}", self._peek())
        return self._advance()

    def _error(self, message: str, token: Token) -> QuerySyntaxError:
        return QuerySyntaxError(message, expression=self.text, column=token.column)

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> Node:
        node = self._or()
        token = self._peek()
        if token.kind is not TokenKind.EOF:
            self._require_condition(node, token)
            raise self._error(
                f"unexpected {_describe(token)}; expected AND, OR or the end of the expression",
                token,
            )
        self._require_condition(node, token)
        return node

    def _or(self, after: Token | None = None) -> Node:
        return self._chain("OR", self._and, after)

    def _and(self, after: Token | None = None) -> Node:
        return self._chain("AND", self._not, after)

    def _chain(
        self, word: str, parse_operand: Callable[[Token | None], Node], after: Token | None
    ) -> Node:
        operands = [parse_operand(after)]
        while self._at_keyword(word):
            self._require_condition(operands[-1], self._peek())
            operands.append(parse_operand(self._advance()))
        if len(operands) == 1:
            return operands[0]
        self._require_condition(operands[-1], self._peek())
        return LogicalOp(word, tuple(operands), column=operands[0].column)

    def _not(self, after: Token | None = None) -> Node:
        if not self._at_keyword("NOT"):
            return self._predicate(after)
        token = self._advance()
        operand = self._not(token)
        self._require_condition(operand, self._peek())
        return NotOp(operand, column=token.column)

    def _predicate(self, after: Token | None) -> Node:
        left = self._operand(after)
        token = self._peek()
        if token.kind is TokenKind.OP:
            self._advance()
            right = self._operand(token)
            return Comparison(str(token.value), left, right, column=left.column)
        negated = self._at_keyword("NOT") and self._at_keyword("IN", 1)
        if negated or self._at_keyword("IN"):
            self.pos += 2 if negated else 1
            items = self._in_items(self.tokens[self.pos - 1])
            return InList(left, items, negated, column=left.column)
        if self._at_keyword("OVERLAPS"):
            self._advance()
            return Overlaps(left, self._operand(token), column=left.column)
        return left

    def _operand(self, after: Token | None) -> Node:
        token = self._peek()
        if token.kind in _LITERALS:
            self._advance()
            return LiteralValue(token.value, column=token.column)
        if token.kind is TokenKind.MINUS:
            return self._negative_number()
        if token.kind is TokenKind.IDENT:
            return self._identifier(self._advance())
        if token.kind is TokenKind.BIND:
            self._advance()
            return BindParameter(str(token.value), column=token.column)
        if self._at_keyword("TRUE") or self._at_keyword("FALSE"):
            self._advance()
            return LiteralValue(token.value == "TRUE", column=token.column)
        if token.kind is TokenKind.LPAREN:
            return self._group()
        where = f" after {after.text!r}" if after is not None else ""
        if token.kind is TokenKind.EOF:
            found = " but the expression ended"
        else:
            found = f", found {_describe(token)}"
        raise self._error(f"expected a value{where}{found}", token)

    def _negative_number(self) -> Node:
        minus = self._advance()
        number = self._peek()
        if number.kind not in (TokenKind.INT, TokenKind.FLOAT):
            raise self._error(f"expected a number after '-', found {_describe(number)}", number)
        self._advance()
        assert isinstance(number.value, int | float)
        return LiteralValue(-number.value, column=minus.column)

    def _identifier(self, token: Token) -> Identifier:
        parts = str(token.value).split(".")
        if len(parts) <= 2:
            return Identifier(*parts, column=token.column)
        if len(parts) == 3 and parts[2].lower() in ("begin", "end"):
            return Identifier(parts[0], parts[1], parts[2].lower(), column=token.column)
        raise self._error(
            f"invalid name {token.text!r}; expected 'element', 'element.field' or "
            "'element.timespan.begin' / '.end'",
            token,
        )

    def _group(self) -> Node:
        opening = self._advance()
        first = self._or(opening)
        if self._peek().kind is TokenKind.COMMA:
            second = self._or(self._advance())
            self._expect(TokenKind.RPAREN, "expected ')' to close the timespan (begin, end)")
            return TimespanTuple(first, second, column=opening.column)
        self._expect(TokenKind.RPAREN, f"expected ')' to close the '(' at column {opening.column}")
        return first

    def _in_items(self, keyword: Token) -> tuple[Node, ...]:
        if self._peek().kind is TokenKind.BIND:
            token = self._advance()
            return (BindParameter(str(token.value), column=token.column),)
        opening = self._expect(
            TokenKind.LPAREN, f"expected '(' after {keyword.text!r}, e.g. detector IN (1, 2, 5..9)"
        )
        items = [self._in_item(opening)]
        while self._peek().kind is TokenKind.COMMA:
            items.append(self._in_item(self._advance()))
        self._expect(TokenKind.RPAREN, "expected ',' or ')' in the IN list")
        return tuple(items)

    def _in_item(self, after: Token) -> Node:
        value = self._operand(after)
        if self._peek().kind is not TokenKind.RANGE:
            return value
        dots = self._advance()
        start = self._range_bound(value)
        stop = self._range_bound(self._operand(dots))
        stride = 1
        if self._peek().kind is TokenKind.COLON:
            self._advance()
            token = self._expect(TokenKind.INT, "expected a positive integer stride after ':'")
            stride = int(token.value)  # type: ignore[arg-type]
            if stride < 1:
                raise self._error("the stride of a range must be at least 1", token)
        if stop < start:
            raise self._error(f"empty range {start}..{stop}: the start is after the stop", dots)
        return RangeItem(start, stop, stride, column=value.column)

    def _range_bound(self, node: Node) -> int:
        if isinstance(node, LiteralValue) and type(node.value) is int:
            return node.value
        raise QuerySyntaxError(
            f"a range needs integer bounds, e.g. 5..9; found {node}",
            expression=self.text,
            column=node.column,
        )

    def _require_condition(self, node: Node, following: Token) -> None:
        """Fail if ``node`` can never be a condition (a number, string, time or timespan)."""
        is_value = isinstance(node, LiteralValue) and not isinstance(node.value, bool)
        if is_value or isinstance(node, TimespanTuple):
            raise self._error(f"expected {_COMPARISON_HINT} after {node}", following)


def _describe(token: Token) -> str:
    """A short description of a token for error messages."""
    if token.kind is TokenKind.EOF:
        return "the end of the expression"
    return repr(token.text)
