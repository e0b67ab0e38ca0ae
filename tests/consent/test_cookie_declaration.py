"""The cookie declaration at /cookies (P11.1, P11.2): generated from the policy file."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from factories import Tables, declared_cookies
from privault.policy.model import Cookie, CookieCategory, CookieKind
from privault.policy.types import Duration, duration_words
from privault.runtime import Runtime
from privault.web.app import create_app


def declared(client: TestClient) -> Tables:
    page = client.get("/cookies")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in page.headers
    return Tables(page.text)


def test_p11_1_p11_2_the_declaration_lists_every_cookie_of_the_policy(
    client: TestClient, runtime: Runtime
) -> None:
    tables = declared(client)
    cells = [row for row in tables.rows if row]
    assert cells == declared_cookies(runtime.policy)
    assert len(cells) == len(runtime.policy.cookies) == 9
    lifetimes = {row[0]: row[5] for row in cells}
    assert lifetimes == {
        "privault_session": "until you close the browser",
        "privault_consent": "6 months",
        "privault_staff": "8 hours",
        "_ga": "2 years",
        "_ga_<container-id>": "2 years",
        "_gid": "1 day",
        "_gcl_au": "90 days",
        "IDE": "13 months",
        "test_cookie": "15 minutes",
    }
    assert tables.reopen, "a control to reopen the banner"


def test_p11_2_a_cookie_added_to_the_policy_appears_without_touching_the_template(
    runtime: Runtime,
) -> None:
    extra = Cookie(
        name="kallu_ab",
        provider="Kallu (first party)",
        purpose="Remembers which version of a page you saw",
        category=CookieCategory.ANALYTICS,
        kind=CookieKind.PERSISTENT,
        lifetime=Duration(days=21),
        description="A letter for the variant of the page, to compare them.",
    )
    policy = runtime.policy.model_copy(update={"cookies": (*runtime.policy.cookies, extra)})
    changed = dataclasses.replace(runtime, policy=policy)
    with TestClient(create_app(changed), raise_server_exceptions=False) as client:
        cells = [row for row in declared(client).rows if row]
    assert cells == declared_cookies(policy)
    assert [
        "kallu_ab",
        "Kallu (first party)",
        "Remembers which version of a page you saw. A letter for the variant of the page, "
        "to compare them.",
        "Statistics",
        "Persistent",
        "21 days",
    ] in cells


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("P6M", "6 months"),
        ("P1Y", "1 year"),
        ("P2Y", "2 years"),
        ("P2Y6M", "2 years and 6 months"),
        ("P1W", "7 days"),
        ("PT15M", "15 minutes"),
        ("PT1H30M", "1 hour and 30 minutes"),
        ("P1DT1H1M1S", "1 day, 1 hour, 1 minute and 1 second"),
    ],
)
def test_p11_1_a_lifetime_reads_in_plain_words(text: str, words: str) -> None:
    assert duration_words(Duration.parse(text)) == words
