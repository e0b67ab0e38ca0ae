"""The staff console under /staff: pages for staff behind a login with a second factor,
each page shown only to the roles whose purposes allow it (``access.PAGES``)."""

from __future__ import annotations

from fastapi import APIRouter

from privault.web.console import login, records, registers, requests

router = APIRouter(include_in_schema=False)
for part in (login, requests, registers, records):
    router.include_router(part.router)
