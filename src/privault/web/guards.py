"""Checks that run before a route parses its body."""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import urlsplit

from fastapi import Request

from privault.errors import Forbidden
from privault.runtime import Runtime
from privault.service.cards import REFUSAL, contains_card_number, json_has_card_number
from privault.service.errors import CardNumberRefused
from privault.web.deps import RuntimeDep

log = logging.getLogger("privault.web")


async def refuse_card_numbers(request: Request) -> None:
    """Refuse a request that carries anything like a full card number (P2.8, P7.3).

    Looks at the raw body (every key and value, nested or unknown to the schema, numbers
    by their digits), the query string and the path parameters, before the schema
    validates anything, so that no validation error can quote the number. A router takes
    it as its first dependency.
    """
    body = await request.body()
    found = bool(body) and json_has_card_number(body)
    found = found or any(
        contains_card_number(part) for pair in request.query_params.multi_items() for part in pair
    )
    found = found or any(contains_card_number(value) for value in request.path_params.values())
    if found:
        route = getattr(request.scope.get("route"), "path", "?")
        log.info("refused a request carrying a card number: %s %s", request.method, route)
        raise CardNumberRefused(REFUSAL)


class CrossOriginForm(Forbidden):
    code = "cross_origin_form"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def require_same_origin(request: Request, runtime: RuntimeDep) -> None:
    """Refuse a form posted from another origin (``Origin`` is neither this host nor the
    configured base URL); raises ``CrossOriginForm``.

    With the session cookie's SameSite=Lax a cross-site post arrives without the session,
    so it could only ever send a visitor's message; this check also stops sites on the same
    site but another origin. A browser that sends no ``Origin`` is let through: SameSite
    still holds. No token is needed, so no cookie and no server state: the form works with
    every optional cookie refused and for visitors who have no session at all.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return
    here = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    if origin.lower() not in {here, _origin(runtime.settings.base_url)}:
        raise CrossOriginForm("this form can only be sent from this site's own pages")


class CsrfTokenInvalid(Forbidden):
    code = "csrf_token_invalid"


def csrf_token(runtime: Runtime, session: str) -> str:
    """The token a page's form sends back to prove it came from this site's page: keyed
    with the keyring's session secret and bound to the login session, so it is the same
    for the session's life and worthless for any other. No server state."""
    key = runtime.keyring.secret("session")
    return hmac.new(key, b"csrf\x1f" + session.encode(), hashlib.sha256).hexdigest()


def check_csrf(runtime: Runtime, session: str, sent: str) -> None:
    """Raises ``CsrfTokenInvalid`` unless ``sent`` is the session's form token."""
    if not hmac.compare_digest(csrf_token(runtime, session).encode(), sent.encode()):
        raise CsrfTokenInvalid("this form is out of date or was not sent from our page: reload it")
