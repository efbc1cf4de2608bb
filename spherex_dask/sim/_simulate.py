# SPDX-License-Identifier: BSD-3-Clause
"""``simulate``: a directory of SPHEREx-like raw frames, darks and optional Level-2 files."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import ConfigError, OutputExistsError
from ..types import Timespan
from ._exposures import (
    PLANNING_PERIOD_DURATION,
    SimulatedExposure,
    as_utc,
    make_exposures,
    planning_period_start,
)
from ._fits import write_dark, write_level2, write_raw
from ._instrument import DETECTORS, INSTRUMENT_NAME
from ._naming import FileKind, Naming, file_name
from ._scene import Scene, detector_model, make_scene

__all__ = ["INSTRUMENT_CLASS_NAME", "SimulatedFile", "Simulation", "simulate"]

logger = logging.getLogger(__name__)

#: ``class_name`` of the instrument record: the module that describes the simulated instrument.
INSTRUMENT_CLASS_NAME = "spherex_dask.sim.Simulation"
MIN_SIZE = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedFile:
    """One written file: its path, kind, exposure (``None`` for darks) and detector."""

    path: Path
    kind: FileKind
    exposure: SimulatedExposure | None
    detector: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Simulation:
    """What :func:`simulate` wrote, and the dimension records describing it."""

    root: Path
    exposures: tuple[SimulatedExposure, ...]
    files: tuple[SimulatedFile, ...]
    planning_period: str
    timespan: Timespan
    detectors: tuple[int, ...]

    def dimension_records(self) -> dict[str, list[dict[str, object]]]:
        """Records of the default universe, keyed by element; temporal ones carry ``timespan``.

        Detector records cover all six arrays; the planning period spans at least 3.5 days from
        its start and always covers every exposure.
        """
        instrument = {"instrument": INSTRUMENT_NAME}
        return {
            "instrument": [
                {
                    "name": INSTRUMENT_NAME,
                    "detector_max": len(DETECTORS),
                    "class_name": INSTRUMENT_CLASS_NAME,
                }
            ],
            "detector": [instrument | info.record() for info in DETECTORS.values()],
            "planning_period": [
                instrument | {"name": self.planning_period, "timespan": self.timespan}
            ],
            "exposure": [exposure.record() for exposure in self.exposures],
        }

    @property
    def size_bytes(self) -> int:
        """Total size of the files on disk."""
        return sum(f.path.stat().st_size for f in self.files)


def _check_arguments(
    exposures: int, detectors: Sequence[int], size: int, seed: int
) -> tuple[int, ...]:
    if seed < 0:
        raise ConfigError(f"The random seed must be >= 0, got {seed}.")
    if size < MIN_SIZE:
        raise ConfigError(f"Image size must be >= {MIN_SIZE} pixels, got {size}.")
    if exposures < 0:
        raise ConfigError(f"Number of exposures must be >= 0, got {exposures}.")
    unknown = sorted(set(detectors) - set(DETECTORS))
    if unknown or not detectors:
        raise ConfigError(
            f"Detectors must be a non-empty subset of {sorted(DETECTORS)}; got {list(detectors)}."
        )
    return tuple(sorted(set(detectors)))


def _plan(
    outdir: Path,
    exposures: list[SimulatedExposure],
    detectors: tuple[int, ...],
    *,
    level2: bool,
    naming: Naming,
    valid_from: datetime,
) -> list[SimulatedFile]:
    """The files to write, in writing order.

    Per detector: its dark, then the raw (and Level-2) file of each exposure, so that one
    detector model at a time is needed.
    """
    kinds: list[FileKind] = ["raw", "level2"] if level2 else ["raw"]
    planned = []
    for d in detectors:
        dark = file_name("dark", naming=naming, detector=d, valid_from=valid_from)
        planned.append(SimulatedFile(path=outdir / dark, kind="dark", exposure=None, detector=d))
        planned += [
            SimulatedFile(
                path=outdir / file_name(kind, naming=naming, detector=d, exposure=exposure),
                kind=kind,
                exposure=exposure,
                detector=d,
            )
            for exposure in exposures
            for kind in kinds
        ]
    return planned


def _write_files(
    planned: list[SimulatedFile], *, size: int, seed: int, valid_from: datetime
) -> None:
    """Write the planned files; a raw frame and its Level-2 file share one simulated scene."""
    scene: Scene | None = None
    for item in planned:
        if item.exposure is None:
            write_dark(
                item.path,
                item.detector,
                size=size,
                seed=seed,
                valid_from=valid_from,
                overwrite=True,
            )
            continue
        if scene is None or (scene.exposure, scene.detector) != (item.exposure, item.detector):
            scene = make_scene(item.exposure, item.detector, size=size, seed=seed)
        writer = write_raw if item.kind == "raw" else write_level2
        writer(item.path, scene, overwrite=True)


def simulate(
    outdir: str | Path,
    *,
    exposures: int = 4,
    detectors: Sequence[int] = (1, 2, 3, 4, 5, 6),
    size: int = 2040,
    seed: int = 0,
    level2: bool = False,
    naming: Naming = "poc",
    start: datetime | None = None,
    planning_period: str = "2025W19_2B",
    overwrite: bool = False,
) -> Simulation:
    """Write deterministic SPHEREx-like data: one dark per detector and raw frames (and Level-2).

    Parameters
    ----------
    outdir
        Directory to write into (created if needed); files are written flat inside it.
    exposures
        Number of observations.
    detectors
        Detector numbers to simulate (1-6).
    size
        Image size in pixels (>= 16; 2040 as distributed).
    seed
        Random seed: the same seed gives byte-identical files.
    level2
        Also write IRSA-layout Level-2 files.
    naming
        File-name convention, ``"poc"`` or ``"irsa"`` (see :mod:`spherex_dask.sim._naming`).
    start
        Start of the first exposure; defaults to the planning period's nominal start.
    planning_period
        Planning-period name of the observations.
    overwrite
        Replace existing files; otherwise refuse before writing anything.

    Returns
    -------
    Simulation
        The exposures, the files written and their dimension records.

    Raises
    ------
    ConfigError
        For invalid arguments.
    OutputExistsError
        If a file to write exists and ``overwrite`` is false (nothing is written).

    Notes
    -----
    The darks are valid from 00:00 UTC of the start day (``VALIDFRM``; IRSA-style dark names
    carry that date). The planning period's timespan begins at ``start`` (the first exposure)
    and lasts 3.5 days, or longer if the exposures need it.
    """
    chosen = _check_arguments(exposures, detectors, size, seed)
    root = Path(outdir)
    made = make_exposures(exposures, seed=seed, start=start, planning_period=planning_period)
    begin = planning_period_start(planning_period) if start is None else as_utc(start)
    valid_from = begin.replace(hour=0, minute=0, second=0, microsecond=0)
    planned = _plan(root, made, chosen, level2=level2, naming=naming, valid_from=valid_from)
    existing = [f.path.name for f in planned if f.path.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{len(existing)} file(s) exist in {root} (first: {existing[0]}); "
            "pass overwrite=True (--overwrite) or choose another directory."
        )
    root.mkdir(parents=True, exist_ok=True)
    try:
        _write_files(planned, size=size, seed=seed, valid_from=valid_from)
    finally:
        detector_model.cache_clear()  # up to 50 MB per full-size detector
    end = max([begin + PLANNING_PERIOD_DURATION] + [e.end for e in made])
    logger.info("Simulated %d files for %d exposures in %s", len(planned), len(made), root)
    return Simulation(
        root=root,
        exposures=tuple(made),
        files=tuple(planned),
        planning_period=planning_period,
        timespan=Timespan(begin, end),
        detectors=chosen,
    )
