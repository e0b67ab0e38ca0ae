"""The outbox: claims that never send a mail twice, retries with backoff, crash safety,
one-click unsubscribe (P0.2), and two sweeps racing on the same rows."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select, update

from factories import Person, register
from privault.clock import FrozenClock, aware
from privault.config import Settings
from privault.notify.models import OutboxMessage
from privault.notify.outbox import LEASE, MAX_ATTEMPTS, TEMPLATES, Kind, Mailer
from privault.notify.transport import MaildirTransport
from privault.runtime import Runtime, open_runtime, prepare

TEMPLATE_DIR = Path(__file__).parents[2] / "src" / "privault" / "notify" / "templates"
NEWS = {
    "title": "Dial-in from Lisbon",
    "body": "Rooms now have a Portuguese number.",
    "unsubscribe_url": "https://kallu.example/unsubscribe?token=t0k3n",
}


class PowerCut(BaseException):
    """The process dies: nothing after it runs."""


class Recorder:
    """A transport that keeps every mail handed to it. It is not idempotent: a key sent
    twice is two mails, so a count per key shows any second send. ``fail_every``: every
    n-th call fails as a relay that went away would (each key at most ``once``);
    ``crash_after``: the n-th call delivers, then the process dies."""

    def __init__(self, fail_every: int = 0, crash_after: int = 0, once: bool = True) -> None:
        self.fail_every = fail_every
        self.once = once
        self.crash_after = crash_after
        self.calls = 0
        self.mails: list[tuple[str, EmailMessage]] = []
        self.failed: set[str] = set()
        self.lock = threading.Lock()

    def send(self, key: str, message: EmailMessage) -> None:
        with self.lock:
            self.calls += 1
            call = self.calls
            again = not self.once or key not in self.failed
            if self.fail_every and call % self.fail_every == 0 and again:
                self.failed.add(key)
                raise ConnectionResetError("the relay went away")
            self.mails.append((key, message))
        if call == self.crash_after:
            raise PowerCut

    def forget(self, keys: list[str]) -> None:
        pass

    def per_key(self) -> Counter[str]:
        return Counter(key for key, _ in self.mails)


def mailer_of(runtime: Runtime, transport: Recorder | MaildirTransport) -> Mailer:
    return Mailer(
        runtime.factory, runtime.vault, transport, runtime.settings.mail_from, runtime.clock
    )


def someone(runtime: Runtime, name: str) -> Person:
    """A registered person whose verification mail is already sent (out of the count)."""
    person = register(runtime, name)
    mailer_of(runtime, Recorder()).deliver_pending()
    return person


def queue(runtime: Runtime, person: Person, count: int) -> list[str]:
    """``count`` newsletters to ``person``, committed; their ids."""
    with runtime.transaction() as session:
        return [
            runtime.outbox.enqueue(session, person.subject_id, person.email, "newsletter", NEWS)
            for _ in range(count)
        ]


def rows(runtime: Runtime, ids: list[str]) -> list[OutboxMessage]:
    with runtime.factory() as session:
        found = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))).all()
        return sorted(found, key=lambda row: ids.index(row.id))


def force(runtime: Runtime, row_id: str, **values: object) -> None:
    with runtime.transaction() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))


# --- claims and retries -------------------------------------------------------------------


def test_every_mail_is_delivered_exactly_once_through_a_failing_relay(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = someone(at, "alice")
    ids = queue(at, alice, 10)
    relay = Recorder(fail_every=3)
    mailer = mailer_of(at, relay)
    for _ in range(10):
        mailer.deliver_pending()
        if all(row.state == "sent" for row in rows(at, ids)):
            break
        clock.advance(timedelta(minutes=2**MAX_ATTEMPTS))
    delivered = relay.per_key()
    assert relay.failed, "the relay never failed: the test proves nothing"
    assert {key: delivered[key] for key in ids} == dict.fromkeys(ids, 1)
    for row in rows(at, ids):
        assert row.state == "sent" and row.payload_ct is None and row.sent_at is not None
        assert row.claimed_until is None
        assert row.attempts == (2 if row.id in relay.failed else 1)
        assert row.last_error == ("ConnectionResetError" if row.id in relay.failed else None)


def test_a_failed_send_waits_with_a_growing_backoff_and_names_only_the_error_class(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = someone(at, "alice")
    [row_id] = queue(at, alice, 1)
    start = clock.now()
    relay = Recorder(fail_every=1)
    assert mailer_of(at, relay).deliver_pending() == 0
    [row] = rows(at, [row_id])
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "ConnectionResetError")
    assert aware(row.next_attempt_at) == start + timedelta(minutes=2)
    assert row.payload_ct is not None and row.claimed_until is None

    clock.advance(timedelta(minutes=1))
    assert mailer_of(at, Recorder()).deliver_pending() == 0  # not due yet
    clock.advance(timedelta(minutes=1))
    assert mailer_of(at, Recorder()).deliver_pending() == 1


def test_a_mail_fails_after_max_attempts(at: Runtime, clock: FrozenClock) -> None:
    alice = someone(at, "alice")
    [row_id] = queue(at, alice, 1)
    relay = Recorder(fail_every=1, once=False)
    for _ in range(MAX_ATTEMPTS + 2):
        mailer_of(at, relay).deliver_pending()
        clock.advance(timedelta(minutes=2**MAX_ATTEMPTS))
    [row] = rows(at, [row_id])
    assert (row.state, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert relay.calls == MAX_ATTEMPTS and relay.mails == []


def test_a_mail_to_an_erased_person_fails_at_once(at: Runtime) -> None:
    alice = someone(at, "alice")
    [row_id] = queue(at, alice, 1)
    with at.transaction() as session:
        at.vault.shred(session, alice.subject_id)
    relay = Recorder()
    assert mailer_of(at, relay).deliver_pending() == 0
    [row] = rows(at, [row_id])
    assert (row.state, row.attempts, row.last_error) == ("failed", 1, "SubjectKeyMissing")
    assert relay.calls == 0


def test_a_mail_that_cannot_be_rendered_fails_at_once(at: Runtime) -> None:
    alice = someone(at, "alice")
    with at.transaction() as session:
        row_id = at.outbox.enqueue(session, alice.subject_id, alice.email, "verify_email", {})
    relay = Recorder()
    assert mailer_of(at, relay).deliver_pending() == 0
    [row] = rows(at, [row_id])
    assert (row.state, row.attempts, row.last_error) == ("failed", 1, "UndefinedError")
    assert relay.calls == 0


def test_a_crash_after_the_relay_took_the_mail_resends_it_once_with_the_same_message_id(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = someone(at, "alice")
    [row_id] = queue(at, alice, 1)
    relay = Recorder(crash_after=1)
    with pytest.raises(PowerCut):
        mailer_of(at, relay).deliver_pending()
    [row] = rows(at, [row_id])
    assert row.state == "sending" and row.claimed_until is not None and row.payload_ct is not None

    assert mailer_of(at, relay).deliver_pending() == 0  # the claim still holds
    clock.advance(LEASE + timedelta(seconds=1))
    assert mailer_of(at, relay).deliver_pending() == 1
    assert mailer_of(at, relay).deliver_pending() == 0
    [first, second] = [message for _, message in relay.mails]
    assert first["Message-ID"] == second["Message-ID"] == f"<{row_id}@kallu.cc>"
    [row] = rows(at, [row_id])
    assert (row.state, row.attempts, row.payload_ct) == ("sent", 2, None)


def test_a_mail_a_killed_worker_left_sending_goes_once_the_configured_lease_has_passed(
    base_settings: Settings, at: Runtime, clock: FrozenClock
) -> None:
    short = open_runtime(
        base_settings.model_copy(update={"outbox_lease": 30.0}), factory=at.factory, clock=clock
    )
    alice = someone(short, "alice")
    [row_id] = queue(short, alice, 1)
    mailer = short.mailer()
    mailer.transport = relay = Recorder(crash_after=1)
    with pytest.raises(PowerCut):
        mailer.deliver_pending()
    [row] = rows(at, [row_id])
    assert row.state == "sending" and row.claimed_until is not None
    assert aware(row.claimed_until) == clock.now() + timedelta(seconds=30)

    assert mailer.deliver_pending() == 0
    clock.advance(timedelta(seconds=31))
    assert mailer.deliver_pending() == 1
    assert relay.per_key() == {row_id: 2}
    [row] = rows(at, [row_id])
    assert (row.state, row.attempts) == ("sent", 2)


def test_a_crash_before_the_maildir_is_told_is_delivered_once_there(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    alice = someone(at, "alice")
    [row_id] = queue(at, alice, 1)
    maildir = MaildirTransport(tmp_path / "maildir")

    class CrashAfterDelivery(MaildirTransport):
        def send(self, key: str, message: EmailMessage) -> None:
            super().send(key, message)
            raise PowerCut

    with pytest.raises(PowerCut):
        mailer_of(at, CrashAfterDelivery(maildir.root)).deliver_pending()
    clock.advance(LEASE + timedelta(seconds=1))
    assert mailer_of(at, maildir).deliver_pending() == 1
    assert [path.name for path in maildir.messages()] == [f"{row_id}.eml"]


def test_a_stale_claim_is_taken_over_and_a_live_one_is_not(at: Runtime, clock: FrozenClock) -> None:
    alice = someone(at, "alice")
    stale, live = queue(at, alice, 2)
    now = clock.now()
    force(at, stale, state="sending", attempts=1, claimed_until=now - timedelta(seconds=1))
    force(at, live, state="sending", attempts=1, claimed_until=now + timedelta(minutes=5))
    relay = Recorder()
    assert mailer_of(at, relay).deliver_pending() == 1
    assert list(relay.per_key()) == [stale]
    by_id = {row.id: row for row in rows(at, [stale, live])}
    assert (by_id[stale].state, by_id[stale].attempts) == ("sent", 2)
    assert (by_id[live].state, by_id[live].attempts) == ("sending", 1)
    assert by_id[live].payload_ct is not None


def test_a_mail_claimed_max_attempts_times_by_stopped_sweeps_is_given_up(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = someone(at, "alice")
    [row_id] = queue(at, alice, 1)
    past = clock.now() - timedelta(seconds=1)
    force(at, row_id, state="sending", attempts=MAX_ATTEMPTS, claimed_until=past)
    relay = Recorder()
    assert mailer_of(at, relay).deliver_pending() == 0
    [row] = rows(at, [row_id])
    assert (row.state, row.last_error, row.claimed_until) == ("failed", "ClaimExpired", None)
    assert relay.calls == 0


def test_a_late_sweep_does_not_undo_what_the_sweep_that_took_over_did(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = someone(at, "alice")
    [row_id] = queue(at, alice, 1)
    relay = Recorder()

    class SlowThenFailing(Recorder):
        """Takes longer than the lease (another sweep sends the mail meanwhile), then fails."""

        def send(self, key: str, message: EmailMessage) -> None:
            clock.advance(LEASE + timedelta(seconds=1))
            assert mailer_of(at, relay).deliver_pending() == 1
            raise TimeoutError("the relay did not answer")

    assert mailer_of(at, SlowThenFailing()).deliver_pending() == 0
    [row] = rows(at, [row_id])
    assert (row.state, row.attempts, row.payload_ct, row.last_error) == ("sent", 2, None, None)
    assert relay.per_key() == {row_id: 1}


def test_an_erasure_waits_for_a_mail_being_sent(at: Runtime) -> None:
    alice = someone(at, "alice")
    sending, _ = queue(at, alice, 2)
    force(at, sending, state="sending", claimed_until=at.clock.now() + LEASE)
    with at.transaction() as session:
        assert at.outbox.pending_for(session, alice.subject_id) == 2


# --- two sweeps at once -------------------------------------------------------------------


@pytest.fixture
def committed(fresh_settings: Settings) -> Iterator[tuple[Runtime, Runtime]]:
    """Two runtimes on one committed database, each with its own engine (as two processes
    have), on one frozen clock."""
    prepare(fresh_settings).dispose()
    clock = FrozenClock(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))
    first = open_runtime(fresh_settings, clock=clock)
    second = open_runtime(fresh_settings, clock=clock)
    yield first, second
    first.close()
    second.close()


def test_two_sweeps_that_both_see_a_row_due_send_it_once(
    committed: tuple[Runtime, Runtime],
) -> None:
    one, other = committed
    alice = someone(one, "alice")
    ids = queue(one, alice, 5)
    relay = Recorder()
    second = mailer_of(other, relay)

    class Interleaved(Recorder):
        """While the first sweep sends its first mail, a whole second sweep runs."""

        def send(self, key: str, message: EmailMessage) -> None:
            if not relay.mails:
                second.deliver_pending()
            relay.send(key, message)

    first_sent = mailer_of(one, Interleaved()).deliver_pending()
    assert first_sent == 1
    delivered = relay.per_key()
    assert all(delivered[key] == 1 for key in ids), delivered
    assert sum(delivered.values()) == len(ids)
    assert {row.state for row in rows(one, ids)} == {"sent"}


def test_four_sweeps_racing_on_the_same_rows_send_each_once(
    committed: tuple[Runtime, Runtime], fresh_settings: Settings
) -> None:
    one, _ = committed
    alice = someone(one, "alice")
    ids = queue(one, alice, 24)
    relay = Recorder()
    runtimes = [open_runtime(fresh_settings, clock=one.clock) for _ in range(4)]
    start = threading.Barrier(len(runtimes))
    counts: list[int] = []
    errors: list[BaseException] = []

    def sweep(runtime: Runtime) -> None:
        try:
            start.wait(timeout=30)
            counts.append(mailer_of(runtime, relay).deliver_pending())
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(runtime,)) for runtime in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for runtime in runtimes:
        runtime.close()
    assert errors == []
    delivered = relay.per_key()
    assert sum(counts) == sum(delivered.values()) == len(ids)
    assert all(delivered[key] == 1 for key in ids), delivered
    assert {row.state for row in rows(one, ids)} == {"sent"}


# --- templates and one-click unsubscribe (P0.2) -------------------------------------------


def test_every_template_has_a_plain_and_an_html_part() -> None:
    for name in TEMPLATES:
        assert (TEMPLATE_DIR / f"{name}.txt").is_file(), name
        assert (TEMPLATE_DIR / f"{name}.html").is_file(), name
    assert TEMPLATES["newsletter"].kind is Kind.NEWSLETTER
    assert TEMPLATES["verify_email"].kind is Kind.NOTICE


def delivered_mail(runtime: Runtime, tmp_path: Path, row_id: str) -> EmailMessage:
    maildir = MaildirTransport(tmp_path / "maildir")
    mailer_of(runtime, maildir).deliver_pending()
    raw = maildir.copy_of(row_id)
    assert raw is not None
    message = message_from_bytes(raw, _class=EmailMessage, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_p0_2_a_newsletter_carries_one_click_unsubscribe(at: Runtime, tmp_path: Path) -> None:
    alice = someone(at, "alice")
    [row_id] = queue(at, alice, 1)
    mail = delivered_mail(at, tmp_path, row_id)
    assert mail["List-Unsubscribe"] == f"<{NEWS['unsubscribe_url']}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"] == f"<{row_id}@kallu.cc>"
    assert mail["To"] == alice.email
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert NEWS["unsubscribe_url"] in plain.get_content()
    assert f'href="{NEWS["unsubscribe_url"]}"' in html.get_content()


def test_p0_2_a_notice_carries_no_unsubscribe_headers(at: Runtime, tmp_path: Path) -> None:
    alice = register(at, "alice")
    with at.factory() as session:
        notice = session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.subject_id == alice.subject_id)
        ).one()
    mail = delivered_mail(at, tmp_path, notice)
    assert mail["Subject"] == TEMPLATES["verify_email"].subject
    assert "List-Unsubscribe" not in mail and "List-Unsubscribe-Post" not in mail
    assert mail.get_body(("plain",)) is not None and mail.get_body(("html",)) is not None


@pytest.mark.parametrize(
    "url",
    [None, "", "/unsubscribe", "mailto:leave@kallu.example", "https://kallu.example/u>x"],
    ids=["missing", "empty", "relative", "mailto", "bracket"],
)
def test_p0_2_a_newsletter_without_an_unsubscribe_link_is_refused(
    at: Runtime, url: str | None
) -> None:
    alice = register(at, "alice")
    context = {k: v for k, v in NEWS.items() if k != "unsubscribe_url"}
    if url is not None:
        context["unsubscribe_url"] = url
    with at.transaction() as session, pytest.raises(ValueError, match="unsubscribe_url"):
        at.outbox.enqueue(session, alice.subject_id, alice.email, "newsletter", context)


def test_an_unknown_template_is_refused(at: Runtime) -> None:
    alice = register(at, "alice")
    with at.transaction() as session, pytest.raises(LookupError, match="no mail template"):
        at.outbox.enqueue(session, alice.subject_id, alice.email, "nonesuch", {})


def test_the_outbox_lists_the_newest_first_without_addresses(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    clock.advance(timedelta(minutes=1))
    [news] = queue(at, alice, 1)
    mailer_of(at, Recorder()).deliver_pending()
    with at.factory() as session:
        listed = at.outbox.recent(session)
        only_sent = at.outbox.recent(session, state="sent", limit=1)
    assert [e.id for e in listed][:1] == [news]
    assert [e.template for e in listed][:2] == ["newsletter", "verify_email"]
    assert [e.id for e in only_sent] == [news]
    assert alice.email not in repr(listed)
