"""The few HTML pages of the foundation: home, email verification."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from privault.service.errors import VerificationInvalid
from privault.web.deps import DB, SESSION_COOKIE, RuntimeDep
from privault.web.guards import csrf_token

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def session_csrf(request: Request) -> str:
    """The form token of the session a page is shown to, for the forms every page carries
    (the header's log-out button); empty for a visitor. No database: the token is the
    session's HMAC, checked where the form is posted."""
    token = request.cookies.get(SESSION_COOKIE)
    return csrf_token(request.app.state.runtime, token) if token else ""


templates.env.globals["session_csrf"] = session_csrf


@router.get("/", response_class=HTMLResponse)
def home(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "home.html", {"policy": runtime.policy, "version": runtime.policy_version}
    )


@router.get("/verify-email", response_class=HTMLResponse)
def verify_email(request: Request, runtime: RuntimeDep, db: DB, token: str = "") -> HTMLResponse:
    try:
        runtime.accounts(db, source="web").verify_email(token)
        ok = True
    except VerificationInvalid:
        ok = False
    return templates.TemplateResponse(
        request, "verified.html", {"ok": ok}, status_code=200 if ok else 400
    )
