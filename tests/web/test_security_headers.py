"""Security headers on every page (issue 10): a Content-Security-Policy without inline
scripts or styles, no framing by other sites, a referrer policy; and no page or template
that would need an inline script or style to work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import privault
from factories import Person, route_paths
from privault.web.headers import CONTENT_SECURITY_POLICY

#: The served pages' templates. Documents read outside the site (the export's index.html,
#: the records of processing, mails) carry their styles inline, on purpose: they are opened
#: from a file or a mail client, where no stylesheet of ours can be fetched.
TEMPLATES = sorted((Path(privault.__file__).parent / "web" / "templates").rglob("*.html"))


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (item.split() for item in policy.split(";") if item.strip())
    return {part[0]: part[1:] for part in parts}


def _paths(client: TestClient, method: str) -> list[str]:
    """Every route of the app answering ``method``, path parameters filled with a value
    that names nothing."""
    routes = route_paths(client.app.routes, method)  # type: ignore[attr-defined]
    return sorted({re.sub(r"\{[^}]+\}", "1", path) for path in routes})


def test_the_policy_forbids_inline_scripts_and_styles_and_framing() -> None:
    directives = _directives(CONTENT_SECURITY_POLICY)
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]


def test_every_page_carries_the_security_headers(client: TestClient, alice: Person) -> None:
    for signed_in in (False, True):
        client.cookies.clear()
        if signed_in:
            client.cookies.set("privault_session", alice.token)
        for path in _paths(client, "GET"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code < 500, path
            headers = response.headers
            csp = _directives(headers["content-security-policy"])
            assert "'unsafe-inline'" not in csp["script-src"], path
            assert "'unsafe-inline'" not in csp["style-src"], path
            assert csp["frame-ancestors"] == ["'none'"], path
            assert headers["x-frame-options"] == "DENY", path
            assert headers["referrer-policy"] == "same-origin", path
            assert headers["x-content-type-options"] == "nosniff", path
            if headers.get("content-type", "").startswith("text/html"):
                assert not _inline(response.text), (path, _inline(response.text))


def test_errors_and_static_files_carry_them_too(client: TestClient) -> None:
    for response in (
        client.get("/no/such/page"),
        client.post("/api/v1/session", content=b"{", headers={"content-type": "application/json"}),
        client.get("/static/site.css"),
    ):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def _inline(html: str) -> list[str]:
    """What the browser would refuse under the policy: an inline script, a ``<style>``
    element, a ``style=`` attribute or an ``on...=`` handler."""
    found = []
    if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html):
        found.append("inline <script>")
    if "<style" in html:
        found.append("<style> element")
    if re.search(r"<[^>]+\sstyle=", html):
        found.append("style= attribute")
    if re.search(r"<[^>]+\son[a-z]+=", html):
        found.append("event handler attribute")
    return found


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_no_template_has_an_inline_script_or_style(template: Path) -> None:
    assert _inline(template.read_text()) == []


def test_the_api_documentation_loads_no_inline_script(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "/static/docs.js" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert client.get("/static/docs.js").status_code == 200


def test_every_form_refuses_a_post_from_another_site(client: TestClient, alice: Person) -> None:
    """CSRF: every page's form route (the API aside, which takes JSON and a bearer token
    or the SameSite session cookie) refuses a post whose Origin is another site, signed in
    or not, before it does anything."""
    # One-click unsubscribe (RFC 8058) is posted by mail clients from their own servers:
    # its unguessable token is the proof (tests/consent/test_unsubscribe.py).
    forms = [
        path for path in _paths(client, "POST") if not path.startswith(("/api/", "/unsubscribe/"))
    ]
    assert len(forms) > 20
    for signed_in in (False, True):
        client.cookies.clear()
        if signed_in:
            client.cookies.set("privault_session", alice.token)
        for path in forms:
            response = client.post(
                path, data={"csrf": "x"}, headers={"Origin": "https://evil.example"}
            )
            assert response.status_code == 403, (path, response.status_code)
