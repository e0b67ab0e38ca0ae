"""Differential privacy for statistics releases (issue 9), with OpenDP's own mechanisms.

A release's counts or sums get Laplace noise (pure epsilon-DP) or Gaussian noise
((epsilon, delta)-DP, through zero-concentrated DP) calibrated to how much one person can
change them. Each person's contribution is bounded before it reaches this module: at most
``max_contributions`` rows across all the cells of a release (the caller clamps), and for
sums each row clamped to ``bounds`` (``clamp`` below). So the L1 (and L2) sensitivity of a
count vector is ``max_contributions``, and of a sum vector ``max_contributions * max(|lo|,
|hi|)``.

What a release reports (``Noised``) is what OpenDP did: ``scale`` is the scale of the
measurement that drew the noise, and ``epsilon``/``delta`` are its privacy map evaluated at
the sensitivity, never copied from the request (they are at most the request: OpenDP
rounds conservatively, and we widen the scale by the last bits if its map is over).

``PrivacyBudget`` is the ledger: a recipient may receive at most ``total_epsilon`` (and
``total_delta``) of privacy loss in any window of ``period`` (a sliding window ending now,
not calendar periods); ``spend`` checks and records under a lock per recipient, so two
releases at once cannot both take the last of the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import opendp.prelude as dp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from privault.clock import Clock
from privault.db import advisory_lock, new_id
from privault.errors import Conflict, InvalidInput
from privault.policy.types import Duration
from privault.statistics.budget import PrivacyBudgetSpend

# OpenDP gates its mechanisms that are not yet formally vetted behind "contrib".
dp.enable_features("contrib")

MECHANISMS = ("laplace", "gaussian")
#: Sums of floats: spends of 0.1 ten times make 0.9999999999999999, of 0.1 and 0.2 make
#: 0.30000000000000004. A budget is exhausted only beyond this relative slack.
_SLACK = 1e-9


class InvalidNoiseSpec(InvalidInput, ValueError):
    """A noise specification no mechanism can honour (a ValueError too, for policy loading)."""

    code = "invalid_noise_spec"


class BudgetExhausted(Conflict):
    """The recipient's privacy budget for the period cannot pay for this release."""

    code = "privacy_budget_exhausted"


@dataclass(frozen=True)
class NoiseSpec:
    mechanism: str  # "laplace" | "gaussian"
    epsilon: float
    delta: float = 0.0  # > 0 for gaussian
    max_contributions: int = 1  # rows one person may add to a count (clamped before counting)

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise InvalidNoiseSpec(
                f"the mechanism must be laplace or gaussian, not {self.mechanism!r}."
            )
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise InvalidNoiseSpec("epsilon must be a finite number greater than 0.")
        if self.mechanism == "gaussian":
            if not (0 < self.delta < 1):
                raise InvalidNoiseSpec("the gaussian mechanism needs a delta between 0 and 1.")
        elif self.delta != 0:
            raise InvalidNoiseSpec("the laplace mechanism is pure epsilon: its delta must be 0.")
        if isinstance(self.max_contributions, bool) or not (
            isinstance(self.max_contributions, int) and self.max_contributions >= 1
        ):
            raise InvalidNoiseSpec("max_contributions must be a whole number of at least 1.")


@dataclass(frozen=True)
class Noised:
    """Noisy values and the privacy loss the mechanism's own map reports for them."""

    values: list[float]
    scale: float
    epsilon: float
    delta: float


def clamp(value: float, bounds: tuple[float, float]) -> float:
    """One row's value inside ``bounds``: what the caller applies before summing."""
    lo, hi = _checked_bounds(bounds)
    return min(max(float(value), lo), hi)


def noisy_counts(counts: Sequence[int], spec: NoiseSpec) -> Noised:
    """Counts with noise for a sensitivity of ``max_contributions`` (discrete noise on the
    integers: no floating-point leaks). The values are floats; rounding and clamping at 0
    are the caller's post-processing."""
    if any(isinstance(c, bool) or not isinstance(c, int) for c in counts):
        raise InvalidNoiseSpec("counts must be whole numbers.")
    return _release([int(c) for c in counts], spec, int, spec.max_contributions)


def noisy_sums(sums: Sequence[float], spec: NoiseSpec, bounds: tuple[float, float]) -> Noised:
    """Sums of rows each clamped to ``bounds`` (``clamp``), at most ``max_contributions``
    of them per person, with noise for a sensitivity of ``max_contributions * max(|lo|, |hi|)``.
    The guarantee holds only if the rows were clamped: a sum alone cannot show it."""
    lo, hi = _checked_bounds(bounds)
    values = [float(s) for s in sums]
    if not all(math.isfinite(v) for v in values):
        raise InvalidNoiseSpec("sums must be finite numbers.")
    sensitivity = spec.max_contributions * max(abs(lo), abs(hi))
    if sensitivity == 0:
        raise InvalidNoiseSpec("bounds of [0, 0] leave nothing to sum.")
    return _release(values, spec, float, float(sensitivity))


def _checked_bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise InvalidNoiseSpec("bounds must be two numbers, low then high.") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise InvalidNoiseSpec("bounds must be two finite numbers with low <= high.")
    return lo, hi


def measurement(spec: NoiseSpec, atom: type, scale: float) -> Any:
    """OpenDP's measurement for ``spec`` over vectors of ``atom`` at ``scale``: Laplace under
    the L1 distance (pure DP), Gaussian under the L2 distance with its zCDP loss converted to
    (epsilon, delta) at the spec's delta."""
    domain = dp.vector_domain(
        dp.atom_domain(T=atom, nan=False) if atom is float else dp.atom_domain(T=atom)
    )
    if spec.mechanism == "laplace":
        return dp.m.make_laplace(domain, dp.l1_distance(T=atom), scale=scale)
    gaussian = dp.m.make_gaussian(domain, dp.l2_distance(T=atom), scale=scale)
    return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(gaussian), delta=spec.delta)


def privacy_loss(
    spec: NoiseSpec, atom: type, scale: float, sensitivity: float
) -> tuple[float, float]:
    """The (epsilon, delta) the measurement's privacy map gives at ``sensitivity``."""
    loss = measurement(spec, atom, scale).map(sensitivity)
    if spec.mechanism == "laplace":
        return float(loss), 0.0
    epsilon, delta = loss
    return float(epsilon), float(delta)


def calibrate(spec: NoiseSpec, atom: type, sensitivity: float) -> float:
    """The smallest scale (up to OpenDP's search) whose privacy map at ``sensitivity`` is
    within the spec's (epsilon, delta)."""
    d_out: Any = spec.epsilon if spec.mechanism == "laplace" else (spec.epsilon, spec.delta)

    def make(scale: float) -> Any:
        return measurement(spec, atom, scale)

    if spec.mechanism == "laplace":
        # Laplace's map is sensitivity / scale, rounded up: start there, widen by the last bits.
        scale = sensitivity / spec.epsilon
        for _ in range(64):
            if make(scale).check(sensitivity, d_out):
                return scale
            scale = math.nextafter(scale, math.inf)
    # Search from a scale whose zCDP loss (sensitivity / scale)^2 / 2 = 312.5 is above any
    # a policy allows (epsilon <= 100) yet small enough for OpenDP's conversion to
    # (epsilon, delta) not to overflow, as it does from its default start on large
    # sensitivities (sums with wide bounds).
    bounds = (sensitivity / 25, sensitivity * 1e6)
    return float(dp.binary_search_param(make, d_in=sensitivity, d_out=d_out, bounds=bounds))


def _release(values: list[Any], spec: NoiseSpec, atom: type, sensitivity: float) -> Noised:
    scale = calibrate(spec, atom, sensitivity)
    draw: Callable[[list[Any]], list[Any]] = measurement(spec, atom, scale)
    epsilon, delta = privacy_loss(spec, atom, scale, sensitivity)
    noisy = draw(values) if values else []
    return Noised(values=[float(v) for v in noisy], scale=scale, epsilon=epsilon, delta=delta)


class PrivacyBudget:
    """Each recipient's privacy loss per sliding period: spent by releases, refused when out."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def spent(self, recipient: str, period: Duration) -> tuple[float, float]:
        """The (epsilon, delta) spent on ``recipient`` in the last ``period`` up to now."""
        since = period.subtract_from(self.clock.now())
        epsilon, delta = self.session.execute(
            select(
                func.coalesce(func.sum(PrivacyBudgetSpend.epsilon), 0.0),
                func.coalesce(func.sum(PrivacyBudgetSpend.delta), 0.0),
            ).where(PrivacyBudgetSpend.recipient == recipient, PrivacyBudgetSpend.spent_at > since)
        ).one()
        return float(epsilon), float(delta)

    def remaining(
        self, recipient: str, total_epsilon: float, total_delta: float, period: Duration
    ) -> tuple[float, float]:
        """What is left of the budget in the sliding window (never below 0)."""
        epsilon, delta = self.spent(recipient, period)
        return max(total_epsilon - epsilon, 0.0), max(total_delta - delta, 0.0)

    def spend(
        self,
        recipient: str,
        release: str,
        version: int,
        epsilon: float,
        delta: float,
        total_epsilon: float,
        total_delta: float,
        period: Duration,
    ) -> None:
        """Record a release's privacy loss, or raise ``BudgetExhausted`` and record nothing.

        Losses add up (basic composition): the window's spends plus this one must stay
        within the totals."""
        if not (math.isfinite(epsilon) and epsilon > 0 and math.isfinite(delta) and delta >= 0):
            raise InvalidNoiseSpec("a spend needs an epsilon above 0 and a delta of at least 0.")
        advisory_lock(self.session, f"privacy_budget:{recipient}")
        spent_epsilon, spent_delta = self.spent(recipient, period)
        over_epsilon = spent_epsilon + epsilon > total_epsilon * (1 + _SLACK)
        over_delta = spent_delta + delta > total_delta * (1 + _SLACK)
        if over_epsilon or over_delta:
            raise BudgetExhausted(
                f"the privacy budget of {recipient} for {period} is spent: this release needs "
                f"epsilon {epsilon:g}, delta {delta:g}; {max(total_epsilon - spent_epsilon, 0):g} "
                f"and {max(total_delta - spent_delta, 0):g} are left.",
                recipient=recipient,
            )
        self.session.add(
            PrivacyBudgetSpend(
                id=new_id(),
                recipient=recipient,
                release=release,
                release_version=version,
                epsilon=epsilon,
                delta=delta,
                spent_at=self.clock.now(),
            )
        )
        self.session.flush()
