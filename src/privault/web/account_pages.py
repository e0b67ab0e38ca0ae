"""The account pages: sign up, log in and out, and a forgotten password (issue 10).

Plain HTML forms, each checked for its origin (and, once logged in, for the session's form
token). A refused form comes back with the message next to its field and what was typed,
never a password. The session cookie is the API's (``set_session_cookie``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privault.errors import InvalidInput
from privault.service.accounts import MAX_DISPLAY_NAME
from privault.service.emails import check_email
from privault.service.errors import (
    EmailTaken,
    InvalidCredentials,
    ResetLinkInvalid,
    WeakPassword,
)
from privault.web.deps import (
    DB,
    SESSION_COOKIE,
    RuntimeDep,
    clear_session_cookie,
    set_session_cookie,
)
from privault.web.errors import status_of
from privault.web.guards import CsrfTokenInvalid, check_csrf, require_same_origin
from privault.web.pages import templates

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
SAME_ORIGIN = [Depends(require_same_origin)]
FormText = Annotated[str, Form()]
NextField = Annotated[str, Form(alias="next")]
#: Where a person goes after logging in or signing up, unless sent back elsewhere.
HOME = "/room"


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("values", {})
    context.setdefault("errors", {})
    return templates.TemplateResponse(
        request, template, context, status_code=status, headers=NO_STORE
    )


def _see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def local_path(target: str) -> str | None:
    """``target`` when it is a path on this site, else ``None``: a login link must not send
    anyone to another site ("//host" and "/\\host" are other sites to a browser)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ch in target for ch in "\\\r\n\t") or not target.isprintable():
        return None
    return target


def _email_problem(email: str) -> str | None:
    if not email.strip():
        return "enter your email address"
    try:
        check_email(email)
    except InvalidInput as exc:
        return exc.detail
    return None


# -- sign up -------------------------------------------------------------------------------


@router.get("/signup", response_class=HTMLResponse)
def signup_form(request: Request) -> Response:
    return _render(request, "signup.html")


@router.post("/signup", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def signup(
    request: Request,
    runtime: RuntimeDep,
    db: DB,
    email: FormText = "",
    password: FormText = "",
    display_name: FormText = "",
) -> Response:
    """Register (accepting the policy's current version), log in, and go to the room; the
    verification link is on its way through the outbox."""
    values = {"email": email, "display_name": display_name}
    errors: dict[str, str] = {}
    if problem := _email_problem(email):
        errors["email"] = problem
    if len(display_name.strip()) > MAX_DISPLAY_NAME:
        errors["display_name"] = f"a display name is at most {MAX_DISPLAY_NAME} characters"
    if not password:
        errors["password"] = "choose a password"  # noqa: S105 - a message
    if errors:
        return _render(request, "signup.html", 422, values=values, errors=errors)
    accounts = runtime.accounts(db, source="web")
    ip = request.client.host if request.client else None
    try:
        # A savepoint: a registration refused half-way leaves nothing behind.
        with db.begin_nested():
            accounts.register(email.strip(), password, display_name.strip() or None, ip=ip)
    except (WeakPassword, EmailTaken) as exc:
        field = "password" if isinstance(exc, WeakPassword) else "email"
        return _render(
            request, "signup.html", status_of(exc), values=values, errors={field: exc.detail}
        )
    login = accounts.login(email, password)
    response = _see(f"{HOME}?done=welcome")
    set_session_cookie(response, request, login.token)
    return response


# -- log in and out ------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, next_: Annotated[str, Query(alias="next")] = "", done: str = ""
) -> Response:
    return _render(
        request, "login.html", values={"next": local_path(next_) or ""}, reset=done == "reset"
    )


@router.post("/login", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def login(
    request: Request,
    runtime: RuntimeDep,
    email: FormText = "",
    password: FormText = "",
    next_: NextField = "",
) -> Response:
    """Open a session and go back where the person was sent from (a path of this site only),
    else to the room. Wrong credentials get one message that does not say which was wrong."""
    values = {"email": email, "next": local_path(next_) or ""}
    errors = {}
    if not email.strip():
        errors["email"] = "enter your email address"
    if not password:
        errors["password"] = "enter your password"  # noqa: S105 - a message
    if errors:
        return _render(request, "login.html", 422, values=values, errors=errors)
    try:
        done = runtime.log_in(email, password, source="web")
    except InvalidCredentials as exc:
        return _render(
            request, "login.html", status_of(exc), values=values, errors={"form": exc.detail}
        )
    response = _see(values["next"] or HOME)
    set_session_cookie(response, request, done.token)
    return response


@router.post("/logout", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def logout(request: Request, runtime: RuntimeDep, db: DB, csrf: FormText = "") -> Response:
    """End the session and forget its cookie. A form not from our page (no or a wrong form
    token) ends nothing: the page offers the button again."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            check_csrf(runtime, token, csrf)
        except CsrfTokenInvalid as exc:
            return _render(request, "logout.html", status_of(exc), errors={"form": exc.detail})
        runtime.accounts(db, source="web").logout(token)
    response = _see("/")
    clear_session_cookie(response)
    return response


# -- a forgotten password ------------------------------------------------------------------


@router.get("/password/forgot", response_class=HTMLResponse)
def forgot_form(request: Request, sent: bool = False) -> Response:
    return _render(request, "password_forgot.html", sent=sent)


@router.post("/password/forgot", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def forgot(request: Request, runtime: RuntimeDep, db: DB, email: FormText = "") -> Response:
    """Mail a reset link if the address has an account; the answer is the same either way."""
    if problem := _email_problem(email):
        return _render(
            request, "password_forgot.html", 422, values={"email": email}, errors={"email": problem}
        )
    runtime.accounts(db, source="web").send_password_reset(email)
    return _see("/password/forgot?sent=true")


@router.get("/password/reset/{token}", response_class=HTMLResponse)
def reset_form(token: str, request: Request, runtime: RuntimeDep, db: DB) -> Response:
    try:
        runtime.accounts(db, source="web").check_password_reset(token)
    except ResetLinkInvalid as exc:
        return _render(request, "password_reset.html", 400, invalid=exc.detail)
    return _render(request, "password_reset.html", token=token)


@router.post("/password/reset/{token}", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def reset(
    token: str,
    request: Request,
    runtime: RuntimeDep,
    db: DB,
    password: FormText = "",
    confirm: FormText = "",
) -> Response:
    """Set the new password (typed twice); every session of the account ends, this browser's
    too, so the person logs in with it next."""
    if not password or password != confirm:
        field, message = (
            ("password", "choose a new password")
            if not password
            else ("confirm", "the two passwords are not the same: type it again")
        )
        return _render(request, "password_reset.html", 422, token=token, errors={field: message})
    try:
        runtime.accounts(db, source="web").reset_password(token, password)
    except ResetLinkInvalid as exc:
        return _render(request, "password_reset.html", 400, invalid=exc.detail)
    except WeakPassword as exc:
        return _render(
            request, "password_reset.html", 422, token=token, errors={"password": exc.detail}
        )
    response = _see("/login?done=reset")
    clear_session_cookie(response)
    return response
