"""A visit's length comes from its page views: no last_seen_at rewritten on every view

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("analytics_visits") as batch_op:
        batch_op.drop_column("last_seen_at")


def downgrade() -> None:
    with op.batch_alter_table("analytics_visits") as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE analytics_visits SET last_seen_at = COALESCE("
        "(SELECT MAX(at) FROM analytics_page_views v WHERE v.visit_id = analytics_visits.id),"
        " started_at)"
    )
    with op.batch_alter_table("analytics_visits") as batch_op:
        batch_op.alter_column("last_seen_at", nullable=False)
