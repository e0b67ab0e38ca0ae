"""Staff log in with a name, a password and a code from their authenticator app (TOTP),
and log out. One neutral answer for every failure; the password and the code are never
shown again."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from privault.staff.errors import StaffLoginFailed, StaffSessionInvalid
from privault.staff.service import SESSION_HOURS
from privault.web.console.access import (
    COOKIE_PATH,
    LOGIN,
    STAFF_COOKIE,
    ConsoleRoute,
    StaffPageDep,
    checked,
    render,
)
from privault.web.deps import DB, RuntimeDep
from privault.web.guards import require_same_origin

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
FormText = Annotated[str, Form()]
HOME = "/staff"


def _safe_next(target: str) -> str:
    """Where to go after logging in: a console page of this site, nothing else."""
    ours = target == HOME or target.startswith(HOME + "/")
    return target if ours and "\\" not in target and "//" not in target else HOME


@router.get("/staff")
def home(caller: StaffPageDep) -> RedirectResponse:
    """The first page of the console the role may see."""
    return RedirectResponse(caller.pages[0].path, status_code=303)


@router.get(LOGIN)
def login_page(request: Request, runtime: RuntimeDep, db: DB, next: str = HOME) -> Response:
    token = request.cookies.get(STAFF_COOKIE)
    if token:
        try:
            runtime.staff(db).authenticate(token)
            return RedirectResponse(_safe_next(next), status_code=303)
        except StaffSessionInvalid:
            pass
    return render(request, "login.html", values={"next": _safe_next(next)}, errors={})


@router.post(LOGIN, dependencies=[Depends(require_same_origin)])
def login(
    request: Request,
    runtime: RuntimeDep,
    db: DB,
    name: FormText = "",
    password: FormText = "",
    code: FormText = "",
    next: FormText = HOME,
) -> Response:
    values = {"name": name.strip(), "next": _safe_next(next)}
    errors = {
        field: message
        for field, value, message in (
            ("name", name, "Enter your staff name."),
            ("password", password, "Enter your password."),
            ("code", code, "Enter the 6-digit code from your authenticator app."),
        )
        if not value.strip()
    }
    if not errors:
        try:
            token = runtime.staff(db).login(values["name"], password, code)
        except StaffLoginFailed as exc:
            errors["form"] = exc.detail[0].upper() + exc.detail[1:] + "."
    if errors:
        status = 401 if "form" in errors else 422
        return render(request, "login.html", status, values=values, errors=errors)
    response = RedirectResponse(values["next"], status_code=303)
    response.set_cookie(
        STAFF_COOKIE,
        token,
        max_age=int(timedelta(hours=SESSION_HOURS).total_seconds()),
        path=COOKIE_PATH,
        secure=request.url.scheme == "https" or runtime.settings.base_url.startswith("https:"),
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/staff/logout", dependencies=[Depends(require_same_origin)])
def logout(caller: StaffPageDep, runtime: RuntimeDep, db: DB, csrf: FormText = "") -> Response:
    checked(caller, runtime, csrf)
    runtime.staff(db).logout(caller.token)
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(STAFF_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
