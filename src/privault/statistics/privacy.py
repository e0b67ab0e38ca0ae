"""The differential-privacy layer as a release sees it (``privault.statistics.dp``).

``privacy_layer`` is the one place the release asks for it: it answers ``None`` while this
build has no such layer, and a release the policy gives ``dp`` is then refused
("differential privacy is not available"). Merging the layer swaps that function's body
for an adapter over ``dp.noisy_counts``/``dp.noisy_sums`` and ``dp.PrivacyBudget``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from privault.clock import Clock
from privault.policy.model import Noise, PrivacyBudget
from privault.statistics.suppression import Cell


@dataclass(frozen=True)
class Noised:
    """The published cells with noise added, and what adding it spent."""

    cells: list[Cell]
    epsilon: float
    delta: float
    #: The noise scale the mechanism reports, stated in the output's header.
    scale: float


class PrivacyLayer(Protocol):
    def noise(
        self,
        recipient: str,
        release: str,
        version: int,
        cells: Sequence[Cell],
        spec: Noise,
        budget: PrivacyBudget,
    ) -> Noised:
        """Noise on every count and sum of ``cells``, spending ``spec`` from the recipient's
        budget; raises ``BudgetExhausted`` (and spends nothing) when it would run out."""
        ...

    def remaining(self, recipient: str, budget: PrivacyBudget) -> tuple[float, float]:
        """The (epsilon, delta) the recipient has left in the current period."""
        ...


def privacy_layer(session: Session, clock: Clock) -> PrivacyLayer | None:
    """The differential-privacy layer, or ``None`` where there is none."""
    return None
