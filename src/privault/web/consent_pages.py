"""The cookie declaration (P11.1, P11.2): every cookie the site may set, from the policy file.

Plain HTML that works without script and with every optional cookie refused (P11.4); the
button to change the choice is wired by consent.js.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from privault.policy import render
from privault.policy.types import duration_words
from privault.web.deps import RuntimeDep
from privault.web.pages import templates

router = APIRouter(include_in_schema=False)


@router.get("/cookies", response_class=HTMLResponse)
def cookie_declaration(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """Each banner category with its cookies: name, provider, purpose, category, session or
    persistent, and lifetime in plain words. Nothing on it is written by hand."""
    return templates.TemplateResponse(
        request,
        "cookies.html",
        {
            "declaration": render.cookie_declaration(runtime.policy),
            "site": runtime.policy.meta.name,
            "choice_lasts": duration_words(runtime.policy.consent.lifetime),
        },
    )
