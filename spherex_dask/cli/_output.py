# SPDX-License-Identifier: BSD-3-Clause
"""Printing results: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click

__all__ = [
    "collections_option",
    "echo_rows",
    "format_option",
    "handle_errors",
    "repo_argument",
    "where_options",
]

F = TypeVar("F", bound=Callable[..., Any])


def format_option(func: F) -> F:
    """``--format table|json``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output for people (table) or scripts (json).",
    )(func)


def repo_argument(func: F) -> F:
    """The ``REPO`` argument: a repository directory."""
    return click.argument("repo", type=click.Path(file_okay=False))(func)


def collections_option(func: F) -> F:
    """``--collections A,B`` (repeatable)."""
    return click.option(
        "--collections",
        multiple=True,
        help="Collections to search, in order (comma-separated or repeated).",
    )(func)


def where_options(func: F) -> F:
    """``--where EXPR`` and ``--bind NAME=VALUE``."""
    func = click.option(
        "--bind",
        multiple=True,
        metavar="NAME=VALUE",
        help="Bind parameter for --where, e.g. --bind dets=1,2 used as ':dets'.",
    )(func)
    return click.option(
        "--where",
        default="",
        help="Query expression, e.g. \"detector IN (1..3) AND exposure.obs_id = '2025W19_2B_0001_1'\".",
    )(func)


def split_collections(values: Sequence[str]) -> list[str]:
    """Flatten repeated and comma-separated collection options."""
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def parse_bind(values: Sequence[str], *, option: str = "--bind") -> dict[str, Any]:
    """``NAME=VALUE`` strings to a bind mapping; comma-separated values become lists.

    ``option`` is the option named in the error for an item without ``=``.
    """
    result: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint=option)
        parts = [_scalar(p) for p in raw.split(",")]
        result[name.strip()] = parts if len(parts) > 1 else parts[0]
    return result


def _scalar(text: str) -> Any:
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def echo_rows(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> int:
    """Print ``rows`` as an aligned table or a JSON list; returns the number of rows."""
    rows = list(rows)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, default=str))
        return len(rows)
    if not rows:
        click.echo("(no results)")
        return 0
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return len(rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit cannot fail again."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def handle_errors(func: F) -> F:
    """Turn spherex_dask errors (with the notes added to them, one per line), and
    operating-system errors such as a path that is not a directory or not writeable, into
    ``Error: ...`` and exit status 1 (the traceback is logged at the debug level)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..errors import SpherexDaskError

        try:
            return func(*args, **kwargs)
        except BrokenPipeError:
            # The reader went away (``spherex-dask query-... | head``): stop quietly, as
            # other command-line tools do, with nothing more written to the closed pipe.
            _silence_stdout()
            raise SystemExit(141) from None  # 128 + SIGPIPE, what a shell reports
        except (SpherexDaskError, OSError) as err:
            logging.getLogger("spherex_dask.cli").debug("Command failed", exc_info=True)
            notes = getattr(err, "__notes__", None) or []
            raise click.ClickException("\n".join([str(err), *map(str, notes)])) from err

    return wrapper  # type: ignore[return-value]
