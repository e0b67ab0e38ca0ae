"""Acceptance of the privacy policy's current version (P8.3).

Seed section 8: "We will notify you of changes to this policy by email and will require
from you to accept the changes to continue using the service." Every answer, accepted or
refused, is a ``PolicyAcceptance`` row with its proof (version, time, source, network);
the latest row for a version is the answer to it. Until a person accepts the current
version, the edges refuse everything but the policy, acceptance, export and erasure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.consent.errors import PolicyAcceptanceRequired, PolicyVersionNotCurrent
from privault.consent.models import PolicyAcceptance
from privault.db import advisory_lock, new_id
from privault.policy.store import PolicyStore
from privault.policy.types import Duration
from privault.service.messages import truncate_ip


class AcceptanceSource(StrEnum):
    """How an answer was given: the proof says so."""

    #: Registering accepts the version current then.
    REGISTRATION = "registration"
    WEB = "web"
    API = "api"
    CLI = "cli"
    #: Recorded by migration 0012 for the accounts that existed before answers were rows.
    MIGRATION = "migration"


@dataclass(frozen=True)
class Answer:
    version: int
    accepted: bool
    at: datetime


@dataclass(frozen=True)
class AcceptanceState:
    """The current version, the person's answer to it (if any) and the latest version
    they accepted (if any)."""

    version: int
    answer: Answer | None
    last_accepted: Answer | None

    @property
    def accepted(self) -> bool:
        return self.answer is not None and self.answer.accepted


class PolicyAcceptances:
    """Answers to the policy's versions, measured against ``version``, the current one."""

    def __init__(
        self,
        session: Session,
        version: int,
        clock: Clock,
        audit: AuditLog,
        *,
        pbx_grace: Duration,
        source: str = "api",
    ) -> None:
        self.session = session
        self.version = version
        self.clock = clock
        self.audit = audit
        self.pbx_grace = pbx_grace
        self.source = source

    def has_accepted(self, subject_id: str) -> bool:
        """Whether the person's latest answer to the current version is yes: one query,
        on the index of (subject, version)."""
        answer = self.session.scalar(
            select(PolicyAcceptance.accepted)
            .where(
                PolicyAcceptance.subject_id == subject_id,
                PolicyAcceptance.policy_version == self.version,
            )
            .order_by(PolicyAcceptance.at.desc())
            .limit(1)
        )
        return bool(answer)

    def require(self, subject_id: str) -> None:
        """Raises ``PolicyAcceptanceRequired`` (naming the version) unless the person has
        accepted the current version."""
        if not self.has_accepted(subject_id):
            raise PolicyAcceptanceRequired(self.version)

    def state(self, subject_id: str) -> AcceptanceState:
        rows = self.session.execute(
            select(PolicyAcceptance.policy_version, PolicyAcceptance.accepted, PolicyAcceptance.at)
            .where(PolicyAcceptance.subject_id == subject_id)
            .order_by(PolicyAcceptance.at)
        )
        answers = [Answer(version, accepted, aware(at)) for version, accepted, at in rows]
        current = [a for a in answers if a.version == self.version]
        accepted = [a for a in answers if a.accepted]
        return AcceptanceState(
            self.version,
            current[-1] if current else None,
            max(accepted, key=lambda a: (a.version, a.at)) if accepted else None,
        )

    def accept(
        self, subject_id: str, version: int, *, ip: str | None = None, registration: bool = False
    ) -> Answer:
        """Record that the person accepts ``version``, which must be the current one
        (``PolicyVersionNotCurrent`` otherwise). ``registration``: accepted by registering."""
        source = AcceptanceSource.REGISTRATION if registration else AcceptanceSource(self.source)
        return self._record(subject_id, version, True, source, ip)

    def refuse(self, subject_id: str, version: int, *, ip: str | None = None) -> Answer:
        """Record that the person refuses ``version``, which must be the current one
        (``PolicyVersionNotCurrent`` otherwise). Export and closing the account stay open."""
        return self._record(subject_id, version, False, AcceptanceSource(self.source), ip)

    def pin_allowed(self, subject_id: str) -> bool:
        """Whether the PIN check may open the room of ``subject_id``: they accepted the
        current version, or its PBX grace (``[amendments] pbx_grace``, counted from when
        the version took effect) still runs."""
        if self.has_accepted(subject_id):
            return True
        since = PolicyStore(self.session, self.clock).effective_at(self.version)
        return since is None or self.clock.now() < self.pbx_grace.add_to(since)

    def _record(
        self,
        subject_id: str,
        version: int,
        accepted: bool,
        source: AcceptanceSource,
        ip: str | None,
    ) -> Answer:
        if version != self.version:
            raise PolicyVersionNotCurrent(
                f"version {version} is not the current version of the privacy policy; "
                f"the current one is {self.version}"
            )
        # One answer at a time per person: the latest row must be the one written last.
        advisory_lock(self.session, f"acceptance:{subject_id}")
        now = self.clock.now()
        previous = self.session.scalar(
            select(PolicyAcceptance.at)
            .where(PolicyAcceptance.subject_id == subject_id)
            .order_by(PolicyAcceptance.at.desc())
            .limit(1)
        )
        if previous is not None and aware(previous) >= now:
            # Two answers within the clock's resolution still keep their order.
            now = aware(previous) + timedelta(microseconds=1)
        self.session.add(
            PolicyAcceptance(
                id=new_id(),
                subject_id=subject_id,
                policy_version=version,
                accepted=accepted,
                source=source.value,
                ip_prefix=truncate_ip(ip),
                at=now,
            )
        )
        self.session.flush()
        self.audit.record(
            self.session,
            self.source,
            Event.POLICY_ACCEPTED if accepted else Event.POLICY_REFUSED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["registration"],
            detail={"version": version, "source": source.value},
        )
        return Answer(version, accepted, now)
