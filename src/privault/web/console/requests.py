"""The queue of data-subject requests and a request's page (P9.4): the same service calls
as the staff API, as forms. Opening a request shows what the person wrote, a staff read
put on record (P4.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from privault.errors import PrivaultError
from privault.rights.errors import ExtensionRefused, RequestClosed
from privault.rights.service import (
    DETAILS_CATEGORIES,
    STEPS,
    Refusal,
    RequestView,
    RightsService,
    State,
)
from privault.runtime import Runtime
from privault.web.console.access import ConsoleRoute, StaffCaller, checked, page_of, render
from privault.web.console.svg import STATE_COLOURS, weekly_chart
from privault.web.deps import DB, RuntimeDep
from privault.web.errors import status_of
from privault.web.forms import WHOLE_FORM, form_errors
from privault.web.guards import require_same_origin

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Officer = Annotated[StaffCaller, Depends(page_of("requests"))]
FormText = Annotated[str, Form()]
PURPOSE = "legal"
WEEKS = 12
OPEN = [s.value for s in State if s.open]

#: The form fields of each step: the service's names for its inputs, after the step's.
FIELDS = {
    "verify": ("note",),
    "extend": ("reason", "to"),
    "complete": ("outcome",),
    "refuse": ("grounds", "reason"),
    "carry_out": (),
}


@router.get("/staff/requests")
def queue(
    request: Request,
    caller: Officer,
    runtime: RuntimeDep,
    db: DB,
    state: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Requests by due date, soonest first, overdue ones marked; open ones unless states
    are ticked. Above them, the requests of the last weeks by the state they are in."""
    wanted = state or OPEN
    unknown = [s for s in wanted if s not in State.__members__.values()]
    rights = runtime.rights(db)
    views = [] if unknown else rights.queue(states=[State(s) for s in wanted])
    weeks = rights.weekly(WEEKS)
    return render(
        request,
        "requests.html",
        422 if unknown else 200,
        page="requests",
        views=views,
        now=runtime.clock.now(),
        states=list(State),
        wanted=wanted,
        errors={"state": "Choose among the states listed."} if unknown else {},
        weeks=weeks,
        chart=weekly_chart(weeks),
        colours=STATE_COLOURS,
    )


def _show(
    request: Request,
    caller: StaffCaller,
    runtime: Runtime,
    db: DB,
    request_id: str,
    status: int = 200,
    **context: Any,
) -> Response:
    rights = runtime.rights(db)
    view = rights.get(request_id)
    runtime.staff(db).read(caller.staff, rights.subject_of(request_id), DETAILS_CATEGORIES, PURPOSE)
    return render(
        request,
        "request.html",
        status,
        page="requests",
        view=view,
        now=runtime.clock.now(),
        details=rights.details(request_id),
        history=rights.history(request_id),
        grounds=list(Refusal),
        **{"values": {}, "errors": {}, **context},
    )


@router.get("/staff/requests/{request_id}")
def show(
    request_id: str, request: Request, caller: Officer, runtime: RuntimeDep, db: DB
) -> Response:
    return _show(request, caller, runtime, db, request_id)


def _date(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ExtensionRefused("give the new due date as YYYY-MM-DD", field="to") from None


def _take(
    step: str, rights: RightsService, view: RequestView, actor: str, form: dict[str, str]
) -> None:
    if step not in view.steps:
        kind = view.kind.replace("_", " ")
        raise RequestClosed(
            f"this {kind} request is {view.state.replace('_', ' ')}: it does not allow {step}"
        )
    if step == "verify":
        rights.verify(view.id, actor=actor, note=form["verify_note"])
    elif step == "extend":
        to = _date(form["extend_to"])
        rights.extend(view.id, reason=form["extend_reason"], actor=actor, to=to)
    elif step == "complete":
        rights.complete(view.id, actor=actor, outcome=form["complete_outcome"])

    else:
        rights.refuse(
            view.id, grounds=form["refuse_grounds"], reason=form["refuse_reason"], actor=actor
        )


@router.post("/staff/requests/{request_id}/{step}", dependencies=[Depends(require_same_origin)])
def act(
    request_id: str,
    step: str,
    request: Request,
    caller: Officer,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
    verify_note: FormText = "",
    extend_reason: FormText = "",
    extend_to: FormText = "",
    complete_outcome: FormText = "",
    refuse_grounds: FormText = "",
    refuse_reason: FormText = "",
) -> Response:
    """Take a step the request's state allows: verify, extend, complete, refuse, or carry
    out an export or erasure now."""
    checked(caller, runtime, csrf)
    if step not in STEPS:
        return render(request, "error.html", 404, status_code=404, message="no such step")
    form = {
        "verify_note": verify_note,
        "extend_reason": extend_reason,
        "extend_to": extend_to,
        "complete_outcome": complete_outcome,
        "refuse_grounds": refuse_grounds,
        "refuse_reason": refuse_reason,
    }
    rights = runtime.rights(db)
    try:
        if step == "carry_out":
            # In transactions of the engine's own, as the sweep's. This request's transaction
            # only read, but it is ended first: on SQLite it holds the write lock.
            db.commit()
            engine = runtime.rights_engine()
            engine.carry_out(request_id, runtime.mailer().deliver_pending, actor=caller.actor)
        else:
            _take(step, rights, rights.get(request_id), caller.actor, form)
    except PrivaultError as exc:
        if status_of(exc) not in (409, 422):
            raise
        values = {f"{step}_{name}": form[f"{step}_{name}"] for name in FIELDS[step]}
        errors = {
            name if name == WHOLE_FORM else f"{step}_{name}": message
            for name, message in form_errors(exc).items()
        }
        return _show(
            request, caller, runtime, db, request_id, status_of(exc), values=values, errors=errors
        )
    return RedirectResponse(f"/staff/requests/{request_id}", status_code=303)
