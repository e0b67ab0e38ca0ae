"""The access log, filtered and a page at a time, under the verdict on its hash chain;
and the data map drawn from the policy file with what the database holds per category."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

import privault.models  # noqa: F401  (every table in the data map before it is counted)
from privault.access.audit import AuditLog
from privault.policy.flows import COLUMNS, flows
from privault.vault.datamap import census
from privault.web.console.access import ConsoleRoute, StaffCaller, page_of, render
from privault.web.console.svg import data_map
from privault.web.deps import DB, RuntimeDep

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Auditor = Annotated[StaffCaller, Depends(page_of("audit"))]
Reader = Annotated[StaffCaller, Depends(page_of("datamap"))]
PAGE_SIZE = 50
FILTERS = ("actor", "action", "subject", "since", "until")


def _day(value: str) -> datetime:
    return datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)


@router.get("/staff/audit")
def audit(
    request: Request,
    caller: Auditor,
    runtime: RuntimeDep,
    db: DB,
    actor: str = "",
    action: str = "",
    subject: str = "",
    since: str = "",
    until: str = "",
    before: str = "",
) -> Response:
    """Newest first, ``PAGE_SIZE`` at a time (``before``: older than that entry); the
    dates are whole days, UTC, both included."""
    values = {"actor": actor, "action": action, "subject": subject, "since": since, "until": until}
    errors = {}
    days: dict[str, datetime | None] = {"since": None, "until": None}
    for field in days:
        if values[field].strip():
            try:
                days[field] = _day(values[field])
            except ValueError:
                errors[field] = "Give a date as YYYY-MM-DD."
    if not errors and days["since"] and days["until"] and days["since"] > days["until"]:
        errors["until"] = "The end comes before the start."
    chain = runtime.audit.verify(db)
    entries = []
    if not errors:
        entries = AuditLog.entries(
            db,
            subject.strip() or None,
            PAGE_SIZE + 1,
            actor=actor.strip() or None,
            action=action.strip() or None,
            since=days["since"],
            until=days["until"] + timedelta(days=1) if days["until"] else None,
            before=int(before) if before.isdigit() else None,
        )
    older = None
    if len(entries) > PAGE_SIZE:
        entries = entries[:PAGE_SIZE]
        kept = {k: v for k, v in values.items() if v}
        older = "?" + urlencode({**kept, "before": entries[-1].seq})
    return render(
        request,
        "audit.html",
        422 if errors else 200,
        page="audit",
        chain=chain,
        entries=entries,
        older=older,
        paged=bool(before),
        values=values,
        errors=errors,
    )


@router.get("/staff/datamap")
def datamap(request: Request, caller: Reader, runtime: RuntimeDep, db: DB) -> Response:
    """Categories → purposes → recipients → countries, from the policy file, with the
    people and records the database holds of each category (counts only: no purpose)."""
    drawn = flows(runtime.policy)
    return render(
        request,
        "datamap.html",
        page="datamap",
        flows=drawn,
        columns=COLUMNS,
        picture=data_map(drawn, COLUMNS),
        held=census(db),
    )
