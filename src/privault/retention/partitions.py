"""Monthly partitions of the big time-ordered tables on PostgreSQL (P6.2).

Call detail records and page views are range-partitioned by month on the time their
retention counts from, so the retention sweep drops a whole expired month at once instead
of deleting its rows one by one. A month's partition is made when the first row of that
month arrives (``ensure``); there is no default partition, so a row whose month has none
fails loudly rather than landing somewhere the sweep would not look.

SQLite has no partitions: there the sweep deletes rows, as it does on PostgreSQL for
every other table.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from privault.db import is_postgres

#: Table -> the time column it is partitioned on.
PARTITIONED = {"call_records": "started_at", "analytics_page_views": "at"}


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    #: The first day of its month, and of the next: rows in [start, end).
    start: datetime
    end: datetime


def month_of(moment: datetime) -> date:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return date(moment.year, moment.month, 1)


def _bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return start, datetime(following.year, following.month, 1, tzinfo=UTC)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y_%m}"


def lock_key(name: str) -> int:
    """The advisory lock taken by whoever makes or drops the partition ``name``."""
    return zlib.crc32(name.encode())


class Partitions:
    """The months that have a partition, remembered per process so that a page view does
    not ask the database each time."""

    def __init__(self) -> None:
        self._known: set[tuple[str, date]] = set()
        self._lock = threading.Lock()

    def ensure(self, session: Session, table: str, moments: Iterable[datetime]) -> None:
        """Make sure each month of ``moments`` has its partition of ``table`` (PostgreSQL;
        nothing on SQLite). Safe when another process makes the same one at once. In a
        transaction, a month counts as made once that transaction has committed (rolled
        back, it is made again next time); in autocommit, at once."""
        if not is_postgres(session):
            return
        with self._lock:
            months = {month_of(m) for m in moments} - {
                month for known, month in self._known if known == table
            }
        if not months:
            return
        autocommit = bool(session.connection().connection.dbapi_connection.autocommit)  # type: ignore[union-attr]
        for month in sorted(months):
            start, end = _bounds(month)
            name = partition_name(table, month)
            key = {"key": lock_key(name)}
            # Two making the same partition at once: the second waits here for the first to
            # be done, then finds it made (IF NOT EXISTS alone races). In a transaction the
            # lock lasts to its end; in autocommit it is let go below.
            lock = "pg_advisory_lock" if autocommit else "pg_advisory_xact_lock"
            session.execute(text(f"SELECT {lock}(:key)"), key)
            try:
                # DDL takes no parameters; the bounds are dates this code made.
                session.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES "
                        f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                    )
                )
            finally:
                if autocommit:
                    session.execute(text("SELECT pg_advisory_unlock(:key)"), key)
        made = {(table, month) for month in months}
        if autocommit:
            self._remember(made)
        else:
            event.listen(session, "after_commit", lambda _s: self._remember(made), once=True)

    def has(self, table: str, moment: datetime) -> bool:
        """Whether the partition of ``table`` for the month of ``moment`` is known to exist
        (made or met by ``ensure`` in this process)."""
        with self._lock:
            return (table, month_of(moment)) in self._known

    def _remember(self, made: set[tuple[str, date]]) -> None:
        with self._lock:
            self._known |= made

    def forget(self, table: str, month: date) -> None:
        with self._lock:
            self._known.discard((table, month))


def partitions(session: Session, table: str) -> list[Partition]:
    """The monthly partitions of ``table``, oldest first (none on SQLite)."""
    if not is_postgres(session):
        return []
    names = session.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:table)"
        ),
        {"table": table},
    ).all()
    found = []
    prefix = f"{table}_p"
    for name in names:
        if not name.startswith(prefix):
            continue
        year, _, month = name.removeprefix(prefix).partition("_")
        if not (year.isdigit() and month.isdigit()):
            continue
        start, end = _bounds(date(int(year), int(month), 1))
        found.append(Partition(table, name, start, end))
    return sorted(found, key=lambda p: p.start)
