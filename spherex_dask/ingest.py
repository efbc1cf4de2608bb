# SPDX-License-Identifier: BSD-3-Clause
"""Register the SPHEREx instrument and ingest files: simulated raws and darks, or any files.

Data IDs come from file names (a regular expression with named groups such as ``exposure``,
``detector`` or ``obs_id``) and from FITS header keywords; exposure and planning-period records
are read from the raw files' primary headers (``OBSID``, ``EXPIDN``, ``PLANPER``, ``DATE-OBS``,
``DATE-END``, ``EXPTIME``, ``RA_BORE``, ``DEC_BORE``, ``ROLL``, ``SURVEY``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .butler import FileDataset
from .errors import IngestError, SpherexDaskError
from .types import DatasetRef, DatasetType, Timespan, parse_time

if TYPE_CHECKING:
    from .butler import Butler
    from .registry import Registry

__all__ = [
    "DEFAULT_RUNS",
    "INSTRUMENT",
    "PLANNING_PERIOD_LENGTH",
    "dataset_type_for",
    "exposure_records_from_header",
    "find_files",
    "ingest_files",
    "ingest_simulated",
    "register_instrument",
]

logger = logging.getLogger(__name__)

#: The instrument name used in every SPHEREx data ID.
INSTRUMENT = "SPHEREx"
#: Length of one planning period (nominal, SPHEREX.md).
PLANNING_PERIOD_LENGTH = timedelta(days=3.5)
#: Output RUN collections of ``ingest-simulated``, as in the proof of concept.
DEFAULT_RUNS = {"raw": "rawexpr", "dark": "darkr", "level2": "level2r"}

_DATASET_TYPES = {
    "raw": DatasetType(
        name="raw", dimensions=("instrument", "exposure", "detector"), storage_class="SpectralImage"
    ),
    "level2": DatasetType(
        name="level2",
        dimensions=("instrument", "exposure", "detector"),
        storage_class="SpectralImage",
    ),
    "dark": DatasetType(
        name="dark",
        dimensions=("instrument", "detector"),
        storage_class="SpectralImage",
        is_calibration=True,
    ),
}


def dataset_type_for(kind: str) -> DatasetType:
    """The dataset type ``ingest-simulated`` uses for ``raw``, ``dark`` or ``level2`` files."""
    try:
        return _DATASET_TYPES[kind]
    except KeyError:
        raise IngestError(
            f"Unknown ingest type {kind!r}; expected one of {', '.join(_DATASET_TYPES)}."
        ) from None


def register_instrument(registry: Registry) -> int:
    """Insert (idempotently) the SPHEREx instrument and its six detector records.

    Returns the number of records inserted (0 when already registered).
    """
    from .sim import DETECTORS

    inserted = registry.sync_dimension_records(
        "instrument",
        [{"name": INSTRUMENT, "detector_max": len(DETECTORS), "class_name": "spherex_dask.SPHEREx"}],
    )
    detectors = [
        {
            "instrument": INSTRUMENT,
            "id": det,
            "band": det,
            "lmin": info.lmin,
            "lmax": info.lmax,
            "resolving_power": float(info.resolving_power),
            "focal_plane": info.focal_plane,
        }
        for det, info in sorted(DETECTORS.items())
    ]
    inserted += registry.sync_dimension_records("detector", detectors)
    for dt in _DATASET_TYPES.values():
        registry.register_dataset_type(dt)
    return inserted


#: The primary-header keywords :func:`exposure_records_from_header` reads.
_EXPOSURE_KEYWORDS = frozenset(
    {"PLANPER", "DATE-OBS", "DATE-END", "EXPIDN", "OBSID", "LSLEW", "SSLEW", "EXPTIME",
     "RA_BORE", "DEC_BORE", "ROLL", "SURVEY"}
)  # fmt: skip


#: Keywords taken from the IMAGE extension when the primary header lacks them: IRSA's Level-2
#: files keep only ``VERSION`` in the primary header (SPHEREX.md).
_IMAGE_KEYWORDS = ("DETECTOR", "OBSID", "EXPIDN", "DATE-OBS", "MJD-OBS", "DATE-END", "EXPTIME")


def _with_image_header(path: Path, primary: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``primary`` completed from the IMAGE extension's header, for a file laid out as IRSA
    distributes Level-2 files; and whether the exposure's length had to be assumed.

    The planning period and slew counters come from ``OBSID``, the start from ``DATE-OBS``
    or ``MJD-OBS``; without ``EXPTIME`` the length is ``DATE-END`` - start, and without
    ``DATE-END`` either the exposure is taken to last the simulator's
    :data:`~spherex_dask.sim.EXPOSURE_TIME` (SPHEREx's exposure time is unverified). Keywords
    that cannot be found are left out, for the caller's error to name.
    """
    import warnings

    from astropy.io import fits

    from .errors import DimensionError
    from .sim import parse_obs_id
    from .sim._exposures import from_mjd
    from .sim._instrument import EXPOSURE_TIME

    merged = dict(primary)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = fits.getheader(path, "IMAGE")
    except (OSError, KeyError, ValueError, IndexError):
        return merged, False
    for key in _IMAGE_KEYWORDS:
        if key not in merged and key in image:
            merged[key] = image[key]
    try:
        period, large, small = parse_obs_id(str(merged.get("OBSID", "")))
    except DimensionError:
        pass
    else:
        merged.setdefault("PLANPER", period)
        merged.setdefault("LSLEW", large)
        merged.setdefault("SSLEW", small)
    if "DATE-OBS" not in merged and isinstance(merged.get("MJD-OBS"), int | float):
        merged["DATE-OBS"] = from_mjd(float(merged["MJD-OBS"])).isoformat()
    if "EXPTIME" not in merged and "DATE-END" in merged and "DATE-OBS" in merged:
        try:  # the length the file gives
            length = parse_time(str(merged["DATE-END"])) - parse_time(str(merged["DATE-OBS"]))
        except (ValueError, TypeError):
            pass
        else:
            merged["EXPTIME"] = length.total_seconds()
    assumed = "EXPTIME" not in merged
    merged.setdefault("EXPTIME", EXPOSURE_TIME)
    if "DATE-END" not in merged and "DATE-OBS" in merged:
        try:
            end = parse_time(str(merged["DATE-OBS"])) + timedelta(seconds=float(merged["EXPTIME"]))
        except (ValueError, TypeError):
            return merged, assumed
        merged["DATE-END"] = end.isoformat()
    return merged, assumed


def _read_primary_header(path: Path, keys: Collection[str] | None = None) -> Mapping[str, Any]:
    from .io import read_primary_header

    try:
        return read_primary_header(path, keys)
    except SpherexDaskError as err:
        raise IngestError(f"Cannot ingest {str(path)!r}: {err}") from err


def exposure_records_from_header(
    header: Mapping[str, Any], *, path: str = "?"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (planning_period, exposure) records described by a raw or Level-2 primary header.

    Raises
    ------
    IngestError
        If a needed keyword is missing or malformed; the message names the file and keyword.
    """
    from .sim import planning_period_start

    def need(key: str) -> Any:
        if key not in header:
            raise IngestError(f"{path!r}: the header lacks keyword {key!r}.")
        return header[key]

    try:
        period = str(need("PLANPER"))
        period_begin = planning_period_start(period)
        begin, end = parse_time(str(need("DATE-OBS"))), parse_time(str(need("DATE-END")))
        exposure = {
            "instrument": INSTRUMENT,
            "id": int(need("EXPIDN")),
            "obs_id": str(need("OBSID")),
            "planning_period": period,
            "large_slew": int(header.get("LSLEW", 0)),
            "small_slew": int(header.get("SSLEW", 0)),
            "exposure_time": float(need("EXPTIME")),
            "ra": float(header.get("RA_BORE", 0.0)),
            "dec": float(header.get("DEC_BORE", 0.0)),
            "roll": float(header.get("ROLL", 0.0)),
            "survey": str(header.get("SURVEY", "wide")),
            "timespan": Timespan(begin, end),
        }
    except (ValueError, TypeError) as err:
        raise IngestError(f"{path!r}: malformed exposure keywords: {err}") from err
    planning = {
        "instrument": INSTRUMENT,
        "name": period,
        "timespan": Timespan(period_begin, period_begin + PLANNING_PERIOD_LENGTH),
    }
    return planning, exposure


def find_files(
    directory: str | Path, regex: str | re.Pattern[str] | Sequence[re.Pattern[str]]
) -> list[Path]:
    """Files recursively under ``directory`` whose names match ``regex`` (any of several), sorted."""
    if isinstance(regex, str | re.Pattern):
        patterns = [_compile(regex) if isinstance(regex, str) else regex]
    else:
        patterns = list(regex)
    root = Path(directory)
    if not root.is_dir():
        raise IngestError(f"{str(root)!r} is not a directory.")
    return sorted(
        p for p in root.rglob("*") if p.is_file() and any(r.search(p.name) for r in patterns)
    )


def _compile(regex: str) -> re.Pattern[str]:
    """``regex`` compiled; an invalid one is an :class:`IngestError` saying where it fails."""
    try:
        return re.compile(regex)
    except re.error as err:
        raise IngestError(
            f"Invalid regular expression {regex!r}: {err}; nothing was ingested."
        ) from None


def _default_patterns(kind: str) -> list[re.Pattern[str]]:
    from . import sim

    return {
        "raw": [sim.RAW_POC_REGEX, sim.RAW_IRSA_REGEX],
        "dark": [sim.DARK_REGEX],
        "level2": [sim.LEVEL2_POC_REGEX, sim.LEVEL2_REGEX],
    }[kind]


def ingest_simulated(
    butler: Butler,
    directory: str | Path,
    *,
    ingest_type: str = "raw",
    regex: str | None = None,
    transfer: str = "symlink",
    run: str | None = None,
    progress: bool = False,
) -> list[DatasetRef]:
    """Ingest simulated (or real IRSA-named) files of one kind from a directory.

    Raw and Level-2 files get their exposure and planning-period records from their headers;
    darks are keyed by detector. The instrument is registered if needed.

    Parameters
    ----------
    butler
        A writeable Butler.
    directory
        Where the files are (searched recursively).
    ingest_type
        ``raw``, ``dark`` or ``level2``.
    regex
        File-name pattern (default: the simulator's naming conventions for that kind).
    transfer
        Transfer mode (see :meth:`Butler.ingest`).
    run
        Output RUN collection (default ``rawexpr``, ``darkr`` or ``level2r``).
    progress
        Show a progress bar.

    Raises
    ------
    IngestError
        If no file matches, or a file is unreadable, mis-named or a duplicate; nothing is
        registered in that case (not even the instrument or the files' exposure records)
        and no file is transferred.
    """
    dataset_type = dataset_type_for(ingest_type)
    patterns = [_compile(regex)] if regex else _default_patterns(ingest_type)
    paths = find_files(directory, patterns)
    if not paths:
        raise IngestError(
            f"No file in {str(directory)!r} matches "
            f"{' or '.join(repr(p.pattern) for p in patterns)} for ingest type {ingest_type!r}."
        )
    datasets, records = _datasets_from_headers(paths, dataset_type, progress=progress)
    # One transaction: a failed ingest leaves no instrument, detector, planning-period or
    # exposure record behind either (the write lock is held while the files are transferred).
    with butler.registry.transaction():
        register_instrument(butler.registry)
        for element, rows in records.items():
            if rows:
                butler.registry.sync_dimension_records(element, rows)
        return butler.ingest(
            *datasets, transfer=transfer, run=run or DEFAULT_RUNS[ingest_type], progress=progress
        )


def _datasets_from_headers(
    paths: Sequence[Path], dataset_type: DatasetType, *, progress: bool
) -> tuple[list[FileDataset], dict[str, list[dict[str, Any]]]]:
    """The files' datasets, and the planning-period and exposure records their primary
    headers give (to sync before the ingest), without writing anything."""
    periods: dict[str, dict[str, Any]] = {}
    exposures: dict[int, dict[str, Any]] = {}
    datasets = []
    iterator: Iterable[Path] = paths
    if progress and len(paths) >= 20:
        from ._progress import progress_bar as tqdm

        iterator = tqdm(paths, desc="reading headers", unit="file")
    keys = _EXPOSURE_KEYWORDS | {"DETECTOR"}
    per_exposure = "exposure" in dataset_type.dimensions
    assumed = 0
    for path in iterator:
        header = _read_primary_header(path, keys)
        if "DETECTOR" not in header or (per_exposure and "OBSID" not in header):  # IRSA's
            header, guessed = _with_image_header(path, header)
            assumed += guessed and per_exposure
        if "DETECTOR" not in header:
            raise IngestError(
                f"{str(path)!r}: neither the primary nor the IMAGE header has keyword 'DETECTOR'."
            )
        data_id: dict[str, Any] = {"instrument": INSTRUMENT, "detector": int(header["DETECTOR"])}
        if per_exposure:
            planning, exposure = exposure_records_from_header(header, path=str(path))
            periods[planning["name"]] = planning
            exposures[exposure["id"]] = exposure
            data_id["exposure"] = exposure["id"]
        datasets.append(
            FileDataset(path=str(path), dataset_type=dataset_type.name, data_id=data_id)
        )
    if assumed:
        import warnings

        from .errors import SpherexDaskWarning
        from .sim._instrument import EXPOSURE_TIME

        warnings.warn(
            f"{assumed} file(s) have no EXPTIME (nor DATE-END): their exposures are taken to "
            f"last {EXPOSURE_TIME:g} s from their start, for the exposures' timespans.",
            SpherexDaskWarning,
            stacklevel=3,
        )
    records = {"planning_period": list(periods.values()), "exposure": list(exposures.values())}
    return datasets, records


def ingest_files(
    butler: Butler,
    paths: Iterable[str | Path],
    *,
    dataset_type: str,
    regex: str | None = None,
    header_keys: Mapping[str, str] | None = None,
    data_id: Mapping[str, Any] | None = None,
    run: str,
    transfer: str = "auto",
    formatter: str | None = None,
    progress: bool = False,
) -> list[DatasetRef]:
    """Ingest any files, building each data ID from its name and FITS header.

    Parameters
    ----------
    paths
        Files to ingest.
    dataset_type
        Name of a registered dataset type.
    regex
        A pattern with named groups named after dimensions (``exposure``, ``detector``) or
        ``obs_id`` (looked up as the exposure's alternate key), searched in each file name.
    header_keys
        Dimension name -> primary-header keyword, e.g. ``{"detector": "DETECTOR"}``.
    data_id
        Values common to every file (e.g. ``{"instrument": "SPHEREx"}``).

    Raises
    ------
    IngestError
        Naming the first file whose name does not match, whose header lacks a keyword, or
        whose data ID is invalid; nothing is registered.
    """
    pattern = _compile(regex) if regex else None
    datasets = []
    for raw_path in paths:
        path = Path(raw_path)
        values: dict[str, Any] = dict(data_id or {})
        if pattern is not None:
            match = pattern.search(path.name)
            if match is None:
                raise IngestError(
                    f"File name {path.name!r} does not match {pattern.pattern!r}; nothing was "
                    "ingested."
                )
            for key, value in match.groupdict().items():
                if value is not None:
                    values["exposure" if key == "obs_id" else key] = value
        if header_keys:
            header = _read_primary_header(path, header_keys.values())
            for dimension, keyword in header_keys.items():
                if keyword not in header:
                    raise IngestError(f"{str(path)!r}: primary header lacks keyword {keyword!r}.")
                values[dimension] = header[keyword]
        datasets.append(
            FileDataset(path=str(path), dataset_type=dataset_type, data_id=values, formatter=formatter)
        )
    return butler.ingest(*datasets, transfer=transfer, run=run, progress=progress)
