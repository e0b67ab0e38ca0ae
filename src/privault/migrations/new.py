"""Autogenerate a migration from the models: `python -m privault.migrations.new "message"`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from privault.db import alembic_config, make_engine, migrate


def main() -> None:
    message = " ".join(sys.argv[1:]) or "schema change"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'm.db'}")
        migrate(engine)
        with engine.begin() as conn:
            command.revision(alembic_config(conn), message=message, autogenerate=True)


if __name__ == "__main__":
    main()
