"""The staff console in a real browser against `privault serve` (issue 10): a person asks
for erasure; a privacy officer logs in with a code from their authenticator app, finds the
request in the queue, opens it, sees the sweep complete it, and the person's login is gone."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import expect

from privault.runtime import open_runtime
from privault.worker import Worker

pytestmark = pytest.mark.e2e
#: Longer than Playwright's 5 s: the machine running the tests may be busy.
WAIT = 15_000
Site = Any  # conftest.Site: a running `privault serve`
SCREENSHOTS = Path(__file__).parent / "screenshots"


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-{name}.png", full_page=True)


def sweep(site: Site) -> None:
    """One pass of the worker on the site's data folder, as `privault worker --once`."""
    runtime = open_runtime(site.settings)
    try:
        Worker(runtime).sweep_once()
    finally:
        runtime.close()


def test_p9_4_an_officer_sees_an_erasure_through_to_its_end(
    site: Site, open_context: Any, staff_member: Any, staff_login: Any
) -> None:
    email = f"frida.{secrets.token_hex(4)}@example.com"
    password = f"frida-{secrets.token_hex(6)}-pass"
    with httpx2.Client(base_url=site.url) as api:
        made = api.post(
            "/api/v1/accounts",
            json={"email": email, "password": password, "display_name": "Frida"},
        )
        assert made.status_code == 201, made.text
        token = api.post("/api/v1/session", json={"email": email, "password": password})
        assert token.status_code == 200, token.text
        filed = api.post(
            "/api/v1/me/requests",
            json={"kind": "erasure"},
            headers={"Authorization": f"Bearer {token.json()['token']}"},
        )
        assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]

    olga = staff_member(site.settings, f"olga{secrets.token_hex(2)}", "privacy_officer")
    context, visits = open_context(site, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    staff_login(page, site, olga)
    expect(page).to_have_url(f"{site.url}/staff/requests")
    (cookie,) = [c for c in context.cookies() if c["name"] == "privault_staff"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/staff"

    row = page.locator("table.queue tr", has=page.locator(f"a[href$='{request_id}']"))
    expect(row).to_contain_text("erasure", timeout=WAIT)
    expect(row).to_contain_text("verified")
    expect(page.get_by_role("img", name="Requests received per week")).to_be_visible()
    shot(page, "queue")

    row.get_by_role("link", name="Open").click()
    expect(page.get_by_role("heading", name="Erasure request")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("The sweep carries out the erasure")).to_be_visible()
    expect(page.get_by_role("button", name="Complete the request")).to_have_count(0)
    shot(page, "request")

    sweep(site)  # the erasure starts and tells the person; the notice is sent
    sweep(site)  # the key is shredded and the rows deleted
    page.reload()
    expect(page.locator(".facts")).to_contain_text("completed", timeout=WAIT)
    expect(page.locator(".facts")).to_contain_text("erased")
    shot(page, "request-completed")

    with httpx2.Client(base_url=site.url) as api:
        again = api.post("/api/v1/session", json={"email": email, "password": password})
    assert again.status_code == 401

    page.get_by_role("link", name="Data map").click()
    expect(page.get_by_role("img", name="Data map")).to_be_visible(timeout=WAIT)
    shot(page, "datamap")
    page.get_by_role("link", name="Access log").click()
    expect(page.get_by_text("Chain verified")).to_be_visible(timeout=WAIT)
    page.get_by_label("Action contains").fill("staff:read")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.log")).to_contain_text(f"staff:{olga.name}", timeout=WAIT)
    shot(page, "audit")

    # On a phone: nothing wider than the screen but the tables, which scroll in place.
    page.set_viewport_size({"width": 360, "height": 780})
    for path in ("/staff/requests", f"/staff/requests/{request_id}", "/staff/datamap"):
        page.goto(f"{site.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
    shot(page, "datamap-phone")
    assert visits.elsewhere == []
