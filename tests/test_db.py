"""The batch path's database helpers."""

from __future__ import annotations

import os
import queue
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, DateTime, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from privault.config import Settings
from privault.db import binder, make_engine, new_id
from privault.service.cards import contains_card_number
from privault.service.models import CallRecord

PG_URL = os.environ.get("PRIVAULT_TEST_DATABASE_URL")


def test_the_fast_sqlite_datetime_binder_writes_what_sqlalchemy_writes() -> None:
    engine = make_engine("sqlite://")
    with Session(engine) as session:
        fast = binder(session, CallRecord, "started_at")
    dialect = sqlite.dialect()
    slow = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert slow is not None and fast is not slow
    paris = timezone(timedelta(hours=2))
    values = [
        datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        datetime(2024, 5, 1, 9, 30, 4, 120, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 5, 1, 11, 30, tzinfo=paris),
        datetime(2024, 5, 1, 9, 30),
        date(2024, 5, 1),
        None,
    ]
    for value in values:
        assert fast(value) == slow(value), value
    engine.dispose()


def test_p7_3_no_row_id_looks_like_a_card_number() -> None:
    """Ids travel in URLs, where the guard refuses anything like a card number: random hex
    alone would make about one id in 600 unreachable."""
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert [i for i in ids if contains_card_number(i)] == []


@pytest.mark.skipif(PG_URL is None, reason="needs PRIVAULT_TEST_DATABASE_URL")
def test_a_pooled_connection_the_server_ended_is_replaced_not_handed_out() -> None:
    """With ping_after=0 every checkout counts as idle: the one whose backend was
    terminated is pinged, found dead and replaced before any statement runs on it."""
    engine = make_engine(PG_URL or "", ping_after=0, pool_size=1)
    admin = make_engine(PG_URL or "")
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.begin() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
        with engine.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()
        admin.dispose()


@pytest.mark.skipif(PG_URL is None, reason="needs PRIVAULT_TEST_DATABASE_URL")
def test_a_connection_used_a_moment_ago_goes_unchecked_and_one_failure_renews_the_pool() -> None:
    """Within ping_after the connection is handed out as it is (no round trip): if the
    server ended it meanwhile, that one statement fails as a disconnect, and the next
    checkout gets a new connection."""
    engine = make_engine(PG_URL or "", ping_after=3600, pool_size=1)
    admin = make_engine(PG_URL or "")
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with pytest.raises(OperationalError) as failed, engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert failed.value.connection_invalidated
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    finally:
        engine.dispose()
        admin.dispose()


def test_a_checkout_from_a_busy_pool_waits_its_turn_instead_of_failing(
    fresh_settings: Settings,
) -> None:
    """Under a burst of requests every pooled connection may be in use: the next request
    waits for one however long it takes (SQLAlchemy's default gives up after 30 s, and the
    request would answer 500), and gets the one given back."""
    engine = make_engine(fresh_settings.db_url, pool_size=1, max_overflow=0)
    assert engine.pool.timeout() is None
    held = engine.connect()
    handed: queue.Queue[Connection] = queue.Queue()
    waiter = threading.Thread(target=lambda: handed.put(engine.connect()))
    waiter.start()
    assert handed.empty()
    held.close()
    second = handed.get(timeout=60)
    assert second.execute(text("SELECT 1")).scalar_one() == 1
    second.close()
    waiter.join()
    engine.dispose()


def test_sqlite_transactions_of_one_process_wait_their_turn_not_for_the_busy_timeout(
    tmp_path: Path,
) -> None:
    """Threads queue for SQLite's write lock in the process, so a transaction waits for
    another's end however long it lasts: here its busy timeout is 0, and without the queue
    its BEGIN IMMEDIATE would fail at once with "database is locked"."""
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    first = engine.connect()
    first.execute(text("INSERT INTO t VALUES (1)"))
    second = engine.connect()
    second.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with second.begin():
                second.execute(text("INSERT INTO t VALUES (2)"))
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(timeout=2)  # time for it to reach the lock; it must still be waiting
    assert writer.is_alive() and not failures
    first.commit()
    writer.join(timeout=60)
    assert not failures
    assert second.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    first.close()
    second.close()
    engine.dispose()
