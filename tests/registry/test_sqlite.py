# SPDX-License-Identifier: BSD-3-Clause
"""The registry contract suite on SQLite, plus SQLite-specific behaviour."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from spherex_dask.errors import ConfigError, RegistryBusyError
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


LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


def test_lock_held_too_long_is_a_clear_error(tmp_path, monkeypatch) -> None:
    """A registry kept locked by another process beyond the busy timeout gives a
    RegistryBusyError naming the file and what to do, not sqlite3's 'database is locked'."""
    import spherex_dask.registry._database as database

    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT", 0.2)
    monkeypatch.setattr(database, "_RETRIES", 2)
    path = tmp_path / "registry.sqlite3"
    with Registry.create(str(path)) as registry:
        registry.register_run("before")
        holder = subprocess.Popen(
            [sys.executable, "-c", LOCK_HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            with pytest.raises(RegistryBusyError, match=r"registry\.sqlite3 stayed locked.*fuser"):
                registry.register_run("during")
            with pytest.raises(RegistryBusyError, match="Wait for the other command"):
                with registry.transaction():
                    registry.register_run("during")
        finally:
            holder.communicate("\n", timeout=60)
        assert registry.register_run("after") is True
        assert registry.query_collections() == ["after", "before"]
