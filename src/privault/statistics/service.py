"""Running a release of statistics for a third party (P3.10): the query, small-cell
suppression, the optional noise, the output, and its line in the disclosure register.

A release goes only to a recipient of kind statistics in the policy file, only when the
policy enables it, and only when every category it reads is one the statistics purpose
may use. Whoever approves it (a staff member, or the operator on the server) is in the
register with the release's name, version, parameters, the privacy budget it spent and
the SHA-256 of exactly the text handed over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.db import new_id
from privault.disclosure.models import StatisticsRelease
from privault.disclosure.service import APPROVING_PURPOSE
from privault.policy.model import Policy, Recipient, RecipientKind
from privault.staff.service import Staff, StaffService
from privault.statistics.bounding import bounded
from privault.statistics.errors import (
    CategoryNotForStatistics,
    InvalidRelease,
    NotStatisticsRecipient,
    ReleaseDisabled,
    UnknownRelease,
)
from privault.statistics.output import Format, render, rows
from privault.statistics.privacy import privacy_layer
from privault.statistics.releases import PURPOSE, RELEASES, Release, Source, window
from privault.statistics.suppression import suppressed
from privault.vault import Vault

OPERATOR = "operator"


@dataclass(frozen=True)
class Published:
    """A release as handed over, and its register entry."""

    id: str
    release: str
    version: int
    recipient: str
    text: str
    sha256: str
    cells: int
    suppressed: int


@dataclass(frozen=True)
class ReleaseEntry:
    """A release's line in the register."""

    id: str
    recipient_id: str
    release: str
    version: int
    parameters: str
    epsilon: float
    delta: float
    output_format: str
    output_sha256: str
    approved_by: str
    created_at: datetime


@dataclass(frozen=True)
class Budget:
    """A recipient's privacy budget for a period, and what is left of it now."""

    recipient: str
    epsilon: float
    delta: float
    period: str
    remaining_epsilon: float
    remaining_delta: float
    spent_epsilon: float
    spent_delta: float


class StatisticsService:
    def __init__(
        self,
        session: Session,
        policy: Policy,
        clock: Clock,
        vault: Vault,
        audit: AuditLog,
        staff: StaffService,
        source: str = "cli",
    ) -> None:
        self.session = session
        self.policy = policy
        self.clock = clock
        self.vault = vault
        self.audit = audit
        self.staff = staff
        self.source = source

    def release(
        self,
        name: str,
        recipient_id: str,
        *,
        approver: Staff | None = None,
        output_format: Format | str = Format.CSV,
    ) -> Published:
        """Run the release ``name`` for ``recipient_id`` and record it in the register.

        Raises ``UnknownRelease``, ``InvalidRelease`` (the format), ``NotStatisticsRecipient``,
        ``ReleaseDisabled``, ``CategoryNotForStatistics``, ``PurposeRefused`` (the approver's
        role does not hold the purpose disclosures fall under), and ``BudgetExhausted``
        (a ``dp`` release the recipient's privacy budget cannot pay for; nothing is spent,
        published or recorded).
        """
        release = self._release(name)
        kind = _format(output_format)
        recipient = self._recipient(recipient_id)
        rules = self.policy.statistics
        if not rules.enabled(name):
            raise ReleaseDisabled(f"the policy file does not enable the release {name}")
        refused = [c for c in release.categories if not self.policy.purpose_allows(PURPOSE, c)]
        if refused:
            raise CategoryNotForStatistics(
                f"the release {name} reads {', '.join(refused)}, which the policy's "
                f"{PURPOSE} purpose may not use"
            )
        if approver is not None:
            # Approving reads no one's data; it answers for the release, as for a disclosure.
            self.staff.require(approver, APPROVING_PURPOSE, categories=release.categories)
        noise = rules.noise_for(name)
        now = self.clock.now()
        source = Source(self.session, self.vault, now)
        epsilon = delta = 0.0
        dp: dict[str, object] | None = None
        if noise is None:
            cells = release.query(source)
        else:
            # The policy refuses dp without a budget; noise before suppression, which then
            # only post-processes the noisy counts.
            assert rules.budget is not None
            source = dataclasses.replace(source, months=window(now, noise.months))
            bounded_cells = bounded(
                release.contributions(source),
                release.measures,
                noise.max_contributions,
                noise.bounds,
                release.domain(source),
            )
            noised = privacy_layer(self.session, self.clock).noise(
                recipient.id,
                name,
                release.version,
                bounded_cells,
                release.measures,
                noise,
                rules.budget,
            )
            cells, epsilon, delta = noised.cells, noised.epsilon, noised.delta
            dp = {
                **noise.model_dump(mode="json"),
                "scales": noised.scales,
                "contributions": "each person counts in at most max_contributions cells, "
                "their first in key order, with each summed measure clamped to its bounds",
                "composition": "epsilon and delta split evenly over the people counts and "
                "each summed measure; the spent loss is their sum as OpenDP reports it",
                "cells": "fixed before reading the data: every month of the window, every "
                "dial-in country (ZZ: unknown), age band, kind and currency",
                "window": [source.months[0], source.months[-1]] if source.months else None,
            }
        k = rules.k_for(name)
        hidden = suppressed(cells, k)
        parameters = {
            "k": k,
            "suppression": "cells counting fewer than k distinct people, and complementary "
            "cells so that none can be worked out from row or column totals",
            "differential_privacy": dp,
            "epsilon_spent": epsilon,
            "delta_spent": delta,
        }
        header = {
            "release": release.name,
            "version": release.version,
            "title": release.title,
            "recipient": recipient.id,
            "generated_at": now.isoformat(timespec="seconds"),
            "method": release.method,
            "parameters": parameters,
        }
        table = rows(cells, hidden)
        text = render(release, header, table, kind)
        digest = hashlib.sha256(text.encode()).hexdigest()
        actor = approver.actor if approver is not None else OPERATOR
        row = StatisticsRelease(
            id=new_id(),
            recipient_id=recipient.id,
            recipient_name=recipient.name,
            release=release.name,
            version=release.version,
            parameters=json.dumps(parameters, sort_keys=True, separators=(",", ":")),
            epsilon=epsilon,
            delta=delta,
            output_format=kind.value,
            output_sha256=digest,
            approved_by=actor,
            created_at=now,
        )
        self.session.add(row)
        self.audit.record(
            self.session,
            self.source,
            Event.STATISTICS_RELEASED,
            actor=actor,
            categories=release.categories,
            purpose=PURPOSE,
            detail={"release": row.id, "recipient": recipient.id, "name": release.name},
        )
        self.session.flush()
        return Published(
            row.id,
            release.name,
            release.version,
            recipient.id,
            text,
            digest,
            len(cells),
            len(hidden),
        )

    def releases(self, recipient: str | None = None) -> list[ReleaseEntry]:
        """The releases in the register, oldest first (all, or those to ``recipient``)."""
        query = select(StatisticsRelease).order_by(
            StatisticsRelease.created_at, StatisticsRelease.id
        )
        if recipient is not None:
            query = query.where(StatisticsRelease.recipient_id == recipient)
        return [
            ReleaseEntry(
                r.id,
                r.recipient_id,
                r.release,
                r.version,
                r.parameters,
                r.epsilon,
                r.delta,
                r.output_format,
                r.output_sha256,
                r.approved_by,
                aware(r.created_at),
            )
            for r in self.session.scalars(query)
        ]

    def budget(self, recipient_id: str) -> Budget:
        """The recipient's privacy budget per period and what is left of it. Raises
        ``NotStatisticsRecipient``, ``InvalidRelease`` (the policy sets no budget)."""
        recipient = self._recipient(recipient_id)
        budget = self.policy.statistics.budget
        if budget is None:
            raise InvalidRelease("the policy file sets no privacy budget ([statistics.budget])")
        layer = privacy_layer(self.session, self.clock)
        left = layer.remaining(recipient.id, budget)
        spent = layer.spent(recipient.id, budget)
        return Budget(recipient.id, budget.epsilon, budget.delta, str(budget.period), *left, *spent)

    def _release(self, name: str) -> Release:
        release = RELEASES.get(name)
        if release is None:
            raise UnknownRelease(
                f"there is no release {name!r}: one of {', '.join(RELEASES)}"
                if name.isidentifier()
                else f"there is no such release: one of {', '.join(RELEASES)}"
            )
        return release

    def _recipient(self, recipient_id: str) -> Recipient:
        recipient = next((r for r in self.policy.recipients if r.id == recipient_id), None)
        if recipient is None:
            raise NotStatisticsRecipient(
                "the recipient is not in the policy file; statistics go only to recipients "
                "of kind statistics"
            )
        if recipient.kind is not RecipientKind.STATISTICS:
            raise NotStatisticsRecipient(
                f"{recipient.id} is a recipient of kind {recipient.kind}, not statistics: "
                "it receives no statistics release"
            )
        return recipient


def _format(value: Format | str) -> Format:
    try:
        return Format(value)
    except ValueError:
        raise InvalidRelease("the format must be csv or json") from None
