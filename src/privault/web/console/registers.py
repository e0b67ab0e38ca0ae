"""The console's registers: legal holds (placed and released here), the disclosure
register, the statistics releases with each recipient's privacy budget, and the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from privault.errors import InvalidInput
from privault.notify.outbox import STATES as MAIL_STATES
from privault.policy.model import Recipient, RecipientKind
from privault.retention.holds import HoldKind
from privault.runtime import Runtime
from privault.statistics.errors import InvalidRelease
from privault.statistics.service import Budget
from privault.web.console.access import ConsoleRoute, StaffCaller, checked, page_of, render
from privault.web.deps import DB, RuntimeDep
from privault.web.forms import form_errors
from privault.web.guards import require_same_origin

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
FormText = Annotated[str, Form()]
SAME_ORIGIN = [Depends(require_same_origin)]
Holder = Annotated[StaffCaller, Depends(page_of("holds"))]
Registrar = Annotated[StaffCaller, Depends(page_of("disclosures"))]
Statistician = Annotated[StaffCaller, Depends(page_of("statistics"))]
Postmaster = Annotated[StaffCaller, Depends(page_of("outbox"))]
OUTBOX_ROWS = 100


def _holds(
    request: Request, runtime: Runtime, db: DB, status: int = 200, **context: Any
) -> Response:
    everything = request.query_params.get("all") == "1"
    return render(
        request,
        "holds.html",
        status,
        page="holds",
        holds=runtime.holds(db).all(active_only=not everything),
        everything=everything,
        now=runtime.clock.now(),
        kinds=list(HoldKind),
        categories=list(runtime.policy.categories),
        **{"values": {}, "errors": {}, **context},
    )


@router.get("/staff/holds")
def holds(request: Request, caller: Holder, runtime: RuntimeDep, db: DB) -> Response:
    return _holds(request, runtime, db)


def _day(value: str, field: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput("give a date as YYYY-MM-DD", field=field) from None


def _people(runtime: Runtime, db: DB, text: str) -> list[str]:
    """Subject ids, and the subjects of registered addresses, one a line."""
    people = []
    accounts = runtime.accounts(db, source="web")
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        if "@" in entry:
            found = accounts.subject_of(entry)
            if found is None:
                raise InvalidInput(f"line {number}: no account has that address", field="people")
            entry = found
        people.append(entry)
    return people


@router.post("/staff/holds", dependencies=SAME_ORIGIN)
def place_hold(
    request: Request,
    caller: Holder,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
    people: FormText = "",
    category: FormText = "",
    kind: FormText = "",
    reason: FormText = "",
    until: FormText = "",
    review: FormText = "",
    confidential: FormText = "",
) -> Response:
    """Place a hold on some people (all their data, or one category), or on a category."""
    checked(caller, runtime, csrf)
    values = {"people": people, "category": category, "kind": kind, "reason": reason}
    values |= {"until": until, "review": review, "confidential": confidential}
    try:
        runtime.holds(db).place(
            subject_ids=_people(runtime, db, people),
            category=category or None,
            kind=kind,
            reason=reason,
            placed_by=caller.actor,
            ends_at=_day(until, "until"),
            review_at=_day(review, "review"),
            confidential=bool(confidential),
        )
    except InvalidInput as exc:
        return _holds(request, runtime, db, 422, values=values, errors=form_errors(exc))
    return RedirectResponse("/staff/holds", status_code=303)


@router.post("/staff/holds/{hold_id}/release", dependencies=SAME_ORIGIN)
def release_hold(
    hold_id: str, caller: Holder, runtime: RuntimeDep, db: DB, csrf: FormText = ""
) -> Response:
    """End a hold now; erasures it held back go on at the next sweep."""
    checked(caller, runtime, csrf)
    runtime.holds(db).release(hold_id, by=caller.actor)
    return RedirectResponse("/staff/holds", status_code=303)


@router.get("/staff/disclosures")
def disclosures(
    request: Request, caller: Registrar, runtime: RuntimeDep, db: DB, recipient: str = ""
) -> Response:
    """The register, oldest first, all or to one recipient; confidential ones marked."""
    known = [r.id for r in runtime.policy.recipients]
    wanted = recipient if recipient in known else None
    return render(
        request,
        "disclosures.html",
        200 if not recipient or wanted else 422,
        page="disclosures",
        entries=runtime.disclosures(db, source="web").register(recipient=wanted),
        recipients=runtime.policy.recipients,
        values={"recipient": recipient},
        errors={} if not recipient or wanted else {"recipient": "Choose a recipient listed."},
    )


@router.get("/staff/statistics")
def statistics(request: Request, caller: Statistician, runtime: RuntimeDep, db: DB) -> Response:
    """The statistics releases in the register and what each recipient's budget has left."""
    service = runtime.statistics(db, source="web")
    budgets: list[tuple[Recipient, Budget | None]] = []
    for recipient in runtime.policy.recipients:
        if recipient.kind is RecipientKind.STATISTICS:
            try:
                budgets.append((recipient, service.budget(recipient.id)))
            except InvalidRelease:
                budgets.append((recipient, None))
    return render(
        request,
        "statistics.html",
        page="statistics",
        releases=service.releases(),
        budgets=budgets,
    )


@router.get("/staff/outbox")
def outbox(
    request: Request, caller: Postmaster, runtime: RuntimeDep, db: DB, state: str = ""
) -> Response:
    """The newest mails: template, state, attempts, times, the last error's kind. Never an
    address or what a mail says."""
    bad = bool(state) and state not in MAIL_STATES
    return render(
        request,
        "outbox.html",
        422 if bad else 200,
        page="outbox",
        entries=[] if bad else runtime.outbox.recent(db, state=state or None, limit=OUTBOX_ROWS),
        states=MAIL_STATES,
        values={"state": state},
        errors={"state": "Choose a state listed."} if bad else {},
    )
