"""Subjects and their wrapped data keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base

SUBJECT_ID = String(32)


class Subject(Base):
    """A person the service holds data about, registered or not."""

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(SUBJECT_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="person")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SubjectKey(Base):
    """A subject's data key, wrapped by a master key. Deleting it shreds the subject's data."""

    __tablename__ = "subject_keys"

    subject_id: Mapped[str] = mapped_column(
        SUBJECT_ID, ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True
    )
    master_key_id: Mapped[str] = mapped_column(String(40), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
