"""The acceptance page (P8.3): the policy's current version, to accept or refuse.

Plain HTML forms, checked for their origin and for the session's form token (CSRF). After
a refusal the page offers what the policy leaves open: the export of one's data and the
closing of the account.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privault.errors import PrivaultError
from privault.web.deps import ACCEPTANCE_PAGE, DB, Caller, RuntimeDep, viewer
from privault.web.errors import status_of
from privault.web.guards import check_csrf, csrf_token, require_same_origin
from privault.web.pages import templates

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
FormText = Annotated[str, Form()]
SAME_ORIGIN = [Depends(require_same_origin)]


def _page(
    request: Request,
    runtime: RuntimeDep,
    db: DB,
    caller: Caller | None,
    *,
    error: str | None = None,
    status: int = 200,
    **more: Any,
) -> Response:
    context: dict[str, Any] = {"error": error, **more}
    if caller is None:
        context["state"] = None
        status = 401
    else:
        context["state"] = runtime.acceptances(db, "web").state(caller.subject_id)
        context["csrf"] = csrf_token(runtime, caller.token)
    context["version"] = runtime.policy_version
    return templates.TemplateResponse(
        request, "policy_accept.html", context, status_code=status, headers=NO_STORE
    )


@router.get(ACCEPTANCE_PAGE, response_class=HTMLResponse)
def acceptance_page(request: Request, runtime: RuntimeDep, db: DB) -> Response:
    return _page(request, runtime, db, viewer(request, runtime, db))


def _answer(
    request: Request, runtime: RuntimeDep, db: DB, csrf: str, version: str, accept: bool
) -> Response:
    caller = viewer(request, runtime, db)
    if caller is None:
        return _page(request, runtime, db, None)
    try:
        check_csrf(runtime, caller.token, csrf)
        answer = runtime.acceptances(db, "web")
        ip = request.client.host if request.client else None
        number = int(version) if version.isdigit() else 0
        if accept:
            answer.accept(caller.subject_id, number, ip=ip)
        else:
            answer.refuse(caller.subject_id, number, ip=ip)
    except PrivaultError as exc:
        return _page(request, runtime, db, caller, error=exc.detail, status=status_of(exc))
    return RedirectResponse(ACCEPTANCE_PAGE, status_code=303)


@router.post(ACCEPTANCE_PAGE, response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def accept(
    request: Request, runtime: RuntimeDep, db: DB, csrf: FormText = "", version: FormText = ""
) -> Response:
    return _answer(request, runtime, db, csrf, version, accept=True)


@router.post("/policy/refuse", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def refuse(
    request: Request, runtime: RuntimeDep, db: DB, csrf: FormText = "", version: FormText = ""
) -> Response:
    return _answer(request, runtime, db, csrf, version, accept=False)


@router.post("/policy/close", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def close_account(request: Request, runtime: RuntimeDep, db: DB, csrf: FormText = "") -> Response:
    """Close the account from the page (what ``DELETE /api/v1/me`` does), after a refusal
    or instead of answering."""
    caller = viewer(request, runtime, db)
    if caller is None:
        return _page(request, runtime, db, None)
    try:
        check_csrf(runtime, caller.token, csrf)
        closed = runtime.accounts(db, source="web").close(
            caller.subject_id, caller.token, runtime.rights(db)
        )
    except PrivaultError as exc:
        return _page(request, runtime, db, caller, error=exc.detail, status=status_of(exc))
    return templates.TemplateResponse(
        request, "policy_closed.html", {"due": closed.due_at}, headers=NO_STORE
    )
