"""Channel consents (P3.8, P3.16) and the newsletter's double opt-in (P2.5)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import Person, api_error, mails, register, unique_email
from privault.access.audit import AuditLog
from privault.clock import FrozenClock, aware
from privault.consent.channels import ChannelConsents, ConsentChannel, Source
from privault.consent.models import ChannelConsent, OptInLink, Subscriber
from privault.policy.model import Recipient, RecipientKind
from privault.runtime import Runtime
from privault.service.models import Account
from privault.vault import Field

DEFAULTS = {
    "newsletter": False,
    "marketing_email": False,
    "marketing_post": True,
    "third_party": False,
}


def proofs(runtime: Runtime, subject_id: str) -> list[ChannelConsent]:
    with runtime.factory() as session:
        rows = session.scalars(
            select(ChannelConsent)
            .where(ChannelConsent.subject_id == subject_id)
            .order_by(ChannelConsent.at)
        ).all()
        session.expunge_all()
        return list(rows)


def actions(runtime: Runtime, subject_id: str) -> list[str]:
    with runtime.factory() as session:
        return [
            e.action
            for e in reversed(AuditLog.entries(session, subject_id))
            if e.action.split(":", 1)[1].startswith("consent:")
        ]


# --- P3.8: post until you object, email only where you agreed -------------------------------


def test_p3_8_post_marketing_is_on_until_the_person_objects_and_email_off_until_agreed(
    client: TestClient, alice: Person
) -> None:
    assert client.get("/api/v1/me/consents", headers=alice.auth).json() == {"channels": DEFAULTS}


def test_p3_8_each_channel_is_given_and_withdrawn_in_one_step_with_proof(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    agree = {"channels": {"marketing_email": True}}
    answer = client_at.put("/api/v1/me/consents", json=agree, headers=alice.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["channels"] == DEFAULTS | {"marketing_email": True}

    clock.advance(timedelta(days=3))
    stop = {"channels": {"marketing_email": False, "marketing_post": False}}
    answer = client_at.put("/api/v1/me/consents", json=stop, headers=alice.auth)
    assert answer.json()["channels"] == DEFAULTS | {"marketing_post": False}

    rows = proofs(at, alice.subject_id)
    assert [(r.channel, r.given, r.source) for r in rows] == [
        ("marketing_email", True, "api"),
        ("marketing_email", False, "api"),
        ("marketing_post", False, "api"),
    ]
    assert {r.policy_version for r in rows} == {at.policy_version}
    assert [aware(r.at) for r in rows][1:] == [clock.now()] * 2
    assert aware(rows[0].at) == clock.now() - timedelta(days=3)
    assert actions(at, alice.subject_id) == [
        "api:consent:given",
        "api:consent:withdrawn",
        "api:consent:withdrawn",
    ]


def test_p3_8_choosing_what_is_already_the_state_writes_no_proof(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    same = {"channels": DEFAULTS}
    assert client.put("/api/v1/me/consents", json=same, headers=alice.auth).status_code == 200
    assert proofs(runtime, alice.subject_id) == []


def test_p3_8_two_choices_in_the_same_instant_keep_their_order(at: Runtime) -> None:
    alice = register(at, "alice")
    with at.transaction() as session:
        consents = at.channel_consents(session)
        for given in (True, False, True):
            if given:
                consents.give(alice.subject_id, "marketing_email", Source.WEB)
            else:
                consents.withdraw(alice.subject_id, "marketing_email", Source.WEB)
    with at.factory() as session:
        assert at.channel_consents(session).state(alice.subject_id)["marketing_email"] is True
    assert len({r.at for r in proofs(at, alice.subject_id)}) == 3


def test_an_unknown_channel_is_refused_by_name_and_nothing_changes(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    body = {"channels": {"marketing_email": True, "sms": True}}
    answer = client.put("/api/v1/me/consents", json=body, headers=alice.auth)
    assert "'sms'" in api_error(answer, 422, "unknown_channel")
    assert proofs(runtime, alice.subject_id) == []


def test_consents_take_booleans_only(client: TestClient, runtime: Runtime, alice: Person) -> None:
    for value in ("yes", 1, None):
        body = {"channels": {"marketing_email": value}}
        answer = client.put("/api/v1/me/consents", json=body, headers=alice.auth)
        assert "channels.marketing_email" in api_error(answer, 422, "invalid_request")
    answer = client.put("/api/v1/me/consents", json={"channels": {}, "x": 1}, headers=alice.auth)
    api_error(answer, 422, "invalid_request")
    assert proofs(runtime, alice.subject_id) == []


def test_it_rejects_anonymous_callers_and_mallory_changes_only_her_own(
    client: TestClient, runtime: Runtime, alice: Person, mallory: Person
) -> None:
    api_error(client.get("/api/v1/me/consents"), 401)
    body = {"channels": {"third_party": True}}
    api_error(client.put("/api/v1/me/consents", json=body), 401)
    assert client.put("/api/v1/me/consents", json=body, headers=mallory.auth).status_code == 200
    assert client.get("/api/v1/me/consents", headers=alice.auth).json() == {"channels": DEFAULTS}
    assert proofs(runtime, alice.subject_id) == []


# --- P3.16: no third-party marketing without express consent --------------------------------


def test_p3_16_no_marketing_recipient_receives_data_without_the_third_party_consent(
    runtime: Runtime, alice: Person
) -> None:
    partner = Recipient(
        id="partner",
        name="A carefully selected partner",
        kind=RecipientKind.MARKETING,
        country="FR",
        purposes=("marketing",),
        description="Sends its own offers.",
        consent="third_party",
    )
    policy = runtime.policy.model_copy(update={"recipients": (*runtime.policy.recipients, partner)})
    with runtime.transaction() as session:
        consents = ChannelConsents(
            session, policy, runtime.policy_version, runtime.clock, runtime.audit
        )
        assert consents.may_share_with(alice.subject_id, "partner") is False
        assert consents.may_share_with(alice.subject_id, "hosting") is True
        assert consents.may_share_with(alice.subject_id, "nobody-we-know") is False
        # Agreeing to our own marketing is not agreeing to theirs: the consent is separate.
        consents.give(alice.subject_id, ConsentChannel.MARKETING_EMAIL, Source.WEB)
        assert consents.may_share_with(alice.subject_id, "partner") is False
        consents.give(alice.subject_id, ConsentChannel.THIRD_PARTY, Source.WEB)
        assert consents.may_share_with(alice.subject_id, "partner") is True
        consents.withdraw(alice.subject_id, ConsentChannel.THIRD_PARTY, Source.WEB)
        assert consents.may_share_with(alice.subject_id, "partner") is False


# --- P2.5: newsletters by double opt-in, with or without an account -------------------------


def subscriber_of(runtime: Runtime, email: str) -> Subscriber | None:
    with runtime.factory() as session:
        index = runtime.newsletter(session).index_of(email)
        found = session.scalar(select(Subscriber).where(Subscriber.email_index == index))
        session.expunge_all()
        return found


def link_path(runtime: Runtime, subject_id: str) -> str:
    link = str(mails(runtime, subject_id, "newsletter_confirm")[-1]["context"]["link"])
    assert link.startswith(runtime.settings.base_url + "/newsletter/confirm/")
    return link.removeprefix(runtime.settings.base_url)


def test_p2_5_someone_without_an_account_subscribes_by_double_opt_in(
    client: TestClient, runtime: Runtime
) -> None:
    email = unique_email("dora")
    answer = client.post("/api/v1/newsletter", json={"email": email, "name": "Dora"})
    assert answer.status_code == 202, answer.text
    subscriber = subscriber_of(runtime, email)
    assert subscriber is not None and subscriber.confirmed_at is None
    subject_id = subscriber.subject_id
    with runtime.factory() as session:
        assert session.get(Account, subject_id) is None
        assert (
            runtime.vault.decrypt(
                session,
                subject_id,
                Field("subscribers", "email_ct", subscriber.id),
                subscriber.email_ct,
                purpose="newsletters",
            )
            == email
        )
        consents = runtime.channel_consents(session)
        assert consents.state(subject_id)["newsletter"] is False
    [confirm] = mails(runtime, subject_id, "newsletter_confirm")
    assert confirm["to"] == email
    assert "Dora" not in str(confirm["context"])  # the requester's words never reach the address

    path = link_path(runtime, subject_id)
    page = client.get(path)  # what a mail scanner does
    assert page.status_code == 200 and 'method="post"' in page.text
    with runtime.factory() as session:
        assert runtime.channel_consents(session).state(subject_id)["newsletter"] is False

    confirmed = client.post(path)
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    with runtime.factory() as session:
        assert runtime.channel_consents(session).state(subject_id)["newsletter"] is True
    [proof] = proofs(runtime, subject_id)
    assert (proof.channel, proof.given, proof.source) == ("newsletter", True, "double_opt_in")
    subscriber = subscriber_of(runtime, email)
    assert subscriber is not None and subscriber.confirmed_at is not None


def test_p2_5_a_replayed_an_expired_or_an_unknown_link_is_refused(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    first, second = unique_email("erin"), unique_email("fred")
    for email in (first, second):
        assert client_at.post("/api/v1/newsletter", json={"email": email}).status_code == 202
    used = subscriber_of(at, first)
    late = subscriber_of(at, second)
    assert used is not None and late is not None
    path = link_path(at, used.subject_id)
    assert client_at.post(path).status_code == 200
    replayed = client_at.post(path)
    assert replayed.status_code == 410 and "already used" in replayed.text

    clock.advance(timedelta(days=7, seconds=1))
    expired = client_at.post(link_path(at, late.subject_id))
    assert expired.status_code == 410 and "expired" in expired.text
    unknown = client_at.post("/newsletter/confirm/not-a-link-of-ours")
    assert unknown.status_code == 404
    assert [p.given for p in proofs(at, late.subject_id)] == []


def test_p2_5_the_answer_is_the_same_whether_the_address_is_known_or_not(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    known = client.post("/api/v1/newsletter", json={"email": alice.email})
    unknown = client.post("/api/v1/newsletter", json={"email": unique_email("gil")})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert known.status_code == 202
    subscriber = subscriber_of(runtime, alice.email)
    assert subscriber is not None and subscriber.subject_id == alice.subject_id
    assert client.post(link_path(runtime, alice.subject_id)).status_code == 200
    assert client.get("/api/v1/me/consents", headers=alice.auth).json()["channels"] == (
        DEFAULTS | {"newsletter": True}
    )


def test_p2_5_subscribing_twice_sends_a_new_link_but_makes_no_second_subscriber(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    email = unique_email("hana")
    assert client_at.post("/api/v1/newsletter", json={"email": email}).status_code == 202
    assert client_at.post("/api/v1/newsletter", json={"email": email}).status_code == 202
    subscriber = subscriber_of(at, email)
    assert subscriber is not None
    assert len(mails(at, subscriber.subject_id, "newsletter_confirm")) == 1  # not a mail bomb
    clock.advance(timedelta(minutes=11))
    upper = email.upper()
    assert client_at.post("/api/v1/newsletter", json={"email": upper}).status_code == 202
    with at.factory() as session:
        count = select(func.count()).select_from(Subscriber)
        assert session.scalar(count.where(Subscriber.subject_id == subscriber.subject_id)) == 1
        links = select(func.count()).select_from(OptInLink)
        assert session.scalar(links.where(OptInLink.subscriber_id == subscriber.id)) == 2
    assert len(mails(at, subscriber.subject_id, "newsletter_confirm")) == 2


def test_p2_5_a_bad_address_or_name_is_refused(client: TestClient) -> None:
    api_error(client.post("/api/v1/newsletter", json={"email": "not-an-address"}), 422)
    body = {"email": unique_email("ivy"), "name": "n" * 101}
    api_error(client.post("/api/v1/newsletter", json=body), 422)


def test_p2_5_the_confirmation_form_cannot_be_posted_from_another_site(
    client: TestClient, runtime: Runtime
) -> None:
    email = unique_email("jo")
    client.post("/api/v1/newsletter", json={"email": email})
    subscriber = subscriber_of(runtime, email)
    assert subscriber is not None
    path = link_path(runtime, subscriber.subject_id)
    refused = client.post(path, headers={"Origin": "https://elsewhere.example"})
    assert refused.status_code == 403
    assert proofs(runtime, subscriber.subject_id) == []


def test_p2_5_from_the_privacy_centre_the_newsletter_needs_a_verified_address(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    wanted = {"channels": {"newsletter": True, "third_party": True}}
    refused = client.put("/api/v1/me/consents", json=wanted, headers=alice.auth)
    api_error(refused, 409, "email_unverified")
    assert proofs(runtime, alice.subject_id) == []

    [verify] = mails(runtime, alice.subject_id, "verify_email")
    token = str(verify["context"]["link"]).split("token=")[1]
    assert client.get("/verify-email", params={"token": token}).status_code == 200
    answer = client.put("/api/v1/me/consents", json=wanted, headers=alice.auth)
    assert answer.json()["channels"] == DEFAULTS | {"newsletter": True, "third_party": True}
    assert {(p.channel, p.source) for p in proofs(runtime, alice.subject_id)} == {
        ("newsletter", "verified_account"),
        ("third_party", "api"),
    }
    subscriber = subscriber_of(runtime, alice.email)
    assert subscriber is not None and subscriber.subject_id == alice.subject_id
    assert subscriber.confirmed_at is not None


def test_p2_5_withdrawing_the_newsletter_ends_the_subscription_at_once(
    client: TestClient, runtime: Runtime
) -> None:
    email = unique_email("kim")
    client.post("/api/v1/newsletter", json={"email": email, "name": "Kim"})
    subscriber = subscriber_of(runtime, email)
    assert subscriber is not None
    assert client.post(link_path(runtime, subscriber.subject_id)).status_code == 200
    with runtime.transaction() as session:
        withdrawn = runtime.channel_consents(session).withdraw(
            subscriber.subject_id, "newsletter", Source.WEB
        )
    assert withdrawn is True
    assert subscriber_of(runtime, email) is None  # the address and the name are gone
    assert [p.given for p in proofs(runtime, subscriber.subject_id)] == [True, False]


def test_a_subscription_made_before_registering_moves_to_the_account(
    client: TestClient, runtime: Runtime
) -> None:
    email = unique_email("lou")
    client.post("/api/v1/newsletter", json={"email": email, "name": "Lou"})
    before = subscriber_of(runtime, email)
    assert before is not None
    made = client.post("/api/v1/accounts", json={"email": email, "password": "lou-long-password-1"})
    assert made.status_code == 201, made.text
    account_id = made.json()["subject_id"]
    client.post("/api/v1/newsletter", json={"email": email})
    after = subscriber_of(runtime, email)
    assert after is not None and after.id == before.id and after.subject_id == account_id
    assert after.name_ct is not None
    with runtime.factory() as session:
        name = runtime.vault.decrypt(
            session,
            account_id,
            Field("subscribers", "name_ct", after.id),
            after.name_ct,
            purpose="newsletters",
        )
    assert name == "Lou"
