# SPDX-License-Identifier: BSD-3-Clause
"""The registry contract suite, run against every database backend.

Subclass :class:`RegistryTests` and provide a ``make_registry`` fixture returning a factory
``make_registry(universe=None) -> Registry`` that creates a fresh, empty registry (and cleans
it up afterwards)::

    class TestSqliteRegistry(RegistryTests):
        @pytest.fixture
        def make_registry(self, tmp_path): ...
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ..dimensions import DimensionUniverse
from ..errors import (
    CalibrationConflictError,
    CollectionCycleError,
    CollectionError,
    CollectionTypeError,
    ConfigError,
    DataIdError,
    DataIdValueError,
    DatasetConflictError,
    DatasetNotFoundError,
    DatasetTypeConflictError,
    DatasetTypeError,
    DimensionError,
    DimensionNotInQueryError,
    MissingCollectionError,
    MissingDatasetTypeError,
    QueryError,
    QuerySyntaxError,
    RecordConflictError,
    UniverseMismatchError,
    UnknownNameError,
)
from ..registry import Registry
from ..types import (
    CollectionType,
    DataId,
    DatasetLocation,
    DatasetRef,
    DatasetType,
    QuantumRecord,
    Timespan,
    parse_time,
)

__all__ = [
    "CUSTOM_UNIVERSE_YAML",
    "DARK",
    "RAW",
    "STACK",
    "RegistryTests",
    "concurrent_insert_worker",
    "populate",
]

INSTR = "SPHEREx"
T0 = parse_time("2025-05-01T00:00")
MINUTE = timedelta(minutes=1)
RAW = DatasetType(
    name="raw", dimensions=("instrument", "detector", "exposure"), storage_class="SpectralImage"
)
DARK = DatasetType(
    name="dark",
    dimensions=("instrument", "detector"),
    storage_class="SpectralImage",
    is_calibration=True,
)
STACK = DatasetType(
    name="stack", dimensions=("instrument", "detector"), storage_class="SpectralImage"
)

CUSTOM_UNIVERSE_YAML = """
name: custom
version: 1
elements:
  instrument:
    key: {name: name, type: string, length: 32}
  detector:
    requires: [instrument]
    key: {name: id, type: int}
    metadata: [{name: band, type: int}]
  exposure:
    requires: [instrument]
    key: {name: id, type: int}
    alternate_key: obs_id
    temporal: true
    metadata: [{name: obs_id, type: string, length: 32}]
  healpix:
    doc: An extra element with no required dimensions.
    key: {name: id, type: int}
    metadata: [{name: order, type: int}]
"""


def exposure_timespan(i: int) -> Timespan:
    """Exposure ``i`` (1-based) lasts five minutes every ten minutes from 2025-05-01T00:00."""
    begin = T0 + (i - 1) * 10 * MINUTE
    return Timespan(begin, begin + 5 * MINUTE)


def populate(registry: Registry, *, exposures: int = 8) -> Registry:
    """Insert the standard test records: SPHEREx, detectors 1-6, two planning periods,
    ``exposures`` exposures and the dataset types RAW, DARK and STACK."""
    registry.insert_dimension_records(
        "instrument", [{"name": INSTR, "detector_max": 6, "class_name": "x"}]
    )
    registry.insert_dimension_records(
        "detector",
        [
            {
                "instrument": INSTR,
                "id": d,
                "band": d,
                "lmin": 0.75 + d,
                "lmax": 1.0 + d,
                "resolving_power": 41.0,
                "focal_plane": "short" if d <= 3 else "long",
            }
            for d in range(1, 7)
        ],
    )
    registry.insert_dimension_records(
        "planning_period",
        [
            {"instrument": INSTR, "name": "2025W18_1A", "timespan": Timespan(T0, T0 + 40 * MINUTE)},
            {
                "instrument": INSTR,
                "name": "2025W18_1B",
                "timespan": Timespan(T0 + 40 * MINUTE, None),
            },
        ],
    )
    registry.insert_dimension_records(
        "exposure",
        [
            {
                "instrument": INSTR,
                "id": i,
                "obs_id": obs_id(i),
                "planning_period": period(i),
                "large_slew": i,
                "small_slew": 1,
                "exposure_time": 112.0,
                "ra": 10.0 * i,
                "dec": -5.0,
                "roll": 0.0,
                "survey": "wide" if i % 2 else "deep",
                "timespan": exposure_timespan(i),
            }
            for i in range(1, exposures + 1)
        ],
    )
    for dataset_type in (RAW, DARK, STACK):
        registry.register_dataset_type(dataset_type)
    return registry


def obs_id(i: int) -> str:
    """The obs_id of test exposure ``i``."""
    return f"{period(i)}_{i:04d}_1"


def period(i: int) -> str:
    """The planning period of test exposure ``i``."""
    return "2025W18_1A" if i <= 4 else "2025W18_1B"


def raw_ids(exposures: range = range(1, 9), detectors: range = range(1, 7)) -> list[dict[str, Any]]:
    """Data IDs of raw datasets."""
    return [
        {"instrument": INSTR, "exposure": e, "detector": d} for e in exposures for d in detectors
    ]


class RegistryTests:
    """Contract tests every registry backend must pass."""

    @pytest.fixture
    def make_registry(self) -> Callable[..., Registry]:
        """Subclasses return a factory of fresh registries."""
        raise NotImplementedError("subclasses must provide a make_registry fixture")

    @pytest.fixture
    def registry(self, make_registry: Callable[..., Registry]) -> Registry:
        """An empty registry."""
        return make_registry()

    @pytest.fixture
    def reg(self, registry: Registry) -> Registry:
        """A registry with the standard dimension records and dataset types."""
        return populate(registry)

    @pytest.fixture
    def raws(self, reg: Registry) -> list[DatasetRef]:
        """48 raw datasets (8 exposures x 6 detectors) in run ``raw/run1``."""
        reg.register_run("raw/run1")
        return reg.insert_datasets("raw", raw_ids(), "raw/run1")

    # -- universe and repository -----------------------------------------------------------
    def test_universe_round_trip(self, make_registry: Callable[..., Registry]) -> None:
        """A custom universe is stored in the database and read back on open."""
        universe = DimensionUniverse.from_yaml(CUSTOM_UNIVERSE_YAML)
        registry = make_registry(universe)
        with Registry.open(registry.url) as reopened:
            assert reopened.universe == universe
            assert "healpix" in reopened.universe

    def test_open_with_other_universe_raises(self, registry: Registry) -> None:
        """Opening with a universe that differs from the stored one is an error."""
        other = DimensionUniverse.from_yaml(CUSTOM_UNIVERSE_YAML)
        with pytest.raises(UniverseMismatchError, match="different dimension universe"):
            Registry.open(registry.url, universe=other)
        with Registry.open(registry.url, universe=DimensionUniverse.default()) as same:
            assert same.universe == registry.universe

    def test_create_twice_raises(self, registry: Registry) -> None:
        """Creating a registry where one exists is an error."""
        with pytest.raises(ConfigError, match="already exists"):
            Registry.create(registry.url)

    def test_custom_universe_extra_element(self, make_registry: Callable[..., Registry]) -> None:
        """A universe with an extra element gets its own table and dataset column."""
        registry = make_registry(DimensionUniverse.from_yaml(CUSTOM_UNIVERSE_YAML))
        registry.insert_dimension_records("instrument", [{"name": INSTR}])
        registry.insert_dimension_records(
            "detector", [{"instrument": INSTR, "id": d, "band": d} for d in (1, 2)]
        )
        registry.insert_dimension_records("healpix", [{"id": p, "order": 5} for p in range(10, 14)])
        tile = DatasetType(name="tile", dimensions=("healpix", "detector"), storage_class="X")
        registry.register_dataset_type(tile)
        registry.register_run("tiles")
        ids = [
            {"instrument": INSTR, "detector": d, "healpix": p}
            for d in (1, 2)
            for p in range(10, 14)
        ]
        refs = registry.insert_datasets("tile", ids, "tiles")
        found = registry.find_dataset(
            "tile", instrument=INSTR, detector=2, healpix=12, collections="tiles"
        )
        assert found is not None
        assert found.id == refs[6].id
        got = list(
            registry.query_datasets(
                "tile", collections="tiles", where="healpix IN (11..12) AND detector = 1"
            )
        )
        assert sorted(r.data_id["healpix"] for r in got) == [11, 12]
        data_ids = list(registry.query_data_ids(["healpix", "detector"], where="healpix.order = 5"))
        assert len(data_ids) == 8

    def test_read_only_registry_rejects_writes(self, reg: Registry) -> None:
        """A registry opened with writeable=False can read but not write."""
        with Registry.open(reg.url, writeable=False) as ro:
            assert ro.get_dataset_type("raw") == reg.get_dataset_type("raw")
            with pytest.raises(ConfigError, match="read-only"):
                ro.register_run("nope")

    # -- data IDs --------------------------------------------------------------------------
    def test_expand_data_id(self, reg: Registry) -> None:
        """Expansion fills implied dimensions and attaches every record."""
        data_id = reg.expand_data_id({"instrument": INSTR, "exposure": 5, "detector": 2})
        assert data_id["planning_period"] == "2025W18_1B"
        assert set(data_id.records or {}) == {
            "instrument",
            "detector",
            "exposure",
            "planning_period",
        }
        assert data_id.field("exposure", "obs_id") == obs_id(5)
        assert data_id.records is not None
        assert data_id.records["exposure"].timespan == exposure_timespan(5)

    def test_expand_data_ids_matches_one_by_one(self, reg: Registry) -> None:
        """The batched expansion equals expand_data_id for each data ID, in order, with
        alternate keys and string values; a data ID without a record is an error naming it."""
        given = [
            {"instrument": INSTR, "exposure": e, "detector": d} for e in (5, 3, 5) for d in (2, 1)
        ]
        given.append({"instrument": INSTR, "exposure": obs_id(3), "detector": "2"})
        batched = reg.expand_data_ids(given, dimensions=["instrument", "exposure", "detector"])
        single = [reg.expand_data_id(g, dimensions=["exposure", "detector"]) for g in given]
        assert batched == single
        assert [b.records for b in batched] == [s.records for s in single]
        assert reg.expand_data_ids([]) == []
        with pytest.raises(DataIdValueError, match="exposure=999"):
            reg.expand_data_ids([given[0], {"instrument": INSTR, "exposure": 999, "detector": 1}])

    def test_expand_data_id_alternate_keys(self, reg: Registry) -> None:
        """An obs_id string in place of the integer exposure id, or as exposure.obs_id, works."""
        by_string = reg.expand_data_id(instrument=INSTR, exposure=obs_id(3), detector=1)
        by_field = reg.expand_data_id(
            {"instrument": INSTR, "exposure.obs_id": obs_id(3), "detector": 1}
        )
        assert by_string["exposure"] == by_field["exposure"] == 3
        with pytest.raises(DataIdValueError, match="2099"):
            reg.expand_data_id(instrument=INSTR, exposure="2099W01_1A_0001_1")

    def test_data_id_unknown_dimension(self, reg: Registry) -> None:
        """An unknown dimension name is an error naming it."""
        with pytest.raises(DataIdError, match="'filter'"):
            reg.expand_data_id(instrument=INSTR, filter="r")

    def test_data_id_missing_key(self, reg: Registry) -> None:
        """A missing required dimension is an error naming it."""
        with pytest.raises(DataIdError, match="instrument"):
            reg.expand_data_id(detector=1)
        with pytest.raises(DataIdError, match="exposure"):
            reg.expand_data_id(
                {"instrument": INSTR, "detector": 1}, dimensions=["exposure", "detector"]
            )

    def test_data_id_wrong_type(self, reg: Registry) -> None:
        """A value of the wrong type is an error naming the dimension and the value."""
        with pytest.raises(DataIdError, match=r"detector.*1\.5|1\.5.*detector"):
            reg.expand_data_id(instrument=INSTR, detector=1.5)
        reg.register_run("r")
        with pytest.raises(DataIdError, match="detector"):
            reg.insert_datasets("raw", [{"instrument": INSTR, "exposure": 1, "detector": "x"}], "r")
        with pytest.raises(DataIdError, match="longer than 32"):
            reg.insert_datasets(
                "raw", [{"instrument": "S" * 40, "exposure": 1, "detector": 1}], "r"
            )
        refs = reg.insert_datasets(
            "raw", [{"instrument": INSTR, "exposure": "1", "detector": 2}], "r"
        )
        assert refs[0].data_id["exposure"] == 1

    def test_data_id_value_without_record(self, reg: Registry) -> None:
        """A value with no record is an error naming the dimension and the value."""
        with pytest.raises(DataIdValueError, match=r"detector=99"):
            reg.expand_data_id(instrument=INSTR, detector=99)
        reg.register_run("r")
        with pytest.raises(DataIdValueError, match=r"exposure.*42"):
            reg.insert_datasets("raw", [{"instrument": INSTR, "exposure": 42, "detector": 1}], "r")

    def test_expand_inconsistent_implied_value(self, reg: Registry) -> None:
        """An implied value contradicting the record is an error."""
        with pytest.raises(DataIdValueError, match="planning_period"):
            reg.expand_data_id(instrument=INSTR, exposure=1, planning_period="2025W18_1B")

    # -- dimension records -------------------------------------------------------------------
    def test_query_dimension_records(self, reg: Registry) -> None:
        """Records come back with their fields, filtered by where, bind and data ID."""
        records = list(
            reg.query_dimension_records(
                "detector", where="detector.focal_plane = :fp", bind={"fp": "long"}
            )
        )
        assert [r.id for r in records] == [4, 5, 6]
        assert records[0].band == 4
        assert records[0].lmin == pytest.approx(4.75)
        exposures = list(
            reg.query_dimension_records("exposure", data_id={"planning_period": "2025W18_1A"})
        )
        assert [r.values["id"] for r in exposures] == [1, 2, 3, 4]
        overlapping = list(
            reg.query_dimension_records(
                "exposure", where="exposure.timespan OVERLAPS T'2025-05-01T00:12'"
            )
        )
        assert [r.values["obs_id"] for r in overlapping] == [obs_id(2)]

    def test_insert_existing_record(self, reg: Registry) -> None:
        """Re-inserting a record is an error unless skip_existing is set."""
        with pytest.raises(RecordConflictError, match="already exist"):
            reg.insert_dimension_records("detector", [{"instrument": INSTR, "id": 1, "band": 1}])
        assert (
            reg.insert_dimension_records(
                "detector", [{"instrument": INSTR, "id": 1}], skip_existing=True
            )
            == 0
        )

    def test_sync_dimension_records(self, reg: Registry) -> None:
        """sync inserts new records and accepts identical ones."""
        record = next(iter(reg.query_dimension_records("detector", data_id={"detector": 2})))
        assert reg.sync_dimension_records("detector", [record]) == 0
        new = {"instrument": INSTR, "id": 7, "band": 7}
        assert reg.sync_dimension_records("detector", [new, record]) == 1
        assert reg.sync_dimension_records("detector", [new]) == 0

    def test_sync_conflict_names_fields(self, reg: Registry) -> None:
        """A differing record is an error naming the field and both values."""
        record = dict(
            next(iter(reg.query_dimension_records("detector", data_id={"detector": 2}))).values
        )
        record["band"] = 9
        with pytest.raises(RecordConflictError, match=r"band: existing 2 != given 9"):
            reg.sync_dimension_records("detector", [record])

    def test_record_validation(self, reg: Registry) -> None:
        """Unknown fields, bad types and dangling references are rejected."""
        with pytest.raises(DimensionError, match="colour"):
            reg.insert_dimension_records(
                "detector", [{"instrument": INSTR, "id": 8, "colour": "red"}]
            )
        with pytest.raises(DimensionError, match="band"):
            reg.insert_dimension_records(
                "detector", [{"instrument": INSTR, "id": 8, "band": "two"}]
            )
        with pytest.raises(DataIdError, match="id"):
            reg.insert_dimension_records("detector", [{"instrument": INSTR, "band": 1}])
        with pytest.raises(DataIdValueError, match="Euclid"):
            reg.insert_dimension_records("detector", [{"instrument": "Euclid", "id": 1}])

    # -- dataset types -----------------------------------------------------------------------
    def test_register_dataset_type_idempotent(self, reg: Registry) -> None:
        """Registering the same definition twice is fine; dimensions are standardised."""
        assert reg.register_dataset_type(RAW) is False
        unsorted = DatasetType(name="flat", dimensions=("detector",), storage_class="X")
        assert reg.register_dataset_type(unsorted) is True
        assert reg.get_dataset_type("flat").dimensions == ("instrument", "detector")
        assert reg.register_dataset_type(unsorted) is False

    def test_one_dimension_name_as_a_string(self, reg: Registry) -> None:
        """A single dimension given as a string is that dimension, not its letters."""
        flat = DatasetType(name="flat", dimensions="detector", storage_class="X")  # type: ignore[arg-type]
        assert reg.register_dataset_type(flat) is True
        assert reg.get_dataset_type("flat").dimensions == ("instrument", "detector")
        assert DatasetType(name="f", dimensions=["detector"], storage_class="X").dimensions == (  # type: ignore[arg-type]
            "detector",
        )
        assert list(reg.query_data_ids("detector", where="detector.band >= 5")) == list(
            reg.query_data_ids(["detector"], where="detector.band >= 5")
        )
        data_id = reg.expand_data_id(instrument=INSTR, detector=2, dimensions="detector")
        assert data_id.to_dict() == {"instrument": INSTR, "detector": 2}

    def test_dataset_type_conflict(self, reg: Registry) -> None:
        """Redefining a name differently is an error."""
        with pytest.raises(DatasetTypeConflictError, match="raw"):
            reg.register_dataset_type(
                DatasetType(name="raw", dimensions=("detector",), storage_class="SpectralImage")
            )
        with pytest.raises(DatasetTypeConflictError):
            reg.register_dataset_type(
                DatasetType(name="raw", dimensions=RAW.dimensions, storage_class="Other")
            )

    def test_dataset_type_invalid(self, reg: Registry) -> None:
        """Unknown dimensions, component names and bad names are rejected."""
        with pytest.raises(DatasetTypeError, match="visit"):
            reg.register_dataset_type(
                DatasetType(name="x", dimensions=("visit",), storage_class="X")
            )
        with pytest.raises(DatasetTypeError, match="component"):
            reg.register_dataset_type(
                DatasetType(name="raw.image", dimensions=RAW.dimensions, storage_class="X")
            )
        with pytest.raises(DatasetTypeError, match="Invalid"):
            reg.register_dataset_type(DatasetType(name="no-dash", dimensions=(), storage_class="X"))

    def test_component_dataset_type(self, reg: Registry) -> None:
        """A component name resolves to the component type of its parent."""
        component = reg.get_dataset_type("raw.image")
        assert component.name == "raw.image"
        assert component.parent_type() == RAW

    def test_missing_dataset_type(self, reg: Registry) -> None:
        """A missing type is an error listing the registered ones."""
        with pytest.raises(MissingDatasetTypeError, match="dark, raw, stack"):
            reg.get_dataset_type("rwa")

    def test_query_and_remove_dataset_types(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Types are listed by glob; a type with datasets cannot be removed."""
        assert [t.name for t in reg.query_dataset_types("*a*")] == ["dark", "raw", "stack"]
        assert [t.name for t in reg.query_dataset_types("r*")] == ["raw"]
        with pytest.raises(DatasetTypeError, match="48 dataset"):
            reg.remove_dataset_type("raw")
        reg.remove_dataset_type("stack")
        assert [t.name for t in reg.query_dataset_types()] == ["dark", "raw"]

    # -- collections -------------------------------------------------------------------------
    def test_register_collections(self, reg: Registry) -> None:
        """Registration is idempotent, keeps the doc and rejects a type change."""
        assert reg.register_run("run", doc="first") is True
        assert reg.register_run("run") is False
        assert reg.get_collection_doc("run") == "first"
        for kind in CollectionType:
            reg.register_collection(f"c-{kind.value}", kind)
            assert reg.get_collection_type(f"c-{kind.value}") is kind
        with pytest.raises(CollectionTypeError, match="already exists as RUN"):
            reg.register_collection("run", CollectionType.TAGGED)
        with pytest.raises(CollectionError, match="glob"):
            reg.register_run("bad*name")

    def test_missing_collection_lists_similar(self, reg: Registry) -> None:
        """A missing collection's error names similar ones."""
        reg.register_run("raw/run1")
        with pytest.raises(MissingCollectionError, match="raw/run1"):
            reg.get_collection_type("raw/rum1")

    def test_chains(self, reg: Registry) -> None:
        """Chains keep order, nest, and flatten recursively without duplicates."""
        for name in ("a", "b", "c"):
            reg.register_run(name)
        reg.register_collection("inner", CollectionType.CHAINED)
        reg.register_collection("outer", CollectionType.CHAINED)
        reg.set_collection_chain("inner", ["c", "a"])
        reg.set_collection_chain("outer", ["b", "inner", "a"])
        assert reg.get_collection_chain("outer") == ("b", "inner", "a")
        assert reg.query_collections("outer", flatten_chains=True, include_chains=False) == [
            "b",
            "c",
            "a",
        ]
        assert reg.query_collections("outer", flatten_chains=True) == [
            "outer",
            "b",
            "inner",
            "c",
            "a",
        ]
        reg.register_collection("flat", CollectionType.CHAINED)
        reg.set_collection_chain("flat", ["outer"], flatten=True)
        assert reg.get_collection_chain("flat") == ("b", "c", "a")
        with pytest.raises(CollectionTypeError):
            reg.get_collection_chain("a")
        assert reg.get_collection_parent_chains("a") == {"inner", "outer", "flat"}
        assert reg.get_collection_parent_chains("c") == {"inner", "flat"}
        assert reg.get_collection_parent_chains("inner") == {"outer"}
        assert reg.get_collection_parent_chains("flat") == set()
        with pytest.raises(MissingCollectionError):
            reg.get_collection_parent_chains("nope")

    def test_chain_cycles_rejected(self, reg: Registry) -> None:
        """A chain that would contain itself, directly or indirectly, is rejected."""
        reg.register_run("a")
        for name in ("x", "y"):
            reg.register_collection(name, CollectionType.CHAINED)
        reg.set_collection_chain("x", ["a", "y"])
        with pytest.raises(CollectionCycleError, match="cycle"):
            reg.set_collection_chain("y", ["x"])
        with pytest.raises(CollectionCycleError):
            reg.set_collection_chain("x", ["x"])
        assert reg.get_collection_chain("x") == ("a", "y")

    def test_query_collections(self, reg: Registry) -> None:
        """Collections are matched by glob and type."""
        reg.register_run("raw/run1")
        reg.register_run("raw/run2")
        reg.register_collection("calib/dark", CollectionType.CALIBRATION)
        reg.register_collection("best", CollectionType.TAGGED)
        assert reg.query_collections("raw/*") == ["raw/run1", "raw/run2"]
        assert reg.query_collections(
            collection_types=[CollectionType.CALIBRATION, CollectionType.TAGGED]
        ) == [
            "best",
            "calib/dark",
        ]
        assert reg.query_collections("nothing*") == []

    def test_remove_collection_rules(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Non-empty runs and chain children cannot be removed with remove_collection."""
        with pytest.raises(CollectionError, match="remove_run"):
            reg.remove_collection("raw/run1")
        reg.register_collection("tag", CollectionType.TAGGED)
        reg.associate("tag", raws[:2])
        reg.register_collection("chain", CollectionType.CHAINED)
        reg.set_collection_chain("chain", ["tag"])
        with pytest.raises(CollectionError, match="chain"):
            reg.remove_collection("tag")
        reg.remove_collection("chain")
        reg.remove_collection("tag")
        assert reg.query_collections() == ["raw/run1"]
        reg.register_run("empty")
        reg.remove_collection("empty")

    # -- datasets ----------------------------------------------------------------------------
    def test_insert_datasets(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Inserted refs carry the type, the data ID of its dimensions and the run."""
        assert len(raws) == 48
        assert len({r.id for r in raws}) == 48
        ref = raws[7]
        assert ref.dataset_type == RAW
        assert ref.run == "raw/run1"
        assert ref.data_id == DataId({"instrument": INSTR, "exposure": 2, "detector": 2})
        assert reg.get_dataset(ref.id) == ref
        with pytest.raises(DatasetNotFoundError):
            reg.get_dataset(uuid.uuid4())

    def test_deterministic_ids(self, reg: Registry) -> None:
        """Deterministic ids are the UUID5s DatasetRef.make computes."""
        reg.register_run("det")
        refs = reg.insert_datasets(
            "dark", [{"instrument": INSTR, "detector": 3}], "det", id_mode="deterministic"
        )
        expected = DatasetRef.make(
            reg.get_dataset_type("dark"), DataId({"instrument": INSTR, "detector": 3}), "det"
        )
        assert refs[0].id == expected.id
        assert refs[0].id.version == 5

    def test_duplicate_dataset_rejected(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """A second dataset for the same (type, data ID, run) is an error naming it."""
        with pytest.raises(
            DatasetConflictError, match=r"exposure: 3.*raw/run1|raw/run1.*exposure: 3"
        ):
            reg.insert_datasets("raw", raw_ids(range(3, 4), range(1, 2)), "raw/run1")
        with pytest.raises(DatasetConflictError, match="more than once"):
            reg.insert_datasets("raw", raw_ids(range(1, 2)) * 2, "raw/run1")

    def test_failed_bulk_insert_leaves_nothing(self, reg: Registry) -> None:
        """A conflict at the end of a multi-batch insert leaves no dataset behind."""
        reg.register_run("bulk")
        reg.insert_dimension_records(
            "exposure",
            [
                {"instrument": INSTR, "id": i, "obs_id": f"x{i}", "planning_period": "2025W18_1B"}
                for i in range(100, 1100)
            ],
        )
        reg.insert_datasets("raw", raw_ids(range(1099, 1100), range(6, 7)), "bulk")
        with pytest.raises(DatasetConflictError, match="1099"):
            reg.insert_datasets("raw", raw_ids(range(100, 1100)), "bulk")
        assert len(list(reg.query_datasets("raw", collections="bulk"))) == 1

    def test_import_datasets(self, reg: Registry) -> None:
        """Refs made elsewhere import once; skip_existing makes repeats harmless."""
        reg.register_run("out")
        dark = reg.get_dataset_type("dark")
        refs = [
            DatasetRef.make(dark, DataId({"instrument": INSTR, "detector": d}), "out")
            for d in (1, 2)
        ]
        assert reg.import_datasets(refs) == refs
        with pytest.raises(DatasetConflictError):
            reg.import_datasets(refs[:1])
        more = [*refs, DatasetRef.make(dark, DataId({"instrument": INSTR, "detector": 3}), "out")]
        assert reg.import_datasets(more, skip_existing=True) == more
        clash = DatasetRef(
            id=refs[0].id,
            dataset_type=dark,
            data_id=DataId({"instrument": INSTR, "detector": 4}),
            run="out",
        )
        with pytest.raises(DatasetConflictError, match=str(refs[0].id)):
            reg.import_datasets([clash], skip_existing=True)
        other_id = DatasetRef.make(
            dark, DataId({"instrument": INSTR, "detector": 1}), "out", deterministic=False
        )
        with pytest.raises(DatasetConflictError, match="detector: 1"):
            reg.import_datasets([other_id], skip_existing=True)
        assert len(list(reg.query_datasets("dark", collections="out"))) == 3

    def test_import_standardises_data_ids(self, reg: Registry) -> None:
        """Imported refs come back with data IDs of exactly the type's dimensions, values
        converted and records kept."""
        reg.register_run("out")
        raw = reg.get_dataset_type("raw")
        expanded = reg.expand_data_id(instrument=INSTR, exposure=5, detector=2)
        as_text = DataId({"instrument": INSTR, "exposure": "6", "detector": 2})
        plain = DataId({"instrument": INSTR, "exposure": 7, "detector": 2})
        refs = [DatasetRef.make(raw, d, "out") for d in (expanded, as_text, plain)]
        got = reg.import_datasets(refs)
        assert [r.id for r in got] == [r.id for r in refs]
        assert [dict(r.data_id) for r in got] == [
            {"instrument": INSTR, "exposure": e, "detector": 2} for e in (5, 6, 7)
        ]
        assert got[0].data_id.records is not None
        assert got[2] == refs[2]
        found = reg.find_datasets("raw", [dict(r.data_id) for r in got], collections="out")
        assert found == [reg.get_dataset(r.id) for r in got]

    def test_tagged_collections(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """associate/disassociate work on TAGGED collections only, one dataset per data ID."""
        reg.register_collection("best", CollectionType.TAGGED)
        reg.associate("best", raws[:6])
        reg.associate("best", raws[:6])
        assert {r.id for r in reg.query_datasets("raw", collections="best")} == {
            r.id for r in raws[:6]
        }
        reg.register_run("raw/run2")
        (twin,) = reg.insert_datasets("raw", [raws[0].data_id], "raw/run2")
        with pytest.raises(DatasetConflictError, match="best"):
            reg.associate("best", [twin])
        reg.disassociate("best", raws[:3])
        assert len(list(reg.query_datasets("raw", collections="best"))) == 3
        with pytest.raises(CollectionTypeError, match="TAGGED"):
            reg.associate("raw/run1", raws[:1])
        with pytest.raises(DatasetNotFoundError):
            reg.associate("best", [uuid.uuid4()])

    def test_remove_datasets(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Removing datasets also removes their associations and locations."""
        reg.register_collection("best", CollectionType.TAGGED)
        reg.associate("best", raws[:2])
        reg.insert_locations(
            [DatasetLocation(dataset_id=raws[0].id, path="a.fits", formatter="fits")]
        )
        reg.remove_datasets(raws[:2])
        assert list(reg.query_datasets("raw", collections="best")) == []
        assert reg.get_locations([raws[0].id]) == {raws[0].id: []}
        assert len(list(reg.query_datasets("raw", collections="raw/run1"))) == 46
        with pytest.raises(DatasetNotFoundError):
            reg.remove_datasets(raws[:1])

    def test_remove_run(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """remove_run deletes the run and its datasets and returns their refs."""
        reg.register_collection("best", CollectionType.TAGGED)
        reg.associate("best", raws[:2])
        removed = reg.remove_run("raw/run1")
        assert {r.id for r in removed} == {r.id for r in raws}
        assert reg.query_collections() == ["best"]
        assert list(reg.query_datasets("raw", collections="best")) == []
        with pytest.raises(MissingCollectionError):
            reg.remove_run("raw/run1")

    def test_transaction_rolls_back_everything(self, reg: Registry) -> None:
        """An exception inside transaction() undoes every call made in it."""

        def fail_half_way() -> None:
            with reg.transaction():
                reg.register_run("tx")
                reg.insert_datasets("raw", raw_ids(range(1, 2)), "tx")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            fail_half_way()
        assert reg.query_collections() == []
        reg.register_run("tx")
        with reg.transaction():
            reg.insert_datasets("raw", raw_ids(range(1, 2)), "tx")
            with pytest.raises(DatasetConflictError):
                reg.insert_datasets("raw", raw_ids(range(1, 3)), "tx")
            reg.insert_datasets("raw", raw_ids(range(2, 3)), "tx")
        assert len(list(reg.query_datasets("raw", collections="tx"))) == 12

    # -- calibrations ------------------------------------------------------------------------
    @pytest.fixture
    def darks(self, reg: Registry) -> tuple[list[DatasetRef], list[DatasetRef]]:
        """Two generations of darks certified before and from exposure 5."""
        reg.register_run("dark/a")
        reg.register_run("dark/b")
        ids = [{"instrument": INSTR, "detector": d} for d in range(1, 7)]
        a = reg.insert_datasets("dark", ids, "dark/a")
        b = reg.insert_datasets("dark", ids, "dark/b")
        reg.register_collection("calib", CollectionType.CALIBRATION)
        switch = exposure_timespan(5).begin
        reg.certify("calib", a, Timespan(None, switch))
        reg.certify("calib", b, Timespan(switch, None))
        return a, b

    def test_find_calibration_by_time(
        self, reg: Registry, darks: tuple[list[DatasetRef], list[DatasetRef]]
    ) -> None:
        """The dark whose validity contains the exposure's time is found."""
        a, b = darks
        early = reg.find_dataset(
            "dark", instrument=INSTR, exposure=2, detector=3, collections="calib"
        )
        late = reg.find_dataset(
            "dark", {"instrument": INSTR, "exposure": 7, "detector": 3}, collections=["calib"]
        )
        assert early == a[2]
        assert late == b[2]
        at = reg.find_dataset(
            "dark", instrument=INSTR, detector=3, collections="calib", timespan=exposure_timespan(6)
        )
        assert at == b[2]
        with pytest.raises(QueryError, match="timespan"):
            reg.find_dataset("dark", instrument=INSTR, detector=3, collections="calib")

    def test_certify_overlap_rejected(
        self, reg: Registry, darks: tuple[list[DatasetRef], list[DatasetRef]]
    ) -> None:
        """Overlapping validity for the same type and data ID is rejected naming both ranges."""
        a, _ = darks
        reg.register_run("dark/c")
        c = reg.insert_datasets(
            "dark", [{"instrument": INSTR, "detector": d} for d in (1, 2)], "dark/c"
        )
        span = Timespan(T0 - 60 * MINUTE, T0)
        with pytest.raises(CalibrationConflictError, match=r"2025-05-01T00:40") as info:
            reg.certify("calib", c, span)
        assert "+inf" in str(info.value) or "-inf" in str(info.value)
        assert (
            reg.find_dataset(
                "dark", instrument=INSTR, detector=1, collections="calib", timespan=span
            )
            == a[0]
        )
        with pytest.raises(CollectionTypeError, match="CALIBRATION"):
            reg.certify("dark/c", c, span)
        reg.register_collection("calib2", CollectionType.CALIBRATION)
        reg.register_run("r")
        stacks = reg.insert_datasets("stack", [{"instrument": INSTR, "detector": 1}], "r")
        with pytest.raises(DatasetTypeError, match="calibration"):
            reg.certify("calib2", stacks, span)

    def test_dataset_without_dimensions_conflict(self, reg: Registry) -> None:
        """A dataset type without dimensions holds one dataset per run; a second is a clear
        conflict (the message named no data ID and failed with an IndexError)."""
        reg.register_dataset_type(DatasetType(name="cfg", dimensions=(), storage_class="X"))
        reg.register_run("r")
        (first,) = reg.insert_datasets("cfg", [{}], "r")
        with pytest.raises(DatasetConflictError, match=r"'cfg' already exist in run 'r'"):
            reg.insert_datasets("cfg", [{}], "r")
        assert reg.find_dataset("cfg", {}, collections="r") == first

    def test_where_on_a_dimension_some_types_lack(
        self, reg: Registry, raws: list[DatasetRef]
    ) -> None:
        """With every type (or a pattern), a type without a dimension the expression names
        cannot match and is left out; named, or when no type has it, it is an error naming
        the type."""
        reg.register_dataset_type(DatasetType(name="cfg", dimensions=(), storage_class="X"))
        reg.insert_datasets("cfg", [{}], "raw/run1")
        where = "detector = 3 AND exposure = 2"
        found = list(reg.query_datasets(..., collections="raw/run1", where=where))
        assert [(r.dataset_type.name, r.data_id["detector"]) for r in found] == [("raw", 3)]
        assert reg.count_datasets(..., collections="raw/run1", where=where) == 1
        assert len(list(reg.query_datasets(["r*", "c*"], collections="raw/run1", where=where))) == 1
        with pytest.raises(DimensionNotInQueryError, match=r"'cfg' \(dimensions: none\)"):
            reg.query_datasets("cfg", collections="raw/run1", where=where)
        with pytest.raises(DimensionNotInQueryError, match="'cfg'"):
            reg.count_datasets("c*", collections="raw/run1", where=where)
        with pytest.raises(DimensionNotInQueryError, match="'cfg'"):  # named, in a generator
            reg.query_datasets((n for n in ["raw", "cfg"]), collections="raw/run1", where=where)
        assert len(list(reg.query_datasets(..., collections="raw/run1"))) == len(raws) + 1

    def test_query_associations(
        self, reg: Registry, darks: tuple[list[DatasetRef], list[DatasetRef]]
    ) -> None:
        """query_associations lists TAGGED and CALIBRATION memberships, with validities."""
        a, b = darks
        switch = exposure_timespan(5).begin
        reg.register_collection("picked", CollectionType.TAGGED)
        reg.associate("picked", b[:1])
        assert reg.query_associations([a[0], b[0]]) == [
            ("calib", a[0].id, Timespan(None, switch)),
            ("calib", b[0].id, Timespan(switch, None)),
            ("picked", b[0].id, None),
        ]
        assert reg.query_associations([]) == []
        reg.decertify("calib", "dark", Timespan(None, None))
        assert reg.query_associations(a) == []

    def test_decertify(
        self, reg: Registry, darks: tuple[list[DatasetRef], list[DatasetRef]]
    ) -> None:
        """Decertifying splits, truncates or removes validity ranges."""
        a, _b = darks
        hole = Timespan(exposure_timespan(2).begin, exposure_timespan(3).end)
        assert (
            reg.decertify("calib", "dark", hole, data_ids=[{"instrument": INSTR, "detector": 1}])
            == 1
        )

        def find(e: int, d: int = 1) -> DatasetRef | None:
            return reg.find_dataset(
                "dark", instrument=INSTR, exposure=e, detector=d, collections="calib"
            )

        assert find(1) == a[0]
        assert find(2) is None
        assert find(3) is None
        assert find(4) == a[0]
        assert find(2, 2) == a[1]
        assert reg.decertify("calib", "dark", Timespan(exposure_timespan(5).begin, None)) == 6
        assert find(5, 4) is None
        assert find(1, 4) == a[3]

    # -- lookups and queries -------------------------------------------------------------------
    def test_find_dataset_search_order(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """find_dataset honours collection order, through nested chains."""
        reg.register_run("raw/run2")
        newer = reg.insert_datasets("raw", raw_ids(range(1, 2)), "raw/run2")
        data_id = raws[0].data_id
        assert reg.find_dataset("raw", data_id, collections=["raw/run1", "raw/run2"]) == raws[0]
        assert reg.find_dataset("raw", data_id, collections=["raw/run2", "raw/run1"]) == newer[0]
        reg.register_collection("inner", CollectionType.CHAINED)
        reg.register_collection("outer", CollectionType.CHAINED)
        reg.set_collection_chain("inner", ["raw/run2"])
        reg.set_collection_chain("outer", ["inner", "raw/run1"])
        assert reg.find_dataset("raw", data_id, collections="outer") == newer[0]
        other = raws[10].data_id
        assert reg.find_dataset("raw", other, collections="outer") == raws[10]
        assert (
            reg.find_dataset("raw", instrument=INSTR, exposure=1, detector=1, collections="outer")
            == newer[0]
        )
        assert (
            reg.find_dataset(
                "raw", instrument=INSTR, exposure=obs_id(1), detector=1, collections="outer"
            )
            == newer[0]
        )

    def test_find_dataset_tagged_and_missing(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Tagged collections are searched; a miss returns None."""
        reg.register_collection("best", CollectionType.TAGGED)
        reg.associate("best", [raws[5]])
        assert reg.find_dataset("raw", raws[5].data_id, collections=["best"]) == raws[5]
        assert reg.find_dataset("raw", raws[6].data_id, collections=["best"]) is None
        with pytest.raises(MissingCollectionError):
            reg.find_dataset("raw", raws[6].data_id, collections=["nope"])

    def test_find_dataset_with_extra_dimensions(self, reg: Registry) -> None:
        """A dark is found with an exposure-level data ID."""
        reg.register_run("dark/a")
        (dark,) = reg.insert_datasets("dark", [{"instrument": INSTR, "detector": 4}], "dark/a")
        found = reg.find_dataset(
            "dark", {"instrument": INSTR, "exposure": 3, "detector": 4}, collections="dark/a"
        )
        assert found == dark
        assert found.data_id == DataId({"instrument": INSTR, "detector": 4})
        expanded = reg.expand_data_id(instrument=INSTR, exposure=3, detector=4)
        assert reg.find_dataset("dark", expanded, collections="dark/a") == dark

    def test_component_refs(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Finding a component returns a ref of the component type with the parent's id."""
        ref = reg.find_dataset("raw.image", raws[0].data_id, collections="raw/run1")
        assert ref is not None
        assert ref.id == raws[0].id
        assert ref.dataset_type.name == "raw.image"

    # -- batched lookups ---------------------------------------------------------------------
    def test_find_datasets_matches_find_dataset(
        self, reg: Registry, raws: list[DatasetRef]
    ) -> None:
        """find_datasets gives what find_dataset gives for each data ID, misses included."""
        reg.register_run("raw/run2")
        newer = reg.insert_datasets("raw", raw_ids(range(3, 6), range(2, 5)), "raw/run2")
        reg.register_collection("best", CollectionType.TAGGED)
        reg.associate("best", [raws[0], newer[4]])
        reg.register_collection("chain", CollectionType.CHAINED)
        reg.set_collection_chain("chain", ["best", "raw/run2"])
        data_ids: list[Any] = [
            *raw_ids(range(1, 10), range(1, 8)),  # exposure 9 and detector 7 have no records
            {"instrument": INSTR, "exposure": obs_id(4), "detector": 3},
            {"instrument": INSTR, "exposure": "4", "detector": 3},
            reg.expand_data_id(instrument=INSTR, exposure=5, detector=2),
        ]
        for path in (["raw/run1"], ["chain", "raw/run1"], ["raw/run1", "chain"], ["best"]):
            expected = [reg.find_dataset("raw", d, collections=path) for d in data_ids]
            assert reg.find_datasets("raw", data_ids, collections=path) == expected
            assert None in expected
        mixed = reg.find_datasets("raw", data_ids, collections=["chain", "raw/run1"])
        assert {r.run for r in mixed if r is not None} == {"raw/run1", "raw/run2"}
        assert mixed[0] == raws[0]
        component = reg.find_datasets("raw.image", data_ids[:2], collections="raw/run1")
        assert [r.dataset_type.name for r in component if r] == ["raw.image", "raw.image"]
        assert [r.id for r in component if r] == [raws[0].id, raws[1].id]
        assert reg.find_datasets("raw", [], collections="raw/run1") == []

    def test_find_datasets_calibrations(
        self, reg: Registry, darks: tuple[list[DatasetRef], list[DatasetRef]]
    ) -> None:
        """Validity ranges are chosen per timespan (given, or the exposure's) as find_dataset
        does, over ranges with gaps, timespans spanning several ranges, and several
        CALIBRATION collections."""
        reg.register_collection("calib2", CollectionType.CALIBRATION)
        for g in range(4):  # 12-minute ranges every 20 minutes, detectors 1-3 only
            reg.register_run(f"dark/g{g}")
            refs = reg.insert_datasets(
                "dark", [{"instrument": INSTR, "detector": d} for d in (1, 2, 3)], f"dark/g{g}"
            )
            begin = T0 + 20 * g * MINUTE
            reg.certify("calib2", refs, Timespan(begin, begin + 12 * MINUTE))
        rng = random.Random(7)
        data_ids: list[dict[str, Any]] = []
        spans: list[Timespan | None] = []
        for _ in range(300):
            detector = rng.randint(1, 7)
            if rng.random() < 0.3:
                exposure = rng.randint(1, 8)
                data_ids.append({"instrument": INSTR, "exposure": exposure, "detector": detector})
                spans.append(None)
                continue
            begin = T0 + rng.randint(-30, 120) * MINUTE
            data_ids.append({"instrument": INSTR, "detector": detector})
            spans.append(Timespan(begin, begin + rng.choice([0, 1, 5, 15, 40, 90]) * MINUTE))
        paths = {("calib2", "calib"): 6, ("calib",): 2, ("calib2",): 4, ("dark/g3", "calib2"): 1}
        for path, runs in paths.items():
            expected = [
                reg.find_dataset("dark", d, collections=path, timespan=t)
                for d, t in zip(data_ids, spans, strict=True)
            ]
            found = reg.find_datasets("dark", data_ids, collections=path, timespans=spans)
            assert found == expected
            assert None in found
            assert len({r.run for r in found if r is not None}) == runs
        assert reg.find_datasets("dark", [], collections="calib") == []
        by_exposure = raw_ids(range(1, 9))
        expected = [reg.find_dataset("dark", d, collections="calib") for d in by_exposure]
        assert reg.find_datasets("dark", by_exposure, collections="calib") == expected
        assert {r.run for r in expected if r is not None} == {"dark/a", "dark/b"}

    def test_find_datasets_errors(
        self, reg: Registry, darks: tuple[list[DatasetRef], list[DatasetRef]]
    ) -> None:
        """Bad arguments and calibration lookups without a timespan are clear errors."""
        dark_id = {"instrument": INSTR, "detector": 1}
        with pytest.raises(QueryError, match="2 timespans for 1 data ID"):
            reg.find_datasets("dark", [dark_id], collections="calib", timespans=[None, None])
        with pytest.raises(QueryError, match="timespan"):
            reg.find_datasets("dark", [dark_id], collections="calib")
        with pytest.raises(DataIdError, match="detector"):
            reg.find_datasets("dark", [{"instrument": INSTR}], collections="dark/a")
        with pytest.raises(MissingCollectionError):
            reg.find_datasets("dark", [dark_id], collections="nope")
        assert reg.find_datasets("dark", [dark_id], collections="dark/a") == [darks[0][0]]

    def test_count_datasets(
        self,
        reg: Registry,
        raws: list[DatasetRef],
        darks: tuple[list[DatasetRef], list[DatasetRef]],
    ) -> None:
        """count_datasets counts what query_datasets returns, with the same arguments."""
        reg.register_run("raw/run2")
        reg.insert_datasets("raw", raw_ids(range(1, 3)), "raw/run2")
        two_runs = ["raw/run2", "raw/run1"]
        cases: list[dict[str, Any]] = [
            {"dataset_types": "raw", "collections": two_runs},
            {"dataset_types": "raw", "collections": two_runs, "find_first": False},
            {
                "dataset_types": ["raw", "dark"],
                "collections": ["raw/run1", "dark/a"],
                "where": "detector IN (1..3)",
            },
            {
                "dataset_types": ...,
                "collections": ["dark/a", "dark/b", "raw/run1"],
                "data_id": {"detector": 2},
                "find_first": False,
            },
            {"dataset_types": "dark", "collections": "calib", "find_first": False},
            {"dataset_types": "raw", "collections": two_runs, "detector": 3, "exposure": 2},
            {
                "dataset_types": "raw",
                "collections": "raw/run1",
                "where": "exposure.obs_id = :o",
                "bind": {"o": obs_id(3)},
            },
            {
                "dataset_types": "r*",
                "collections": two_runs,
                "where": "planning_period = '2025W18_1A'",
            },
        ]
        for case in cases:
            kwargs = dict(case)
            types = kwargs.pop("dataset_types")
            assert reg.count_datasets(types, **kwargs) == len(
                list(reg.query_datasets(types, **kwargs))
            ), case
        assert reg.count_datasets("raw", collections=two_runs) == 48
        assert reg.count_datasets("raw", collections=two_runs, find_first=False) == 60
        assert reg.count_datasets("raw", collections="raw/run1", where="detector > 6") == 0
        with pytest.raises(QueryError, match="find_first"):
            reg.count_datasets("dark", collections="calib")
        with pytest.raises(UnknownNameError, match="detectr"):
            reg.count_datasets("raw", collections="raw/run1", where="detectr = 1")

    def test_query_datasets_where(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """where expressions on keys, record fields, implied dimensions and time work."""

        def q(where: str, **kw: Any) -> list[tuple[Any, Any]]:
            refs = reg.query_datasets("raw", collections="raw/run1", where=where, **kw)
            return sorted((r.data_id["exposure"], r.data_id["detector"]) for r in refs)

        assert q("detector = 3 AND exposure IN (2..4)") == [(2, 3), (3, 3), (4, 3)]
        assert q(
            "exposure.obs_id = :o AND detector.focal_plane = 'long'", bind={"o": obs_id(6)}
        ) == [(6, 4), (6, 5), (6, 6)]
        assert len(q("exposure.planning_period = '2025W18_1A'")) == 24
        assert q("exposure.timespan OVERLAPS T'2025-05-01T00:21' AND detector < 2") == [(3, 1)]
        assert q("detector IN (ids) AND exposure = 8", bind={"ids": [1, 6]}) == [(8, 1), (8, 6)]
        assert q("", data_id={"exposure": obs_id(2), "detector": 1}) == [(2, 1)]
        assert q("", detector=5, exposure=1) == [(1, 5)]

    def test_query_errors(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Bad expressions fail before iteration with clear errors."""
        with pytest.raises(UnknownNameError, match="detector"):
            reg.query_datasets("raw", collections="raw/run1", where="detectr = 1")
        with pytest.raises(UnknownNameError, match="obs_id"):
            reg.query_datasets("raw", collections="raw/run1", where="exposure.obsid = 'x'")
        with pytest.raises(QuerySyntaxError):
            reg.query_datasets("raw", collections="raw/run1", where="detector = = 1")
        with pytest.raises(UnknownNameError, match="not part of this query"):
            reg.query_datasets("dark", collections="raw/run1", where="exposure = 1")
        injection = list(
            reg.query_datasets(
                "raw",
                collections="raw/run1",
                where="exposure.obs_id = :x",
                bind={"x": "'; DROP TABLE dataset; --"},
            )
        )
        assert injection == []
        assert len(list(reg.query_datasets("raw", collections="raw/run1"))) == 48

    def test_query_values_out_of_range(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Integers beyond 64 bits and times the registry cannot store are clear errors,
        the same on every backend, in expressions, bind values and data IDs."""

        def query(where: str, **kwargs: Any) -> list[DatasetRef]:
            return list(reg.query_datasets("raw", collections="raw/run1", where=where, **kwargs))

        big = "99999999999999999999"
        for where in (f"detector = {big}", f"detector IN (1..{big})", f"exposure = -{big}"):
            with pytest.raises(QueryError, match=rf"integer -?{big} .*64 bits"):
                query(where)
        with pytest.raises(QueryError, match=r"integer \d+ in :d\[1\] .*64 bits"):
            query("detector IN (:d)", bind={"d": [1, 2**64]})
        with pytest.raises(QueryError, match=r"integer .* in :r .*64 bits"):
            query("detector IN (:r)", bind={"r": range(1, 2**64, 2**62)})
        for literal in ("T'9999-12-31'", "T'0001-01-01'", "(T'2025-05-01', T'2300-01-01')"):
            with pytest.raises(QueryError, match=r"outside the range the registry stores"):
                query(f"exposure.timespan OVERLAPS {literal}")
        with pytest.raises(QueryError, match=r":t: The time 2300-01-01.* outside the range"):
            query("exposure.timespan.begin < :t", bind={"t": parse_time("2300-01-01")})
        far = Timespan(T0, parse_time("9999-12-31"))
        with pytest.raises(QueryError, match=r":w: The time 9999-12-31.* outside the range"):
            query("exposure.timespan OVERLAPS :w", bind={"w": far})
        with pytest.raises(DataIdError, match="64 bits"):
            reg.find_dataset("raw", raw_ids(range(1, 2))[0], exposure=2**64, collections="raw/run1")
        with pytest.raises(DataIdError, match="64 bits"):
            reg.find_datasets(
                "raw", [{**raw_ids(range(1, 2))[0], "exposure": -(2**64)}], collections="raw/run1"
            )
        assert query("detector = -9223372036854775808") == []
        assert len(query("exposure.timespan OVERLAPS (T'2000-01-01', T'2100-01-01')")) == 48

    def test_query_datasets_find_first(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """find_first keeps the first dataset per data ID; otherwise all are returned."""
        reg.register_run("raw/run2")
        newer = reg.insert_datasets("raw", raw_ids(range(1, 3)), "raw/run2")
        reg.register_collection("best", CollectionType.TAGGED)
        reg.associate("best", raws[:1])
        path = ["best", "raw/run2", "raw/run1"]
        first = {r.id for r in reg.query_datasets("raw", collections=path)}
        assert len(first) == 48
        assert raws[0].id in first
        assert newer[1].id in first
        assert newer[0].id not in first
        every = list(reg.query_datasets("raw", collections=path, find_first=False))
        assert len(every) == 60
        assert len({r.id for r in every}) == 60
        both = list(reg.query_datasets(..., collections=path, where="detector = 1"))
        assert {r.dataset_type.name for r in both} == {"raw"}
        assert len(both) == 8

    def test_query_datasets_streams(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """query_datasets returns a lazy iterator that can be consumed partially."""
        result = reg.query_datasets(["raw", "dark"], collections="raw/run1")
        assert iter(result) is result
        assert not isinstance(result, list | tuple)
        head = list(itertools.islice(result, 5))
        assert len(head) == 5
        assert all(r.dataset_type.name == "raw" for r in head)
        rest = list(result)
        assert len(head) + len(rest) == 48

    def test_query_data_ids(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Data IDs come from dimension records, restricted by where and by datasets."""
        all_ids = list(reg.query_data_ids(["exposure", "detector"]))
        assert len(all_ids) == 48
        assert all_ids[0] == DataId({"instrument": INSTR, "exposure": 1, "detector": 1})
        assert len(list(reg.query_data_ids(["detector"], where="detector.band >= 5"))) == 2
        reg.register_run("some")
        reg.insert_datasets("raw", raw_ids(range(2, 4), range(1, 3)), "some")
        with_data = list(
            reg.query_data_ids(["exposure", "detector"], datasets="raw", collections="some")
        )
        assert sorted((d["exposure"], d["detector"]) for d in with_data) == [
            (2, 1),
            (2, 2),
            (3, 1),
            (3, 2),
        ]
        exposures = list(
            reg.query_data_ids(
                ["exposure"], datasets=["raw"], collections=["some"], where="exposure > 2"
            )
        )
        assert exposures == [DataId({"instrument": INSTR, "exposure": 3})]
        with pytest.raises(QueryError, match="collections"):
            reg.query_data_ids(["exposure"], datasets="raw")

    def test_query_implied_dimensions(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """An implied dimension (planning_period) asked for or constrained takes the value in
        the implying exposure record; it is never an unrelated factor of the result."""

        def pairs(ids: Any) -> list[tuple[Any, Any]]:
            return [(d["exposure"], d["planning_period"]) for d in ids]

        everything = pairs(reg.query_data_ids(["exposure", "planning_period"]))
        assert everything == [(i, period(i)) for i in range(1, 9)]
        assert len(list(reg.query_data_ids(["planning_period", "detector", "exposure"]))) == 48
        late = reg.query_data_ids(
            ["exposure", "planning_period"], where="planning_period = '2025W18_1B'"
        )
        assert pairs(late) == [(i, "2025W18_1B") for i in range(5, 9)]
        for where in ("planning_period = :p", "exposure.planning_period = :p"):
            early = reg.query_data_ids(["exposure"], where=where, bind={"p": "2025W18_1A"})
            assert [d["exposure"] for d in early] == [1, 2, 3, 4]
            refs = reg.query_datasets(
                "raw",
                collections="raw/run1",
                where=f"{where} AND detector = 2",
                bind={"p": "2025W18_1B"},
            )
            assert sorted(r.data_id["exposure"] for r in refs) == [5, 6, 7, 8]
        timed = reg.query_data_ids(
            ["exposure", "planning_period"],
            where="planning_period.timespan OVERLAPS T'2025-05-01T00:50'",
        )
        assert pairs(timed) == [(i, "2025W18_1B") for i in range(5, 9)]
        reg.register_run("early")
        reg.insert_datasets("raw", raw_ids(range(1, 3), range(1, 2)), "early")
        periods = reg.query_data_ids(["planning_period"], datasets="raw", collections="early")
        assert [d["planning_period"] for d in periods] == ["2025W18_1A"]
        with_data = reg.query_data_ids(
            ["exposure", "planning_period"], datasets="raw", collections="early"
        )
        assert pairs(with_data) == [(1, "2025W18_1A"), (2, "2025W18_1A")]

    # -- locations ---------------------------------------------------------------------------
    def test_locations(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Location records round-trip unchanged, are idempotent and conflicts are errors."""
        loc = DatasetLocation(
            dataset_id=raws[0].id, path="raw/a.fits", formatter="fits", size=10, checksum="abc"
        )
        part = DatasetLocation(
            dataset_id=raws[0].id, path="raw/a.zarr", formatter="zarr", component="image"
        )
        reg.insert_locations([loc, part])
        reg.insert_locations([loc])
        got = reg.get_locations([raws[0].id, raws[1].id])
        assert sorted(got[raws[0].id], key=lambda x: x.path) == [loc, part]
        assert got[raws[1].id] == []
        with pytest.raises(DatasetConflictError, match="remove_locations"):
            reg.insert_locations(
                [DatasetLocation(dataset_id=raws[0].id, path="b.fits", formatter="fits")]
            )
        with pytest.raises(DatasetNotFoundError):
            reg.insert_locations(
                [DatasetLocation(dataset_id=uuid.uuid4(), path="x", formatter="fits")]
            )
        reg.remove_locations([raws[0].id])
        assert reg.get_locations([raws[0].id]) == {raws[0].id: []}

    # -- provenance ----------------------------------------------------------------------------
    def test_quanta(self, reg: Registry, raws: list[DatasetRef]) -> None:
        """Quantum records round-trip, filter, replace on re-insert and go with their run."""
        reg.register_run("out")
        start = T0 + 60 * MINUTE

        def record(detector: int, status: str, **kw: Any) -> QuantumRecord:
            return QuantumRecord(
                id=uuid.uuid5(uuid.NAMESPACE_URL, f"q{detector}"),
                run="out",
                task_label="subtract",
                data_id=DataId({"instrument": INSTR, "exposure": 1, "detector": detector}),
                status=status,
                start=start,
                end=start + MINUTE,
                worker="tcp://127.0.0.1:1",
                **kw,
            )

        ok = record(1, "succeeded", inputs=(raws[0].id,), outputs=(raws[1].id, raws[2].id))
        bad = record(2, "failed", error="ValueError: boom\nTraceback ...", inputs=(raws[1].id,))
        reg.insert_quanta([ok, bad])
        assert sorted(reg.query_quanta(collections="out"), key=lambda r: r.status) == [bad, ok]
        (failed,) = reg.query_quanta(run="out", status="failed")
        assert failed.error_summary == "ValueError: boom"
        assert list(reg.query_quanta(data_id={"detector": 1}, task_label="subtract")) == [ok]
        assert list(reg.query_quanta(data_id={"exposure": obs_id(1), "detector": 2})) == [bad]
        assert list(reg.query_quanta(collections=["raw/run1"])) == []
        rerun = record(2, "succeeded", outputs=(raws[3].id,))
        reg.insert_quanta([rerun])
        assert {r.status for r in reg.query_quanta()} == {"succeeded"}
        with pytest.raises(QueryError, match="status"):
            reg.query_quanta(status="crashed")
        reg.remove_run("out")
        assert list(reg.query_quanta()) == []
        assert list(reg.query_quanta(run="out")) == []


def concurrent_insert_worker(
    url: str, run: str, count: int, batch: int, barrier: Any, errors: Any
) -> None:
    """Insert ``count`` raw datasets into ``run`` in batches (run in a separate process).

    The registry must hold :func:`populate` records with at least ``count / 6`` exposures.
    Failures are put on the ``errors`` queue as text.
    """
    try:
        with Registry.open(url) as registry:
            barrier.wait(timeout=120)
            registry.register_run(run)
            ids = raw_ids(range(1, count // 6 + 2))[:count]
            for start in range(0, count, batch):
                registry.insert_datasets("raw", ids[start : start + batch], run)
                next(iter(registry.query_datasets("raw", collections=run)), None)
    except BaseException as err:  # report everything to the parent process
        import traceback

        errors.put(f"{run}: {err!r}\n{traceback.format_exc()}")
        raise
