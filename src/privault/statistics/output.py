"""A release as it is handed over: CSV or JSON, with a header stating the method and its
parameters. Suppressed cells are listed with no values, so their absence is not
mistaken for a zero."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Sequence
from enum import StrEnum
from typing import Any

from privault.statistics.releases import Release
from privault.statistics.suppression import Cell, Key

SUPPRESSED = "suppressed"


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"


def columns(release: Release) -> list[str]:
    return [*release.dimensions, "people", *release.measures, SUPPRESSED]


def rows(cells: Sequence[Cell], hidden: Collection[Key]) -> list[list[Any]]:
    """Every cell, sorted by its key: published ones with their values, the others empty."""
    out: list[list[Any]] = []
    for cell in sorted(cells, key=lambda c: c.key):
        if cell.key in hidden:
            out.append([*cell.key, None, *(None for _ in cell.values), True])
        else:
            out.append([*cell.key, cell.people, *cell.values, False])
    return out


def render(release: Release, header: dict[str, Any], table: list[list[Any]], kind: Format) -> str:
    if kind is Format.JSON:
        document = {**header, "columns": columns(release), "rows": table}
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    for name, value in header.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        buffer.write(f"# {name}: {shown}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns(release))
    for row in table:
        writer.writerow([_csv_value(v) for v in row])
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if value is True:
        return "yes"
    return "" if value is None or value is False else value
