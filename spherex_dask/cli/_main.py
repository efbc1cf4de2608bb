# SPDX-License-Identifier: BSD-3-Clause
"""The root click group; subcommands are imported lazily so ``--help`` starts fast."""

from __future__ import annotations

import gc
import importlib
import logging

import click

__all__ = ["cli", "main"]

#: Subcommand name -> "module:attribute" (relative to ``spherex_dask.cli``).
COMMANDS: dict[str, str] = {
    "create": "_repo:create",
    "register-instrument": "_repo:register_instrument",
    "register-dataset-type": "_repo:register_dataset_type",
    "query-dataset-types": "_repo:query_dataset_types",
    "query-collections": "_repo:query_collections",
    "collection-chain": "_repo:collection_chain",
    "query-datasets": "_repo:query_datasets",
    "query-data-ids": "_repo:query_data_ids",
    "query-dimension-records": "_repo:query_dimension_records",
    "certify-calibrations": "_repo:certify_calibrations",
    "prune-datasets": "_repo:prune_datasets",
    "remove-runs": "_repo:remove_runs",
    "export": "_repo:export",
    "import": "_repo:import_",
    "retrieve-artifacts": "_repo:retrieve_artifacts",
    "verify": "_repo:verify",
    "ingest-simulated": "_ingest:ingest_simulated",
    "ingest-files": "_ingest:ingest_files",
    "simulate": "_simulate:simulate",
    "demo": "_demo:demo",
    "export-catalog": "_catalog:export_catalog",
    "qgraph": "_pipeline:qgraph",
    "run": "_pipeline:run",
    "query-quanta": "_pipeline:query_quanta",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def invoke(self, ctx: click.Context) -> object:
        """Run the subcommand; after SIGTERM (see ``_signals``) or Ctrl-C, say so and exit
        143 or 130, the statuses shells and batch systems report for those signals (click
        alone would print "Aborted!" and exit 1)."""
        from ._signals import INTERRUPTED_STATUS, Terminated

        try:
            return super().invoke(ctx)
        except Terminated:
            click.echo(
                "\nTerminated (SIGTERM): the command stopped before it finished.",
                err=True,
            )
            ctx.exit(Terminated.exit_status)
        except KeyboardInterrupt:
            click.echo("\nInterrupted: the command stopped before it finished.", err=True)
            ctx.exit(INTERRUPTED_STATUS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            module = importlib.import_module(f"{__package__}.{module_name}")
            command: click.Command = getattr(module, attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Logging level of spherex_dask's messages.",
)
@click.version_option(package_name="spherex_dask")
def cli(log_level: str) -> None:
    """Organise and process SPHEREx data: registry, datastore and pipelines on Dask."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("spherex_dask")
    root.addHandler(handler)
    root.setLevel(log_level.upper())


def main() -> None:
    """Entry point of the ``spherex-dask`` console script."""
    from ._signals import raise_on_sigterm

    raise_on_sigterm()
    try:
        cli(prog_name="spherex-dask")
    finally:
        # The command has closed what it opened; nothing it made is used again. Exempting
        # its objects from the garbage collector's passes at interpreter exit saves about
        # 0.5 s after a pipeline run (hundreds of thousands of objects of numpy, xarray,
        # dask and distributed).
        gc.freeze()
