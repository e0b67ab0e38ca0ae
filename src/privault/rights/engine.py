"""The rights sweep: carries verified requests forward (``privault worker``, and inside
``serve``). Every pass is idempotent; each request moves in its own transactions.

- access and portability: the export is built, sealed under the person's key, stored
  for a single-use download link that lives 7 days, and the person is mailed the link;
  the request is completed in the same transaction.
- erasure: ``rights.erasure.Eraser`` takes every step it can.
- rectification, restriction and objection: handed to staff (in progress), once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from privault.clock import Clock
from privault.db import new_id
from privault.notify.outbox import Outbox
from privault.policy.model import Policy, RequestKind
from privault.rights.erasure import Eraser
from privault.rights.errors import RequestClosed
from privault.rights.export import Exporter, ExportKind
from privault.rights.models import ExportDownload, RightsRequest
from privault.rights.service import RightsService, State
from privault.vault import Field, Vault
from privault.vault.crypto import token_digest

log = logging.getLogger("privault.rights")

DOWNLOAD_LIFETIME = timedelta(days=7)
EXPORTS = {RequestKind.ACCESS: ExportKind.ACCESS, RequestKind.PORTABILITY: ExportKind.PORTABILITY}
BY_STAFF = (RequestKind.RECTIFICATION, RequestKind.RESTRICTION, RequestKind.OBJECTION)


@dataclass
class SweepReport:
    exports: int = 0
    erasures: int = 0
    to_staff: int = 0


class RightsEngine:
    def __init__(
        self,
        factory: sessionmaker[Session],
        vault: Vault,
        policy: Policy,
        clock: Clock,
        outbox: Outbox,
        eraser: Eraser,
        rights: Callable[[Session], RightsService],
        base_url: str,
        stop_marketing: Callable[[Session, str], list[str]],
    ) -> None:
        self.factory = factory
        self.vault = vault
        self.policy = policy
        self.clock = clock
        self.outbox = outbox
        self.eraser = eraser
        self.rights = rights
        self.base_url = base_url.rstrip("/")
        #: Withdraws a person's direct-marketing consents; returns the channels it stopped.
        self.stop_marketing = stop_marketing

    def run_once(self) -> SweepReport:
        """Advance every open, verified request as far as it can go now."""
        report = SweepReport()
        with self.factory() as session, session.begin():
            # An export nobody fetched in time is dropped, not kept sealed indefinitely.
            session.execute(
                update(ExportDownload)
                .where(ExportDownload.expires_at <= self.clock.now())
                .where(ExportDownload.archive_ct.is_not(None))
                .values(archive_ct=None)
            )
        with self.factory() as session:
            due = session.execute(
                select(RightsRequest.id, RightsRequest.kind, RightsRequest.state)
                .where(RightsRequest.state.in_([State.VERIFIED, State.IN_PROGRESS]))
                .order_by(RightsRequest.due_at, RightsRequest.id)
            ).all()
        for request_id, kind, state in due:
            try:
                self._advance(request_id, kind, state, report)
            except Exception as exc:  # one failing request must not hold up the others
                log.warning(
                    "request %s: %s; the next sweep retries", request_id, type(exc).__name__
                )
                self._failed(request_id, exc)
        return report

    def carry_out(self, request_id: str, send_mail: Callable[[], object], *, actor: str) -> None:
        """Take one export or erasure through now, as the sweep would, at a staff member's
        word (the console's "carry it out now"): an export is built and its link mailed; an
        erasure takes its steps, and its last notice is sent (``send_mail``, the outbox's
        delivery) before the key is shredded. Raises ``RequestNotFound``, or
        ``RequestClosed`` for a request not open or of another kind; a failing step raises
        what it raises, leaving the request at the last step done, for the sweep to retry."""
        with self.factory() as session, session.begin():
            rights = self.rights(session)
            view = rights.get(request_id)
            if "carry_out" not in view.steps:
                raise RequestClosed(
                    f"this {view.kind} request is {view.state.replace('_', ' ')}: only an "
                    "open export or erasure is carried out"
                )
            rights.note(request_id, actor=actor, note="carried out now, without the sweep")
        self._advance(request_id, view.kind, view.state, SweepReport())
        send_mail()
        if view.kind == RequestKind.ERASURE:
            self.eraser.advance(request_id)

    def _advance(self, request_id: str, kind: str, state: str, report: SweepReport) -> None:
        if kind in EXPORTS and state == State.VERIFIED:
            report.exports += self.export(request_id)
        elif kind == RequestKind.ERASURE:
            report.erasures += self.eraser.advance(request_id) == "done"
        elif kind in BY_STAFF and state == State.VERIFIED:
            with self.factory() as session, session.begin():
                rights = self.rights(session)
                subject_id = rights.subject_of(request_id)
                if kind == RequestKind.OBJECTION and subject_id is not None:
                    # Objecting to direct marketing needs no review: it stops (Art. 21(3)).
                    stopped = self.stop_marketing(session, subject_id)
                    rights.note(
                        request_id,
                        actor="system:rights",
                        note="direct marketing stopped at once (Art. 21(3)): "
                        + (", ".join(stopped) or "no marketing consent was live")
                        + " withdrawn",
                    )
                rights.start(request_id, actor="system:rights", note="waiting for staff to act")
            report.to_staff += 1

    def _failed(self, request_id: str, exc: Exception) -> None:
        with self.factory() as session, session.begin():
            request = session.get(RightsRequest, request_id)
            if request is not None:
                request.attempts += 1
                request.last_error = type(exc).__name__

    def export(self, request_id: str) -> bool:
        """Build the export of a verified access or portability request, store it for its
        download link and mail the link; the request is then completed. Returns whether
        this call did it (a concurrent sweep may have)."""
        with self.factory() as session, session.begin():
            request = session.get(RightsRequest, request_id, with_for_update=True)
            if request is None or request.state != State.VERIFIED or request.subject_id is None:
                return False
            kind = EXPORTS[RequestKind(request.kind)]
            token = self.store(session, request.subject_id, request.id, kind)
            expires = self.clock.now() + DOWNLOAD_LIFETIME
            rights = self.rights(session)
            rights.complete(
                request.id,
                actor="system:rights",
                outcome=f"{kind.value} export ready for download until {expires:%d %B %Y}",
            )
            address = rights.address_of(request.subject_id)
            if address is not None:
                self.outbox.enqueue(
                    session,
                    request.subject_id,
                    address,
                    "rights_export_ready",
                    {
                        "request_id": request.id,
                        "kind": kind.value,
                        "link": f"{self.base_url}/api/v1/me/exports/{token}",
                        "expires": f"{expires:%d %B %Y %H:%M} UTC",
                    },
                )
            return True

    def store(self, session: Session, subject_id: str, request_id: str, kind: ExportKind) -> str:
        """Build the person's export, seal it under their key for a download; returns the
        link's token (only its digest is stored)."""
        archive = Exporter(session, self.vault, self.policy, self.clock).build(subject_id, kind)
        raw = archive.zip_bytes()
        download_id = new_id()
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        session.add(
            ExportDownload(
                id=download_id,
                subject_id=subject_id,
                request_id=request_id,
                token_hash=token_digest(token),
                archive_ct=self.vault.encrypt_bytes(
                    session, subject_id, Field("export_downloads", "archive_ct", download_id), raw
                ),
                sha256=hashlib.sha256(raw).hexdigest(),
                created_at=now,
                expires_at=now + DOWNLOAD_LIFETIME,
            )
        )
        return token
