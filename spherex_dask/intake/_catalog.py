# SPDX-License-Identifier: BSD-3-Clause
"""A live Intake catalog of a repository (old API): one entry per dataset type."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from intake.catalog.base import Catalog
from intake.catalog.local import LocalCatalogEntry

from .. import __version__
from ._entries import entry_specs
from ._selection import Selection, _as_tuple, resolve_repo
from ._source import SpherexSource

__all__ = ["SpherexCatalog"]

logger = logging.getLogger(__name__)


class SpherexCatalog(Catalog):
    """Browse a repository through Intake without writing a catalog file.

    Registered as the Intake driver ``spherex_dask_cat``
    (``intake.open_spherex_dask_cat(repo)``). Entries are listed from the registry when the
    catalog is opened (and again after ``ttl`` seconds); each is a :class:`SpherexSource`.

    Parameters
    ----------
    repo
        Repository directory; default ``$SPHEREX_DASK_REPO``, then ``demo-repo``.
    collections
        Search path of every entry; default: for each dataset type, the RUN collections
        holding datasets of that type.
    dataset_types
        Glob patterns of the dataset types listed (default all).
    name, description, metadata, ttl
        As for ``intake.catalog.Catalog``.
    """

    name = "spherex_dask_cat"
    version = __version__

    def __init__(
        self,
        repo: str | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        dataset_types: str | Sequence[str] | None = None,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        ttl: float = 60,
    ) -> None:
        self.repo = resolve_repo(repo)
        self.collections = _as_tuple(collections)
        self.dataset_types = _as_tuple(dataset_types)
        super().__init__(
            name=name or "spherex_dask",
            description=description or f"Datasets of the spherex_dask repository {self.repo}",
            metadata=dict(metadata or {}),
            ttl=ttl,
        )

    def _load(self) -> None:
        butler = Selection(repo=self.repo, dataset_type="*").open_butler()
        try:
            specs = entry_specs(
                butler.registry,
                collections=self.collections or None,
                dataset_types=self.dataset_types or None,
            )
        finally:
            butler.close()
        self._entries = {
            spec.name: LocalCatalogEntry(
                name=spec.name,
                description=spec.description,
                driver=SpherexSource,
                direct_access="forbid",
                args={**spec.args, "repo": self.repo},
                metadata=spec.metadata,
                catalog=self,
            )
            for spec in specs
        }
        logger.debug("Catalog of %s lists %d dataset types", self.repo, len(self._entries))
