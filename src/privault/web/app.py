"""The FastAPI application: thin routers over the domain services."""

from __future__ import annotations

from fastapi import FastAPI

from privault import __version__
from privault.runtime import Runtime
from privault.service.schemas import ErrorOut
from privault.web import errors, pages, public
from privault.web.api import (
    accounts,
    cdrs,
    messages,
    pbx,
    posts,
    profile,
    purchases,
    rights,
    rooms,
    staff,
)
from privault.web.limits import BodySizeLimit, JsonBodies

API = "/api/v1"
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 415, 422)
}


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Privault",
        version=__version__,
        summary="Personal data of the conference-call service, kept as its privacy policy says.",
        openapi_url="/openapi.json",
    )
    app.state.runtime = runtime
    errors.install(app)
    app.add_middleware(JsonBodies, also={API + cdrs.PATH: cdrs.MEDIA_TYPES})
    app.add_middleware(BodySizeLimit, limit=runtime.settings.max_body_bytes)
    app.add_middleware(errors.CatchAll)
    app.include_router(accounts.router, prefix=API, responses=ERROR_RESPONSES)
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
    app.include_router(public.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
