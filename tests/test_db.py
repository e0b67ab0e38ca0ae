"""The batch path's database helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from privault.db import binder, make_engine, new_id
from privault.service.cards import contains_card_number
from privault.service.models import CallRecord


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
