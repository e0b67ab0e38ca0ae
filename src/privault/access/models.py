"""The access log: append-only, hash-chained."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base


class AccessLogEntry(Base):
    """One event. ``subject_id`` is a pseudonymous reference kept after the subject is erased."""

    __tablename__ = "access_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80), index=True)
    subject_id: Mapped[str | None] = mapped_column(String(32), index=True)
    categories: Mapped[str] = mapped_column(String(400), default="")
    purpose: Mapped[str | None] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AccessLogHead(Base):
    """The log's last entry as its writer left it: its number and a keyed tag over its hash.

    A chain alone cannot tell a log cut short at its end from one that simply ends there;
    the head can, and moving it back to an earlier entry needs the key. One row, ``id`` 1.
    """

    __tablename__ = "access_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    tag: Mapped[bytes] = mapped_column(LargeBinary(32))
