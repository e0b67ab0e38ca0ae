"""The database: engine, sessions, migrations. SQLite by default, PostgreSQL at scale."""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine.interfaces import DBAPIConnection

MIGRATIONS = Path(__file__).parent / "migrations"
#: Seconds a pooled PostgreSQL connection may lie idle and still be used unchecked.
PING_AFTER_IDLE = 1.0

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_CARD_LIKE = re.compile(r"\d{13}")


def new_id() -> str:
    """A fresh random row id: 32 hex digits, never with 13 decimal digits in a row, so no id
    can look like a card number to the guard that refuses those in URLs (P7.3)."""
    while True:
        candidate = secrets.token_hex(16)
        if not _CARD_LIKE.search(candidate):
            return candidate


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(
    url: str,
    *,
    ping_after: float = PING_AFTER_IDLE,
    on_connect: Sequence[str] = (),
    **kwargs: Any,
) -> Engine:
    """Create an engine with the settings each backend needs.

    SQLite gets WAL, foreign keys and a busy timeout, and real transactions
    (pysqlite's own BEGIN handling breaks savepoints) that take the write lock up front.
    The page cache is 64 MiB, and the pool hands out the connection used last (its cache
    is warm: SQLite drops a connection's cache whenever another one has written); the WAL
    is checkpointed every 10,000 pages: a batch that lands in random places of an index
    rewrites many pages, and a small checkpoint interval writes them out again and again.

    A thread that finds every pooled connection in use waits for one as long as it takes,
    in turn, where SQLAlchemy's default gives up after 30 s: under a burst of requests the
    service queues them rather than answering 500 (the load bench found it on SQLite).

    A PostgreSQL URL may carry libpq options, e.g. ``?options=-csearch_path%3Dtenant``
    for a schema. A PostgreSQL connection idle for more than ``ping_after`` seconds is
    checked before use (see ``_ping_when_idle``); ``on_connect`` are statements (session
    settings) each new PostgreSQL connection runs first.
    """
    # A database error's message never quotes the statement's values (personal data).
    kwargs = {"hide_parameters": True} | kwargs
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"pool_use_lifo": True, "pool_timeout": None} | kwargs
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Erased rows are zeroed, not left in free pages (issue 4, erasure).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.execute("PRAGMA journal_size_limit=67108864")
            cursor.close()

        _take_turns(engine)
        return engine
    engine = create_engine(url, **{"pool_timeout": None} | kwargs)
    _postgresql(engine, ping_after, on_connect)
    return engine


#: Seconds a thread waits for its turn at SQLite's write lock before giving up.
TURN_TIMEOUT = 120.0


def _take_turns(engine: Engine) -> None:
    """Every transaction takes SQLite's one write lock up front (BEGIN IMMEDIATE): a
    deferred one that read first would fail to upgrade under WAL when another wrote
    meanwhile. The engine's threads queue for it on a lock of this process first, each
    waiting its turn however long it takes, rather than in SQLite's busy handler, which
    polls, so that under a burst of requests some lost every poll until the busy timeout
    and answered 500 (the load bench). The busy timeout still bounds waiting for another
    process. A turn ends once the transaction's COMMIT or ROLLBACK is done (the pool's
    rollback of a connection given back with its transaction open included), or when its
    connection is invalidated or closed. A thread waits at most TURN_TIMEOUT for its turn
    (then "database is locked", as SQLite's own busy timeout would say), and one that
    opens a second transaction inside its own turn does not queue behind itself."""
    turn = threading.Lock()
    #: The DBAPI connection whose turn it is.
    holder: list[object] = [None]
    #: The thread whose turn it is.
    owner: list[int | None] = [None]
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def _end(connection: Any) -> None:
        _end_of(connection.dbapi_connection)

    def _end_of(dbapi_connection: object) -> None:
        if holder[0] is not None and holder[0] is dbapi_connection:
            holder[0] = owner[0] = None
            turn.release()

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            _end(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            _end(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(engine.pool, "invalidate")
    @event.listens_for(engine.pool, "close")
    def _on_gone(dbapi_connection: object, *_: object) -> None:
        # A connection thrown away in its transaction (a broken one) ends its turn too.
        _end_of(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("snapshot"):
            # A snapshot only reads, so it takes no lock at all (see ``snapshot``).
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        if owner[0] == threading.get_ident():
            # This thread's own turn is open on another connection: queueing behind it
            # would wait forever, so SQLite's busy timeout decides, as without turns.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        if not turn.acquire(timeout=TURN_TIMEOUT):
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        holder[0], owner[0] = conn.connection.dbapi_connection, threading.get_ident()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            holder[0] = owner[0] = None
            turn.release()
            raise


def make_async_engine(
    url: str,
    *,
    ping_after: float = PING_AFTER_IDLE,
    on_connect: Sequence[str] = (),
    **kwargs: Any,
) -> AsyncEngine:
    """A PostgreSQL engine for code on the event loop (psycopg's async connections), set up
    as ``make_engine`` sets one up. Its connections belong to the event loop that opened
    them: make it in that loop, and dispose of it there."""
    engine = create_async_engine(url, **({"hide_parameters": True} | kwargs))
    _postgresql(engine.sync_engine, ping_after, on_connect)
    return engine


def _postgresql(engine: Engine, ping_after: float, on_connect: Sequence[str]) -> None:
    _ping_when_idle(engine, ping_after)
    if on_connect:

        @event.listens_for(engine, "connect")
        def _settings(dbapi_connection: DBAPIConnection, _record: object) -> None:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True  # a session setting, outside any transaction
            cursor = dbapi_connection.cursor()
            for statement in on_connect:
                cursor.execute(statement)
            cursor.close()
            dbapi_connection.autocommit = autocommit


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Check a pooled connection before handing it out when it has lain idle for more than
    ``after`` seconds: a database restart, an idle timeout or a firewall may have ended it
    meanwhile, and a dead one is replaced, not handed to a request. One in use a moment ago
    is handed out as it is, which saves a round trip on every busy request; should the
    server have gone in that moment, the statement fails, SQLAlchemy sees the disconnect
    and renews the whole pool, so a restart costs at most the requests racing it."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object
    ) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since <= after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out another (or connects afresh).
            raise DisconnectionError("the pooled connection is gone") from exc


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees the whole database as it was at one moment, for as
    long as it lasts, while writers carry on. SQLite: a deferred transaction, whose first
    read fixes what it sees in the WAL and which holds no lock writers wait for.
    PostgreSQL: REPEATABLE READ, READ ONLY (as pg_dump reads)."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(snapshot=True)
        else:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def make_sessionmaker(bind: Engine | Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint")


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def insert_rows(
    session: Session, model: type[Base], columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows with one DB-API executemany, bypassing per-row statement processing.

    Values must be ready for the driver: use ``bind_value`` for types with a
    bind processor (SQLite stores datetimes as text).
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    table = table_of(model)
    unknown = set(columns) - set(table.c.keys())
    if unknown:
        raise LookupError(f"{table.name} has no column(s) {sorted(unknown)}")
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - names from the model
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    session.connection().exec_driver_sql(sql, rows)


def insert_new_rows(
    session: Session,
    model: type[Base],
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    key: str,
) -> set[Any]:
    """Insert the rows whose ``key`` (a unique column among ``columns``) is not taken yet;
    returns the keys this call inserted. Rows whose key is taken are skipped, not errors.

    Exact under concurrency. PostgreSQL: one executemany of ``ON CONFLICT DO NOTHING
    RETURNING``, so each row says whether it went in (a concurrent transaction inserting the
    same key makes this one wait for its outcome). SQLite: one writer at a time, and a
    transaction of ``make_engine`` holds the write lock from its ``BEGIN IMMEDIATE``; the
    rows go in inside a savepoint, and when some were skipped the savepoint is undone and
    the rows whose key was present are left out. Values as for ``insert_rows``.
    """
    if not rows:
        return set()
    table = table_of(model)
    unknown = (set(columns) | {key}) - set(table.c.keys())
    if unknown:
        raise LookupError(f"{table.name} has no column(s) {sorted(unknown)}")
    at = list(columns).index(key)
    names = ", ".join(columns)
    if is_postgres(session):
        sql = (
            f"INSERT INTO {table.name} ({names}) "  # noqa: S608 - names from the model
            # No conflict target: a partitioned table's unique key includes its partition
            # column (call records: call id and start), so no index is on ``key`` alone.
            f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING "
            f"RETURNING {key}"
        )
        cursor = cast("psycopg.Cursor[tuple[Any, ...]]", session.connection().connection.cursor())
        try:
            cursor.executemany(sql, rows, returning=True)
            inserted: set[Any] = set()
            while True:
                inserted.update(found[0] for found in cursor.fetchall())
                if not cursor.nextset():
                    return inserted
        finally:
            cursor.close()
    sql = (
        f"INSERT INTO {table.name} ({names}) "  # noqa: S608 - names from the model
        f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT ({key}) DO NOTHING"
    )
    connection = session.connection()
    attempt = connection.begin_nested()
    if connection.exec_driver_sql(sql, rows).rowcount == len(rows):
        attempt.commit()
        return {row[at] for row in rows}
    attempt.rollback()
    taken = {
        found[0] for found in rows_where_in(session, model, (key,), key, [r[at] for r in rows])
    }
    fresh = [row for row in rows if row[at] not in taken]
    if fresh:
        connection.exec_driver_sql(sql, fresh)
    return {row[at] for row in fresh}


def rows_where_in(
    session: Session, model: type[Base], columns: Sequence[str], key: str, values: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """``columns`` of the rows whose ``key`` is one of ``values``, in few plain queries (the
    batch path's look-ups: no per-value statement processing). Values as for ``insert_rows``."""
    table = table_of(model)
    unknown = (set(columns) | {key}) - set(table.c.keys())
    if unknown:
        raise LookupError(f"{table.name} has no column(s) {sorted(unknown)}")
    marker = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    distinct = list(dict.fromkeys(values))
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(distinct), 500):
        chunk = distinct[start : start + 500]
        result = session.connection().exec_driver_sql(
            f"SELECT {', '.join(columns)} FROM {table.name} "  # noqa: S608 - names from the model
            f"WHERE {key} IN ({', '.join([marker] * len(chunk))})",
            tuple(chunk),
        )
        found += result.all()
    return found


def bind_value(session: Session, model: type[Base], column: str, value: Any) -> Any:
    """``value`` as the driver needs it for ``model.column``."""
    return binder(session, model, column)(value)


def binder(session: Session, model: type[Base], column: str) -> Callable[[Any], Any]:
    """The function making values ready for the driver for ``model.column`` (the batch path
    looks it up once, not once per value).

    SQLite stores datetimes as text; for datetimes, SQLAlchemy's formatter gives way to
    ``isoformat``, several times faster, once a probe shows both write the same text.
    """
    dialect = session.get_bind().dialect
    kind = table_of(model).c[column].type
    processor = kind.dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return _same
    if (
        dialect.name == "sqlite"
        and isinstance(kind, DateTime)
        and processor(_PROBE) == _wall_time(_PROBE)
    ):
        slow = processor

        def fast(value: Any) -> Any:
            return _wall_time(value) if type(value) is datetime else slow(value)

        return fast
    return processor


_PROBE = datetime(987, 6, 5, 4, 3, 2, 10, tzinfo=UTC)


def _wall_time(value: datetime) -> str:
    # The offset cut off, as SQLAlchemy writes it (isoformat writes years in 4 digits).
    return value.isoformat(" ", "microseconds")[:26]


def _same(value: Any) -> Any:
    return value


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def advisory_lock(session: Session, name: str) -> None:
    """Serialise a critical section across processes on PostgreSQL, for this transaction.

    SQLite has one writer at a time already, so nothing is needed there.
    """
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(name.encode())})


def alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (safe to call on every start)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(b"migrate")})
        command.upgrade(alembic_config(conn), "head")
