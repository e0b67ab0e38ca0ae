"""Policy versions: when each was published and from when it is in force; the progress of
each version's notification mailing

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 18:56:01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_mailings",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("after", sa.String(length=32), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["version"],
            ["policy_versions.version"],
            name=op.f("fk_policy_mailings_version_policy_versions"),
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policy_mailings")),
    )
    # Versions stored before: published and in force when they were loaded.
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("effective_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE policy_versions SET published_at = loaded_at, effective_at = loaded_at")
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.alter_column(
            "published_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column(
            "effective_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            batch_op.f("ix_policy_versions_effective_at"), ["effective_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_versions_effective_at"))
        batch_op.drop_column("effective_at")
        batch_op.drop_column("published_at")
    op.drop_table("policy_mailings")
