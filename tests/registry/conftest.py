# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures of the registry tests: PostgreSQL availability and per-test schemas."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from spherex_dask.dimensions import DimensionUniverse
from spherex_dask.registry import Registry

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL server URL; skips (fails in CI) when the server is unreachable."""
    url = os.environ.get("SPHEREX_DASK_TEST_PG_URL", DEFAULT_PG_URL)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as err:
        message = (
            f"PostgreSQL is not reachable at {url} ({type(err).__name__}). Start PostgreSQL on "
            "127.0.0.1:5432 with a 'test' database and trust auth, or set "
            "SPHEREX_DASK_TEST_PG_URL to a server URL, to run these tests."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_schemas(pg_url: str) -> Iterator[Callable[[], str]]:
    """A factory of unique PostgreSQL schema names; the schemas are dropped afterwards."""
    names: list[str] = []

    def make() -> str:
        names.append(f"sdt_{uuid.uuid4().hex[:16]}")
        return names[-1]

    yield make
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        engine.dispose()


@pytest.fixture
def make_sqlite_registry(tmp_path) -> Iterator[Callable[..., Registry]]:
    """A factory of fresh SQLite registries under ``tmp_path``."""
    made: list[Registry] = []

    def make(universe: DimensionUniverse | None = None) -> Registry:
        made.append(
            Registry.create(f"sqlite:///{tmp_path}/registry{len(made)}.sqlite3", universe=universe)
        )
        return made[-1]

    yield make
    for registry in made:
        registry.close()


@pytest.fixture
def make_pg_registry(
    pg_url: str, pg_schemas: Callable[[], str]
) -> Iterator[Callable[..., Registry]]:
    """A factory of fresh PostgreSQL registries, each in its own schema."""
    made: list[Registry] = []

    def make(universe: DimensionUniverse | None = None) -> Registry:
        made.append(Registry.create(f"{pg_url}?schema={pg_schemas()}", universe=universe))
        return made[-1]

    yield make
    for registry in made:
        registry.close()
