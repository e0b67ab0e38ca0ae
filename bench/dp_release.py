"""A statistics release (issue 9) against the same aggregate as one raw SQL GROUP BY.

STATS_BENCH_CDRS call detail records (default 2,000,000) of PEOPLE room owners, spread
over the 24 months before NOW and over the dial-in numbers of five countries (one in
twenty on a number no longer listed), go in through the batch insert path. Timed: the
release ``calls_by_country`` for the statistics recipient (the query, small-cell
suppression, the CSV, the register entry) and, as the baseline, one plain
``SELECT ... GROUP BY`` of the same months, countries, distinct owners, calls and talk
time. Ratio: release seconds divided by baseline seconds; target <= 2.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from common import Figure, backends, data_folder, make_people, record
from privault.clock import FrozenClock
from privault.db import binder, insert_rows
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.models import CallRecord, DialInNumber

CDRS = int(os.environ.get("STATS_BENCH_CDRS", "2000000"))
PEOPLE = 2_000
BATCH = 50_000
NOW = datetime(2027, 1, 20, 9, 0, tzinfo=UTC)
SPAN = timedelta(days=730)
NUMBERS = {"FR": "+33176000001", "DE": "+4930900001", "IT": "+390200000001"}
NUMBERS |= {"ES": "+34910000001", "BE": "+3220000001"}
UNLISTED = "+31200000001"
DIALLED = [*NUMBERS.values()] * 4 + [UNLISTED]
COLUMNS = ("call_id", "subject_id", "dial_in", "started_at", "duration", "billsec")
COLUMNS += ("disposition", "ingested_at")
MONTH = {
    "sqlite": "substr(c.started_at, 1, 7)",
    "postgresql": "to_char(timezone('UTC', c.started_at), 'YYYY-MM')",
}


def fill(runtime: Runtime, subjects: list[str]) -> None:
    step = SPAN / CDRS
    with runtime.transaction() as session:
        session.add_all(
            DialInNumber(country=country, number=number, created_at=NOW)
            for country, number in NUMBERS.items()
        )
    for first in range(0, CDRS, BATCH):
        last = min(CDRS, first + BATCH)
        starts = [NOW - SPAN + step * n for n in range(first, last)]
        with runtime.transaction() as session:
            runtime.partitions.ensure(session, "call_records", starts)
            stamp = binder(session, CallRecord, "started_at")
            rows = []
            for n, moment in zip(range(first, last), starts, strict=True):
                at, seconds = stamp(moment), 60 + n % 600
                owner, dialled = subjects[n % len(subjects)], DIALLED[n % len(DIALLED)]
                rows.append((f"c{n}", owner, dialled, at, seconds, seconds - 5, "ANSWERED", at))
            insert_rows(session, CallRecord, COLUMNS, rows)


def baseline(runtime: Runtime, backend: str) -> list[tuple[str, str, int, int, int]]:
    query = text(
        f"SELECT {MONTH[backend]}, coalesce(d.country, 'ZZ'), count(DISTINCT c.subject_id), "
        "count(*), coalesce(sum(c.billsec), 0) FROM call_records c "
        "LEFT OUTER JOIN dial_in_numbers d ON d.number = c.dial_in GROUP BY 1, 2"
    )
    with runtime.factory() as session:
        return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def run(backend: str) -> None:
    with data_folder(backend) as settings:
        prepare(settings).dispose()
        runtime = open_runtime(settings, clock=FrozenClock(NOW))
        try:
            fill(runtime, [s for s, _ in make_people(runtime, PEOPLE)])
            baseline(runtime, backend)  # both timings start from a warm cache
            start = time.perf_counter()
            with runtime.transaction() as session:
                published = runtime.statistics(session).release(
                    "calls_by_country", "statistics_recipients"
                )
            release_secs = time.perf_counter() - start
            start = time.perf_counter()
            raw = baseline(runtime, backend)
            raw_secs = time.perf_counter() - start
        finally:
            runtime.close()
    if published.cells != len(raw):
        raise RuntimeError(f"the release has {published.cells} cells, the baseline {len(raw)}")
    print(
        f"statistics[{backend}]: {CDRS:,} CDRs, {published.cells} cells "
        f"({published.suppressed} suppressed); release {release_secs:.2f} s, "
        f"raw GROUP BY {raw_secs:.2f} s, ratio {release_secs / raw_secs:.2f} (target <= 2)"
    )
    record(
        Figure(
            "statistics",
            backend,
            f"release over {CDRS:,} CDRs",
            release_secs,
            "s",
            "raw GROUP BY",
            raw_secs,
            target="<= 2",
        )
    )


def main() -> None:
    for backend in backends():
        run(backend)


if __name__ == "__main__":
    main()
