"""The Alembic migrations produce exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

import privault.models  # noqa: F401  (registers every table on Base.metadata)
from privault.config import Settings
from privault.db import MIGRATIONS, Base, alembic_config, make_engine, migrate


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_migrations_produce_exactly_the_models_schema(fresh_settings: Settings) -> None:
    engine = make_engine(fresh_settings.db_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
            tables = set(inspect(conn).get_table_names())
        assert diff == [], f"models and migrations disagree; add a migration: {diff}"
        assert set(Base.metadata.tables) <= tables
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrating_twice_changes_nothing(fresh_settings: Settings) -> None:
    engine = make_engine(fresh_settings.db_url)
    try:
        migrate(engine)
        first = current_revision(engine)
        migrate(engine)
        assert current_revision(engine) == first == head_revision()
    finally:
        engine.dispose()


def test_p8_3_accounts_from_before_0012_accepted_the_latest_version(
    fresh_settings: Settings,
) -> None:
    """Migration 0012 records every existing account as having accepted the latest stored
    version, so that only a version published afterwards asks them."""
    engine = make_engine(fresh_settings.db_url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0010")
            for version in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO policy_versions (version, sha256, source, text, loaded_at)"
                        " VALUES (:v, :h, 'kallu.toml', '', :at)"
                    ),
                    {"v": version, "h": f"{version:064d}", "at": now},
                )
            for subject in ("a" * 32, "b" * 32):
                conn.execute(
                    text("INSERT INTO subjects (id, kind, created_at) VALUES (:id, 'person', :at)"),
                    {"id": subject, "at": now},
                )
                conn.execute(
                    text(
                        "INSERT INTO accounts (subject_id, email_index, email_ct, password_hash,"
                        " created_at) VALUES (:id, :ix, :ct, 'x', :at)"
                    ),
                    {"id": subject, "ix": subject.encode(), "ct": b"sealed", "at": now},
                )
        migrate(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT subject_id, policy_version, accepted, source, ip_prefix"
                    " FROM policy_acceptances ORDER BY subject_id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("a" * 32, 2, True, "migration", None),
            ("b" * 32, 2, True, "migration", None),
        ]
    finally:
        engine.dispose()
