"""The privacy centre in a real browser against `privault serve` (P0.4, P1.2, P2.4, P3.15,
P9.1): a person declines analytics, changes who sees a profile field, downloads the export
and finds the field in it, then asks for erasure and sees when it is due."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from privault.config import REPO_POLICY
from privault.policy.loader import load_policy

pytestmark = pytest.mark.e2e
Site = Any  # conftest.Site: a running `privault serve`
Steps = Any  # conftest.PersonSteps

POLICY = load_policy(REPO_POLICY)


def test_p9_1_p11_4_with_cookies_refused_a_person_uses_the_centre_up_to_erasure(
    site: Site, open_context: Any, person_steps: Steps
) -> None:
    steps = person_steps
    context, visits = open_context(site)
    page = context.new_page()
    person = steps.register_by_api(page, site, "dora")

    # The banner on the centre's first visit: analytics declined (P1.2).
    steps.open_privacy_centre(page, site)
    steps.reject_optional_cookies(page)
    page.reload()
    analytics = POLICY.consent.categories["analytics"].title.lower()
    expect(page.locator("#choices")).to_contain_text(f"refused {analytics}")
    held = page.locator("#held-registration")
    expect(held).to_contain_text(person["email"])
    steps.screenshot(page, "centre")
    page.set_viewport_size({"width": 360, "height": 740})  # a phone: nothing wider
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    steps.screenshot(page, "centre-phone")
    page.set_viewport_size({"width": 1280, "height": 720})

    # A profile field made public (P2.4, P3.15), then shown back in the form.
    employment = f"Lighthouse keeper {site.port}"
    steps.set_profile_field(page, site, "Employment", employment, "Everyone")
    expect(page.get_by_label("Who sees your employment")).to_have_value("public")
    expect(page.get_by_label("Employment", exact=True)).to_have_value(employment)
    steps.screenshot(page, "centre-profile")

    # The access export holds the field, with its new visibility (P9.1).
    document = steps.download_export(page, site)
    (profile,) = [c for c in document["categories"] if c["id"] == "profile"]
    rows = [row for block in profile["records"] for row in block["rows"]]
    assert any(employment in map(str, row) and "public" in row for row in rows), rows
    steps.open_privacy_centre(page, site)
    expect(page.locator("#held-profile")).to_contain_text(employment)

    # Erasure: the warning, then the account closed with the due date shown (P0.4).
    sentence = steps.file_erasure(page, site, shots="centre")
    due = POLICY.rights.due_at(datetime.now(UTC))
    assert f"{due:%d %B %Y}" in sentence
    page.goto(f"{site.url}/me/privacy")
    expect(page).to_have_url(f"{site.url}/login?next=%2Fme%2Fprivacy")
    login = page.request.post(
        f"{site.url}/api/v1/session",
        data={"email": person["email"], "password": person["password"]},
    )
    assert login.status == 401
    assert visits.elsewhere == []
