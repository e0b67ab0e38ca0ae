"""Request ids and the access log: one line per request that names its route, never its path."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from privault import logs

log = logging.getLogger("privault.access")

HEADER = b"x-request-id"
#: Any other method is logged as ``OTHER``: what a client sends there is not ours to keep.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _templates(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[int, str]]:
    """Each route (by id) and its full path template, through the routers FastAPI keeps
    as wrappers around each router included with a prefix."""
    for item in routes:
        inner = getattr(item, "original_router", None)
        if inner is not None:
            yield from _templates(inner.routes, prefix + item.include_context.prefix)
        elif isinstance(getattr(item, "path", None), str):
            yield id(item), prefix + item.path


def _incoming(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            text = value.decode("latin-1")
            return text if logs.SAFE_ID.fullmatch(text) else None
    return None


class RequestLog:
    """Gives each HTTP request an id, the client's ``X-Request-ID`` when it is a plain
    token (``logs.SAFE_ID``) or else a fresh one, which the response echoes and every
    record logged while answering carries; then logs one line: method, route template,
    status, milliseconds. Never the path or the query, which may hold a token, an address
    or a username, nor the client's address. Plain ASGI, like ``SecurityHeaders``."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router
        self.paths: dict[int, str] | None = None

    def template(self, scope: Scope, root_path: str) -> str:
        """The route's path template (``/api/v1/me/requests/{request_id}``), a mount's
        prefix and ``/{path}``, or ``-`` when nothing matched."""
        route = scope.get("route")
        if route is not None:
            if self.paths is None:  # the routes are all there once a request comes
                self.paths = dict(_templates(self.router.routes))
            return self.paths.get(id(route), str(getattr(route, "path", "?")))
        mounted = str(scope.get("root_path", ""))
        if mounted != root_path:
            return mounted.removeprefix(root_path) + "/{path}"
        return "-"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or logs.new_id()
        token = logs.REQUEST_ID.set(request_id)
        root_path = str(scope.get("root_path", ""))
        started = time.perf_counter()
        status = 500

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [pair for pair in message.get("headers", ()) if pair[0] != HEADER]
                message["headers"] = [*headers, (HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            millis = round((time.perf_counter() - started) * 1000, 1)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = self.template(scope, root_path)
            fields = {"method": method, "route": route, "status": status, "duration_ms": millis}
            log.info("%s %s %d %.1f ms", method, route, status, millis, extra=fields)
            logs.REQUEST_ID.reset(token)
