"""Data-subject requests, their history, the exports they produced, and what erasure kept.

A request outlives the data it concerns: it is the proof that the request was
answered. So ``subject_id`` is a plain reference, not a foreign key, cleared when the
person is erased; ``subject_ref`` (a keyed hash of the subject id) stays as the proof.
The table is not in the data map (like the access log).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base
from privault.vault.datamap import outside_the_map, personal_data
from privault.vault.models import SUBJECT_ID


# What the person wrote with the request is their correspondence with us.
@outside_the_map("communications")
class RightsRequest(Base):
    __tablename__ = "rights_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str | None] = mapped_column(String(32), index=True)
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), index=True)
    #: What the person wrote with the request, sealed under their key (gone with it).
    details_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    extended_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    extension_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(Text)
    #: How far the sweep has carried the request (erasure: retained, notified, shredded...).
    step: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))


class RightsRequestEvent(Base):
    """One step of a request: who moved it to which state. Notes hold no personal data."""

    __tablename__ = "rights_request_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("rights_requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")


@personal_data("registration", encrypted=("archive_ct",), in_export=False)
class ExportDownload(Base):
    """An export waiting for its person: the zip sealed under their key, fetched once with
    a link (only its digest stored) and their session, within 7 days."""

    __tablename__ = "export_downloads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        SUBJECT_ID, ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    archive_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RetainedRecord(Base):
    """A row the law obliged us to keep when its person was erased (Art. 17(3)(b)): its
    exported values sealed under the keyring's retention key, restricted (read only to
    meet that obligation), and erased by the retention sweep at ``retain_until``."""

    __tablename__ = "retained_records"
    __table_args__ = (UniqueConstraint("source_table", "source_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_table: Mapped[str] = mapped_column(String(60))
    source_row: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    values_ct: Mapped[bytes] = mapped_column(LargeBinary)
    obligation: Mapped[str] = mapped_column(Text)
    #: The legal hold that keeps it, if one does; then it is kept until the hold ends.
    hold_id: Mapped[str | None] = mapped_column(String(32), index=True)
    retained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: None while a hold without an end keeps it.
    retain_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
