"""What the service holds about a person, category by category, for their privacy centre.

The access export's reading (``Exporter``), cut short: each table of the data map is read
once for the person, its rows counted and only a few of them opened as samples, and beside
each category what the export says of it (why, how long, who may receive it) and the
disclosures that covered it. Read with the export's purpose and shown to the person alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from privault.clock import Clock
from privault.disclosure.service import Received, recipients_of
from privault.policy.model import LegalBasis, Policy
from privault.policy.wording import LEGAL_BASES, anchor_words, country_name, label, period_words
from privault.rights.export import Exporter
from privault.vault import Vault
from privault.vault.datamap import tables

#: Rows opened per category to show what its data looks like.
SAMPLES = 3
#: Longest text of a sample's value before it is cut.
SHOWN = 60
#: A picture kept as a data URL reads as this in a sample.
PICTURE = "(a picture)"


@dataclass(frozen=True)
class Purpose:
    title: str
    legal_basis: str


@dataclass(frozen=True)
class Held:
    """One category the person has data in, as the privacy centre shows it."""

    id: str
    title: str
    description: str
    count: int
    #: A few rows, each as (field, value as text) pairs.
    samples: tuple[tuple[tuple[str, str], ...], ...]
    purposes: tuple[Purpose, ...]
    kept_for: str
    counted_from: str
    reason: str
    #: What the law makes us keep after an erasure, and why; ``None`` when nothing.
    obligation: str | None
    #: The recipients the policy names for the category's purposes, with their country.
    recipients: tuple[str, ...]
    #: The disclosures that covered this category of the person's data, in words.
    received: tuple[str, ...]


def shortened(value: Any) -> str:
    """A stored value as a line of text: a picture named, a list joined, long text cut."""
    if isinstance(value, str) and value.startswith("data:image/"):
        return PICTURE
    if isinstance(value, list):
        text = ", ".join(shortened(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


class Holdings:
    """Reads one person's data across the data map, a few rows per category."""

    def __init__(self, session: Session, vault: Vault, policy: Policy, clock: Clock) -> None:
        self.session = session
        self.policy = policy
        self.exporter = Exporter(session, vault, policy, clock)

    def of(self, subject_id: str, samples: int = SAMPLES) -> list[Held]:
        """Every category of the policy that holds data for the person, in the policy's
        order: how many records, ``samples`` of them opened, and the policy's why, how long
        and who. One query per table of the data map, one for the disclosures. Raises
        ``SubjectKeyMissing`` for an erased person."""
        counts: dict[str, int] = {}
        rows: dict[str, list[tuple[tuple[str, str], ...]]] = {}
        # A category's tables with sealed values first: their rows say the most (the
        # address, not the expiry of a login).
        ordered = sorted(tables(), key=lambda e: not set(e.encrypted) & set(e.exported))
        for entry in ordered:
            if not entry.in_export:
                continue
            wanted = max(samples - len(rows.get(entry.category, [])), 0)
            fields, ids, opened = self.exporter.table_rows(entry, subject_id, opened=wanted)
            if not ids:
                continue
            counts[entry.category] = counts.get(entry.category, 0) + len(ids)
            shown = rows.setdefault(entry.category, [])
            for row in opened:
                pairs = zip(fields, row, strict=True)
                shown.append(
                    tuple((f, shortened(v)) for f, v in pairs if v is not None and f != "id")
                )
        received = recipients_of(self.session, subject_id)
        return [
            self._held(category_id, counts[category_id], rows[category_id], received)
            for category_id in self.policy.categories
            if category_id in counts
        ]

    def _held(
        self,
        category_id: str,
        count: int,
        samples: list[tuple[tuple[str, str], ...]],
        received: list[Received],
    ) -> Held:
        described = self.exporter.category(category_id, [])
        retention = self.policy.category(category_id).retention
        return Held(
            id=category_id,
            title=described["title"],
            description=described["description"],
            count=count,
            samples=tuple(samples),
            purposes=tuple(
                Purpose(p["title"], label(LEGAL_BASES, LegalBasis(p["legal_basis"])))
                for p in described["purposes"]
            ),
            kept_for=period_words(retention),
            counted_from=anchor_words(retention),
            reason=retention.reason,
            obligation=retention.obligation,
            recipients=tuple(
                f"{r['name']} ({country_name(r['country'])})" for r in described["recipients"]
            ),
            received=tuple(
                self.exporter.disclosure(r)["text"] for r in received if category_id in r.categories
            ),
        )
