# SPDX-License-Identifier: BSD-3-Clause
"""Tokenizer of the query expression language.

Every token keeps the 1-based column where it starts, so the parser can point at the exact
place where an expression goes wrong.

Examples
--------
>>> [(t.kind.name, t.value) for t in tokenize("detector IN (1..3)")]
... # doctest: +NORMALIZE_WHITESPACE
[('IDENT', 'detector'), ('KEYWORD', 'IN'), ('LPAREN', '('), ('INT', 1), ('RANGE', '..'),
 ('INT', 3), ('RPAREN', ')'), ('EOF', '')]
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from spherex_dask.errors import QuerySyntaxError
from spherex_dask.types import parse_time

__all__ = ["KEYWORDS", "Token", "TokenKind", "tokenize"]

logger = logging.getLogger(__name__)

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "OVERLAPS", "TRUE", "FALSE"})


class TokenKind(enum.Enum):
    """The kinds of token."""

    INT = enum.auto()
    FLOAT = enum.auto()
    STRING = enum.auto()
    TIME = enum.auto()
    IDENT = enum.auto()
    KEYWORD = enum.auto()
    BIND = enum.auto()
    OP = enum.auto()
    LPAREN = enum.auto()
    RPAREN = enum.auto()
    COMMA = enum.auto()
    RANGE = enum.auto()
    COLON = enum.auto()
    MINUS = enum.auto()
    EOF = enum.auto()


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, source text, decoded value and 1-based start column.

    ``value`` is the int/float/str/datetime of a literal, the upper-case word of a keyword,
    the normalized operator (``<>`` becomes ``!=``), the name of a bind parameter or the
    dotted name of an identifier.
    """

    kind: TokenKind
    text: str
    value: int | float | str | datetime
    column: int


_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORD = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"{_WORD}(?:\.{_WORD})*")
_BIND_NAME = re.compile(_WORD)
_OPERATORS = {
    "<=": "<=",
    ">=": ">=",
    "<>": "!=",
    "!=": "!=",
    "==": "=",
    "=": "=",
    "<": "<",
    ">": ">",
}
_PUNCTUATION = {
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    ",": TokenKind.COMMA,
    "-": TokenKind.MINUS,
}


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with one ``EOF`` token.

    Raises
    ------
    QuerySyntaxError
        On a character that starts no token, an unterminated string or a bad time literal.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        token = _next_token(text, pos)
        tokens.append(token)
        pos += len(token.text)
    tokens.append(Token(TokenKind.EOF, "", "", len(text) + 1))
    return tokens


def _next_token(text: str, pos: int) -> Token:
    """The token starting at ``pos`` (which is not whitespace)."""
    char = text[pos]
    if char in "Tt" and text[pos + 1 : pos + 2] in ("'", '"'):
        return _time_token(text, pos)
    if char in "'\"":
        raw, value = _scan_string(text, pos)
        return Token(TokenKind.STRING, raw, value, pos + 1)
    if char.isdigit():
        return _number_token(text, pos)
    if char.isalpha() or char == "_":
        return _name_token(text, pos)
    if char == ":":
        match = _BIND_NAME.match(text, pos + 1)
        if match:
            return Token(TokenKind.BIND, ":" + match.group(), match.group(), pos + 1)
        return Token(TokenKind.COLON, ":", ":", pos + 1)
    if text.startswith("..", pos):
        return Token(TokenKind.RANGE, "..", "..", pos + 1)
    for op, normalized in _OPERATORS.items():
        if text.startswith(op, pos):
            return Token(TokenKind.OP, op, normalized, pos + 1)
    if char in _PUNCTUATION:
        return Token(_PUNCTUATION[char], char, char, pos + 1)
    raise QuerySyntaxError(
        f"unexpected character {char!r}; expected a name, a value, an operator or a parenthesis",
        expression=text,
        column=pos + 1,
    )


def _scan_string(text: str, pos: int) -> tuple[str, str]:
    """Scan a quoted string at ``pos``; return its raw text and decoded value."""
    quote = text[pos]
    chars: list[str] = []
    index = pos + 1
    while index < len(text):
        if text[index] == quote:
            if text[index + 1 : index + 2] == quote:  # doubled quote escapes itself
                chars.append(quote)
                index += 2
                continue
            return text[pos : index + 1], "".join(chars)
        chars.append(text[index])
        index += 1
    raise QuerySyntaxError(
        f"unterminated string: no closing {quote} for the one opened here",
        expression=text,
        column=pos + 1,
    )


def _time_token(text: str, pos: int) -> Token:
    """A ``T'...'`` time literal, parsed to an aware UTC datetime."""
    raw, value = _scan_string(text, pos + 1)
    try:
        when = parse_time(value)
    except ValueError:
        raise QuerySyntaxError(
            f"invalid time literal {value!r}; expected ISO-8601 such as T'2025-05-01T12:00' "
            "or T'2025-05-01' (UTC unless an offset is given)",
            expression=text,
            column=pos + 1,
        ) from None
    return Token(TokenKind.TIME, text[pos] + raw, when, pos + 1)


def _number_token(text: str, pos: int) -> Token:
    """An integer or float literal; a letter right after the digits is an error."""
    match = _NUMBER.match(text, pos)
    assert match is not None  # the caller saw a digit
    raw = match.group()
    end = match.end()
    if end < len(text) and (text[end].isalpha() or text[end] == "_"):
        raise QuerySyntaxError(
            f"unexpected {text[end]!r} right after the number {raw}; "
            "names must start with a letter",
            expression=text,
            column=end + 1,
        )
    if any(c in raw for c in ".eE"):
        return Token(TokenKind.FLOAT, raw, float(raw), pos + 1)
    return Token(TokenKind.INT, raw, int(raw), pos + 1)


def _name_token(text: str, pos: int) -> Token:
    """An identifier (possibly dotted) or a keyword."""
    match = _NAME.match(text, pos)
    assert match is not None  # the caller saw a letter
    raw = match.group()
    end = match.end()
    if text[end : end + 1] == "." and text[end : end + 2] != "..":
        raise QuerySyntaxError(
            f"expected a field name after '{raw}.', e.g. exposure.obs_id",
            expression=text,
            column=end + 2,
        )
    if "." not in raw and raw.upper() in KEYWORDS:
        return Token(TokenKind.KEYWORD, raw, raw.upper(), pos + 1)
    return Token(TokenKind.IDENT, raw, raw, pos + 1)
