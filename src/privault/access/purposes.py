"""Purpose-bound reads (P3.x): reading personal data names a purpose, and the policy decides
whether that purpose may use the data's category (its table's, from the data map).

A decision is made once per (purpose, table) and remembered, so the check on a hot path
(an export opens thousands of values) is one dictionary look-up. Refusals land in the
hash-chained access log, never with the data.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.access.errors import PurposeNotAllowed
from privault.policy.model import Policy
from privault.vault.datamap import category_of


class Purposes:
    """The policy's answer to "may this purpose read that table?", for the vault."""

    def __init__(self, policy: Policy, audit: AuditLog) -> None:
        self.policy = policy
        self.audit = audit
        self._allowed: dict[tuple[str, str], bool] = {}

    def require(self, session: Session, subject_id: str | None, table: str, purpose: str) -> None:
        """Pass when the policy lets ``purpose`` use the category of ``table``'s data; else log
        the refusal (in ``session``) and raise ``PurposeNotAllowed``. ``LookupError`` for a
        table that holds no personal data of a known category."""
        allowed = self._allowed.get((purpose, table))
        if allowed is None:
            allowed = self._allowed[purpose, table] = self.policy.purpose_allows(
                purpose, category_of(table)
            )
        if allowed:
            return
        category = category_of(table)
        self.audit.record(
            session,
            "vault",
            Event.PURPOSE_REFUSED,
            actor="system",
            subject_id=subject_id,
            categories=[category],
            purpose=purpose,
            detail={"table": table},
        )
        raise PurposeNotAllowed(refusal(self.policy, purpose, [category]))


def refusal(policy: Policy, purpose: str, categories: Iterable[str]) -> str:
    """The sentence of a refusal: the purpose and the categories, never the data."""
    if purpose not in policy.purposes:
        return f"the policy declares no purpose {purpose!r}"
    return f"the policy does not let the purpose {purpose} use {', '.join(sorted(categories))} data"
