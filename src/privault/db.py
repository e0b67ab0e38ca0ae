"""The database: engine, sessions, migrations. SQLite by default, PostgreSQL at scale."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs.

    SQLite gets WAL, foreign keys and a busy timeout, and real transactions
    (pysqlite's own BEGIN handling breaks savepoints). A PostgreSQL URL may
    carry libpq options, e.g. ``?options=-csearch_path%3Dtenant`` for a schema.
    """
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
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
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front: a deferred transaction that
            # read first would fail to upgrade under WAL when another wrote meanwhile.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(bind: Engine | Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint")


def _table(model: type[Base]) -> Table:
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
    table = _table(model)
    unknown = set(columns) - set(table.c.keys())
    if unknown:
        raise LookupError(f"{table.name} has no column(s) {sorted(unknown)}")
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - names from the model
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    session.connection().exec_driver_sql(sql, rows)


def bind_value(session: Session, model: type[Base], column: str, value: Any) -> Any:
    """``value`` as the driver needs it for ``model.column``."""
    dialect = session.get_bind().dialect
    processor = _table(model).c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return processor(value) if processor else value


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
