"""Mail to the privacy address: requests by email (P9.2), verified senders (P9.3).

Every message the intake takes is looked at once (a replayed Message-ID files nothing new)
and ends as one of:

- ``filed``: the subject is the request subject, the message says what it asks, with the
  Room ID and the name, and comes from the address registered for that Room ID with proof
  (``mail.auth``): the requests are filed verified, and an acknowledgement with the due
  date goes to that address;
- ``unconfirmed``: the same without proof, or from another address, or with a Room ID no
  account has. Nothing is disclosed: when the Room ID is an account's, its requests are
  filed unverified and a confirmation link goes to its registered address; the sender
  gets the same reply in every case, which says that a link was sent if the details
  match an account, so it never tells whether an address or a Room ID exists;
- ``incomplete``: a request that lacks a part; the reply says exactly what is missing
  and how to write again;
- ``support``: not a request at all; it waits in the support inbox;
- ``unreadable``: no single sender address could be read; nothing to answer.

Whatever the sender wrote is kept as their communication (P2.10), sealed under their key:
the account's when the From address is a registered one, else a data subject of its own.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.db import new_id
from privault.mail.auth import DNS, Proof, Resolver, proof
from privault.mail.errors import ConfirmationGone, ConfirmationNotFound
from privault.mail.models import InboundMail, RequestConfirmation
from privault.mail.reading import Mail, Reading, is_request_subject, parse, read_request
from privault.notify.outbox import Outbox
from privault.policy.model import Policy
from privault.rights.models import RightsRequest
from privault.rights.service import Channel, Refusal, RequestView, RightsService, State
from privault.service.accounts import AccountService
from privault.service.messages import MessageService
from privault.service.other import OtherItemService
from privault.service.rooms import RoomService
from privault.vault import Vault
from privault.vault.crypto import token_digest

#: How long a confirmation link works.
CONFIRM_DAYS = 7
ACTOR = "mail:intake"
#: Answering a data-subject request is a legal obligation (GDPR Art. 12-22).
PURPOSE = "legal"


class Outcome(StrEnum):
    FILED = "filed"
    UNCONFIRMED = "unconfirmed"
    INCOMPLETE = "incomplete"
    SUPPORT = "support"
    UNREADABLE = "unreadable"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    #: The requests filed (none but for ``filed`` and some ``unconfirmed``).
    requests: tuple[str, ...] = ()
    proof: Proof = Proof.NONE


def _names(kinds: Iterable[str]) -> str:
    words = [str(k).replace("_", " ") for k in kinds]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class MailIntake:
    """Takes one raw message at a time, in the caller's transaction."""

    def __init__(
        self,
        session: Session,
        vault: Vault,
        policy: Policy,
        clock: Clock,
        outbox: Outbox,
        rights: RightsService,
        accounts: AccountService,
        rooms: RoomService,
        messages: MessageService,
        other: OtherItemService,
        *,
        base_url: str,
        trusted_authserv_ids: Iterable[str] = (),
        resolver: Resolver = DNS,
    ) -> None:
        self.session = session
        self.vault = vault
        self.policy = policy
        self.clock = clock
        self.outbox = outbox
        self.rights = rights
        self.accounts = accounts
        self.rooms = rooms
        self.messages = messages
        self.other = other
        self.base_url = base_url.rstrip("/")
        self.trusted = tuple(trusted_authserv_ids)
        self.resolver = resolver

    def receive(self, raw: bytes, *, trust_auth_results: bool = False) -> Received:
        """Take one message. ``trust_auth_results`` when it came through our own MTA (an
        MTA pipe, or the SMTP intake from a trusted relay): only then is the MTA's
        Authentication-Results header believed. Never raises on what a message holds."""
        mail = parse(raw)
        digest = self.vault.blind_index(
            "mail_message_id", mail.message_id or hashlib.sha256(raw).hexdigest()
        )
        record = InboundMail(
            id=new_id(),
            digest=digest,
            received_at=self.clock.now(),
            outcome=Outcome.UNREADABLE,
            verified_by=Proof.NONE,
            requests=0,
        )
        if self.session.scalar(select(InboundMail.id).where(InboundMail.digest == digest)):
            return Received(Outcome.DUPLICATE)
        attempt = self.session.begin_nested()
        try:
            self.session.add(record)
            self.session.flush()
        except IntegrityError:  # the same message, taken meanwhile by another process
            attempt.rollback()
            return Received(Outcome.DUPLICATE)
        attempt.commit()
        received = self._take(mail, raw, trust_auth_results)
        record.outcome = received.outcome
        record.verified_by = received.proof
        record.requests = len(received.requests)
        return received

    def _take(self, mail: Mail, raw: bytes, trust_auth_results: bool) -> Received:
        if mail.sender is None:
            return Received(Outcome.UNREADABLE)
        known = self.accounts.subject_of(mail.sender)
        sender = self.messages.receive_mail(known, mail.sender, mail.subject, mail.text)
        for attachment in mail.attachments:  # anything else sent: category other (P2.11)
            self.other.keep(sender, "mail", attachment)
        if not is_request_subject(mail.subject, self.policy.meta.request_subject):
            return Received(Outcome.SUPPORT)
        reading = read_request(mail, self.policy.rights.kinds)
        if not reading.complete:
            self._reply(sender, mail.sender, "request_incomplete", {"missing": reading.missing})
            return Received(Outcome.INCOMPLETE)
        assert reading.room_id is not None
        owner = self.rooms.owner_of(reading.room_id)
        shown = proof(
            raw,
            mail.sender_domain,
            mail.auth_results if trust_auth_results else (),
            trusted=self.trusted,
            resolver=self.resolver,
        )
        if owner is not None and owner == known and shown is not Proof.NONE:
            return self._file_verified(owner, mail, reading, shown)
        filed: tuple[str, ...] = ()
        address = self.accounts.address_of(owner, purpose=PURPOSE) if owner is not None else None
        if owner is not None and address is not None:
            filed = self._file_unconfirmed(owner, address, mail, reading)
        self._reply(
            sender,
            mail.sender,
            "rights_pending",
            {"kinds": _names(reading.kinds), "days": CONFIRM_DAYS},
        )
        return Received(Outcome.UNCONFIRMED, filed, shown)

    def _file(
        self, owner: str, mail: Mail, reading: Reading, *, how: str | None
    ) -> list[RightsRequest]:
        """One request per kind asked, verified when ``how`` says how the sender was
        proved; what the person wrote is kept with each, sealed."""
        details = f"By mail, signed {reading.name}. {mail.text}"[:1900]
        return [
            self.rights.file(
                owner,
                kind,
                Channel.MAIL,
                actor=ACTOR,
                verified=how is not None,
                details=details,
                how=how or "",
            )
            for kind in reading.kinds
        ]

    def _file_verified(self, owner: str, mail: Mail, reading: Reading, shown: Proof) -> Received:
        how = f"mail from the registered address, its domain proved by {shown.value.upper()}"
        filed = self._file(owner, mail, reading, how=how)
        self._acknowledge(owner, [r.id for r in filed])
        return Received(Outcome.FILED, tuple(r.id for r in filed), shown)

    def _file_unconfirmed(
        self, owner: str, address: str, mail: Mail, reading: Reading
    ) -> tuple[str, ...]:
        filed = self._file(owner, mail, reading, how=None)
        token = secrets.token_urlsafe(32)
        expires = self.clock.now() + timedelta(days=CONFIRM_DAYS)
        for request in filed:
            self.session.add(
                RequestConfirmation(
                    id=new_id(),
                    token_hash=token_digest(token),
                    request_id=request.id,
                    expires_at=expires,
                )
            )
            self.rights.note(
                request.id,
                actor=ACTOR,
                note="the sender is not proved to be the account holder: a confirmation "
                "link was sent to the registered address",
            )
        self.outbox.enqueue(
            self.session,
            owner,
            address,
            "rights_confirm",
            {
                "kinds": _names(r.kind for r in filed),
                "link": f"{self.base_url}/requests/confirm/{token}",
                "until": f"{expires:%d %B %Y}",
            },
        )
        return tuple(r.id for r in filed)

    def _reply(self, subject_id: str, to: str, template: str, context: dict[str, object]) -> None:
        self.outbox.enqueue(
            self.session,
            subject_id,
            to,
            template,
            {
                "privacy_address": str(self.policy.meta.privacy_address),
                "request_subject": self.policy.meta.request_subject,
                **context,
            },
        )

    def _acknowledge(self, owner: str, request_ids: list[str]) -> None:
        views = [self.rights.get(r) for r in request_ids]
        due = min(v.deadline for v in views if v.deadline is not None)
        self.outbox.enqueue(
            self.session,
            owner,
            self.accounts.email_of(owner, purpose=PURPOSE),
            "rights_received",
            {
                "kinds": _names(v.kind for v in views),
                "due": f"{due:%d %B %Y}",
                "requests": [v.id for v in views],
            },
        )

    # -- the confirmation link ---------------------------------------------------------------

    def confirm(self, token: str) -> list[RequestView]:
        """Follow a confirmation link: the requests it stands for are verified (their due
        date starts now) and acknowledged. Raises ``ConfirmationNotFound`` for an unknown
        link, ``ConfirmationGone`` for a used or expired one."""
        rows = list(
            self.session.scalars(
                select(RequestConfirmation)
                .where(RequestConfirmation.token_hash == token_digest(token))
                .with_for_update()
            )
        )
        if not rows:
            raise ConfirmationNotFound("this confirmation link is not one of ours")
        if any(r.used_at is not None for r in rows):
            raise ConfirmationGone("this link was followed already: your request is under way")
        if self.clock.now() >= aware(rows[0].expires_at):
            raise ConfirmationGone(
                f"this link has expired: write to {self.policy.meta.privacy_address} again"
            )
        verified = []
        for row in rows:
            row.used_at = self.clock.now()
            request = self.rights.get(row.request_id)
            if request.state == State.RECEIVED:
                verified.append(
                    self.rights.verify(
                        request.id,
                        actor=ACTOR,
                        note="identity confirmed by the link sent to the registered address",
                    )
                )
        if verified:
            subject_id = self.rights.subject_of(verified[0].id)
            if subject_id is not None:
                self._acknowledge(subject_id, [v.id for v in verified])
        return verified

    def expire_unconfirmed(self) -> int:
        """Refuse the requests whose confirmation link expired unfollowed (Art. 12(2)): the
        identity of the person could not be confirmed. Returns how many."""
        rows = list(
            self.session.scalars(
                select(RequestConfirmation).where(
                    RequestConfirmation.used_at.is_(None),
                    RequestConfirmation.expires_at <= self.clock.now(),
                )
            )
        )
        refused = 0
        for row in rows:
            row.used_at = self.clock.now()
            if self.rights.get(row.request_id).state == State.RECEIVED:
                self.rights.refuse(
                    row.request_id,
                    grounds=Refusal.IDENTITY_NOT_CONFIRMED,
                    reason=f"the confirmation link sent to your registered address was not "
                    f"followed within {CONFIRM_DAYS} days",
                    actor=ACTOR,
                )
                refused += 1
        return refused
