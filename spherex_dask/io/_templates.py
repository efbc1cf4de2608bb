# SPDX-License-Identifier: BSD-3-Clause
"""File templates: where in the datastore a dataset's file goes.

A template is a :meth:`str.format` string over these fields:

``{run}``                 the RUN collection (may contain ``/``: ``u/alice/test``)
``{dataset_type}``        the dataset type name
``{id}``                  the dataset UUID
``{data_id}``             every data-ID key, ``detector-3_exposure-1234_instrument-SPHEREx``
``{dim}``                 a data-ID value (``{detector}``, ``{exposure:06d}``), or an implied
                          one found in the attached records (``{planning_period}``)
``{element.field}``       a dimension-record field (``{exposure.obs_id}``)

The extension comes from the formatter. Rendered values are sanitised (anything outside
``A-Z a-z 0-9 _ . + = , @ -`` becomes ``_``), and the rendered path is checked so nothing can
escape the root (no ``..``, no absolute paths, no hidden names, no empty segments). A
template must be unique for the dataset types it serves: it names the run, and every
dimension (or its alternate key, e.g. ``exposure.obs_id``); ``instrument`` may be left out
(a repository usually holds one instrument; the datastore still refuses to overwrite).
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import TemplateError
from ..types import DatasetRef, DatasetType

__all__ = ["DEFAULT_TEMPLATE", "SPHEREX_TEMPLATES", "FileTemplate", "FileTemplates"]

logger = logging.getLogger(__name__)

#: Used for dataset types without a template of their own.
DEFAULT_TEMPLATE = "{run}/{dataset_type}/{dataset_type}_{data_id}"

#: Readable templates for the SPHEREx dataset types (need expanded data IDs).
SPHEREX_TEMPLATES: dict[str, str] = {
    "raw": "{run}/{dataset_type}/{planning_period}/{exposure.obs_id}/{dataset_type}_{exposure.obs_id}_D{detector}",
    "dark": "{run}/{dataset_type}/{dataset_type}_D{detector}",
}

#: Default alternate keys: a field that identifies a dimension as well as its key does.
DEFAULT_ALTERNATE_KEYS: dict[str, tuple[str, ...]] = {"exposure": ("obs_id",)}

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=,@-]")
_SPECIAL = frozenset({"run", "dataset_type", "id", "data_id"})


def _sanitise(value: Any, *, allow_slash: bool = False) -> str:
    """Replace every character that could change the path's meaning with ``_``.

    Examples
    --------
    >>> _sanitise("../etc/passwd")
    '.._etc_passwd'
    >>> _sanitise("u/alice/x y", allow_slash=True)
    'u/alice/x_y'
    """
    text = str(value)
    if allow_slash:
        return "/".join(_UNSAFE.sub("_", part) for part in text.split("/"))
    return _UNSAFE.sub("_", text)


def _check_path(path: str, template: str) -> None:
    for part in path.split("/"):
        if part in ("", ".", "..") or part.startswith("."):
            raise TemplateError(
                f"Template {template!r} rendered {path!r}, whose segment {part!r} is empty, "
                "relative ('.', '..') or hidden; the path must stay inside the datastore root."
            )
    if "\\" in path or "\0" in path or ":" in path:
        raise TemplateError(f"Template {template!r} rendered {path!r}, which has '\\', ':' or NUL.")


@dataclass(frozen=True)
class FileTemplate:
    """One parsed template.

    Examples
    --------
    >>> from spherex_dask.types import DataId, DatasetRef, DatasetType
    >>> dt = DatasetType(name="dark", dimensions=("instrument", "detector"), storage_class="SpectralImage")
    >>> ref = DatasetRef.make(dt, DataId({"instrument": "SPHEREx", "detector": 2}), "darkr")
    >>> FileTemplate("{run}/{dataset_type}/{dataset_type}_D{detector:02d}").format(ref)
    'darkr/dark/dark_D02'
    """

    template: str

    def __post_init__(self) -> None:
        try:
            parsed = list(string.Formatter().parse(self.template))
        except ValueError as err:
            raise TemplateError(
                f"Template {self.template!r} is not a valid format string: {err}"
            ) from err
        for _, name, _, conversion in parsed:
            if name is not None and (
                conversion or name.count(".") > 1 or not name.replace(".", "_").isidentifier()
            ):
                raise TemplateError(
                    f"Template {self.template!r} has field {{{name}}}: fields must be named, "
                    "without '!' conversions or indexing ('{detector}', '{exposure.obs_id}')."
                )
        if self.template.startswith("/") or ".." in self.template.split("/"):
            raise TemplateError(
                f"Template {self.template!r} must be relative and must not contain '..'."
            )

    @property
    def fields(self) -> frozenset[str]:
        """Names of the fields used."""
        return frozenset(n for _, n, _, _ in string.Formatter().parse(self.template) if n)

    def validate(
        self,
        dataset_type: DatasetType,
        *,
        alternate_keys: Mapping[str, Collection[str]] = DEFAULT_ALTERNATE_KEYS,
        optional_dimensions: Collection[str] = ("instrument",),
        needs_dataset_type: bool = True,
    ) -> None:
        """Check the template is unique for ``dataset_type``.

        Raises
        ------
        TemplateError
            If it lacks ``{run}``, ``{dataset_type}`` (when ``needs_dataset_type``) or a
            dimension (or that dimension's alternate key).
        """
        fields = self.fields
        if "id" in fields:
            return
        missing = [] if "run" in fields else ["{run}"]
        if needs_dataset_type and "dataset_type" not in fields:
            missing.append("{dataset_type}")
        if "data_id" not in fields:
            for dim in dataset_type.dimensions:
                keys = {dim, *(f"{dim}.{k}" for k in alternate_keys.get(dim, ()))}
                if dim not in optional_dimensions and not keys & fields:
                    missing.append("{" + " or ".join(sorted(keys)) + "}")
        if missing:
            raise TemplateError(
                f"Template {self.template!r} cannot give dataset type {dataset_type.name!r} "
                f"(dimensions {', '.join(dataset_type.dimensions)}) unique paths: it lacks "
                f"{', '.join(missing)}. Add them, or use {{id}} or {{data_id}}."
            )

    def format(self, ref: DatasetRef) -> str:
        """The relative path (without extension) of ``ref``.

        Raises
        ------
        TemplateError
            If a field has no value for this dataset (the message lists what is available),
            or the rendered path would leave the root.
        """
        parts = []
        for literal, name, spec, _ in string.Formatter().parse(self.template):
            parts.append(literal)
            if name is None:
                continue
            value = self._value(name, ref)
            try:
                rendered = format(value, spec or "")
            except (ValueError, TypeError) as err:
                raise TemplateError(
                    f"Template {self.template!r}: cannot format {{{name}}}={value!r} with "
                    f"{spec!r}: {err}"
                ) from err
            parts.append(_sanitise(rendered, allow_slash=(name == "run")))
        path = "".join(parts)
        _check_path(path, self.template)
        return path

    def _value(self, name: str, ref: DatasetRef) -> Any:
        if name == "run":
            return ref.run
        if name == "dataset_type":
            return ref.dataset_type.name
        if name == "id":
            return str(ref.id)
        if name == "data_id":
            return "_".join(f"{k}-{_sanitise(v)}" for k, v in sorted(ref.data_id.items()))
        element, _, field = name.partition(".")
        records = ref.data_id.records or {}
        if not field and element in ref.data_id:
            return ref.data_id[element]
        if not field:
            for record in records.values():
                if element in record.values:
                    return record.values[element]
        elif element in records and field in records[element].values:
            return records[element].values[field]
        raise TemplateError(
            f"Template {self.template!r} needs {{{name}}}, which dataset {ref.dataset_type.name} "
            f"{ref.data_id!r} does not have; available: {', '.join(_available(ref))}. "
            "Expand the data ID with its records, or change the template."
        )


def _available(ref: DatasetRef) -> list[str]:
    names = ["run", "dataset_type", "id", "data_id", *ref.data_id]
    for element, record in sorted((ref.data_id.records or {}).items()):
        names += [f"{element}.{field}" for field in record.values]
    return names


class FileTemplates:
    """The template per dataset type, with a default for the others.

    Parameters
    ----------
    templates
        Dataset type name -> template; the key ``"default"`` replaces :data:`DEFAULT_TEMPLATE`.
    alternate_keys
        Dimension -> record fields that identify it (``{"exposure": ("obs_id",)}``); the
        Butler passes the universe's ``alternate_key`` values.
    optional_dimensions
        Dimensions a template may leave out.
    """

    def __init__(
        self,
        templates: Mapping[str, str] | None = None,
        *,
        alternate_keys: Mapping[str, Collection[str]] = DEFAULT_ALTERNATE_KEYS,
        optional_dimensions: Collection[str] = ("instrument",),
    ) -> None:
        raw = dict(templates or {})
        self.default = FileTemplate(raw.pop("default", DEFAULT_TEMPLATE))
        self.templates = {name: FileTemplate(text) for name, text in raw.items()}
        self.alternate_keys = dict(alternate_keys)
        self.optional_dimensions = tuple(optional_dimensions)
        self._validated: set[DatasetType] = set()

    def get(self, dataset_type_name: str) -> FileTemplate:
        """The template of a dataset type (components use their parent's)."""
        return self.templates.get(dataset_type_name.partition(".")[0], self.default)

    def validate(self, dataset_type: DatasetType) -> None:
        """Check the template of ``dataset_type`` gives unique paths (see :meth:`FileTemplate.validate`)."""
        if dataset_type in self._validated:
            return
        specific = dataset_type.parent_name in self.templates
        self.get(dataset_type.name).validate(
            dataset_type,
            alternate_keys=self.alternate_keys,
            optional_dimensions=self.optional_dimensions,
            needs_dataset_type=not specific,
        )
        self._validated.add(dataset_type)

    def format(self, ref: DatasetRef) -> str:
        """Validate the template for ``ref``'s dataset type and render ``ref``'s path."""
        self.validate(ref.dataset_type)
        return self.get(ref.dataset_type.name).format(ref)
