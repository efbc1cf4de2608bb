# SPDX-License-Identifier: BSD-3-Clause
"""The registry contract suite on SQLite, plus SQLite-specific behaviour."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from spherex_dask.errors import ConfigError
from spherex_dask.registry import Registry
from spherex_dask.testing import RegistryTests


class TestSqliteRegistry(RegistryTests):
    """Run the shared suite against SQLite files."""

    @pytest.fixture
    def make_registry(
        self, make_sqlite_registry: Callable[..., Registry]
    ) -> Callable[..., Registry]:
        """SQLite registries in tmp_path."""
        return make_sqlite_registry


def test_open_missing_file_raises_and_creates_nothing(tmp_path) -> None:
    """Opening a missing SQLite repository is a clear error and leaves no file behind."""
    path = tmp_path / "nothing" / "registry.sqlite3"
    with pytest.raises(ConfigError, match="does not exist"):
        Registry.open(f"sqlite:///{path}")
    assert not path.exists()


def test_open_non_registry_database_raises(tmp_path) -> None:
    """An SQLite file without registry tables is not mistaken for a registry."""
    path = tmp_path / "other.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    with pytest.raises(ConfigError, match="no registry tables"):
        Registry.open(str(path))


def test_sqlite_pragmas(tmp_path) -> None:
    """Connections use WAL, foreign keys and a busy timeout."""
    with (
        Registry.create(str(tmp_path / "r.sqlite3")) as registry,
        registry._db.engine.connect() as conn,
    ):
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_in_memory_registry() -> None:
    """``sqlite://`` gives a working in-memory registry."""
    with Registry.create("sqlite://") as registry:
        assert registry.register_run("r") is True
        assert registry.query_collections() == ["r"]


def test_unsupported_url() -> None:
    """Only SQLite and PostgreSQL URLs are accepted, and schemas only on PostgreSQL."""
    with pytest.raises(ConfigError, match="Unsupported"):
        Registry.create("mysql://u@h/db")
    with pytest.raises(ConfigError, match="schema"):
        Registry.create("sqlite:///x.sqlite3", schema="s")
