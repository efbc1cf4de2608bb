# SPDX-License-Identifier: BSD-3-Clause
"""Value objects shared by every layer: data IDs, dataset types, refs, timespans.

Everything here is a small immutable record that pickles cheaply to Dask workers. Only the
standard library is used, so the registry and the io layers can both depend on this module.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DATASET_ID_NAMESPACE",
    "INT64_MAX",
    "INT64_MIN",
    "NS_MAX",
    "NS_MIN",
    "QUANTUM_STATUSES",
    "CollectionType",
    "DataId",
    "DataIdValue",
    "DatasetLocation",
    "DatasetRef",
    "DatasetType",
    "DimensionRecord",
    "QuantumRecord",
    "Timespan",
    "datetime_to_ns",
    "ns_to_datetime",
    "parse_time",
]

DataIdValue = int | str

#: Namespace of the deterministic (UUID5) dataset ids.
DATASET_ID_NAMESPACE = uuid.UUID("2b3c2a5e-5a3a-4a8e-9e33-5fd1c6a3e0d1")

#: The integers the registry's integer columns (BIGINT) hold.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: Nanosecond sentinels used for unbounded timespan ends in the database.
NS_MIN = -(2**62)
NS_MAX = 2**62

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_to_ns(value: datetime) -> int:
    """Convert a datetime to integer nanoseconds since 1970-01-01 UTC.

    Naive datetimes are taken to be UTC.

    Examples
    --------
    >>> datetime_to_ns(datetime(1970, 1, 1, 0, 0, 1))
    1000000000

    Raises
    ------
    ValueError
        If the time is not strictly between the unbounded sentinels ``NS_MIN`` and
        ``NS_MAX`` (1823-11-12 to 2116-02-20 UTC): the registry cannot store it (64-bit
        nanoseconds) or would read it back as unbounded.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if not NS_MIN < ns < NS_MAX:
        raise ValueError(
            f"The time {value.isoformat()} is outside the range the registry stores "
            f"({ns_to_datetime(NS_MIN + 1_000).isoformat()} to "
            f"{ns_to_datetime(NS_MAX - 1_000).isoformat()}); use a time in that range, or no "
            "end (or begin) for a timespan unbounded on that side."
        )
    return ns


def ns_to_datetime(value: int) -> datetime:
    """Convert integer nanoseconds since 1970-01-01 UTC to an aware UTC datetime."""
    from datetime import timedelta

    return _EPOCH + timedelta(microseconds=value // 1_000)


def parse_time(text: str | datetime) -> datetime:
    """Parse an ISO-8601 time (``2025-05-01``, ``2025-05-01T00:00:00``) to an aware UTC datetime.

    Raises
    ------
    ValueError
        If the text is not an ISO-8601 date or date-time.
    """
    if isinstance(text, datetime):
        return text if text.tzinfo is not None else text.replace(tzinfo=UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise ValueError(
            f"Invalid time {text!r}: expected ISO-8601 such as '2025-05-01T00:00:00'."
        ) from err
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Timespan:
    """A half-open time interval ``[begin, end)``; ``None`` means unbounded on that side.

    Examples
    --------
    >>> t = Timespan(parse_time("2025-05-01"), parse_time("2025-05-02"))
    >>> t.contains(parse_time("2025-05-01T12:00"))
    True
    >>> t.overlaps(Timespan(parse_time("2025-05-02"), None))
    False
    """

    begin: datetime | None
    end: datetime | None

    def __post_init__(self) -> None:
        for name in ("begin", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=UTC))
        if self.begin is not None and self.end is not None and self.end < self.begin:
            raise ValueError(f"Timespan end {self.end} is before its begin {self.begin}.")

    @property
    def begin_ns(self) -> int:
        """Begin as nanoseconds since the epoch (``NS_MIN`` when unbounded)."""
        return NS_MIN if self.begin is None else datetime_to_ns(self.begin)

    @property
    def end_ns(self) -> int:
        """End as nanoseconds since the epoch (``NS_MAX`` when unbounded)."""
        return NS_MAX if self.end is None else datetime_to_ns(self.end)

    @classmethod
    def from_ns(cls, begin: int, end: int) -> Timespan:
        """Build from database nanosecond values, mapping the sentinels to ``None``."""
        return cls(
            None if begin <= NS_MIN else ns_to_datetime(begin),
            None if end >= NS_MAX else ns_to_datetime(end),
        )

    def contains(self, time: datetime) -> bool:
        """Whether ``time`` lies within ``[begin, end)``."""
        ns = datetime_to_ns(time)
        return self.begin_ns <= ns < self.end_ns

    def overlaps(self, other: Timespan) -> bool:
        """Whether the two half-open intervals share any instant."""
        return self.begin_ns < other.end_ns and other.begin_ns < self.end_ns

    def __str__(self) -> str:
        begin = "-inf" if self.begin is None else self.begin.isoformat()
        end = "+inf" if self.end is None else self.end.isoformat()
        return f"[{begin}, {end})"


class CollectionType(enum.Enum):
    """The four kinds of collection."""

    RUN = "RUN"
    TAGGED = "TAGGED"
    CHAINED = "CHAINED"
    CALIBRATION = "CALIBRATION"


@dataclass(frozen=True, slots=True)
class DataId(Mapping[str, DataIdValue]):
    """A point in dimension space: an immutable mapping of dimension name to key value.

    Data IDs compare and hash by their key values only; ``records`` (the dimension records,
    filled in by the registry's ``expand_data_id``) ride along for file templates and metadata.

    Examples
    --------
    >>> d = DataId({"instrument": "SPHEREx", "exposure": 1234, "detector": 3})
    >>> d["detector"], len(d)
    (3, 3)
    >>> d == DataId({"detector": 3, "exposure": 1234, "instrument": "SPHEREx"})
    True
    """

    _values: tuple[tuple[str, DataIdValue], ...]
    records: Mapping[str, DimensionRecord] | None = field(default=None, compare=False, hash=False)

    def __init__(
        self,
        values: Mapping[str, DataIdValue] | None = None,
        *,
        records: Mapping[str, DimensionRecord] | None = None,
    ) -> None:
        object.__setattr__(self, "_values", tuple(sorted((values or {}).items())))
        object.__setattr__(self, "records", records)

    def __getitem__(self, key: str) -> DataIdValue:
        for name, value in self._values:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}: {v!r}" for k, v in self._values)
        return f"{{{inner}}}"

    def to_dict(self) -> dict[str, DataIdValue]:
        """A plain dict of the key values."""
        return dict(self._values)

    def subset(self, dimensions: tuple[str, ...] | list[str]) -> DataId:
        """The data ID restricted to ``dimensions`` (records are kept)."""
        return DataId({d: self[d] for d in dimensions}, records=self.records)

    def field(self, element: str, name: str) -> Any:
        """A metadata field of an attached dimension record, e.g. ``("exposure", "obs_id")``.

        Raises
        ------
        KeyError
            If the data ID has no record for ``element`` or the record has no such field.
        """
        if not self.records or element not in self.records:
            raise KeyError(
                f"Data ID {self!r} has no {element!r} record; expand it with the registry first."
            )
        return self.records[element].values[name]


@dataclass(frozen=True, slots=True)
class DimensionRecord:
    """Metadata of one dimension element value, e.g. a detector's wavelength range.

    ``values`` holds the key columns (required dimensions and the element's own key) and the
    metadata fields; temporal elements also carry ``timespan``.
    """

    element: str
    values: Mapping[str, Any]
    timespan: Timespan | None = None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"{self.element} record has no field {name!r}") from None

    def __hash__(self) -> int:
        return hash((self.element, tuple(sorted(self.values.items())), self.timespan))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DimensionRecord):
            return NotImplemented
        return (self.element, dict(self.values), self.timespan) == (
            other.element,
            dict(other.values),
            other.timespan,
        )

    def __getstate__(self) -> tuple[str, dict[str, Any], Timespan | None]:
        return (self.element, dict(self.values), self.timespan)

    def __setstate__(self, state: tuple[str, dict[str, Any], Timespan | None]) -> None:
        object.__setattr__(self, "element", state[0])
        object.__setattr__(self, "values", state[1])
        object.__setattr__(self, "timespan", state[2])


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetType:
    """A named category of datasets with dimensions and a storage class.

    A component dataset type (``raw.image``) names one part of its parent's storage class.

    Examples
    --------
    >>> raw = DatasetType(name="raw", dimensions=("instrument", "exposure", "detector"),
    ...                   storage_class="SpectralImage")
    >>> raw.component_type("flags").name
    'raw.flags'
    """

    name: str
    dimensions: tuple[str, ...]
    storage_class: str
    is_calibration: bool = False

    def __post_init__(self) -> None:
        # One name is one dimension (not its letters); a list becomes a hashable tuple.
        if isinstance(self.dimensions, str):
            object.__setattr__(self, "dimensions", (self.dimensions,))
        elif not isinstance(self.dimensions, tuple):
            object.__setattr__(self, "dimensions", tuple(self.dimensions))

    @property
    def parent_name(self) -> str:
        """The name without any component suffix."""
        return self.name.partition(".")[0]

    @property
    def component(self) -> str | None:
        """The component name, or ``None`` for a composite/parent type."""
        return self.name.partition(".")[2] or None

    def component_type(self, component: str) -> DatasetType:
        """The component dataset type ``{name}.{component}``."""
        return DatasetType(
            name=f"{self.parent_name}.{component}",
            dimensions=self.dimensions,
            storage_class=self.storage_class,
            is_calibration=self.is_calibration,
        )

    def parent_type(self) -> DatasetType:
        """The parent dataset type of a component type (itself if not a component)."""
        return DatasetType(
            name=self.parent_name,
            dimensions=self.dimensions,
            storage_class=self.storage_class,
            is_calibration=self.is_calibration,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetRef:
    """One dataset: unique by id, and by (dataset type, data ID, run).

    Examples
    --------
    >>> dt = DatasetType(name="dark", dimensions=("instrument", "detector"),
    ...                  storage_class="SpectralImage")
    >>> a = DatasetRef.make(dt, DataId({"instrument": "SPHEREx", "detector": 1}), "darkr")
    >>> b = DatasetRef.make(dt, DataId({"instrument": "SPHEREx", "detector": 1}), "darkr")
    >>> a.id == b.id
    True
    """

    id: uuid.UUID
    dataset_type: DatasetType
    data_id: DataId
    run: str

    @staticmethod
    def deterministic_id(dataset_type_name: str, data_id: Mapping[str, DataIdValue], run: str) -> uuid.UUID:
        """The UUID5 of (dataset type, data ID, run): workers name outputs without the database."""
        key = ",".join(f"{k}={data_id[k]!r}" for k in sorted(data_id))
        return uuid.uuid5(DATASET_ID_NAMESPACE, f"{dataset_type_name}|{key}|{run}")

    @classmethod
    def make(
        cls,
        dataset_type: DatasetType,
        data_id: DataId,
        run: str,
        *,
        deterministic: bool = True,
    ) -> DatasetRef:
        """Create a ref with a deterministic UUID5 id (or a random UUID4)."""
        # Only the dataset type's own dimensions count, so implied values (planning_period
        # of an exposure) attached by expansion never change the id.
        keys = {d: data_id[d] for d in dataset_type.dimensions if d in data_id} or data_id
        dataset_id = (
            cls.deterministic_id(dataset_type.parent_name, keys, run)
            if deterministic
            else uuid.uuid4()
        )
        return cls(id=dataset_id, dataset_type=dataset_type, data_id=data_id, run=run)


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetLocation:
    """Where a dataset's bytes live, as opaque strings the registry stores but never interprets.

    Written and read by the datastore (``io``) through the registry's narrow location API.
    """

    dataset_id: uuid.UUID
    path: str
    formatter: str
    size: int = -1
    checksum: str | None = None
    component: str | None = None


#: The states a quantum ends in: ran and wrote its outputs; raised (traceback kept); not run
#: because an upstream quantum did not succeed.
QUANTUM_STATUSES = ("succeeded", "failed", "skipped")


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantumRecord:
    """Provenance of one executed quantum: what ran, on what, where, when, and how it ended.

    ``inputs`` holds the ids of every dataset read (inputs and prerequisites), ``outputs`` the
    ids of the datasets written (empty unless ``status`` is ``"succeeded"``). ``error`` is the
    traceback text of a failed quantum, or why a skipped one was not run.

    Examples
    --------
    >>> t = datetime(2025, 5, 1, tzinfo=UTC)
    >>> r = QuantumRecord(id=uuid.UUID(int=1), run="out/run1", task_label="subtract",
    ...                   data_id=DataId({"instrument": "SPHEREx", "detector": 1}),
    ...                   status="failed", start=t, end=t,
    ...                   error="ValueError: boom\\n\\nTraceback (most recent call last): ...")
    >>> r.error_summary
    'ValueError: boom'
    """

    id: uuid.UUID
    run: str
    task_label: str
    data_id: DataId
    status: str
    start: datetime | None = None
    end: datetime | None = None
    worker: str = ""
    error: str = ""
    inputs: tuple[uuid.UUID, ...] = ()
    outputs: tuple[uuid.UUID, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in QUANTUM_STATUSES:
            raise ValueError(
                f"Unknown quantum status {self.status!r}; use one of {', '.join(QUANTUM_STATUSES)}."
            )

    @property
    def error_summary(self) -> str:
        """The first line of ``error`` (the exception itself), or ``""``."""
        return self.error.strip().partition("\n")[0].strip()
