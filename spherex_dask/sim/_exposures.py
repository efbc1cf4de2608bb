# SPDX-License-Identifier: BSD-3-Clause
"""Simulated observations: identifiers, timing and boresight pointings.

Identifiers follow SPHEREX.md: a planning period (``2025W19_2B``), a 4-digit large-slew counter
and a small-slew counter (1-4) make the observation id ``2025W19_2B_0073_2``.  The integer
exposure id packs the same three values in decimal digits (see :func:`pack_exposure_id`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from ..errors import ConfigError, DimensionError
from ..types import Timespan
from ._instrument import EXPOSURE_TIME, INSTRUMENT_NAME

__all__ = [
    "CADENCE",
    "PLANNING_PERIOD_DURATION",
    "SimulatedExposure",
    "make_exposures",
    "mjd",
    "pack_exposure_id",
    "parse_obs_id",
    "planning_period_start",
    "unpack_exposure_id",
]

logger = logging.getLogger(__name__)

#: Time from one exposure's start to the next (s): SPHEREX.md's ~144 s cycle (*derived*).
CADENCE = 144.0

#: Length of one planning period (~3.5 days, SPHEREX.md).
PLANNING_PERIOD_DURATION = timedelta(days=3.5)

#: Along-track step of a large slew and of a small slew (deg). Simulator assumption.
LARGE_SLEW_STEP = 4.0
SMALL_SLEW_STEP = 0.5

#: Beyond this absolute ecliptic latitude (deg) an exposure belongs to the "deep" survey.
DEEP_ECLIPTIC_LATITUDE = 80.0

_PLANNING_PERIOD_RE = re.compile(r"(?P<year>\d{4})W(?P<week>\d{2})_(?P<part>\d)(?P<letter>[A-Z])")
_OBS_ID_RE = re.compile(
    rf"(?P<planning_period>{_PLANNING_PERIOD_RE.pattern})_(?P<large>\d{{4}})_(?P<small>[1-4])"
)
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
_OBLIQUITY = np.radians(23.4393)
_SEED_TAG = 0x5E1


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedExposure:
    """One observation, shared by the six detectors."""

    exposure_id: int
    obs_id: str
    planning_period: str
    large_slew: int
    small_slew: int
    begin: datetime
    end: datetime
    exposure_time: float
    ra: float
    dec: float
    roll: float
    survey: str

    @property
    def timespan(self) -> Timespan:
        """The half-open interval ``[begin, end)`` of the exposure."""
        return Timespan(self.begin, self.end)

    def record(self) -> dict[str, object]:
        """The ``exposure`` dimension record (with a ``timespan`` key)."""
        return {
            "instrument": INSTRUMENT_NAME,
            "id": self.exposure_id,
            "obs_id": self.obs_id,
            "planning_period": self.planning_period,
            "large_slew": self.large_slew,
            "small_slew": self.small_slew,
            "exposure_time": self.exposure_time,
            "ra": self.ra,
            "dec": self.dec,
            "roll": self.roll,
            "survey": self.survey,
            "timespan": self.timespan,
        }


def _parse_planning_period(name: str) -> re.Match[str]:
    match = _PLANNING_PERIOD_RE.fullmatch(name)
    if match is None or not 1 <= int(match["week"]) <= 53:
        raise DimensionError(
            f"Invalid planning period {name!r}: expected YYYYWww_NL with week 01-53, "
            "e.g. '2025W19_2B'."
        )
    return match


def pack_exposure_id(planning_period: str, large_slew: int, small_slew: int) -> int:
    """Pack an observation's identifiers into one integer exposure id.

    The decimal digits read ``YYYY WW N LL SSSS s``: year, ISO week, planning-period part,
    letter (A=01 ... Z=26), 4-digit large slew, 1-digit small slew. At most 14 digits, so it
    fits int64, and it is unique for distinct inputs.

    Raises
    ------
    DimensionError
        If the planning period is malformed or a counter is out of range.

    Examples
    --------
    >>> pack_exposure_id("2025W19_2B", 73, 2)
    20251920200732
    >>> unpack_exposure_id(20251920200732)
    ('2025W19_2B', 73, 2)
    """
    match = _parse_planning_period(planning_period)
    if not 0 <= large_slew <= 9999 or not 1 <= small_slew <= 4:
        raise DimensionError(
            f"Slew counters out of range: large_slew={large_slew} (0-9999), "
            f"small_slew={small_slew} (1-4)."
        )
    letter = ord(match["letter"]) - ord("A") + 1
    head = int(match["year"]) * 1000 + int(match["week"]) * 10 + int(match["part"])
    return ((head * 100 + letter) * 10_000 + large_slew) * 10 + small_slew


def unpack_exposure_id(exposure_id: int) -> tuple[str, int, int]:
    """Invert :func:`pack_exposure_id`: ``(planning_period, large_slew, small_slew)``.

    Raises
    ------
    DimensionError
        If the integer is not a packed exposure id.
    """
    rest, small = divmod(exposure_id, 10)
    rest, large = divmod(rest, 10_000)
    rest, letter = divmod(rest, 100)
    rest, part = divmod(rest, 10)
    year, week = divmod(rest, 100)
    if not (1 <= letter <= 26 and 1 <= week <= 53 and 1000 <= year <= 9999 and 1 <= small <= 4):
        raise DimensionError(f"{exposure_id} is not a packed SPHEREx exposure id.")
    return f"{year:04d}W{week:02d}_{part}{chr(ord('A') + letter - 1)}", large, small


def parse_obs_id(obs_id: str) -> tuple[str, int, int]:
    """Split an observation id into ``(planning_period, large_slew, small_slew)``.

    Examples
    --------
    >>> parse_obs_id("2025W19_2B_0073_2")
    ('2025W19_2B', 73, 2)
    """
    match = _OBS_ID_RE.fullmatch(obs_id)
    if match is None:
        raise DimensionError(
            f"Invalid observation id {obs_id!r}: expected e.g. '2025W19_2B_0073_2'."
        )
    return match["planning_period"], int(match["large"]), int(match["small"])


def planning_period_start(planning_period: str) -> datetime:
    """Nominal start of a planning period (simulator assumption, *unverified*).

    Part 1 starts on Monday 00:00 UTC of the ISO week, part 2 3.5 days later.

    Examples
    --------
    >>> planning_period_start("2025W19_2B").isoformat()
    '2025-05-08T12:00:00+00:00'
    """
    match = _parse_planning_period(planning_period)
    try:
        monday = datetime.fromisocalendar(int(match["year"]), int(match["week"]), 1)
    except ValueError as err:
        raise DimensionError(f"Planning period {planning_period!r}: {err}.") from err
    offset = PLANNING_PERIOD_DURATION * max(int(match["part"]) - 1, 0)
    return monday.replace(tzinfo=UTC) + offset


def as_utc(time: datetime) -> datetime:
    """The same instant as an aware UTC datetime (naive datetimes are taken to be UTC)."""
    return time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)


def mjd(time: datetime) -> float:
    """Modified Julian Date (UTC) of an aware datetime.

    Examples
    --------
    >>> mjd(datetime(1858, 11, 18, tzinfo=UTC))
    1.0
    """
    return (time - _MJD_EPOCH) / timedelta(days=1)


def from_mjd(value: float) -> datetime:
    """The aware UTC datetime of a Modified Julian Date (the inverse of :func:`mjd`).

    Examples
    --------
    >>> from_mjd(1.5).isoformat()
    '1858-11-18T12:00:00+00:00'
    """
    return _MJD_EPOCH + timedelta(days=value)


def _slew_counters(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Consecutive (large, small) counters: each large slew has 1-4 small slews, mostly 4."""
    counters: list[tuple[int, int]] = []
    large = 0
    while len(counters) < n:
        large += 1
        n_small = int(rng.choice([1, 2, 3, 4], p=[0.05, 0.05, 0.1, 0.8]))
        counters.extend((large, small) for small in range(1, n_small + 1))
    if large > 9999:
        raise ConfigError(f"{n} exposures need {large} large slews; at most 9999 fit a period.")
    return counters[:n]


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _pointing(position: np.ndarray, track: np.ndarray) -> tuple[float, float, float]:
    """RA, Dec (deg) of a unit vector and the position angle (deg, E of N) of ``track``."""
    ra = np.arctan2(position[1], position[0])
    dec = np.arcsin(np.clip(position[2], -1.0, 1.0))
    north = np.array([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    east = np.array([-np.sin(ra), np.cos(ra), 0.0])
    roll = np.degrees(np.arctan2(track @ east, track @ north)) % 360.0
    return float(np.degrees(ra) % 360.0), float(np.degrees(dec)), float(roll)


def _survey(ra: float, dec: float) -> str:
    """``"deep"`` near the ecliptic poles, else ``"wide"``."""
    a, d = np.radians(ra), np.radians(dec)
    sin_beta = np.sin(d) * np.cos(_OBLIQUITY) - np.cos(d) * np.sin(_OBLIQUITY) * np.sin(a)
    return "deep" if abs(np.degrees(np.arcsin(sin_beta))) > DEEP_ECLIPTIC_LATITUDE else "wide"


def _boresights(
    counters: list[tuple[int, int]], rng: np.random.Generator
) -> list[tuple[float, float, float]]:
    """A random walk along a great circle: large slews step 4 deg, small slews 0.5 deg."""
    start = _unit(rng.standard_normal(3))
    along = _unit(np.cross(start, rng.standard_normal(3)))
    normal = np.cross(start, along)
    cross = 0.0
    pointings = []
    for large, small in counters:
        if small == 1:
            cross += float(rng.normal(0.0, np.radians(0.05)))
        phi = np.radians((large - 1) * LARGE_SLEW_STEP + (small - 1) * SMALL_SLEW_STEP)
        on_circle = np.cos(phi) * start + np.sin(phi) * along
        position = np.cos(cross) * on_circle + np.sin(cross) * normal
        track = -np.sin(phi) * start + np.cos(phi) * along
        ra, dec, roll = _pointing(position, track)
        roll = (roll + float(rng.normal(0.0, 0.02))) % 360.0
        pointings.append((ra, dec, roll))
    return pointings


def make_exposures(
    n: int,
    *,
    seed: int = 0,
    start: datetime | None = None,
    planning_period: str = "2025W19_2B",
) -> list[SimulatedExposure]:
    """Generate ``n`` consecutive observations of one planning period, deterministically.

    Parameters
    ----------
    n
        Number of observations.
    seed
        Random seed; the same seed gives the same observations.
    start
        Start of the first exposure (aware, or naive UTC); defaults to the planning period's
        nominal start (:func:`planning_period_start`).
    planning_period
        Planning-period name, e.g. ``2025W19_2B``.

    Returns
    -------
    list of SimulatedExposure
        One per observation, every :data:`CADENCE` seconds, each lasting ``EXPOSURE_TIME``.

    Raises
    ------
    ConfigError
        If ``n`` or ``seed`` is negative, or ``n`` too large for one planning period.
    """
    if n < 0:
        raise ConfigError(f"Number of exposures must be >= 0, got {n}.")
    if seed < 0:
        raise ConfigError(f"The random seed must be >= 0, got {seed}.")
    begin = planning_period_start(planning_period) if start is None else as_utc(start)
    rng = np.random.default_rng(np.random.SeedSequence([_SEED_TAG, seed]))
    counters = _slew_counters(n, rng)
    exposures = []
    for index, ((large, small), (ra, dec, roll)) in enumerate(
        zip(counters, _boresights(counters, rng), strict=True)
    ):
        t0 = begin + timedelta(seconds=index * CADENCE)
        exposures.append(
            SimulatedExposure(
                exposure_id=pack_exposure_id(planning_period, large, small),
                obs_id=f"{planning_period}_{large:04d}_{small}",
                planning_period=planning_period,
                large_slew=large,
                small_slew=small,
                begin=t0,
                end=t0 + timedelta(seconds=EXPOSURE_TIME),
                exposure_time=EXPOSURE_TIME,
                ra=ra,
                dec=dec,
                roll=roll,
                survey=_survey(ra, dec),
            )
        )
    logger.debug("Made %d exposures of planning period %s", n, planning_period)
    return exposures
