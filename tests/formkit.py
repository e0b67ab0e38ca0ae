"""Reading the site's HTML pages in tests: a field's message and value (the form macros of
``web/templates/_forms.html``), the session's form token, and what every page must be."""

from __future__ import annotations

import re
from html import unescape

from httpx2 import Response

#: A form posted from another site's page.
OTHER_SITE = {"Origin": "https://attacker.example"}


def field_error(page: Response | str, name: str) -> str | None:
    """The message under field ``name`` (``f-NAME-error``), if any."""
    text = page if isinstance(page, str) else page.text
    found = re.search(rf'<p class="error" id="f-{name}-error">(.*?)</p>', text, re.S)
    return unescape(found.group(1)) if found else None


def field_value(page: Response | str, name: str) -> str | None:
    """The value the page fills field ``name`` with, if any."""
    text = page if isinstance(page, str) else page.text
    found = re.search(rf'<input id="f-{name}"[^>]*?\svalue="([^"]*)"', text)
    return unescape(found.group(1)) if found else None


def form_token(page: Response) -> str:
    """The session's form token (``csrf``) of the first form on the page."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "no form token on the page"
    return found.group(1)


def is_page(response: Response) -> None:
    """An HTML page of the site, never JSON or a stack trace, and never cached."""
    assert response.headers["content-type"].startswith("text/html"), response.text
    assert "Traceback" not in response.text
    assert response.headers["cache-control"] == "no-store"
