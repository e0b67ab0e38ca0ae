"""The outbox: every mail the system sends, written with the change that causes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base
from privault.vault.datamap import personal_data
from privault.vault.models import SUBJECT_ID


@personal_data(
    "registration",
    encrypted=("payload_ct",),
    json=("payload_ct",),
    exported=("id", "template", "state", "created_at", "sent_at"),
)
class OutboxMessage(Base):
    """A mail to send. The sealed payload (address and template context) is dropped once sent."""

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        SUBJECT_ID, ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    template: Mapped[str] = mapped_column(String(60))
    payload_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: While a sweep is sending the mail (state "sending"): until when the claim holds.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(200))


class PolicyMailing(Base):
    """How far the mailing that tells every active account about a policy version got.

    Accounts are mailed in subject-id order, a batch a transaction; each batch moves
    ``after`` on in the same transaction as its mail, so a mailing cut short goes on from
    there and nobody gets the same version's mail twice."""

    __tablename__ = "policy_mailings"

    version: Mapped[int] = mapped_column(
        Integer, ForeignKey("policy_versions.version"), primary_key=True
    )
    #: The last subject id mailed ("" before the first batch); a pseudonymous id only.
    after: Mapped[str] = mapped_column(String(32), default="")
    queued: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
