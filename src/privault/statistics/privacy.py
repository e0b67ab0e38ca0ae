"""The differential-privacy layer as a release sees it: an adapter over ``dp.py``.

The release hands it cells whose people and measures were summed from each person's
bounded contribution (``bounding.bounded``). The layer adds noise to the people counts
(``dp.noisy_counts``, sensitivity ``max_contributions``) and to each summed measure
(``dp.noisy_sums`` with that measure's bounds). The release's ``epsilon`` and ``delta``
from the policy are split evenly between these noisy queries; the loss the release spends
is the sum of what OpenDP's privacy maps report for them (basic composition), taken from
the recipient's budget in the release's transaction (``dp.PrivacyBudget.spend``): when it
would run out, ``BudgetExhausted`` is raised and nothing is published or recorded. The
noisy values are then rounded and kept at 0 or above (post-processing, which costs no
privacy); a measure that counts people gets the noisy people count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from privault.clock import Clock
from privault.policy.model import Noise, PrivacyBudget
from privault.statistics import dp
from privault.statistics.suppression import Cell

PEOPLE = "people"


@dataclass(frozen=True)
class Noised:
    """The cells with noise added, and what adding it spent."""

    cells: list[Cell]
    epsilon: float
    delta: float
    #: The noise scale OpenDP reports for the people counts (``people``) and for each
    #: summed measure, stated in the output's header.
    scales: dict[str, float]


class PrivacyLayer:
    """Noise and the budget ledger of one release's transaction."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self.ledger = dp.PrivacyBudget(session, clock)

    def noise(
        self,
        recipient: str,
        release: str,
        version: int,
        cells: Sequence[Cell],
        measures: Sequence[str],
        spec: Noise,
        budget: PrivacyBudget,
    ) -> Noised:
        """Noise on every count and sum of ``cells`` (values named by ``measures``),
        spending ``spec`` from the recipient's budget; raises ``BudgetExhausted`` (and
        spends nothing) when it would run out."""
        summed = [(n, m) for n, m in enumerate(measures) if m in spec.bounds]
        queries = 1 + len(summed)
        part = dp.NoiseSpec(
            spec.mechanism.value,
            spec.epsilon / queries,
            spec.delta / queries,
            spec.max_contributions,
        )
        noised = {PEOPLE: dp.noisy_counts([cell.people for cell in cells], part)}
        for n, measure in summed:
            values = [cell.values[n] for cell in cells]
            noised[measure] = dp.noisy_sums(values, part, spec.bounds[measure])
        epsilon = sum(result.epsilon for result in noised.values())
        delta = sum(result.delta for result in noised.values())
        self.ledger.spend(
            recipient,
            release,
            version,
            epsilon,
            delta,
            budget.epsilon,
            budget.delta,
            budget.period,
        )
        shown = {name: [_published(v) for v in result.values] for name, result in noised.items()}
        out = [
            Cell(
                cell.key,
                shown[PEOPLE][i],
                tuple(shown.get(m, shown[PEOPLE])[i] for m in measures),
            )
            for i, cell in enumerate(cells)
        ]
        scales = {name: result.scale for name, result in noised.items()}
        return Noised(out, epsilon, delta, scales)

    def remaining(self, recipient: str, budget: PrivacyBudget) -> tuple[float, float]:
        """The (epsilon, delta) the recipient has left in the current period."""
        return self.ledger.remaining(recipient, budget.epsilon, budget.delta, budget.period)

    def spent(self, recipient: str, budget: PrivacyBudget) -> tuple[float, float]:
        """The (epsilon, delta) spent on the recipient in the current period."""
        return self.ledger.spent(recipient, budget.period)


def _published(value: float) -> int:
    """A noisy value as published: rounded, and never below 0."""
    return max(round(value), 0)


def privacy_layer(session: Session, clock: Clock) -> PrivacyLayer:
    """The differential-privacy layer of the release's transaction."""
    return PrivacyLayer(session, clock)
