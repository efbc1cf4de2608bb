# SPDX-License-Identifier: BSD-3-Clause
"""The main job end to end: simulate, create, ingest, certify, build and run, verify.

``spherex-dask demo DIR`` calls :func:`run_demo`; every step uses the public API the way a
pipeline engineer's script would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SpherexDaskError

if TYPE_CHECKING:
    from .butler import Butler
    from .pipeline import QuantumGraph, RunSummary

__all__ = ["DemoResult", "builtin_pipeline", "run_demo", "verify_subtraction"]

logger = logging.getLogger(__name__)

#: The demo's collections: inputs (as the proof of concept named them) and the output chain.
RAW_RUN, DARK_RUN, CALIB, OUTPUT = "rawexpr", "darkr", "calib", "demo"
#: The Intake catalog the demo writes in the repository (``spherex-dask export-catalog``).
CATALOG = "catalog.yaml"


@dataclass
class DemoResult:
    """What the demo made: where, how many, how long, and whether the pixels check out."""

    root: Path
    repo: Path
    graph: QuantumGraph
    summary: RunSummary
    verified: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    catalog: Path | None = None


def builtin_pipeline(name: str = "DarkSubtraction") -> str:
    """The text of a pipeline shipped with the package (``DarkSubtraction``, ``ExamplePipeline``)."""
    files = resources.files("spherex_dask.pipelines")
    path = files.joinpath(f"{name}.yaml")
    if not path.is_file():
        names = sorted(
            p.name.removesuffix(".yaml") for p in files.iterdir() if p.name.endswith(".yaml")
        )
        raise SpherexDaskError(f"No built-in pipeline {name!r}; built-in: {', '.join(names)}.")
    return path.read_text()


def verify_subtraction(butler: Butler, collection: str) -> int:
    """Check every ``dark_subtracted`` image equals its raw minus the certified dark.

    Returns the number of images checked.

    Raises
    ------
    SpherexDaskError
        Naming the first data ID whose pixels differ.
    """
    import numpy as np

    count = 0
    for ref in butler.registry.query_datasets("dark_subtracted", collections=[collection]):
        out = butler.get(ref).image.values
        raw = butler.get("raw", ref.data_id, collections=[RAW_RUN]).image.values
        dark = butler.get("dark", ref.data_id, collections=[CALIB]).image.values
        if not np.allclose(out, raw - dark, rtol=1e-6, atol=1e-6, equal_nan=True):
            raise SpherexDaskError(f"dark_subtracted {ref.data_id} differs from raw - dark.")
        count += 1
    return count


def run_demo(
    directory: str | Path,
    *,
    exposures: int = 4,
    detectors: Sequence[int] = (1, 2, 3, 4, 5, 6),
    size: int = 2040,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole main job in ``directory`` (which must not hold a repository yet).

    Parameters
    ----------
    directory
        The new repository; the simulated input files go in its ``incoming/`` folder and are
        ingested as symlinks.
    exposures, detectors, size, seed
        What to simulate (``size`` x ``size`` images).
    workers
        Worker processes of the local Dask cluster.
    progress
        Show progress bars.
    echo
        Where the narration goes (``print`` by default; ``click.echo`` from the CLI).
    """
    from .butler import Butler
    from .ingest import ingest_simulated
    from .intake import export_catalog
    from .pipeline import (
        Pipeline,
        apply_outputs,
        build_quantum_graph,
        dashboard_link,
        plan_outputs,
        run_quantum_graph,
    )
    from .pipeline._cluster import client_in_background
    from .sim import simulate
    from .types import CollectionType, Timespan

    # The cluster starts (its workers importing what quanta need) while the data are made.
    with client_in_background(n_workers=workers) as get_client:
        root = Path(directory)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        sim = simulate(
            root / "incoming", exposures=exposures, detectors=detectors, size=size, seed=seed
        )
        timings["simulate"] = time.perf_counter() - t0
        echo(
            f"1. Simulated {len(sim.files)} files ({len(sim.exposures)} exposures x "
            f"{len(detectors)} detectors, {size}x{size}) in {sim.root}"
        )

        repo = root
        butler = Butler.create(repo)
        echo(f"2. Created repository {repo} (SQLite registry {repo / 'registry.sqlite3'})")

        t0 = time.perf_counter()
        raws = ingest_simulated(butler, sim.root, ingest_type="raw", run=RAW_RUN, progress=progress)
        darks = ingest_simulated(
            butler, sim.root, ingest_type="dark", run=DARK_RUN, progress=progress
        )
        butler.registry.register_collection(CALIB, CollectionType.CALIBRATION)
        butler.registry.certify(CALIB, darks, Timespan(sim.timespan.begin, None))
        timings["ingest"] = time.perf_counter() - t0
        echo(
            f"3. Ingested {len(raws)} raws into {RAW_RUN!r} and {len(darks)} darks into "
            f"{DARK_RUN!r}; certified the darks in {CALIB!r} from {sim.timespan.begin:%Y-%m-%d %H:%M}"
        )

        t0 = time.perf_counter()
        pipeline = Pipeline.from_yaml(builtin_pipeline("DarkSubtraction"))
        plan = plan_outputs(butler.registry, inputs=[RAW_RUN, CALIB], output=OUTPUT)
        graph = build_quantum_graph(
            pipeline, butler.registry, input_collections=plan.inputs, output_run=plan.run
        )
        timings["qgraph"] = time.perf_counter() - t0
        per_task = ", ".join(f"{len(graph.quanta_for_task(t))} {t}" for t in pipeline.task_labels)
        echo(
            f"4. Built the quantum graph: {len(graph)} quanta ({per_task}), {len(graph.skipped)} skipped"
        )

        t0 = time.perf_counter()
        client = get_client()
        apply_outputs(butler.registry, plan)  # once a cluster is there to fill them
        echo(
            f"5. Running on a local Dask cluster of {workers} processes; dashboard: "
            f"{dashboard_link(client) or '(none)'}"
        )
        summary = run_quantum_graph(
            graph, butler, client, progress=progress, register_dataset_types=True
        )
        timings["run"] = time.perf_counter() - t0
    echo(summary.format())
    if not summary.ok:
        raise SpherexDaskError("The demo pipeline had failed quanta; see the summary above.")

    t0 = time.perf_counter()
    verified = verify_subtraction(butler, OUTPUT)
    timings["verify"] = time.perf_counter() - t0
    echo(f"6. Verified {verified} dark_subtracted images: pixels equal raw - dark.")
    butler.close()
    catalog = export_catalog(repo, repo / CATALOG)
    return DemoResult(
        root=root,
        repo=repo,
        graph=graph,
        summary=summary,
        verified=verified,
        timings=timings,
        catalog=catalog,
    )


def next_steps(result: DemoResult) -> str:
    """What to type next: the CLI queries and the Python that opens the outputs."""
    ref = result.graph.output_refs()[0] if len(result.graph) else None
    data_id = dict(ref.data_id.to_dict()) if ref is not None else {}
    repo = result.repo
    return "\n".join(
        [
            "",
            "What was made, and how to look at it:",
            f"  spherex-dask query-collections {repo} --flatten-chains",
            f"  spherex-dask query-datasets {repo} dark_subtracted --collections {OUTPUT}",
            f"  spherex-dask query-quanta {repo} --collections {OUTPUT}",
            "",
            "In Python (lazy, chunked xarray):",
            "  from spherex_dask import Butler",
            f"  butler = Butler({str(repo)!r}, collections=[{OUTPUT!r}])",
            f"  image = butler.get('dark_subtracted', {data_id!r})",
            f"  stack = butler.get('dark_subtracted_stack', instrument='SPHEREx', detector=1, "
            f"planning_period='{data_id.get('planning_period', '2025W19_2B')}')",
            "",
            f"Or through Intake (the catalog {result.catalog or repo / CATALOG}):",
            "  import intake",
            f"  cat = intake.open_catalog({str(result.catalog or repo / CATALOG)!r})",
            "  cat.dark_subtracted.to_dask()   # every exposure and detector, lazily",
        ]
    )
