"""Filing data-subject requests. The engine that carries them out comes with the rights issue."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from privault.clock import Clock
from privault.db import new_id
from privault.policy.model import Policy, RequestKind
from privault.rights.models import RightsRequest, RightsRequestEvent


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


class RightsService:
    def __init__(self, session: Session, policy: Policy, clock: Clock) -> None:
        self.session = session
        self.policy = policy
        self.clock = clock

    def file(
        self,
        subject_id: str,
        kind: RequestKind,
        channel: Channel,
        *,
        actor: str,
        verified: bool,
    ) -> RightsRequest:
        """Record a request. One made by an authenticated person is verified at once, and
        its due date runs from receipt; otherwise it runs from the confirmation of identity."""
        now = self.clock.now()
        request = RightsRequest(
            id=new_id(),
            subject_id=subject_id,
            kind=str(kind),
            channel=str(channel),
            state=State.VERIFIED if verified else State.RECEIVED,
            received_at=now,
            verified_at=now if verified else None,
            due_at=self.policy.rights.due_at(now) if verified else None,
        )
        self.session.add(request)
        self.session.add(
            RightsRequestEvent(request_id=request.id, at=now, actor=actor, state=State.RECEIVED)
        )
        if verified:
            self.session.add(
                RightsRequestEvent(
                    request_id=request.id,
                    at=now,
                    actor=actor,
                    state=State.VERIFIED,
                    note="identity established by the logged-in session",
                )
            )
        self.session.flush()
        return request
