"""First-party analytics (P2.1, P2.2): page views from consent.js, with analytics consent.

Same-origin only, like the banner's API: the JSON body needs a CORS preflight this API
does not answer, so no other site's page can post views in a visitor's name.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from privault.consent.analytics import MAX_URL, PageEvent, record_on_known_visit
from privault.consent.cookies import consent_id_from_cookie
from privault.policy.model import CONSENT_COOKIE
from privault.service.schemas import Strict
from privault.web.deps import RuntimeDep, in_transaction, session_token, viewer

router = APIRouter(tags=["analytics"])


class PageViewIn(Strict):
    visit: str = Field(
        pattern=r"^[A-Za-z0-9_-]{16,64}$",
        description="A random id the page keeps for the visit (the tab's sessionStorage).",
    )
    page: str = Field(
        min_length=1,
        max_length=MAX_URL,
        description="The page viewed; only its path is kept.",
        examples=["/contact"],
    )
    referrer: str | None = Field(
        default=None,
        max_length=MAX_URL,
        description="Where the visitor came from; only scheme, host and path are kept.",
    )
    at: datetime | None = Field(
        default=None, description="When the page was shown; ignored: the server's time counts."
    )


@router.post("/analytics/events", status_code=status.HTTP_204_NO_CONTENT)
async def record_page_view(body: PageViewIn, request: Request, runtime: RuntimeDep) -> Response:
    """Count a page view. Refused (403 ``analytics_not_consented``, nothing stored) unless
    this browser's cookie choice accepts analytics. Tied to the person only when logged in."""
    event = PageEvent(body.visit, body.page, body.referrer)
    consent_id = consent_id_from_cookie(request.cookies.get(CONSENT_COOKIE))
    # A visitor's view of a visit already made: on the event loop, in one statement.
    engine: AsyncEngine | None = request.app.state.loop_page_views
    tried = False
    if engine is not None and consent_id is not None and session_token(request) is None:
        tried = True
        if await record_on_known_visit(
            engine,
            event,
            consent_id=consent_id,
            versions=runtime.cookie_versions,
            clock=runtime.clock,
            partitions=runtime.partitions,
        ):
            return Response(status_code=status.HTTP_204_NO_CONTENT)

    def work(db: Session) -> None:
        caller = viewer(request, runtime, db)
        runtime.analytics(db).record(
            event,
            consent_id=consent_id,
            subject_id=caller.subject_id if caller else None,
            user_agent=request.headers.get("user-agent"),
            ip=request.client.host if request.client else None,
            known_visit_tried=tried,
        )

    await in_transaction(runtime, work, runtime.page_views)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
