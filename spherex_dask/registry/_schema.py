# SPDX-License-Identifier: BSD-3-Clause
"""The registry's tables, generated from a dimension universe.

All tables sit on one :class:`sqlalchemy.MetaData`; this docstring is the schema documentation.

``meta(key, value)``
    Repository facts: ``universe`` (the universe YAML) and ``schema_version``.

One table per dimension element, named after the element (``instrument``, ``detector``, ...)
    Columns: one per required dimension (named after the dimension, closure of ``requires``),
    the element's own key (named after its key field, e.g. ``id``), one nullable column per
    implied dimension (``exposure.planning_period``), the metadata fields, and for temporal
    elements ``timespan_begin``/``timespan_end`` (BIGINT nanoseconds since 1970 UTC, nullable).
    Primary key: required dimensions + key.  Foreign keys to the required and implied
    elements.  The alternate key (``exposure.obs_id``) is unique within the required dimensions.

``dataset_type(id, name, dimensions, storage_class, is_calibration)``
    ``dimensions`` is the comma-joined, universe-sorted dimension names.

``collection(id, name, type, doc)`` and ``collection_chain(parent_id, position, child_id)``
    ``type`` is a :class:`~spherex_dask.types.CollectionType` value; chains are ordered by
    ``position``.  A child cannot be deleted while a chain references it.

``dataset(id UUID, dataset_type_id, run_id, <one column per dimension>)``
    Every dimension of the universe has a NOT NULL column holding the data-ID value; dimensions
    a dataset type does not use hold a constant sentinel (``0`` or ``''``), so the unique index
    ``(run_id, dataset_type_id, <dimensions>)`` enforces "one dataset per (type, data ID, run)"
    with one B-tree and serves ``find_dataset`` as a single index seek.  Values of implied
    dimensions (``planning_period`` of an exposure) are stored too, so queries on them need no
    join.  Rarely constrained dimension columns (``instrument``, which other dimensions require,
    and dimensions that are only implied) come last in the index, so ``detector = 3 AND
    exposure IN (a..b)`` is an index seek rather than a scan.  The sentinel cannot collide
    with real values: a column is either always used or never used by one dataset type.

``dataset_tagged(collection_id, dataset_id, dataset_type_id, <dimensions>)``
    TAGGED membership; the dimension columns are copied from ``dataset`` so that a unique index
    enforces one dataset per (type, data ID) per tagged collection.

``dataset_calibration(id, collection_id, dataset_id, dataset_type_id, <dimensions>,
validity_begin, validity_end)``
    CALIBRATION membership with half-open validity ranges in nanoseconds (unbounded ends use
    :data:`~spherex_dask.types.NS_MIN`/:data:`~spherex_dask.types.NS_MAX`).  Overlaps are checked in
    the certifying transaction (no exclusion constraint), identically on SQLite and PostgreSQL.

``dataset_location(dataset_id, component, path, formatter, size, checksum)``
    Opaque datastore records; ``component`` is ``''`` for the whole dataset.

``quantum(id UUID, run_id, task_label, status, dimensions, <dimensions>, start_ns, end_ns,
worker, error)`` and ``quantum_dataset(quantum_id, role, position, dataset_id)``
    Provenance of executed quanta: the data ID is stored like a dataset's (``dimensions`` names
    the ones it has); ``role`` is ``input`` or ``output``.  Dataset ids are kept without a
    foreign key, so provenance survives the removal of the datasets it mentions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..dimensions import DimensionElement, DimensionField, DimensionUniverse
from ..errors import ConfigError

__all__ = ["SCHEMA_VERSION", "RegistryTables", "build_tables", "sentinel_for"]

SCHEMA_VERSION = "1"

_RESERVED_TABLES = {
    "meta",
    "dataset_type",
    "collection",
    "collection_chain",
    "dataset",
    "dataset_tagged",
    "dataset_calibration",
    "dataset_location",
    "quantum",
    "quantum_dataset",
}
_RESERVED_COLUMNS = {
    "id",
    "dataset_id",
    "dataset_type_id",
    "run_id",
    "collection_id",
    "validity_begin",
    "validity_end",
    "task_label",
    "status",
    "dimensions",
    "start_ns",
    "end_ns",
    "worker",
    "error",
}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class RegistryTables:
    """The tables of one registry, plus the dimension-column layout of the dataset tables."""

    metadata: sa.MetaData
    meta: sa.Table
    elements: dict[str, sa.Table]
    dataset_type: sa.Table
    collection: sa.Table
    collection_chain: sa.Table
    dataset: sa.Table
    dataset_tagged: sa.Table
    dataset_calibration: sa.Table
    dataset_location: sa.Table
    quantum: sa.Table
    quantum_dataset: sa.Table
    #: Dimension columns of the dataset tables, in index order.
    dimension_columns: tuple[str, ...]


def sql_type(field: DimensionField) -> sa.types.TypeEngine[Any]:
    """The SQL type of a universe field."""
    if field.type == "int":
        return sa.BigInteger()
    if field.type == "float":
        return sa.Double()
    if field.type == "bool":
        return sa.Boolean()
    return sa.String(field.length)


def sentinel_for(field: DimensionField) -> int | str:
    """The value stored in a dataset table for a dimension the dataset type does not use."""
    return 0 if field.type == "int" else ""


def _check_names(universe: DimensionUniverse) -> None:
    for element in universe.elements.values():
        if not _IDENTIFIER.match(element.name) or element.name in _RESERVED_TABLES:
            raise ConfigError(
                f"Dimension name {element.name!r} cannot be used: names must be lower-case "
                f"identifiers and not one of {sorted(_RESERVED_TABLES | _RESERVED_COLUMNS)}."
            )
        if element.name in _RESERVED_COLUMNS:
            raise ConfigError(f"Dimension name {element.name!r} is reserved by the registry.")
        columns = [
            *universe.sorted(element.requires),
            element.key.name,
            *element.implies,
            *element.field_names,
        ]
        if element.temporal:
            columns += ["timespan_begin", "timespan_end"]
        duplicates = {c for c in columns if columns.count(c) > 1}
        if duplicates:
            raise ConfigError(
                f"Dimension {element.name!r} has clashing column names {sorted(duplicates)}; "
                "rename the key or metadata fields."
            )


def _element_table(
    metadata: sa.MetaData, universe: DimensionUniverse, element: DimensionElement
) -> sa.Table:
    required = universe.sorted(element.requires)
    columns: list[sa.schema.SchemaItem] = [
        sa.Column(name, sql_type(universe[name].key), nullable=False) for name in required
    ]
    columns.append(sa.Column(element.key.name, sql_type(element.key), nullable=False))
    columns += [sa.Column(name, sql_type(universe[name].key)) for name in element.implies]
    columns += [sa.Column(f.name, sql_type(f)) for f in element.metadata]
    if element.temporal:
        columns += [
            sa.Column("timespan_begin", sa.BigInteger),
            sa.Column("timespan_end", sa.BigInteger),
        ]
    columns.append(sa.PrimaryKeyConstraint(*required, element.key.name))
    for name in (*element.requires, *element.implies):
        target = universe[name]
        target_required = universe.sorted(target.requires)
        if not set(target_required) <= set(required):
            continue
        columns.append(
            sa.ForeignKeyConstraint(
                [*target_required, name],
                [f"{name}.{c}" for c in (*target_required, target.key.name)],
            )
        )
    if element.alternate_key:
        columns.append(
            sa.UniqueConstraint(
                *required, element.alternate_key, name=f"{element.name}_alternate_key"
            )
        )
    return sa.Table(element.name, metadata, *columns)


def dimension_column_order(universe: DimensionUniverse) -> tuple[str, ...]:
    """Dimension columns of the dataset tables, in index order.

    Dimensions other elements require (``instrument``: few values, rarely constrained) come
    last, preceded by dimensions only ever implied; the rest keep universe order.  So a query
    on ``detector = 3 AND exposure > ...`` seeks the unique index instead of scanning it.
    """
    implied = {i for e in universe.elements.values() for i in e.implies}
    governors = {r for e in universe.elements.values() for r in e.requires}
    names = list(universe.elements)
    first = [n for n in names if n not in implied and n not in governors]
    middle = [n for n in names if n in implied and n not in governors]
    return (*first, *middle, *[n for n in names if n in governors])


def _dimension_columns(universe: DimensionUniverse, order: tuple[str, ...]) -> list[sa.Column]:
    columns = []
    for name in order:
        key = universe[name].key
        default = sa.text("0") if key.type == "int" else sa.text("''")
        columns.append(sa.Column(name, sql_type(key), nullable=False, server_default=default))
    return columns


def _collection_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    collection = sa.Table(
        "collection",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("doc", sa.Text, nullable=False, server_default=""),
    )
    chain = sa.Table(
        "collection_chain",
        metadata,
        sa.Column(
            "parent_id", sa.ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.ForeignKey("collection.id"), nullable=False, index=True),
    )
    return collection, chain


def _dataset_tables(
    metadata: sa.MetaData, universe: DimensionUniverse, order: tuple[str, ...]
) -> tuple[sa.Table, sa.Table, sa.Table, sa.Table]:
    dataset = sa.Table(
        "dataset",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("dataset_type_id", sa.ForeignKey("dataset_type.id"), nullable=False),
        sa.Column("run_id", sa.ForeignKey("collection.id"), nullable=False),
        *_dimension_columns(universe, order),
        sa.Index("dataset_unique", "run_id", "dataset_type_id", *order, unique=True),
    )
    ref = sa.ForeignKey("dataset.id", ondelete="CASCADE")
    tagged = sa.Table(
        "dataset_tagged",
        metadata,
        sa.Column("collection_id", sa.ForeignKey("collection.id"), primary_key=True),
        sa.Column("dataset_id", ref, primary_key=True, index=True),
        sa.Column("dataset_type_id", sa.Integer, nullable=False),
        *_dimension_columns(universe, order),
        sa.Index("dataset_tagged_unique", "collection_id", "dataset_type_id", *order, unique=True),
    )
    calibration = sa.Table(
        "dataset_calibration",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("collection_id", sa.ForeignKey("collection.id"), nullable=False),
        sa.Column(
            "dataset_id",
            sa.ForeignKey("dataset.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("dataset_type_id", sa.Integer, nullable=False),
        *_dimension_columns(universe, order),
        sa.Column("validity_begin", sa.BigInteger, nullable=False),
        sa.Column("validity_end", sa.BigInteger, nullable=False),
        sa.Index(
            "dataset_calibration_lookup",
            "collection_id",
            "dataset_type_id",
            *order,
            "validity_begin",
        ),
    )
    location = sa.Table(
        "dataset_location",
        metadata,
        sa.Column("dataset_id", sa.ForeignKey("dataset.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("component", sa.String(64), primary_key=True, server_default=""),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("formatter", sa.String(256), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False, server_default=sa.text("-1")),
        sa.Column("checksum", sa.String(128)),
    )
    return dataset, tagged, calibration, location


def _quantum_tables(
    metadata: sa.MetaData, universe: DimensionUniverse, order: tuple[str, ...]
) -> tuple[sa.Table, sa.Table]:
    quantum = sa.Table(
        "quantum",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("run_id", sa.ForeignKey("collection.id"), nullable=False),
        sa.Column("task_label", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dimensions", sa.String(512), nullable=False),
        *_dimension_columns(universe, order),
        sa.Column("start_ns", sa.BigInteger),
        sa.Column("end_ns", sa.BigInteger),
        sa.Column("worker", sa.String(256), nullable=False, server_default=""),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Index("quantum_lookup", "run_id", "task_label", "status"),
    )
    links = sa.Table(
        "quantum_dataset",
        metadata,
        sa.Column("quantum_id", sa.ForeignKey("quantum.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(8), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Uuid, nullable=False, index=True),
    )
    return quantum, links


def build_tables(universe: DimensionUniverse) -> RegistryTables:
    """Generate the registry schema for ``universe``.

    Raises
    ------
    ConfigError
        If a dimension or field name clashes with the registry's own tables or columns.

    Examples
    --------
    >>> tables = build_tables(DimensionUniverse.default())
    >>> [c.name for c in tables.dataset.columns][3:]
    ['detector', 'exposure', 'planning_period', 'instrument']
    """
    _check_names(universe)
    metadata = sa.MetaData()
    meta = sa.Table(
        "meta",
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    elements = {
        name: _element_table(metadata, universe, element)
        for name, element in universe.elements.items()
    }
    dataset_type = sa.Table(
        "dataset_type",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("dimensions", sa.String(512), nullable=False),
        sa.Column("storage_class", sa.String(128), nullable=False),
        sa.Column("is_calibration", sa.Boolean, nullable=False),
    )
    collection, chain = _collection_tables(metadata)
    order = dimension_column_order(universe)
    dataset, tagged, calibration, location = _dataset_tables(metadata, universe, order)
    quantum, quantum_dataset = _quantum_tables(metadata, universe, order)
    return RegistryTables(
        metadata=metadata,
        meta=meta,
        elements=elements,
        dataset_type=dataset_type,
        collection=collection,
        collection_chain=chain,
        dataset=dataset,
        dataset_tagged=tagged,
        dataset_calibration=calibration,
        dataset_location=location,
        quantum=quantum,
        quantum_dataset=quantum_dataset,
        dimension_columns=order,
    )
