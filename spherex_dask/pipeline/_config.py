# SPDX-License-Identifier: BSD-3-Clause
"""Task configuration: pydantic models with defaults in code, overrides from YAML or the CLI.

Each task's ``ConfigClass`` gets a generated ``connections`` sub-model whose fields are the
task's connection attributes, defaulting to the declared dataset type names.  Unknown fields are
errors that list the valid ones.  Overrides are nested mappings; dotted keys
(``connections.raw``) are accepted and expanded, and a string ``parameters.NAME`` refers to a
pipeline parameter.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..errors import PipelineDefinitionError

if TYPE_CHECKING:
    from ._connections import BaseConnection

__all__ = [
    "ConnectionsConfig",
    "PipelineTaskConfig",
    "coerce_override",
    "config_field_paths",
    "expand_dotted",
    "make_config_class",
    "merge_overrides",
    "parse_override",
    "resolve_parameters",
    "validate_config",
]

PARAMETER_PREFIX = "parameters."


class ConnectionsConfig(BaseModel):
    """Base of the generated ``connections`` sub-models (one ``str`` field per connection)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PipelineTaskConfig(BaseModel):
    """Base class of task configs: subclass it, add fields with defaults.

    Examples
    --------
    >>> class MyConfig(PipelineTaskConfig):
    ...     scale: float = 1.0
    >>> MyConfig(scale="2").scale
    2.0
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    connections: ConnectionsConfig = Field(default_factory=ConnectionsConfig)


def make_config_class(
    task_cls: type, base: type[PipelineTaskConfig], connections: Mapping[str, BaseConnection]
) -> type[PipelineTaskConfig]:
    """Subclass ``base`` with a ``connections`` sub-model generated from ``connections``.

    The classes get qualified names under the task class (``Task.ConfigClass`` and
    ``Task.ConfigClass.Connections``) so their instances pickle by reference.
    """
    fields: dict[str, Any] = {
        attr: (str, Field(default=conn.name, description=conn.doc))
        for attr, conn in connections.items()
    }
    conn_model = create_model(
        f"{task_cls.__name__}Connections",
        __base__=ConnectionsConfig,
        __module__=task_cls.__module__,
        **fields,
    )
    config_cls: type[PipelineTaskConfig] = create_model(
        base.__name__,
        __base__=base,
        __module__=task_cls.__module__,
        __doc__=_generated_doc(task_cls, base),
        connections=(conn_model, Field(default_factory=conn_model)),
    )
    config_cls.__qualname__ = f"{task_cls.__qualname__}.ConfigClass"
    conn_model.__qualname__ = f"{config_cls.__qualname__}.Connections"
    type.__setattr__(config_cls, "Connections", conn_model)
    return config_cls


def _generated_doc(task_cls: type, base: type) -> str:
    # Keep the author's text, but not its examples: doctest would run them again here.
    doc = base.__doc__ or ""
    if ">>>" in doc or not doc:
        return f"{base.__name__} with the connection names of {task_cls.__qualname__}."
    return doc


def config_field_paths(config_cls: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of every settable field, nested models expanded.

    Examples
    --------
    >>> class C(PipelineTaskConfig):
    ...     scale: float = 1.0
    >>> config_field_paths(C)
    ['connections', 'scale']
    """
    paths: list[str] = []
    for name, info in config_cls.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = config_field_paths(annotation, f"{prefix}{name}.")
            paths.extend(nested or [f"{prefix}{name}"])
        else:
            paths.append(f"{prefix}{name}")
    return sorted(paths)


def _describe_error(err: ValidationError, config_cls: type[BaseModel]) -> str:
    lines = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(config)"
        if item["type"] == "extra_forbidden":
            lines.append(
                f"unknown config field {where!r}; valid fields: "
                f"{', '.join(config_field_paths(config_cls))}"
            )
        else:
            lines.append(f"field {where!r}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


def validate_config(
    config_cls: type[PipelineTaskConfig], values: Mapping[str, Any], *, context: str
) -> PipelineTaskConfig:
    """Build a config from nested override values.

    Parameters
    ----------
    config_cls
        The task's ``ConfigClass``.
    values
        Nested overrides (dotted keys already expanded).
    context
        Where the values come from, for error messages (file, task label).

    Raises
    ------
    PipelineDefinitionError
        Naming the context, the field, and listing the valid fields for an unknown one.
    """
    try:
        return config_cls.model_validate(dict(values))
    except ValidationError as err:
        raise PipelineDefinitionError(
            f"{context}: invalid config: {_describe_error(err, config_cls)}."
        ) from None


def expand_dotted(values: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``{"connections.raw": "x"}`` into ``{"connections": {"raw": "x"}}`` (recursively).

    Examples
    --------
    >>> expand_dotted({"connections.raw": "rawexp", "scale": 2})
    {'connections': {'raw': 'rawexp'}, 'scale': 2}
    """
    result: dict[str, Any] = {}
    for key, value in values.items():
        nested = expand_dotted(value) if isinstance(value, Mapping) else copy.deepcopy(value)
        merge_overrides(result, _nest(str(key).split("."), nested))
    return result


def _nest(parts: list[str], value: Any) -> dict[str, Any]:
    node: Any = value
    for part in reversed(parts):
        node = {part: node}
    return node


def merge_overrides(target: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Merge nested ``new`` into ``target`` in place (later values win) and return it."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge_overrides(target[key], value)
        else:
            target[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else value
    return target


def resolve_parameters(values: Any, parameters: Mapping[str, Any], *, context: str) -> Any:
    """Replace every string ``"parameters.NAME"`` in nested ``values`` by the parameter's value.

    Raises
    ------
    PipelineDefinitionError
        If a referenced parameter is not defined; the message lists the parameters.
    """
    if isinstance(values, Mapping):
        return {k: resolve_parameters(v, parameters, context=context) for k, v in values.items()}
    if isinstance(values, list):
        return [resolve_parameters(v, parameters, context=context) for v in values]
    if isinstance(values, str) and values.startswith(PARAMETER_PREFIX):
        name = values[len(PARAMETER_PREFIX) :]
        if name not in parameters:
            raise PipelineDefinitionError(
                f"{context}: config refers to undefined parameter {name!r}; defined parameters: "
                f"{', '.join(parameters) or '(none)'}."
            )
        return parameters[name]
    return values


def parse_override(text: str) -> tuple[str, str, str]:
    """Split ``label:field=value`` into its three parts.

    Examples
    --------
    >>> parse_override("subtract:connections.raw=rawexp")
    ('subtract', 'connections.raw', 'rawexp')

    Raises
    ------
    PipelineDefinitionError
        If the text is not of the form ``label:field=value``.
    """
    label, sep, rest = text.partition(":")
    field, eq, value = rest.partition("=")
    if not sep or not eq or not label.strip() or not field.strip():
        raise PipelineDefinitionError(
            f"Config override {text!r} is not of the form 'label:field=value' "
            "(e.g. 'subtract:connections.raw=rawexp')."
        )
    return label.strip(), field.strip(), value.strip()


def coerce_override(
    config_cls: type[PipelineTaskConfig],
    base: Mapping[str, Any],
    field: str,
    text: str,
    *,
    context: str,
) -> Any:
    """Convert the text of a CLI override to the value the field takes.

    The text is parsed as YAML (``3``, ``true``, ``[1, 2]``); if the field rejects that value
    but accepts the raw text (a ``str`` field given ``"01"``), the raw text is used.

    Raises
    ------
    PipelineDefinitionError
        If neither form validates; the error names the field and lists the valid fields.
    """
    try:
        parsed = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        parsed = text
    candidates = [parsed] if parsed == text else [parsed, text]
    first_error: PipelineDefinitionError | None = None
    for candidate in candidates:
        values = merge_overrides(copy.deepcopy(dict(base)), expand_dotted({field: candidate}))
        try:
            validate_config(config_cls, values, context=context)
        except PipelineDefinitionError as err:
            first_error = first_error or err
            continue
        return candidate
    assert first_error is not None
    raise first_error
