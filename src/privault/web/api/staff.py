"""Staff: log in with a second factor, then work the queue of data-subject requests (P9.4).

Every route past the login needs a staff session whose role may use personal data for
the purpose "legal" (answering requests is a legal obligation); others get 403. Reading
what a person wrote with a request is a staff read, in the access log (P4.1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from privault.rights.schemas import (
    CompleteIn,
    ExtendIn,
    HistoryOut,
    NoteIn,
    RefuseIn,
    RequestOut,
    StaffLoginIn,
    StaffLoginOut,
    StaffRequestDetailOut,
    StaffRequestOut,
    StaffRequestsOut,
)
from privault.rights.service import DETAILS_CATEGORIES, RequestView, RightsService, State
from privault.runtime import Runtime
from privault.web.deps import DB, RuntimeDep, StaffDep

router = APIRouter(tags=["staff"])

#: The purpose for which staff read and act on requests.
PURPOSE = "legal"


def _out(view: RequestView, now: datetime) -> StaffRequestOut:
    return StaffRequestOut(**RequestOut.of(view).model_dump(), overdue=view.overdue(now))


def _rights(staff: StaffDep, runtime: Runtime, db: DB) -> RightsService:
    runtime.staff(db).require(staff, PURPOSE)
    return runtime.rights(db)


@router.post("/staff/session", response_model=StaffLoginOut)
def staff_login(body: StaffLoginIn, runtime: RuntimeDep, db: DB) -> StaffLoginOut:
    """Log in as staff: name, password and a code from the authenticator app (once each)."""
    staff = runtime.staff(db)
    token = staff.login(body.name, body.password, body.code)
    return StaffLoginOut(token=token, role=staff.authenticate(token).role)


@router.delete("/staff/session", status_code=204)
def staff_logout(request: Request, staff: StaffDep, runtime: RuntimeDep, db: DB) -> Response:
    token = request.headers["authorization"].partition(" ")[2].strip()
    runtime.staff(db).logout(token)
    return Response(status_code=204)


@router.get("/staff/requests", response_model=StaffRequestsOut)
def queue(
    staff: StaffDep,
    runtime: RuntimeDep,
    db: DB,
    state: Annotated[list[State] | None, Query(description="Only these states.")] = None,
    due_before: Annotated[datetime | None, Query(description="Only those due before.")] = None,
    overdue: Annotated[bool, Query(description="Only overdue ones.")] = False,
) -> StaffRequestsOut:
    """Requests by deadline, soonest first; open ones unless states are given."""
    now = runtime.clock.now()
    views = _rights(staff, runtime, db).queue(states=state or (), due_before=due_before)
    if overdue:
        views = [v for v in views if v.overdue(now)]
    return StaffRequestsOut(requests=[_out(v, now) for v in views])


@router.get("/staff/requests/{request_id}", response_model=StaffRequestDetailOut)
def show(request_id: str, staff: StaffDep, runtime: RuntimeDep, db: DB) -> StaffRequestDetailOut:
    """One request with what the person wrote and its history."""
    rights = _rights(staff, runtime, db)
    view = rights.get(request_id)
    runtime.staff(db).read(staff, rights.subject_of(request_id), DETAILS_CATEGORIES, PURPOSE)
    return StaffRequestDetailOut(
        **_out(view, runtime.clock.now()).model_dump(),
        details=rights.details(request_id),
        history=[HistoryOut.of(h) for h in rights.history(request_id)],
    )


@router.post("/staff/requests/{request_id}/verify", response_model=StaffRequestOut)
def verify(
    request_id: str, body: NoteIn, staff: StaffDep, runtime: RuntimeDep, db: DB
) -> StaffRequestOut:
    """Record how the person's identity was confirmed; the due date runs from now."""
    view = _rights(staff, runtime, db).verify(request_id, actor=staff.actor, note=body.note)
    return _out(view, runtime.clock.now())


@router.post("/staff/requests/{request_id}/extend", response_model=StaffRequestOut)
def extend(
    request_id: str, body: ExtendIn, staff: StaffDep, runtime: RuntimeDep, db: DB
) -> StaffRequestOut:
    """Extend a complex request, at most to the policy's months; the person is told why."""
    view = _rights(staff, runtime, db).extend(
        request_id, reason=body.reason, actor=staff.actor, to=body.to
    )
    return _out(view, runtime.clock.now())


@router.post("/staff/requests/{request_id}/complete", response_model=StaffRequestOut)
def complete(
    request_id: str, body: CompleteIn, staff: StaffDep, runtime: RuntimeDep, db: DB
) -> StaffRequestOut:
    """Record what was done and close the request; the person is told."""
    view = _rights(staff, runtime, db).complete(request_id, actor=staff.actor, outcome=body.outcome)
    return _out(view, runtime.clock.now())


@router.post("/staff/requests/{request_id}/refuse", response_model=StaffRequestOut)
def refuse(
    request_id: str, body: RefuseIn, staff: StaffDep, runtime: RuntimeDep, db: DB
) -> StaffRequestOut:
    """Refuse with grounds and a reason; the person is told, with where to complain."""
    view = _rights(staff, runtime, db).refuse(
        request_id, grounds=body.grounds, reason=body.reason, actor=staff.actor
    )
    return _out(view, runtime.clock.now())
