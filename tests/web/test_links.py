"""Links to other sites (P10.1): every one carries rel="noopener noreferrer", so the site it
opens learns neither the page it came from (no Referer) nor gets a handle on our window."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from fastapi.testclient import TestClient

from factories import kallu_data, route_paths
from privault.policy import build_policy
from privault.policy.render import render
from privault.policy.wording import Format
from privault.runtime import Runtime

SRC = Path(__file__).resolve().parents[2] / "src" / "privault"
SAME_SITE = {"testserver", ""}
SAFE = {"noopener", "noreferrer"}


class Links(HTMLParser):
    """Every ``<a href>`` of a page, with its rel tokens."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[tuple[str, set[str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href") is not None:
            self.links.append((found["href"] or "", set((found.get("rel") or "").split())))


def external(href: str) -> bool:
    parts = urlsplit(href)
    return parts.scheme in {"http", "https", ""} and parts.netloc not in SAME_SITE


def unsafe(html: str) -> list[str]:
    """The links to other sites in ``html`` that lack rel="noopener noreferrer"."""
    return [href for href, rel in Links(html).links if external(href) and not rel >= SAFE]


def test_p10_1_every_page_the_site_serves_links_other_sites_without_referrer(
    client: TestClient, runtime: Runtime
) -> None:
    # Every page route, a path parameter filled with a value it does not know (its error
    # page is a page too), then every page of the site those pages link to.
    pages = route_paths(client.app.routes)  # type: ignore[attr-defined]
    todo = [
        re.sub(r"\{[^}]+\}", "1", path)
        for path in pages
        if not path.startswith(("/api/", "/openapi"))
    ]
    seen: set[str] = set()
    checked: dict[str, int] = {}
    while todo:
        path = todo.pop()
        if path in seen or path.startswith("/api/"):
            continue
        seen.add(path)
        response = client.get(path)
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        assert unsafe(response.text) == [], path
        links = Links(response.text).links
        checked[path] = sum(external(href) for href, _ in links)
        for href, _ in links:
            target = urlsplit(urljoin("http://testserver" + path, href))
            if target.scheme == "http" and target.netloc == "testserver":
                todo.append(target.path)
    assert {"/", "/privacy", "/privacy/v/1", "/cookies", "/contact", "/docs"} <= set(checked)
    assert checked["/privacy"] >= 2, "the policy links the supervisory authority and our site"


def test_p10_1_links_in_the_policys_prose_carry_no_referrer() -> None:
    data = kallu_data()
    data["prose"]["10"]["after"] = [
        "Our partner https://partner.example.org/about?a=1&b=2, our forum (http://forum.example.net).",
        ["See https://example.com/list.", "Or write to help@example.com."],
    ]
    policy = build_policy(data)
    html = render(policy, None, policy.meta.effective_date, Format.HTML)
    hrefs = [href for href, rel in Links(html).links if external(href) and rel >= SAFE]
    assert {
        "https://partner.example.org/about?a=1&b=2",
        "http://forum.example.net",
        "https://example.com/list",
        "https://www.cnil.fr",
    } <= set(hrefs)
    assert "mailto:help@example.com" in [href for href, _ in Links(html).links]
    assert unsafe(html) == []


def test_p10_1_no_template_links_another_site_without_rel() -> None:
    """Templates of pages that need data to show (mails, exports) are read, not rendered: a
    literal link to another site in any of them must say rel="noopener noreferrer"."""
    templates = sorted(SRC.rglob("templates/*.html"))
    assert len(templates) > 20
    for template in templates:
        assert unsafe(template.read_text(encoding="utf-8")) == [], template.name
