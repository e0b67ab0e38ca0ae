"""What the intake keeps of each message it took, and the links that confirm a request.

Neither table holds personal data in the clear: a message is known by a keyed hash of its
Message-ID (to refuse a replay), and what it said is kept, sealed, as the sender's
communication (``messages``) or in the request it filed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base


class InboundMail(Base):
    """One message taken by the intake, and what came of it."""

    __tablename__ = "inbound_mail"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: Keyed hash of the Message-ID (of the whole message when it has none).
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: filed, unconfirmed, incomplete, support or unreadable (``mail.intake.Outcome``).
    outcome: Mapped[str] = mapped_column(String(16))
    #: How the sender was checked: dkim, dmarc or none.
    verified_by: Mapped[str] = mapped_column(String(8), default="none")
    #: How many requests it filed.
    requests: Mapped[int] = mapped_column(default=0)


class RequestConfirmation(Base):
    """A link sent to the registered address of a Room ID: following it confirms the
    requests a message filed without a verified sender (P9.3)."""

    __tablename__ = "request_confirmations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    request_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("rights_requests.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
