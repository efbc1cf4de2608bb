# SPDX-License-Identifier: BSD-3-Clause
"""File names of simulated data, and the regular expressions that parse them.

Two conventions (``naming=``):

========  ===========================================================================
kind      ``"poc"`` (the 2020 proof of concept)
========  ===========================================================================
raw       ``sim_exposure_{exposure_id:06d}_array_{detector}.fits``
dark      ``sim_dark_array_{detector}_dark_current.fits`` (one dark per detector); the
          proof of concept's own per-exposure dark names,
          ``sim_exposure_{exposure_id:06d}_array_{detector}_dark_current.fits``, are
          recognised too
level2    ``sim_exposure_{exposure_id:06d}_array_{detector}_level2.fits``
========  ===========================================================================

========  ===========================================================================
kind      ``"irsa"`` (the IRSA archive's names; Level-1 is not distributed, so raw
          frames get a look-alike ``level1_`` name)
========  ===========================================================================
raw       ``level1_{PP}_{large:04d}_{small}D{det}_spx_l1-v{N}-{YYYY}-{DOY}.fits``
dark      ``cal-drk-v{N}-{YYYY}-{DOY}_D{det}.fits`` (date = start of validity)
level2    ``level2_{PP}_{large:04d}_{small}D{det}_spx_l2b-v{N}-{YYYY}-{DOY}.fits``
========  ===========================================================================

``{YYYY}-{DOY}`` of raw and Level-2 names is the (simulated) processing date: the UTC date of
the files' ``DATE`` card (:func:`processing_time`: raw, the exposure's end; Level-2, 6 h
later). Every regex is anchored: match it against a file's base name. Named groups:
``exposure`` (poc names), ``planning_period``, ``large_slew``, ``small_slew`` (IRSA names),
``detector`` (all), plus ``version``, ``year``, ``doy`` where the name has them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

from ..errors import ConfigError, IngestError
from ._exposures import SimulatedExposure, pack_exposure_id

__all__ = [
    "DARK_IRSA_REGEX",
    "DARK_POC_REGEX",
    "DARK_REGEX",
    "LEVEL2_POC_REGEX",
    "LEVEL2_REGEX",
    "RAW_IRSA_REGEX",
    "RAW_POC_REGEX",
    "SIM_VERSION",
    "FileKind",
    "Naming",
    "file_name",
    "parse_file_name",
]

FileKind = Literal["raw", "dark", "level2"]
Naming = Literal["poc", "irsa"]

#: Processing delay assumed between an exposure's end and its Level-2 file.
LEVEL2_DELAY = timedelta(hours=6)

#: Version number written into IRSA-style names (``-v1-``) and the ``VERSION`` header card.
SIM_VERSION = 1

_DET = r"(?P<detector>[1-6])"
_OBS = r"(?P<planning_period>\d{4}W\d{2}_\d[A-Z])_(?P<large_slew>\d{4})_(?P<small_slew>[1-4])"
_DATE = r"(?P<year>\d{4})-(?P<doy>\d{3})"

RAW_POC_REGEX = re.compile(rf"^sim_exposure_(?P<exposure>\d+)_array_{_DET}\.fits$")
LEVEL2_POC_REGEX = re.compile(rf"^sim_exposure_(?P<exposure>\d+)_array_{_DET}_level2\.fits$")
DARK_POC_REGEX = re.compile(rf"^sim_(?:dark|exposure_\d+)_array_{_DET}_dark_current\.fits$")
RAW_IRSA_REGEX = re.compile(rf"^level1_{_OBS}D{_DET}_spx_l1-v(?P<version>\d+)-{_DATE}\.fits$")
LEVEL2_REGEX = re.compile(rf"^level2_{_OBS}D{_DET}_spx_l2b-v(?P<version>\d+)-{_DATE}\.fits$")
DARK_IRSA_REGEX = re.compile(rf"^cal-drk-v(?P<version>\d+)-{_DATE}_D{_DET}\.fits$")
#: Either dark convention; only the ``detector`` group is common to both.
DARK_REGEX = re.compile(
    rf"^(?:(?P<poc>sim_(?:dark|exposure_\d+)_array_)|cal-drk-v\d+-\d{{4}}-\d{{3}}_D){_DET}(?(poc)_dark_current)\.fits$"
)

_PATTERNS: tuple[tuple[FileKind, re.Pattern[str]], ...] = (
    ("raw", RAW_POC_REGEX),
    ("raw", RAW_IRSA_REGEX),
    ("level2", LEVEL2_POC_REGEX),
    ("level2", LEVEL2_REGEX),
    ("dark", DARK_POC_REGEX),
    ("dark", DARK_IRSA_REGEX),
)


def _processing_date(time: datetime) -> str:
    return time.strftime("%Y-%j")


def processing_time(kind: FileKind, exposure: SimulatedExposure) -> datetime:
    """Simulated processing time of an exposure's raw (its end) or Level-2 file (6 h later).

    It is the file's ``DATE`` card, and its UTC date ends the file's IRSA-style name.
    """
    return exposure.end + LEVEL2_DELAY if kind == "level2" else exposure.end


def file_name(
    kind: FileKind,
    *,
    naming: Naming,
    detector: int,
    exposure: SimulatedExposure | None = None,
    valid_from: datetime | None = None,
) -> str:
    """The file name of a simulated file.

    Parameters
    ----------
    kind
        ``"raw"``, ``"dark"`` or ``"level2"``.
    naming
        ``"poc"`` or ``"irsa"`` (see the module docstring).
    detector
        Detector number.
    exposure
        The observation (raw and Level-2 files).
    valid_from
        Start of a dark's validity (IRSA dark names).

    Raises
    ------
    ConfigError
        For an unknown kind or naming, or a missing ``exposure`` / ``valid_from``.
    """
    if naming not in ("poc", "irsa"):
        raise ConfigError(f"Unknown naming {naming!r}; use 'poc' or 'irsa'.")
    if kind == "dark":
        if naming == "poc":
            return f"sim_dark_array_{detector}_dark_current.fits"
        if valid_from is None:
            raise ConfigError("An IRSA-style dark name needs valid_from.")
        return f"cal-drk-v{SIM_VERSION}-{_processing_date(valid_from)}_D{detector}.fits"
    if kind not in ("raw", "level2"):
        raise ConfigError(f"Unknown file kind {kind!r}; use 'raw', 'dark' or 'level2'.")
    if exposure is None:
        raise ConfigError(f"A {kind} file name needs its exposure.")
    if naming == "poc":
        suffix = "" if kind == "raw" else "_level2"
        return f"sim_exposure_{exposure.exposure_id:06d}_array_{detector}{suffix}.fits"
    level, product = ("level1", "l1") if kind == "raw" else ("level2", "l2b")
    return (
        f"{level}_{exposure.obs_id}D{detector}_spx_{product}-v{SIM_VERSION}-"
        f"{_processing_date(processing_time(kind, exposure))}.fits"
    )


def parse_file_name(name: str) -> dict[str, int | str]:
    """Recognise a simulated file's base name: its kind, detector and exposure id.

    Returns
    -------
    dict
        ``kind`` and ``detector``, plus ``exposure`` (the packed integer id) for raw and
        Level-2 files.

    Raises
    ------
    IngestError
        If the name follows none of the conventions.

    Examples
    --------
    >>> parse_file_name("level2_2025W19_2B_0073_2D3_spx_l2b-v20-2025-247.fits")
    {'kind': 'level2', 'detector': 3, 'exposure': 20251920200732}
    >>> parse_file_name("sim_dark_array_4_dark_current.fits")
    {'kind': 'dark', 'detector': 4}
    """
    for kind, pattern in _PATTERNS:
        match = pattern.match(name)
        if match is None:
            continue
        result: dict[str, int | str] = {"kind": kind, "detector": int(match["detector"])}
        groups = match.groupdict()
        if "exposure" in groups:
            result["exposure"] = int(groups["exposure"])
        elif "planning_period" in groups:
            result["exposure"] = pack_exposure_id(
                groups["planning_period"], int(groups["large_slew"]), int(groups["small_slew"])
            )
        return result
    raise IngestError(
        f"File name {name!r} follows no simulator naming convention; expected e.g. "
        "'sim_exposure_000123_array_4.fits', 'sim_dark_array_4_dark_current.fits' or "
        "'level2_2025W19_2B_0073_2D3_spx_l2b-v1-2025-128.fits'."
    )
