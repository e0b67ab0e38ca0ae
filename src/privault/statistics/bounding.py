"""Each person's contribution to a differentially private release, bounded before the
cells are summed: what makes the noise's sensitivity hold.

A release with ``dp`` reads one row per person and cell (``Contribution``: the person's
measures in that cell, aggregated by the database). ``bounded`` then keeps, for each
person, at most ``max_contributions`` of their cells, the first ones in key order (so
the earliest months, then the dimensions alphabetically): a rule that looks at that
person's own rows only, so adding or removing anyone else changes nothing about which
of a person's cells count. Each kept measure with bounds is clamped to them
(``dp.clamp``); a measure without bounds counts the people of the cell. A cell's people
are the persons kept in it, its measures the sums of their clamped values. So one
person changes each people count by at most 1 in at most ``max_contributions`` cells,
and each summed measure by at most ``max(|lo|, |hi|)`` in as many cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from privault.statistics.dp import clamp
from privault.statistics.suppression import Cell, Key


@dataclass(frozen=True)
class Contribution:
    """One person's measures in one cell (in the release's order of measures)."""

    subject: str
    key: Key
    values: tuple[float, ...]


def bounded(
    rows: Iterable[Contribution],
    measures: Sequence[str],
    max_contributions: int,
    bounds: Mapping[str, tuple[float, float]],
    domain: Sequence[Key] | None = None,
) -> list[Cell]:
    """The cells of ``rows`` with each person's contribution bounded (see the module).

    With ``domain`` (what a release publishes), the cells are exactly those keys, in that
    order, a cell nobody is in counting 0, and rows of any other key are dropped before
    bounding (they use up none of a person's cells). Without it, the cells are those
    somebody is in: which cells exist then depends on the data, so a noisy release must
    pass its domain."""
    allowed = None if domain is None else frozenset(domain)
    by_person: defaultdict[str, list[Contribution]] = defaultdict(list)
    for row in rows:
        if allowed is None or row.key in allowed:
            by_person[row.subject].append(row)
    people: defaultdict[Key, int] = defaultdict(int)
    sums: defaultdict[Key, list[float]] = defaultdict(lambda: [0.0] * len(measures))
    for own in by_person.values():
        for row in sorted(own, key=lambda r: r.key)[:max_contributions]:
            people[row.key] += 1
            total = sums[row.key]
            for n, (measure, value) in enumerate(zip(measures, row.values, strict=True)):
                if measure in bounds:
                    total[n] += clamp(value, bounds[measure])
    return [
        Cell(
            key,
            count,
            tuple(
                sums[key][n] if measure in bounds else float(count)
                for n, measure in enumerate(measures)
            ),
        )
        for key, count in (
            sorted(people.items()) if domain is None else ((k, people[k]) for k in domain)
        )
    ]
