"""Releases of statistics to third parties (P3.10): aggregates only, small cells and their
complements suppressed, only to a recipient of kind statistics, only from categories the
statistics purpose may use, each one in the register with the hash of its output."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from factories import answered_call, kallu_data
from privault.access.models import AccessLogEntry
from privault.disclosure.models import StatisticsRelease
from privault.policy import build_policy
from privault.runtime import Runtime
from privault.service.models import DialInNumber
from privault.staff.errors import PurposeRefused
from privault.staff.service import Staff
from privault.statistics.errors import (
    CategoryNotForStatistics,
    InvalidRelease,
    NotStatisticsRecipient,
    ReleaseDisabled,
    UnknownRelease,
)
from privault.statistics.releases import age_band

DIAL_INS = {"FR": "+33176000001", "DE": "+4930900001", "IT": "+390200000001"}
CALLER = "+447700900123"

#: (month, country) -> how many owners; each owner's room takes two calls that month.
Plan = dict[tuple[str, str], int]


@pytest.fixture
def ann(at: Runtime) -> Staff:
    with at.transaction() as session:
        at.staff(session).add("ann", "privacy_officer")
        return at.staff(session).on_server("ann")


@pytest.fixture
def calls(at: Runtime) -> Callable[[Plan], list[str]]:
    """Make the calls of a plan; returns the owners' subject ids."""

    def make(plan: Plan) -> list[str]:
        owners: list[str] = []
        with at.transaction() as session:
            if not owners_so_far:
                session.add_all(
                    DialInNumber(country=country, number=number, created_at=at.clock.now())
                    for country, number in DIAL_INS.items()
                )
            for (month, country), count in plan.items():
                people = at.vault.create_subjects(session, count)
                owners += people
                year, mon = (int(part) for part in month.split("-"))
                at.partitions.ensure(session, "call_records", [datetime(year, mon, 1, tzinfo=UTC)])
                for n, subject_id in enumerate(people):
                    for call in range(2):
                        started = datetime(year, mon, 1 + n % 27, 9, call, tzinfo=UTC)
                        call_id = f"{subject_id}-{month}-{call}"
                        session.add(
                            answered_call(call_id, subject_id, DIAL_INS[country], started, 600)
                        )
        owners_so_far.extend(owners)
        return owners

    owners_so_far: list[str] = []
    return make


def with_policy(at: Runtime, change: Callable[[dict], None]) -> Runtime:
    data = kallu_data()
    change(data)
    return dataclasses.replace(at, policy=build_policy(data))


TO = "statistics_recipients"


def released(rt: Runtime, name: str, **options: Any) -> dict[str, Any]:
    with rt.transaction() as session:
        published = rt.statistics(session).release(name, TO, output_format="json", **options)
    document: dict[str, Any] = json.loads(published.text)
    return document


def published_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(document["columns"], row, strict=True)) for row in document["rows"]]


def test_p3_10_no_published_cell_counts_fewer_than_k(
    at: Runtime, calls: Callable[[Plan], list[str]]
) -> None:
    calls({("2026-10", "FR"): 30, ("2026-10", "DE"): 12, ("2026-10", "IT"): 25})
    calls({("2026-11", "FR"): 4, ("2026-11", "DE"): 15, ("2026-11", "IT"): 40})
    rows = published_rows(released(at, "calls_by_country"))
    assert len(rows) == 6
    shown = [r for r in rows if not r["suppressed"]]
    assert all(r["people"] >= 10 for r in shown)
    small = next(r for r in rows if r["month"] == "2026-11" and r["country"] == "FR")
    assert small["suppressed"] and small["people"] is None and small["calls"] is None
    assert [(r["month"], r["country"], r["calls"], r["minutes"]) for r in shown] == [
        ("2026-10", "IT", 50, 500.0),
        ("2026-11", "IT", 80, 800.0),
    ]


def test_p3_10_complementary_suppression_keeps_a_small_cell_from_the_totals(
    at: Runtime, calls: Callable[[Plan], list[str]]
) -> None:
    # October: FR 30, DE 3, IT 20 people. Hiding DE alone, October's total of calls (from
    # active_rooms, or last month's figures) minus FR and IT would give DE's 6 calls back.
    calls({("2026-10", "FR"): 30, ("2026-10", "DE"): 3, ("2026-10", "IT"): 20})
    rows = published_rows(released(at, "calls_by_country"))
    hidden = [r["country"] for r in rows if r["suppressed"]]
    assert "DE" in hidden and len(hidden) >= 2
    assert all(r["people"] >= 10 for r in rows if not r["suppressed"])


def test_p3_10_a_release_can_use_its_own_k(at: Runtime, calls: Callable[[Plan], list[str]]) -> None:
    calls({("2026-10", "FR"): 12, ("2026-11", "FR"): 25})
    strict = with_policy(
        at, lambda data: data["statistics"]["releases"]["active_rooms"].update(k=20)
    )
    document = released(strict, "active_rooms")
    assert document["parameters"]["k"] == 20
    assert [r["suppressed"] for r in published_rows(document)] == [True, True]
    assert [r["rooms"] for r in published_rows(released(at, "active_rooms"))] == [12, 25]


def test_p3_10_a_release_is_in_the_register_with_the_hash_of_its_output(
    at: Runtime, calls: Callable[[Plan], list[str]], ann: Staff
) -> None:
    calls({("2026-10", "FR"): 12})
    with at.transaction() as session:
        published = at.statistics(session).release("active_rooms", TO, approver=ann)
    assert published.text.startswith("# release: active_rooms\n# version: 1\n")
    assert "month,people,rooms,suppressed\n2026-10,12,12,\n" in published.text
    with at.factory() as session:
        row = session.scalars(select(StatisticsRelease)).one()
        entries = at.statistics(session).releases(recipient=TO)
        logged = session.scalars(
            select(AccessLogEntry).where(AccessLogEntry.action == "cli:statistics:released")
        ).one()
    assert row.output_sha256 == hashlib.sha256(published.text.encode()).hexdigest()
    assert (row.recipient_id, row.release, row.version) == (TO, "active_rooms", 1)
    assert (row.approved_by, row.epsilon, row.delta, row.output_format) == (
        "staff:ann",
        0.0,
        0.0,
        "csv",
    )
    assert json.loads(row.parameters)["k"] == 10
    assert [e.id for e in entries] == [published.id]
    assert logged.actor == "staff:ann" and logged.subject_id is None


def test_p3_10_a_release_to_a_recipient_not_of_kind_statistics_is_refused(
    at: Runtime, calls: Callable[[Plan], list[str]]
) -> None:
    calls({("2026-10", "FR"): 12})
    with at.transaction() as session:
        service = at.statistics(session)
        with pytest.raises(NotStatisticsRecipient, match="courts_and_authorities is a recipient"):
            service.release("active_rooms", "courts_and_authorities")
        with pytest.raises(NotStatisticsRecipient, match="not in the policy file"):
            service.release("active_rooms", "a_data_broker")
        assert session.scalars(select(StatisticsRelease)).all() == []


def test_p3_10_a_release_reading_a_category_not_for_statistics_is_refused(at: Runtime) -> None:
    with at.transaction() as session, pytest.raises(ReleaseDisabled):
        at.statistics(session).release("purchases_by_month", TO)
    enabled = with_policy(
        at,
        lambda data: data["statistics"]["releases"]["purchases_by_month"].update(enabled=True),
    )
    with (
        enabled.transaction() as session,
        pytest.raises(CategoryNotForStatistics, match="transactions"),
    ):
        enabled.statistics(session).release("purchases_by_month", TO)


def test_p3_10_refusals_for_a_release_format_or_approver(at: Runtime, ann: Staff) -> None:
    with at.transaction() as session:
        service = at.statistics(session)
        with pytest.raises(UnknownRelease, match="one of calls_by_country"):
            service.release("everything", TO)
        with pytest.raises(InvalidRelease, match="csv or json"):
            service.release("active_rooms", TO, output_format="xlsx")
        sam = at.staff(session).add("sam", "support")
        with pytest.raises(PurposeRefused):
            service.release("active_rooms", TO, approver=at.staff(session).on_server(sam.name))


def test_age_bands_count_a_birthday_on_the_day() -> None:
    from datetime import date

    on = date(2027, 1, 20)
    assert age_band(date(2009, 1, 20), on) == "18-24"
    assert age_band(date(2009, 1, 21), on) == "under 18"
    assert age_band(date(1962, 1, 20), on) == "65 and over"
    assert age_band(date(1990, 6, 1), on) == "35-44"


def test_p3_10_output_holds_no_identifier_free_text_or_category_not_for_statistics(
    at: Runtime, calls: Callable[[Plan], list[str]]
) -> None:
    owners = calls({("2026-10", "FR"): 12, ("2026-10", "DE"): 11})
    with at.transaction() as session:
        at.profiles(session).import_values(
            [(s, "birthday", "1990-06-01", "private") for s in owners]
            + [(s, "employment", "Secret Agent at Acme", "private") for s in owners]
        )
    texts = []
    for name in ("calls_by_country", "active_rooms", "accounts_by_age"):
        for kind in ("csv", "json"):
            with at.transaction() as session:
                texts.append(at.statistics(session).release(name, TO, output_format=kind).text)
    ages = published_rows(json.loads(texts[-1]))
    assert {(r["age_band"], r["country"], r["accounts"]) for r in ages} == {
        ("35-44", "FR", 12),
        ("35-44", "DE", 11),
    }
    forbidden = [*owners, CALLER, *DIAL_INS.values(), "1990-06-01", "Secret Agent", "GB"]
    for text in texts:
        for value in forbidden:
            assert value not in text
