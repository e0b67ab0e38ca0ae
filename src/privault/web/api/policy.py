"""The privacy policy's current version, and a person's acceptance of it (P8.3).

Everything here answers before the current version is accepted: a person must be able
to read what they are asked to accept, accept it, or refuse it and leave with their data.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from privault.consent.acceptance import Answer
from privault.consent.acceptance_schemas import (
    AcceptanceOut,
    AnswerOut,
    LinkOut,
    PolicyOut,
    RefusedOut,
    VersionIn,
)
from privault.policy.store import PolicyStore
from privault.runtime import Runtime
from privault.web.deps import DB, OpenCallerDep, RuntimeDep

router = APIRouter(tags=["policy"])

API = "/api/v1"
#: What a person who refuses the policy can still do (the policy implies both).
AFTER_REFUSAL = [
    LinkOut(what="export your data", method="GET", href=f"{API}/me/export"),
    LinkOut(what="file an access or portability request", method="POST", href=f"{API}/me/requests"),
    LinkOut(what="close your account", method="DELETE", href=f"{API}/me"),
]


def policy_url(runtime: Runtime, version: int) -> str:
    return f"{runtime.settings.base_url.rstrip('/')}/privacy/v/{version}"


def _answer(answer: Answer | None) -> AnswerOut | None:
    return None if answer is None else AnswerOut(**vars(answer))


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/policy", response_model=PolicyOut)
def current_policy(runtime: RuntimeDep, db: DB) -> PolicyOut:
    """The current version of the privacy policy: its number, when it took effect and
    where to read it. Anyone may ask."""
    version = runtime.policy_version
    effective_at = PolicyStore(db, runtime.clock).effective_at(version)
    return PolicyOut(
        version=version,
        effective_date=effective_at.date() if effective_at else runtime.policy.meta.effective_date,
        url=policy_url(runtime, version),
    )


@router.get("/me/policy", response_model=AcceptanceOut)
def my_acceptance(caller: OpenCallerDep, runtime: RuntimeDep, db: DB) -> AcceptanceOut:
    """Whether you accepted the current version, when, and what you accepted last."""
    state = runtime.acceptances(db).state(caller.subject_id)
    return AcceptanceOut(
        version=state.version,
        url=policy_url(runtime, state.version),
        accepted=state.accepted,
        answer=_answer(state.answer),
        last_accepted=_answer(state.last_accepted),
    )


@router.post("/me/policy/accept", response_model=AnswerOut)
def accept_policy(
    body: VersionIn, request: Request, caller: OpenCallerDep, runtime: RuntimeDep, db: DB
) -> AnswerOut:
    """Accept the current version (recorded with the time and your network as proof).
    Another version answers 409 ``policy_version_not_current``."""
    answer = runtime.acceptances(db).accept(caller.subject_id, body.version, ip=_client(request))
    return AnswerOut(**vars(answer))


@router.post("/me/policy/refuse", response_model=RefusedOut)
def refuse_policy(
    body: VersionIn, request: Request, caller: OpenCallerDep, runtime: RuntimeDep, db: DB
) -> RefusedOut:
    """Refuse the current version (recorded as proof). The service stays closed to you;
    exporting your data and closing your account stay open, as the answer's links say.
    Another version answers 409 ``policy_version_not_current``."""
    answer = runtime.acceptances(db).refuse(caller.subject_id, body.version, ip=_client(request))
    return RefusedOut(version=answer.version, refused_at=answer.at, open=AFTER_REFUSAL)
