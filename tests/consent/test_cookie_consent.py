"""Cookie choices on the server (P1.2, P11.3): kept with proof, honoured until they lapse."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from factories import Person, api_error, browser
from privault.clock import FrozenClock
from privault.config import Settings
from privault.consent.cookies import CookieVersions
from privault.consent.models import CookieConsent
from privault.policy.model import CONSENT_COOKIE, Cookie, CookieCategory, CookieKind, Policy
from privault.policy.store import PolicyStore
from privault.policy.types import Duration
from privault.runtime import Runtime, open_runtime, prepare
from privault.vault.crypto import token_digest

CONSENT = "/api/v1/consent"
ALL = {"strictly_necessary": True, "analytics": True, "advertising": True}
NECESSARY_ONLY = {"strictly_necessary": True, "analytics": False, "advertising": False}
COOKIE_VALUE = re.compile(r"([A-Za-z0-9_-]{32})\.([a-z_+]*)\.([0-9a-f]{16})")
GPC = {"Sec-GPC": "1"}


@pytest.fixture
def web(at: Runtime) -> Iterator[TestClient]:
    with browser(at) as client:
        yield client


def rows(runtime: Runtime) -> list[CookieConsent]:
    with runtime.transaction() as session:
        query = select(CookieConsent).order_by(CookieConsent.given_at, CookieConsent.id)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def count(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(CookieConsent)) or 0)


def consent_id(client: TestClient) -> str:
    match = COOKIE_VALUE.fullmatch(client.cookies[CONSENT_COOKIE])
    assert match, client.cookies[CONSENT_COOKIE]
    return match.group(1)


def carry(client: TestClient, value: str) -> None:
    """Put a consent cookie in ``client`` as if the server had set it there."""
    client.cookies.set(CONSENT_COOKIE, value, domain="testserver.local")


def give(client: TestClient, choices: dict[str, Any], **headers: str) -> dict[str, Any]:
    answer = client.put(CONSENT, json={"choices": choices}, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def with_cookie(policy: Policy) -> Policy:
    extra = Cookie(
        name="kallu_ab",
        provider="Kallu (first party)",
        purpose="Remembers which version of a page you saw",
        category=CookieCategory.ANALYTICS,
        kind=CookieKind.PERSISTENT,
        lifetime=Duration(days=21),
        description="A letter for the variant of the page, to compare them.",
    )
    return policy.model_copy(update={"cookies": (*policy.cookies, extra)})


def with_banner_text(policy: Policy) -> Policy:
    categories = dict(policy.consent.categories)
    analytics = categories[CookieCategory.ANALYTICS]
    categories[CookieCategory.ANALYTICS] = analytics.model_copy(
        update={"description": analytics.description + " It also counts clicks now."}
    )
    consent = policy.consent.model_copy(update={"categories": categories})
    return policy.model_copy(update={"consent": consent})


# P1.2: a choice holds on every visit until it expires or what it was given for changes


def test_p1_2_the_first_visit_is_asked_and_sees_the_banner_of_the_policy(
    web: TestClient, at: Runtime
) -> None:
    answer = web.get(CONSENT)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["ask"] is True and body["choice"] is None and body["gpc"] is False
    assert [c["id"] for c in body["categories"]] == list(at.policy.consent.categories)
    necessary, analytics, advertising = body["categories"]
    assert necessary["always_on"] is True and advertising["gpc_refuses"] is True
    assert {c["name"] for c in analytics["cookies"]} == {"_ga", "_ga_<container-id>", "_gid"}
    session = next(c for c in necessary["cookies"] if c["name"] == "privault_session")
    assert session == {
        "name": "privault_session",
        "provider": "Kallu (first party)",
        "purpose": "Keeps you logged in",
        "kind": "session",
        "lifetime": None,
        "lifetime_text": "until you close the browser",
    }
    versions = at.cookie_versions
    assert body["versions"] == {
        "banner": versions.banner,
        "cookies": versions.cookies,
        "policy": at.policy_version,
    }
    assert CONSENT_COOKIE not in answer.headers.get("set-cookie", "")


def test_p1_2_a_choice_holds_on_later_visits_until_it_expires(
    web: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    given = clock.now()
    answer = web.put(CONSENT, json={"choices": NECESSARY_ONLY | {"advertising": True}})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    expires = Duration(months=6).add_to(given)
    assert f"Max-Age={int((expires - given).total_seconds())}" in cookie
    assert "Path=/" in cookie and "SameSite=lax" in cookie
    assert "HttpOnly" not in cookie and "Secure" not in cookie
    value = COOKIE_VALUE.fullmatch(web.cookies[CONSENT_COOKIE])
    assert value and value.group(2) == "strictly_necessary+advertising"
    assert value.group(3) == at.cookie_versions.cookies
    choice = {
        "choices": {"strictly_necessary": True, "analytics": False, "advertising": True},
        "given_at": given.isoformat().replace("+00:00", "Z"),
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
    }
    assert answer.json()["ask"] is False and answer.json()["choice"] == choice

    for moment in (given + timedelta(days=30), expires - timedelta(seconds=1)):
        clock.at = moment
        later = web.get(CONSENT).json()
        assert later["ask"] is False and later["choice"] == choice
    clock.at = expires
    lapsed = web.get(CONSENT).json()
    assert lapsed["ask"] is True and lapsed["choice"] is None
    with at.transaction() as session:
        assert at.cookie_consents(session).current(value.group(1)) is None


def test_p1_2_the_proof_row_holds_categories_versions_time_and_a_truncated_ip_only(
    web: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    give(web, ALL | {"analytics": False})
    (row,) = rows(at)
    the_id = consent_id(web)
    assert row.consent_key == token_digest(the_id)
    assert row.subject_id is None
    assert row.choices == {"strictly_necessary": True, "analytics": False, "advertising": True}
    assert row.gpc is False
    versions = CookieVersions(row.banner_version, row.cookies_version, row.policy_version)
    assert versions == at.cookie_versions == CookieVersions.of(at.policy, at.policy_version)
    assert row.given_at.replace(tzinfo=None) == clock.now().replace(tzinfo=None)
    assert row.expires_at.replace(tzinfo=None) == Duration(months=6).add_to(clock.now()).replace(
        tzinfo=None
    )
    assert row.ip_prefix == "203.0.113.0/24"
    stored = [str(getattr(row, c.key)) for c in CookieConsent.__table__.columns]
    assert not any(the_id in value or "203.0.113.77" in value for value in stored)


@pytest.mark.parametrize("change", [with_cookie, with_banner_text], ids=["cookies", "banner"])
def test_p1_2_the_banner_asks_again_when_the_cookie_list_or_its_text_changes(
    web: TestClient, at: Runtime, change: Any
) -> None:
    give(web, ALL)
    changed = dataclasses.replace(at, policy=change(at.policy))
    with browser(changed) as other:
        carry(other, web.cookies[CONSENT_COOKIE])
        body = other.get(CONSENT).json()
        assert body["ask"] is True and body["choice"] is None
        unchanged = web.get(CONSENT).json()
        assert unchanged["ask"] is False, "under the old texts the choice still holds"
        assert body["versions"] != unchanged["versions"]
        if change is with_cookie:
            names = [c["name"] for c in body["categories"][1]["cookies"]]
            assert names[-1] == "kallu_ab"
            assert body["categories"][1]["cookies"][-1]["lifetime_text"] == "21 days"
        given = give(other, NECESSARY_ONLY)
        assert given["ask"] is False
        assert other.get(CONSENT).json()["choice"]["choices"] == NECESSARY_ONLY


def test_p1_2_the_banner_asks_again_when_a_new_policy_version_is_published(
    web: TestClient,
    at: Runtime,
    base_settings: Settings,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    give(web, ALL)
    revised = tmp_path / "kallu.toml"
    text = base_settings.policy_file.read_text(encoding="utf-8")
    revised.write_text(text.replace('version = "1.0.0"', 'version = "1.1.0"'), encoding="utf-8")
    with at.transaction() as session:
        assert PolicyStore(session, clock).load_file(revised) == at.policy_version + 1
    republished = open_runtime(base_settings, factory=at.factory, clock=clock)
    assert republished.cookie_versions.cookies == at.cookie_versions.cookies
    with browser(republished) as other:
        carry(other, web.cookies[CONSENT_COOKIE])
        body = other.get(CONSENT).json()
        assert body["ask"] is True and body["versions"]["policy"] == at.policy_version + 1


# P11.3: Global Privacy Control refuses advertising


def test_p11_3_gpc_stores_advertising_refused_even_when_sent_accepted(
    web: TestClient, at: Runtime
) -> None:
    body = give(web, ALL, **GPC)
    assert body["gpc"] is True
    assert body["choice"]["choices"] == ALL | {"advertising": False}
    (row,) = rows(at)
    assert row.gpc is True and row.choices == ALL | {"advertising": False}
    assert web.cookies[CONSENT_COOKIE].split(".")[1] == "strictly_necessary+analytics"
    with_gpc = web.get(CONSENT, headers=GPC).json()
    assert with_gpc["gpc"] is True and with_gpc["ask"] is False
    assert web.get(CONSENT).json()["gpc"] is False
    with at.transaction() as session:
        consents = at.cookie_consents(session)
        assert consents.allows(consent_id(web), "analytics") is True
        assert consents.allows(consent_id(web), "advertising") is False


def test_p11_3_a_browser_that_starts_sending_gpc_is_asked_again_about_advertising(
    web: TestClient,
) -> None:
    give(web, ALL)
    assert web.get(CONSENT, headers=GPC).json()["ask"] is True
    give(web, ALL, **GPC)
    assert web.get(CONSENT, headers=GPC).json()["ask"] is False
    give(web, NECESSARY_ONLY)
    assert web.get(CONSENT, headers=GPC).json()["ask"] is False, "a refusal needs no question"


# What a choice allows


def test_allows_needs_a_live_choice_for_anything_but_strictly_necessary(
    at: Runtime, clock: FrozenClock
) -> None:
    with at.transaction() as session:
        consents = at.cookie_consents(session)
        assert consents.allows(None, "strictly_necessary") is True
        assert consents.allows(None, "analytics") is False
        choice = consents.record(
            None, NECESSARY_ONLY | {"analytics": True}, subject_id=None, gpc=False, ip=None
        )
        assert consents.allows(choice.consent_id, "analytics") is True
        assert consents.allows(choice.consent_id, "advertising") is False
        assert consents.allows(choice.consent_id, "marketing") is False
        assert consents.allows("not-a-consent-id-at-all", "analytics") is False
        clock.advance(timedelta(days=200))
        assert consents.allows(choice.consent_id, "analytics") is False
        assert consents.allows(choice.consent_id, "strictly_necessary") is True


def test_each_change_is_a_new_row_and_the_latest_counts(
    web: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    give(web, ALL)
    the_id = consent_id(web)
    clock.advance(timedelta(minutes=5))
    body = give(web, NECESSARY_ONLY)
    assert consent_id(web) == the_id, "a change keeps the consent id"
    assert body["choice"]["choices"] == NECESSARY_ONLY
    assert [r.choices for r in rows(at)] == [ALL, NECESSARY_ONLY]
    assert web.cookies[CONSENT_COOKIE].split(".")[1] == "strictly_necessary"


@pytest.mark.parametrize(
    "value",
    ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.strictly_necessary+analytics.0123456789abcdef", "%%%", ""],
)
def test_a_consent_id_the_server_never_gave_is_replaced(
    web: TestClient, at: Runtime, value: str
) -> None:
    carry(web, value)
    assert web.get(CONSENT).json()["ask"] is True
    give(web, NECESSARY_ONLY)
    assert not web.cookies[CONSENT_COOKIE].startswith("AAAA")
    assert rows(at)[0].consent_key == token_digest(consent_id(web))


# Who may change a choice


def test_a_choice_given_while_logged_in_records_the_subject(
    web: TestClient, at: Runtime, alice: Person
) -> None:
    give(web, ALL, **alice.auth)
    (row,) = rows(at)
    assert row.subject_id == alice.subject_id
    assert web.get(CONSENT, headers=alice.auth).json()["choice"]["choices"] == ALL


def test_an_anonymous_choice_is_tied_to_whoever_logs_in_and_changes_it(
    web: TestClient, at: Runtime, alice: Person, clock: FrozenClock
) -> None:
    give(web, ALL)
    the_id = consent_id(web)
    clock.advance(timedelta(minutes=1))
    give(web, NECESSARY_ONLY, **alice.auth)
    assert consent_id(web) == the_id
    assert [r.subject_id for r in rows(at)] == [None, alice.subject_id]


def test_it_rejects_mallory_changing_alices_choice_and_stores_nothing(
    web: TestClient, at: Runtime, alice: Person, mallory: Person
) -> None:
    give(web, NECESSARY_ONLY, **alice.auth)
    before = count(at)
    forged = web.put(CONSENT, json={"choices": ALL}, headers=mallory.auth)
    detail = api_error(forged, 403, "consent_not_yours")
    assert alice.email not in detail and alice.subject_id not in detail
    assert count(at) == before
    assert web.get(CONSENT, headers=alice.auth).json()["choice"]["choices"] == NECESSARY_ONLY
    seen = web.get(CONSENT, headers=mallory.auth).json()
    assert seen["ask"] is True and seen["choice"] is None, "mallory does not see alice's choice"


def test_a_visitor_holding_a_members_consent_cookie_gets_a_consent_id_of_their_own(
    web: TestClient, at: Runtime, alice: Person
) -> None:
    give(web, NECESSARY_ONLY, **alice.auth)
    alices = consent_id(web)
    give(web, ALL)
    assert consent_id(web) != alices
    with at.transaction() as session:
        kept = at.cookie_consents(session).current(alices)
    assert kept is not None and kept.subject_id == alice.subject_id
    assert kept.choices == NECESSARY_ONLY
    owners = {r.consent_key: r.subject_id for r in rows(at)}
    assert owners == {token_digest(alices): alice.subject_id, token_digest(consent_id(web)): None}


# Bad input: a clear error and nothing stored


@pytest.mark.parametrize(
    ("choices", "status", "code", "said"),
    [
        (ALL | {"marketing": True}, 422, "invalid_cookie_choice", "'marketing'"),
        ({"strictly_necessary": True, "analytics": True}, 422, "invalid_cookie_choice", "advert"),
        (ALL | {"strictly_necessary": False}, 422, "invalid_cookie_choice", "always on"),
        (ALL | {"analytics": "yes"}, 422, "invalid_request", "choices.analytics"),
        (ALL | {"analytics": 1}, 422, "invalid_request", "choices.analytics"),
        (ALL | {"analytics": None}, 422, "invalid_request", "choices.analytics"),
        (ALL | {"x" * 41: True}, 422, "invalid_request", "choices"),
        (["analytics"], 422, "invalid_request", "choices"),
    ],
    ids=["unknown", "missing", "necessary-off", "text", "number", "null", "long-name", "list"],
)
def test_a_bad_choice_gets_a_clear_error_and_stores_nothing(
    web: TestClient, at: Runtime, choices: Any, status: int, code: str, said: str
) -> None:
    answer = web.put(CONSENT, json={"choices": choices})
    assert said in api_error(answer, status, code)
    assert count(at) == 0
    assert CONSENT_COOKIE not in web.cookies


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"choices": {"analytics": true', 400, "malformed_json"),
        (b'{"choices": {}, "consent_id": "x"}', 422, "invalid_request"),
        (b"{}", 422, "invalid_request"),
    ],
    ids=["malformed", "extra-field", "empty"],
)
def test_a_malformed_body_gets_a_clear_error_and_stores_nothing(
    web: TestClient, at: Runtime, body: bytes, status: int, code: str
) -> None:
    answer = web.put(CONSENT, content=body, headers={"content-type": "application/json"})
    api_error(answer, status, code)
    assert count(at) == 0


def test_an_oversize_body_is_refused_and_stores_nothing(web: TestClient, at: Runtime) -> None:
    padding = "x" * at.settings.max_body_bytes
    answer = web.put(CONSENT, json={"choices": ALL | {padding: True}})
    api_error(answer, 413, "body_too_large")
    assert count(at) == 0


def test_choices_made_in_the_same_instant_keep_their_order(at: Runtime) -> None:
    with at.transaction() as session:
        consents = at.cookie_consents(session)
        the_id = None
        for i in range(40):
            made = NECESSARY_ONLY | {"analytics": i % 2 == 0, "advertising": i % 3 == 0}
            the_id = consents.record(the_id, made, subject_id=None, gpc=False, ip=None).consent_id
            latest = consents.current(the_id)
            assert latest is not None and latest.choices == made


def test_p1_2_on_postgresql_the_banner_commits_each_statement_and_waits_for_the_disk(
    fresh_settings: Settings, backend: str
) -> None:
    """The banner's requests take sessions in which each statement commits on its own (no
    BEGIN and COMMIT round trips), from the runtime's own pool, and a choice still waits
    for the WAL to reach the disk; the pool's next session is a transaction again. A first
    visit's choice is one INSERT on the served app's event loop, with the same proof."""
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    try:
        if backend != "postgresql":
            assert runtime.autocommit is runtime.factory and runtime.on_loop() is None
        else:
            with runtime.autocommit() as session:
                connection = session.connection().connection.dbapi_connection
                assert connection is not None and connection.autocommit
                assert session.scalar(text("SHOW synchronous_commit")) == "on"
            with runtime.transaction() as session:
                connection = session.connection().connection.dbapi_connection
                assert connection is not None and not connection.autocommit
        with browser(runtime) as client:
            if backend == "postgresql":
                assert client.app.state.loop_writes is not None  # type: ignore[attr-defined]
            api_error(client.put(CONSENT, json={"choices": {"analytics": True}}), 422)
            first = give(client, ALL, **GPC)  # no consent id yet: a first choice
            assert client.get(CONSENT, headers=GPC).json()["ask"] is False
            give(client, NECESSARY_ONLY)  # the same consent id: its history grows
        [made, changed] = rows(runtime)
        assert made.choices == first["choice"]["choices"] == ALL | {"advertising": False}
        assert (made.gpc, made.ip_prefix, made.subject_id) == (True, "203.0.113.0/24", None)
        versions = runtime.cookie_versions
        assert (made.banner_version, made.cookies_version, made.policy_version) == (
            versions.banner,
            versions.cookies,
            versions.policy,
        )
        assert changed.consent_key == made.consent_key and changed.choices == NECESSARY_ONLY
    finally:
        runtime.close()
