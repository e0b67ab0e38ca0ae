"""The privacy policy pages (P8.1): the version in force at /privacy, every stored version
at /privacy/v/N, rendered from the policy (policy/render.py), never written by hand; and
what changed between two versions at /privacy/diff/A/B, the page the policy mail links to
(P8.2). Plain HTML, readable by anyone, without script and with every optional cookie
refused."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from privault.policy.errors import PolicyVersionNotFound
from privault.policy.render import PolicyPages
from privault.policy.store import PolicyStore
from privault.policy.wording import Format
from privault.web.deps import DB, RuntimeDep
from privault.web.pages import templates

router = APIRouter(include_in_schema=False)
_NUMBER = re.compile(r"[0-9]{1,10}")


def _pages(runtime: RuntimeDep, db: DB) -> PolicyPages:
    return PolicyPages(PolicyStore(db, runtime.clock), runtime.policy, runtime.policy_version)


@router.get("/privacy", response_class=HTMLResponse)
def privacy_policy(request: Request, runtime: RuntimeDep, db: DB) -> HTMLResponse:
    """The policy in force: the one the code enforces, with links to every version."""
    body = _pages(runtime, db).current(Format.HTML)
    return _page(request, runtime, body)


@router.get("/privacy/v/{number}", response_class=HTMLResponse)
def privacy_policy_version(
    request: Request, runtime: RuntimeDep, db: DB, number: str
) -> HTMLResponse:
    """A stored version as it was; an unknown one is a page saying so (404)."""
    try:
        body = _pages(runtime, db).stored(_version(number), Format.HTML)
    except PolicyVersionNotFound as exc:
        return _missing(request, runtime, exc)
    return _page(request, runtime, body)


@router.get("/privacy/diff/{old}/{new}", response_class=HTMLResponse)
def policy_changes(
    request: Request, runtime: RuntimeDep, db: DB, old: str, new: str
) -> HTMLResponse:
    """Each change from version ``old`` to ``new`` as a sentence, and whether it needs
    people's fresh consent; a page saying so (404) for a version that does not exist."""
    try:
        changes = PolicyStore(db, runtime.clock).compare(_version(old), _version(new))
    except PolicyVersionNotFound as exc:
        return _missing(request, runtime, exc)
    return templates.TemplateResponse(
        request,
        "policy_diff.html",
        {"old": old, "new": new, "diff": changes, "site": runtime.policy.meta.name},
    )


def _version(number: str) -> int:
    if not _NUMBER.fullmatch(number):
        raise PolicyVersionNotFound("there is no policy version of that number")
    return int(number)


def _missing(request: Request, runtime: RuntimeDep, exc: PolicyVersionNotFound) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "privacy_missing.html",
        {"site": runtime.policy.meta.name, "detail": exc.detail},
        status_code=404,
    )


def _page(request: Request, runtime: RuntimeDep, body: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "privacy.html",
        {"body": Markup(body), "site": runtime.policy.meta.name},  # noqa: S704 (autoescaped)
    )
