"""Registration, verification, login sessions and the caller's account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from privault.runtime import Runtime
from privault.service.accounts import AccountSummary
from privault.service.schemas import (
    ClosedOut,
    LoginIn,
    LoginOut,
    MeOut,
    MePatch,
    PasswordIn,
    RegisterIn,
    RegisterOut,
    VerifyIn,
    VerifyOut,
)
from privault.web.deps import (
    DB,
    CallerDep,
    OpenCallerDep,
    RuntimeDep,
    clear_session_cookie,
    session_token,
    set_session_cookie,
)

router = APIRouter(tags=["accounts"])

#: A person reading and correcting their own account.
PURPOSE = "administration"


@router.post("/accounts", status_code=201, response_model=RegisterOut)
def register(body: RegisterIn, request: Request, runtime: RuntimeDep, db: DB) -> RegisterOut:
    """Create an account with a room; a verification link goes to the address. Registering
    accepts the privacy policy's current version (`GET /policy`)."""
    done = runtime.accounts(db).register(
        str(body.email),
        body.password,
        body.display_name,
        ip=request.client.host if request.client else None,
    )
    return RegisterOut(subject_id=done.subject_id, room_id=done.room_id)


@router.post("/accounts/verify", response_model=VerifyOut)
def verify(body: VerifyIn, runtime: RuntimeDep, db: DB) -> VerifyOut:
    runtime.accounts(db).verify_email(body.token)
    return VerifyOut(verified=True)


@router.post("/session", response_model=LoginOut)
def login(body: LoginIn, request: Request, response: Response, runtime: RuntimeDep) -> LoginOut:
    """Log in: the token comes back in the body and as the strictly necessary session cookie."""
    done = runtime.log_in(str(body.email), body.password)
    set_session_cookie(response, request, done.token)
    return LoginOut(token=done.token, expires_in=int(done.expires_in.total_seconds()))


@router.delete("/session", status_code=204)
def logout(request: Request, runtime: RuntimeDep, db: DB) -> Response:
    token = session_token(request)
    if token is not None:
        runtime.accounts(db).logout(token)
    response = Response(status_code=204)
    clear_session_cookie(response)
    return response


@router.get("/me", response_model=MeOut)
def me(caller: CallerDep, runtime: RuntimeDep, db: DB) -> MeOut:
    account = runtime.accounts(db).summary(caller.subject_id, purpose=PURPOSE)
    return _me(account, caller.subject_id, runtime, db)


@router.patch("/me", response_model=MeOut)
def correct_me(body: MePatch, caller: CallerDep, runtime: RuntimeDep, db: DB) -> MeOut:
    """Correct your email address or display name (``null`` clears the name)."""
    given = body.model_dump(exclude_unset=True)
    account = runtime.accounts(db).correct(
        caller.subject_id, email=given.get("email"), display_name=given.get("display_name", ...)
    )
    return _me(account, caller.subject_id, runtime, db)


def _me(account: AccountSummary, caller_id: str, runtime: Runtime, db: Session) -> MeOut:
    return MeOut(
        subject_id=caller_id,
        email=account.email,
        display_name=account.display_name,
        room_id=runtime.rooms(db).room_id_of(caller_id, purpose=PURPOSE),
        email_verified=account.email_verified,
    )


@router.put("/me/password", status_code=204)
def change_password(body: PasswordIn, caller: CallerDep, runtime: RuntimeDep, db: DB) -> Response:
    """Change the password; every other session of the account is closed."""
    runtime.accounts(db).change_password(
        caller.subject_id, body.current_password, body.new_password, keep_token=caller.token
    )
    return Response(status_code=204)


@router.delete("/me", response_model=ClosedOut, status_code=202)
def close_account(caller: OpenCallerDep, runtime: RuntimeDep, db: DB) -> ClosedOut:
    """Close the account at once (P0.4): login and PIN stop working, and the erasure of its
    data is filed. Needs a login from the last 15 minutes. Open also to a person who has
    not accepted the policy's current version (P8.3)."""
    request = runtime.accounts(db).close(caller.subject_id, caller.token, runtime.rights(db))
    assert request.due_at is not None
    return ClosedOut(erasure_request_id=request.id, erasure_due_at=request.due_at)
