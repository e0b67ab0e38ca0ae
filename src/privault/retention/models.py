"""Legal holds (P6.3). A hold names who placed it, why and until when; it covers the
data of some subjects, a category for everyone, or a category of some subjects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base


class LegalHold(Base):
    __tablename__ = "legal_holds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: A category of the policy, or None for every category of the subjects named.
    category: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    #: A confidential hold is not shown to the person (a gag order, an investigation).
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    placed_by: Mapped[str] = mapped_column(String(80))
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    review_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(80))


class LegalHoldSubject(Base):
    """A subject a hold covers. A plain reference, not a foreign key: a held person is not
    erased, and the hold must not vanish with them."""

    __tablename__ = "legal_hold_subjects"

    hold_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("legal_holds.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class SweepRun(Base):
    """One run of the retention sweep (P6.2): when, by whom, and (in ``SweepErased``) how
    many rows of which category it erased; never what they held."""

    __tablename__ = "retention_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    by: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: None while it runs, or when it stopped before the end (the next run goes on).
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SweepErased(Base):
    """What one run erased from one table: the category, the count, and how many whole
    monthly partitions were dropped (PostgreSQL)."""

    __tablename__ = "retention_erased"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("retention_runs.id", ondelete="CASCADE"), primary_key=True
    )
    table_name: Mapped[str] = mapped_column(String(60), primary_key=True)
    category: Mapped[str] = mapped_column(String(40))
    rows: Mapped[int] = mapped_column(BigInteger)
    partitions: Mapped[int] = mapped_column(Integer, default=0)
