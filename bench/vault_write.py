"""Encrypted profile writes through the vault's batch path against a plain executemany.

Writes ROWS profile field values (five text fields per synthetic subject) through
``ProfileService.import_values`` (validate, seal with the subject's data key
under AES-256-GCM bound to table/column/row, one executemany per batch), then
the same rows as plaintext with a DB-API executemany into a table of the same
shape in the same database. Data keys are dropped from memory before the timed
run, so unwrapping them is part of the cost.

Target (issue 2): ratio >= 0.25 on SQLite.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from sqlalchemy import text

from common import Figure, backends, data_folder, record
from privault.db import bind_value, make_engine
from privault.runtime import open_runtime, prepare
from privault.service.models import ProfileField
from privault.service.profile import Visibility

ROWS = 200_000
BATCH = 10_000
FIELDS = ("name", "gender", "relationship_status", "education", "employment")


def run(backend: str) -> float:
    with data_folder(backend) as settings:
        engine = prepare(settings)
        runtime = open_runtime(settings)
        subjects_needed = ROWS // len(FIELDS)
        with runtime.transaction() as session:
            subjects = runtime.vault.create_subjects(session, subjects_needed)
        rows = [
            (subject, field, f"{field} value {i}", Visibility.PRIVATE)
            for i, subject in enumerate(subjects)
            for field in FIELDS
        ]
        runtime.vault.forget_cached_keys()

        start = time.perf_counter()
        for i in range(0, ROWS, BATCH):
            with runtime.transaction() as session:
                runtime.profiles(session).import_values(rows[i : i + BATCH])
        vault_secs = time.perf_counter() - start

        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE bench_plain (subject_id VARCHAR(32), field VARCHAR(40), "
                    "value TEXT, visibility VARCHAR(16), updated_at TIMESTAMP, "
                    "PRIMARY KEY (subject_id, field))"
                )
            )
        # The same timestamp value the vault path hands the driver, so only sealing differs.
        with runtime.transaction() as session:
            stamp = bind_value(session, ProfileField, "updated_at", datetime.now(UTC))
        plain = [(s, f, v, str(vis), stamp) for s, f, v, vis in rows]
        marker = "?" if backend == "sqlite" else "%s"
        sql = f"INSERT INTO bench_plain VALUES ({', '.join([marker] * 5)})"
        raw = make_engine(settings.db_url).raw_connection()
        start = time.perf_counter()
        for i in range(0, ROWS, BATCH):
            cursor = raw.cursor()
            if backend == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, plain[i : i + BATCH])
            raw.commit()
            cursor.close()
        plain_secs = time.perf_counter() - start
        raw.close()

        vault_rate, plain_rate = ROWS / vault_secs, ROWS / plain_secs
        ratio = vault_rate / plain_rate
        print(
            f"vault_write[{backend}]: {ROWS} rows; vault {vault_rate:,.0f} rows/s, "
            f"plain executemany {plain_rate:,.0f} rows/s, ratio {ratio:.3f}"
            + ("  (target >= 0.25)" if backend == "sqlite" else "")
        )
        record(
            Figure(
                "vault_write",
                backend,
                f"{ROWS:,} encrypted profile values",
                vault_rate,
                "rows/s",
                "plain executemany",
                plain_rate,
                target=">= 0.25" if backend == "sqlite" else "",
            )
        )
        engine.dispose()
        return ratio


def main() -> int:
    for backend in backends():
        run(backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
