"""A newcomer in a real browser (issue 10): signs up through the pages (after one refused
try), confirms the address from the link mailed to the maildir, sets a PIN for the room,
logs out and in again. Screenshots of the pages go to tests/e2e/screenshots/.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from factories import pin_for
from privault.config import Settings
from privault.runtime import open_runtime

Site = Any  # conftest.Site (tests/e2e/conftest.py): a running `privault serve`

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).parent / "screenshots"
PHONE = {"width": 360, "height": 740}


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def fits(page: Page) -> bool:
    """Nothing wider than the window: no sideways scrolling."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.fixture
def server(serve: Callable[..., Site], fresh_settings: Settings, tmp_path: Path) -> Site:
    """`privault serve` with its worker (mail out every 0.2 s) and two dial-in numbers."""
    site = serve(fresh_settings, tmp_path, worker=True, PRIVAULT_WORKER_INTERVAL="0.2")
    runtime = open_runtime(fresh_settings)
    with runtime.transaction() as session:
        runtime.dial_ins(session).add("+358 9 4242 4242", "Helsinki")
        runtime.dial_ins(session).add("+44 20 7946 0123", "London")
    runtime.close()
    return site


def test_a_newcomer_signs_up_confirms_the_address_and_sets_a_pin(
    server: Site,
    open_context: Any,
    sign_up: Callable[..., dict[str, str]],
    newest_link: Callable[..., str],
) -> None:
    context, visits = open_context(server)
    # Each sign-up and login hashes a password (Argon2id): room for a busy machine.
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{server.url}/")
    expect(page.get_by_role("link", name="Sign up, free")).to_be_visible()
    shot(page, "home")
    page.get_by_role("button", name="Reject all").click()

    # A first try with too short a password: the reason next to the field, the address kept.
    page.get_by_role("link", name="Sign up, free").click()
    page.get_by_label("Email address").fill("dana.first-try@example.com")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#f-password-error")).to_have_text(
        "password must be at least 10 characters long"
    )
    expect(page.get_by_label("Email address")).to_have_value("dana.first-try@example.com")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    shot(page, "signup-error")

    dana = sign_up(page, server, "dana")
    expect(page.get_by_role("status")).to_contain_text("Check your mail to verify your address")

    link = newest_link(server, dana["email"], r"\S+/verify-email\?token=\S+")
    page.goto(link)
    expect(page.get_by_role("heading", name="Email address confirmed")).to_be_visible()

    page.get_by_role("link", name="Go to your room").click()
    room_id = page.locator(".room-id").inner_text().replace("Room ID:", "").replace(" ", "")
    assert room_id.strip().isdigit() and len(room_id.strip()) == 10
    expect(page.get_by_role("heading", name="Finland (FI)")).to_be_visible()
    expect(page.locator('a[href="tel:+358942424242"]')).to_be_visible()
    pin = pin_for(room_id.strip())
    page.get_by_label("New PIN").fill(pin)
    page.get_by_role("button", name="Set the PIN").click()
    expect(page.get_by_role("status")).to_have_text(
        "PIN set. Give it only to the people you invite."
    )
    expect(page.get_by_text("A PIN is set")).to_be_visible()
    assert pin not in page.content()
    shot(page, "room")
    page.set_viewport_size(PHONE)
    assert fits(page)
    shot(page, "room-phone")
    page.set_viewport_size({"width": 1280, "height": 720})

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/room")
    page.wait_for_url(f"{server.url}/login?next=%2Froom")
    page.get_by_label("Email address").fill(dana["email"])
    page.get_by_label("Password", exact=True).fill(dana["password"])
    shot(page, "login")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/room")
    expect(page.get_by_role("heading", name="Your room")).to_be_visible()
    assert visits.elsewhere == []
