"""`privault demo` fills every page: people, calls, consents, requests in every state,
holds, disclosures, statistics releases and mail; twice is once; its logins work."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import run_cli
from privault import demo
from privault.clock import FrozenClock, aware
from privault.config import Settings
from privault.consent.models import ChannelConsent, CookieConsent
from privault.db import Base
from privault.disclosure.models import Disclosure, StatisticsRelease
from privault.notify.models import OutboxMessage
from privault.rights.service import State
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.models import CallRecord
from privault.staff import totp


@pytest.fixture
def runtime(fresh_settings: Settings) -> Iterator[Runtime]:
    """A runtime of a data folder of the test's own, its clock stopped at the real now."""
    prepare(fresh_settings).dispose()
    opened = open_runtime(fresh_settings, clock=FrozenClock(datetime.now(UTC)))
    yield opened
    opened.close()


def counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }


def test_the_demo_seeds_once_fills_every_register_and_its_logins_work(
    runtime: Runtime, fresh_settings: Settings
) -> None:
    first = demo.seed(runtime)
    with runtime.factory() as session:
        before = counts(session)
    second = demo.seed(runtime)
    with runtime.factory() as session:
        assert counts(session) == before
    assert first == second
    assert len(first.people) == len(demo.CAST) == before["accounts"]
    assert before["call_records"] > 2000
    assert before["analytics_page_views"] > 100
    assert all(p.email.endswith("@example.com") for p in first.people)
    with runtime.transaction() as session:
        requests_in_every_state(runtime, session)
        something_in_every_register(runtime, session)
    logins_work(runtime, first)
    if fresh_settings.db_url.startswith("sqlite"):
        runtime.close()
        stored = b"".join(p.read_bytes() for p in fresh_settings.data_dir.glob("*.db*"))
        for person in first.people:
            for value in (person.email, person.display_name, person.room_id):
                assert value.encode() not in stored, value


def requests_in_every_state(runtime: Runtime, session: Session) -> None:
    """Every state, and among the open ones an overdue, a due soon and an extended one."""
    now = runtime.clock.now()
    requests = runtime.rights(session).queue(states=list(State))
    assert {r.state for r in requests} == {s.value for s in State}
    open_ones = [r for r in requests if State(r.state).open]
    assert any(r.overdue(now) for r in open_ones)
    assert any(r.deadline and now < r.deadline < now + timedelta(days=7) for r in open_ones)
    assert any(r.extended_to for r in open_ones)


def something_in_every_register(runtime: Runtime, session: Session) -> None:
    """Holds, disclosures, statistics releases, both answers of each consent, mail sent and
    pending, and calls old enough for the retention sweep."""
    assert runtime.holds(session).all()
    assert session.scalar(select(func.count()).select_from(Disclosure))
    assert session.scalar(select(func.count()).select_from(StatisticsRelease))
    choices = session.scalars(select(CookieConsent.choices)).all()
    assert {choice["analytics"] for choice in choices} == {True, False}
    assert set(session.scalars(select(ChannelConsent.given))) == {True, False}
    assert {"sent", "pending"} <= set(session.scalars(select(OutboxMessage.state)))
    oldest = session.scalar(select(func.min(CallRecord.started_at)))
    assert oldest is not None
    assert aware(oldest) < runtime.clock.now() - timedelta(days=365)


def logins_work(runtime: Runtime, seeded: demo.Seeded) -> None:
    """Each person's password opens a session; each staff member's, with a code computed
    from the printed TOTP secret, opens a staff session of their role."""
    with runtime.transaction() as session:
        accounts = runtime.accounts(session)
        for person in seeded.people:
            assert accounts.login(person.email, person.password).token
    now = runtime.clock.now()
    for member in seeded.staff:
        printed = member.login(now)
        secret = re.search(r"TOTP secret ([A-Z2-7]+)", printed)
        assert secret is not None and member.password in printed
        key = base64.b32decode(secret[1] + "=" * (-len(secret[1]) % 8))
        code = totp.code_at(key, totp.step_of(now))
        assert f"code now {code}" in printed
        with runtime.transaction() as session:
            token = runtime.staff(session).login(member.name, member.password, code)
            assert runtime.staff(session).authenticate(token).role == member.role


def test_demo_totp_prints_a_code_of_a_demo_staff_member_and_nothing_else(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    before = datetime.now(UTC)
    done = run_cli(fresh_settings, tmp_path, "demo", "--totp", "sam")
    after = datetime.now(UTC)
    (sam,) = [m for m in demo.STAFF if m.name == "sam"]
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in {sam.code(before), sam.code(after)}
    assert not fresh_settings.data_dir.exists()

    unknown = run_cli(fresh_settings, tmp_path, "demo", "--totp", "bob")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "privault: the demo has no staff member bob: it has ann, sam"
