# SPDX-License-Identifier: BSD-3-Clause
"""The dimension universe: which dimensions exist, their keys, metadata and relations.

A universe is data, loaded from YAML (the SPHEREx default ships as ``spherex.yaml``).
The registry stores the YAML text in its database so that a repository describes itself.
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .._yaml import fast_safe_load
from ..errors import ConfigError, DataIdError
from ..types import INT64_MAX, INT64_MIN, DataId, DataIdValue

__all__ = ["DimensionElement", "DimensionField", "DimensionUniverse"]

_FIELD_TYPES = {"int", "float", "string", "bool"}


@dataclass(frozen=True, slots=True, kw_only=True)
class DimensionField:
    """A key or metadata column of a dimension element."""

    name: str
    type: str
    length: int = 64
    doc: str = ""

    @property
    def python_type(self) -> builtins.type:
        """The Python type values of this field have."""
        return {"int": int, "float": float, "string": str, "bool": bool}[self.type]


@dataclass(frozen=True, slots=True, kw_only=True)
class DimensionElement:
    """One dimension: its key, the dimensions it requires and implies, and its metadata."""

    name: str
    key: DimensionField
    requires: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()
    metadata: tuple[DimensionField, ...] = ()
    temporal: bool = False
    alternate_key: str | None = None
    doc: str = ""

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the metadata fields."""
        return tuple(f.name for f in self.metadata)

    def get_field(self, name: str) -> DimensionField:
        """The metadata field called ``name``.

        Raises
        ------
        KeyError
            If there is no such field; the message lists the fields that exist.
        """
        for f in self.metadata:
            if f.name == name:
                return f
        raise KeyError(
            f"Dimension {self.name!r} has no field {name!r}; fields are: "
            f"{', '.join(self.field_names + ('timespan',) * self.temporal) or '(none)'}."
        )


def _parse_field(raw: Any, where: str) -> DimensionField:
    if not isinstance(raw, Mapping) or "name" not in raw or "type" not in raw:
        raise ConfigError(f"{where}: a field needs 'name' and 'type', got {raw!r}.")
    if raw["type"] not in _FIELD_TYPES:
        raise ConfigError(
            f"{where}: field {raw['name']!r} has type {raw['type']!r}; "
            f"expected one of {sorted(_FIELD_TYPES)}."
        )
    unknown = set(raw) - {"name", "type", "length", "doc"}
    if unknown:
        raise ConfigError(f"{where}: field {raw['name']!r} has unknown keys {sorted(unknown)}.")
    return DimensionField(
        name=str(raw["name"]),
        type=str(raw["type"]),
        length=int(raw.get("length", 64)),
        doc=str(raw.get("doc", "")),
    )


class DimensionUniverse:
    """The set of dimension elements a repository uses.

    Parameters
    ----------
    config
        The parsed YAML mapping (``name``, ``version``, ``elements``).

    Examples
    --------
    >>> u = DimensionUniverse.default()
    >>> u.sorted(["detector", "exposure"])
    ('instrument', 'detector', 'exposure')
    >>> u.standardize_data_id({"instrument": "SPHEREx", "detector": 3})
    {detector: 3, instrument: 'SPHEREx'}
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)
        self.name = str(config.get("name", "custom"))
        self.version = int(config.get("version", 1))
        raw_elements = config.get("elements")
        if not isinstance(raw_elements, Mapping) or not raw_elements:
            raise ConfigError("A dimension universe needs a non-empty 'elements' mapping.")
        self.elements: dict[str, DimensionElement] = {}
        for name, raw in raw_elements.items():
            self.elements[name] = self._parse_element(str(name), raw)

    def _parse_element(self, name: str, raw: Any) -> DimensionElement:
        where = f"dimension {name!r}"
        if not isinstance(raw, Mapping) or "key" not in raw:
            raise ConfigError(f"{where}: needs a 'key' field definition.")
        unknown = set(raw) - {
            "key",
            "requires",
            "implies",
            "metadata",
            "temporal",
            "alternate_key",
            "doc",
        }
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}.")
        requires = tuple(raw.get("requires", ()))
        implies = tuple(raw.get("implies", ()))
        for dep in requires + implies:
            if dep not in self.elements:
                raise ConfigError(
                    f"{where}: depends on {dep!r}, which is not defined before it "
                    f"(defined so far: {', '.join(self.elements) or 'none'})."
                )
        metadata = tuple(_parse_field(f, where) for f in raw.get("metadata", ()))
        alternate = raw.get("alternate_key")
        if alternate is not None and alternate not in {f.name for f in metadata}:
            raise ConfigError(f"{where}: alternate_key {alternate!r} is not a metadata field.")
        return DimensionElement(
            name=name,
            key=_parse_field(raw["key"], where),
            requires=requires,
            implies=implies,
            metadata=metadata,
            temporal=bool(raw.get("temporal", False)),
            alternate_key=alternate,
            doc=str(raw.get("doc", "")),
        )

    # -- construction and serialisation ------------------------------------------------
    @classmethod
    def from_yaml(cls, source: str | Path) -> DimensionUniverse:
        """Load a universe from a YAML file path or YAML text.

        Raises
        ------
        ConfigError
            If the file is missing or the content is not a valid universe.
        """
        if isinstance(source, Path) or ("\n" not in source and source.endswith((".yaml", ".yml"))):
            path = Path(source)
            if not path.exists():
                raise ConfigError(f"Dimension config file {str(path)!r} does not exist.")
            source = path.read_text()
        try:
            config = fast_safe_load(source)  # read by every command that opens a repository
        except yaml.YAMLError as err:
            raise ConfigError(f"Dimension config is not valid YAML: {err}") from err
        if not isinstance(config, Mapping):
            raise ConfigError("Dimension config must be a YAML mapping.")
        return cls(config)

    @classmethod
    def default(cls) -> DimensionUniverse:
        """The SPHEREx universe shipped with the package."""
        text = resources.files(__package__).joinpath("spherex.yaml").read_text()
        return cls.from_yaml(text)

    def to_yaml(self) -> str:
        """Canonical YAML text of this universe (what the registry stores)."""
        # Keep the element order: elements must follow the ones they depend on.
        return yaml.safe_dump(self._config, sort_keys=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DimensionUniverse):
            return NotImplemented
        return self._config == other._config

    def __hash__(self) -> int:
        return hash(yaml.safe_dump(self._config, sort_keys=True))

    def __repr__(self) -> str:
        return f"DimensionUniverse({self.name!r}, version={self.version}, elements={list(self.elements)})"

    def __getitem__(self, name: str) -> DimensionElement:
        try:
            return self.elements[name]
        except KeyError:
            raise DataIdError(
                f"Unknown dimension {name!r}; known dimensions: {', '.join(self.elements)}."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.elements

    def check_known(self, names: Iterable[str], data_id: Mapping[str, Any]) -> None:
        """Raise if one of ``names`` (the dimensions of ``data_id``) is not in this universe.

        Raises
        ------
        DataIdError
            Naming the first unknown dimension, the data ID and the known dimensions.
        """
        for name in names:
            if name not in self.elements:
                raise DataIdError(
                    f"Unknown dimension {name!r} in data ID {dict(data_id)!r}; known "
                    f"dimensions: {', '.join(self.elements)}."
                )

    # -- dimension-set arithmetic -------------------------------------------------------
    def sorted(self, dimensions: Iterable[str]) -> tuple[str, ...]:
        """Expand ``dimensions`` with the ones they require and return them in universe order.

        Raises
        ------
        DataIdError
            If a name is not a dimension of this universe.
        """
        wanted: set[str] = set()
        stack = list(dimensions)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self[name].requires)
        return tuple(n for n in self.elements if n in wanted)

    def implied(self, dimensions: Iterable[str]) -> tuple[str, ...]:
        """The dimensions implied by ``dimensions`` and not already in them (universe order)."""
        dims = set(dimensions)
        extra = {i for d in dims for i in self[d].implies} - dims
        return tuple(n for n in self.elements if n in extra)

    # -- data IDs -------------------------------------------------------------------------
    def coerce_value(self, dimension: str, value: Any) -> DataIdValue:
        """Check and convert one data-ID value to the key type of ``dimension``.

        Integers given as numpy integers or as strings of digits are accepted for integer
        keys; anything else of the wrong type raises :class:`DataIdError`.
        """
        key = self[dimension].key
        if key.type == "int":
            if isinstance(value, bool):
                pass
            elif isinstance(value, numbers.Integral) or (
                isinstance(value, str) and value.strip().lstrip("-").isdigit()
            ):
                number = int(value)
                if not INT64_MIN <= number <= INT64_MAX:
                    raise DataIdError(
                        f"Data ID value {value!r} for {dimension!r} does not fit in 64 bits "
                        f"(the registry's integer keys); check the number of digits."
                    )
                return number
        elif key.type == "string" and isinstance(value, str):
            if len(value) > key.length:
                raise DataIdError(
                    f"Data ID value {value!r} for {dimension!r} is longer than {key.length} characters."
                )
            return value
        raise DataIdError(
            f"Data ID value {value!r} for dimension {dimension!r} has type "
            f"{type(value).__name__}; expected {key.type} ({dimension}.{key.name})."
        )

    def standardize_data_id(
        self,
        data_id: Mapping[str, Any] | None = None,
        *,
        dimensions: Iterable[str] | None = None,
        allow_implied: bool = True,
        **kwargs: Any,
    ) -> DataId:
        """Validate a data ID's names and value types and return a :class:`DataId`.

        Parameters
        ----------
        data_id
            Mapping of dimension name to value; ``kwargs`` are merged in.
        dimensions
            If given, the required dimensions the data ID must identify (their required
            dimensions are added); extra keys that are neither these nor implied by them are
            an error.
        allow_implied
            Keep values of implied dimensions (``planning_period`` for ``exposure``).

        Raises
        ------
        DataIdError
            For an unknown dimension, a missing required key or a value of the wrong type.
        """
        merged = dict(data_id or {}, **kwargs)
        if isinstance(data_id, DataId) and data_id.records and not kwargs:
            records = data_id.records
        else:
            records = None
        self.check_known(merged, merged)
        values = {name: self.coerce_value(name, value) for name, value in merged.items()}
        if dimensions is None:
            required = self.sorted(values)
        else:
            required = self.sorted(dimensions)
        missing = [d for d in required if d not in values]
        if missing:
            raise DataIdError(
                f"Data ID {merged!r} is missing required dimension(s) {', '.join(missing)} "
                f"(needs {', '.join(required)})."
            )
        implied = set(self.implied(required)) if allow_implied else set()
        extra = set(values) - set(required) - implied
        if dimensions is not None and extra:
            raise DataIdError(
                f"Data ID {merged!r} has dimension(s) {', '.join(sorted(extra))} that are not "
                f"part of {', '.join(required)}."
            )
        keep = {k: v for k, v in values.items() if k in set(required) | implied}
        return DataId(keep, records=records)
