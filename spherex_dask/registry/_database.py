# SPDX-License-Identifier: BSD-3-Clause
"""Engines, transactions and retries for the two supported backends (SQLite, PostgreSQL).

Every registry write runs through :meth:`Database.write`, which opens one transaction (``BEGIN
IMMEDIATE`` on SQLite, so writers queue on the busy timeout instead of failing on a lock
upgrade), retries the whole unit on "database is locked", serialisation failures and deadlocks,
and joins an enclosing :meth:`Database.transaction` as a SAVEPOINT.  Reads use short
connections, or the enclosing transaction's connection when there is one.
"""

from __future__ import annotations

import json
import logging
import operator
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import StaticPool

from ..errors import ConfigError, RegistryBusyError
from ._schema import RegistryTables

__all__ = ["Database", "make_engine", "parse_url"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a SQLite connection waits on a lock before reporting "database is locked".
SQLITE_BUSY_TIMEOUT = 60.0
#: Seconds a PostgreSQL statement waits on a lock before failing (``lock_timeout``), so that
#: a session stopped while holding one cannot make every other writer wait for ever.
POSTGRES_LOCK_TIMEOUT = 60.0
_LOCK_NOT_AVAILABLE = "55P03"
_RETRIES = 8
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def parse_url(url: str, schema: str | None = None) -> tuple[sa.URL, str | None]:
    """Turn a registry URL (or a bare SQLite file path) into an engine URL and a schema name.

    A ``schema`` query parameter of a PostgreSQL URL is removed from the URL and returned.

    Raises
    ------
    ConfigError
        If the URL is not a SQLite or PostgreSQL URL, or the schema name is not an identifier.

    Examples
    --------
    >>> parse_url("postgresql+psycopg://u@h/db?schema=s1")
    (postgresql+psycopg://u@h/db, 's1')
    >>> parse_url("/tmp/repo/registry.sqlite3")[0].database
    '/tmp/repo/registry.sqlite3'
    """
    if "://" not in url:
        url = f"sqlite:///{url}"
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as err:
        raise ConfigError(f"Invalid registry URL {url!r}: {err}") from err
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"Unsupported registry URL {url!r}: use 'sqlite:///path/registry.sqlite3' or "
            "'postgresql+psycopg://user@host:port/database'."
        )
    url_schema = parsed.query.get("schema")
    if url_schema is not None:
        parsed = parsed.difference_update_query(["schema"])
        schema = schema or str(url_schema)
    if schema is not None and (backend != "postgresql" or not _SCHEMA_NAME.match(schema)):
        raise ConfigError(
            f"Invalid schema {schema!r}: schemas are PostgreSQL-only and must be identifiers."
        )
    return parsed, schema


def _sqlite_events(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        if mode is not None:
            conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: sa.URL, *, schema: str | None = None, must_exist: bool = False) -> sa.Engine:
    """Create the engine for a registry database.

    Raises
    ------
    ConfigError
        If ``must_exist`` and the SQLite file does not exist.
    """
    if url.get_backend_name() == "sqlite":
        path = url.database
        if path and path != ":memory:":
            if must_exist and not Path(path).exists():
                raise ConfigError(
                    f"No registry at {str(url)!r}: the file does not exist. Create one with "
                    "Registry.create (or 'spherex-dask create')."
                )
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        else:
            engine = sa.create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        _sqlite_events(engine)
        return engine
    # No server-side prepared statements: their generic plans ignore the values of array
    # parameters and can turn a 500-key primary-key lookup into a scan.
    connect_args: dict[str, Any] = {}
    if url.get_driver_name() == "psycopg":
        connect_args["prepare_threshold"] = None
    options = [f"-c lock_timeout={round(POSTGRES_LOCK_TIMEOUT * 1000)}"]
    if schema:
        options.append(f"-c search_path={schema}")
    connect_args["options"] = " ".join(options)
    return sa.create_engine(url, connect_args=connect_args, pool_recycle=3600)


def _identity(value: Any) -> Any:
    return value


def _is_locked(err: sa.exc.DBAPIError) -> bool:
    """Whether SQLite or PostgreSQL gave up waiting for another connection's lock."""
    if getattr(err.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
        return True
    message = str(err.orig).lower()
    return "database is locked" in message or "database is busy" in message


def _is_retryable(err: sa.exc.DBAPIError) -> bool:
    return _is_locked(err) or getattr(err.orig, "sqlstate", None) in _RETRY_SQLSTATES


class Database:
    """An engine plus the registry's tables and transaction rules.

    Parameters
    ----------
    engine
        The SQLAlchemy engine.
    tables
        The registry tables generated from the repository's universe.
    writeable
        Whether writes are allowed.
    """

    def __init__(
        self, engine: sa.Engine, tables: RegistryTables, *, writeable: bool = True
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.writeable = writeable
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._rollback_hooks: list[Callable[[], None]] = []

    # -- transactions ------------------------------------------------------------------
    @property
    def current(self) -> sa.Connection | None:
        """The connection of the enclosing :meth:`transaction` in this thread, if any."""
        return getattr(self._local, "conn", None)

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (e.g. to clear a cache) whenever a write transaction rolls back."""
        self._rollback_hooks.append(hook)

    def _rolled_back(self) -> None:
        for hook in self._rollback_hooks:
            hook()

    def check_writeable(self) -> None:
        """Raise if this registry was opened read-only."""
        if not self.writeable:
            raise ConfigError(
                "This registry was opened read-only (writeable=False); reopen it writeable."
            )

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction; nested calls become savepoints of the outer one."""
        self.check_writeable()
        outer = self.current
        if outer is not None:
            try:
                with outer.begin_nested():
                    yield outer
            except BaseException:
                self._rolled_back()
                raise
            return
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            self._local.conn = conn
            try:
                with conn.begin():
                    yield conn
            except sa.exc.OperationalError as err:
                self._rolled_back()
                if _is_locked(err):
                    raise self._busy_error(err) from err
                raise
            except BaseException:
                self._rolled_back()
                raise
            finally:
                self._local.conn = None

    def _busy_error(self, err: sa.exc.DBAPIError) -> RegistryBusyError:
        """The error for a lock held by another process or session beyond the wait allowed
        (SQLite's busy timeout, PostgreSQL's ``lock_timeout``)."""
        wait = "Wait for the other command (an ingest, run, certify or removal) to finish and "
        reason = (str(err.orig).splitlines() or [""])[0]  # PostgreSQL adds the statement
        if self.is_sqlite:
            path = self.engine.url.database
            return RegistryBusyError(
                f"The registry database {path} stayed locked by another process for more "
                f"than {SQLITE_BUSY_TIMEOUT:g} s ({reason}); nothing was changed. {wait}try "
                "again. If none is running, a stopped process may still hold the file: find "
                f"it with `fuser {path}`. A repository that many people or jobs write at once "
                "belongs in PostgreSQL (docs/howto/postgresql.md)."
            )
        database = self.engine.url.database
        return RegistryBusyError(
            f"The registry database {database!r} on {self.engine.url.host} kept a lock for "
            f"another session for more than {POSTGRES_LOCK_TIMEOUT:g} s ({reason}); nothing "
            f"was changed. {wait}try again. If none is running, a stopped session may hold "
            "it: list the sessions with `SELECT pid, state, xact_start, query FROM "
            f"pg_stat_activity WHERE datname = '{database}'` and end one with "
            "`SELECT pg_terminate_backend(pid)`."
        )

    def write(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn(connection)`` in one write transaction, retrying on lock contention."""
        if self.current is not None:
            with self.transaction() as conn:
                return fn(conn)
        delay = 0.05
        for attempt in range(_RETRIES):
            try:
                with self.transaction() as conn:
                    return fn(conn)
            except (sa.exc.DBAPIError, RegistryBusyError) as err:
                retryable = isinstance(err, RegistryBusyError) or _is_retryable(err)
                if attempt == _RETRIES - 1 or not retryable:
                    raise
                cause = err.__cause__ if isinstance(err, RegistryBusyError) else err
                reason = getattr(cause, "orig", cause)
                logger.warning("Registry write hit %s; retrying (%d).", reason, attempt + 1)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def read(self, *, streaming: bool = False) -> Iterator[sa.Connection]:
        """A connection for reading (the enclosing transaction's, if any).

        Short reads run without an explicit transaction (SQLite: no ``BEGIN``; PostgreSQL:
        autocommit), saving round trips; ``streaming`` reads on PostgreSQL keep a transaction
        because server-side cursors need one.
        """
        outer = self.current
        if outer is not None:
            yield outer
            return
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(sqlite_begin=None)
            elif not streaming:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                yield conn
            except sa.exc.OperationalError as err:
                if _is_locked(err):
                    raise self._busy_error(err) from err
                raise

    def stream(
        self,
        statement: sa.Executable,
        convert: Callable[[sa.Connection, sa.Row[Any]], T],
        *,
        batch_size: int = 2000,
    ) -> Iterator[T]:
        """Yield ``convert(connection, row)`` for the rows of ``statement``, fetched in batches.

        Uses ``yield_per`` (a server-side cursor on PostgreSQL), so the result is never
        materialised; the connection is held until the iterator is exhausted or closed.
        """
        statement = statement.execution_options(yield_per=batch_size)
        with self.read(streaming=True) as conn:
            result = conn.execute(statement)
            try:
                for row in result:
                    yield convert(conn, row)
            finally:
                result.close()

    # -- dialect helpers ---------------------------------------------------------------
    def bulk_insert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
    ) -> None:
        """Insert tuples in one round (the hot path of dataset inserts).

        SQLite gets one DBAPI ``executemany``; PostgreSQL gets ``COPY ... FROM STDIN``.  Both
        run inside the connection's transaction and skip SQLAlchemy's per-row parameter
        processing, which otherwise dominates bulk-insert time, so values must already be in
        their database form (see :attr:`uuid_to_db`).
        """
        if not rows:
            return
        quote = self.engine.dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        if self.is_sqlite:
            marks = ", ".join(["?"] * len(columns))
            conn.exec_driver_sql(
                f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})", list(rows)
            )
            return
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        except self.engine.dialect.loaded_dbapi.Error as err:
            # Wrap like SQLAlchemy does, so callers see IntegrityError, OperationalError, ...
            raise sa.exc.DBAPIError.instance(
                f"COPY {table.name}", None, err, self.engine.dialect.loaded_dbapi.Error
            ) from err
        finally:
            cursor.close()

    def in_values(
        self, column: sa.ColumnElement[Any], values: Sequence[Any]
    ) -> sa.ColumnElement[bool]:
        """``column IN (values)``; one array parameter (``= ANY(...)``) on PostgreSQL.

        PostgreSQL compares a long ``IN`` list of separate parameters linearly per row and may
        then prefer a scan; an array parameter keeps primary-key lookups index scans.
        """
        if self.is_sqlite:
            return column.in_(values)
        return column == sa.any_(sa.literal(list(values), _postgresql().ARRAY(column.type)))

    def key_table(
        self, columns: Sequence[sa.Column[Any]], rows: Sequence[tuple[Any, ...]], name: str = "k"
    ) -> sa.FromClause:
        """A derived table of ``rows`` with the names and types of ``columns``, to join on.

        It is one bound parameter whatever the number of rows (a JSON array read by
        ``json_each`` on SQLite, one array per column given to ``unnest`` on PostgreSQL), so
        it escapes SQLite's bound-parameter limit and SQLAlchemy's per-parameter compilation,
        and the statement is compiled once and cached.  SQLite needs version 3.35 or later
        (``AS MATERIALIZED``).

        Examples
        --------
        >>> import sqlalchemy as sa
        >>> from spherex_dask.dimensions import DimensionUniverse
        >>> from ._schema import build_tables
        >>> db = Database(sa.create_engine("sqlite://"), build_tables(DimensionUniverse.default()))
        >>> t = db.tables.dataset
        >>> k = db.key_table([t.c.detector, t.c.instrument], [(1, "SPHEREx"), (2, "SPHEREx")])
        >>> with db.engine.connect() as conn:
        ...     conn.execute(sa.select(k.c.detector, k.c.instrument)).all()
        [(1, 'SPHEREx'), (2, 'SPHEREx')]
        """
        if self.is_sqlite:
            document = sa.literal(json.dumps(rows), sa.String)
            each = sa.func.json_each(document).table_valued("value")
            values = [
                sa.func.json_extract(each.c.value, f"$[{i}]", type_=c.type).label(c.name)
                for i, c in enumerate(columns)
            ]
            # Materialised, so that the planner drives the join from the keys (index seeks
            # into the other table) even without ANALYZE statistics, instead of rescanning
            # the JSON document for every row of the other table.
            return sa.select(*values).select_from(each).cte(name).prefix_with("MATERIALIZED")
        arrays = [
            sa.literal([r[i] for r in rows], _postgresql().ARRAY(c.type))
            for i, c in enumerate(columns)
        ]
        unnest = sa.func.unnest(*arrays).table_valued(*[sa.column(c.name, c.type) for c in columns])
        return unnest.render_derived(name=name)

    @property
    def uuid_to_db(self) -> Callable[[uuid.UUID], Any]:
        """Convert a UUID to what the ``Uuid`` column stores (32-digit hex text on SQLite)."""
        return operator.attrgetter("hex") if self.is_sqlite else _identity

    def insert_ignore(self, table: sa.Table, *, index_elements: list[str] | None = None) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING`` for this backend."""
        insert = sqlite.insert if self.is_sqlite else _postgresql().insert
        return insert(table).on_conflict_do_nothing(index_elements=index_elements)


def _postgresql() -> Any:
    """SQLAlchemy's PostgreSQL dialect module, imported on first use.

    Commands on a SQLite registry never need it; importing it costs them about 50 ms.
    """
    from sqlalchemy.dialects import postgresql

    return postgresql
