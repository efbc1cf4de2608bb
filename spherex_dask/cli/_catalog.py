# SPDX-License-Identifier: BSD-3-Clause
"""``spherex-dask export-catalog``: write an Intake catalog of a repository."""

from __future__ import annotations

import click

from ._output import collections_option, handle_errors, repo_argument, split_collections


@click.command("export-catalog")
@repo_argument
@click.argument("out", type=click.Path(dir_okay=False))
@collections_option
@click.option(
    "--dataset-types",
    multiple=True,
    help="Glob patterns of the dataset types to include (comma-separated or repeated; "
    "default all).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["v1", "v2"]),
    default="v1",
    show_default=True,
    help="v1: Intake's 'sources:' YAML (spherex_dask driver); v2: Intake 2 readers.",
)
@handle_errors
def export_catalog(
    repo: str, out: str, collections: tuple[str, ...], dataset_types: tuple[str, ...], fmt: str
) -> None:
    """Write an Intake catalog of REPO to OUT (YAML): one entry per dataset type.

    Only dataset types that read as xarray get an entry (not StructuredData or AstropyTable,
    which Butler.get reads). Open it with intake.open_catalog(OUT); set SPHEREX_DASK_REPO to read another repository
    through the same catalog.
    """
    from ..intake import export_catalog as export

    path = export(
        repo,
        out,
        collections=split_collections(collections) or None,
        dataset_types=split_collections(dataset_types) or None,
        format="v2" if fmt == "v2" else "v1",
    )
    click.echo(f"Wrote {path}")
