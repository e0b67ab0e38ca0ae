"""Data-subject requests: filing, identity, deadlines, extensions, refusals, history.

A request is received, then verified (the person is who they say), then in progress,
and ends completed, refused or withdrawn. Its due date runs from receipt when the
person was known at once (a logged-in request), else from the confirmation of their
identity: the policy's days, never later than one calendar month (Art. 12(3)). It may
be extended once or more, to at most the policy's months from the same start, with a
reason the person is told (P9.4). Every step is a history row naming who took it.
The work itself (exports, erasure) is done by the sweep in ``rights.engine``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.db import new_id
from privault.notify.outbox import Outbox
from privault.policy.model import Policy, RequestKind
from privault.rights.errors import (
    DownloadGone,
    DownloadNotFound,
    ExtensionRefused,
    ReasonRequired,
    RequestClosed,
    RequestNotFound,
    UnknownRequestKind,
)
from privault.rights.export import PURPOSE, Exporter, ExportKind
from privault.rights.models import ExportDownload, RightsRequest, RightsRequestEvent
from privault.vault import Field, Vault
from privault.vault.crypto import token_digest
from privault.vault.datamap import category_of

#: The categories of what a person wrote with a request, for the record of a staff read.
DETAILS_CATEGORIES = (category_of(RightsRequest.__tablename__),)
#: Longest free text kept with a request, a refusal or an extension.
MAX_TEXT = 2000


class Channel(StrEnum):
    WEB = "web"
    API = "api"
    MAIL = "mail"
    STAFF = "staff"


class State(StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"

    @property
    def open(self) -> bool:
        return self in (State.RECEIVED, State.VERIFIED, State.IN_PROGRESS)


class Refusal(StrEnum):
    """Why a request can be refused (Art. 12(2), 12(5), 12(6))."""

    IDENTITY_NOT_CONFIRMED = "identity_not_confirmed"
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded"
    EXCESSIVE = "excessive"
    LEGAL_GROUNDS = "legal_grounds"


@dataclass(frozen=True)
class RequestView:
    id: str
    kind: str
    channel: str
    state: str
    received_at: datetime
    verified_at: datetime | None
    due_at: datetime | None
    extended_to: datetime | None
    extension_reason: str | None
    closed_at: datetime | None
    outcome: str | None

    @property
    def deadline(self) -> datetime | None:
        return self.extended_to or self.due_at

    def overdue(self, now: datetime) -> bool:
        return State(self.state).open and self.deadline is not None and now > self.deadline

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps staff may take on the request now, in ``STEPS`` order. Exports and
        erasures are completed by the sweep (``rights.engine``), never by hand: completing
        an erasure would close it with the person's data still there."""
        swept = self.kind in SWEEP_COMPLETES
        return tuple(
            step
            for step, states in STEPS.items()
            if self.state in states
            and not (step == "complete" and swept)
            and not (step == "carry_out" and not swept)
        )


#: The states each staff step needs; the service's methods check the same table.
STEPS: dict[str, tuple[State, ...]] = {
    "verify": (State.RECEIVED,),
    "extend": (State.VERIFIED, State.IN_PROGRESS),
    "complete": (State.VERIFIED, State.IN_PROGRESS),
    "refuse": (State.RECEIVED, State.VERIFIED, State.IN_PROGRESS),
    #: An export or erasure taken through now, as the sweep would (``RightsEngine.carry_out``).
    "carry_out": (State.VERIFIED, State.IN_PROGRESS),
}
#: The actor prefix of the sweeps (``system:rights``, ``system:erasure``).
SYSTEM = "system:"
#: The kinds the sweep carries out and completes itself.
SWEEP_COMPLETES = frozenset({RequestKind.ACCESS, RequestKind.PORTABILITY, RequestKind.ERASURE})


@dataclass(frozen=True)
class WeekCount:
    """How many of the requests received in the week starting ``week`` (a Monday, UTC)
    are in each state now."""

    week: date
    states: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.states.values())


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    state: str
    note: str


def _view(row: RightsRequest) -> RequestView:
    def when(value: datetime | None) -> datetime | None:
        return aware(value) if value is not None else None

    return RequestView(
        row.id,
        row.kind,
        row.channel,
        row.state,
        aware(row.received_at),
        when(row.verified_at),
        when(row.due_at),
        when(row.extended_to),
        row.extension_reason,
        when(row.closed_at),
        row.outcome,
    )


def _text(value: str | None, what: str, field: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ReasonRequired(f"{what} is required", field=field)
    if len(text) > MAX_TEXT:
        raise ReasonRequired(f"{what} must be at most {MAX_TEXT} characters", field=field)
    return text


class RightsService:
    """Files requests and moves them through their states; notices go through the outbox.

    ``address_of`` finds where to write to a person (their registered address), or
    ``None`` when there is none.
    """

    def __init__(
        self,
        session: Session,
        vault: Vault,
        policy: Policy,
        clock: Clock,
        outbox: Outbox,
        address_of: Callable[[str], str | None],
    ) -> None:
        self.session = session
        self.vault = vault
        self.policy = policy
        self.clock = clock
        self.outbox = outbox
        self.address_of = address_of

    # -- filing --------------------------------------------------------------------------

    def file(
        self,
        subject_id: str,
        kind: RequestKind | str,
        channel: Channel,
        *,
        actor: str,
        verified: bool,
        details: str | None = None,
        how: str = "identity established by the logged-in session",
    ) -> RightsRequest:
        """Record a request. One made by an authenticated person is verified at once, and
        its due date runs from receipt; otherwise it runs from the confirmation of identity.
        Raises ``UnknownRequestKind`` for a kind the policy does not offer."""
        try:
            kind = RequestKind(kind)
        except ValueError:
            raise UnknownRequestKind(
                "kind must be one of " + ", ".join(k.value for k in self.policy.rights.kinds)
            ) from None
        if kind not in self.policy.rights.kinds:
            raise UnknownRequestKind(f"the policy offers no {kind.value} requests")
        now = self.clock.now()
        request_id = new_id()
        request = RightsRequest(
            id=request_id,
            subject_id=subject_id,
            subject_ref=self.subject_ref(subject_id),
            kind=kind.value,
            channel=str(channel),
            state=State.VERIFIED if verified else State.RECEIVED,
            details_ct=self._seal_details(subject_id, request_id, details),
            received_at=now,
            verified_at=now if verified else None,
            due_at=self.policy.rights.due_at(now) if verified else None,
            attempts=0,
        )
        self.session.add(request)
        self._event(request, State.RECEIVED, actor, f"{kind.value} request by {channel}")
        if verified:
            self._event(request, State.VERIFIED, actor, how)
        self.session.flush()
        return request

    def subject_ref(self, subject_id: str) -> str:
        """The keyed hash a request keeps of its person once they are erased."""
        return self.vault.blind_index("subject", subject_id).hex()

    def _seal_details(self, subject_id: str, request_id: str, details: str | None) -> bytes | None:
        text = (details or "").strip()
        if not text:
            return None
        if len(text) > MAX_TEXT:
            raise ReasonRequired(f"details must be at most {MAX_TEXT} characters")
        field = Field("rights_requests", "details_ct", request_id)
        return self.vault.encrypt(self.session, subject_id, field, text)

    # -- moving a request ----------------------------------------------------------------

    def verify(self, request_id: str, *, actor: str, note: str) -> RequestView:
        """Confirm the person's identity: the due date starts now. Raises
        ``RequestClosed`` unless the request is received."""
        request = self._get(request_id)
        self._expect(request, *STEPS["verify"])
        how = _text(note, "a note on how identity was confirmed", "note")
        now = self.clock.now()
        request.state = State.VERIFIED
        request.verified_at = now
        request.due_at = self.policy.rights.due_at(now)
        self._event(request, State.VERIFIED, actor, how)
        return _view(request)

    def note(self, request_id: str, *, actor: str, note: str) -> None:
        """A line in the request's history that changes nothing (waiting for a hold)."""
        request = self._get(request_id)
        self._event(request, request.state, actor, note)

    def start(self, request_id: str, *, actor: str, note: str) -> RequestView:
        request = self._get(request_id)
        self._expect(request, State.VERIFIED)
        request.state = State.IN_PROGRESS
        self._event(request, State.IN_PROGRESS, actor, note)
        return _view(request)

    def extend(
        self, request_id: str, *, reason: str, actor: str, to: datetime | None = None
    ) -> RequestView:
        """Extend a complex request (Art. 12(3)) to ``to``, by default as far as the policy
        allows (its months from receipt or from verification); the person is told why.
        Raises ``ExtensionRefused`` past that limit or before the current deadline,
        ``ReasonRequired`` without a reason, ``RequestClosed`` for a closed or unverified
        request."""
        request = self._get(request_id)
        self._expect(request, *STEPS["extend"])
        why = _text(reason, "a reason for the extension", "reason")
        start = aware(request.verified_at or request.received_at)
        latest = self.policy.rights.latest_due_at(start)
        current = aware(request.extended_to or request.due_at or start)
        target = to or latest
        if target > latest:
            months = self.policy.rights.extension_max_months
            raise ExtensionRefused(
                f"a request may run at most {months} months: until {latest:%Y-%m-%d %H:%M} UTC",
                field="to",
            )
        if target <= current:
            raise ExtensionRefused(
                f"the request is already due {current:%Y-%m-%d %H:%M} UTC; extend beyond that",
                field="to",
            )
        request.extended_to = target
        request.extension_reason = why
        self._event(request, request.state, actor, f"extended to {target:%Y-%m-%d}: {why}")
        self._notify(
            request,
            "rights_extended",
            {"kind": request.kind, "until": f"{target:%d %B %Y}", "reason": why},
        )
        return _view(request)

    def refuse(
        self, request_id: str, *, grounds: Refusal | str, reason: str, actor: str
    ) -> RequestView:
        """Refuse with ``grounds`` and a reason the person is told, with their right to
        complain to a supervisory authority (Art. 12(4)). Raises ``RequestClosed`` for a
        closed request, ``ReasonRequired`` without a reason."""
        request = self._get(request_id)
        self._expect(request, *STEPS["refuse"])
        try:
            grounds = Refusal(grounds)
        except ValueError:
            raise ReasonRequired(
                "grounds must be one of " + ", ".join(g.value for g in Refusal), field="grounds"
            ) from None
        why = _text(reason, "a reason for the refusal", "reason")
        self._close(request, State.REFUSED, actor, f"{grounds.value}: {why}")
        self._notify(
            request,
            "rights_refused",
            {
                "kind": request.kind,
                "grounds": grounds.value.replace("_", " "),
                "reason": why,
                "complaint": self.policy.meta.supervisory_authority,
            },
        )
        return _view(request)

    def withdraw(self, request_id: str, subject_id: str) -> RequestView:
        """The person withdraws their own open request. Raises ``RequestNotFound`` for
        another person's, ``RequestClosed`` once it is closed or an erasure is under way."""
        request = self._mine(request_id, subject_id)
        self._expect(request, State.RECEIVED, State.VERIFIED)
        self._close(request, State.WITHDRAWN, f"subject:{subject_id}", "withdrawn by the person")
        return _view(request)

    def complete(self, request_id: str, *, actor: str, outcome: str) -> RequestView:
        """Record that a request was answered (staff, for rectification, restriction and
        objection; the sweep, for exports and erasure) and tell the person."""
        request = self._get(request_id)
        self._expect(request, *STEPS["complete"])
        if request.kind in SWEEP_COMPLETES and not actor.startswith(SYSTEM):
            # Completing an erasure by hand would close it with the data still there.
            raise RequestClosed(
                f"the sweep completes a {request.kind} request when it is carried out: "
                "carry it out instead"
            )
        self._close(request, State.COMPLETED, actor, _text(outcome, "what was done", "outcome"))
        if request.kind != RequestKind.ERASURE and request.subject_id is not None:
            self._notify(request, "rights_completed", {"kind": request.kind, "outcome": outcome})
        return _view(request)

    def close(self, request_id: str, state: State, *, actor: str, outcome: str) -> None:
        """End a request without notice (the erasure ends a person's other requests)."""
        self._close(self._get(request_id), state, actor, outcome)

    def _close(self, request: RightsRequest, state: State, actor: str, outcome: str) -> None:
        request.state = state
        request.closed_at = self.clock.now()
        request.outcome = outcome
        self._event(request, state, actor, outcome)

    # -- exports ---------------------------------------------------------------------------

    def export_now(self, subject_id: str, kind: ExportKind = ExportKind.ACCESS) -> bytes:
        """The self-service path: the person's export at once, recorded as a request that
        was received, verified and completed in the same moment."""
        request = self.file(
            subject_id,
            RequestKind(kind.value),
            Channel.WEB,
            actor=f"subject:{subject_id}",
            verified=True,
        )
        archive = Exporter(self.session, self.vault, self.policy, self.clock).build(
            subject_id, kind
        )
        raw = archive.zip_bytes()
        self._close(
            request,
            State.COMPLETED,
            f"subject:{subject_id}",
            f"{kind.value} export downloaded at once (sha256 {hashlib.sha256(raw).hexdigest()})",
        )
        return raw

    def download(self, token: str, subject_id: str) -> bytes:
        """The zip behind a download link, for its own person, once. Raises
        ``DownloadNotFound`` for an unknown link or another person's (the same answer),
        ``DownloadGone`` once it was used or has expired."""
        found = self.session.scalar(
            select(ExportDownload)
            .where(ExportDownload.token_hash == token_digest(token))
            .with_for_update()
        )
        if found is None or found.subject_id != subject_id:
            raise DownloadNotFound("no download of yours has this link")
        if found.used_at is not None or found.archive_ct is None:
            raise DownloadGone("this link was used already: ask for a new export")
        if self.clock.now() >= aware(found.expires_at):
            raise DownloadGone("this link has expired: ask for a new export")
        field = Field("export_downloads", "archive_ct", found.id)
        raw = self.vault.decrypt_bytes(
            self.session, subject_id, field, found.archive_ct, purpose=PURPOSE
        )
        found.used_at = self.clock.now()
        found.archive_ct = None
        return raw

    # -- reading -------------------------------------------------------------------------

    def get(self, request_id: str) -> RequestView:
        return _view(self._get(request_id))

    def mine(self, request_id: str, subject_id: str) -> RequestView:
        return _view(self._mine(request_id, subject_id))

    def of(self, subject_id: str) -> list[RequestView]:
        """The person's requests, newest first."""
        rows = self.session.scalars(
            select(RightsRequest)
            .where(RightsRequest.subject_id == subject_id)
            .order_by(RightsRequest.received_at.desc(), RightsRequest.id)
        )
        return [_view(r) for r in rows]

    def queue(
        self, *, states: Sequence[State] = (), due_before: datetime | None = None
    ) -> list[RequestView]:
        """Requests by deadline, soonest first (unverified ones, with none, last); open
        ones when no ``states`` are given."""
        wanted = [s.value for s in (states or [s for s in State if s.open])]
        rows = list(
            self.session.scalars(select(RightsRequest).where(RightsRequest.state.in_(wanted)))
        )
        views = [_view(r) for r in rows]
        if due_before is not None:
            views = [v for v in views if v.deadline is not None and v.deadline < due_before]
        far = datetime.max.replace(tzinfo=self.clock.now().tzinfo)
        return sorted(views, key=lambda v: (v.deadline or far, v.received_at, v.id))

    def weekly(self, weeks: int) -> list[WeekCount]:
        """The requests received in each of the last ``weeks`` weeks (Monday to Sunday,
        UTC, this one last), counted by the state they are in now."""
        today = self.clock.now().astimezone(UTC).date()
        first = today - timedelta(days=today.weekday(), weeks=weeks - 1)
        start = datetime.combine(first, time(), UTC)
        counts = [WeekCount(first + timedelta(weeks=i), {}) for i in range(weeks)]
        rows = self.session.execute(
            select(RightsRequest.received_at, RightsRequest.state).where(
                RightsRequest.received_at >= start
            )
        )
        for received_at, state in rows:
            index = (aware(received_at) - start).days // 7
            if 0 <= index < weeks:
                found = counts[index].states
                found[state] = found.get(state, 0) + 1
        return counts

    def history(self, request_id: str) -> list[HistoryEntry]:
        self._get(request_id)
        rows = self.session.scalars(
            select(RightsRequestEvent)
            .where(RightsRequestEvent.request_id == request_id)
            .order_by(RightsRequestEvent.id)
        )
        return [HistoryEntry(aware(r.at), r.actor, r.state, r.note) for r in rows]

    def subject_of(self, request_id: str) -> str | None:
        """Whose request it is; ``None`` once they are erased."""
        return self._get(request_id).subject_id

    def details(self, request_id: str) -> str | None:
        """What the person wrote, opened; ``None`` when nothing or once they are erased."""
        request = self._get(request_id)
        if request.details_ct is None or request.subject_id is None:
            return None
        field = Field("rights_requests", "details_ct", request.id)
        return self.vault.decrypt(
            self.session, request.subject_id, field, request.details_ct, purpose=PURPOSE
        )

    # -- helpers -------------------------------------------------------------------------

    def _get(self, request_id: str) -> RightsRequest:
        request = self.session.get(RightsRequest, request_id)
        if request is None:
            raise RequestNotFound("no request has this id")
        return request

    def _mine(self, request_id: str, subject_id: str) -> RightsRequest:
        request = self.session.get(RightsRequest, request_id)
        if request is None or request.subject_id != subject_id:
            raise RequestNotFound("you have no request with this id")
        return request

    def _expect(self, request: RightsRequest, *states: State) -> None:
        if request.state not in states:
            allowed = " or ".join(s.value.replace("_", " ") for s in states)
            raise RequestClosed(
                f"the request is {request.state.replace('_', ' ')}; this needs it {allowed}"
            )

    def _event(self, request: RightsRequest, state: str, actor: str, note: str) -> None:
        self.session.add(
            RightsRequestEvent(
                request_id=request.id, at=self.clock.now(), actor=actor, state=state, note=note
            )
        )

    def _notify(self, request: RightsRequest, template: str, context: dict[str, str]) -> None:
        if request.subject_id is None:
            return
        address = self.address_of(request.subject_id)
        if address is not None:
            context = {"request_id": request.id, **context}
            self.outbox.enqueue(self.session, request.subject_id, address, template, context)
