"""Differential privacy in statistics releases (P3.10): each person's contribution is
bounded before the cells are summed, the noise is calibrated to that bound, and the
privacy loss of every release is spent from the recipient's budget, across releases."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from factories import answered_call, kallu_data, policy_refusal
from privault.disclosure.models import StatisticsRelease
from privault.policy import build_policy
from privault.runtime import Runtime
from privault.service.models import DialInNumber
from privault.statistics.bounding import Contribution, bounded
from privault.statistics.budget import PrivacyBudgetSpend
from privault.statistics.catalog import SUMS
from privault.statistics.dp import BudgetExhausted
from privault.statistics.releases import RELEASES, Source, window
from privault.statistics.suppression import Cell, Key

TO = "statistics_recipients"
MEASURES = ("calls", "minutes")
BOUNDS = {"calls": (0.0, 20.0), "minutes": (0.0, 300.0)}
DIAL_INS = {"FR": "+33176000001", "DE": "+4930900001", "IT": "+390200000001"}
MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]
#: (month, country) -> calls and seconds of each call, for one person.
Plan = dict[tuple[str, str], tuple[int, int]]


def noisy(at: Runtime, dp: dict[str, Any], epsilon: float = 1.0) -> Runtime:
    data = kallu_data()
    data["statistics"]["budget"] = {"epsilon": epsilon, "delta": 1e-6, "period": "P1M"}
    data["statistics"]["releases"]["calls_by_country"]["dp"] = dp
    return dataclasses.replace(at, policy=build_policy(data))


LAPLACE = {
    "mechanism": "laplace",
    "epsilon": 0.6,
    "max_contributions": 3,
    "bounds": {"calls": [0, 20], "minutes": [0, 300]},
}


@pytest.fixture
def people(at: Runtime) -> Callable[[Sequence[Plan]], None]:
    """Make one person per plan, with their calls."""

    def make(plans: Sequence[Plan]) -> None:
        with at.transaction() as session:
            if session.scalar(select(func.count()).select_from(DialInNumber)) == 0:
                session.add_all(
                    DialInNumber(country=country, number=number, created_at=at.clock.now())
                    for country, number in DIAL_INS.items()
                )
            at.partitions.ensure(
                session, "call_records", [datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 13)]
            )
            for subject_id, plan in zip(
                at.vault.create_subjects(session, len(plans)), plans, strict=True
            ):
                for (month, country), (calls, seconds) in plan.items():
                    year, mon = (int(part) for part in month.split("-"))
                    for call in range(calls):
                        started = datetime(year, mon, 1 + call % 27, 9, call % 60, tzinfo=UTC)
                        call_id = f"{subject_id}-{month}-{country}-{call}"
                        dial_in = DIAL_INS[country]
                        session.add(answered_call(call_id, subject_id, dial_in, started, seconds))

    return make


def crowd(count: int) -> list[Plan]:
    """``count`` ordinary people: two 10-minute calls in a month, in France."""
    return [{(MONTHS[n % 3], "FR"): (2, 600)} for n in range(count)]


#: Someone with calls in every cell there is (36 of them) and huge minutes.
OUTLIER: Plan = {(month, country): (40, 36_000) for month in MONTHS for country in DIAL_INS}


def pre_noise(rt: Runtime) -> dict[Key, Cell]:
    """The calls_by_country cells as the dp path sums them, before any noise."""
    release = RELEASES["calls_by_country"]
    with rt.transaction() as session:
        rows = release.contributions(Source(session, rt.vault, rt.clock.now()))
    return {cell.key: cell for cell in bounded(rows, release.measures, 3, BOUNDS)}


def distance(a: dict[Key, Cell], b: dict[Key, Cell]) -> tuple[int, int, list[float]]:
    """How far apart two cell vectors are: the number of cells that differ, the L1 distance
    of their people counts, and the L1 distance of each measure."""
    empty = Cell((), 0, (0.0, 0.0))
    keys = a.keys() | b.keys()
    differing = [k for k in keys if a.get(k, empty) != b.get(k, empty)]
    people = sum(abs(a.get(k, empty).people - b.get(k, empty).people) for k in keys)
    measures = [
        sum(abs(a.get(k, empty).values[n] - b.get(k, empty).values[n]) for k in keys)
        for n in range(len(MEASURES))
    ]
    return len(differing), people, measures


def test_p3_10_bounding_keeps_a_persons_first_cells_and_clamps_each_measure() -> None:
    crowd_rows = [Contribution(f"p{n}", (MONTHS[n % 4], "FR"), (2.0, 20.0)) for n in range(40)]
    outlier = [
        Contribution("mallory", (month, country), (500.0, 1e6))
        for month in MONTHS[::-1]
        for country in ("IT", "DE", "FR", "ZZ")
    ]
    assert len(outlier) == 48
    without = {c.key: c for c in bounded(crowd_rows, MEASURES, 3, BOUNDS)}
    with_outlier = {c.key: c for c in bounded(crowd_rows + outlier, MEASURES, 3, BOUNDS)}
    cells, people, (calls, minutes) = distance(without, with_outlier)
    assert (cells, people) == (3, 3)  # at most max_contributions cells, one person each
    assert calls == 3 * 20 and minutes == 3 * 300  # each clamped to its high bound
    # The rule: the person's first cells in key order (January, then DE, FR, IT).
    changed = sorted(k for k in with_outlier if with_outlier[k] != without.get(k))
    assert changed == [("2026-01", "DE"), ("2026-01", "FR"), ("2026-01", "IT")]
    assert with_outlier["2026-01", "FR"] == Cell(("2026-01", "FR"), 11, (40.0, 500.0))
    # A measure without bounds counts the people of the cell.
    rooms = bounded(
        [Contribution("a", ("m",), (1,)), Contribution("b", ("m",), (7,))], ("rooms",), 1, {}
    )
    assert rooms == [Cell(("m",), 2, (2.0,))]


def test_p3_10_differencing_one_person_moves_the_pre_noise_cells_within_the_sensitivity(
    at: Runtime, people: Callable[[Sequence[Plan]], None]
) -> None:
    people(crowd(30))
    before = pre_noise(at)
    people([OUTLIER])
    after = pre_noise(at)
    cells, moved, (calls, minutes) = distance(before, after)
    assert cells <= 3 and moved <= 3
    assert calls <= 3 * 20 and minutes <= 3 * 300
    # What the release reports matches the budget it spent: Laplace's loss at a scale is
    # its sensitivity over that scale, the release's loss the sum over its three queries.
    rt = noisy(at, LAPLACE)
    with rt.transaction() as session:
        published = rt.statistics(session).release("calls_by_country", TO, output_format="json")
        spent = session.scalars(select(PrivacyBudgetSpend)).one()
        row = session.get(StatisticsRelease, published.id)
    dp = json.loads(published.text)["parameters"]["differential_privacy"]
    scales = dp["scales"]
    sensitivities = {"people": 3, "calls": 3 * 20, "minutes": 3 * 300}
    epsilon = sum(sensitivities[name] / scale for name, scale in scales.items())
    assert set(scales) == set(sensitivities)
    assert epsilon == pytest.approx(spent.epsilon, rel=1e-9) == pytest.approx(0.6, rel=1e-9)
    assert spent.epsilon <= 0.6 * (1 + 1e-12)
    assert row is not None and (row.epsilon, row.delta) == (spent.epsilon, 0.0)
    assert (dp["mechanism"], dp["max_contributions"]) == ("laplace", 3)
    assert dp["bounds"] == {"calls": [0, 20], "minutes": [0, 300]}


def test_p3_10_with_dp_the_budget_is_enforced_across_releases(
    at: Runtime, people: Callable[[Sequence[Plan]], None]
) -> None:
    people(crowd(40))
    rt = noisy(at, LAPLACE)
    with rt.transaction() as session:
        first = rt.statistics(session).release("calls_by_country", TO, output_format="json")
    document = json.loads(first.text)
    assert document["parameters"]["epsilon_spent"] == pytest.approx(0.6)
    published = [r for r in document["rows"] if not r[-1]]
    assert all(isinstance(v, int) and v >= 0 for r in published for v in r[2:5])
    assert all(r[2] >= 10 for r in published)  # suppression on the noisy people counts
    with rt.factory() as session:
        budget = rt.statistics(session).budget(TO)
    assert (budget.spent_epsilon, budget.remaining_epsilon) == pytest.approx((0.6, 0.4))
    refused = pytest.raises(BudgetExhausted, match="the privacy budget of statistics_recipients")
    with refused, rt.transaction() as session:
        rt.statistics(session).release("calls_by_country", TO)
    with rt.factory() as session:
        assert session.scalar(select(func.count()).select_from(StatisticsRelease)) == 1
        assert session.scalar(select(func.count()).select_from(PrivacyBudgetSpend)) == 1
        assert rt.statistics(session).budget(TO).remaining_epsilon == pytest.approx(0.4)
    # A month later the window has moved on, and the budget is whole again.
    at.clock.advance(timedelta(days=32))
    with rt.transaction() as session:
        rt.statistics(session).release("calls_by_country", TO)


def test_p3_10_a_gaussian_release_spends_its_delta(
    at: Runtime, people: Callable[[Sequence[Plan]], None]
) -> None:
    people(crowd(12))
    gaussian = {**LAPLACE, "mechanism": "gaussian", "epsilon": 0.9, "delta": 1e-7}
    rt = noisy(at, gaussian)
    with rt.transaction() as session:
        rt.statistics(session).release("calls_by_country", TO)
        spent = session.scalars(select(PrivacyBudgetSpend)).one()
    assert 0 < spent.epsilon <= 0.9 * (1 + 1e-9) and 0 < spent.delta <= 1e-7 * (1 + 1e-9)


def test_p3_10_a_dp_release_without_bounds_is_refused_when_the_policy_loads() -> None:
    data = kallu_data()
    data["statistics"]["budget"] = {"epsilon": 1.0, "delta": 1e-6, "period": "P1M"}
    rules = data["statistics"]["releases"]["calls_by_country"]
    rules["dp"] = {"mechanism": "laplace", "epsilon": 0.5, "bounds": {"calls": [0, 20]}}
    assert policy_refusal(data) == (
        "kallu.toml: statistics.releases.calls_by_country.dp.bounds: a release with dp "
        "needs bounds for minutes (e.g. bounds = { minutes = [0, 100] })"
    )
    rules["dp"]["bounds"] = {"calls": [20, 0], "minutes": [0, 100]}
    assert "statistics.releases.calls_by_country.dp.bounds.calls: bounds are two finite" in (
        policy_refusal(data)
    )
    rules["dp"]["bounds"] = {"calls": [0, 20], "minutes": [0, 100], "rooms": [0, 1]}
    assert "dp.bounds.rooms: calls_by_country sums no measure rooms" in policy_refusal(data)
    # A release whose measures all count people needs no bounds.
    del rules["dp"]
    data["statistics"]["releases"]["active_rooms"]["dp"] = {"mechanism": "laplace", "epsilon": 0.5}
    assert build_policy(data).statistics.noise_for("active_rooms") is not None


def test_p3_10_a_release_with_dp_over_people_counts_only(
    at: Runtime, people: Callable[[Sequence[Plan]], None]
) -> None:
    people(crowd(30))
    data = kallu_data()
    data["statistics"]["releases"]["active_rooms"]["dp"] = {"mechanism": "laplace", "epsilon": 0.5}
    rt = dataclasses.replace(at, policy=build_policy(data))
    with rt.transaction() as session:
        published = rt.statistics(session).release("active_rooms", TO, output_format="json")
    document = json.loads(published.text)
    assert document["parameters"]["differential_privacy"]["scales"] == {"people": 2.0}
    for _month, count, rooms, hidden in document["rows"]:
        assert hidden or count == rooms


def test_every_release_states_which_of_its_measures_are_sums() -> None:
    assert set(SUMS) == set(RELEASES)
    for name, release in RELEASES.items():
        assert set(SUMS[name]) <= set(release.measures), name


def test_p3_10_a_dp_release_publishes_the_same_cells_whoever_is_in_the_data(
    at: Runtime, people: Callable[[Sequence[Plan]], None]
) -> None:
    """A person alone in a month and country would, in a table of the cells somebody is
    in, add a row of their own: its mere presence would tell that they called from there,
    whatever the noise. A dp release's rows are fixed before the data is read."""
    people(crowd(40))
    rt = noisy(at, LAPLACE, epsilon=2.0)

    def keys() -> list[tuple[str, str]]:
        with rt.transaction() as session:
            published = rt.statistics(session).release("calls_by_country", TO, output_format="json")
        return [(row[0], row[1]) for row in json.loads(published.text)["rows"]]

    before = keys()
    people([{("2026-07", "IT"): (1, 60)}])
    after = keys()
    assert before == after
    countries = sorted({*DIAL_INS, "ZZ"})
    assert before == [(month, country) for month in MONTHS for country in countries]


def test_p3_10_a_dp_release_covers_the_whole_months_of_its_window(
    at: Runtime, people: Callable[[Sequence[Plan]], None]
) -> None:
    """Calls outside the window count nowhere: not in a cell, nor against the person's
    ``max_contributions``."""
    release = RELEASES["calls_by_country"]
    people([{("2026-01", "FR"): (1, 60), ("2026-11", "DE"): (1, 60), ("2026-12", "FR"): (1, 60)}])
    now = at.clock.now()  # 20 January 2027
    with at.transaction() as session:
        source = Source(session, at.vault, now, window(now, 2))
        cells = bounded(
            release.contributions(source), release.measures, 1, BOUNDS, release.domain(source)
        )
    assert source.months == ("2026-11", "2026-12")
    counted = {cell.key: cell.people for cell in cells if cell.people}
    assert counted == {("2026-11", "DE"): 1}  # the January call used up nothing
    assert len(cells) == 2 * len({*DIAL_INS, "ZZ"})


def test_the_window_is_whole_utc_months_before_the_release() -> None:
    assert window(datetime(2027, 1, 20, 9, tzinfo=UTC), 12) == tuple(MONTHS)
    assert window(datetime(2026, 3, 1, 0, 30, tzinfo=UTC), 2) == ("2026-01", "2026-02")
    assert window(datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), 1) == (
        "2026-01",
    )


def test_every_dp_domain_is_fixed_by_the_policy_and_the_number_list(at: Runtime) -> None:
    """With nobody in the database, every release still has its whole domain: the months,
    the seven age bands, every dial-in country (none listed here: only ZZ)."""
    with at.transaction() as session:
        source = Source(session, at.vault, at.clock.now(), ("2026-12",))
        sizes = {name: len(release.domain(source)) for name, release in RELEASES.items()}
    assert sizes["active_rooms"] == 1
    assert sizes["calls_by_country"] == 1  # ZZ
    assert sizes["accounts_by_age"] == 7
    assert sizes["purchases_by_month"] > 2 * 150  # every kind and ISO 4217 currency
