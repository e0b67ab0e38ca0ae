"""The whole story of issue 10 in one browser run against `privault serve`: a newcomer
signs up, confirms the address from the maildir, sets a PIN, declines analytics, changes who
sees a profile field, downloads the export and finds the field in it, and asks for erasure,
seeing its due date; a privacy officer logs in with a TOTP code, finds that request, carries
it out, and the person can no longer log in (P0.4, P1.2, P2.4, P9.1, P9.4).

No worker runs beside the server: the test sends the mail itself, so the erasure waits in
the queue for the officer instead of being carried out by the sweep.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from factories import pin_for
from privault.config import Settings
from privault.rights.models import RightsRequest
from privault.runtime import open_runtime
from privault.vault.models import SubjectKey

pytestmark = pytest.mark.e2e
Site = Any  # conftest.Site: a running `privault serve`
Steps = Any  # conftest.PersonSteps
#: Longer than Playwright's 5 s: each sign-up and login hashes a password (Argon2id).
WAIT = 30_000


def send_mail(site: Site) -> None:
    """What the worker's mail sweep does, once."""
    runtime = open_runtime(site.settings)
    try:
        runtime.mailer().deliver_pending()
    finally:
        runtime.close()


@pytest.fixture
def server(serve: Callable[..., Site], fresh_settings: Settings, tmp_path: Path) -> Site:
    site = serve(fresh_settings, tmp_path)
    runtime = open_runtime(fresh_settings)
    with runtime.transaction() as session:
        runtime.dial_ins(session).add("+358 9 4242 4242", "Helsinki")
    runtime.close()
    return site


def test_p9_4_a_newcomer_from_sign_up_to_erasure_carried_out_by_an_officer(
    server: Site,
    open_context: Any,
    sign_up: Callable[..., dict[str, str]],
    newest_link: Callable[..., str],
    person_steps: Steps,
    staff_member: Any,
    staff_login: Any,
) -> None:
    steps = person_steps
    context, visits = open_context(server)
    context.set_default_timeout(WAIT)
    page = context.new_page()

    # Sign up, with analytics declined in the banner on the first page (P1.2).
    page.goto(f"{server.url}/")
    steps.reject_optional_cookies(page)
    erin = sign_up(page, server, "erin")
    send_mail(server)
    page.goto(newest_link(server, erin["email"], r"\S+/verify-email\?token=\S+"))
    expect(page.get_by_role("heading", name="Email address confirmed")).to_be_visible()

    # A PIN for the room: never shown back.
    page.goto(f"{server.url}/room")
    room_id = re.sub(r"\D", "", page.locator(".room-id").inner_text())
    pin = pin_for(room_id)
    page.get_by_label("New PIN").fill(pin)
    page.get_by_role("button", name="Set the PIN").click()
    expect(page.get_by_text("A PIN is set")).to_be_visible()
    assert pin not in page.content()

    # The centre: analytics refused, a field made public, the export holding it (P9.1).
    steps.open_privacy_centre(page, server)
    expect(page.locator("#choices")).to_contain_text("refused")
    employment = f"Tide-gauge reader {server.port}"
    steps.set_profile_field(page, server, "Employment", employment, "Everyone")
    expect(page.get_by_label("Who sees your employment")).to_have_value("public")
    document = steps.download_export(page, server)
    (profile,) = [c for c in document["categories"] if c["id"] == "profile"]
    rows = [row for block in profile["records"] for row in block["rows"]]
    assert any(employment in map(str, row) for row in rows), rows

    # Erasure asked for, with its due date (P0.4).
    sentence = steps.file_erasure(page, server, shots="flow")
    assert re.search(r"\d{1,2} \w+ \d{4}", sentence), sentence

    # The officer: TOTP login, the request in the queue, carried out now.
    runtime = open_runtime(server.settings)
    try:
        with runtime.factory() as session:
            (request_id,) = session.scalars(
                select(RightsRequest.id).where(RightsRequest.kind == "erasure")
            ).all()
    finally:
        runtime.close()
    officer = staff_member(server.settings, "iris", "privacy_officer")
    staff_context, staff_visits = open_context(server)
    staff_context.set_default_timeout(WAIT)
    desk = staff_context.new_page()
    staff_login(desk, server, officer)
    row = desk.locator("table.queue tr", has=desk.locator(f"a[href$='{request_id}']"))
    expect(row).to_contain_text("erasure")
    row.get_by_role("link", name="Open").click()
    desk.get_by_role("button", name="Erase now and complete").click()
    expect(desk.locator(".facts")).to_contain_text("completed")
    expect(desk.locator(".facts")).to_contain_text("erased")
    steps.screenshot(desk, "flow-officer-completed")

    # The person is gone: no login, no key.
    with httpx2.Client(base_url=server.url) as api:
        login = api.post(
            "/api/v1/session", json={"email": erin["email"], "password": erin["password"]}
        )
    assert login.status_code == 401
    runtime = open_runtime(server.settings)
    try:
        with runtime.factory() as session:
            request = session.get(RightsRequest, request_id)
            assert request is not None and request.state == "completed"
            assert request.subject_id is None or session.get(SubjectKey, request.subject_id) is None
            assert request.closed_at is not None
            assert request.closed_at.replace(tzinfo=UTC) <= datetime.now(UTC)
    finally:
        runtime.close()
    assert visits.elsewhere == [] and staff_visits.elsewhere == []
