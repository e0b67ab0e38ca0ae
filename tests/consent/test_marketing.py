"""Marketing sends (P0.2, P3.8): only with a live consent, never above the monthly cap,
every mail with a working one-click unsubscribe; letters for the print shop; resumable."""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import Person, mails, register, run_cli
from privault.clock import FrozenClock
from privault.config import Settings
from privault.consent.channels import ConsentChannel, Source
from privault.consent.errors import MarketingRefused, MarketingSendInvalid
from privault.consent.marketing import Campaign, MarketingService, SendCounts, month_start
from privault.consent.models import MarketingSend
from privault.notify.outbox import Mailer
from privault.notify.transport import MaildirTransport
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.purchases import NewPurchase, PurchaseKind

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def agree(runtime: Runtime, person: Person, *channels: ConsentChannel) -> None:
    with runtime.transaction() as session:
        for channel in channels:
            runtime.channel_consents(session).give(person.subject_id, channel, Source.API)


def object_to(runtime: Runtime, person: Person, channel: ConsentChannel) -> None:
    with runtime.transaction() as session:
        runtime.channel_consents(session).withdraw(person.subject_id, channel, Source.API)


def words(title: str) -> dict[str, str]:
    return {"title": title, "body": f"All about {title}."}


def send(
    runtime: Runtime,
    template: str = "marketing",
    title: str = "Spring",
    *,
    segment: str = "all",
    only: int | None = None,
) -> SendCounts:
    """Send a campaign as `privault marketing send` does: the audience, then its batches
    (``only``: just the first so many people, as a send cut short)."""
    with runtime.transaction() as session:
        service = runtime.marketing(session)
        campaign = service.campaign(template, "email", segment, context=words(title))
        audience = service.audience(campaign)
    counts = audience.counts
    for subject_id in audience.subject_ids[:only]:
        with runtime.transaction() as session:
            counts.add(runtime.marketing(session).send(campaign, [subject_id]))
    return counts


def sends_of(runtime: Runtime, person: Person) -> list[tuple[str, str]]:
    with runtime.factory() as session:
        rows = session.execute(
            select(MarketingSend.channel, MarketingSend.template)
            .where(MarketingSend.subject_id == person.subject_id)
            .order_by(MarketingSend.sent_at)
        )
        return [(channel, template) for channel, template in rows]


def buy(
    runtime: Runtime, person: Person, address: str | None = "1 Rue de Rivoli\n75001 Paris"
) -> None:
    with runtime.transaction() as session:
        runtime.purchases(session).record(
            person.subject_id,
            NewPurchase(
                kind=PurchaseKind.PURCHASE,
                item="Premium room",
                amount_minor=4999,
                currency="EUR",
                billing_name=f"{person.email.split('.')[0].title()} Example",
                payment_token="tok_test",
                billing_address=address,
            ),
        )


# --- who gets it -------------------------------------------------------------------------


def test_p0_2_marketing_goes_only_to_people_with_a_live_consent(at: Runtime) -> None:
    alice, bob, carol = (register(at, n) for n in ("alice", "bob", "carol"))
    agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    agree(at, carol, ConsentChannel.MARKETING_EMAIL)
    object_to(at, carol, ConsentChannel.MARKETING_EMAIL)
    agree(at, bob, ConsentChannel.NEWSLETTER)  # a newsletter is not marketing consent

    counts = send(at)
    assert (counts.queued, counts.no_consent, counts.capped) == (1, 2, 0)
    [mail] = mails(at, alice.subject_id, "marketing")
    assert mail["to"] == alice.email
    assert mail["context"]["title"] == "Spring"
    assert mail["context"]["unsubscribe_url"] == at.unsubscribe_links().url(
        alice.subject_id, ConsentChannel.MARKETING_EMAIL
    )
    assert mails(at, bob.subject_id, "marketing") == mails(at, carol.subject_id, "marketing") == []
    assert [c for c, _ in sends_of(at, alice)] == ["email"]
    assert sends_of(at, bob) == sends_of(at, carol) == []


def test_p0_2_consent_withdrawn_after_the_audience_was_drawn_is_honoured(at: Runtime) -> None:
    alice = register(at, "alice")
    agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    with at.transaction() as session:
        service = at.marketing(session)
        campaign = service.campaign("marketing", "email", context=words("Late"))
        audience = service.audience(campaign)
    assert audience.subject_ids == [alice.subject_id]
    object_to(at, alice, ConsentChannel.MARKETING_EMAIL)
    with at.transaction() as session:
        counts = at.marketing(session).send(campaign, audience.subject_ids)
    assert (counts.queued, counts.no_consent) == (0, 1)
    assert mails(at, alice.subject_id, "marketing") == []


def test_p0_2_a_closed_account_gets_no_marketing(client_at: TestClient, at: Runtime) -> None:
    alice = register(at, "alice")
    agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    assert client_at.delete("/api/v1/me", headers=alice.auth).status_code == 202
    assert send(at).queued == 0


# --- the monthly cap ------------------------------------------------------------------------


def test_p0_2_never_above_the_monthly_cap_and_the_cap_resets_next_month(
    at: Runtime, clock: FrozenClock
) -> None:
    cap = at.policy.marketing.max_per_month
    assert cap == 2
    alice = register(at, "alice")
    agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    queued = [send(at, title=f"Offer {n}").queued for n in range(cap + 1)]
    assert queued == [1] * cap + [0]
    assert send(at, title="One more").capped == 1
    assert len(mails(at, alice.subject_id, "marketing")) == cap

    clock.at = datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert send(at, title="Still January").capped == 1
    clock.at = datetime(2027, 2, 1, 0, 0, tzinfo=UTC)  # a new calendar month
    assert send(at, title="February").queued == 1
    assert len(mails(at, alice.subject_id, "marketing")) == cap + 1


def test_p0_2_the_cap_counts_letters_and_mail_together(at: Runtime) -> None:
    alice = register(at, "alice")
    agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    buy(at, alice)
    with at.transaction() as session:
        service = at.marketing(session)
        letter = service.campaign("winter-letter", "post")
        lines, counts = service.letters(letter, service.audience(letter).subject_ids)
    assert counts.queued == 1 and len(lines) == 1
    assert [send(at, title=t).queued for t in ("A", "B")] == [1, 0]


def test_p0_2_newsletters_the_person_asked_for_are_neither_counted_nor_capped(
    at: Runtime,
) -> None:
    alice = register(at, "alice")
    agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    with at.transaction() as session:
        at.newsletter(session).subscribe(alice.email, None)
    [confirm] = mails(at, alice.subject_id, "newsletter_confirm")
    with at.transaction() as session:
        at.newsletter(session).confirm(str(confirm["context"]["link"]).rsplit("/", 1)[1])
    assert [send(at, title=t).queued for t in ("A", "B", "C")] == [1, 1, 0]
    for title in ("News 1", "News 2", "News 3"):
        assert send(at, "newsletter", title, segment="newsletter").queued == 1
    with at.factory() as session:
        assert at.marketing(session).sent_this_month([alice.subject_id]) == {alice.subject_id: 2}
    assert len(mails(at, alice.subject_id, "newsletter")) == 3
    assert [c for c, _ in sends_of(at, alice)].count("newsletter") == 3


def test_month_start_is_the_first_instant_of_the_calendar_month_in_utc() -> None:
    assert month_start(datetime(2027, 3, 31, 23, 0, tzinfo=UTC)) == datetime(2027, 3, 1, tzinfo=UTC)


# --- one-click unsubscribe, end to end ---------------------------------------------------------


def delivered(runtime: Runtime, folder: Path) -> list[EmailMessage]:
    maildir = MaildirTransport(folder)
    mailer = Mailer(
        runtime.factory, runtime.vault, maildir, runtime.settings.mail_from, runtime.clock
    )
    mailer.deliver_pending()
    found = []
    for path in sorted((folder / "new").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), _class=EmailMessage, policy=default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


@pytest.mark.parametrize(
    ("template", "segment", "channel"),
    [("marketing", "all", "marketing_email"), ("newsletter", "newsletter", "newsletter")],
)
def test_p0_2_every_mail_carries_a_one_click_unsubscribe_that_withdraws_the_consent(
    client_at: TestClient,
    at: Runtime,
    tmp_path: Path,
    template: str,
    segment: str,
    channel: str,
) -> None:
    alice = register(at, "alice")
    if segment == "newsletter":
        with at.transaction() as session:
            at.newsletter(session).subscribe(alice.email, "Alice")
        [confirm] = mails(at, alice.subject_id, "newsletter_confirm")
        link = str(confirm["context"]["link"]).removeprefix(at.settings.base_url)
        assert client_at.post(link).status_code == 200
    else:
        agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    assert send(at, template, "First", segment=segment).queued == 1

    sent = [m for m in delivered(at, tmp_path / "maildir") if m["To"] == alice.email]
    [mail] = [m for m in sent if "List-Unsubscribe" in m]
    url = at.unsubscribe_links().url(alice.subject_id, ConsentChannel(channel))
    assert mail["List-Unsubscribe"] == f"<{url}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = mail.get_body(("plain",))
    assert isinstance(plain, EmailMessage) and url in plain.get_content()

    # What the mail client does: a POST of the header's URL, no cookie, no login.
    client_at.cookies.clear()
    done = client_at.post(url.removeprefix(at.settings.base_url), data=ONE_CLICK)
    assert done.status_code == 200
    again = send(at, template, "Second", segment=segment)
    assert again.queued == 0
    assert again.no_consent == (0 if segment == "newsletter" else 1)  # the subscription is gone


def test_p0_2_a_tampered_unsubscribe_link_changes_nothing_and_the_next_send_still_goes(
    client_at: TestClient, at: Runtime
) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    agree(at, bob, ConsentChannel.MARKETING_EMAIL)
    url = at.unsubscribe_links().url(alice.subject_id, ConsentChannel.MARKETING_EMAIL)
    forged = url.replace(alice.subject_id, bob.subject_id).removeprefix(at.settings.base_url)
    assert client_at.post(forged, data=ONE_CLICK).status_code == 404
    assert send(at).queued == 2


# --- resuming, letters, and what the policy and templates allow -------------------------------


def test_a_send_cut_short_is_finished_by_running_it_again(at: Runtime) -> None:
    people = [register(at, n) for n in ("alice", "bob", "carol")]
    for person in people:
        agree(at, person, ConsentChannel.MARKETING_EMAIL)
    assert send(at, title="Resume", only=1).queued == 1
    rest = send(at, title="Resume")
    assert (rest.queued, rest.already_sent) == (2, 1)
    assert [len(mails(at, p.subject_id, "marketing")) for p in people] == [1, 1, 1]
    assert send(at, title="Resume").already_sent == 3


def test_p3_8_letters_go_to_those_who_did_not_object_and_have_an_address(at: Runtime) -> None:
    alice, bob, carol, dan = (register(at, n) for n in ("alice", "bob", "carol", "dan"))
    buy(at, alice)
    buy(at, bob)
    object_to(at, bob, ConsentChannel.MARKETING_POST)
    buy(at, dan, address=None)
    with at.transaction() as session:
        service = at.marketing(session)
        letter = service.campaign("spring-letter", "post")
        audience = service.audience(letter)
        lines, counts = service.letters(letter, audience.subject_ids)
    assert audience.counts.no_consent == 1  # bob; carol and dan have no address to write to
    [line] = lines
    assert line.name == "Alice Example" and line.address == "1 Rue de Rivoli\n75001 Paris"
    assert line.unsubscribe_url == at.unsubscribe_links().url(
        alice.subject_id, ConsentChannel.MARKETING_POST
    )
    assert counts.queued == 1
    assert sends_of(at, alice) == [("post", letter.stored)]
    assert sends_of(at, carol) == sends_of(at, dan) == []


def test_p3_8_letters_are_refused_when_the_policy_keeps_addresses_from_marketing(
    at: Runtime,
) -> None:
    purposes = dict(at.policy.purposes)
    purposes["marketing"] = purposes["marketing"].model_copy(
        update={"categories": ("registration", "profile", "newsletter")}
    )
    policy = at.policy.model_copy(update={"purposes": purposes})
    with at.transaction() as session:
        service = MarketingService(
            session,
            at.vault,
            policy,
            at.clock,
            at.outbox,
            at.channel_consents(session),
            at.unsubscribe_links(),
            at.audit,
        )
        with pytest.raises(MarketingRefused, match="transactions"):
            service.campaign("spring-letter", "post")
        assert isinstance(service.campaign("marketing", "email", context=words("x")), Campaign)


@pytest.mark.parametrize(
    ("template", "channel", "segment", "key"),
    [
        ("verify_email", "email", "all", None),  # a notice is not marketing
        ("newsletter", "email", "all", None),  # the newsletter goes to subscribers only
        ("marketing", "email", "newsletter", None),
        ("no_such_template", "email", "all", None),
        ("marketing", "fax", "all", None),
        ("Spring Letter!", "post", "all", None),
        ("spring-letter", "post", "newsletter", None),
        ("marketing", "email", "all", "not a key"),
    ],
)
def test_a_send_that_does_not_fit_is_refused_before_anything_is_sent(
    at: Runtime, template: str, channel: str, segment: str, key: str | None
) -> None:
    with at.transaction() as session, pytest.raises(MarketingSendInvalid):
        at.marketing(session).campaign(template, channel, segment, key=key)


# --- the command line -------------------------------------------------------------------------


def test_the_command_sends_reports_and_resumes(fresh_settings: Settings, tmp_path: Path) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    try:
        alice, bob = register(runtime, "alice"), register(runtime, "bob")
        agree(runtime, alice, ConsentChannel.MARKETING_EMAIL)
        buy(runtime, alice)
        buy(runtime, bob)
        object_to(runtime, bob, ConsentChannel.MARKETING_POST)
    finally:
        runtime.close()
    body = tmp_path / "body.txt"
    body.write_text("Rooms for twenty people.", encoding="utf-8")
    args = ("marketing", "send", "marketing", "--title", "Bigger rooms", "--body-file", str(body))

    first = run_cli(fresh_settings, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert "1 mail(s) queued; skipped: 0 at the monthly cap, 1 without consent" in first.stdout
    again = run_cli(fresh_settings, tmp_path, *args)
    assert "0 mail(s) queued" in again.stdout and "1 already sent" in again.stdout

    letters = tmp_path / "letters.csv"
    post = ("marketing", "send", "spring-letter", "--channel", "post", "--out", str(letters))
    done = run_cli(fresh_settings, tmp_path, *post)
    assert done.returncode == 0, done.stderr
    assert "1 letter(s) written" in done.stdout and "1 without consent" in done.stdout
    assert os.stat(letters).st_mode & 0o777 == 0o600
    with letters.open(newline="", encoding="utf-8") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["name"] == "Alice Example" and row["address"] == "1 Rue de Rivoli\n75001 Paris"
    assert row["unsubscribe_url"].startswith(fresh_settings.base_url + "/unsubscribe/")
    # Run again, the file keeps its one line: nobody gets the letter twice.
    run_cli(fresh_settings, tmp_path, *post)
    with letters.open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 1


def test_the_command_refuses_with_one_line(fresh_settings: Settings, tmp_path: Path) -> None:
    prepare(fresh_settings).dispose()
    cases = {
        ("marketing", "send", "marketing"): "cannot be filled",
        ("marketing", "send", "verify_email", "--title", "t"): "takes a marketing template",
        ("marketing", "send", "spring-letter", "--channel", "post"): "give --out",
    }
    for args, reason in cases.items():
        done = run_cli(fresh_settings, tmp_path, *args)
        assert done.returncode == 1, done.stdout
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("privault: ") and reason in lines[0], lines


def test_a_late_month_send_counts_from_the_first_of_the_month(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    agree(at, alice, ConsentChannel.MARKETING_EMAIL)
    clock.at = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    send(at, title="New year")
    clock.advance(timedelta(days=30, hours=23))
    assert send(at, title="End of January").queued == 1
    assert send(at, title="Too many").capped == 1
