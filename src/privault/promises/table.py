"""The promise table (`docs/promises.md`): each promise's ID, what the policy says and what
the system must do.

The file ships inside the package as ``privault/promises/promises.md`` (a wheel's
force-include), so an installed ``privault`` reads its own copy; a checkout (and an editable
install) reads ``docs/promises.md`` itself, so the document and the command never differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

REPO_TABLE = Path(__file__).resolve().parents[3] / "docs" / "promises.md"

#: One promise ID: ``P8.1``, or ``P3.x`` for the row that covers every use.
_ID = re.compile(r"P(\d+)\.(\d+|x)")
#: A row that covers a range: ``P4.2-P4.5`` (the table has an en dash).
_RANGE = re.compile(r"P(\d+)\.(\d+)\s*[\u2013-]\s*P(\d+)\.(\d+)")


class PromiseTableInvalid(ValueError):
    """The promise table cannot be read."""


@dataclass(frozen=True)
class Promise:
    id: str
    says: str
    must: str
    #: The IDs a test may name for this row (a range row has one per clause).
    members: tuple[str, ...]


def _members(cell: str) -> tuple[str, ...]:
    ranged = _RANGE.fullmatch(cell)
    if ranged:
        section, first, end_section, last = ranged.groups()
        if section != end_section or int(first) > int(last):
            raise PromiseTableInvalid(f"the promise range {cell!r} is not one section's")
        return tuple(f"P{section}.{n}" for n in range(int(first), int(last) + 1))
    if _ID.fullmatch(cell):
        return (cell,)
    raise PromiseTableInvalid(f"{cell!r} is not a promise ID (P8.1, P3.x or P4.2-P4.5)")


def parse_table(text: str) -> tuple[Promise, ...]:
    """The rows of the Markdown table whose first cell is a promise ID, in order."""
    promises: list[Promise] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("P"):
            continue
        promises.append(Promise(cells[0], cells[1], cells[2], _members(cells[0])))
    if not promises:
        raise PromiseTableInvalid("the promise table has no rows")
    seen: set[str] = set()
    for promise in promises:
        if seen & set(promise.members):
            raise PromiseTableInvalid(f"promise {promise.id} is in the table twice")
        seen.update(promise.members)
    return tuple(promises)


def table_text() -> str:
    """The text of the promise table: the package's copy, else the checkout's."""
    packaged = resources.files("privault.promises") / "promises.md"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    try:
        return REPO_TABLE.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromiseTableInvalid(f"cannot read {REPO_TABLE}: {exc.strerror}") from None


def load_table() -> tuple[Promise, ...]:
    return parse_table(table_text())
