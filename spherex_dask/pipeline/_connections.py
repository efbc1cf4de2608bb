# SPDX-License-Identifier: BSD-3-Clause
"""Connections: what a task reads (inputs, prerequisite calibrations) and what it writes.

A connection is declared as a class attribute of a :class:`~spherex_dask.pipeline.PipelineTask`.
The attribute name is the keyword ``run`` receives (or returns); the connection's ``name`` is the
*default* dataset type name, which a task's config may override (``config.connections.<attr>``)
and which may use ``{field}`` placeholders filled from the task's config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, ClassVar

from ..errors import PipelineDefinitionError
from ..types import DatasetType

if TYPE_CHECKING:
    from ..dimensions import DimensionUniverse

__all__ = [
    "BaseConnection",
    "Input",
    "Output",
    "PrerequisiteInput",
    "ResolvedConnection",
    "dimension_closure",
]

#: A dataset type name, optionally with one component (``raw.image``).
DATASET_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass(frozen=True, slots=True)
class BaseConnection:
    """Common part of every connection.

    Parameters
    ----------
    name
        Default dataset type name; may contain ``{field}`` placeholders filled from the
        task config's top-level fields.
    dimensions
        Dimensions of the dataset type.
    storage_class
        Storage class of the dataset type (e.g. ``"SpectralImage"``).
    multiple
        Whether ``run`` receives a sequence of datasets (a fan-in); inputs only.
    minimum
        For a fan-in: the fewest datasets the quantum runs with. Datasets that cannot be had
        (their upstream quantum was skipped) are left out of the quantum, which is skipped
        only when fewer than ``minimum`` remain. Must be 1 for other connections.
    doc
        One line saying what the dataset is for this task.
    """

    name: str
    dimensions: tuple[str, ...]
    storage_class: str
    _: KW_ONLY
    multiple: bool = False
    minimum: int = 1
    doc: str = ""

    kind: ClassVar[str] = "base"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PipelineDefinitionError(
                f"A connection name must be a non-empty string, got {self.name!r}."
            )
        if isinstance(self.dimensions, str) or not isinstance(self.dimensions, Iterable):
            raise PipelineDefinitionError(
                f"Connection {self.name!r}: dimensions must be a sequence of dimension names, "
                f"got {self.dimensions!r}."
            )
        dims = tuple(self.dimensions)
        if not all(isinstance(d, str) for d in dims):
            raise PipelineDefinitionError(
                f"Connection {self.name!r}: dimensions must be strings, got {dims!r}."
            )
        object.__setattr__(self, "dimensions", dims)
        if not isinstance(self.storage_class, str) or not self.storage_class:
            raise PipelineDefinitionError(
                f"Connection {self.name!r}: storage_class must be a non-empty string."
            )
        if self.multiple and self.kind != "input":
            raise PipelineDefinitionError(
                f"Connection {self.name!r}: multiple=True is only allowed on Input (a fan-in), "
                f"not on {type(self).__name__}."
            )
        if isinstance(self.minimum, bool) or not isinstance(self.minimum, int) or self.minimum < 1:
            raise PipelineDefinitionError(
                f"Connection {self.name!r}: minimum must be an integer >= 1, got {self.minimum!r}."
            )
        if self.minimum != 1 and not self.multiple:
            raise PipelineDefinitionError(
                f"Connection {self.name!r}: minimum={self.minimum} needs multiple=True (a fan-in); "
                "a single input is always needed."
            )

    def resolve(self, attribute: str, name: str, universe: DimensionUniverse) -> ResolvedConnection:
        """The connection with its final dataset type name and normalised dimensions.

        Raises
        ------
        PipelineDefinitionError
            If ``name`` is not a valid dataset type name or a dimension is unknown.
        """
        if not DATASET_TYPE_NAME.match(name):
            raise PipelineDefinitionError(
                f"Connection {attribute!r}: {name!r} is not a valid dataset type name "
                "(letters, digits and '_', optionally one '.component')."
            )
        unknown = [d for d in self.dimensions if d not in universe]
        if unknown:
            raise PipelineDefinitionError(
                f"Connection {attribute!r} ({name}): unknown dimension(s) {', '.join(unknown)}; "
                f"known dimensions: {', '.join(universe.elements)}."
            )
        dataset_type = DatasetType(
            name=name,
            dimensions=universe.sorted(self.dimensions),
            storage_class=self.storage_class,
            is_calibration=self.kind == "prerequisite",
        )
        return ResolvedConnection(
            attribute=attribute,
            kind=self.kind,
            dataset_type=dataset_type,
            multiple=self.multiple,
            minimum=self.minimum,
            doc=self.doc,
        )


@dataclass(frozen=True, slots=True)
class Input(BaseConnection):
    """A regular input: must exist in the input collections or be made upstream.

    Examples
    --------
    >>> Input("raw", ("instrument", "exposure", "detector"), "SpectralImage").kind
    'input'
    """

    kind: ClassVar[str] = "input"


@dataclass(frozen=True, slots=True)
class PrerequisiteInput(BaseConnection):
    """A calibration input looked up by validity time; never produced inside a pipeline."""

    kind: ClassVar[str] = "prerequisite"


@dataclass(frozen=True, slots=True)
class Output(BaseConnection):
    """A dataset the task writes."""

    kind: ClassVar[str] = "output"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedConnection:
    """A connection of a configured task: its attribute name and final dataset type."""

    attribute: str
    kind: str
    dataset_type: DatasetType
    multiple: bool = False
    minimum: int = 1
    doc: str = ""

    @property
    def name(self) -> str:
        """The dataset type name."""
        return self.dataset_type.name

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The dataset type's dimensions (universe order, required ones added)."""
        return self.dataset_type.dimensions


def dimension_closure(universe: DimensionUniverse, dimensions: Iterable[str]) -> frozenset[str]:
    """The dimensions, those they require and those they imply (transitively).

    Examples
    --------
    >>> from spherex_dask.dimensions import DimensionUniverse
    >>> sorted(dimension_closure(DimensionUniverse.default(), ["exposure"]))
    ['exposure', 'instrument', 'planning_period']
    """
    result = set(universe.sorted(dimensions))
    while True:
        extra = set(universe.sorted(universe.implied(result))) - result
        if not extra:
            return frozenset(result)
        result |= extra
