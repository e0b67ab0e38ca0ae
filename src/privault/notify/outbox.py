"""Queueing mail in the caller's transaction and delivering it from the sweep."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from enum import StrEnum
from typing import Any, cast
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateError, select_autoescape
from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from privault.clock import Clock, SystemClock
from privault.db import new_id
from privault.notify.models import OutboxMessage
from privault.notify.transport import Transport
from privault.vault import Field, Vault, VaultError

log = logging.getLogger("privault.outbox")


class Kind(StrEnum):
    """Why a mail is sent: a notice is owed to the person; the others they may refuse."""

    NOTICE = "notice"
    MARKETING = "marketing"
    NEWSLETTER = "newsletter"


@dataclass(frozen=True)
class MailTemplate:
    """A mail the system sends: ``<name>.txt`` and ``<name>.html`` in ``templates/``."""

    subject: str
    kind: Kind = Kind.NOTICE
    #: The policy's purpose for which the mail's address and words are opened to send it.
    purpose: str = "notices"

    @property
    def unsubscribable(self) -> bool:
        """Whether the mail carries a one-click unsubscribe link (RFC 8058, P0.2)."""
        return self.kind is not Kind.NOTICE


#: Answering data-subject requests is the purpose "legal" (a legal obligation, Art. 12-22).
_RIGHTS = "legal"
TEMPLATES: dict[str, MailTemplate] = {
    "verify_email": MailTemplate("Confirm your email address"),
    "account_closed": MailTemplate("Your account is closed"),
    "password_reset": MailTemplate("Set a new password"),
    "rights_extended": MailTemplate("We need more time for your request", purpose=_RIGHTS),
    "rights_refused": MailTemplate("We cannot act on your request", purpose=_RIGHTS),
    "rights_completed": MailTemplate("Your request is done", purpose=_RIGHTS),
    "rights_export_ready": MailTemplate("Your data is ready to download", purpose=_RIGHTS),
    "erasure_done": MailTemplate("Your data is being erased", purpose=_RIGHTS),
    "erasure_held": MailTemplate("We must keep your data for now", purpose=_RIGHTS),
    "rights_received": MailTemplate("We have your request", purpose=_RIGHTS),
    "rights_confirm": MailTemplate("Confirm your request about your data", purpose=_RIGHTS),
    "rights_pending": MailTemplate("Your request: we need to confirm it is yours", purpose=_RIGHTS),
    "request_incomplete": MailTemplate("Your request is missing something", purpose=_RIGHTS),
    "newsletter": MailTemplate("News from Kallu", Kind.NEWSLETTER, "newsletters"),
    "newsletter_confirm": MailTemplate(
        "Confirm your newsletter subscription", purpose="newsletters"
    ),
    "marketing": MailTemplate("News and offers from Kallu", Kind.MARKETING, "marketing"),
    # P8.2: owed to every account, so a notice (no unsubscribe), read for "notices".
    "policy_changed": MailTemplate("Our privacy policy is changing"),
}
#: Where a mail stands: waiting (perhaps for a retry), claimed by a sweep, sent, given up.
STATES = ("pending", "sending", "sent", "failed")
MAX_ATTEMPTS = 8
#: How long a sweep may take to send a mail it claimed before another sweep may take it over
#: (the setting PRIVAULT_OUTBOX_LEASE).
LEASE = timedelta(minutes=10)

_templates = Environment(
    loader=PackageLoader("privault.notify", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def template_of(name: str) -> MailTemplate:
    """The template called ``name``; raises LookupError when there is none."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise LookupError(f"no mail template {name!r}") from None


def _check_unsubscribe_url(name: str, context: dict[str, Any]) -> None:
    url = context.get("unsubscribe_url")
    if not isinstance(url, str) or not url:
        raise ValueError(
            f"a {name} mail needs an unsubscribe_url in its context: "
            "people must be able to unsubscribe with one click (RFC 8058)"
        )
    parts = urlsplit(url)
    plain = not any(c in url for c in " <>\r\n")
    if parts.scheme not in ("https", "http") or not parts.netloc or not plain:
        raise ValueError(f"the unsubscribe_url of a {name} mail must be an absolute http(s) URL")


@dataclass(frozen=True)
class OutboxEntry:
    """What may be shown of a queued mail: never its address or its words (they are sealed)."""

    id: str
    template: str
    state: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class Outbox:
    """Writes mail to send; the payload is sealed under the recipient's data key."""

    def __init__(self, vault: Vault, clock: Clock | None = None) -> None:
        self.vault = vault
        self.clock = clock or SystemClock()

    def enqueue(
        self, session: Session, subject_id: str, to: str, template: str, context: dict[str, Any]
    ) -> str:
        """Queue a mail in the caller's transaction; returns its id. Raises LookupError for
        an unknown template, ValueError for a newsletter or marketing mail without an
        ``unsubscribe_url``."""
        if template_of(template).unsubscribable:
            _check_unsubscribe_url(template, context)
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
        """How many of the person's mails are still waiting to be sent (or being sent)."""
        return len(
            session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.subject_id == subject_id,
                    OutboxMessage.state.in_(("pending", "sending")),
                )
            ).all()
        )

    def ids_of(self, session: Session, subject_id: str) -> list[str]:
        """The ids (and so the transport keys) of every mail to the person."""
        return list(
            session.scalars(select(OutboxMessage.id).where(OutboxMessage.subject_id == subject_id))
        )

    def recent(
        self, session: Session, state: str | None = None, limit: int = 50
    ) -> list[OutboxEntry]:
        """The newest mails first, in ``state`` if given; no address, no words."""
        query = select(
            OutboxMessage.id,
            OutboxMessage.template,
            OutboxMessage.state,
            OutboxMessage.attempts,
            OutboxMessage.created_at,
            OutboxMessage.sent_at,
            OutboxMessage.last_error,
        )
        if state is not None:
            query = query.where(OutboxMessage.state == state)
        query = query.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id).limit(limit)
        return [OutboxEntry(*row) for row in session.execute(query)]


@dataclass(frozen=True)
class _Claim:
    id: str
    template: str
    #: The row's attempts after the claim: with state "sending", it names this claim.
    attempt: int
    to: str
    context: dict[str, Any]


class Mailer:
    """Renders and delivers due outbox rows, with retries and backoff, never twice at once.

    Each row is claimed in a short transaction (state "sending" for a lease of ``LEASE``),
    sent outside any transaction, then settled in a second one. Two sweeps, in two
    processes, never both send a row: the claim is a conditional UPDATE and only the one
    whose UPDATE changed the row goes on. A crash loses nothing: a row left "sending" is
    taken again once its lease (``lease``) has passed.

    The one window for a second copy: a crash after the relay accepted a mail and before
    it was marked sent leaves it "sending"; after the lease it is sent again, with the same
    Message-ID (from the row id). The maildir transport drops it as already delivered; over
    SMTP the same Message-ID lets the receiving side drop it.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        vault: Vault,
        transport: Transport,
        sender: str,
        clock: Clock | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.factory = factory
        self.vault = vault
        self.transport = transport
        self.lease = lease
        self.sender = sender
        self.clock = clock or SystemClock()
        self.domain = parseaddr(sender)[1].rpartition("@")[2] or "privault"

    def render(self, row_id: str, template: str, to: str, context: dict[str, Any]) -> EmailMessage:
        """The mail as sent: a plain and an HTML part; a Message-ID from the row id, the
        same at every attempt; for a mail people may refuse, one-click unsubscribe headers."""
        spec = template_of(template)
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = spec.subject
        message["Date"] = format_datetime(self.clock.now())
        message["Message-ID"] = f"<{row_id}@{self.domain}>"
        if spec.unsubscribable:
            message["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(_templates.get_template(f"{template}.txt").render(**context))
        message.add_alternative(
            _templates.get_template(f"{template}.html").render(**context), subtype="html"
        )
        return message

    def deliver_pending(self, limit: int = 100) -> int:
        """Send what is due (and what a stopped sweep left "sending" past its lease);
        returns how many were sent. A transport failure puts the row back with a backoff;
        one whose person is erased fails at once."""
        now = self.clock.now()
        self._give_up_stale(now)
        with self.factory() as session:
            due = list(
                session.scalars(
                    select(OutboxMessage.id)
                    .where(_claimable(now))
                    .order_by(OutboxMessage.created_at)
                    .limit(limit)
                )
            )
        sent = 0
        for row_id in due:
            claim = self._claim(row_id)
            if claim is None:
                continue
            try:
                message = self.render(claim.id, claim.template, claim.to, claim.context)
            except (TemplateError, ValueError) as exc:
                # The same context will never render: retrying cannot help.
                self._settle(claim, error=exc, final=True)
                continue
            try:
                self.transport.send(claim.id, message)
            except OSError as exc:
                self._settle(claim, error=exc, final=claim.attempt >= MAX_ATTEMPTS)
                continue
            self._settle(claim)
            sent += 1
        return sent

    def _give_up_stale(self, now: datetime) -> None:
        """A mail claimed MAX_ATTEMPTS times by sweeps that stopped before settling it."""
        with self.factory() as session, session.begin():
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.state == "sending",
                    OutboxMessage.claimed_until < now,
                    OutboxMessage.attempts >= MAX_ATTEMPTS,
                )
                .values(state="failed", claimed_until=None, last_error="ClaimExpired")
                .execution_options(synchronize_session=False)
            )

    def _claim(self, row_id: str) -> _Claim | None:
        """Transaction 1: take the row if it is still due, and open its payload."""
        with self.factory() as session, session.begin():
            now = self.clock.now()
            taken = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, _claimable(now))
                .values(
                    state="sending",
                    claimed_until=now + self.lease,
                    attempts=OutboxMessage.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], taken).rowcount != 1:
                return None  # another sweep has it, or it was sent or erased meanwhile
            row = session.get(OutboxMessage, row_id, populate_existing=True)
            assert row is not None
            if row.payload_ct is None:
                self._fail_claimed(row, "PayloadMissing")
                return None
            try:
                payload = self.vault.decrypt_json(
                    session,
                    row.subject_id,
                    Field("outbox", "payload_ct", row.id),
                    row.payload_ct,
                    purpose=template_of(row.template).purpose,
                )
            except VaultError as exc:
                # The person is erased (their key is gone): this mail can never be sent.
                self._fail_claimed(row, type(exc).__name__)
                return None
            assert isinstance(payload, dict)
            return _Claim(row.id, row.template, row.attempts, payload["to"], payload["context"])

    def _fail_claimed(self, row: OutboxMessage, error: str) -> None:
        row.state = "failed"
        row.claimed_until = None
        row.last_error = error
        log.warning("mail %s not sent: %s", row.id, error)

    def _settle(self, claim: _Claim, error: Exception | None = None, final: bool = False) -> None:
        """Transaction 2: sent (the sealed payload goes), or back to wait, or failed. Only
        while the claim is still this sweep's: a sweep that outlived its lease changes
        nothing another has taken over."""
        now = self.clock.now()
        values: dict[str, Any]
        if error is None:
            values = {"state": "sent", "sent_at": now, "payload_ct": None}
        else:
            values = {
                "state": "failed" if final else "pending",
                "next_attempt_at": now + timedelta(minutes=2**claim.attempt),
                # The class only: a message may quote the address.
                "last_error": type(error).__name__,
            }
            log.warning(
                "mail %s not sent (attempt %d): %s", claim.id, claim.attempt, values["last_error"]
            )
        with self.factory() as session, session.begin():
            settled = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == claim.id,
                    OutboxMessage.state == "sending",
                    OutboxMessage.attempts == claim.attempt,
                )
                .values(claimed_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], settled).rowcount != 1:
                log.warning("mail %s: its claim ran out before it was settled", claim.id)


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Due and waiting, or left "sending" by a sweep whose lease has passed."""
    return or_(
        and_(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.state == "sending", OutboxMessage.claimed_until < now),
    )
