"""The cookie banner in a real browser against a real server (P1.2, P11.3, P11.4).

The page /e2e/tracked.html (tests/e2e/pages, served to the browser by the test) marks
stand-ins for Google Analytics and Google Ads the way an operator's page would; nothing
reaches outside 127.0.0.1 (every other request is refused and remembered).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from playwright.sync_api import Route as Routed

from factories import revised, route_paths
from privault.clock import SystemClock
from privault.config import REPO_POLICY, Settings
from privault.db import make_engine, make_sessionmaker
from privault.policy.loader import load_policy
from privault.policy.model import CONSENT_COOKIE, CookieCategory
from privault.policy.store import PolicyStore
from privault.runtime import open_runtime
from privault.web.app import create_app

pytestmark = pytest.mark.e2e
Site = Any  # conftest.Site: a running `privault serve`

POLICY = load_policy(REPO_POLICY)
NECESSARY = [c for c in POLICY.cookies if c.category == CookieCategory.STRICTLY_NECESSARY]
BANNER = "Your cookie choice"
EVENTS = "/api/v1/analytics/events"


# -- helpers ---------------------------------------------------------------------------


def tracked(site: Site) -> str:
    return f"{site.url}/e2e/tracked.html"


def settled(page: Page, state: str) -> None:
    """Wait until consent.js has decided: "ask" (banner shown) or "given"."""
    page.locator(f"html[data-consent-state='{state}']").wait_for(state="attached")


def ran(page: Page, flag: str) -> bool:
    return bool(page.evaluate(f"window.{flag} === true"))


def undeclared(context: BrowserContext) -> list[str]:
    """Cookies in the browser that the declaration does not list as strictly necessary."""
    names = [cookie["name"] for cookie in context.cookies()]
    return sorted(name for name in names if not any(c.matches(name) for c in NECESSARY))


def consent_cookie(context: BrowserContext) -> tuple[list[str], str] | None:
    """The accepted categories and the cookie list version of ``privault_consent``."""
    for cookie in context.cookies():
        if cookie["name"] == CONSENT_COOKIE:
            _, accepted, version = cookie["value"].split(".")
            return accepted.split("+"), version
    return None


def banner(page: Page) -> Locator:
    return page.get_by_role("dialog", name=BANNER)


def style(locator: Locator) -> dict[str, Any]:
    return dict(
        locator.evaluate(
            """(el) => {
              const s = getComputedStyle(el), box = el.getBoundingClientRect();
              return {font: s.font, color: s.color, background: s.backgroundColor,
                      border: s.border, padding: s.padding, radius: s.borderRadius,
                      width: Math.round(box.width), height: Math.round(box.height)};
            }"""
        )
    )


def tab_to(page: Page, text: str, presses: int = 15) -> None:
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == text:
            return
    pytest.fail(f"{text!r} is not reachable with Tab")


def register(page: Page, site: Site, who: str) -> dict[str, str]:
    """An account made and logged in through the page's own request context (its cookies
    are the browser's); returns its email and password."""
    person = {
        "email": f"{who}.{secrets.token_hex(4)}@example.com",
        "password": f"{who}-long-enough-password",
    }
    created = page.request.post(f"{site.url}/api/v1/accounts", data={**person})
    assert created.status == 201, created.text()
    login = page.request.post(f"{site.url}/api/v1/session", data=person)
    assert login.status == 200, login.text()
    return person


# -- first visit, refusal, acceptance ----------------------------------------------------


def test_p1_2_the_first_visit_shows_the_banner_and_runs_nothing_optional(
    site: Site, open_context: Any
) -> None:
    context, visits = open_context(site)
    page = context.new_page()
    page.goto(tracked(site))
    settled(page, "ask")

    dialog = banner(page)
    expect(dialog).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "privault-consent"
    description = page.locator(f"#{dialog.get_attribute('aria-describedby')}")
    expect(description).to_contain_text("strictly necessary cookies")
    for category in POLICY.consent.categories.values():
        expect(dialog).to_contain_text(category.title)
        expect(dialog).to_contain_text(category.description)
    accept = dialog.get_by_role("button", name="Accept all")
    reject = dialog.get_by_role("button", name="Reject all")
    expect(dialog.get_by_role("button", name="Choose")).to_be_visible()
    # Refusing is as easy to see as accepting: same size, same style.
    assert style(reject) == style(accept)

    assert not ran(page, "gaRan")
    assert not ran(page, "adsRan")
    assert page.evaluate("window.gtagLoaded") is None
    assert context.cookies() == []

    page.goto(f"{site.url}/")
    settled(page, "ask")
    expect(banner(page)).to_be_visible()
    assert context.cookies() == []
    assert EVENTS not in visits.paths  # no first-party analytics either (P2.2)
    assert visits.elsewhere == []


def test_p11_3_reject_all_runs_nothing_and_sets_only_strictly_necessary_cookies(
    site: Site, open_context: Any
) -> None:
    context, visits = open_context(site)
    page = context.new_page()
    page.goto(tracked(site))
    settled(page, "ask")
    banner(page).get_by_role("button", name="Reject all").click()
    settled(page, "given")

    expect(banner(page)).to_have_count(0)
    expect(page.get_by_role("status")).to_have_text("Your cookie choice is saved.")
    assert consent_cookie(context) == (["strictly_necessary"], consent_cookie(context)[1])
    assert not ran(page, "gaRan")
    assert not ran(page, "adsRan")
    assert undeclared(context) == []

    page.reload()
    settled(page, "given")
    expect(banner(page)).to_have_count(0)
    assert not ran(page, "gaRan")
    assert page.evaluate("window.gtagLoaded") is None
    assert undeclared(context) == []
    assert EVENTS not in visits.paths
    assert visits.elsewhere == []


def test_p11_3_accept_all_runs_the_marked_scripts_and_the_choice_holds_on_reload(
    site: Site, open_context: Any
) -> None:
    context, visits = open_context(site)
    page = context.new_page()
    page.goto(tracked(site))
    settled(page, "ask")
    with page.expect_response(f"{site.url}{EVENTS}") as counted:  # first-party (P2.2)
        banner(page).get_by_role("button", name="Accept all").click()
        settled(page, "given")
    assert counted.value.status == 204

    assert ran(page, "gaRan")
    assert ran(page, "adsRan")
    page.wait_for_function("window.gtagLoaded === 1")
    names = {cookie["name"] for cookie in context.cookies()}
    assert {"_ga", "_ga_TESTPROP1", "_gcl_au", CONSENT_COOKIE} <= names
    accepted, _ = consent_cookie(context) or ([], "")
    assert sorted(accepted) == sorted(str(c) for c in POLICY.consent.categories)

    # P1.2: the next visit does not ask, and runs what was accepted.
    page.reload()
    settled(page, "given")
    expect(banner(page)).to_have_count(0)
    assert ran(page, "gaRan")
    page.wait_for_function("window.gtagLoaded === 1")
    assert visits.elsewhere == []


def test_p11_3_nothing_runs_unless_the_server_stored_the_choice(
    site: Site, open_context: Any
) -> None:
    context, _ = open_context(site)

    def refuse_put(route: Routed) -> None:
        if route.request.method == "PUT":
            route.abort()
        else:
            route.fallback()

    context.route(f"{site.url}/api/v1/consent", refuse_put)
    page = context.new_page()
    page.goto(tracked(site))
    settled(page, "ask")
    banner(page).get_by_role("button", name="Accept all").click()

    expect(banner(page).get_by_role("alert")).to_have_text(re.compile("could not be saved"))
    expect(banner(page)).to_be_visible()
    expect(banner(page).get_by_role("button", name="Accept all")).to_be_enabled()
    assert not ran(page, "gaRan")
    assert undeclared(context) == []

    # No answer at all: no banner, and still nothing optional.
    context.route(f"{site.url}/api/v1/consent", lambda route: route.abort())
    page.reload()
    settled(page, "unavailable")
    expect(banner(page)).to_have_count(0)
    assert not ran(page, "gaRan")
    assert undeclared(context) == []


def test_p1_2_the_footer_link_reopens_the_banner_to_withdraw_as_easily(
    site: Site, open_context: Any
) -> None:
    context, _ = open_context(site)
    page = context.new_page()
    page.goto(tracked(site))
    settled(page, "ask")
    banner(page).get_by_role("button", name="Accept all").click()
    settled(page, "given")
    assert ran(page, "gaRan")

    page.goto(f"{site.url}/")
    settled(page, "given")
    page.get_by_role("link", name="Cookie settings").click()
    dialog = banner(page)
    expect(dialog).to_be_visible()
    assert page.url == f"{site.url}/"
    expect(dialog).to_contain_text("applies from the next page")
    analytics = dialog.get_by_role("checkbox", name=re.compile("Statistics"))
    expect(analytics).to_be_checked()
    necessary = dialog.get_by_role("checkbox", name=re.compile("Strictly necessary"))
    expect(necessary).to_be_checked()
    expect(necessary).to_be_disabled()
    # Escape leaves a choice as it was.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert page.evaluate("document.activeElement.textContent") == "Cookie settings"

    page.goto(tracked(site))
    settled(page, "given")
    assert ran(page, "gaRan")
    page.get_by_role("link", name="Cookie settings").click()
    banner(page).get_by_role("button", name="Reject all").click()
    expect(banner(page)).to_have_count(0)
    page.wait_for_function(
        "document.cookie.includes('privault_consent') && !document.cookie.includes('_ga')"
    )
    assert (consent_cookie(context) or ([], ""))[0] == ["strictly_necessary"]
    assert undeclared(context) == []  # Google's cookies went with the withdrawal

    page.reload()
    settled(page, "given")
    assert not ran(page, "gaRan")
    assert not ran(page, "adsRan")
    assert undeclared(context) == []


def test_p1_2_a_new_cookie_list_asks_again(
    fresh_settings: Settings, tmp_path: Path, serve: Any, open_context: Any
) -> None:
    first = serve(fresh_settings, tmp_path)
    try:
        context, visits = open_context(first)
        page = context.new_page()
        page.goto(tracked(first))
        settled(page, "ask")
        banner(page).get_by_role("button", name="Accept all").click()
        settled(page, "given")
        old = consent_cookie(context)
        assert old is not None
        page.reload()
        settled(page, "given")
    finally:
        first.stop()

    # The operator adds a cookie: a new policy version with a new cookie list.
    longer = revised(tmp_path, label="1.0.0")
    engine = make_engine(fresh_settings.db_url)
    with make_sessionmaker(engine)() as session, session.begin():
        PolicyStore(session, SystemClock()).load_file(longer)
    engine.dispose()

    second = serve(fresh_settings, tmp_path)
    try:
        visits.site = second
        page.goto(tracked(second))
        settled(page, "ask")
        expect(banner(page)).to_be_visible()
        assert not ran(page, "gaRan")
        assert undeclared(context) == []  # no consent under this list: Google's cookies go

        banner(page).get_by_role("button", name="Accept all").click()
        settled(page, "given")
        assert ran(page, "gaRan")
        new = consent_cookie(context)
        assert new is not None
        assert new[1] != old[1]
        assert visits.elsewhere == []
    finally:
        second.stop()


def test_p11_3_global_privacy_control_refuses_advertising(site: Site, open_context: Any) -> None:
    context, visits = open_context(site, extra_http_headers={"Sec-GPC": "1"})
    page = context.new_page()
    page.goto(tracked(site))
    settled(page, "ask")
    dialog = banner(page)
    expect(dialog).to_contain_text("Global Privacy Control")
    expect(dialog).to_contain_text("Advertising is off")

    dialog.get_by_role("button", name="Choose").click()
    advertising = dialog.get_by_role("checkbox", name=re.compile("Advertising"))
    expect(advertising).not_to_be_checked()
    expect(advertising).to_be_disabled()
    expect(dialog.get_by_role("checkbox", name=re.compile("Statistics"))).to_be_enabled()

    dialog.get_by_role("button", name="Accept all").click()
    settled(page, "given")
    assert ran(page, "gaRan")
    assert not ran(page, "adsRan")
    accepted, _ = consent_cookie(context) or ([], "")
    assert "advertising" not in accepted
    assert "analytics" in accepted
    assert "_gcl_au" not in {cookie["name"] for cookie in context.cookies()}

    page.reload()
    settled(page, "given")
    assert ran(page, "gaRan")
    assert not ran(page, "adsRan")
    assert visits.elsewhere == []


# -- keyboard and phone ------------------------------------------------------------------


def test_the_banner_works_with_the_keyboard_alone(site: Site, open_context: Any) -> None:
    context, _ = open_context(site)
    page = context.new_page()
    page.goto(tracked(site))
    settled(page, "ask")
    assert page.evaluate("document.activeElement.id") == "privault-consent"

    page.keyboard.press("Escape")  # no choice yet: Escape does not make one
    expect(banner(page)).to_be_visible()

    tab_to(page, "Reject all")
    outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; })()"
    )
    assert outline[0] != "none"
    assert outline[1] != "0px"
    page.keyboard.press("Enter")
    settled(page, "given")
    expect(banner(page)).to_have_count(0)
    assert (consent_cookie(context) or ([], ""))[0] == ["strictly_necessary"]
    assert not ran(page, "gaRan")

    # Choosing one category, by keyboard, from the footer link.
    page.get_by_role("link", name="Cookie settings").focus()
    page.keyboard.press("Enter")
    expect(banner(page)).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "privault-consent"
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.labels?.[0]?.textContent ?? ''")
    assert "Statistics" in focused
    page.keyboard.press("Space")
    tab_to(page, "Save my choices")
    page.keyboard.press("Enter")
    expect(banner(page)).to_have_count(0)
    page.wait_for_function("document.cookie.includes('analytics')")
    assert sorted((consent_cookie(context) or ([], ""))[0]) == [
        "analytics",
        "strictly_necessary",
    ]
    assert ran(page, "gaRan")  # accepted now: runs at once
    assert not ran(page, "adsRan")


def test_the_banner_fits_a_phone(site: Site, open_context: Any) -> None:
    context, _ = open_context(site, viewport={"width": 360, "height": 740}, has_touch=True)
    page = context.new_page()
    page.goto(tracked(site))
    settled(page, "ask")
    dialog = banner(page)

    def fits() -> None:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        for control in dialog.locator("button, input").all():
            box = control.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 360
            minimum = 44 if control.evaluate("el => el.tagName") == "BUTTON" else 24
            assert box["height"] >= minimum
            assert box["width"] >= minimum

    fits()
    dialog.get_by_role("button", name="Choose").tap()
    expect(dialog.get_by_role("button", name="Save my choices")).to_be_visible()
    fits()

    for path in ("/", "/cookies", "/contact"):  # the site's own pages, banner and footer
        page.goto(f"{site.url}{path}")
        settled(page, "ask")
        fits()


# -- P11.4: refusing every optional cookie limits nothing that matters ---------------------


def refuse_everything(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/")
    settled(page, "ask")
    banner(page).get_by_role("button", name="Reject all").click()
    settled(page, "given")


def test_p11_4_with_every_optional_cookie_refused_the_service_still_works(
    site: Site, open_context: Any
) -> None:
    context, visits = open_context(site)
    page = context.new_page()
    refuse_everything(page, site)

    # A visitor writes to support through the form.
    page.goto(f"{site.url}/contact")
    page.get_by_label("Your email address").fill("dora.visitor@example.com")
    page.get_by_label("Subject").fill("A question")
    page.get_by_label("Your message").fill("How do I change my PIN?")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(f"{site.url}/contact/sent")
    settled(page, "given")

    # Registration, login, the room and the privacy centre.
    register(page, site, "dora")
    room = page.request.get(f"{site.url}/api/v1/me/room")
    assert room.status == 200, room.text()
    assert room.json()["room_id"]
    assert page.request.get(f"{site.url}/api/v1/me").status == 200
    assert page.request.get(f"{site.url}/api/v1/me/requests").status == 200
    asked = page.request.post(f"{site.url}/api/v1/me/requests", data={"kind": "access"})
    assert asked.status == 201, asked.text()
    assert page.request.get(f"{site.url}/api/v1/me/profile").status == 200

    # A member writes through the same form, without giving an address.
    page.goto(f"{site.url}/contact")
    expect(page.get_by_label("Your email address")).to_have_count(0)
    page.get_by_label("Subject").fill("Another question")
    page.get_by_label("Your message").fill("Thank you.")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(f"{site.url}/contact/sent")

    page.goto(f"{site.url}/cookies")
    expect(page.get_by_role("heading", name="Cookies", exact=True)).to_be_visible()
    settled(page, "given")

    assert undeclared(context) == []
    names = {cookie["name"] for cookie in context.cookies()}
    assert names == {"privault_session", CONSENT_COOKIE}
    assert visits.elsewhere == []


def html_paths(settings: Settings, username: str) -> list[str]:
    """Every GET page of the app outside the API, its path parameters filled in: the
    person's username, and a made-up value for anything else (a "not found" page is a page
    of the site too)."""
    runtime = open_runtime(settings)
    try:
        app = create_app(runtime)
    finally:
        runtime.close()
    paths = []
    for path in route_paths(app.routes):
        if path.startswith("/api/") or path in {"/openapi.json", "/healthz"}:
            continue
        path = path.replace("{username}", username)
        paths.append(re.sub(r"\{[^}]+\}", "not-a-real-value", path))
    return paths


def test_p11_4_no_page_sets_a_cookie_the_declaration_does_not_call_necessary(
    site: Site, open_context: Any
) -> None:
    context, visits = open_context(site)
    page = context.new_page()
    refuse_everything(page, site)
    register(page, site, "erin")
    username = f"erin{secrets.token_hex(3)}"
    chosen = page.request.put(f"{site.url}/api/v1/me/username", data={"username": username})
    assert chosen.status == 200, chosen.text()
    posted = page.request.post(
        f"{site.url}/api/v1/me/posts", data={"body": "Hello", "visibility": "public"}
    )
    assert posted.status == 201, posted.text()

    paths = html_paths(site.settings, username)
    assert {"/", "/contact", "/cookies", f"/u/{username}"} <= set(paths)
    third_party: dict[str, list[str]] = {}
    # Logged in, then as a visitor.
    for logged_in in (True, False):
        if not logged_in:
            assert page.request.delete(f"{site.url}/api/v1/session").status == 204
        for path in paths:
            before = len(visits.elsewhere)
            response = page.goto(f"{site.url}{path}")
            assert response is not None
            assert response.status < 500, (path, response.status)
            assert "text/html" in response.headers.get("content-type", ""), path
            if page.locator("script[src='/static/consent.js']").count():
                settled(page, "given")  # the choice holds on every page (P1.2)
                expect(banner(page)).to_have_count(0)
            else:
                page.wait_for_load_state("load")
            hosts = {urlsplit(url).hostname or "" for url in visits.elsewhere[before:]}
            if hosts:
                third_party[path] = visits.elsewhere[before:]
            assert undeclared(context) == [], path
    assert third_party == {}, json.dumps(third_party, indent=1)
