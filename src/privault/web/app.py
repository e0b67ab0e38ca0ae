"""The FastAPI application: thin routers over the domain services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from privault import __version__
from privault.runtime import Runtime
from privault.service.schemas import ErrorOut
from privault.web import (
    acceptance_pages,
    account_pages,
    centre,
    consent_pages,
    console,
    errors,
    mail_links,
    pages,
    policy_pages,
    public,
    room_pages,
)
from privault.web.api import (
    accounts,
    analytics,
    cdrs,
    consent,
    consents,
    messages,
    pbx,
    policy,
    posts,
    profile,
    purchases,
    rights,
    rooms,
    staff,
)
from privault.web.headers import SecurityHeaders
from privault.web.limits import BodySizeLimit, JsonBodies
from privault.web.request_log import RequestLog

API = "/api/v1"
STATIC = Path(__file__).parent / "static"
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 415, 422)
}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """What lives as long as the app is served: the engines of its event loop (PostgreSQL),
    made and disposed of in the loop that serves."""
    runtime: Runtime = app.state.runtime
    engines = (runtime.on_loop(page_views=True), runtime.on_loop())
    app.state.loop_page_views, app.state.loop_writes = engines
    try:
        yield
    finally:
        app.state.loop_page_views = app.state.loop_writes = None
        for engine in engines:
            if engine is not None:
                await engine.dispose()


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="Privault",
        version=__version__,
        summary="Personal data of the conference-call service, kept as its privacy policy says.",
        openapi_url="/openapi.json",
        # ReDoc's page loads Google Fonts: a request to Google before any consent (P11.3);
        # FastAPI's /docs loads Swagger UI from a CDN: served from here instead, below.
        redoc_url=None,
        docs_url=None,
    )
    app.state.runtime = runtime
    app.state.loop_page_views = app.state.loop_writes = None  # until the lifespan starts
    errors.install(app)
    app.add_middleware(JsonBodies, also={API + cdrs.PATH: cdrs.MEDIA_TYPES})
    app.add_middleware(BodySizeLimit, limit=runtime.settings.max_body_bytes)
    app.add_middleware(errors.CatchAll)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLog, router=app.router)
    app.include_router(analytics.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(consents.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(consent.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(accounts.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(policy.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(profile.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(rooms.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(pbx.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(cdrs.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(purchases.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(posts.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(messages.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(rights.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(staff.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(pages.router)
    app.include_router(acceptance_pages.router)
    app.include_router(account_pages.router)
    app.include_router(room_pages.router)
    app.include_router(centre.router)
    app.include_router(public.router)
    app.include_router(consent_pages.router)
    app.include_router(policy_pages.router)
    app.include_router(mail_links.router)
    app.include_router(console.router)

    # The more specific mount first: /static would take /static/swagger/... too.
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        """The API's documentation, every file of it from this server: no CDN learns who
        reads it."""
        return pages.templates.TemplateResponse(request, "docs.html")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
