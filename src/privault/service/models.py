"""Tables of the conference-call service: accounts, rooms, numbers, calls, purchases, posts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String
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


@personal_data(
    "registration",
    encrypted=("email_ct", "display_name_ct"),
    indexed=("email_index",),
    exported=("email_ct", "display_name_ct", "created_at", "email_verified_at", "closed_at"),
)
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
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@personal_data(
    "registration",
    encrypted=("room_id_ct",),
    indexed=("room_id_index",),
    exported=("room_id_ct", "created_at", "pin_changed_at"),
)
class Room(Base):
    """The room every account gets at registration; its Room ID is typed on a keypad."""

    __tablename__ = "rooms"

    subject_id: Mapped[str] = _subject_fk(primary_key=True)
    room_id_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    room_id_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # HMAC-SHA256 of the PIN, keyed with the keyring's pepper and bound to the room's owner.
    pin_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    pin_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@personal_data(
    "profile",
    encrypted=("value_ct",),
    json=("value_ct",),
    exported=("field", "value_ct", "visibility", "updated_at"),
)
class ProfileField(Base):
    """One optional profile field of P2.4, with its own visibility (P3.15)."""

    __tablename__ = "profile_fields"

    subject_id: Mapped[str] = _subject_fk(primary_key=True)
    field: Mapped[str] = mapped_column(String(40), primary_key=True)
    value_ct: Mapped[bytes] = mapped_column(LargeBinary)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data("registration", exported=("created_at", "expires_at"))
class LoginSession(Base):
    """A login. Only the token's digest is stored."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data("registration", exported=("expires_at",))
class EmailVerification(Base):
    """A pending email verification link; only the token's digest is stored."""

    __tablename__ = "email_verifications"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data("registration", exported=("created_at", "expires_at", "used_at"))
class PasswordReset(Base):
    """A password reset link sent by mail: only the token's digest is stored; a used link
    keeps its row (``used_at``) until the account goes, so it cannot be used twice."""

    __tablename__ = "password_resets"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# -- PIN checks from the PBX -------------------------------------------------------------


class PbxToken(Base):
    """A service token of a PBX; only its digest is stored."""

    __tablename__ = "pbx_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PinFailure(Base):
    """A wrong PIN. Keys are blind indexes (of the Room ID typed and of the caller number),
    never the values, and rows are purged once they no longer count for a lockout."""

    __tablename__ = "pin_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_key: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    caller_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class PinLockout(Base):
    """A room (by typed Room ID) or a caller refused every PIN until ``until``."""

    __tablename__ = "pin_lockouts"
    __table_args__ = (Index("ix_pin_lockouts_scope_key", "scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8))
    key: Mapped[bytes] = mapped_column(LargeBinary(32))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- Numbers -------------------------------------------------------------------------------


class DialInNumber(Base):
    """One of the service's own dial-in numbers (E.164), managed by the operator."""

    __tablename__ = "dial_in_numbers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    city: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data("service_input", encrypted=("name_ct",), exported=("id", "name_ct", "created_at"))
class NumberList(Base):
    """A room owner's named list of numbers to invite (P2.6)."""

    __tablename__ = "number_lists"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    name_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data(
    "service_input",
    encrypted=("number_ct", "label_ct"),
    indexed=("number_index",),
    exported=("id", "list_id", "number_ct", "label_ct", "created_at"),
)
class NumberListEntry(Base):
    """A number (E.164) with an optional label in one of the owner's lists."""

    __tablename__ = "number_list_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    list_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("number_lists.id", ondelete="CASCADE"), index=True
    )
    subject_id: Mapped[str] = _subject_fk(index=True)
    number_index: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    number_ct: Mapped[bytes] = mapped_column(LargeBinary)
    label_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- Calls ---------------------------------------------------------------------------------


@personal_data(
    "call_records",
    kept_from="started_at",
    encrypted=("caller_ct",),
    indexed=("caller_index",),
    exported=(
        "call_id",
        "caller_ct",
        "caller_country",
        "dial_in",
        "started_at",
        "answered_at",
        "ended_at",
        "duration",
        "billsec",
        "disposition",
        "ingested_at",
    ),
)
class CallRecord(Base):
    """A call detail record from the PBX, owned by the room's owner (P2.7).

    ``call_id`` is the PBX's unique id: ingest is idempotent on it.
    """

    __tablename__ = "call_records"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    caller_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    caller_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    caller_country: Mapped[str | None] = mapped_column(String(2))
    dial_in: Mapped[str | None] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration: Mapped[int] = mapped_column(Integer)
    billsec: Mapped[int] = mapped_column(Integer)
    disposition: Mapped[str] = mapped_column(String(16))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- Purchases and donations -------------------------------------------------------------


@personal_data(
    "transactions",
    # A purchase or a donation is a contract performed at once: it ends when it is made.
    kept_from="created_at",
    encrypted=(
        "billing_name_ct",
        "billing_address_ct",
        "phone_ct",
        "email_ct",
        "payment_token_ct",
        "card_last4_ct",
        "card_expiry_ct",
    ),
    exported=(
        "id",
        "kind",
        "item",
        "amount_minor",
        "currency",
        "billing_name_ct",
        "billing_address_ct",
        "phone_ct",
        "email_ct",
        "payment_token_ct",
        "card_brand",
        "card_last4_ct",
        "card_expiry_ct",
        "created_at",
    ),
)
class Purchase(Base):
    """A purchase or donation. The card is only the processor's token, brand, last four, expiry."""

    __tablename__ = "purchases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    item: Mapped[str] = mapped_column(String(120))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    billing_name_ct: Mapped[bytes] = mapped_column(LargeBinary)
    billing_address_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    payment_token_ct: Mapped[bytes] = mapped_column(LargeBinary)
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    card_expiry_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# -- Publication ---------------------------------------------------------------------------


@personal_data(
    "publications",
    encrypted=("username_ct",),
    indexed=("username_index",),
    exported=("username_ct", "created_at"),
)
class Username(Base):
    """The name a person's public profile page is found under (P2.9)."""

    __tablename__ = "usernames"

    subject_id: Mapped[str] = _subject_fk(primary_key=True)
    username_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    username_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data(
    "publications",
    encrypted=("body_ct",),
    exported=("id", "body_ct", "visibility", "created_at", "updated_at"),
)
class Post(Base):
    """A post with its own visibility: private by default (P3.15, P0.3)."""

    __tablename__ = "posts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    body_ct: Mapped[bytes] = mapped_column(LargeBinary)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- Messages to us ------------------------------------------------------------------------


@personal_data(
    "communications",
    kept_from="created_at",
    encrypted=("content_ct", "metadata_ct"),
    json=("metadata_ct",),
    exported=("id", "channel", "content_ct", "metadata_ct", "created_at"),
)
class Message(Base):
    """A message a person sent us (P2.10): content and metadata sealed under their key."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    channel: Mapped[str] = mapped_column(String(16))
    content_ct: Mapped[bytes] = mapped_column(LargeBinary)
    metadata_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# -- Anything else people send -------------------------------------------------------------


@personal_data(
    "other",
    kept_from="created_at",
    encrypted=("content_ct",),
    json=("content_ct",),
    exported=("id", "source", "content_ct", "created_at"),
)
class OtherItem(Base):
    """Something a person sent us that fits no other category (P2.11), such as a file a mail
    to us encloses: its name, type and content sealed together under their key, kept by the
    policy's retention of ``other`` from when it came."""

    __tablename__ = "other_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = _subject_fk(index=True)
    source: Mapped[str] = mapped_column(String(16))
    content_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
