"""The privacy centre's pages: what we hold, downloads, corrections, choices, requests and
closing the account, each for the person alone (P0.4, P2.4, P3.8, P3.15, P9.1, P9.4)."""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from factories import Person, browser, fill_person, marker, verified
from privault.rights.export import Exporter
from privault.runtime import Runtime
from privault.service.profile import Visibility
from privault.web.deps import SESSION_COOKIE

CENTRE = "/me/privacy"
PURCHASE = {
    "kind": "purchase",
    "item": "Premium room",
    "amount_minor": 4999,
    "currency": "EUR",
    "billing_name": "Alice Example",
    "billing_address": "1 Rue Example\n75001 Paris",
    "phone": "+442079460958",
    "email": "billing@example.com",
    "payment_token": "tok_centre",
    "card_brand": "visa",
    "card_last4": "4242",
    "card_expiry": "09/27",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def page_of(runtime: Runtime, person: Person | str) -> TestClient:
    """A browser logged in as ``person`` (or with that session token)."""
    client = browser(runtime)
    client.cookies.set(SESSION_COOKIE, person if isinstance(person, str) else person.token)
    return client


def csrf_of(client: TestClient, path: str = CENTRE) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def error_of(page: str, field: str) -> str:
    """The message shown under ``field`` (its ``f-<field>-error`` paragraph)."""
    found = re.search(rf'id="f-{field}-error">([^<]*)<', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def held_count(page: str, category: str) -> int:
    found = re.search(
        rf'id="held-{category}".*?<strong>(\d+) items?</strong>', page, flags=re.DOTALL
    )
    assert found is not None, category
    return int(found.group(1))


def age_login(connection: Connection, person: Person, minutes: int = 20) -> None:
    connection.execute(
        text("UPDATE login_sessions SET created_at = :at WHERE subject_id = :s"),
        {"at": datetime.now(UTC) - timedelta(minutes=minutes), "s": person.subject_id},
    )


def profile_of(runtime: Runtime, person: Person) -> dict[str, tuple[object, Visibility]]:
    with runtime.transaction() as session:
        read = runtime.profiles(session).read(person.subject_id)
    return {name: (entry.value, entry.visibility) for name, entry in read.items()}


# -- who may see it ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CENTRE, f"{CENTRE}/profile", f"{CENTRE}/close"])
def test_a_visitor_is_sent_to_log_in_and_back(client: TestClient, path: str) -> None:
    sent = client.get(path, follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=" + path.replace("/", "%2F")


def test_every_form_refuses_another_origin(runtime: Runtime, alice: Person) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page)
    for path in ("account", "username", "consents", "requests", "profile", "close", "posts/1"):
        refused = page.post(
            f"{CENTRE}/{path}", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
        )
        assert refused.status_code == 403, path


# -- what we hold -----------------------------------------------------------------------------


def test_the_centre_counts_and_samples_only_the_persons_own_data(
    client: TestClient, runtime: Runtime, pbx: dict[str, str], bob: Person
) -> None:
    filled = fill_person(client, pbx)
    bobs = marker("bo")
    client.patch("/api/v1/me/profile", json={"gender": {"value": bobs}}, headers=bob.auth)
    token = filled.auth["Authorization"].removeprefix("Bearer ")
    shown = page_of(runtime, token).get(CENTRE)
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"

    with runtime.transaction() as session:
        exporter = Exporter(session, runtime.vault, runtime.policy, runtime.clock)
        records = exporter.records(filled.subject_id)
    assert records, "fill_person leaves data in every category"
    for category, blocks in records.items():
        assert held_count(shown.text, category) == sum(len(b["rows"]) for b in blocks), category
    # Samples are opened for the person: some of their own values are on the page...
    assert sum(value in shown.text for value in filled.kept) >= len(records)
    # ... and nothing of bob's, nor any secret they typed.
    assert bobs not in shown.text and bob.email not in shown.text
    for secret in filled.secret:
        assert secret not in shown.text
    # Why, how long and who, from the policy.
    profile = runtime.policy.categories["call_records"]
    assert html.escape(profile.retention.reason) in shown.text
    assert "No one has received it from us." in shown.text


def test_a_person_with_little_data_sees_their_own_registration(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    shown = page_of(runtime, alice).get(CENTRE).text
    assert held_count(shown, "registration") >= 1
    assert alice.email in shown and alice.room_id in shown
    assert bob.email not in shown and bob.room_id not in shown


def test_p4_2_the_centre_names_who_received_the_persons_data(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    """A disclosure shows under each category it covered, for the people it covered, without
    who asked; a confidential one (a legal gag) is not shown."""
    requester = marker("rq")
    with runtime.transaction() as session:
        runtime.staff(session).add("officer", "privacy_officer")
        officer = runtime.staff(session).on_server("officer")
        disclosures = runtime.disclosures(session)
        for confidential in (False, True):
            disclosures.disclose(
                "courts_and_authorities",
                [alice.subject_id],
                ["registration"],
                "legal",
                "court_order",
                requester,
                officer,
                confidential=confidential,
            )
    shown = page_of(runtime, alice).get(CENTRE).text
    held = shown[shown.index('id="held-registration"') :]
    held = held[: held.index("</section>")]
    assert held.count("received your data") == 1, "the confidential one is not shown"
    assert "Courts and competent authorities (authority, FR) received your data" in held
    assert "under a court order" in held
    assert requester not in shown
    others = page_of(runtime, bob).get(CENTRE).text
    assert "No one has received it from us." in others
    assert "received your data" not in others


# -- downloads --------------------------------------------------------------------------------


def test_downloads_are_offered_after_a_fresh_login_only(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    page = page_of(runtime, alice)
    fresh = page.get(CENTRE).text
    assert 'href="/api/v1/me/export?kind=access"' in fresh
    assert 'href="/api/v1/me/export?kind=portability"' in fresh
    assert page.get("/api/v1/me/export?kind=access").headers["content-type"] == "application/zip"

    age_login(connection, alice)
    stale = page.get(CENTRE).text
    assert "/api/v1/me/export" not in stale
    assert 'href="/login?next=/me/privacy%23download"' in stale


# -- correcting the account -------------------------------------------------------------------


def test_the_account_form_corrects_the_display_name(runtime: Runtime, alice: Person) -> None:
    page = page_of(runtime, alice)
    name = marker("dn")
    form = {"csrf": csrf_of(page), "email": alice.email, "display_name": name}
    saved = page.post(f"{CENTRE}/account", data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].startswith(CENTRE)
    assert name in page.get(CENTRE).text
    with runtime.transaction() as session:
        summary = runtime.accounts(session).summary(alice.subject_id, purpose="administration")
    assert (summary.display_name, summary.email) == (name, alice.email)


def test_the_account_form_shows_each_problem_next_to_its_field(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page)
    bad = page.post(f"{CENTRE}/account", data={"csrf": csrf, "email": "not-an-address"})
    assert bad.status_code == 422
    assert "not a valid email address" in error_of(bad.text, "email")
    assert 'value="not-an-address"' in bad.text
    assert "Traceback" not in bad.text

    long_name = "n" * 101
    bad = page.post(
        f"{CENTRE}/account", data={"csrf": csrf, "email": alice.email, "display_name": long_name}
    )
    assert bad.status_code == 422
    assert "at most 100 characters" in error_of(bad.text, "display_name")
    assert f'value="{long_name}"' in bad.text

    taken = page.post(f"{CENTRE}/account", data={"csrf": csrf, "email": bob.email})
    assert taken.status_code == 409
    assert "already exists" in error_of(taken.text, "email")
    with runtime.transaction() as session:
        summary = runtime.accounts(session).summary(alice.subject_id, purpose="administration")
    assert summary.email == alice.email


def test_every_form_needs_the_sessions_token(runtime: Runtime, alice: Person, bob: Person) -> None:
    page = page_of(runtime, alice)
    bobs = csrf_of(page_of(runtime, bob))
    forms = {
        "account": {"email": "new@example.com"},
        "username": {"username": "alicepage"},
        "consents": {"channels": "marketing_email"},
        "requests": {"kind": "objection"},
        "close": {"confirm": "yes"},
    }
    for path, data in forms.items():
        for token in ("", bobs):
            refused = page.post(f"{CENTRE}/{path}", data={"csrf": token, **data})
            assert refused.status_code == 403, path
            assert "reload it" in refused.text
    refused = page.post(f"{CENTRE}/profile", data={"csrf": bobs, "gender": "x"})
    assert refused.status_code == 403
    with runtime.transaction() as session:
        assert runtime.rights(session).of(alice.subject_id) == []
        assert runtime.posts(session).username_of(alice.subject_id) is None
    assert profile_of(runtime, alice)["gender"] == (None, Visibility.PRIVATE)
    assert page.get(CENTRE).status_code == 200, "the account is still open"


# -- the profile ------------------------------------------------------------------------------


def test_p2_4_the_profile_form_sets_values_and_who_sees_each(
    runtime: Runtime, alice: Person
) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page, f"{CENTRE}/profile")
    gender, interest = marker("ge"), marker("in")
    form = {
        "csrf": csrf,
        "gender": gender,
        "gender_visibility": "public",
        "interests": f"{interest}, chess",
        "interests_visibility": "members",
        "birthday": "1990-04-30",
    }
    saved = page.post(f"{CENTRE}/profile", data=form, follow_redirects=False)
    assert saved.status_code == 303
    profile = profile_of(runtime, alice)
    assert profile["gender"] == (gender, Visibility.PUBLIC)
    assert profile["interests"] == ([interest, "chess"], Visibility.MEMBERS)
    assert profile["birthday"] == ("1990-04-30", Visibility.PRIVATE)
    shown = page.get(f"{CENTRE}/profile")
    assert shown.headers["cache-control"] == "no-store"
    assert f'value="{gender}"' in shown.text and f"{interest}, chess" in shown.text

    # Emptying a field deletes it; a picture is added from a file.
    form = {"csrf": csrf, "gender": "", "interests": interest, "pictures_visibility": "members"}
    picture = ("me.png", PNG, "image/png")
    saved = page.post(
        f"{CENTRE}/profile", data=form, files={"pictures": picture}, follow_redirects=False
    )
    assert saved.status_code == 303
    profile = profile_of(runtime, alice)
    assert profile["gender"] == (None, Visibility.PRIVATE)
    assert profile["birthday"][0] is None, "a field left out of the form is emptied"
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert profile["pictures"] == ([data_url], Visibility.MEMBERS)
    assert f'src="{data_url}"' in page.get(f"{CENTRE}/profile").text


def test_p2_4_the_profile_form_refuses_bad_values_next_to_their_fields(
    runtime: Runtime, alice: Person
) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page, f"{CENTRE}/profile")
    gender = marker("ge")
    form = {
        "csrf": csrf,
        "gender": gender,
        "birthday": "1800-01-01",
        "education_visibility": "public",
        "name_visibility": "everyone",
    }
    bad = page.post(f"{CENTRE}/profile", data=form)
    assert bad.status_code == 422
    assert "1900-01-01 or later" in error_of(bad.text, "birthday")
    assert "add a value" in error_of(bad.text, "education")
    assert "choose who sees it" in error_of(bad.text, "name")
    assert 'value="1800-01-01"' in bad.text and f'value="{gender}"' in bad.text
    fake = ("me.png", b"not a picture", "image/png")
    bad = page.post(f"{CENTRE}/profile", data={"csrf": csrf}, files={"pictures": fake})
    assert bad.status_code == 422
    assert "PNG, JPEG or WebP" in error_of(bad.text, "pictures")
    assert profile_of(runtime, alice)["gender"] == (None, Visibility.PRIVATE), "nothing saved"


# -- choices ----------------------------------------------------------------------------------


def test_p3_8_the_consents_form_gives_and_withdraws_each_channel(
    runtime: Runtime, alice: Person
) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page)
    form = {"csrf": csrf, "channels": ["marketing_email"]}
    assert page.post(f"{CENTRE}/consents", data=form, follow_redirects=False).status_code == 303
    with runtime.transaction() as session:
        state = runtime.channel_consents(session).state(alice.subject_id)
    assert state == {
        "newsletter": False,
        "marketing_email": True,
        "marketing_post": False,  # opt-out: unticked is an objection
        "third_party": False,
    }
    shown = page.get(CENTRE).text
    assert re.search(r'value="marketing_email" checked', shown)
    assert not re.search(r'value="marketing_post" checked', shown)


def test_p2_5_the_newsletter_needs_a_confirmed_address(runtime: Runtime, alice: Person) -> None:
    page = page_of(runtime, alice)
    form = {"csrf": csrf_of(page), "channels": ["newsletter", "third_party"]}
    refused = page.post(f"{CENTRE}/consents", data=form)
    assert refused.status_code == 409
    assert "confirm your email address" in error_of(refused.text, "channels")
    assert re.search(r'value="third_party" checked', refused.text), "the ticks are kept"
    with runtime.transaction() as session:
        assert not runtime.channel_consents(session).state(alice.subject_id)["third_party"]

    carol = verified(runtime, "carol")
    page = page_of(runtime, carol)
    form = {"csrf": csrf_of(page), "channels": ["newsletter"]}
    assert page.post(f"{CENTRE}/consents", data=form, follow_redirects=False).status_code == 303
    with runtime.transaction() as session:
        assert runtime.channel_consents(session).state(carol.subject_id)["newsletter"]


def test_p3_15_the_username_form_makes_and_removes_the_public_page(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page)
    name = f"alice{marker('u')}"[:20]
    chosen = page.post(
        f"{CENTRE}/username", data={"csrf": csrf, "username": name}, follow_redirects=False
    )
    assert chosen.status_code == 303
    assert f'href="/u/{name}"' in page.get(CENTRE).text

    bobs = page_of(runtime, bob)
    taken = bobs.post(f"{CENTRE}/username", data={"csrf": csrf_of(bobs), "username": name})
    assert taken.status_code == 409
    assert "taken" in error_of(taken.text, "username")
    assert f'value="{name}"' in taken.text
    bad = bobs.post(f"{CENTRE}/username", data={"csrf": csrf_of(bobs), "username": "a b!"})
    assert bad.status_code == 422 and error_of(bad.text, "username")

    dropped = page.post(
        f"{CENTRE}/username", data={"csrf": csrf, "username": ""}, follow_redirects=False
    )
    assert dropped.status_code == 303
    with runtime.transaction() as session:
        assert runtime.posts(session).username_of(alice.subject_id) is None


def test_p3_15_each_post_has_its_visibility_on_the_page(
    client: TestClient, runtime: Runtime, alice: Person, mallory: Person
) -> None:
    body = marker("po")
    made = client.post("/api/v1/me/posts", json={"body": body}, headers=alice.auth)
    post_id = made.json()["id"]
    page = page_of(runtime, alice)
    shown = page.get(CENTRE).text
    assert body in shown and f'action="/me/privacy/posts/{post_id}"' in shown
    csrf = csrf_of(page)
    path = f"{CENTRE}/posts/{post_id}"
    bad = page.post(path, data={"csrf": csrf, "visibility": "friends"})
    assert bad.status_code == 422
    assert "choose who sees it" in error_of(bad.text, f"post-{post_id}")
    done = page.post(path, data={"csrf": csrf, "visibility": "public"}, follow_redirects=False)
    assert done.status_code == 303
    with runtime.transaction() as session:
        assert runtime.posts(session).read(alice.subject_id, post_id).visibility == "public"

    theirs = page_of(runtime, mallory)
    refused = theirs.post(path, data={"csrf": csrf_of(theirs), "visibility": "private"})
    assert refused.status_code == 404 and body not in refused.text
    with runtime.transaction() as session:
        assert runtime.posts(session).read(alice.subject_id, post_id).visibility == "public"


# -- requests ---------------------------------------------------------------------------------


def test_p9_4_a_request_filed_on_the_page_shows_its_state_and_due_date(
    runtime: Runtime, alice: Person
) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page)
    filed = page.post(
        f"{CENTRE}/requests",
        data={"csrf": csrf, "kind": "objection", "details": "no profiling"},
        follow_redirects=False,
    )
    assert filed.status_code == 303
    with runtime.transaction() as session:
        (request,) = runtime.rights(session).of(alice.subject_id)
    assert (request.kind, request.state, request.channel) == ("objection", "verified", "web")
    assert request.due_at is not None
    shown = page.get(CENTRE).text
    due = f"{request.due_at.day} {request.due_at:%B %Y}"
    days = (request.due_at.date() - datetime.now(UTC).date()).days
    assert f"{due} (in {days} days)" in shown
    assert "Waiting to be handled" in shown

    withdrawn = page.post(
        f"{CENTRE}/requests/{request.id}/withdraw", data={"csrf": csrf}, follow_redirects=False
    )
    assert withdrawn.status_code == 303
    assert "Withdrawn by you" in page.get(CENTRE).text


def test_p9_1_the_request_form_refuses_bad_input_next_to_the_field(
    runtime: Runtime, alice: Person
) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page)
    bad = page.post(f"{CENTRE}/requests", data={"csrf": csrf, "kind": "sale", "details": "hi"})
    assert bad.status_code == 422
    assert "kind must be one of" in error_of(bad.text, "kind")
    assert ">hi</textarea>" in bad.text
    long = "x" * 2001
    bad = page.post(f"{CENTRE}/requests", data={"csrf": csrf, "kind": "access", "details": long})
    assert bad.status_code == 422
    assert "at most 2000 characters" in error_of(bad.text, "details")
    assert f">{long}</textarea>" in bad.text
    assert re.search(r'<option value="access" selected', bad.text)
    with runtime.transaction() as session:
        assert runtime.rights(session).of(alice.subject_id) == []


def test_an_erasure_request_goes_to_the_closing_page(runtime: Runtime, alice: Person) -> None:
    page = page_of(runtime, alice)
    sent = page.post(
        f"{CENTRE}/requests",
        data={"csrf": csrf_of(page), "kind": "erasure"},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"{CENTRE}/close"
    with runtime.transaction() as session:
        assert runtime.rights(session).of(alice.subject_id) == [], "nothing filed yet"


def test_it_rejects_mallory_withdrawing_bobs_request(
    runtime: Runtime, bob: Person, mallory: Person
) -> None:
    with runtime.transaction() as session:
        rights = runtime.rights(session)
        request = rights.file(bob.subject_id, "access", "api", actor="t", verified=True)
        request_id = request.id
    page = page_of(runtime, mallory)
    refused = page.post(f"{CENTRE}/requests/{request_id}/withdraw", data={"csrf": csrf_of(page)})
    assert refused.status_code == 404
    assert "Traceback" not in refused.text and bob.email not in refused.text
    with runtime.transaction() as session:
        assert runtime.rights(session).get(request_id).state == "verified"
    assert request_id not in page.get(CENTRE).text


# -- closing the account ----------------------------------------------------------------------


def test_p0_4_the_closing_page_warns_then_closes_and_logs_out(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    page = page_of(runtime, alice)
    warning = page.get(f"{CENTRE}/close")
    assert warning.status_code == 200 and warning.headers["cache-control"] == "no-store"
    due = runtime.policy.rights.due_at(datetime.now(UTC))
    assert "cannot be undone" in warning.text
    assert f"{due.day} {due:%B %Y}" in warning.text
    assert "The law makes us keep none of what we hold about you." in warning.text
    bought = client.post("/api/v1/me/purchases", json=PURCHASE, headers=alice.auth)
    assert bought.status_code == 201, bought.text
    warning = page.get(f"{CENTRE}/close")
    assert "Purchases and payments, for 10 years" in warning.text, "what the law keeps"
    assert "Article L123-22" in warning.text
    csrf = csrf_of(page, f"{CENTRE}/close")

    unconfirmed = page.post(f"{CENTRE}/close", data={"csrf": csrf})
    assert unconfirmed.status_code == 422
    assert "tick the box" in error_of(unconfirmed.text, "confirm")

    closed = page.post(f"{CENTRE}/close", data={"csrf": csrf, "confirm": "yes"})
    assert closed.status_code == 200
    assert "Your account is closed" in closed.text and f"{due:%d %B %Y}" in closed.text
    dropped = closed.headers["set-cookie"]
    assert dropped.startswith(f'{SESSION_COOKIE}=""') and "Max-Age=0" in dropped
    assert page.get(CENTRE, follow_redirects=False).status_code == 303, "the session is gone"
    login = {"email": alice.email, "password": alice.password}
    assert client.post("/api/v1/session", json=login).status_code == 401
    with runtime.transaction() as session:
        (request,) = runtime.rights(session).of(alice.subject_id)
    assert (request.kind, request.channel) == ("erasure", "web")


def test_p0_4_closing_needs_a_fresh_login(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    page = page_of(runtime, alice)
    csrf = csrf_of(page, f"{CENTRE}/close")
    age_login(connection, alice)
    shown = page.get(f"{CENTRE}/close").text
    assert 'href="/login?next=/me/privacy/close"' in shown and 'name="confirm"' not in shown
    refused = page.post(f"{CENTRE}/close", data={"csrf": csrf, "confirm": "yes"})
    assert refused.status_code == 401 and "log in again" in refused.text
    assert page.get(CENTRE).status_code == 200, "still open"
