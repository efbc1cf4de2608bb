# SPDX-License-Identifier: BSD-3-Clause
"""``spherex-dask demo``: the main job end to end."""

from __future__ import annotations

from pathlib import Path

import click

from ._output import handle_errors


def _detectors(text: str) -> tuple[int, ...]:
    if "-" in text:
        lo, hi = text.split("-", 1)
        return tuple(range(int(lo), int(hi) + 1))
    return tuple(int(v) for v in text.split(","))


@click.command()
@click.argument("directory", default="demo-repo", type=click.Path(file_okay=False))
@click.option("--exposures", default=4, show_default=True, help="Observations to simulate.")
@click.option("--detectors", default="1-6", show_default=True, help="Detectors, e.g. 1-6 or 1,3.")
@click.option("--size", default=2040, show_default=True, help="Image size in pixels.")
@click.option("--seed", default=0, show_default=True, help="Simulator seed.")
@click.option("-j", "--workers", default=2, show_default=True, help="Local Dask worker processes.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
@handle_errors
def demo(directory: str, exposures: int, detectors: str, size: int, seed: int, workers: int,
         progress: bool) -> None:
    """Simulate SPHEREx data, build a repository and run the dark-subtraction pipeline.

    DIRECTORY becomes a repository with a SQLite registry; the simulated FITS files go in
    DIRECTORY/incoming. The pipeline runs on a local Dask cluster and every output is checked
    against raw - dark.
    """
    if (Path(directory) / "butler.yaml").exists():
        raise click.ClickException(
            f"{directory} already holds a repository; remove it or choose another directory."
        )
    from ..pipeline._forkserver import start_worker_forkserver

    start_worker_forkserver()  # workers are forked from it, see run
    from ..demo import next_steps, run_demo

    result = run_demo(directory, exposures=exposures, detectors=_detectors(detectors), size=size,
                      seed=seed, workers=workers, progress=progress, echo=click.echo)
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    click.echo(f"Done ({timings}).")
    click.echo(next_steps(result))
