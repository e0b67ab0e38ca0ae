"""Small-cell suppression (P3.10) on tables built by hand: no published cell below k, and
no suppressed cell recoverable from the totals of its row or column."""

from __future__ import annotations

from privault.statistics.suppression import Cell, suppressed


def _recoverable(cells: list[Cell], hidden: frozenset[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Hidden cells alone in their row or column: known totals would give them away."""
    lines: dict[tuple[str, tuple[str, ...]], list[Cell]] = {}
    for cell in cells:
        lines.setdefault(("row", cell.key[:1]), []).append(cell)
        lines.setdefault(("column", cell.key[1:]), []).append(cell)
    alone = []
    for line in lines.values():
        inside = [cell.key for cell in line if cell.key in hidden]
        if len(line) > 1 and len(inside) == 1:
            alone.extend(inside)
    return alone


def test_p3_10_no_published_cell_counts_fewer_than_k() -> None:
    cells = [Cell((m, c), n, (n * 3,)) for m, c, n in [("01", "FR", 40), ("01", "DE", 9)]]
    hidden = suppressed(cells, 10)
    assert all(cell.people >= 10 for cell in cells if cell.key not in hidden)


def test_p3_10_complementary_suppression_hides_a_second_cell_in_each_line() -> None:
    # Month 01: FR 40, DE 3 (below k), IT 25; month 02: FR 30, DE 20, IT 12.
    # With DE 3 the only hidden cell, month 01's total minus FR and IT gives it back.
    counts = {("01", "FR"): 40, ("01", "DE"): 3, ("01", "IT"): 25}
    counts |= {("02", "FR"): 30, ("02", "DE"): 20, ("02", "IT"): 12}
    cells = [Cell(key, n, (float(n),)) for key, n in counts.items()]
    hidden = suppressed(cells, 10)
    assert ("01", "DE") in hidden
    assert len(hidden) >= 2
    assert _recoverable(cells, hidden) == []
    assert all(cell.people >= 10 for cell in cells if cell.key not in hidden)


def test_p3_10_a_table_of_one_dimension_hides_two_cells_or_none() -> None:
    cells = [Cell((m,), n, (n,)) for m, n in [("01", 50), ("02", 4), ("03", 30), ("04", 11)]]
    hidden = suppressed(cells, 10)
    assert hidden == {("02",), ("04",)}
    assert suppressed(cells[:1] + cells[2:], 10) == frozenset()


def test_complements_that_unbalance_another_line_are_followed_up() -> None:
    # A chain: hiding (a, x) forces a second cell in row a and column x, and those force more.
    counts = {("a", "x"): 2, ("a", "y"): 11, ("a", "z"): 50}
    counts |= {("b", "x"): 12, ("b", "y"): 60, ("b", "z"): 70}
    counts |= {("c", "x"): 80, ("c", "y"): 13, ("c", "z"): 90}
    cells = [Cell(key, n, (n,)) for key, n in counts.items()]
    hidden = suppressed(cells, 10)
    assert _recoverable(cells, hidden) == []
