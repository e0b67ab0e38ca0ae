"""Small-cell suppression (P3.10): no published cell counts fewer than k people, and no
suppressed cell can be worked out from the totals of its row or its column.

A table's cells are keyed by their dimensions: the first is the row, the rest the column
(a table of one dimension is a single row). Primary suppression hides each cell counting
fewer than ``k`` distinct people. A row or column that then hides exactly one of its
cells would give it away to anyone who knows the line's total (from another release, or
a published figure), so complementary suppression hides a second cell there, the one
counting fewest people, and repeats until no line hides exactly one cell. A line of one
cell has no other cell to hide; its total counts the same people as the cell, and so is
below k itself wherever it is released.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

Key = tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    """One cell of an aggregate: the distinct people it counts and its measures."""

    key: Key
    people: int
    values: tuple[float, ...]


def suppressed(cells: Sequence[Cell], k: int) -> frozenset[Key]:
    """The keys of the cells to hide: those counting fewer than ``k`` people, and their
    complements, so that every row and column hides none or at least two cells."""
    hidden = {cell.key for cell in cells if cell.people < k}
    lines = _lines(cells)
    changed = bool(hidden)
    while changed:
        changed = False
        for line in lines:
            if len(line) < 2 or sum(cell.key in hidden for cell in line) != 1:
                continue
            shown = [cell for cell in line if cell.key not in hidden]
            hidden.add(min(shown, key=lambda c: (c.people, c.values, c.key)).key)
            changed = True
    return frozenset(hidden)


def _lines(cells: Sequence[Cell]) -> list[list[Cell]]:
    rows: defaultdict[Key, list[Cell]] = defaultdict(list)
    columns: defaultdict[Key, list[Cell]] = defaultdict(list)
    for cell in cells:
        if len(cell.key) == 1:
            rows[()].append(cell)
        else:
            rows[cell.key[:1]].append(cell)
            columns[cell.key[1:]].append(cell)
    return [*rows.values(), *columns.values()]
