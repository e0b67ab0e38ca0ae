"""What changed between two policy versions (P8.1, P8.2): the page the policy mail links to.

Plain HTML, readable by anyone, without script and with every optional cookie refused.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from privault.clock import SystemClock
from privault.policy.errors import PolicyVersionNotFound
from privault.policy.store import PolicyStore
from privault.web.deps import DB
from privault.web.pages import templates

router = APIRouter(include_in_schema=False)


@router.get("/privacy/diff/{old}/{new}", response_class=HTMLResponse)
def policy_changes(old: str, new: str, request: Request, db: DB) -> HTMLResponse:
    """Each change from version ``old`` to ``new`` as a sentence, and whether it needs
    people's fresh consent; a page saying so (404) for a version that does not exist."""
    try:
        for version in (old, new):
            if not version.isdigit():
                raise PolicyVersionNotFound(f"there is no policy version {version}")
        changes = PolicyStore(db, SystemClock()).compare(int(old), int(new))
    except PolicyVersionNotFound as exc:
        return templates.TemplateResponse(
            request, "policy_missing.html", {"detail": exc.detail}, status_code=404
        )
    return templates.TemplateResponse(
        request, "policy_diff.html", {"old": old, "new": new, "diff": changes}
    )
