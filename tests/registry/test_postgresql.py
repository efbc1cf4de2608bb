# SPDX-License-Identifier: BSD-3-Clause
"""The registry contract suite on PostgreSQL (each test in its own schema)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spherex_dask.errors import ConfigError
from spherex_dask.registry import Registry
from spherex_dask.testing import RegistryTests

pytestmark = pytest.mark.postgres


class TestPostgresqlRegistry(RegistryTests):
    """Run the shared suite against the PostgreSQL server."""

    @pytest.fixture
    def make_registry(self, make_pg_registry: Callable[..., Registry]) -> Callable[..., Registry]:
        """PostgreSQL registries, one schema each."""
        return make_pg_registry


def test_open_missing_schema_raises(pg_url: str, pg_schemas: Callable[[], str]) -> None:
    """Opening a schema without a registry is a clear error."""
    with pytest.raises(ConfigError, match="no registry tables"):
        Registry.open(pg_url, schema=pg_schemas())


def test_schema_option_and_query_parameter_agree(
    pg_url: str, pg_schemas: Callable[[], str]
) -> None:
    """``schema=`` and ``?schema=`` address the same registry."""
    schema = pg_schemas()
    with Registry.create(pg_url, schema=schema) as created:
        created.register_run("r")
    with Registry.open(f"{pg_url}?schema={schema}") as opened:
        assert opened.query_collections() == ["r"]


def test_unreachable_server_is_config_error() -> None:
    """A server that does not answer gives a ConfigError naming the URL."""
    url = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(ConfigError, match="Cannot connect"):
        Registry.open(url)
