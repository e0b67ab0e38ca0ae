"""the head of the access log, which catches a log cut short at its end (P7.1): access_log_head

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 21:27:17.536149
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The head of a log written before this is set by `prepare` right after (it needs the
    # keyring, which migrations never see).
    op.create_table(
        "access_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tag", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log_head")),
    )


def downgrade() -> None:
    op.drop_table("access_log_head")
