"""The SMTP intake of the privacy address (aiosmtpd), for `privault mail serve` and `serve`.

It takes mail for the privacy address only (any other recipient: 550), up to the size
limit (552 above it), and at most ``intake_per_hour`` messages an hour from one envelope
sender or one host (450, try later: a flood is slowed, never lost). Each message goes
through ``MailIntake`` in a transaction of its own on a worker thread; when the database
cannot take it the answer is 451, so the sending MTA keeps the message and tries again.
The Authentication-Results header of a message is believed only when it comes from one
of the trusted relays (our own MTA in front of the intake).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict, deque
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.exc import SQLAlchemyError

from privault.mail.auth import DNS, Resolver
from privault.mail.intake import Received
from privault.runtime import Runtime

log = logging.getLogger("privault.mail")


def _template_only(record: logging.LogRecord) -> bool:
    """aiosmtpd's warning without its values: they are the peer's address and what it
    sent (a command may hold an address)."""
    record.msg, record.args = re.sub(r"%[rsd]", "...", str(record.msg)), ()
    return True


# aiosmtpd logs every sender and recipient address at INFO: personal data in the log.
logging.getLogger("mail.log").setLevel(logging.WARNING)
logging.getLogger("mail.log").addFilter(_template_only)

HOUR = 3600.0


class RateLimit:
    """At most ``limit`` events per key in any hour; the oldest keys are forgotten first
    when more than ``keys`` are tracked (memory stays bounded under a flood)."""

    def __init__(self, limit: int, keys: int = 10_000) -> None:
        self.limit = limit
        self.keys = keys
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allows(self, key: str, now: float) -> bool:
        times = self._seen.get(key)
        if times is None:
            return True
        while times and now - times[0] >= HOUR:
            times.popleft()
        return len(times) < self.limit

    def count(self, key: str, now: float) -> None:
        times = self._seen.setdefault(key, deque())
        times.append(now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.keys:
            self._seen.popitem(last=False)


class IntakeHandler:
    """aiosmtpd hooks: who may send, to whom, and handing each message to the intake."""

    def __init__(self, runtime: Runtime, resolver: Resolver = DNS) -> None:
        self.runtime = runtime
        self.resolver = resolver
        settings = runtime.settings
        self.address = str(runtime.policy.meta.privacy_address).lower()
        self.relays = {r.strip() for r in settings.trusted_relays}
        self.limit = RateLimit(settings.intake_per_hour)

    @staticmethod
    def _host(session: Session) -> str:
        peer = session.peer
        return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)

    def _keys(self, session: Session, sender: str | None) -> list[str]:
        keys = [f"host:{self._host(session)}"]
        if sender:
            keys.append(f"from:{sender.lower()}")
        return keys

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        now = time.monotonic()
        if not all(self.limit.allows(key, now) for key in self._keys(session, address)):
            return "450 4.7.1 Too many messages from you: try again in an hour"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() != self.address:
            return f"550 5.1.1 This server takes mail for {self.address} only"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = content.encode() if isinstance(content, str) else (content or b"")
        trusted = self._host(session) in self.relays
        loop = asyncio.get_running_loop()
        try:
            received = await loop.run_in_executor(None, self.take, raw, trusted)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("intake: message deferred: %s", type(exc).__name__)
            return "451 4.3.0 We cannot take the message now: try again later"
        now = time.monotonic()
        for key in self._keys(session, envelope.mail_from):
            self.limit.count(key, now)
        log.info("intake: message taken: %s", received.outcome)
        return "250 OK: message taken"

    def take(self, raw: bytes, trusted: bool) -> Received:
        with self.runtime.transaction() as session:
            intake = self.runtime.mail_intake(session, self.resolver)
            return intake.receive(raw, trust_auth_results=trusted)


class IntakeServer:
    """The intake listening on ``host``:``port`` in a thread of its own until ``stop``."""

    def __init__(
        self, runtime: Runtime, host: str, port: int, resolver: Resolver = DNS, **smtp: Any
    ) -> None:
        self.handler = IntakeHandler(runtime, resolver)
        self.controller = Controller(
            self.handler,
            hostname=host,
            port=port,
            data_size_limit=runtime.settings.intake_max_bytes,
            enable_SMTPUTF8=True,
            ident="Privault intake",
            **smtp,
        )

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
