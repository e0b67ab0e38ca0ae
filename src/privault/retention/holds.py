"""Placing, releasing and finding legal holds (P6.3). Holds stop erasure (and, with the
retention sweep, expiry) for what they cover; releasing one lets the next sweep catch up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.db import new_id
from privault.errors import InvalidInput, NotFound
from privault.policy.model import Policy
from privault.retention.models import LegalHold, LegalHoldSubject
from privault.rights.models import RetainedRecord


class HoldKind(StrEnum):
    """Why data must be kept (the policy's P4.2-P4.5 and P6.3)."""

    LAW = "law"
    PROCEEDINGS = "proceedings"
    LEGAL_RIGHTS = "legal_rights"


class HoldNotFound(NotFound):
    code = "hold_not_found"


class InvalidHold(InvalidInput):
    code = "invalid_hold"


@dataclass(frozen=True)
class Hold:
    id: str
    category: str | None
    kind: str
    reason: str
    confidential: bool
    placed_by: str
    placed_at: datetime
    ends_at: datetime | None
    review_at: datetime | None
    released_at: datetime | None
    subjects: int

    def covers_all_of_a_person(self) -> bool:
        return self.category is None

    def describe(self) -> str:
        """What the person may be told (not for confidential holds)."""
        until = f" until {self.ends_at:%d %B %Y}" if self.ends_at else ""
        what = f"your {self.category.replace('_', ' ')} data" if self.category else "your data"
        return f"{what} is kept{until} ({self.kind.replace('_', ' ')}): {self.reason}"


def _when(value: datetime | None) -> datetime | None:
    return aware(value) if value is not None else None


class HoldService:
    def __init__(self, session: Session, policy: Policy, clock: Clock, audit: AuditLog) -> None:
        self.session = session
        self.policy = policy
        self.clock = clock
        self.audit = audit

    def place(
        self,
        *,
        subject_ids: Sequence[str],
        category: str | None,
        kind: HoldKind | str,
        reason: str,
        placed_by: str,
        ends_at: datetime | None = None,
        review_at: datetime | None = None,
        confidential: bool = False,
    ) -> Hold:
        """A hold on the data of ``subject_ids`` (all of it, or ``category`` only), or on
        ``category`` for everyone. Raises ``InvalidHold`` saying what is wrong, naming the
        input (``people``, ``category``, ``kind``, ``reason``, ``until``, ``review``)."""
        try:
            kind = HoldKind(kind)
        except ValueError:
            raise InvalidHold(
                "kind must be one of " + ", ".join(k.value for k in HoldKind), field="kind"
            ) from None
        if not subject_ids and category is None:
            raise InvalidHold("a hold covers some subjects, a category, or both", field="people")
        if category is not None and category not in self.policy.categories:
            raise InvalidHold(f"the policy declares no category {category!r}", field="category")
        text = reason.strip()
        if not text or len(text) > 2000:
            raise InvalidHold("a hold needs a reason of 1 to 2000 characters", field="reason")
        now = self.clock.now()
        for moment, what, field in (
            (ends_at, "end", "until"),
            (review_at, "review date", "review"),
        ):
            if moment is not None and moment <= now:
                raise InvalidHold(f"the {what} must be in the future", field=field)
        hold = LegalHold(
            id=new_id(),
            category=category,
            kind=kind.value,
            reason=text,
            confidential=confidential,
            placed_by=placed_by,
            placed_at=now,
            review_at=review_at,
            ends_at=ends_at,
        )
        self.session.add(hold)
        self.session.flush()
        for subject_id in dict.fromkeys(subject_ids):
            self.session.add(LegalHoldSubject(hold_id=hold.id, subject_id=subject_id))
        self.audit.record(
            self.session,
            "operator",
            Event.HOLD_PLACED,
            actor=placed_by,
            categories=[category] if category else [],
            detail={"hold": hold.id, "subjects": len(set(subject_ids)), "kind": kind.value},
        )
        self.session.flush()
        return self._view(hold)

    def release(self, hold_id: str, *, by: str) -> Hold:
        """End a hold now. What it alone kept of erased people is dropped at once; erasures
        it held back go on at the next sweep."""
        hold = self.session.get(LegalHold, hold_id)
        if hold is None:
            raise HoldNotFound("no hold has this id")
        if hold.released_at is None:
            hold.released_at = self.clock.now()
            hold.released_by = by
            self.session.execute(
                delete(RetainedRecord).where(
                    RetainedRecord.hold_id == hold_id, RetainedRecord.retain_until.is_(None)
                )
            )
            self.session.execute(
                update(RetainedRecord).where(RetainedRecord.hold_id == hold_id).values(hold_id=None)
            )
            self.audit.record(
                self.session, "operator", Event.HOLD_RELEASED, actor=by, detail={"hold": hold_id}
            )
        return self._view(hold)

    def all(self, *, active_only: bool = True) -> list[Hold]:
        query = select(LegalHold).order_by(LegalHold.placed_at, LegalHold.id)
        holds = [self._view(h) for h in self.session.scalars(query)]
        return [h for h in holds if self._active(h)] if active_only else holds

    def covering(self, subject_id: str) -> list[Hold]:
        return holds_covering(self.session, self.clock, subject_id)

    def _active(self, hold: Hold) -> bool:
        return _active(hold, self.clock.now())

    def _view(self, hold: LegalHold) -> Hold:
        return _view(self.session, hold)


def _active(hold: Hold, now: datetime) -> bool:
    return hold.released_at is None and (hold.ends_at is None or hold.ends_at > now)


def holds_covering(session: Session, clock: Clock, subject_id: str) -> list[Hold]:
    """The active holds on any of the person's data: naming them, or their categories."""
    named = select(LegalHoldSubject.hold_id).where(LegalHoldSubject.subject_id == subject_id)
    everyone = (
        ~select(LegalHoldSubject.hold_id).where(LegalHoldSubject.hold_id == LegalHold.id).exists()
    )
    query = select(LegalHold).where(
        LegalHold.released_at.is_(None),
        or_(LegalHold.id.in_(named), LegalHold.category.is_not(None) & everyone),
    )
    now = clock.now()
    return [h for h in (_view(session, r) for r in session.scalars(query)) if _active(h, now)]


def _view(session: Session, hold: LegalHold) -> Hold:
    subjects = len(
        session.scalars(
            select(LegalHoldSubject.subject_id).where(LegalHoldSubject.hold_id == hold.id)
        ).all()
    )
    return Hold(
        hold.id,
        hold.category,
        hold.kind,
        hold.reason,
        hold.confidential,
        hold.placed_by,
        aware(hold.placed_at),
        _when(hold.ends_at),
        _when(hold.review_at),
        _when(hold.released_at),
        subjects,
    )
