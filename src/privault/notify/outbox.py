"""Queueing mail in the caller's transaction and delivering it from the sweep."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from privault.clock import Clock, SystemClock
from privault.db import new_id
from privault.notify.models import OutboxMessage
from privault.notify.transport import Transport
from privault.vault import Field, Vault, VaultError

SUBJECTS = {
    "verify_email": "Confirm your email address",
    "account_closed": "Your account is closed",
    "rights_extended": "We need more time for your request",
    "rights_refused": "We cannot act on your request",
    "rights_completed": "Your request is done",
    "rights_export_ready": "Your data is ready to download",
    "erasure_done": "Your data is being erased",
    "erasure_held": "We must keep your data for now",
}
MAX_ATTEMPTS = 8

_templates = Environment(
    loader=PackageLoader("privault.notify", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


class Outbox:
    """Writes mail to send; the payload is sealed under the recipient's data key."""

    def __init__(self, vault: Vault, clock: Clock | None = None) -> None:
        self.vault = vault
        self.clock = clock or SystemClock()

    def enqueue(
        self, session: Session, subject_id: str, to: str, template: str, context: dict[str, Any]
    ) -> str:
        if template not in SUBJECTS:
            raise LookupError(f"no mail template {template!r}")
        message_id = new_id()
        now = self.clock.now()
        session.add(
            OutboxMessage(
                id=message_id,
                subject_id=subject_id,
                template=template,
                payload_ct=self.vault.encrypt_json(
                    session,
                    subject_id,
                    Field("outbox", "payload_ct", message_id),
                    {"to": to, "context": context},
                ),
                state="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
        return message_id

    def pending_for(self, session: Session, subject_id: str) -> int:
        """How many of the person's mails are still waiting to be sent."""
        return len(
            session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.subject_id == subject_id, OutboxMessage.state == "pending"
                )
            ).all()
        )

    def ids_of(self, session: Session, subject_id: str) -> list[str]:
        """The ids (and so the transport keys) of every mail to the person."""
        return list(
            session.scalars(select(OutboxMessage.id).where(OutboxMessage.subject_id == subject_id))
        )


class Mailer:
    """Renders and delivers pending outbox rows, with retries and backoff, never twice."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        vault: Vault,
        transport: Transport,
        sender: str,
        clock: Clock | None = None,
    ) -> None:
        self.factory = factory
        self.vault = vault
        self.transport = transport
        self.sender = sender
        self.clock = clock or SystemClock()

    def render(self, row_id: str, template: str, to: str, context: dict[str, Any]) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = SUBJECTS[template]
        message["Message-ID"] = make_msgid(idstring=row_id, domain="privault")
        message.set_content(_templates.get_template(f"{template}.txt").render(**context))
        message.add_alternative(
            _templates.get_template(f"{template}.html").render(**context), subtype="html"
        )
        return message

    def deliver_pending(self, limit: int = 100) -> int:
        """Send what is due; returns how many were sent. Each row has its own transaction."""
        sent = 0
        now = self.clock.now()
        with self.factory() as session:
            due = list(
                session.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now)
                    .order_by(OutboxMessage.created_at)
                    .limit(limit)
                )
            )
        for row_id in due:
            with self.factory() as session, session.begin():
                row = session.get(OutboxMessage, row_id, with_for_update=True)
                if row is None or row.state != "pending" or row.payload_ct is None:
                    continue
                try:
                    payload = self.vault.decrypt_json(
                        session,
                        row.subject_id,
                        Field("outbox", "payload_ct", row.id),
                        row.payload_ct,
                    )
                    assert isinstance(payload, dict)
                    # The transport is idempotent per row id, so a crash after sending and
                    # before this commit resends nothing on the next sweep.
                    self.transport.send(row.id, self.render(row.id, row.template, **payload))
                except (OSError, VaultError) as exc:
                    row.attempts += 1
                    row.last_error = type(exc).__name__
                    if row.attempts >= MAX_ATTEMPTS or isinstance(exc, VaultError):
                        row.state = "failed"
                    row.next_attempt_at = now + timedelta(minutes=2**row.attempts)
                    continue
                row.state = "sent"
                row.sent_at = self.clock.now()
                row.payload_ct = None
                sent += 1
        return sent
