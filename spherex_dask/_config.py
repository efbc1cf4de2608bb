# SPDX-License-Identifier: BSD-3-Clause
"""The repository configuration: one YAML file per repository, one pydantic model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["CONFIG_FILE", "DEFAULT_TEMPLATE", "RepoConfig"]

#: Name of the configuration file at the root of every repository.
CONFIG_FILE = "butler.yaml"

#: File template used for dataset types without their own.
DEFAULT_TEMPLATE = "{run}/{dataset_type}/{dataset_type}_{data_id}"

_DEFAULT_TEMPLATES = {
    "raw": "{run}/{dataset_type}/{planning_period}/{exposure.obs_id}/"
    "{dataset_type}_{exposure.obs_id}_D{detector}",
    "dark": "{run}/{dataset_type}/{dataset_type}_D{detector}",
    "dark_subtracted": "{run}/{dataset_type}/{planning_period}/{exposure.obs_id}/"
    "{dataset_type}_{exposure.obs_id}_D{detector}",
    "stacked": "{run}/{dataset_type}/{planning_period}/{dataset_type}_{planning_period}_D{detector}",
}


def _default_templates() -> dict[str, str]:
    return {"default": DEFAULT_TEMPLATE, **_DEFAULT_TEMPLATES}


@dataclass(kw_only=True)
class RepoConfig:
    """Configuration of one repository (``butler.yaml`` at its root).

    Every field has a default in code; the file written by ``Butler.create`` lists them all
    so that a user sees what can be changed. Validation is a plain ``parse`` function (zarr's
    ``parse_*`` style) rather than pydantic, which would add 0.25 s to every CLI command.

    Attributes
    ----------
    registry_db
        SQLAlchemy URL of the registry database; ``None`` means the SQLite file
        ``registry.sqlite3`` inside the repository.
    registry_schema
        PostgreSQL schema holding the registry tables (``None``: the default search path).
    datastore_root
        Where files are stored: ``None`` means the repository directory; an ``s3://`` URL
        stores them in S3 through fsspec.
    storage_options
        fsspec options for the datastore root (endpoint, credentials profile, ...).
    templates
        File template per dataset type name (``default`` for all others).
    formatters
        Formatter name per dataset type name, overriding the storage class default.
    checksum
        Checksum algorithm (``blake2b``, ``md5``) recorded at write and ingest, verifiable
        later; ``None`` (the default) skips it, since hashing reads every byte once more.
    """

    registry_db: str | None = None
    registry_schema: str | None = None
    datastore_root: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=_default_templates)
    formatters: dict[str, str] = field(default_factory=dict)
    checksum: str | None = None

    @classmethod
    def parse(cls, data: object, *, source: str = "configuration") -> RepoConfig:
        """Validate a mapping read from YAML.

        Raises
        ------
        ConfigError
            Naming the unknown key, or the key whose value has the wrong type.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}.")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(known)}."
            )
        for key, value in data.items():
            wanted = dict if key in {"storage_options", "templates", "formatters"} else str
            if value is not None and not isinstance(value, wanted):
                raise ConfigError(
                    f"{source}: {key!r} must be a {wanted.__name__}, got {value!r}."
                )
            if value is None and wanted is dict:
                raise ConfigError(f"{source}: {key!r} must be a mapping, not empty.")
        return cls(**data)

    @classmethod
    def load(cls, root: str | Path) -> RepoConfig:
        """Read and validate ``butler.yaml`` from a repository root.

        Raises
        ------
        ConfigError
            If the file is missing (not a repository) or invalid.
        """
        path = Path(root) / CONFIG_FILE
        if not path.exists():
            raise ConfigError(
                f"{str(root)!r} is not a spherex_dask repository (no {CONFIG_FILE}); "
                "create one with `spherex-dask create ROOT`."
            )
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"Invalid repository configuration {str(path)!r}: {err}") from err
        return cls.parse(data, source=str(path))

    def save(self, root: str | Path) -> Path:
        """Write this configuration to ``root/butler.yaml``."""
        path = Path(root) / CONFIG_FILE
        path.write_text(yaml.safe_dump(asdict(self), sort_keys=False))
        return path

    def database_url(self, root: str | Path) -> str:
        """The registry URL, resolving the default SQLite file inside ``root``."""
        if self.registry_db:
            return self.registry_db
        return f"sqlite:///{Path(root).absolute() / 'registry.sqlite3'}"

    def datastore_url(self, root: str | Path) -> str:
        """The datastore root, resolving the default (the repository directory)."""
        return self.datastore_root or str(Path(root).absolute())
