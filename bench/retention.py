"""The retention sweep (issue 7) against a raw DELETE of the same rows in the same database.

CDRS call detail records of PEOPLE people, their start times spread evenly over the last
24 months, so about half are past the 12 months call records are kept. The rows go in
through the batch insert path (no caller: the sweep never looks at content); on
PostgreSQL into the monthly partitions the ingest path makes.

SQLite: ``RetentionSweep.run`` (batches of 10,000 rows, each its own transaction, holds
checked) erases the expired half; the table is then restored and the baseline, one plain
``DELETE FROM call_records WHERE started_at < cutoff`` in one transaction, erases the
same rows. Ratio: sweep rows/s divided by baseline rows/s; target >= 0.5.

PostgreSQL: the sweep drops each whole expired month (and deletes the rest of the month
the cutoff falls in, row by row); the baseline deletes the same rows row by row with the
same plain DELETE. Ratio as above: how much faster dropping months is.

RETENTION_BENCH_CDRS scales the run (default 2,000,000).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from common import Figure, backends, data_folder, make_people, record
from privault.clock import FrozenClock
from privault.db import bind_value, insert_rows
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.models import CallRecord

CDRS = int(os.environ.get("RETENTION_BENCH_CDRS", "2000000"))
PEOPLE = 2_000
BATCH = 50_000
NOW = datetime(2027, 1, 20, 9, 0, tzinfo=UTC)
SPAN = timedelta(days=730)
COLUMNS = (
    "call_id",
    "subject_id",
    "started_at",
    "duration",
    "billsec",
    "disposition",
    "ingested_at",
)


def fill(runtime: Runtime, subjects: list[str]) -> None:
    """CDRS rows, start times spread evenly over SPAN before NOW."""
    step = SPAN / CDRS
    for first in range(0, CDRS, BATCH):
        last = min(CDRS, first + BATCH)
        starts = [NOW - SPAN + step * n for n in range(first, last)]
        with runtime.transaction() as session:
            runtime.partitions.ensure(session, "call_records", starts)
            stamp = lambda moment: bind_value(session, CallRecord, "started_at", moment)  # noqa: E731
            insert_rows(
                session,
                CallRecord,
                COLUMNS,
                [
                    (f"c{n}", subjects[n % len(subjects)], stamp(s), 60, 55, "ANSWERED", stamp(s))
                    for n, s in zip(range(first, last), starts, strict=True)
                ],
            )


def count(runtime: Runtime) -> int:
    with runtime.factory() as session:
        return int(session.scalar(select(func.count()).select_from(CallRecord)) or 0)


def run(backend: str) -> None:
    with data_folder(backend) as settings:
        prepare(settings).dispose()
        runtime = open_runtime(settings, clock=FrozenClock(NOW))
        try:
            subjects = [s for s, _ in make_people(runtime, PEOPLE)]
            fill(runtime, subjects)
            cutoff = NOW - timedelta(days=365)
            with runtime.factory() as session:
                expired = int(
                    session.scalar(
                        select(func.count())
                        .select_from(CallRecord)
                        .where(CallRecord.started_at < cutoff)
                    )
                    or 0
                )
            start = time.perf_counter()
            report = runtime.retention_sweep().run(by="bench")
            sweep_secs = time.perf_counter() - start
            [swept] = [s for s in report.swept if s.table == "call_records"]
            if swept.rows != expired or count(runtime) != CDRS - expired:
                raise RuntimeError(f"the sweep erased {swept.rows} rows, not {expired}")
            # Put the erased rows back (their months first, on PostgreSQL), then the baseline.
            with runtime.transaction() as session:
                session.execute(text("DELETE FROM call_records"))
            fill(runtime, subjects)
            if count(runtime) != CDRS:
                raise RuntimeError("the table was not restored")
            with runtime.transaction() as session:
                start = time.perf_counter()
                deleted = session.execute(
                    text("DELETE FROM call_records WHERE started_at < :cutoff"),
                    {"cutoff": bind_value(session, CallRecord, "started_at", cutoff)},
                ).rowcount  # type: ignore[attr-defined]
            raw_secs = time.perf_counter() - start
            if deleted != expired:
                raise RuntimeError(f"the baseline deleted {deleted} rows, not {expired}")
        finally:
            runtime.close()
    mine, raw = expired / sweep_secs, expired / raw_secs
    how = (
        f"{swept.partitions} whole month(s) dropped, the rest row by row"
        if backend == "postgresql"
        else "batches of 10,000"
    )
    target = "target >= 0.5" if backend == "sqlite" else "no target: dropping months"
    print(
        f"retention[{backend}]: {CDRS:,} CDRs, {expired:,} expired; sweep {mine:,.0f} rows/s "
        f"({how}), plain DELETE {raw:,.0f} rows/s, ratio {mine / raw:.2f} ({target})"
    )
    record(
        Figure(
            "retention",
            backend,
            f"sweep of {expired:,} expired CDRs",
            mine,
            "rows/s",
            "plain DELETE",
            raw,
            target=">= 0.5" if backend == "sqlite" else "",
        )
    )


def main() -> None:
    for backend in backends():
        run(backend)


if __name__ == "__main__":
    main()
