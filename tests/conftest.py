"""Fixtures: every database test runs on SQLite and, where configured, on PostgreSQL.

Each test runs inside a transaction that is rolled back at the end; the
services' own commits become savepoints. Tests that need committed data or
real processes use ``fresh_settings``, a data folder with a database of its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from factories import Person, register

# The whole session's log, scanned for personal data at its end: logscan's hooks, taken
# as this file's (factories imports logscan first, too early for ``pytest_plugins``).
from logscan import pytest_configure, pytest_sessionfinish, pytest_terminal_summary  # noqa: F401
from privault.clock import FrozenClock, SystemClock
from privault.config import Settings
from privault.db import make_engine, make_sessionmaker
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.pbx import PbxTokenService
from privault.web.app import create_app

PG_URL = os.environ.get("PRIVAULT_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _pg_schema_url(schema: str) -> str:
    assert PG_URL is not None
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"


class Database:
    """A database of its own: a SQLite file, or a PostgreSQL schema dropped afterwards."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend = backend
        self.schema = f"t_{secrets.token_hex(6)}"
        if backend == "sqlite":
            self.url = f"sqlite:///{folder / 'privault.db'}"
        else:
            admin = make_engine(PG_URL or "")
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            admin.dispose()
            self.url = _pg_schema_url(self.schema)

    def settings(self, folder: Path) -> Settings:
        # Still Argon2id, at a cost that keeps hundreds of test logins quick.
        return Settings(
            data_dir=folder, database_url=self.url, argon2_time_cost=1, argon2_memory_kib=8192
        )

    def drop(self) -> None:
        if self.backend == "postgresql":
            admin = make_engine(PG_URL or "")
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def base_settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder = tmp_path_factory.mktemp(f"data-{backend}")
    database = Database(backend, folder)
    settings = database.settings(folder)
    engine = prepare(settings)
    engine.dispose()
    yield settings
    database.drop()


@pytest.fixture(scope="session")
def engine(base_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(base_settings.db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def runtime(base_settings: Settings, connection: Connection) -> Runtime:
    return open_runtime(base_settings, factory=make_sessionmaker(connection), clock=SystemClock())


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def fresh_settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    """A data folder and database of this test's own, not initialised yet."""
    folder = tmp_path / "var"
    database = Database(backend, folder)
    yield database.settings(folder)
    database.drop()


@pytest.fixture
def served(fresh_settings: Settings) -> Iterator[TestClient]:
    """A client of an app on a data folder and database of this test's own."""
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    with TestClient(create_app(runtime)) as client:
        yield client
    runtime.close()


@pytest.fixture
def alice(runtime: Runtime) -> Person:
    """Alice owns a room."""
    return register(runtime, "alice")


@pytest.fixture
def bob(runtime: Runtime) -> Person:
    """Bob is another member."""
    return register(runtime, "bob")


@pytest.fixture
def mallory(runtime: Runtime) -> Person:
    """Mallory tries to reach what is not hers."""
    return register(runtime, "mallory")


@pytest.fixture
def pbx(runtime: Runtime) -> dict[str, str]:
    """Headers of a PBX holding a service token."""
    with runtime.transaction() as session:
        token = PbxTokenService(session, runtime.clock).create(f"pbx-{secrets.token_hex(3)}")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> FrozenClock:
    """A clock the test moves, starting on a winter morning."""
    return FrozenClock(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))


@pytest.fixture
def at(base_settings: Settings, runtime: Runtime, clock: FrozenClock) -> Runtime:
    """The test's runtime (same transaction) on ``clock``."""
    return open_runtime(base_settings, factory=runtime.factory, clock=clock)


@pytest.fixture
def client_at(at: Runtime) -> Iterator[TestClient]:
    """A client of an app on ``clock``."""
    with TestClient(create_app(at), raise_server_exceptions=False) as test_client:
        yield test_client
