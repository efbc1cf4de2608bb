# SPDX-License-Identifier: BSD-3-Clause
"""Generate the reference pages of ``docs/`` from the code, so they cannot drift from it.

``python -m spherex_dask.cli._docgen cli > docs/cli.md`` writes the CLI reference (every
subcommand of ``spherex-dask``: usage, help and options, read from the click commands);
``python -m spherex_dask.cli._docgen api > docs/api.md`` writes the Python API reference
(signatures and docstring summaries of the public names, see :mod:`._apidoc`).
``tests/docs/`` regenerates both and fails when the committed pages differ.
"""

from __future__ import annotations

import re
import sys

import click

__all__ = ["COMMANDS", "md_text", "render_cli"]

#: The generator command of each page, quoted in the pages and in the currency test's message.
COMMANDS = {
    "cli": "python -m spherex_dask.cli._docgen cli > docs/cli.md",
    "api": "python -m spherex_dask.cli._docgen api > docs/api.md",
}

#: Width the help texts are laid out for, fixed so the output does not depend on the terminal.
WIDTH = 88

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def md_text(text: str) -> str:
    """Escape the characters Markdown would take for markup, outside code spans.

    Examples
    --------
    >>> md_text("OUTPUT/run-<time> or `a|b`, a|b")
    'OUTPUT/run-&lt;time&gt; or `a|b`, a\\\\|b'
    """
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_escape(text[last : match.start()]))
        out.append(match.group())
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _cell_code(text: str) -> str:
    """``text`` as a code span inside a table cell (``|`` must still be escaped there)."""
    return "`" + text.replace("|", "\\|") + "`"


def _anchor(name: str) -> str:
    """The heading id GitHub and MyST give ``spherex-dask NAME``."""
    return "spherex-dask-" + name


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    return click.Context(
        command,
        info_name=name,
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        **command.context_settings,
    )


def _options_table(command: click.Command, ctx: click.Context) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        rows.append(f"| {_cell_code(names)} | {md_text(' '.join(help_text.split()))} |")
    if not rows:
        return []
    return ["| Option | Description |", "|---|---|", *rows, ""]


def _arguments(command: click.Command, ctx: click.Context) -> list[str]:
    names = [
        f"`{p.make_metavar(ctx)}`" for p in command.get_params(ctx) if isinstance(p, click.Argument)
    ]
    return [f"Arguments: {', '.join(names)}.", ""] if names else []


def _help_paragraphs(command: click.Command) -> list[str]:
    text = (command.help or command.short_help or "").replace("\b\n", "")
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    return [line for p in paragraphs for line in (md_text(p), "")]


def _command_section(name: str, command: click.Command, root: click.Context) -> list[str]:
    ctx = _context(command, name, root)
    usage = " ".join(["spherex-dask", name, *command.collect_usage_pieces(ctx)])
    return [
        f"## spherex-dask {name}",
        "",
        "```text",
        usage,
        "```",
        "",
        *_help_paragraphs(command),
        *_arguments(command, ctx),
        *_options_table(command, ctx),
    ]


def render_cli() -> str:
    """The Markdown CLI reference of every ``spherex-dask`` subcommand."""
    from ._main import cli

    root = _context(cli, "spherex-dask", None)
    names = cli.list_commands(root)
    commands = {name: cli.get_command(root, name) for name in names}
    lines = [
        "# Command-line reference",
        "",
        "<!-- Generated from the click commands; do not edit. Regenerate with:",
        f"     {COMMANDS['cli']} -->",
        "",
        "Every command of the `spherex-dask` program (also `python -m spherex_dask`). "
        "`spherex-dask COMMAND --help` prints the same text. Query expressions (`--where`) are "
        "described in [the query language](query-language.md).",
        "",
        "```text",
        " ".join(["spherex-dask", *cli.collect_usage_pieces(root)]),
        "```",
        "",
        *_help_paragraphs(cli),
        *_options_table(cli, root),
        "| Command | Summary |",
        "|---|---|",
    ]
    for name, command in commands.items():
        assert command is not None
        summary = md_text(command.get_short_help_str(limit=WIDTH))
        lines.append(f"| [`{name}`](#{_anchor(name)}) | {summary} |")
    lines.append("")
    for name, command in commands.items():
        assert command is not None
        lines += _command_section(name, command, root)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """``python -m spherex_dask.cli._docgen cli|api``: print a reference page."""
    if len(argv) != 1 or argv[0] not in COMMANDS:
        sys.stderr.write(f"usage: python -m spherex_dask.cli._docgen {{{','.join(COMMANDS)}}}\n")
        return 2
    if argv[0] == "cli":
        text = render_cli()
    else:
        from ._apidoc import render_api

        text = render_api()
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
