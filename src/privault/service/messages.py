"""Messages people send us (P2.10): content and metadata sealed as the sender's data.

The metadata kept is what the policy names (sender, date, subject) and no more: the subject
line, the channel, the time received, the sender's address for a visitor without an
account (a member is the account), and the network the message came from, truncated
(IPv4 /24, IPv6 /48) as for device data (P2.1), to deal with abuse of the open form. The
user agent is not kept: support does not need it and it helps fingerprint a browser.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.db import new_id
from privault.errors import InvalidInput
from privault.service.cards import redact, refuse_card_numbers
from privault.service.emails import check_email
from privault.service.errors import MessageNotFound
from privault.service.models import Message
from privault.vault import Field, Vault

#: What people write to us is read to deal with their inquiries and complaints.
PURPOSE = "support"
MAX_SUBJECT = 200
MAX_BODY = 10_000


class Channel(StrEnum):
    API = "api"
    WEB = "web"
    MAIL = "mail"


@dataclass(frozen=True)
class Draft:
    subject: str
    body: str


@dataclass(frozen=True)
class MessageView:
    id: str
    channel: Channel
    subject: str
    body: str
    received_at: datetime
    sender_email: str | None
    ip_prefix: str | None


def truncate_ip(host: str | None) -> str | None:
    """The network of an address: IPv4 to its /24, IPv6 to its /48; ``None`` if not an IP."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _clean(draft: Draft) -> Draft:
    subject = " ".join(draft.subject.split())
    if not subject:
        raise InvalidInput("the subject must not be empty", field="subject")
    if len(subject) > MAX_SUBJECT:
        raise InvalidInput(
            f"the subject must be at most {MAX_SUBJECT} characters long", field="subject"
        )
    if not draft.body.strip():
        raise InvalidInput("the message must not be empty", field="message")
    if len(draft.body) > MAX_BODY:
        raise InvalidInput(
            f"the message must be at most {MAX_BODY} characters long", field="message"
        )
    return Draft(subject, draft.body)


def _fields(message_id: str) -> tuple[Field, Field]:
    return (
        Field("messages", "content_ct", message_id),
        Field("messages", "metadata_ct", message_id),
    )


class MessageService:
    """Messages to support, from members (API or web form) and from visitors (web form)."""

    def __init__(self, session: Session, vault: Vault, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.clock = clock

    def send(self, subject_id: str, draft: Draft, channel: Channel, ip: str | None) -> MessageView:
        """Store a message from a person with an account.

        Raises ``InvalidInput`` saying what is wrong, ``CardNumberRefused``.
        """
        refuse_card_numbers([draft.subject, draft.body])
        return self._store(subject_id, _clean(draft), channel, ip, None)

    def send_as_visitor(self, email: str, draft: Draft, ip: str | None) -> MessageView:
        """Store a message from someone without an account, through the web form: they
        become a data subject of their own, their address kept inside the sealed metadata.

        Raises ``InvalidInput`` (the address or the draft), ``CardNumberRefused``.
        """
        refuse_card_numbers([email, draft.subject, draft.body])
        address = check_email(email, what="your email address")
        clean = _clean(draft)
        subject_id = self.vault.create_subject(self.session)
        return self._store(subject_id, clean, Channel.WEB, ip, address)

    def receive_mail(self, subject_id: str | None, sender: str, subject: str, body: str) -> str:
        """Store a mail sent to the privacy address as its sender's message; returns the
        subject id it is kept under. The sender is ``subject_id`` (an account whose
        registered address sent it) or, when ``None``, becomes a data subject of their
        own with the address in the sealed metadata. Mail is taken as it comes: card
        numbers are struck out, an over-long text is cut, no subject or text is said so."""
        title = " ".join(redact(subject).split())[:MAX_SUBJECT] or "(no subject)"
        text = redact(body).strip()
        if len(text) > MAX_BODY:
            text = text[: MAX_BODY - 40].rstrip() + "\n[the rest of the message was cut]"
        draft = Draft(title, text or "(the message had no text we could read)")
        if subject_id is None:
            subject_id = self.vault.create_subject(self.session)
            self._store(subject_id, draft, Channel.MAIL, None, sender)
        else:
            self._store(subject_id, draft, Channel.MAIL, None, None)
        return subject_id

    def _store(
        self, subject_id: str, draft: Draft, channel: Channel, ip: str | None, email: str | None
    ) -> MessageView:
        message_id = new_id()
        now = self.clock.now()
        metadata: dict[str, Any] = {
            "subject": draft.subject,
            "received_at": now.isoformat(),
            "ip_prefix": truncate_ip(ip),
        }
        if email is not None:
            metadata["sender_email"] = email
        content, meta = _fields(message_id)
        row = Message(
            id=message_id,
            subject_id=subject_id,
            channel=str(channel),
            content_ct=self.vault.encrypt(self.session, subject_id, content, draft.body),
            metadata_ct=self.vault.encrypt_json(self.session, subject_id, meta, metadata),
            created_at=now,
        )
        self.session.add(row)
        self.session.flush()
        self.audit.record(
            self.session,
            str(channel),
            Event.MESSAGE_RECEIVED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["communications"],
            detail={"message": message_id},
        )
        return self._view(row)

    def _view(self, row: Message) -> MessageView:
        content, meta = _fields(row.id)
        metadata = self.vault.decrypt_json(
            self.session, row.subject_id, meta, row.metadata_ct, purpose=PURPOSE
        )
        assert isinstance(metadata, dict)
        return MessageView(
            id=row.id,
            channel=Channel(row.channel),
            subject=metadata["subject"],
            body=self.vault.decrypt(
                self.session, row.subject_id, content, row.content_ct, purpose=PURPOSE
            ),
            received_at=aware(row.created_at),
            sender_email=metadata.get("sender_email"),
            ip_prefix=metadata.get("ip_prefix"),
        )

    def list_messages(self, subject_id: str) -> list[MessageView]:
        """The subject's own messages, newest first."""
        rows = self.session.scalars(
            select(Message)
            .where(Message.subject_id == subject_id)
            .order_by(Message.created_at.desc(), Message.id)
        )
        return [self._view(row) for row in rows]

    def read(self, subject_id: str, message_id: str) -> MessageView:
        """One of the subject's messages; ``MessageNotFound`` for anyone else's or none."""
        row = self.session.get(Message, message_id)
        if row is None or row.subject_id != subject_id:
            raise MessageNotFound("no such message")
        return self._view(row)
