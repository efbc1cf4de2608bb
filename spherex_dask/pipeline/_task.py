# SPDX-License-Identifier: BSD-3-Clause
"""PipelineTask: declared connections, a typed config and a pure ``run``."""

from __future__ import annotations

import functools
import logging
import string
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ..dimensions import DimensionUniverse
from ..errors import PipelineDefinitionError, PipelineError
from ._config import PipelineTaskConfig, make_config_class, validate_config
from ._connections import BaseConnection, ResolvedConnection

if TYPE_CHECKING:
    from ..types import DataId

__all__ = ["PipelineTask", "resolve_connections"]

logger = logging.getLogger(__name__)

_default_universe = functools.cache(DimensionUniverse.default)

#: Names a connection attribute may not take (they are used by PipelineTask itself).
RESERVED_NAMES = frozenset(
    {"run", "run_quantum", "config", "label", "dimensions", "connections", "ConfigClass"}
)


class PipelineTask:
    """Base class of pipeline tasks.

    Subclasses declare ``dimensions`` (the data ID a quantum runs on), their connections as
    class attributes (:class:`Input`, :class:`PrerequisiteInput`, :class:`Output`), a
    ``ConfigClass`` deriving from :class:`PipelineTaskConfig`, and implement :meth:`run`.
    ``run`` is pure: it receives in-memory or lazy (dask-backed) xarray objects keyed by
    connection attribute and returns a dict keyed by output connection attribute.  It never
    does I/O and never sees the registry.

    Parameters
    ----------
    config
        A ``ConfigClass`` instance, a mapping of overrides, or ``None`` for the defaults.
    label
        The task's label in its pipeline (defaults to the class name).

    Raises
    ------
    PipelineDefinitionError
        If the config is invalid or a connection name template cannot be filled.
    """

    dimensions: ClassVar[tuple[str, ...]] = ()
    ConfigClass: ClassVar[type[PipelineTaskConfig]] = PipelineTaskConfig
    connection_declarations: ClassVar[Mapping[str, BaseConnection]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared: dict[str, BaseConnection] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, BaseConnection):
                    declared[attr] = value
        for attr in declared:
            if (
                attr in RESERVED_NAMES
                or attr.startswith(("_", "model_"))
                or hasattr(BaseModel, attr)
            ):
                raise PipelineDefinitionError(
                    f"{cls.__qualname__}: connection attribute {attr!r} is reserved; rename it "
                    f"(reserved: {', '.join(sorted(RESERVED_NAMES))}, names starting with '_' or "
                    "'model_', and attributes of pydantic's BaseModel such as 'json')."
                )
        if isinstance(cls.dimensions, str) or not all(isinstance(d, str) for d in cls.dimensions):
            raise PipelineDefinitionError(
                f"{cls.__qualname__}.dimensions must be a tuple of dimension names, "
                f"got {cls.dimensions!r}."
            )
        cls.dimensions = tuple(cls.dimensions)
        base = cls.ConfigClass
        if not (isinstance(base, type) and issubclass(base, PipelineTaskConfig)):
            raise PipelineDefinitionError(
                f"{cls.__qualname__}.ConfigClass must subclass PipelineTaskConfig, got {base!r}."
            )
        cls.connection_declarations = declared
        cls.ConfigClass = make_config_class(cls, base, declared)

    def __init__(
        self,
        *,
        config: PipelineTaskConfig | Mapping[str, Any] | None = None,
        label: str | None = None,
    ) -> None:
        self.label = label or type(self).__name__
        context = f"task {self.label!r} ({type(self).__qualname__})"
        if config is None:
            config = self.ConfigClass()
        elif isinstance(config, Mapping):
            config = validate_config(self.ConfigClass, config, context=context)
        elif not isinstance(config, self.ConfigClass):
            config = validate_config(self.ConfigClass, config.model_dump(), context=context)
        self.config: PipelineTaskConfig = config
        self.connections: dict[str, ResolvedConnection] = resolve_connections(
            type(self), config, _default_universe(), context=context
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_task, (type(self), self.config.model_dump(), self.label))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r})"

    def run(self, **inputs: Any) -> dict[str, Any]:
        """Compute the outputs from the inputs (override in subclasses)."""
        raise NotImplementedError(f"{type(self).__qualname__} does not implement run().")

    def _connections_of(self, *kinds: str) -> dict[str, ResolvedConnection]:
        return {a: c for a, c in self.connections.items() if c.kind in kinds}

    def run_quantum(
        self, inputs: Mapping[str, Any], *, data_id: DataId | None = None
    ) -> dict[str, Any]:
        """Check ``inputs`` against the connections, call :meth:`run`, check its outputs.

        A :class:`PipelineError` raised by ``run`` is restated with the task label and data ID
        in its message; other errors get them as a note.

        Raises
        ------
        PipelineError
            If inputs are missing or unexpected, or ``run`` returns the wrong outputs.
        """
        where = (
            f"task {self.label!r} on {data_id!r}" if data_id is not None else f"task {self.label!r}"
        )
        expected = self._connections_of("input", "prerequisite")
        _check_names("inputs given to", where, set(inputs), set(expected))
        for attr, conn in expected.items():
            if conn.multiple and not isinstance(inputs[attr], Sequence):
                raise PipelineError(
                    f"{where}: input {attr!r} is a fan-in (multiple=True) and needs a sequence, "
                    f"got {type(inputs[attr]).__name__}."
                )
        try:
            outputs = self.run(**inputs)
        except PipelineError as err:
            if type(err) is PipelineError:  # restate with the data ID in the message itself
                raise PipelineError(f"{where}: {err}") from err
            err.add_note(f"while running {where}")
            raise
        except Exception as err:
            err.add_note(f"while running {where}")
            raise
        if not isinstance(outputs, Mapping):
            raise PipelineError(f"{where}: run() must return a dict, got {type(outputs).__name__}.")
        _check_names(
            "outputs returned by", where, set(outputs), set(self._connections_of("output"))
        )
        return dict(outputs)


def _check_names(what: str, where: str, got: set[str], expected: set[str]) -> None:
    missing, extra = sorted(expected - got), sorted(got - expected)
    if missing or extra:
        raise PipelineError(
            f"The {what} {where} do not match its connections: missing {missing or 'none'}, "
            f"unexpected {extra or 'none'} (expected {sorted(expected)})."
        )


def _rebuild_task(cls: type[PipelineTask], config: dict[str, Any], label: str) -> PipelineTask:
    return cls(config=config, label=label)


def _template_values(config: PipelineTaskConfig) -> dict[str, Any]:
    return {
        name: value
        for name, value in config
        if isinstance(value, str | int | float | bool) and name != "connections"
    }


def resolve_connections(
    task_cls: type[PipelineTask],
    config: PipelineTaskConfig,
    universe: DimensionUniverse,
    *,
    context: str,
) -> dict[str, ResolvedConnection]:
    """The task's connections with dataset type names taken from ``config.connections``.

    ``{field}`` placeholders in a name are filled from the config's top-level scalar fields.

    Raises
    ------
    PipelineDefinitionError
        If a placeholder names no such field, the result is not a valid dataset type name, or
        a dimension is unknown to ``universe``.
    """
    values = _template_values(config)
    resolved: dict[str, ResolvedConnection] = {}
    for attr, conn in task_cls.connection_declarations.items():
        template = getattr(config.connections, attr)
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as err:
            raise PipelineDefinitionError(
                f"{context}: connection {attr!r} name {template!r} is not a valid template: {err}."
            ) from None
        unknown = [f for f in fields if f not in values]
        if unknown:
            raise PipelineDefinitionError(
                f"{context}: connection {attr!r} name {template!r} uses unknown field(s) "
                f"{', '.join(unknown)}; fields usable in names: {', '.join(values) or '(none)'}."
            )
        try:
            resolved[attr] = conn.resolve(attr, template.format_map(values), universe)
        except PipelineDefinitionError as err:
            raise PipelineDefinitionError(f"{context}: {err}") from None
    return resolved
