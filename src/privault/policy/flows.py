"""Where personal data goes, as the policy file says it: each category to the purposes that
may use it, each purpose to the recipients declared for it, each recipient to its country.
The staff console draws it (the data map as a picture) and lists the same edges as text."""

from __future__ import annotations

from dataclasses import dataclass

from privault.policy.model import Policy
from privault.policy.wording import country_name


@dataclass(frozen=True)
class Node:
    id: str
    label: str


@dataclass(frozen=True)
class Flows:
    #: The four columns, left to right: categories, purposes, recipients, countries.
    columns: tuple[tuple[Node, ...], ...]
    #: For each pair of neighbouring columns, the edges ``(from id, to id)`` between them.
    edges: tuple[tuple[tuple[str, str], ...], ...]

    def label(self, column: int, node_id: str) -> str:
        return next(n.label for n in self.columns[column] if n.id == node_id)


COLUMNS = ("Categories", "Purposes", "Recipients", "Countries")


def flows(policy: Policy) -> Flows:
    """The policy's data flows, in the policy file's order. Only purposes that use a
    category, recipients declared for one of them and their countries are drawn."""
    uses = [(c, p) for p, purpose in policy.purposes.items() for c in purpose.categories]
    used = {p for _, p in uses}
    shares = [(p, r.id) for r in policy.recipients for p in r.purposes if p in used]
    receiving = {r for _, r in shares}
    recipients = [r for r in policy.recipients if r.id in receiving]
    located = [(r.id, r.country) for r in recipients]
    countries = list(dict.fromkeys(r.country for r in recipients))
    order = {c: i for i, c in enumerate(policy.categories)}
    return Flows(
        columns=(
            tuple(Node(c, entry.title) for c, entry in policy.categories.items()),
            tuple(Node(p, entry.title) for p, entry in policy.purposes.items() if p in used),
            tuple(Node(r.id, r.name) for r in recipients),
            tuple(Node(code, country_name(code)) for code in countries),
        ),
        edges=(
            tuple(sorted(uses, key=lambda edge: order[edge[0]])),
            tuple(shares),
            tuple(located),
        ),
    )
