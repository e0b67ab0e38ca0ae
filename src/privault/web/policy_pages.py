"""The privacy policy pages (P8.1): the version in force at /privacy, every stored version
at /privacy/v/N, rendered from the policy (policy/render.py), never written by hand."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from privault.policy.errors import UnknownPolicyVersion
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
        if not _NUMBER.fullmatch(number):
            raise UnknownPolicyVersion(f"no policy version {number!r}")
        body = _pages(runtime, db).stored(int(number), Format.HTML)
    except UnknownPolicyVersion:
        return templates.TemplateResponse(
            request,
            "privacy_missing.html",
            {"site": runtime.policy.meta.name},
            status_code=404,
        )
    return _page(request, runtime, body)


def _page(request: Request, runtime: RuntimeDep, body: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "privacy.html",
        {"body": Markup(body), "site": runtime.policy.meta.name},  # noqa: S704 (autoescaped)
    )
