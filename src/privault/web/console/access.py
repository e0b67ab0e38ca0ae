"""Who may see which page of the staff console, and how a page knows who is asking.

The staff session travels in a cookie of its own, ``privault_staff``: HttpOnly,
SameSite=Strict, only under /staff, for as long as the staff session lasts (a working day).
Each page needs one of the purposes of ``PAGES`` (P4.1): a role that holds none of them
gets a 403 page, logged as a refusal, and the page is left out of its navigation.

- Requests, holds, the disclosure register and statistics releases: ``legal``, the
  purpose the staff API answers requests under and that every disclosure and release
  falls under (``disclosure.service.APPROVING_PURPOSE``).
- The outbox: ``support`` or ``administration``. It shows what became of mails (state,
  template, attempts, times), never an address or what a mail says: those stay sealed.
- The access log: ``security`` or ``compliance``: it names actors, actions and
  pseudonymous subject ids, for investigating incidents and checking staff keep the rules.
- The data map: every staff member. It is the policy file drawn, with counts; it names
  no one, so it needs no purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse

from privault.errors import PrivaultError
from privault.runtime import Runtime
from privault.staff.errors import StaffSessionInvalid
from privault.staff.service import Staff
from privault.web.deps import DB, RuntimeDep
from privault.web.errors import PUBLIC_DETAIL, SeeOther, log, status_of
from privault.web.guards import check_csrf, csrf_token
from privault.web.pages import templates

STAFF_COOKIE = "privault_staff"
COOKIE_PATH = "/staff"
LOGIN = "/staff/login"


@dataclass(frozen=True)
class Page:
    key: str
    path: str
    title: str
    #: The role must hold one of these; none listed: every staff member.
    purposes: tuple[str, ...]


#: The console's pages in the order of its navigation.
PAGES = (
    Page("requests", "/staff/requests", "Requests", ("legal",)),
    Page("holds", "/staff/holds", "Legal holds", ("legal",)),
    Page("disclosures", "/staff/disclosures", "Disclosures", ("legal",)),
    Page("statistics", "/staff/statistics", "Statistics releases", ("legal",)),
    Page("outbox", "/staff/outbox", "Outbox", ("support", "administration")),
    Page("audit", "/staff/audit", "Access log", ("security", "compliance")),
    Page("datamap", "/staff/datamap", "Data map", ()),
)
PAGE = {page.key: page for page in PAGES}


@dataclass(frozen=True)
class StaffCaller:
    """A logged-in staff member on a console page, with their session's form token."""

    staff: Staff
    token: str
    csrf: str
    #: The pages the role may see, for the navigation.
    pages: tuple[Page, ...]

    @property
    def actor(self) -> str:
        return self.staff.actor


def visible(runtime: Runtime, role: str) -> tuple[Page, ...]:
    held = set(runtime.policy.role(role).purposes)
    return tuple(p for p in PAGES if not p.purposes or held.intersection(p.purposes))


def _caller(request: Request, runtime: RuntimeDep, db: DB) -> StaffCaller:
    """The staff member of the session cookie; a visitor (or an ended session) is sent to
    the login page, which brings them back."""
    token = request.cookies.get(STAFF_COOKIE, "")
    try:
        staff = runtime.staff(db).authenticate(token) if token else None
    except StaffSessionInvalid:
        staff = None
    if staff is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SeeOther(f"{LOGIN}?{urlencode({'next': back})}")
    caller = StaffCaller(staff, token, csrf_token(runtime, token), visible(runtime, staff.role))
    request.state.staff = caller
    return caller


def page_of(key: str) -> Callable[..., StaffCaller]:
    """The dependency of the page ``key``: the staff member, whose role must hold one of
    the page's purposes (``PurposeRefused``, logged, otherwise)."""
    page = PAGE[key]

    def dependency(request: Request, runtime: RuntimeDep, db: DB) -> StaffCaller:
        caller = _caller(request, runtime, db)
        if page.purposes:
            held = runtime.policy.role(caller.staff.role).purposes
            purpose = next((p for p in page.purposes if p in held), page.purposes[0])
            runtime.staff(db).require(caller.staff, purpose)
        return caller

    return dependency


def checked(caller: StaffCaller, runtime: Runtime, sent: str) -> None:
    """Raises ``CsrfTokenInvalid`` unless ``sent`` is the staff session's form token."""
    check_csrf(runtime, caller.token, sent)


def page_context(request: Request, **context: Any) -> dict[str, Any]:
    caller: StaffCaller | None = getattr(request.state, "staff", None)
    return {"me": caller, "csrf": caller.csrf if caller else "", **context}


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, f"console/{template}", page_context(request, **context), status_code=status
    )


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status, status_code=status, message=message)


class ConsoleRoute(APIRoute):
    """A console page: a domain error answers as a page with its status (403 for a role
    that may not see it, 404 for a missing thing, 500 for a stored value that fails its
    check), never JSON or a stack trace; nothing the console answers is stored by a
    browser or a proxy."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except PrivaultError as exc:
                status = status_of(exc)
                message = exc.detail
                if status >= 500:
                    # The detail names a table and row: for the operators' log only.
                    log.error("console page failed: %s: %s", exc.code, exc.detail)
                    message = PUBLIC_DETAIL.get(exc.code, PUBLIC_DETAIL["default"])
                response = error_page(request, status, message)
            except RequestValidationError:
                response = error_page(request, 400, "this address or form is not one we sent")
            response.headers["Cache-Control"] = "no-store"
            return response

        return page


StaffPageDep = Annotated[StaffCaller, Depends(_caller)]
