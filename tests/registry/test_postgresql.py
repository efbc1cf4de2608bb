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


def test_lock_held_too_long_is_a_clear_error(
    pg_url: str, pg_schemas: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock kept by another session beyond lock_timeout gives a RegistryBusyError saying
    what to do (PostgreSQL would otherwise make the writer wait for ever); nothing changes,
    and the next write after the lock is released works."""
    import sqlalchemy as sa

    import spherex_dask.registry._database as database
    from spherex_dask.errors import RegistryBusyError

    monkeypatch.setattr(database, "POSTGRES_LOCK_TIMEOUT", 0.2)
    monkeypatch.setattr(database, "_RETRIES", 2)
    schema = pg_schemas()
    holder = sa.create_engine(pg_url)
    with Registry.create(pg_url, schema=schema) as registry:
        registry.register_run("before")
        with holder.connect() as conn:
            conn.execute(sa.text(f"LOCK TABLE {schema}.collection IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(RegistryBusyError, match=r"kept a lock .*pg_stat_activity"):
                registry.register_run("during")
            conn.rollback()
        assert registry.register_run("after") is True
        assert registry.query_collections() == ["after", "before"]
    holder.dispose()
