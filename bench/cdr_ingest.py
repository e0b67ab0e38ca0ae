"""CDR ingest (P2.7) through the library's batch path and through HTTP, against raw baselines.

(a) Library: ROWS synthetic CDRs for ROOMS rooms through ``CdrService.ingest`` in batches
of BATCH (per-row checks, Room ID blind indexes, callers read into E.164, sealed under the
owner's key and blind-indexed, one executemany per batch), then the same rows, already
resolved (owner, E.164, bound timestamps) and in plaintext, with a DB-API executemany into a
table of the same shape (same columns, key, foreign key and indexes) in the same database.
Data keys and the phone-number cache are dropped before the timed run.

(b) HTTP, on each backend: a real ``privault serve --no-worker`` on 127.0.0.1 over a fresh
data folder with the same rooms; twice HTTP_ROWS CDRs posted as JSON batches of HTTP_BATCH, one
after another on a kept-alive connection (bodies encoded before timing). The first round
pays for unwrapping every room owner's data key and reading every caller once; the second
shows a server that has been running a while.

The rooms (subjects, data keys, sealed Room IDs) are made through the vault's batch path,
not by ROOMS registrations. Every number is from a range reserved for fiction.

Targets (issue 3): ratio >= 0.15 on SQLite; >= 20,000 CDRs/s through HTTP.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from sqlalchemy import text

from common import Figure, backends, data_folder, free_port, make_people, record, served
from privault.config import Settings
from privault.db import bind_value, make_engine
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.cdrs import CdrIn, RowResult
from privault.service.models import CallRecord
from privault.service.pbx import PbxTokenService
from privault.service.phones import read_number

ROWS = 500_000
ROOMS = 10_000
BATCH = 10_000
HTTP_ROWS = 100_000
HTTP_BATCH = 1_000
DIAL_INS = {"GB": "+442079460000", "FR": "+33199000100", "US": "+12025550100"}


def callers(rng: random.Random) -> list[tuple[str, str]]:
    """(caller as the network sends it, its country): fictional ranges, in several formats."""
    pool = [(f"+447700900{n:03d}", "GB") for n in range(1000)]
    pool += [(f"06399{n:05d}", "FR") for n in range(0, 100_000, 7)]  # national: 06 39 9x xx xx
    pool += [(f"1{area}55501{n:02d}", "US") for area in range(201, 290) for n in range(100)]
    rng.shuffle(pool)
    return pool


def make_rooms(runtime: Runtime) -> list[str]:
    """ROOMS rooms through the vault's batch path; returns their Room IDs."""
    return [room_id for _, room_id in make_people(runtime, ROOMS)]


EPOCH = datetime(2024, 1, 1)


def synthetic_cdr(
    rng: random.Random, pool: list[tuple[str, str]], i: int, count: int, room_id: str, **ids: Any
) -> CdrIn:
    """CDR ``i`` of ``count`` for ``room_id``: a caller from ``pool`` (one in ten withheld),
    nine in ten answered; ``ids`` gives ``row`` and ``call_id``."""
    caller, country = pool[rng.randrange(len(pool))]
    if rng.random() < 0.1:
        caller = "anonymous"
    # A PBX writes CDRs as calls end: they come roughly in time order, over 180 days.
    start = EPOCH + timedelta(seconds=i * 180 * 86400 // count + rng.randrange(60))
    answered = rng.random() < 0.9
    ring = rng.randrange(1, 6)
    talk = rng.randrange(0, 3600) if answered else 0
    end = start + timedelta(seconds=ring + talk)
    return CdrIn(
        room_id=room_id,
        caller=caller,
        dial_in=DIAL_INS[country],
        start=start.strftime("%Y-%m-%d %H:%M:%S"),
        answer=(start + timedelta(seconds=ring)).strftime("%Y-%m-%d %H:%M:%S")
        if answered
        else None,
        end=end.strftime("%Y-%m-%d %H:%M:%S"),
        duration=ring + talk,
        billsec=talk,
        disposition="ANSWERED" if answered else rng.choice(["NO ANSWER", "BUSY"]),
        **ids,
    )


def make_cdrs(room_ids: list[str], count: int, seed: int, prefix: str) -> list[CdrIn]:
    rng = random.Random(seed)
    pool = callers(rng)
    return [
        synthetic_cdr(
            rng,
            pool,
            i,
            count,
            room_ids[rng.randrange(len(room_ids))],
            row=i + 1,
            call_id=f"{prefix}{1704067200 + i}.{i}",
        )
        for i in range(count)
    ]


def plain_rows(runtime: Runtime, cdrs: list[CdrIn]) -> list[tuple[object, ...]]:
    """The same rows as the plain baseline writes them: owner, E.164 and bound times ready."""
    with runtime.transaction() as session:
        owners = dict(session.execute(text("SELECT room_id_index, subject_id FROM rooms")).all())

        def bound(value: str | None) -> object:
            if not value:
                return None
            return bind_value(
                session, CallRecord, "started_at", datetime.fromisoformat(value).replace(tzinfo=UTC)
            )

        now = bound(datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
        rows = []
        for c in cdrs:
            dial = read_number(c.dial_in or "")
            number = (
                None if c.caller == "anonymous" else read_number(c.caller or "", dial and dial[1])
            )
            rows.append(
                (
                    c.call_id,
                    owners[runtime.vault.blind_index("room_id", c.room_id)],
                    number[0] if number else None,
                    number[1] if number else None,
                    dial[0] if dial else None,
                    bound(c.start),
                    bound(c.answer),
                    bound(c.end),
                    c.duration,
                    c.billsec,
                    c.disposition,
                    now,
                )
            )
    return rows


def plain_executemany(
    settings: Settings, runtime: Runtime, cdrs: Sequence[CdrIn | RowResult], batch: int
) -> float:
    """Rows a second of a DB-API executemany of ``cdrs`` (resolved, in plaintext) into a
    table shaped like call_records, in transactions of ``batch`` rows."""
    backend = "postgresql" if settings.db_url.startswith("postgresql") else "sqlite"
    timestamp = "TIMESTAMP WITH TIME ZONE" if backend == "postgresql" else "DATETIME"
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE bench_plain_cdrs (call_id VARCHAR(64) PRIMARY KEY, "
                "subject_id VARCHAR(32) NOT NULL REFERENCES subjects(id) ON DELETE CASCADE, "
                "caller VARCHAR(20), caller_country VARCHAR(2), dial_in VARCHAR(20), "
                f"started_at {timestamp} NOT NULL, answered_at {timestamp}, "
                f"ended_at {timestamp}, duration INTEGER NOT NULL, billsec INTEGER NOT NULL, "
                f"disposition VARCHAR(16) NOT NULL, ingested_at {timestamp} NOT NULL)"
            )
        )
        for column in ("subject_id", "caller", "started_at"):
            conn.execute(
                text(f"CREATE INDEX ix_bench_plain_{column} ON bench_plain_cdrs ({column})")
            )
    plain = plain_rows(runtime, [c for c in cdrs if isinstance(c, CdrIn)])
    marker = "?" if backend == "sqlite" else "%s"
    sql = f"INSERT INTO bench_plain_cdrs VALUES ({', '.join([marker] * 12)})"
    raw = engine.raw_connection()
    start = time.perf_counter()
    for i in range(0, len(plain), batch):
        cursor = raw.cursor()
        if backend == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(sql, plain[i : i + batch])
        raw.commit()
        cursor.close()
    secs = time.perf_counter() - start
    raw.close()
    engine.dispose()
    return len(plain) / secs


def library(backend: str) -> None:
    with data_folder(backend) as settings:
        engine = prepare(settings)
        runtime = open_runtime(settings)
        room_ids = make_rooms(runtime)
        cdrs: list[CdrIn | RowResult] = list(make_cdrs(room_ids, ROWS, 7, "lib-"))
        runtime.vault.forget_cached_keys()
        read_number.cache_clear()

        start = time.perf_counter()
        accepted = 0
        for i in range(0, ROWS, BATCH):
            with runtime.transaction() as session:
                accepted += (
                    runtime.cdrs(session).ingest(cdrs[i : i + BATCH], actor="bench").accepted
                )
        vault_secs = time.perf_counter() - start
        if accepted != ROWS:
            raise RuntimeError(f"only {accepted} of {ROWS} CDRs accepted")

        plain_rate = plain_executemany(settings, runtime, cdrs, BATCH)
        vault_rate = ROWS / vault_secs
        print(
            f"cdr_ingest[{backend}]: {ROWS} CDRs, {ROOMS} rooms, batches of {BATCH}; "
            f"library {vault_rate:,.0f} CDRs/s, plain executemany {plain_rate:,.0f} rows/s, "
            f"ratio {vault_rate / plain_rate:.3f}"
            + ("  (target >= 0.15)" if backend == "sqlite" else ""),
            flush=True,
        )
        record(
            Figure(
                "cdr_ingest",
                backend,
                f"{ROWS:,} CDRs through the library",
                vault_rate,
                "CDRs/s",
                "plain executemany",
                plain_rate,
                target=">= 0.15" if backend == "sqlite" else "",
            )
        )
        runtime.close()
        engine.dispose()


def over_http(backend: str) -> None:
    with data_folder(backend) as settings:
        prepare(settings).dispose()
        runtime = open_runtime(settings)
        room_ids = make_rooms(runtime)
        with runtime.transaction() as session:
            token = PbxTokenService(session, runtime.clock).create("bench")
        runtime.close()
        fields = ("call_id", "room_id", "caller", "dial_in", "start", "answer", "end")
        fields += ("duration", "billsec", "disposition")
        cdrs = make_cdrs(room_ids, 2 * HTTP_ROWS + HTTP_BATCH, 11, "http-")
        bodies = [
            json.dumps(
                {"cdrs": [dict(zip(fields, c[1:], strict=True)) for c in cdrs[i : i + HTTP_BATCH]]}
            ).encode()
            for i in range(0, len(cdrs), HTTP_BATCH)
        ]
        rounds = HTTP_ROWS // HTTP_BATCH
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with (
            served(settings, free_port()) as base,
            httpx2.Client(base_url=base, headers=headers, timeout=60) as client,
        ):
            client.post("/api/v1/pbx/cdrs", content=bodies[0]).raise_for_status()
            rates = []
            for part in (bodies[1 : 1 + rounds], bodies[1 + rounds :]):
                start = time.perf_counter()
                for body in part:
                    response = client.post("/api/v1/pbx/cdrs", content=body)
                    if response.status_code != 200 or b'"accepted":1000,' not in response.content:
                        raise RuntimeError(f"unexpected answer {response.status_code}")
                rates.append(HTTP_ROWS / (time.perf_counter() - start))
        runtime = open_runtime(settings)
        ceiling = plain_executemany(settings, runtime, cdrs[HTTP_BATCH:], HTTP_BATCH)
        runtime.close()
        print(
            f"cdr_ingest[http, {backend}]: JSON batches of {HTTP_BATCH} CDRs "
            f"({len(bodies[1]) // 1024} KiB each) posted one after another to one server "
            f"process; first {HTTP_ROWS} after start {rates[0]:,.0f} CDRs/s, next {HTTP_ROWS} "
            f"{rates[1]:,.0f} CDRs/s (target >= 20,000 CDRs/s); plain executemany of the same "
            f"{2 * HTTP_ROWS} rows in transactions of {HTTP_BATCH}: {ceiling:,.0f} rows/s",
            flush=True,
        )
        record(
            Figure(
                "cdr_ingest",
                backend,
                f"CDRs over HTTP, batches of {HTTP_BATCH}",
                rates[1],
                "CDRs/s",
                "plain executemany",
                ceiling,
                target=">= 20,000 CDRs/s",
            )
        )


def main() -> int:
    for backend in backends():
        library(backend)
    for backend in backends():
        over_http(backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
