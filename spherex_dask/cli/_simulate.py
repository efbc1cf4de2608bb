# SPDX-License-Identifier: BSD-3-Clause
"""``spherex-dask simulate``: write SPHEREx-like raw frames, darks and Level-2 files."""

from __future__ import annotations

from datetime import datetime

import click

from ._output import handle_errors

__all__ = ["parse_detectors", "simulate"]


def parse_detectors(text: str) -> tuple[int, ...]:
    """Parse ``"1-6"``, ``"1,3,5"`` or a mix such as ``"1-3,6"`` into sorted detector numbers.

    Raises
    ------
    ValueError
        If a part is not an integer or a range ``a-b`` with ``a <= b``.

    Examples
    --------
    >>> parse_detectors("1-3,6")
    (1, 2, 3, 6)
    """
    numbers: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ValueError(
                f"{part!r} is neither a detector number nor a range like 1-6"
            ) from None
        if first > last:
            raise ValueError(f"Range {part!r} is empty; write it as low-high, e.g. 1-6.")
        numbers.update(range(first, last + 1))
    if not numbers:
        raise ValueError("No detectors given; use e.g. 1-6 or 1,3,5.")
    return tuple(sorted(numbers))


def _detectors_option(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        return parse_detectors(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None


@click.command(short_help="Write simulated SPHEREx raw frames, darks and Level-2 files.")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option(
    "--exposures",
    "-n",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Number of observations.",
)
@click.option(
    "--detectors",
    default="1-6",
    show_default=True,
    callback=_detectors_option,
    help="Detectors: a range (1-6), a list (1,3,5) or both (1-3,6).",
)
@click.option(
    "--size",
    type=click.IntRange(min=16),
    default=2040,
    show_default=True,
    help="Image size in pixels.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
)
@click.option("--level2", is_flag=True, help="Also write IRSA-layout Level-2 files.")
@click.option(
    "--naming",
    type=click.Choice(["poc", "irsa"]),
    default="poc",
    show_default=True,
    help="File names of the proof of concept or of the IRSA archive.",
)
@click.option(
    "--start",
    type=click.DateTime(),
    default=None,
    help="Start of the first exposure (UTC); default: the planning period's start.",
)
@click.option(
    "--planning-period",
    default="2025W19_2B",
    show_default=True,
    help="Planning period of the observations.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing files.")
@handle_errors
def simulate(
    outdir: str,
    exposures: int,
    detectors: tuple[int, ...],
    size: int,
    seed: int,
    level2: bool,
    naming: str,
    start: datetime | None,
    planning_period: str,
    overwrite: bool,
) -> None:
    """Write deterministic SPHEREx-like data into OUTDIR.

    One dark per detector, one raw frame per exposure and detector, and with --level2 one
    IRSA-layout Level-2 file per exposure and detector. The same seed gives the same bytes.
    """
    from ..sim import simulate as run_simulation

    simulation = run_simulation(
        outdir,
        exposures=exposures,
        detectors=detectors,
        size=size,
        seed=seed,
        level2=level2,
        naming=naming,  # type: ignore[arg-type]
        start=start,
        planning_period=planning_period,
        overwrite=overwrite,
    )
    counts = {kind: 0 for kind in ("raw", "dark", "level2")}
    for item in simulation.files:
        counts[item.kind] += 1
    size_bytes = simulation.size_bytes
    click.echo(
        f"Wrote {len(simulation.files)} files ({counts['raw']} raw, {counts['dark']} dark, "
        f"{counts['level2']} level2) for {len(simulation.exposures)} exposures to "
        f"{simulation.root}: {size_bytes} bytes ({size_bytes / 1e6:.1f} MB)."
    )
