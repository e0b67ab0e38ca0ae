"""The few HTML pages of the foundation: home, email verification."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from privault.service.errors import VerificationInvalid
from privault.web.deps import DB, RuntimeDep

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


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
