# SPDX-License-Identifier: BSD-3-Clause
"""Write an Intake catalog for a repository: one entry per dataset type, from the registry.

Two formats: ``v1`` (the ``sources:`` YAML every Intake reads, entries use the
``spherex_dask`` driver) and ``v2`` (Intake 2's ``version: 2`` YAML with a
:class:`SpherexDatasets` data entry and a :class:`SpherexXarrayReader` per dataset type).
Either way the repository is found at read time from ``$SPHEREX_DASK_REPO``, falling back to
the repository's path relative to the catalog file, so a catalog committed next to a
repository works from any working directory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from ..errors import ConfigError
from ._entries import EntrySpec, entry_specs
from ._selection import REPO_ENV_VAR

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["CATALOG_FORMATS", "export_catalog", "render_v1", "render_v2"]

logger = logging.getLogger(__name__)

#: Catalog formats ``export_catalog`` writes.
CATALOG_FORMATS = ("v1", "v2")

#: Name of the v2 catalog's user parameter holding the repository path.
V2_REPO_PARAMETER = "repository"

_HEADER = (
    "# Intake catalog of a spherex_dask repository, written by `spherex-dask export-catalog`:\n"
    "# regenerate it rather than editing it. Point it at a repository with the environment\n"
    f"# variable {REPO_ENV_VAR} (default: the repository it was written for, relative to\n"
    "# this file). Open with intake.open_catalog(path).\n"
)


def _relative_repo(repo: Path, out_path: Path) -> str:
    """``repo`` relative to the catalog's directory (absolute if on another drive)."""
    target = repo.resolve()
    try:
        return Path(os.path.relpath(target, out_path.resolve().parent)).as_posix()
    except ValueError:
        return target.as_posix()


def _catalog_metadata(specs: Sequence[EntrySpec], repo: str, version: int) -> dict[str, Any]:
    return {
        "version": version,
        "generated_by": "spherex-dask export-catalog",
        "repository_env_var": REPO_ENV_VAR,
        "default_repository": repo,
        "dataset_types": [s.name for s in specs],
    }


def render_v1(specs: Sequence[EntrySpec], *, relative_repo: str) -> dict[str, Any]:
    """The old-format (``sources:``) catalog as a YAML-ready dict.

    Examples
    --------
    >>> from spherex_dask.types import DatasetType
    >>> dt = DatasetType(name="dark", dimensions=("instrument", "detector"),
    ...                  storage_class="SpectralImage")
    >>> cat = render_v1([EntrySpec(dataset_type=dt, collections=("darkr",))],
    ...                 relative_repo="../demo-repo")
    >>> cat["sources"]["dark"]["args"]["default_repo"]
    '{{ CATALOG_DIR }}/../demo-repo'
    """
    default = (
        relative_repo if relative_repo.startswith("/") else "{{ CATALOG_DIR }}/" + relative_repo
    )
    sources = {
        spec.name: {
            "description": spec.description,
            "driver": "spherex_dask",
            "args": {
                **spec.args,
                "repo": f"{{{{ env('{REPO_ENV_VAR}') }}}}",
                "default_repo": default,
            },
            "metadata": spec.metadata,
        }
        for spec in specs
    }
    return {
        "description": "Datasets of a spherex_dask repository, one entry per dataset type.",
        "metadata": _catalog_metadata(specs, relative_repo, 1),
        "sources": sources,
    }


def render_v2(specs: Sequence[EntrySpec], *, relative_repo: str) -> dict[str, Any]:
    """The Intake 2 (``version: 2``) catalog as a YAML-ready dict."""
    from intake.readers.entry import Catalog
    from intake.readers.user_parameters import BaseUserParameter

    from ._v2 import SpherexDatasets, SpherexXarrayReader

    default = relative_repo if relative_repo.startswith("/") else "{CATALOG_DIR}/" + relative_repo
    cat = Catalog(metadata=_catalog_metadata(specs, relative_repo, 2))
    cat.user_parameters[V2_REPO_PARAMETER] = BaseUserParameter(
        default=f"env({REPO_ENV_VAR})",
        description=(
            f"Repository directory (default: ${REPO_ENV_VAR}, else {relative_repo} relative "
            "to this catalog)."
        ),
    )
    for spec in specs:
        data = SpherexDatasets(
            spec.name,
            repo=f"{{{V2_REPO_PARAMETER}}}",
            collections=list(spec.collections),
            default_repo=default,
            metadata=spec.metadata,
        )
        metadata = {**spec.metadata, "description": spec.description}
        token = cat.add_entry(SpherexXarrayReader(data=data, metadata=metadata))
        cat.give_name(token, spec.name)  # an alias, so that list(catalog) shows the names
    return cat.to_dict()


def _open_registry(repo: Path) -> Registry:
    from ..butler import Butler

    if not (repo / "butler.yaml").exists():
        raise ConfigError(
            f"No repository at {str(repo)!r} (no butler.yaml); create one with "
            "`spherex-dask create` or pass the right path."
        )
    return Butler(repo, writeable=False).registry


def export_catalog(
    repo: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    collections: Sequence[str] | None = None,
    dataset_types: Sequence[str] | None = None,
    format: Literal["v1", "v2"] = "v1",
) -> Path:
    """Write an Intake catalog of ``repo``: one entry per dataset type with datasets.

    Only dataset types whose storage class reads as xarray get an entry; the others
    (``StructuredData``, ``AstropyTable``) are read with ``Butler.get``.

    Parameters
    ----------
    repo
        Repository directory.
    out_path
        YAML file to write (parent directories are created).
    collections
        Search path of every entry; default: for each dataset type, the RUN collections
        holding datasets of that type.
    dataset_types
        Glob patterns of the dataset types to include (default all).
    format
        ``"v1"`` (``sources:``, the ``spherex_dask`` driver) or ``"v2"`` (Intake 2 readers).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ConfigError
        For an unknown format or a path that holds no repository.
    MissingCollectionError, MissingDatasetTypeError
        For collections or dataset-type patterns that match nothing (that reads as xarray).
    """
    if format not in CATALOG_FORMATS:
        raise ConfigError(f"Unknown catalog format {format!r}; choose one of {CATALOG_FORMATS}.")
    repo, out = Path(repo), Path(out_path)
    registry = _open_registry(repo)
    try:
        specs = entry_specs(registry, collections=collections, dataset_types=dataset_types)
    finally:
        registry.close()
    render = render_v1 if format == "v1" else render_v2
    content = render(specs, relative_repo=_relative_repo(repo, out))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_HEADER + yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    logger.info("Wrote %s catalog %s with %d entries", format, out, len(specs))
    return out
