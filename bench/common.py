"""Shared pieces of the benchmarks: a throwaway data folder per backend, served processes,
and the figures each benchmark records for bench/REPORT.md."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx2
from sqlalchemy import text

from privault.config import Settings
from privault.db import bind_value, insert_rows, make_engine
from privault.runtime import Runtime
from privault.service.models import Room
from privault.vault import Field

STARTUP_SECONDS = 180  # a loaded machine has taken over a minute
PG_URL = os.environ.get("PRIVAULT_BENCH_DATABASE_URL") or os.environ.get(
    "PRIVAULT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Figure:
    """One measured figure beside the raw baseline measured in the same run (none for an
    absolute target such as a latency bound)."""

    bench: str
    backend: str
    figure: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    target: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None:
            return None
        return self.value / self.baseline_value


#: Every figure recorded in this process, in order; bench/run.py writes them to REPORT.md.
FIGURES: list[Figure] = []


def record(figure: Figure) -> None:
    """Keeps a figure for the report; each benchmark prints its own line as well."""
    FIGURES.append(figure)


def postgres_reachable() -> bool:
    try:
        engine = make_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@contextmanager
def data_folder(backend: str) -> Iterator[Settings]:
    """Settings for a fresh data folder on ``backend`` ("sqlite" or "postgresql"), removed after."""
    with tempfile.TemporaryDirectory(prefix="privault-bench-") as tmp:
        folder = Path(tmp) / "var"
        if backend == "sqlite":
            yield Settings(data_dir=folder)
            return
        schema = f"bench_{secrets.token_hex(4)}"
        admin = make_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in PG_URL else "?"
        try:
            yield Settings(
                data_dir=folder,
                database_url=f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}",
            )
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def backends() -> list[str]:
    return ["sqlite"] + (["postgresql"] if postgres_reachable() else [])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(settings: Settings, port: int) -> Iterator[str]:
    """`privault serve` as a child process on 127.0.0.1:port; stopped (by its pid) after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVAULT_")}
    env |= {"PRIVAULT_DATA_DIR": str(settings.data_dir), "PRIVAULT_DATABASE_URL": settings.db_url}
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "privault.cli", "serve", "--port", str(port), "--no-worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if process.poll() is not None:
                    errors.seek(0)
                    raise RuntimeError(f"privault serve exited:\n{errors.read().decode()[-2000:]}")
                try:
                    if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("privault serve did not answer /healthz in time")
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


BATCH = 10_000


def make_people(runtime: Runtime, count: int) -> list[tuple[str, str]]:
    """``count`` people with rooms through the vault's batch path (subjects, data keys,
    sealed and blind-indexed Room IDs), in transactions of BATCH; returns (subject id,
    Room ID) for each."""
    people = []
    for first in range(0, count, BATCH):
        room_ids = [str(4_000_000_000 + 7919 * i) for i in range(first, min(count, first + BATCH))]
        with runtime.transaction() as session:
            subjects = runtime.vault.create_subjects(session, len(room_ids))
            sealed = runtime.vault.encrypt_many(
                session,
                [
                    (s, Field("rooms", "room_id_ct", s), r)
                    for s, r in zip(subjects, room_ids, strict=True)
                ],
            )
            now = bind_value(session, Room, "created_at", datetime.now(UTC))
            insert_rows(
                session,
                Room,
                ("subject_id", "room_id_index", "room_id_ct", "created_at"),
                [
                    (s, runtime.vault.blind_index("room_id", r), ct, now)
                    for s, r, ct in zip(subjects, room_ids, sealed, strict=True)
                ],
            )
        people += zip(subjects, room_ids, strict=True)
    return people
