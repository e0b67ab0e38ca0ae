"""The account pages (issue 10): sign up, log in and out, a forgotten password.

Every form: a bad value comes back next to its field with what was typed, never a
password; a form from another origin or without the session's form token changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from factories import Person, mails, register, unique_email
from formkit import OTHER_SITE, field_error, field_value, form_token, is_page
from privault.clock import FrozenClock
from privault.rights.service import Channel
from privault.runtime import Runtime
from privault.service.errors import SessionInvalid
from privault.service.models import Account, PasswordReset
from privault.web.account_pages import local_path

PASSWORD = "lantern-harbour-77"


# -- helpers -----------------------------------------------------------------------------


def signed_in(runtime: Runtime, token: str) -> bool:
    with runtime.transaction() as session:
        try:
            runtime.accounts(session).authenticate(token)
        except SessionInvalid:
            return False
    return True


def account_of(runtime: Runtime, email: str) -> str | None:
    with runtime.transaction() as session:
        return runtime.accounts(session).subject_of(email)


def sign_up(client: TestClient, email: str, password: str = PASSWORD, **more: str) -> Response:
    return client.post(
        "/signup", data={"email": email, "password": password, **more}, follow_redirects=False
    )


# -- sign up -------------------------------------------------------------------------------


def test_signing_up_logs_in_mails_the_link_and_shows_the_room(
    client: TestClient, runtime: Runtime
) -> None:
    email = unique_email("carol")
    form = client.get("/signup")
    assert form.status_code == 200
    assert '<label for="f-email">' in form.text

    response = sign_up(client, email, display_name="Carol")
    assert response.status_code == 303
    assert response.headers["location"] == "/room?done=welcome"
    cookie = response.headers["set-cookie"].lower()
    assert "privault_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie

    subject_id = account_of(runtime, email)
    assert subject_id is not None
    (mail,) = mails(runtime, subject_id, "verify_email")
    assert mail["to"] == email
    room = client.get(response.headers["location"])
    assert room.status_code == 200  # logged in, and the policy accepted by registering
    assert "Check your mail to verify your address" in room.text


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "is not a valid email address"),
        ({"email": ""}, "email", "enter your email address"),
        ({"password": "short"}, "password", "at least 10 characters"),
        ({"password": "password123"}, "password", "most common passwords"),
        ({"password": ""}, "password", "choose a password"),
        ({"display_name": "x" * 101}, "display_name", "at most 100 characters"),
    ],
)
def test_signup_shows_bad_input_next_to_its_field_and_keeps_it_but_the_password(
    client: TestClient, runtime: Runtime, data: dict[str, str], field: str, message: str
) -> None:
    email = unique_email("carol")
    sent = {"email": email, "password": PASSWORD, "display_name": "Carol Example", **data}
    response = client.post("/signup", data=sent)
    assert response.status_code == 422
    is_page(response)
    assert message in (field_error(response, field) or "")
    if field != "email":
        assert field_value(response, "email") == email
    if field != "display_name":
        assert field_value(response, "display_name") == "Carol Example"
    if sent["password"]:
        assert sent["password"] not in response.text
    assert field_value(response, "password") is None
    assert account_of(runtime, sent["email"]) is None
    assert "privault_session" not in response.headers.get("set-cookie", "")


def test_signup_with_a_registered_address_says_only_that(client: TestClient, alice: Person) -> None:
    response = client.post("/signup", data={"email": alice.email, "password": PASSWORD})
    assert response.status_code == 409
    is_page(response)
    assert field_error(response, "email") == "an account with this email address already exists"
    assert field_value(response, "email") == alice.email
    assert PASSWORD not in response.text


def test_signup_from_another_site_is_refused(client: TestClient, runtime: Runtime) -> None:
    email = unique_email("carol")
    response = client.post(
        "/signup", data={"email": email, "password": PASSWORD}, headers=OTHER_SITE
    )
    assert response.status_code == 403
    assert account_of(runtime, email) is None


# -- log in --------------------------------------------------------------------------------


def test_logging_in_sets_the_cookie_and_goes_back_where_the_visitor_was_sent_from(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    sent = client.get("/room", follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=%2Froom"
    form = client.get(sent.headers["location"])
    assert '<input type="hidden" name="next" value="/room">' in form.text

    response = client.post(
        "/login",
        data={"email": alice.email, "password": alice.password, "next": "/room?x=1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/room?x=1"
    token = client.cookies["privault_session"]
    assert signed_in(runtime, token)
    assert "httponly" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    "target",
    [
        "https://attacker.example/",
        "//attacker.example/room",
        "/\\attacker.example",
        "javascript:alert(1)",
        "room",
        "/room\r\nSet-Cookie: x=1",
    ],
)
def test_login_never_sends_anyone_to_another_site(
    client: TestClient, alice: Person, target: str
) -> None:
    assert local_path(target) is None
    form = client.get("/login", params={"next": target})
    assert 'name="next"' not in form.text
    response = client.post(
        "/login",
        data={"email": alice.email, "password": alice.password, "next": target},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/room"


def test_wrong_credentials_get_one_message_that_does_not_say_which(
    client: TestClient, alice: Person
) -> None:
    wrong_password = client.post(
        "/login", data={"email": alice.email, "password": "not-her-password-1"}
    )
    unknown = client.post(
        "/login", data={"email": unique_email("nobody"), "password": "not-her-password-1"}
    )
    for response in (wrong_password, unknown):
        assert response.status_code == 401
        is_page(response)
        assert "the email address or the password is wrong" in response.text
        assert "not-her-password-1" not in response.text
        assert field_value(response, "password") is None
    assert field_value(wrong_password, "email") == alice.email
    assert "privault_session" not in client.cookies


def test_login_shows_empty_fields_next_to_them(client: TestClient) -> None:
    response = client.post("/login", data={"email": "", "password": ""})
    assert response.status_code == 422
    assert field_error(response, "email") == "enter your email address"
    assert field_error(response, "password") == "enter your password"


def test_login_from_another_site_is_refused(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    response = client.post(
        "/login", data={"email": alice.email, "password": alice.password}, headers=OTHER_SITE
    )
    assert response.status_code == 403
    assert "privault_session" not in client.cookies


# -- log out -------------------------------------------------------------------------------


def test_logging_out_ends_the_session_by_the_header_form(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    client.cookies.set("privault_session", alice.token)
    page = client.get("/room")
    assert '<form method="post" action="/logout">' in page.text
    response = client.post("/logout", data={"csrf": form_token(page)}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert not signed_in(runtime, alice.token)
    assert 'privault_session=""' in response.headers["set-cookie"]


@pytest.mark.parametrize("csrf", ["", "0" * 64])
def test_logging_out_without_the_form_token_ends_nothing(
    client: TestClient, runtime: Runtime, alice: Person, bob: Person, csrf: str
) -> None:
    client.cookies.set("privault_session", alice.token)
    response = client.post("/logout", data={"csrf": csrf})
    assert response.status_code == 403
    is_page(response)
    assert "reload it" in response.text
    assert signed_in(runtime, alice.token)

    # Bob's token is worthless for Alice's session.
    client.cookies.set("privault_session", bob.token)
    bobs = client.get("/room")
    client.cookies.set("privault_session", alice.token)
    assert client.post("/logout", data={"csrf": form_token(bobs)}).status_code == 403
    assert signed_in(runtime, alice.token)


# -- a forgotten password ------------------------------------------------------------------


def reset_link(runtime: Runtime, subject_id: str) -> str:
    """The path of the newest reset link mailed to the person."""
    sent = mails(runtime, subject_id, "password_reset")
    assert sent, "no reset mail"
    return urlsplit(sent[-1]["context"]["link"]).path


def forgot(client: TestClient, email: str) -> Response:
    return client.post("/password/forgot", data={"email": email}, follow_redirects=False)


def test_forgot_answers_the_same_for_every_address_and_mails_only_an_account(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    known, unknown = forgot(client, alice.email), forgot(client, unique_email("nobody"))
    for response in (known, unknown):
        assert response.status_code == 303
        assert response.headers["location"] == "/password/forgot?sent=true"
    assert known.text == unknown.text
    page = client.get("/password/forgot?sent=true")
    assert "If that address has an account, we sent a link to it" in page.text

    assert reset_link(runtime, alice.subject_id).startswith("/password/reset/")
    (mail,) = mails(runtime, alice.subject_id, "password_reset")
    assert mail["to"] == alice.email
    assert mail["context"]["minutes"] == 60


def test_forgot_mails_an_account_at_most_every_five_minutes(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    carol = register(at, "carol")
    for _ in range(3):
        assert forgot(client_at, carol.email).status_code == 303
    assert len(mails(at, carol.subject_id, "password_reset")) == 1
    clock.advance(timedelta(minutes=6))
    forgot(client_at, carol.email)
    assert len(mails(at, carol.subject_id, "password_reset")) == 2


def test_forgot_shows_a_bad_address_next_to_the_field(client: TestClient) -> None:
    response = client.post("/password/forgot", data={"email": "carol at example"})
    assert response.status_code == 422
    is_page(response)
    assert "is not a valid email address" in (field_error(response, "email") or "")
    assert field_value(response, "email") == "carol at example"


def test_a_reset_sets_the_password_and_ends_every_session(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    forgot(client, alice.email)
    link = reset_link(runtime, alice.subject_id)
    form = client.get(link)
    assert form.status_code == 200
    assert '<label for="f-confirm">' in form.text
    new = "a-brand-new-lantern-9"

    response = client.post(link, data={"password": new, "confirm": new}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?done=reset"
    assert not signed_in(runtime, alice.token)
    assert "Log in with it" in client.get("/login?done=reset").text

    old = client.post("/login", data={"email": alice.email, "password": alice.password})
    assert old.status_code == 401
    login = client.post(
        "/login", data={"email": alice.email, "password": new}, follow_redirects=False
    )
    assert login.status_code == 303


def test_a_reset_link_works_once(client: TestClient, runtime: Runtime, alice: Person) -> None:
    forgot(client, alice.email)
    link = reset_link(runtime, alice.subject_id)
    new = "a-brand-new-lantern-9"
    assert client.post(link, data={"password": new, "confirm": new}).status_code == 200
    for again in (client.get(link), client.post(link, data={"password": new, "confirm": new})):
        assert again.status_code == 400
        is_page(again)
        assert "This link does not work" in again.text
        assert new not in again.text


def test_a_reset_link_expires_after_an_hour(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    carol = register(at, "carol")
    forgot(client_at, carol.email)
    link = reset_link(at, carol.subject_id)
    clock.advance(timedelta(minutes=59))
    assert client_at.get(link).status_code == 200
    clock.advance(timedelta(minutes=1))
    expired = client_at.post(link, data={"password": PASSWORD, "confirm": PASSWORD})
    assert expired.status_code == 400
    assert "has expired" in expired.text
    assert signed_in(at, carol.token)


def test_a_reset_link_does_nothing_for_an_unknown_token(client: TestClient) -> None:
    response = client.get("/password/reset/no-such-token")
    assert response.status_code == 400
    is_page(response)
    assert '<a href="/password/forgot">' in response.text


@pytest.mark.parametrize(
    ("password", "confirm", "field", "message"),
    [
        ("short", "short", "password", "at least 10 characters"),
        ("", "", "password", "choose a new password"),
        ("a-brand-new-lantern-9", "a-brand-new-lantern-8", "confirm", "not the same"),
    ],
)
def test_a_reset_shows_bad_input_next_to_its_field_and_keeps_the_link(
    client: TestClient,
    runtime: Runtime,
    alice: Person,
    password: str,
    confirm: str,
    field: str,
    message: str,
) -> None:
    forgot(client, alice.email)
    link = reset_link(runtime, alice.subject_id)
    response = client.post(link, data={"password": password, "confirm": confirm})
    assert response.status_code == 422
    is_page(response)
    assert message in (field_error(response, field) or "")
    for secret in (password, confirm):
        if secret:
            assert secret not in response.text
    assert field_value(response, "password") is None
    assert signed_in(runtime, alice.token)
    assert client.get(link).status_code == 200  # still usable


def test_a_reset_from_another_site_is_refused(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    forgot(client, alice.email)
    link = reset_link(runtime, alice.subject_id)
    new = "a-brand-new-lantern-9"
    response = client.post(link, data={"password": new, "confirm": new}, headers=OTHER_SITE)
    assert response.status_code == 403
    assert signed_in(runtime, alice.token)
    assert client.get(link).status_code == 200


def test_a_closed_account_gets_no_reset_link(client: TestClient, runtime: Runtime) -> None:
    carol = register(runtime, "carol")
    forgot(client, carol.email)
    link = reset_link(runtime, carol.subject_id)
    with runtime.transaction() as session:
        account = session.scalar(select(Account).where(Account.subject_id == carol.subject_id))
        assert account is not None
        account.closed_at = runtime.clock.now()
    assert client.get(link).status_code == 400
    forgot(client, carol.email)
    assert len(mails(runtime, carol.subject_id, "password_reset")) == 1


def test_p0_4_an_erasure_takes_the_reset_links_with_it(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    forgot(client, alice.email)

    def links() -> int:
        with runtime.transaction() as session:
            rows = session.scalars(
                select(PasswordReset).where(PasswordReset.subject_id == alice.subject_id)
            )
            return len(rows.all())

    assert links() == 1
    with runtime.transaction() as session:
        runtime.rights(session).file(
            alice.subject_id, "erasure", Channel.STAFF, actor="t", verified=True
        )
    for _ in range(4):
        runtime.rights_engine().run_once()
        runtime.mailer().deliver_pending()
    assert links() == 0
