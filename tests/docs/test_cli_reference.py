# SPDX-License-Identifier: BSD-3-Clause
"""docs/cli.md and docs/api.md are what the generator makes from the code today."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import click
import pytest

from spherex_dask.cli._apidoc import render_api, signature_text
from spherex_dask.cli._docgen import COMMANDS, md_text, render_cli
from spherex_dask.cli._main import COMMANDS as CLI_COMMANDS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _check_current(page: str, generated: str) -> None:
    path = DOCS / f"{page}.md"
    committed = path.read_text(encoding="utf-8") if path.exists() else ""
    if committed != generated:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                f"docs/{page}.md (committed)",
                f"docs/{page}.md (generated)",
                n=1,
            )
        )
        pytest.fail(
            f"docs/{page}.md is out of date; regenerate it with:\n    {COMMANDS[page]}\n"
            f"{diff[:4000]}",
            pytrace=False,
        )


def test_cli_reference_is_current() -> None:
    """docs/cli.md equals the reference generated from the click commands."""
    _check_current("cli", render_cli())


def test_api_reference_is_current() -> None:
    """docs/api.md equals the reference generated from the docstrings."""
    _check_current("api", render_api())


def test_cli_reference_covers_every_command_and_option() -> None:
    """Each subcommand has a section, and each of its options appears in it."""
    from spherex_dask.cli._main import cli

    text = render_cli()
    ctx = click.Context(cli, info_name="spherex-dask")
    for name in CLI_COMMANDS:
        section = text.split(f"## spherex-dask {name}\n", 1)
        assert len(section) == 2, f"no section for {name}"
        body = section[1].split("\n## ", 1)[0]
        command = cli.get_command(ctx, name)
        assert command is not None
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.opts[-1] in body, f"{name}: {param.opts[-1]} missing"


def test_generator_command_prints_the_page() -> None:
    """``python -m spherex_dask.cli._docgen cli`` prints the page; a bad argument is an error."""
    ok = subprocess.run(
        [sys.executable, "-m", "spherex_dask.cli._docgen", "cli"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0
    assert ok.stdout == render_cli()
    bad = subprocess.run(
        [sys.executable, "-m", "spherex_dask.cli._docgen", "html"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "usage" in bad.stderr


def test_markdown_escaping_and_signatures() -> None:
    """Markup characters are escaped outside code spans; signatures unquote annotations."""
    assert md_text("a <b> | `c|d`") == "a &lt;b&gt; \\| `c|d`"

    def f(x: int, *args: str, flag: bool = False) -> None: ...

    assert signature_text("f", f) == "f(x: int, *args: str, flag: bool = False)"


def test_api_reference_covers_the_public_names() -> None:
    """Every name of ``spherex_dask.__all__`` has an entry in docs/api.md."""
    import spherex_dask
    from spherex_dask.cli._apidoc import SECTIONS

    documented = {
        name for _, module, names, _ in SECTIONS if module == "spherex_dask" for name in names
    }
    assert documented == set(spherex_dask.__all__) - {"__version__"}
