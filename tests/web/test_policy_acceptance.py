"""P8.3: until a person accepts the policy's current version, only the policy, acceptance,
export and erasure answer; the web sends them to the acceptance page; the PBX's PIN check
works during the policy's grace."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from factories import Person, api_error, browser, kallu_data, policy_refusal, register
from privault.clock import FrozenClock
from privault.config import Settings
from privault.consent.models import PolicyAcceptance
from privault.policy.store import PolicyStore
from privault.runtime import Runtime, open_runtime
from privault.web.app import create_app
from privault.web.deps import SESSION_COOKIE

API = "/api/v1"
HOST = "203.0.113.77"
#: Person calls that answer before acceptance: the policy, acceptance, export, erasure,
#: withdrawing consent.
OPEN = {
    ("GET", "/api/v1/me/policy"),
    ("POST", "/api/v1/me/policy/accept"),
    ("POST", "/api/v1/me/policy/refuse"),
    ("GET", "/api/v1/me/requests"),
    ("POST", "/api/v1/me/requests"),  # only of kind access, portability or erasure
    ("GET", "/api/v1/me/export"),
    ("GET", "/api/v1/me/exports/{token}"),
    ("DELETE", "/api/v1/me"),
    ("GET", "/api/v1/me/consents"),
    ("PUT", "/api/v1/me/consents"),  # only to withdraw
}
#: Calls that are not a person's use of the service: logging in and out, registering,
#: reading the policy, the cookie banner and analytics (which answer visitors alike and
#: follow the cookie choice, itself asked again under a new policy), the newsletter form,
#: and what staff and the PBX call with tokens of their own.
NOT_A_PERSONS = {
    ("POST", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("POST", "/api/v1/accounts"),
    ("POST", "/api/v1/accounts/verify"),
    ("GET", "/api/v1/policy"),
    ("GET", "/api/v1/consent"),
    ("PUT", "/api/v1/consent"),
    ("POST", "/api/v1/analytics/events"),
    ("POST", "/api/v1/newsletter"),
}
NOT_A_PERSONS_PREFIXES = ("/api/v1/staff/", "/api/v1/pbx/")


@pytest.fixture
def amended(base_settings: Settings, runtime: Runtime, tmp_path: Path) -> Runtime:
    """A new version of the policy stored now (same transaction), and a runtime serving
    it on a clock the test moves."""
    clock = FrozenClock(datetime.now(UTC))
    path = tmp_path / "kallu.toml"
    text = base_settings.policy_file.read_text(encoding="utf-8")
    path.write_text(f"{text}\n# amended {secrets.token_hex(4)}\n", encoding="utf-8")
    with runtime.transaction() as session:
        PolicyStore(session, clock).load_file(path)
    served = open_runtime(base_settings, factory=runtime.factory, clock=clock)
    assert served.policy_version == runtime.policy_version + 1
    return served


@pytest.fixture
def api(amended: Runtime) -> TestClient:
    return browser(amended, HOST)


def answers(runtime: Runtime, person: Person) -> list[PolicyAcceptance]:
    with runtime.transaction() as session:
        return list(
            session.scalars(
                select(PolicyAcceptance)
                .where(PolicyAcceptance.subject_id == person.subject_id)
                .order_by(PolicyAcceptance.at)
            )
        )


def refused_for_acceptance(response: Response, version: int) -> None:
    assert response.status_code == 403, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "detail", "version"}, body
    assert body["error"] == "policy_acceptance_required"
    assert body["version"] == version
    assert f"/privacy/v/{version}" in body["detail"]


def test_p8_3_only_the_allowed_endpoints_answer_before_acceptance(
    amended: Runtime, api: TestClient, alice: Person
) -> None:
    """Every operation of the API, as a person who has not accepted the new version: the
    allowed ones answer something else than the 403 (a new route is gated unless it says
    otherwise); closing the account and logging out go last."""
    paths = create_app(amended).openapi()["paths"]
    operations = [
        (method.upper(), path)
        for path, methods in paths.items()
        if path.startswith(API)
        for method in methods
    ]
    last = [("DELETE", "/api/v1/me"), ("DELETE", "/api/v1/session")]
    operations = [op for op in operations if op not in last] + last
    gated, open_ = [], []
    for method, path in operations:
        if (method, path) in NOT_A_PERSONS or path.startswith(NOT_A_PERSONS_PREFIXES):
            continue
        url = re.sub(r"\{[^}]+\}", "x1", path)
        response = api.request(method, url, headers=alice.auth, json={})
        if (method, path) in OPEN:
            assert response.status_code != 403, (method, path, response.text)
            open_.append((method, path))
        else:
            refused_for_acceptance(response, amended.policy_version)
            gated.append((method, path))
    assert set(open_) == OPEN
    assert len(gated) > 30


def test_p8_3_a_person_who_accepted_uses_the_service(
    amended: Runtime, api: TestClient, alice: Person
) -> None:
    assert api.get(f"{API}/me", headers=alice.auth).status_code == 403
    state = api.get(f"{API}/me/policy", headers=alice.auth).json()
    assert state["accepted"] is False and state["answer"] is None
    assert state["version"] == amended.policy_version
    assert state["url"].endswith(f"/privacy/v/{amended.policy_version}")
    assert state["last_accepted"]["version"] == amended.policy_version - 1

    done = api.post(
        f"{API}/me/policy/accept", headers=alice.auth, json={"version": amended.policy_version}
    )
    assert done.status_code == 200, done.text
    assert api.get(f"{API}/me", headers=alice.auth).status_code == 200
    state = api.get(f"{API}/me/policy", headers=alice.auth).json()
    assert state["accepted"] is True and state["answer"]["accepted"] is True


def test_p8_3_acceptance_is_recorded_with_proof(
    amended: Runtime, api: TestClient, alice: Person
) -> None:
    version = amended.policy_version
    clock = amended.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(minutes=5))
    api.post(f"{API}/me/policy/accept", headers=alice.auth, json={"version": version})
    registered, accepted = answers(amended, alice)
    assert (registered.policy_version, registered.source) == (version - 1, "registration")
    assert accepted.policy_version == version
    assert accepted.accepted is True
    assert accepted.source == "api"
    assert accepted.ip_prefix == "203.0.113.0/24"
    assert accepted.at.replace(tzinfo=UTC) == amended.clock.now()


def test_p8_3_accepting_another_version_than_the_current_is_refused(
    amended: Runtime, api: TestClient, alice: Person
) -> None:
    for stale in (amended.policy_version - 1, amended.policy_version + 1):
        response = api.post(f"{API}/me/policy/accept", headers=alice.auth, json={"version": stale})
        api_error(response, 409, "policy_version_not_current")
    refused_for_acceptance(api.get(f"{API}/me", headers=alice.auth), amended.policy_version)
    assert len(answers(amended, alice)) == 1


def test_p8_3_after_refusing_export_and_closure_still_work(
    amended: Runtime, api: TestClient, alice: Person
) -> None:
    version = amended.policy_version
    refused = api.post(f"{API}/me/policy/refuse", headers=alice.auth, json={"version": version})
    assert refused.status_code == 200, refused.text
    links = {(link["method"], link["href"]) for link in refused.json()["open"]}
    assert ("GET", f"{API}/me/export") in links and ("DELETE", f"{API}/me") in links
    assert answers(amended, alice)[-1].accepted is False
    refused_for_acceptance(api.get(f"{API}/me/room", headers=alice.auth), version)

    export = api.get(f"{API}/me/export", headers=alice.auth)
    assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
    filed = api.post(f"{API}/me/requests", headers=alice.auth, json={"kind": "portability"})
    assert filed.status_code == 201, filed.text
    other = api.post(f"{API}/me/requests", headers=alice.auth, json={"kind": "restriction"})
    refused_for_acceptance(other, version)
    closed = api.delete(f"{API}/me", headers=alice.auth)
    assert closed.status_code == 202, closed.text


def test_p8_3_registration_accepts_the_current_version(amended: Runtime, api: TestClient) -> None:
    email = f"carol.{secrets.token_hex(4)}@example.com"
    password = f"carol-{secrets.token_hex(6)}-pass"
    made = api.post(f"{API}/accounts", json={"email": email, "password": password})
    assert made.status_code == 201, made.text
    token = api.post(f"{API}/session", json={"email": email, "password": password}).json()
    auth = {"Authorization": f"Bearer {token['token']}"}
    assert api.get(f"{API}/me", headers=auth).status_code == 200
    carol = Person(made.json()["subject_id"], email, password, "", "")
    (answer,) = answers(amended, carol)
    assert (answer.policy_version, answer.accepted) == (amended.policy_version, True)
    assert (answer.source, answer.ip_prefix) == ("registration", "203.0.113.0/24")


def test_p8_3_a_policy_version_anyone_may_read(amended: Runtime, api: TestClient) -> None:
    body = api.get(f"{API}/policy").json()
    assert body["version"] == amended.policy_version
    # The day the fixture stored the version on its clock (the file says only when the
    # first version took effect).
    assert body["effective_date"] == str(amended.clock.now().date())
    assert body["url"].endswith(f"/privacy/v/{amended.policy_version}")


# -- the PBX's grace ---------------------------------------------------------------------


def test_p8_3_pin_check_works_during_the_grace_then_says_why_it_refuses(
    amended: Runtime, api: TestClient, alice: Person, pbx: dict[str, str]
) -> None:
    pin = "4829"
    with amended.transaction() as session:
        amended.pins(session).set_pin(alice.subject_id, pin)

    def check(typed: str = pin) -> dict[str, object]:
        response = api.post(
            f"{API}/pbx/pin-check", headers=pbx, json={"room_id": alice.room_id, "pin": typed}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert check() == {"allowed": True}
    assert amended.policy.amendments.pbx_grace.days == 14
    clock = amended.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(days=13, hours=23))
    assert check() == {"allowed": True}
    clock.advance(timedelta(hours=1))
    assert check() == {"allowed": False, "reason": "policy_acceptance_required"}
    assert check("5173") == {"allowed": False}, "a wrong PIN learns nothing more"
    with amended.transaction() as session:
        amended.acceptances(session).accept(alice.subject_id, amended.policy_version)
    assert check() == {"allowed": True}


def test_p8_3_the_pbx_grace_is_an_iso_duration_in_the_policy() -> None:
    data = kallu_data()
    data["amendments"] = {"pbx_grace": "two weeks"}
    assert "amendments.pbx_grace" in policy_refusal(data)
    data["amendments"] = {"pbx_grace": "P14D", "extra": 1}
    assert "amendments.extra" in policy_refusal(data)


# -- the web -----------------------------------------------------------------------------


def _logged_in(amended: Runtime, person: Person) -> TestClient:
    page = browser(amended, HOST)
    page.cookies.set(SESSION_COOKIE, person.token)
    return page


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None, html
    return found.group(1)


def test_p8_3_web_pages_send_a_person_to_the_acceptance_page(
    amended: Runtime, alice: Person, bob: Person
) -> None:
    page = _logged_in(amended, alice)
    for url in ("/contact", "/u/somebody"):
        sent = page.get(url, follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"] == "/policy/accept", url
    shown = page.get("/policy/accept")
    assert shown.status_code == 200
    assert f'href="/privacy/v/{amended.policy_version}"' in shown.text
    assert browser(amended, HOST).get("/contact").status_code == 200, "visitors are not sent"


def test_p8_3_the_acceptance_page_needs_the_sessions_form_token(
    amended: Runtime, alice: Person, bob: Person
) -> None:
    page = _logged_in(amended, alice)
    version = str(amended.policy_version)
    for token in ("", "0" * 64, _csrf(_logged_in(amended, bob).get("/policy/accept").text)):
        refused = page.post("/policy/accept", data={"csrf": token, "version": version})
        assert refused.status_code == 403, token
    assert len(answers(amended, alice)) == 1, "nothing recorded"

    csrf = _csrf(page.get("/policy/accept").text)
    done = page.post(
        "/policy/accept", data={"csrf": csrf, "version": version}, follow_redirects=False
    )
    assert done.status_code == 303
    assert page.get("/contact").status_code == 200
    last = answers(amended, alice)[-1]
    assert (last.accepted, last.source, last.ip_prefix) == (True, "web", "203.0.113.0/24")


def test_p8_3_after_refusing_on_the_page_it_offers_export_and_closure(
    amended: Runtime, alice: Person
) -> None:
    page = _logged_in(amended, alice)
    csrf = _csrf(page.get("/policy/accept").text)
    shown = page.post("/policy/refuse", data={"csrf": csrf, "version": amended.policy_version})
    assert shown.status_code == 200
    assert "/api/v1/me/export" in shown.text and 'action="/policy/close"' in shown.text
    assert answers(amended, alice)[-1].accepted is False
    assert page.post("/policy/close", data={"csrf": "nope"}).status_code == 403
    closed = page.post("/policy/close", data={"csrf": csrf})
    assert closed.status_code == 200 and "account is closed" in closed.text


def test_p8_3_people_registered_now_are_not_asked_again(runtime: Runtime) -> None:
    carol = register(runtime, "carol")
    client = browser(runtime, HOST)
    assert client.get(f"{API}/me", headers=carol.auth).status_code == 200


def test_p8_3_consent_can_be_withdrawn_but_not_given_before_acceptance(
    amended: Runtime, api: TestClient, alice: Person
) -> None:
    """Withdrawing must be as easy as giving (GDPR Art. 7(3)): a new version waiting for an
    answer does not stand in its way. Giving consent waits for the answer: it would be
    given under terms not yet accepted."""
    url = f"{API}/me/consents"
    refused_for_acceptance(
        api.put(url, headers=alice.auth, json={"channels": {"marketing_email": True}}),
        amended.policy_version,
    )
    withdrawn = api.put(
        url, headers=alice.auth, json={"channels": {"marketing_post": False, "newsletter": False}}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    channels = api.get(url, headers=alice.auth).json()["channels"]
    assert channels["marketing_post"] is False and channels["marketing_email"] is False
