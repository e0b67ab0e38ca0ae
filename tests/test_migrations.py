"""The Alembic migrations produce exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

import privault.models  # noqa: F401  (registers every table on Base.metadata)
from privault.config import Settings
from privault.db import MIGRATIONS, Base, make_engine, migrate


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
