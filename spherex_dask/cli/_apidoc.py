# SPDX-License-Identifier: BSD-3-Clause
"""Render the Python API reference (``docs/api.md``) from signatures and docstrings.

Each documented name gets its signature and the narrative part of its docstring (up to the
first numpydoc section such as ``Parameters``); a class also lists its public methods and
properties with their signatures and one-line summaries. reST roles (``:class:`~a.B```) and
literals (````x````) are turned into Markdown code spans.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

from ._docgen import COMMANDS, md_text

__all__ = ["SECTIONS", "render_api", "signature_text"]

#: (heading, module, names, introduction) of each section of the page, in order.
SECTIONS: list[tuple[str, str, list[str], str]] = [
    (
        "Top level",
        "spherex_dask",
        [
            "Butler",
            "FileDataset",
            "Registry",
            "DataId",
            "DatasetType",
            "DatasetRef",
            "CollectionType",
            "Timespan",
            "DimensionUniverse",
            "Pipeline",
            "PipelineTask",
            "QuantumGraph",
            "SpherexDaskError",
        ],
        "The names of `spherex_dask.__all__`: the Butler facade and its registry, the value "
        "types they take and return, and the pipeline classes.",
    ),
    (
        "Writing and running pipelines",
        "spherex_dask.pipeline",
        [
            "Input",
            "PrerequisiteInput",
            "Output",
            "PipelineTaskConfig",
            "TaskNode",
            "build_quantum_graph",
            "Quantum",
            "plan_outputs",
            "OutputCollections",
            "apply_outputs",
            "check_graph",
            "check_prunable",
            "run_quantum_graph",
            "RunSummary",
            "prune_replaced",
        ],
        "Connections and configs for task authors, and the functions `spherex-dask qgraph` "
        "and `spherex-dask run` are made of.",
    ),
    (
        "Built-in tasks",
        "spherex_dask.pipeline.tasks",
        ["SubtractDarkTask", "SubtractDarkConfig", "StackTask", "StackConfig"],
        "The tasks of `pipelines/DarkSubtraction.yaml` and `pipelines/ExamplePipeline.yaml`.",
    ),
    (
        "Ingest",
        "spherex_dask.ingest",
        ["register_instrument", "ingest_simulated", "ingest_files", "INSTRUMENT", "DEFAULT_RUNS"],
        "What `spherex-dask register-instrument`, `ingest-simulated` and `ingest-files` call.",
    ),
    (
        "Simulator",
        "spherex_dask.sim",
        ["simulate", "make_exposures", "pack_exposure_id", "unpack_exposure_id", "parse_obs_id"],
        "Deterministic SPHEREx-like data (what `spherex-dask simulate` writes).",
    ),
    (
        "Intake",
        "spherex_dask.intake",
        ["export_catalog", "REPO_ENV_VAR"],
        "Catalogs for `intake.open_catalog`; the `spherex_dask` driver and the Intake 2 "
        "readers are registered through entry points when the package is installed.",
    ),
]

_SECTION_HEADER = re.compile(
    r"^\s*(Parameters|Returns|Yields|Raises|Examples|Attributes|"
    r"See Also|Notes|Warns|Other Parameters)\s*\n\s*-{3,}\s*$",
    re.M,
)
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_SINGLE = re.compile(r"(?<![`\w])`([^`]+)`(?!`)")
_LINE = 88


def _narrative(doc: str | None, *, first_paragraph: bool = False) -> str:
    """The docstring's text before its first numpydoc section, as Markdown."""
    text = inspect.cleandoc(doc or "")
    match = _SECTION_HEADER.search(text)
    text = text[: match.start()] if match else text
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    if first_paragraph:
        paragraphs = paragraphs[:1]
    return "\n\n".join(
        _markdown(" ".join(p.split())) for p in paragraphs if not p.lstrip().startswith(">>>")
    )


def _markdown(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    text = _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)
    return md_text(text.replace("::", ":"))


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return ""
    if isinstance(value, str):
        return value.strip("'\"")
    return inspect.formatannotation(value)


def signature_text(name: str, obj: Callable[..., Any], *, skip_self: bool = False) -> str:
    """``name(params) -> return`` with string annotations unquoted, wrapped like black.

    Examples
    --------
    >>> def f(a: int, *, b: str | None = None) -> bool: ...
    >>> signature_text("f", f)
    'f(a: int, *, b: str | None = None) -> bool'
    """
    sig = inspect.signature(obj)
    params = list(sig.parameters.values())[1 if skip_self else 0 :]
    parts: list[str] = []
    seen_kw_only = False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not seen_kw_only:
            parts.append("*")
        seen_kw_only = seen_kw_only or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        prefix = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        text = prefix + p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}" if p.annotation is not p.empty else f"={p.default!r}"
        parts.append(text)
    returns = _annotation(sig.return_annotation)
    tail = f" -> {returns}" if returns and returns != "None" else ""
    flat = f"{name}({', '.join(parts)}){tail}"
    if len(flat) <= _LINE:
        return flat
    return f"{name}(\n" + "".join(f"    {p},\n" for p in parts) + f"){tail}"


def _code(text: str) -> list[str]:
    if " at 0x" in text:
        raise ValueError(f"A default value has no stable repr: {text}")
    return ["```text", text, "```", ""]


def _pydantic_fields(cls: type) -> list[str]:
    fields = getattr(cls, "model_fields", {})
    lines = []
    for name, info in fields.items():
        if name == "connections":
            continue
        annotation = _annotation(info.annotation).replace("typing.", "")
        lines.append(f"- `{name}: {annotation} = {info.default!r}`")
    return [*lines, ""] if lines else []


def _members(cls: type) -> list[str]:
    lines: list[str] = []
    for attr, raw in vars(cls).items():
        if attr.startswith("_"):
            continue
        if isinstance(raw, property):
            summary = _narrative(raw.__doc__, first_paragraph=True)
            lines += [f"- `{cls.__name__}.{attr}` (property): {summary}", ""]
            continue
        func = raw.__func__ if isinstance(raw, classmethod | staticmethod) else raw
        if not inspect.isfunction(func):
            continue
        skip_self = not isinstance(raw, staticmethod)
        sig = signature_text(f"{cls.__name__}.{attr}", func, skip_self=skip_self)
        summary = _narrative(func.__doc__, first_paragraph=True)
        lines += [f"#### `{cls.__name__}.{attr}`", "", *_code(sig)]
        lines += [summary, ""] if summary else []
    if lines and lines[-1] != "":
        lines.append("")
    return lines


def _class(name: str, cls: type) -> list[str]:
    lines = [f"### `{name}`", ""]
    if issubclass(cls, enum.Enum):
        lines += [f"Enum members: {', '.join(f'`{m.name}`' for m in cls)}.", ""]
    elif issubclass(cls, BaseException) or hasattr(cls, "model_fields"):
        lines += _code(f"class {name}({', '.join(b.__name__ for b in cls.__bases__)})")
    else:
        lines += _code(signature_text(name, cls))
    narrative = _narrative(cls.__doc__)
    lines += [narrative, ""] if narrative else []
    lines += _pydantic_fields(cls)
    if not issubclass(cls, enum.Enum | BaseException):
        lines += _members(cls)
    return lines


def _entry(module: str, name: str) -> list[str]:
    obj = getattr(importlib.import_module(module), name)
    if isinstance(obj, type):
        return _class(name, obj)
    if callable(obj):
        narrative = _narrative(obj.__doc__)
        return [f"### `{name}`", "", *_code(signature_text(name, obj)), narrative, ""]
    return [f"### `{name}`", "", *_code(f"{name} = {obj!r}")]


def render_api() -> str:
    """The Markdown Python API reference."""
    lines = [
        "# Python API reference",
        "",
        "<!-- Generated from the docstrings; do not edit. Regenerate with:",
        f"     {COMMANDS['api']} -->",
        "",
        "Signatures and summaries of the public API; `help(name)` in Python shows the full "
        "docstrings (parameters, errors raised, examples). The vocabulary is explained in "
        "[Concepts](concepts.md), the `where` expressions in [the query language]"
        "(query-language.md).",
        "",
    ]
    for heading, module, _, _ in SECTIONS:
        lines.append(f"- [{heading}](#{heading.lower().replace(' ', '-')}) (`{module}`)")
    lines.append("")
    for heading, module, names, intro in SECTIONS:
        lines += [f"## {heading}", "", f"From `{module}`. {intro}", ""]
        for name in names:
            lines += _entry(module, name)
    return "\n".join(lines).rstrip() + "\n"
