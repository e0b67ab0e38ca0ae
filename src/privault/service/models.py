"""Accounts, rooms, profiles and login sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base
from privault.vault.datamap import personal_data
from privault.vault.models import SUBJECT_ID


def _subject_fk(*, primary_key: bool = False, index: bool = False) -> Mapped[str]:
    return mapped_column(
        SUBJECT_ID,
        ForeignKey("subjects.id", ondelete="CASCADE"),
        primary_key=primary_key,
        index=index,
    )


@personal_data("registration", encrypted=("email_ct", "display_name_ct"), indexed=("email_index",))
class Account(Base):
    """A registered person. The email is sealed; look-ups go through its blind index."""

    __tablename__ = "accounts"

    subject_id: Mapped[str] = _subject_fk(primary_key=True)
    email_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    email_ct: Mapped[bytes] = mapped_column(LargeBinary)
    display_name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@personal_data("registration", encrypted=("room_id_ct",), indexed=("room_id_index",))
class Room(Base):
    """The room every account gets at registration; its Room ID is typed on a keypad."""

    __tablename__ = "rooms"

    subject_id: Mapped[str] = _subject_fk(primary_key=True)
    room_id_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    room_id_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data("profile", encrypted=("value_ct",))
class ProfileField(Base):
    """One optional profile field of P2.4, with its own visibility (P3.15)."""

    __tablename__ = "profile_fields"

    subject_id: Mapped[str] = _subject_fk(primary_key=True)
    field: Mapped[str] = mapped_column(String(40), primary_key=True)
    value_ct: Mapped[bytes] = mapped_column(LargeBinary)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data("registration")
class LoginSession(Base):
    """A login. Only the token's digest is stored."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data("registration")
class EmailVerification(Base):
    """A pending email verification link; only the token's digest is stored."""

    __tablename__ = "email_verifications"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
