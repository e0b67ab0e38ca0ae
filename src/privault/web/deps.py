"""Request-scoped collaborators: the runtime, a transaction, the logged-in subject."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from privault.consent.errors import PolicyAcceptanceRequired
from privault.errors import keeps_changes
from privault.runtime import Runtime
from privault.service.errors import SessionInvalid
from privault.service.pbx import PbxTokenInvalid, PbxTokenService
from privault.staff.errors import StaffSessionInvalid
from privault.staff.service import Staff
from privault.web.errors import SeeOther

SESSION_COOKIE = "privault_session"
#: Where the web sends a person who has not accepted the policy's current version.
ACCEPTANCE_PAGE = "/policy/accept"
T = TypeVar("T")


async def get_runtime(request: Request) -> Runtime:
    """The app's runtime: no I/O, so no trip to a worker thread, except once every
    PRIVAULT_POLICY_CHECK_INTERVAL seconds to look which policy version is in force (a
    version published for a later date is served from then, without a restart)."""
    runtime: Runtime = request.app.state.runtime
    if runtime.policy_check_due():
        await run_in_threadpool(runtime.follow_policy)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_db(runtime: RuntimeDep) -> AsyncIterator[Session]:
    """One transaction per request, committed before the response is sent, unless it failed
    (see ``keeps_changes``). Opening the session does no I/O (it connects on first use, on the
    endpoint's worker thread), so only the commit and the close take a trip to a worker
    thread, together."""
    session = runtime.factory()
    session.begin()
    commit = True
    try:
        yield session
    except BaseException as exc:
        commit = keeps_changes(exc)
        raise
    finally:
        await run_in_threadpool(_end, session, commit)


async def in_transaction(
    runtime: Runtime,
    work: Callable[[Session], T],
    factory: sessionmaker[Session] | None = None,
) -> T:
    """``work`` in a transaction of its own (of ``factory``, else the runtime's), on a
    worker thread, committed as ``get_db`` commits: for a hot endpoint, whose whole
    database work takes one trip to a worker thread instead of one for the endpoint and
    one for the commit."""
    return await run_in_threadpool(_transaction, runtime, work, factory)


def _transaction(
    runtime: Runtime, work: Callable[[Session], T], factory: sessionmaker[Session] | None
) -> T:
    with runtime.transaction(factory) as session:
        return work(session)


def _end(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
    finally:
        session.close()


DB = Annotated[Session, Depends(get_db, scope="function")]


def session_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    """The strictly necessary session cookie: out of reach of scripts, not sent on
    cross-site posts, and only over https when the site is served so."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


@dataclass(frozen=True)
class Caller:
    subject_id: str
    token: str


def get_open_caller(request: Request, runtime: RuntimeDep, db: DB) -> Caller:
    """The logged-in person, whether or not they have accepted the policy's current
    version. Taking it instead of ``CallerDep`` is what puts a route on the allow-list of
    P8.3: the policy, acceptance, export, erasure, withdrawing consent, nothing else."""
    token = session_token(request)
    if token is None:
        raise SessionInvalid("log in first: send the session cookie or a bearer token")
    return Caller(runtime.accounts(db).authenticate(token), token)


def get_caller(request: Request, runtime: RuntimeDep, db: DB) -> Caller:
    """The logged-in person, who has accepted the policy's current version: raises
    ``PolicyAcceptanceRequired`` (403, with the version) otherwise (P8.3). Costs one
    indexed query beside the session's."""
    caller = get_open_caller(request, runtime, db)
    runtime.acceptances(db).require(caller.subject_id)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
#: The allow-list marker of P8.3: a route taking it answers before acceptance.
OpenCallerDep = Annotated[Caller, Depends(get_open_caller)]


async def get_viewer(request: Request, runtime: RuntimeDep, db: DB) -> Caller | None:
    """The logged-in caller, or ``None`` for a visitor (also when the session has expired):
    for pages anyone may see, which show members more. A member who has not accepted the
    policy's current version gets ``PolicyAcceptanceRequired`` (P8.3). A visitor costs no
    trip to a worker thread; a session is checked on one, as every database call is."""
    if session_token(request) is None:
        return None
    return await run_in_threadpool(_accepted_viewer, request, runtime, db)


def _accepted_viewer(request: Request, runtime: Runtime, db: Session) -> Caller | None:
    caller = viewer(request, runtime, db)
    if caller is not None:
        runtime.acceptances(db).require(caller.subject_id)
    return caller


def viewer(request: Request, runtime: Runtime, db: Session) -> Caller | None:
    """Who is logged in, if anyone, for code already on a worker thread (see
    ``in_transaction``): the cookie banner and analytics, which answer visitors too and
    so do not ask whether the policy was accepted."""
    token = session_token(request)
    if token is None:
        return None
    try:
        return Caller(runtime.accounts(db).authenticate(token), token)
    except SessionInvalid:
        return None


ViewerDep = Annotated[Caller | None, Depends(get_viewer)]


async def get_page_viewer(request: Request, runtime: RuntimeDep, db: DB) -> Caller | None:
    """``get_viewer`` for a web page: a member who has not accepted the policy's current
    version is sent to the acceptance page instead (P8.3)."""
    try:
        return await get_viewer(request, runtime, db)
    except PolicyAcceptanceRequired:
        raise SeeOther(ACCEPTANCE_PAGE) from None


PageViewerDep = Annotated[Caller | None, Depends(get_page_viewer)]

#: Where the web sends a visitor who must log in first.
LOGIN_PAGE = "/login"


async def get_page_caller(request: Request, runtime: RuntimeDep, db: DB) -> Caller:
    """The logged-in person, for a page only members see: a visitor (or an expired session)
    is sent to the login page, which brings them back here afterwards; a member who has not
    accepted the policy's current version is sent to the acceptance page (P8.3)."""
    caller = await get_page_viewer(request, runtime, db)
    if caller is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SeeOther(f"{LOGIN_PAGE}?{urlencode({'next': back})}")
    return caller


PageCallerDep = Annotated[Caller, Depends(get_page_caller)]


@dataclass(frozen=True)
class Pbx:
    name: str


def get_pbx(request: Request, runtime: RuntimeDep, db: DB) -> Pbx:
    """The PBX calling, by its service token (``privault pbx token create NAME``)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise PbxTokenInvalid("send the PBX service token as a bearer token")
    return Pbx(PbxTokenService(db, runtime.clock).authenticate(value.strip()))


PbxDep = Annotated[Pbx, Depends(get_pbx)]


def get_staff(request: Request, runtime: RuntimeDep, db: DB) -> Staff:
    """The staff member calling, by the bearer token of a staff session."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise StaffSessionInvalid("log in as staff first and send the session as a bearer token")
    return runtime.staff(db).authenticate(value.strip())


StaffDep = Annotated[Staff, Depends(get_staff)]
