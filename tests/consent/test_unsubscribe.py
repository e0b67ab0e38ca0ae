"""One-click unsubscribe links (RFC 8058, P0.2): no login, no cookie, no table; the HMAC is
the authorisation, and a link altered in any part changes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import Person
from privault.consent.channels import ConsentChannel, Source
from privault.consent.errors import UnsubscribeLinkInvalid
from privault.consent.models import ChannelConsent
from privault.consent.unsubscribe import UnsubscribeLinks
from privault.db import new_id
from privault.runtime import Runtime

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
#: What a mail client sends: no cookie, and an Origin that is not ours (or none at all).
FROM_NOWHERE = {"Origin": "null"}


def agree(runtime: Runtime, person: Person, *channels: ConsentChannel) -> None:
    with runtime.transaction() as session:
        consents = runtime.channel_consents(session)
        for channel in channels:
            consents.give(person.subject_id, channel, Source.API)


def state(runtime: Runtime, person: Person) -> dict[str, bool]:
    with runtime.factory() as session:
        return runtime.channel_consents(session).state(person.subject_id)


def proof_count(runtime: Runtime, person: Person) -> int:
    with runtime.factory() as session:
        return len(
            session.scalars(
                select(ChannelConsent.id).where(ChannelConsent.subject_id == person.subject_id)
            ).all()
        )


def path_of(runtime: Runtime, person: Person, channel: ConsentChannel) -> str:
    url = runtime.unsubscribe_links().url(person.subject_id, channel)
    assert url.startswith(runtime.settings.base_url + "/unsubscribe/")
    return url.removeprefix(runtime.settings.base_url)


def test_p0_2_a_one_click_post_withdraws_the_consent_without_login_or_cookies(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    agree(runtime, alice, ConsentChannel.MARKETING_EMAIL, ConsentChannel.THIRD_PARTY)
    path = path_of(runtime, alice, ConsentChannel.MARKETING_EMAIL)
    assert not client.cookies
    done = client.post(path, data=ONE_CLICK, headers=FROM_NOWHERE)
    assert done.status_code == 200, done.text
    assert "You are unsubscribed" in done.text
    assert state(runtime, alice)["marketing_email"] is False
    assert state(runtime, alice)["third_party"] is True  # only the channel the link names
    with runtime.factory() as session:
        last = session.scalars(
            select(ChannelConsent)
            .where(ChannelConsent.subject_id == alice.subject_id)
            .order_by(ChannelConsent.at.desc())
        ).first()
        assert last is not None and (last.given, last.source) == (False, "unsubscribe")


def test_p0_2_unsubscribing_again_answers_the_same_and_writes_nothing(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    agree(runtime, alice, ConsentChannel.MARKETING_EMAIL)
    path = path_of(runtime, alice, ConsentChannel.MARKETING_EMAIL)
    first = client.post(path, data=ONE_CLICK)
    rows = proof_count(runtime, alice)
    again = client.post(path, data=ONE_CLICK)
    assert first.status_code == again.status_code == 200
    assert proof_count(runtime, alice) == rows == 2


def test_p3_8_a_letter_s_link_objects_to_post_marketing_in_one_step(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    assert state(runtime, alice)["marketing_post"] is True
    path = path_of(runtime, alice, ConsentChannel.MARKETING_POST)
    assert client.post(path).status_code == 200  # the page's button, or a bare POST
    assert state(runtime, alice)["marketing_post"] is False


def test_opening_the_link_only_shows_the_button(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    agree(runtime, alice, ConsentChannel.NEWSLETTER)
    path = path_of(runtime, alice, ConsentChannel.NEWSLETTER)
    page = client.get(path)
    assert page.status_code == 200
    assert f'action="{path}"' in page.text and 'value="One-Click"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert state(runtime, alice)["newsletter"] is True


def tampered(token: str, other: Person) -> list[str]:
    subject_id, channel, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return [
        f"{other.subject_id}.{channel}.{signature}",  # someone else's id
        f"{subject_id}.third_party.{signature}",  # another channel
        f"{subject_id}.{channel}.{flipped}",  # a forged signature
        f"{subject_id}.{channel}.{signature[:-2]}",  # cut short
        f"{subject_id}.{channel}",
        f"{subject_id}.{channel}.{signature}.x",
        f"{subject_id}.sms.{signature}",
        "",
        "x" * 300,
    ]


def test_p0_2_a_tampered_link_is_refused_and_changes_nothing(
    client: TestClient, runtime: Runtime, alice: Person, bob: Person
) -> None:
    agree(runtime, alice, ConsentChannel.MARKETING_EMAIL, ConsentChannel.THIRD_PARTY)
    agree(runtime, bob, ConsentChannel.MARKETING_EMAIL)
    token = runtime.unsubscribe_links().token(alice.subject_id, ConsentChannel.MARKETING_EMAIL)
    before = (state(runtime, alice), state(runtime, bob))
    for bad in tampered(token, bob):
        if not bad:
            continue
        for answer in (client.get(f"/unsubscribe/{bad}"), client.post(f"/unsubscribe/{bad}")):
            assert answer.status_code == 404, bad
            assert "This link does not work" in answer.text
    assert (state(runtime, alice), state(runtime, bob)) == before


def test_a_token_is_checked_before_it_is_believed(runtime: Runtime, alice: Person) -> None:
    links = runtime.unsubscribe_links()
    token = links.token(alice.subject_id, ConsentChannel.NEWSLETTER)
    assert links.read(token) == (alice.subject_id, ConsentChannel.NEWSLETTER)
    other_key = UnsubscribeLinks(b"k" * 32, runtime.settings.base_url)
    with pytest.raises(UnsubscribeLinkInvalid):
        other_key.read(token)
    for bad in tampered(token, alice):
        if bad == token:
            continue
        with pytest.raises(UnsubscribeLinkInvalid):
            links.read(bad)


def test_a_link_of_someone_erased_answers_done_and_writes_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    gone = new_id()
    url = runtime.unsubscribe_links().url(gone, ConsentChannel.MARKETING_EMAIL)
    answer = client.post(url.removeprefix(runtime.settings.base_url), data=ONE_CLICK)
    assert answer.status_code == 200
    with runtime.factory() as session:
        rows = session.scalars(select(ChannelConsent).where(ChannelConsent.subject_id == gone))
        assert rows.all() == []
