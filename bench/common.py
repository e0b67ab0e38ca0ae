"""Shared pieces of the benchmarks: a throwaway data folder per backend, and printing."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import text

from privault.config import Settings
from privault.db import make_engine

PG_URL = os.environ.get("PRIVAULT_BENCH_DATABASE_URL") or os.environ.get(
    "PRIVAULT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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
