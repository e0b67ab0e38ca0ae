"""The cookie banner's API (P1.2, P11.3): what to ask, and the choice made.

Same-origin only: no CORS headers are sent, so a page of another site cannot read the
answer, and its browser will not send the JSON ``PUT`` at all (it needs a preflight this
API does not answer). Works for visitors and for people logged in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StrictBool
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from privault.consent.cookies import (
    BannerCategory,
    Choice,
    CookieVersions,
    banner,
    consent_id_from_cookie,
    cookie_value,
    lifetime_words,
    record_first_choice,
)
from privault.policy.model import CONSENT_COOKIE
from privault.runtime import Runtime
from privault.service.schemas import Strict
from privault.web.deps import RuntimeDep, in_transaction, session_token, viewer

router = APIRouter(tags=["consent"])

NO_STORE = "no-store"
CategoryName = Annotated[str, Field(max_length=40)]


class ChoiceIn(Strict):
    choices: dict[CategoryName, StrictBool] = Field(
        max_length=20,
        description="Every category of the banner, accepted (true) or refused (false).",
        examples=[{"strictly_necessary": True, "analytics": False, "advertising": True}],
    )


class CookieOut(BaseModel):
    name: str
    provider: str
    purpose: str
    kind: str
    lifetime: str | None = Field(description="ISO 8601 duration; null for a session cookie.")
    lifetime_text: str = Field(description='In plain words: "6 months", "2 years".')


class CategoryOut(BaseModel):
    id: str
    title: str
    description: str
    always_on: bool
    gpc_refuses: bool
    cookies: list[CookieOut]


class ChoiceOut(BaseModel):
    choices: dict[str, bool]
    given_at: datetime
    expires_at: datetime


class VersionsOut(BaseModel):
    banner: str
    cookies: str
    policy: int


class ConsentOut(BaseModel):
    ask: bool = Field(description="No live choice: show the banner.")
    gpc: bool = Field(description="The browser sent Sec-GPC: 1.")
    categories: list[CategoryOut]
    choice: ChoiceOut | None
    versions: VersionsOut


def _gpc(request: Request) -> bool:
    return request.headers.get("sec-gpc", "").strip() == "1"


def _category(category: BannerCategory) -> CategoryOut:
    return CategoryOut(
        id=category.id,
        title=category.title,
        description=category.description,
        always_on=category.always_on,
        gpc_refuses=category.gpc_refuses,
        cookies=[
            CookieOut(
                name=c.name,
                provider=c.provider,
                purpose=c.purpose,
                kind=str(c.kind),
                lifetime=None if c.lifetime is None else str(c.lifetime),
                lifetime_text=lifetime_words(c),
            )
            for c in category.cookies
        ],
    )


#: The banner's categories as sent, by the banner text and cookie list versions, which
#: they follow from: the same for every request under one policy, so built once.
_CATEGORIES: dict[tuple[str, str], list[CategoryOut]] = {}


def _categories(runtime: Runtime) -> list[CategoryOut]:
    versions: CookieVersions = runtime.cookie_versions
    key = (versions.banner, versions.cookies)
    categories = _CATEGORIES.get(key)
    if categories is None:
        categories = _CATEGORIES[key] = [_category(c) for c in banner(runtime.policy)]
    return categories


def _out(runtime: Runtime, choice: Choice | None, gpc: bool) -> ConsentOut:
    versions: CookieVersions = runtime.cookie_versions
    return ConsentOut(
        ask=choice is None,
        gpc=gpc,
        categories=_categories(runtime),
        choice=None
        if choice is None
        else ChoiceOut(
            choices=choice.choices, given_at=choice.given_at, expires_at=choice.expires_at
        ),
        versions=VersionsOut(
            banner=versions.banner, cookies=versions.cookies, policy=versions.policy
        ),
    )


@router.get("/consent", response_model=ConsentOut)
async def read_consent(request: Request, response: Response, runtime: RuntimeDep) -> ConsentOut:
    """The banner's categories and cookies, and this browser's live choice, if any
    (``ask`` is true when there is none: never given, expired, or given under another
    banner text, cookie list or policy version)."""
    gpc = _gpc(request)
    consent_id = consent_id_from_cookie(request.cookies.get(CONSENT_COOKIE))

    def work(db: Session) -> Choice | None:
        caller = viewer(request, runtime, db)
        return runtime.cookie_consents(db).current(
            consent_id, subject_id=caller.subject_id if caller else None, gpc=gpc
        )

    choice = await in_transaction(runtime, work, runtime.autocommit)
    response.headers["Cache-Control"] = NO_STORE
    return _out(runtime, choice, gpc)


@router.put("/consent", response_model=ConsentOut)
async def give_consent(
    body: ChoiceIn, request: Request, response: Response, runtime: RuntimeDep
) -> ConsentOut:
    """Record this browser's choice (with ``Sec-GPC: 1``, advertising is stored as refused)
    and set the ``privault_consent`` cookie for as long as the choice holds. A cookie
    naming a choice made by another logged-in person is refused (403 ``consent_not_yours``);
    without a login such a cookie gets a new consent id instead."""
    gpc = _gpc(request)
    consent_id = consent_id_from_cookie(request.cookies.get(CONSENT_COOKIE))

    ip = request.client.host if request.client else None

    def work(db: Session) -> Choice:
        caller = viewer(request, runtime, db)
        return runtime.cookie_consents(db).record(
            consent_id,
            body.choices,
            subject_id=caller.subject_id if caller else None,
            gpc=gpc,
            ip=ip,
        )

    engine: AsyncEngine | None = request.app.state.loop_writes
    if engine is not None and consent_id is None and session_token(request) is None:
        # A first visit's choice: one INSERT, on the event loop.
        choice = await record_first_choice(
            engine,
            runtime.policy,
            runtime.cookie_versions,
            runtime.clock,
            body.choices,
            gpc=gpc,
            ip=ip,
        )
    else:
        choice = await in_transaction(runtime, work, runtime.autocommit)
    response.set_cookie(
        CONSENT_COOKIE,
        cookie_value(choice),
        max_age=int((choice.expires_at - choice.given_at).total_seconds()),
        path="/",
        samesite="lax",
        secure=runtime.settings.base_url.startswith("https:"),
        httponly=False,  # consent.js reads the accepted categories from it
    )
    response.headers["Cache-Control"] = NO_STORE
    return _out(runtime, choice, gpc)
