"""One table from errors to HTTP status and the JSON error shape ``{"error", "detail"}``."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from privault.errors import (
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PrivaultError,
)
from privault.vault import VaultError

log = logging.getLogger("privault.web")

STATUS: list[tuple[type[PrivaultError], int]] = [
    (Gone, 410),
    (NotAuthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (VaultError, 500),
]

HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    410: "gone",
    415: "unsupported_media_type",
    422: "invalid_request",
}


PUBLIC_DETAIL = {
    "tampered_ciphertext": (
        "a stored value failed its integrity check; the operators have been alerted"
    ),
    "default": "stored data could not be read; the operators have been alerted",
}


class SeeOther(Exception):
    """Answer a page's request with a redirect (303) to ``location``: raised by a page's
    dependency that sends the person elsewhere first."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def error(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The JSON error shape: ``error`` and ``detail``, and whatever ``extra`` keys the
    error carries for the client to act on."""
    body = {**(extra or {}), "error": code, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: PrivaultError) -> int:
    """The HTTP status of a domain error."""
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 400


_BAD_EMAIL = "value is not a valid email address: "


def _unquoted(message: str) -> str:
    """``email_validator``'s reason for refusing an address, without the parts of the address
    it may quote after a colon or in parentheses (a character, an IDNA label, an IPv6 literal)."""
    if not message.startswith(_BAD_EMAIL):
        return message
    reason = re.split(r":| \(", message.removeprefix(_BAD_EMAIL), maxsplit=1)[0].rstrip(".")
    return f"{_BAD_EMAIL}{reason}."


def _describe(exc: RequestValidationError) -> tuple[int, str, str]:
    """The first problem, naming where it is; never the submitted value."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return 400, "malformed_json", "the request body is not valid JSON"
    loc = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        message = "is not a known field"
    elif kind == "missing":
        message = "is required"
    else:
        message = _unquoted(str(first.get("msg", "is invalid")).removeprefix("Value error, "))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return 422, "invalid_request", f"{loc}: {message}{more}"


#: The methods a 405's ``Allow`` may name.
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed(request: Request) -> str:
    """Every method the requested path answers. Starlette's own ``Allow`` names only the
    methods of the first route whose path matches, and each method of a path is a route of
    its own. Mounts (static files) match any method: they answer for themselves."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return ", ".join(
        method
        for method in METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(PrivaultError)
    async def _domain(_: Request, exc: PrivaultError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            # The detail names a table and row: for the operators' log, not for the caller.
            log.error("request failed: %s: %s", exc.code, exc.detail)
            return error(status, exc.code, PUBLIC_DETAIL.get(exc.code, PUBLIC_DETAIL["default"]))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error(status, exc.code, exc.detail, headers, exc.extra)

    @app.exception_handler(SeeOther)
    async def _see_other(_: Request, exc: SeeOther) -> RedirectResponse:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(*_describe(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and "json" in request.headers.get("content-type", ""):
            # FastAPI's body reader answers a bare 400 when json.loads fails with something
            # other than a JSONDecodeError: bad UTF-8, nesting too deep, an over-long integer.
            return error(400, "malformed_json", "the request body is not valid JSON")
        code = HTTP_CODES.get(exc.status_code, "error")
        headers = exc.headers
        if exc.status_code == 405 and (allowed := _allowed(request)):
            headers = {**(headers or {}), "Allow": allowed}
        return error(exc.status_code, code, str(exc.detail), headers)


class CatchAll:
    """Answers 500 in the JSON shape for anything unexpected, and logs the type and the stack only.

    An exception handler for ``Exception`` would not do: Starlette re-raises after it,
    and the server would log the message, which may quote SQL parameters or input.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # the last line of defence: still a 500, never silence
            log.error(
                "unexpected %s at\n%s",
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            if started or scope["type"] != "http":
                return
            await error(500, "internal_error", "something went wrong on our side")(
                scope, receive, send
            )
