"""Request-scoped collaborators: the runtime, a transaction, the logged-in subject."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from privault.errors import PrivaultError
from privault.runtime import Runtime
from privault.service.errors import SessionInvalid
from privault.service.pbx import PbxTokenInvalid, PbxTokenService
from privault.staff.errors import StaffSessionInvalid
from privault.staff.service import Staff

SESSION_COOKIE = "privault_session"


async def get_runtime(request: Request) -> Runtime:
    """The app's runtime: no I/O, so no trip to a worker thread."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_db(runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent.

    A domain error rolls it back, unless the error says its record must stay.
    """
    with runtime.factory() as session:
        session.begin()
        try:
            yield session
        except PrivaultError as exc:
            if exc.keeps_changes:
                session.commit()
            raise
        session.commit()


DB = Annotated[Session, Depends(get_db, scope="function")]


def session_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


@dataclass(frozen=True)
class Caller:
    subject_id: str
    token: str


def get_caller(request: Request, runtime: RuntimeDep, db: DB) -> Caller:
    token = session_token(request)
    if token is None:
        raise SessionInvalid("log in first: send the session cookie or a bearer token")
    return Caller(runtime.accounts(db).authenticate(token), token)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_viewer(request: Request, runtime: RuntimeDep, db: DB) -> Caller | None:
    """The logged-in caller, or ``None`` for a visitor (also when the session has expired):
    for pages anyone may see, which show members more. A visitor costs no trip to a worker
    thread; a session is checked on one, as every database call is."""
    token = session_token(request)
    if token is None:
        return None
    try:
        subject_id = await run_in_threadpool(runtime.accounts(db).authenticate, token)
    except SessionInvalid:
        return None
    return Caller(subject_id, token)


ViewerDep = Annotated[Caller | None, Depends(get_viewer)]


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
