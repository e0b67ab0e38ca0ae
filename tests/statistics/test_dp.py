"""Differential privacy of statistics releases (P3.10, issue 9): OpenDP's mechanisms report
the noise scale and privacy loss they really use, a differencing attack learns no more than
epsilon allows, and each recipient's privacy budget is enforced across releases."""

from __future__ import annotations

import math
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from factories import wait_for_advisory_lock_waiter
from privault.clock import FrozenClock
from privault.config import Settings
from privault.db import make_engine
from privault.errors import Conflict, InvalidInput
from privault.policy.types import Duration
from privault.runtime import Runtime, open_runtime, prepare
from privault.statistics.budget import PrivacyBudgetSpend
from privault.statistics.dp import (
    BudgetExhausted,
    InvalidNoiseSpec,
    NoiseSpec,
    PrivacyBudget,
    clamp,
    measurement,
    noisy_counts,
    noisy_sums,
)

MONTH = Duration.parse("P30D")


# -- mechanisms --------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [0.1, 0.3, 0.7, 1.0, 2.5])
@pytest.mark.parametrize("contributions", [1, 3])
def test_p3_10_laplace_scale_is_sensitivity_over_epsilon(
    epsilon: float, contributions: int
) -> None:
    spec = NoiseSpec("laplace", epsilon, max_contributions=contributions)

    counts = noisy_counts([12, 0, 40], spec)
    sums = noisy_sums([120.0, -8.5], spec, bounds=(-10.0, 50.0))

    assert len(counts.values) == 3 and all(isinstance(v, float) for v in counts.values)
    assert all(v == int(v) for v in counts.values)  # discrete noise on counts
    # OpenDP rounds its map up: the scale may be wider than sensitivity / epsilon by the last bits.
    assert counts.scale == pytest.approx(contributions / epsilon, rel=1e-12)
    assert counts.scale >= contributions / epsilon
    assert sums.scale == pytest.approx(contributions * 50.0 / epsilon, rel=1e-12)
    for noised in (counts, sums):
        assert noised.epsilon <= epsilon and noised.epsilon == pytest.approx(epsilon, rel=1e-12)
        assert noised.delta == 0.0


@pytest.mark.parametrize(("epsilon", "delta"), [(0.5, 1e-6), (1.0, 1e-5), (2.0, 1e-9)])
def test_p3_10_gaussian_scale_gives_at_most_epsilon_and_delta(epsilon: float, delta: float) -> None:
    spec = NoiseSpec("gaussian", epsilon, delta, max_contributions=2)

    counts = noisy_counts([30, 4], spec)
    sums = noisy_sums([300.0], spec, bounds=(0.0, 10.0))

    for noised, atom, sensitivity in ((counts, int, 2), (sums, float, 20.0)):
        assert noised.epsilon <= epsilon * (1 + 1e-9) and noised.delta <= delta
        # The loss reported is the measurement's own map at the sensitivity ...
        loss = measurement(spec, atom, noised.scale).map(sensitivity)
        assert (noised.epsilon, noised.delta) == (loss[0], loss[1])
        # ... and the scale is calibrated, not merely safe: 2% less noise would overspend.
        tighter = measurement(spec, atom, noised.scale * 0.98).map(sensitivity)
        assert tighter[0] > epsilon
        # Never more noise than the classical bound sigma = s * sqrt(2 ln(1.25/delta)) / epsilon.
        if epsilon < 1:
            assert noised.scale <= sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon
    assert sums.scale == pytest.approx(counts.scale * 10, rel=1e-3)


def test_p3_10_sums_are_of_clamped_rows_and_noise_scales_with_the_bound() -> None:
    spec = NoiseSpec("laplace", 1.0, max_contributions=2)

    assert clamp(250.0, (0.0, 120.0)) == 120.0
    assert clamp(-3.0, (0.0, 120.0)) == 0.0
    assert clamp(33.5, (0.0, 120.0)) == 33.5
    # The widest value either way sets the sensitivity: [-200, 50] counts as 200.
    assert noisy_sums([10.0], spec, (-200.0, 50.0)).scale == pytest.approx(400.0)
    assert noisy_sums([], spec, (0.0, 1.0)).values == []


def test_p3_10_differencing_attack_learns_no_more_than_epsilon() -> None:
    """Two releases that differ by one person (one cell + max_contributions): the privacy
    map at that distance is within epsilon, and over many fixed draws the likelihood ratio of
    any output stays within e^epsilon.

    The draws are independent cells of one release (OpenDP's noise is not seedable), 100 000
    per side. A bin is compared only with at least 400 draws on each side; its log-ratio may
    exceed epsilon by 5 standard errors (sqrt(1/a + 1/b)) before the test calls it a leak,
    which a correct mechanism does with probability below 1e-5 over all bins. The test also
    has power: for outputs at or below the smaller count the true ratio is exactly e^epsilon,
    and the pooled estimate must find it there (so a mechanism with too little noise fails).
    """
    epsilon, contributions, draws = 1.0, 2, 100_000
    spec = NoiseSpec("laplace", epsilon, max_contributions=contributions)
    without, with_person = 7, 7 + contributions

    assert measurement(spec, int, contributions / epsilon).map(contributions) <= epsilon
    a = noisy_counts([without] * draws, spec)
    b = noisy_counts([with_person] * draws, spec)
    assert a.epsilon <= epsilon and b.epsilon <= epsilon

    hist_a, hist_b = Counter(a.values), Counter(b.values)
    compared = 0
    for value in set(hist_a) | set(hist_b):
        na, nb = hist_a[value], hist_b[value]
        if na < 400 or nb < 400:
            continue
        compared += 1
        slack = 5 * math.sqrt(1 / na + 1 / nb)
        assert abs(math.log(na / nb)) <= epsilon + slack, (value, na, nb)
    assert compared >= 5

    left_a = sum(1 for v in a.values if v <= without)
    left_b = sum(1 for v in b.values if v <= without)
    standard_error = math.sqrt(1 / left_a + 1 / left_b)
    assert math.log(left_a / left_b) == pytest.approx(epsilon, abs=5 * standard_error)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("laplace", 0.0), "epsilon must be"),
        (("laplace", -1.0), "epsilon must be"),
        (("laplace", math.inf), "epsilon must be"),
        (("laplace", math.nan), "epsilon must be"),
        (("gaussian", 1.0), "needs a delta"),
        (("gaussian", 1.0, 1.0), "needs a delta"),
        (("laplace", 1.0, 1e-6), "delta must be 0"),
        (("exponential", 1.0), "laplace or gaussian"),
        (("laplace", 1.0, 0.0, 0), "max_contributions"),
        (("laplace", 1.0, 0.0, True), "max_contributions"),
    ],
)
def test_p3_10_invalid_noise_specs_are_refused(arguments: tuple, message: str) -> None:
    with pytest.raises(InvalidNoiseSpec, match=message) as refused:
        NoiseSpec(*arguments)
    assert isinstance(refused.value, InvalidInput) and isinstance(refused.value, ValueError)
    assert refused.value.code == "invalid_noise_spec"


@pytest.mark.parametrize(
    "bounds", [(10.0, 0.0), (0.0, math.inf), (math.nan, 1.0), (0.0, 0.0), ("low", "high")]
)
def test_p3_10_bad_bounds_are_refused(bounds: tuple) -> None:
    with pytest.raises(InvalidNoiseSpec, match="bounds"):
        noisy_sums([1.0], NoiseSpec("laplace", 1.0), bounds)


def test_p3_10_counts_must_be_whole_numbers() -> None:
    with pytest.raises(InvalidNoiseSpec, match="whole numbers"):
        noisy_counts([1.5], NoiseSpec("laplace", 1.0))  # type: ignore[list-item]


# -- the budget --------------------------------------------------------------------------


def _spend(at: Runtime, release: str, epsilon: float, delta: float = 0.0, **totals: float) -> None:
    with at.transaction() as session:
        PrivacyBudget(session, at.clock).spend(
            "insee",
            release,
            1,
            epsilon,
            delta,
            total_epsilon=totals.get("total_epsilon", 1.0),
            total_delta=totals.get("total_delta", 0.0),
            period=MONTH,
        )


def _remaining(at: Runtime, recipient: str = "insee", total_delta: float = 0.0) -> tuple:
    with at.factory() as session:
        return PrivacyBudget(session, at.clock).remaining(recipient, 1.0, total_delta, MONTH)


def _spends(at: Runtime) -> int:
    with at.factory() as session:
        return session.scalar(select(func.count()).select_from(PrivacyBudgetSpend)) or 0


def test_p3_10_the_budget_is_enforced_across_releases(at: Runtime, clock: FrozenClock) -> None:
    assert _remaining(at) == (1.0, 0.0)
    for release in ("visits", "signups", "rooms"):
        _spend(at, release, 0.3)
        clock.advance(timedelta(days=1))
    assert _remaining(at) == pytest.approx((0.1, 0.0))

    with pytest.raises(BudgetExhausted) as refused:
        _spend(at, "calls", 0.3)
    assert isinstance(refused.value, Conflict)
    assert refused.value.code == "privacy_budget_exhausted"
    assert "insee" in refused.value.detail
    # The refused release recorded nothing: the rest still pays for a smaller one.
    assert _spends(at) == 3
    _spend(at, "calls", 0.1)  # 0.3 * 3 + 0.1 is 1.0 up to float rounding: allowed
    assert _remaining(at) == pytest.approx((0.0, 0.0))
    with pytest.raises(BudgetExhausted):
        _spend(at, "calls", 0.01)

    # Another recipient has a budget of its own.
    assert _remaining(at, "eurostat") == (1.0, 0.0)

    # A sliding window: 30 days after the first spend, that one no longer counts.
    clock.advance(timedelta(days=27))
    assert _remaining(at) == pytest.approx((0.3, 0.0))
    _spend(at, "calls", 0.3)
    clock.advance(timedelta(days=30))
    assert _remaining(at) == (1.0, 0.0)
    assert _spends(at) == 5


def test_p3_10_gaussian_releases_spend_delta_too(at: Runtime) -> None:
    _spend(at, "visits", 0.1, 4e-6, total_delta=1e-5)
    _spend(at, "visits", 0.1, 4e-6, total_delta=1e-5)
    assert _remaining(at, total_delta=1e-5) == pytest.approx((0.8, 2e-6))

    with pytest.raises(BudgetExhausted, match="delta"):
        _spend(at, "visits", 0.1, 4e-6, total_delta=1e-5)
    assert _spends(at) == 2


def test_p3_10_a_release_reports_what_the_budget_is_charged(at: Runtime) -> None:
    spec = NoiseSpec("gaussian", 0.5, 1e-6, max_contributions=1)
    noised = noisy_counts([3, 9], spec)

    _spend(at, "visits", noised.epsilon, noised.delta, total_delta=1e-5)

    with at.factory() as session:
        row = session.scalars(select(PrivacyBudgetSpend)).one()
    assert (row.recipient, row.release, row.release_version) == ("insee", "visits", 1)
    assert (row.epsilon, row.delta) == (noised.epsilon, noised.delta)


def test_p3_10_a_spend_needs_a_positive_epsilon(at: Runtime) -> None:
    with pytest.raises(InvalidNoiseSpec):
        _spend(at, "visits", 0.0)
    assert _spends(at) == 0


def test_p3_10_two_releases_at_once_cannot_both_take_the_last_of_the_budget(
    fresh_settings: Settings, backend: str
) -> None:
    """A spend waits on the recipient's lock while another is being recorded, then sees it:
    of two releases of 0.6 against a budget of 1.0, one is refused."""
    if backend != "postgresql":
        return  # SQLite has one writer at a time already
    prepare(fresh_settings).dispose()
    runtime = open_runtime(
        fresh_settings, clock=FrozenClock(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))
    )
    other = make_engine(fresh_settings.db_url)
    outcome: list[object] = []

    def second() -> None:
        try:
            _spend(runtime, "signups", 0.6)
            outcome.append("spent")
        except Exception as exc:
            outcome.append(exc)

    try:
        with runtime.factory() as session, other.connect() as conn:
            first = session.begin()
            PrivacyBudget(session, runtime.clock).spend(
                "insee", "visits", 1, 0.6, 0.0, total_epsilon=1.0, total_delta=0.0, period=MONTH
            )
            racer = threading.Thread(target=second)
            racer.start()
            wait_for_advisory_lock_waiter(conn, "the second release")
            first.commit()
        racer.join(timeout=60)
        [refused] = outcome
        assert isinstance(refused, BudgetExhausted), refused
        assert _spends(runtime) == 1
    finally:
        other.dispose()
        runtime.close()
