"""P8.2: publishing a policy version mails every active account, once, in batches that a
crash does not repeat."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from factories import mails, register, revised, verified
from privault.clock import FrozenClock
from privault.notify.policy_mailing import MailingRefused
from privault.policy.store import PolicyStore
from privault.runtime import Runtime
from privault.service.models import Account

TEMPLATE = "policy_changed"


class Crash(Exception):
    """The process dies after a batch."""


def publish(at: Runtime, clock: FrozenClock, path: Path) -> int:
    with at.transaction() as session:
        return PolicyStore(session, clock).publish(path).version


def test_p8_2_publishing_mails_each_active_account_once_with_the_diff_and_links(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    alice, bob = verified(at, "alice"), verified(at, "bob")
    unverified = register(at, "carol")
    closed = verified(at, "dave")
    with at.transaction() as session:
        session.execute(
            update(Account)
            .where(Account.subject_id == closed.subject_id)
            .values(closed_at=clock.now())
        )
    version = publish(at, clock, revised(tmp_path))
    mailing = at.policy_mailing()
    assert mailing.remaining(version) == 2
    report = mailing.run(version)
    assert (report.queued, report.total, report.skipped) == (2, 2, 0)
    assert mailing.remaining(version) == 0
    for person in (alice, bob):
        (mail,) = mails(at, person.subject_id, TEMPLATE)
        assert mail["to"] == person.email
        context = mail["context"]
        assert context["url"] == f"{at.settings.base_url}/privacy/v/{version}"
        assert context["changes_url"] == (
            f"{at.settings.base_url}/privacy/diff/{version - 1}/{version}"
        )
        assert context["changes"][0].startswith("New analytics cookie: _gat")
        assert context["verdict"] == "Notice only: nobody needs to agree again."
        assert context["in_force"] is True
    for person in (unverified, closed):
        assert mails(at, person.subject_id, TEMPLATE) == []
    again = mailing.run(version)
    assert (again.queued, again.total) == (0, 2)
    assert len(mails(at, alice.subject_id, TEMPLATE)) == 1


def test_p8_2_a_mailing_cut_short_goes_on_where_it_stopped(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    people = [verified(at, f"person{i}") for i in range(5)]
    version = publish(at, clock, revised(tmp_path))
    mailing = at.policy_mailing()

    def crash(done: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        mailing.run(version, batch=2, progress=crash)
    counts = [len(mails(at, p.subject_id, TEMPLATE)) for p in people]
    assert sorted(counts) == [0, 0, 0, 1, 1]
    assert mailing.remaining(version) == 3
    done: list[int] = []
    report = mailing.run(version, batch=2, progress=done.append)
    assert done == [2, 1]
    assert (report.queued, report.total) == (3, 5)
    assert [len(mails(at, p.subject_id, TEMPLATE)) for p in people] == [1] * 5


def test_p8_2_the_mail_renders_with_what_changed(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    alice = verified(at, "alice")
    version = publish(at, clock, revised(tmp_path))
    at.policy_mailing().run(version)
    (mail,) = mails(at, alice.subject_id, TEMPLATE)
    message = at.mailer().render("x", TEMPLATE, mail["to"], mail["context"])
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert f"version {version} (1.1.0), in force since 20 January 2027" in body
    assert "- New analytics cookie: _gat" in body
    assert f"/privacy/v/{version}" in body and "unsubscribe" not in body.lower()


def test_a_version_whose_policy_cannot_read_addresses_for_notices_is_not_mailed(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    path = revised(tmp_path, extra="")
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            'legal_basis = "contract"\ncategories = ["registration"]',
            'legal_basis = "contract"\ncategories = ["service_input"]',
        ),
        encoding="utf-8",
    )
    version = publish(at, clock, path)
    with pytest.raises(MailingRefused) as refused:
        at.policy_mailing().run(version)
    assert refused.value.detail == (
        f"policy version {version} does not let the purpose notices use registration data, "
        "where the addresses are"
    )
