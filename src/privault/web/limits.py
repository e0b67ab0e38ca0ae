"""Refuse request bodies over the size limit before anything reads them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` so FastAPI's body reader passes it on instead of answering 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit} bytes")


class BodySizeLimit:
    """Answers 413 when Content-Length, or the streamed body, exceeds ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self._refuse(send)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        # BodyTooLarge is an HTTPException: the app's handler answers it in the JSON shape.
        await self.app(scope, limited_receive, send)

    async def _refuse(self, send: Send) -> None:
        await _answer(send, 413, "body_too_large", f"the request body is over {self.limit} bytes")


class JsonBodies:
    """The API takes JSON: a body sent as anything else gets 415 before it is parsed.

    ``also`` names the paths that take other media types too, and which (the PBX's CDRs
    as text/csv).
    """

    def __init__(
        self,
        app: ASGIApp,
        prefix: str = "/api/",
        also: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.also = {
            path: frozenset(kind.encode() for kind in kinds) for path, kinds in (also or {}).items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in {"POST", "PUT", "PATCH"}
            and scope["path"].startswith(self.prefix)
        ):
            headers = dict(scope["headers"])
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            has_body = (
                headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
            )
            allowed = self.also.get(scope["path"], frozenset({b"application/json"}))
            if has_body and kind != b"application/json" and kind not in allowed:
                names = " or ".join(sorted({"application/json", *(k.decode() for k in allowed)}))
                await _answer(send, 415, "unsupported_media_type", f"send the body as {names}")
                return
        await self.app(scope, receive, send)


async def _answer(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
