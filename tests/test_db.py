"""The batch path's database helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from privault.db import binder, make_engine
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
