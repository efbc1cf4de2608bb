# SPDX-License-Identifier: BSD-3-Clause
"""Ingest commands: ``ingest-simulated`` (the proof of concept's) and ``ingest-files``."""

from __future__ import annotations

from pathlib import Path

import click

from ._output import handle_errors, repo_argument
from ._repo import open_butler

_TRANSFERS = ["copy", "move", "symlink", "relsymlink", "hardlink", "auto", "direct"]


def _transfer_option(default: str):
    return click.option(
        "--transfer",
        "-t",
        type=click.Choice(_TRANSFERS),
        default=default,
        show_default=True,
        help="How files get into the repository.",
    )


@click.command("ingest-simulated")
@repo_argument
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--ingest-type",
    type=click.Choice(["raw", "dark", "level2"]),
    default="raw",
    show_default=True,
    help="What kind of files to ingest.",
)
@click.option(
    "--regex",
    default=None,
    help="File-name pattern (default: the simulator's names for that kind).",
)
@click.option(
    "--output-run",
    "--run",
    "run",
    default=None,
    help="RUN collection (default: rawexpr, darkr or level2r).",
)
@_transfer_option("symlink")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@handle_errors
def ingest_simulated(
    repo: str,
    directory: str,
    ingest_type: str,
    regex: str | None,
    run: str | None,
    transfer: str,
    progress: bool,
) -> None:
    """Ingest simulated raw, dark or Level-2 files found under DIRECTORY into REPO."""
    from ..ingest import ingest_simulated as ingest

    butler = open_butler(repo)
    refs = ingest(
        butler,
        directory,
        ingest_type=ingest_type,
        regex=regex,
        transfer=transfer,
        run=run,
        progress=progress,
    )
    runs = sorted({r.run for r in refs})
    click.echo(f"Ingested {len(refs)} {ingest_type} file(s) into {', '.join(runs)} ({transfer}).")


@click.command("ingest-files")
@repo_argument
@click.argument("dataset_type")
@click.argument("run")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--regex",
    default=None,
    help="Pattern with named groups (exposure, detector, obs_id, ...) for the file name.",
)
@click.option(
    "--header-key",
    "header_keys",
    multiple=True,
    metavar="DIMENSION=KEYWORD",
    help="Take a dimension's value from a primary-header keyword (repeatable).",
)
@click.option(
    "--data-id",
    "data_id",
    multiple=True,
    metavar="DIMENSION=VALUE",
    help="A value common to all files (repeatable), e.g. instrument=SPHEREx.",
)
@click.option("--formatter", default=None, help="Formatter name (default: guessed from the file).")
@_transfer_option("auto")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@handle_errors
def ingest_files(
    repo: str,
    dataset_type: str,
    run: str,
    files: tuple[str, ...],
    regex: str | None,
    header_keys: tuple[str, ...],
    data_id: tuple[str, ...],
    formatter: str | None,
    transfer: str,
    progress: bool,
) -> None:
    """Ingest FILES as DATASET_TYPE into RUN, data IDs from names, headers and --data-id."""
    from ..ingest import ingest_files as ingest

    def pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
        out = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep:
                raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint=option)
            out[key.strip()] = value.strip()
        return out

    butler = open_butler(repo)
    refs = ingest(
        butler,
        [Path(f) for f in files],
        dataset_type=dataset_type,
        regex=regex,
        header_keys=pairs(header_keys, "--header-key"),
        data_id=pairs(data_id, "--data-id"),
        run=run,
        transfer=transfer,
        formatter=formatter,
        progress=progress,
    )
    click.echo(f"Ingested {len(refs)} file(s) as {dataset_type} into {run} ({transfer}).")
