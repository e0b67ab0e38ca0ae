"""Data-subject rights at scale (issue 4): an access export and an erasure among PEOPLE people
and CDRS call detail records, against raw baselines measured in the same run.

Data: PEOPLE people (subjects with data keys and rooms) made through the vault's batch
path (``common.make_people``), then CDRS synthetic CDRs through the library's
batch path, ``CdrService.ingest``, in batches of BATCH (sealed callers, blind indexes, the
real rows). A few chosen people own exactly OWN CDRs each, scattered over the whole run of
CDRs; the other CDRs go to the other people at random (about 20 each).

(a) Access export: ``Exporter.build`` for a person with OWN CDRs, then ``zip_bytes``
(data.json, one CSV per category, index.html), with the data keys dropped from memory
before each run; best of EXPORT_RUNS. Baseline, in the same run, best of EXPORT_RUNS
too, each run right after an export run (so neither gets a warmer cache or a quieter
moment), with the keys dropped: a raw indexed ``SELECT ... FROM call_records WHERE
subject_id = ?`` of the same person's exported columns through a DB-API cursor of
``engine.raw_connection()``, then each ``caller_ct`` opened with ``Vault.decrypt_many``
(which unwraps the person's data key once, as the export does, and opens each value with
AES-256-GCM). Target: export / baseline <= 3.

(b) Erasure: the crypto-shred, ``Vault.shred`` in its own transaction (the person's key row
deleted and committed), must not grow with the database. Timed for SHREDS people with OWN
CDRs each when the table holds EARLY CDRs, and for SHREDS others once it holds all CDRS;
the median and the slowest are printed. Target: < 100 ms on SQLite. Then the full erasure
of one more person with OWN CDRs through the real engine: a verified request filed by
staff, and ``Eraser.advance`` until "done" (retain what the law keeps, last notice, shred,
delete across the data map, on SQLite the WAL checkpoint); bench people have no account,
so no mail is waited for. A shredded person cannot go through the engine (its first step
opens the person's rows), so that person is another one than those shredded directly.

RIGHTS_BENCH_PEOPLE and RIGHTS_BENCH_CDRS scale the run down (defaults 100,000 and
2,000,000; EARLY is a tenth of CDRS). Every number is from a range reserved for fiction.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import sys
import time

from sqlalchemy import Engine, text

from cdr_ingest import callers, synthetic_cdr
from common import Figure, backends, data_folder, make_people, record
from privault.rights.export import Exporter
from privault.rights.models import RightsRequest
from privault.rights.service import Channel
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.cdrs import CdrIn
from privault.vault import Field

PEOPLE = int(os.environ.get("RIGHTS_BENCH_PEOPLE", "100000"))
CDRS = int(os.environ.get("RIGHTS_BENCH_CDRS", "2000000"))
EARLY = CDRS // 10
OWN = 2_000
SHREDS = 5
BATCH = 10_000
EXPORT_RUNS = 7
#: Exported columns of call_records, read by the baseline.
READ = (
    "call_id, caller_ct, caller_country, dial_in, started_at, answered_at, ended_at, "
    "duration, billsec, disposition, ingested_at"
)


class Plan:
    """Who owns each CDR: people 0..SHREDS-1 own OWN CDRs each among the first EARLY, the
    next 2 * SHREDS + 2 people (export, late shreds, engine erasure) OWN each anywhere; the
    rest are spread at random over the other people. CDRs come in order, as a PBX sends."""

    def __init__(self, rooms: list[str], seed: int) -> None:
        self.early = list(range(SHREDS))
        self.exported = SHREDS
        self.late = list(range(SHREDS + 1, 2 * SHREDS + 1))
        self.erased = 2 * SHREDS + 1
        chosen = 2 * SHREDS + 2
        if SHREDS * OWN > EARLY or chosen * OWN > CDRS or chosen >= PEOPLE:
            raise ValueError("too few CDRs or people for the chosen people")
        self.rooms = rooms
        self.chosen = chosen
        self.rng = random.Random(seed)
        self.owner: dict[int, int] = {}
        spots = self.rng.sample(range(EARLY), SHREDS * OWN)
        for n, at in enumerate(spots):
            self.owner[at] = n // OWN
        anywhere = [
            at
            for at in self.rng.sample(range(CDRS), (chosen - SHREDS) * OWN + SHREDS * OWN)
            if at not in self.owner
        ][: (chosen - SHREDS) * OWN]
        for n, at in enumerate(anywhere):
            self.owner[at] = SHREDS + n // OWN
        self.pool = callers(self.rng)

    def batch(self, first: int, last: int) -> list[CdrIn]:
        """CDRs number ``first`` to ``last - 1``, as cdr_ingest.make_cdrs writes them."""
        rng, pool = self.rng, self.pool
        out = []
        for i in range(first, last):
            person = self.owner.get(i)
            if person is None:
                person = rng.randrange(self.chosen, len(self.rooms))
            out.append(
                synthetic_cdr(
                    rng,
                    pool,
                    i,
                    CDRS,
                    self.rooms[person],
                    row=i - first + 1,
                    call_id=f"rights-{1704067200 + i}.{i}",
                )
            )
        return out


def ingest(runtime: Runtime, plan: Plan, first: int, last: int) -> float:
    """Ingest CDRs ``first`` to ``last - 1`` in batches of BATCH; returns the seconds spent
    in ``ingest`` (making the batches not counted)."""
    secs = 0.0
    for at in range(first, last, BATCH):
        cdrs = plan.batch(at, min(last, at + BATCH))
        start = time.perf_counter()
        with runtime.transaction() as session:
            accepted = runtime.cdrs(session).ingest(cdrs, actor="bench").accepted
        secs += time.perf_counter() - start
        if accepted != len(cdrs):
            raise RuntimeError(f"only {accepted} of {len(cdrs)} CDRs accepted")
    return secs


def count(runtime: Runtime, sql: str, subject_id: str) -> int:
    with runtime.factory() as session:
        return int(session.execute(text(sql), {"s": subject_id}).scalar_one())


def shred_ms(runtime: Runtime, subject_ids: list[str]) -> list[float]:
    """Milliseconds of each crypto-shred, one transaction (delete, commit) per person."""
    out = []
    for subject_id in subject_ids:
        if (
            count(runtime, "SELECT count(*) FROM call_records WHERE subject_id = :s", subject_id)
            != OWN
        ):
            raise RuntimeError("a chosen person does not own exactly OWN CDRs")
        start = time.perf_counter()
        with runtime.transaction() as session:
            runtime.vault.shred(session, subject_id)
        out.append((time.perf_counter() - start) * 1000)
        if count(runtime, "SELECT count(*) FROM subject_keys WHERE subject_id = :s", subject_id):
            raise RuntimeError("the shredded key is still there")
    return out


def export_secs(runtime: Runtime, subject_id: str) -> float:
    """One export, with the person's data key dropped from memory first."""
    runtime.vault.forget_cached_keys()
    start = time.perf_counter()
    with runtime.factory() as session:
        export = Exporter(session, runtime.vault, runtime.policy, runtime.clock).build(subject_id)
        archive = export.zip_bytes()
    secs = time.perf_counter() - start
    calls = [c for c in export.document["categories"] if c["id"] == "call_records"]
    if not archive or not calls or len(calls[0]["records"][0]["rows"]) != OWN:
        raise RuntimeError("the export does not hold the person's CDRs")
    return secs


def baseline_secs(runtime: Runtime, engine: Engine, subject_id: str) -> float:
    """One raw read of the same rows, opened, with the data key dropped first."""
    marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    sql = f"SELECT {READ} FROM call_records WHERE subject_id = {marker}"
    runtime.vault.forget_cached_keys()
    start = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql, (subject_id,))
        rows = cursor.fetchall()
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    with runtime.factory() as session:
        opened = runtime.vault.decrypt_many(
            session,
            subject_id,
            [(Field("call_records", "caller_ct", r[0]), r[1]) for r in rows if r[1]],
            purpose="legal",
        )
    secs = time.perf_counter() - start
    if len(rows) != OWN or not opened:
        raise RuntimeError("the baseline did not read the person's CDRs")
    return secs


def erasure(runtime: Runtime, subject_id: str) -> tuple[float, int, int]:
    """Milliseconds of a full erasure through the engine (filing included), rows and tables
    it deleted from."""
    eraser = runtime.rights_engine().eraser
    start = time.perf_counter()
    with runtime.transaction() as session:
        request_id = (
            runtime.rights(session)
            .file(subject_id, "erasure", Channel.STAFF, actor="bench", verified=True)
            .id
        )
    for _ in range(10):
        if eraser.advance(request_id) == "done":
            break
    else:
        raise RuntimeError("the erasure did not finish")
    ms = (time.perf_counter() - start) * 1000
    with runtime.factory() as session:
        request = session.get(RightsRequest, request_id)
        outcome = request.outcome if request else None
    found = re.search(r"erased (\d+) row\(s\) in (\d+) table", outcome or "")
    if found is None:
        raise RuntimeError(f"unexpected outcome {outcome!r}")
    if count(runtime, "SELECT count(*) FROM call_records WHERE subject_id = :s", subject_id):
        raise RuntimeError("the erased person's CDRs are still there")
    return ms, int(found[1]), int(found[2])


def run(backend: str) -> None:
    began = time.perf_counter()
    with data_folder(backend) as settings:
        engine = prepare(settings)
        runtime = open_runtime(settings)
        people = make_people(runtime, PEOPLE)
        plan = Plan([room for _, room in people], 13)
        subject = [subject_id for subject_id, _ in people]
        runtime.vault.forget_cached_keys()

        ingest_secs = ingest(runtime, plan, 0, EARLY)
        early = shred_ms(runtime, [subject[n] for n in plan.early])
        ingest_secs += ingest(runtime, plan, EARLY, CDRS)
        late = shred_ms(runtime, [subject[n] for n in plan.late])

        exported = subject[plan.exported]
        if (
            count(runtime, "SELECT count(*) FROM call_records WHERE subject_id = :s", exported)
            != OWN
        ):
            raise RuntimeError("the exported person does not own exactly OWN CDRs")
        # Interleaved, so that neither gets a warmer cache or a quieter moment.
        export = baseline = float("inf")
        for _ in range(EXPORT_RUNS):
            export = min(export, export_secs(runtime, exported))
            baseline = min(baseline, baseline_secs(runtime, engine, exported))
        erase_ms, erased_rows, erased_tables = erasure(runtime, subject[plan.erased])

        print(
            f"rights[{backend}]: {PEOPLE:,} people, {CDRS:,} CDRs (ingested at "
            f"{CDRS / ingest_secs:,.0f}/s); access export of a person with {OWN:,} CDRs "
            f"{export:.3f} s (best of {EXPORT_RUNS}), raw indexed SELECT + decrypt "
            f"{baseline:.3f} s, ratio {export / baseline:.2f} (target <= 3); crypto-shred of a "
            f"person with {OWN:,} CDRs {statistics.median(early):.1f} ms at {EARLY:,} CDRs "
            f"(slowest {max(early):.1f}), {statistics.median(late):.1f} ms at {CDRS:,} "
            f"(slowest {max(late):.1f}; median of {SHREDS} people, target < 100 ms); full "
            f"erasure through the engine {erase_ms:,.0f} ms, {erased_rows:,} rows deleted in "
            f"{erased_tables} tables; run {time.perf_counter() - began:,.0f} s",
            flush=True,
        )
        record(
            Figure(
                "rights",
                backend,
                f"access export, {OWN:,} CDRs",
                export,
                "s",
                "raw indexed SELECT + decrypt",
                baseline,
                target="<= 3",
            )
        )
        record(
            Figure(
                "rights",
                backend,
                f"crypto-shred at {CDRS:,} CDRs (median)",
                statistics.median(late),
                "ms",
                target="< 100 ms",
            )
        )
        runtime.close()
        engine.dispose()


def main() -> int:
    for backend in backends():
        run(backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
