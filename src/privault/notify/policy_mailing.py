"""The mail that tells every active account about a new policy version (P8.2).

One mail per active account (verified address, not closed, not erased) per version,
queued through the outbox a batch a transaction. The batch's mail and the mailing's
progress row (``PolicyMailing.after``) move together, and a batch is claimed by a
conditional update of that row, so a mailing cut short goes on where it stopped, and two
runs side by side never queue the same person twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.errors import Conflict
from privault.notify.models import PolicyMailing
from privault.notify.outbox import Outbox
from privault.policy.store import PolicyStore
from privault.service.models import Account

TEMPLATE = "policy_changed"
#: The policy's purpose for telling people about the service, and where their address is.
PURPOSE = "notices"
CATEGORY = "registration"
BATCH = 500

#: The registered address of an account, read for ``PURPOSE``; None when it has gone.
AddressOf = Callable[[Session, str], str | None]


class MailingRefused(Conflict):
    """The version's own policy does not let its notices purpose read the addresses."""

    code = "mailing_refused"


@dataclass(frozen=True)
class MailingReport:
    version: int
    #: Mail queued by this run, and by every run of this version so far.
    queued: int
    total: int
    #: Accounts of a batch whose address was gone by the time it was read.
    skipped: int


def active_accounts() -> Any:
    """Accounts that get notices: address verified, not closed (erased ones are gone)."""
    return select(Account.subject_id).where(
        Account.email_verified_at.is_not(None), Account.closed_at.is_(None)
    )


class PolicyMailingService:
    """Queues a version's notification mail, batch by batch, in transactions of its own."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        outbox: Outbox,
        address_of: AddressOf,
        audit: AuditLog,
        clock: Clock,
        base_url: str,
        source: str = "cli",
    ) -> None:
        self.factory = factory
        self.outbox = outbox
        self.address_of = address_of
        self.audit = audit
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.source = source

    def context(self, session: Session, version: int) -> dict[str, Any]:
        """What every mail of ``version`` says: the diff's sentences and verdict, the
        dates and the links. Raises ``PolicyVersionNotFound``, ``MailingRefused``."""
        store = PolicyStore(session, self.clock)
        row = store.get(version)
        policy = store.policy_of(version)
        if not policy.purpose_allows(PURPOSE, CATEGORY):
            raise MailingRefused(
                f"policy version {version} does not let the purpose {PURPOSE} use "
                f"{CATEGORY} data, where the addresses are"
            )
        changes = store.diff(version - 1, policy) if version > 1 else None
        effective = aware(row.effective_at)
        return {
            "site": policy.meta.name,
            "label": policy.meta.version,
            "version": version,
            "effective": f"{effective:%-d %B %Y}",
            "in_force": effective <= self.clock.now(),
            "changes": [c.text for c in changes.changes] if changes else [],
            "verdict": changes.verdict if changes else "",
            "needs_consent": bool(changes and changes.needs_consent),
            "url": f"{self.base_url}/privacy/v/{version}",
            "changes_url": (
                f"{self.base_url}/privacy/diff/{version - 1}/{version}" if changes else None
            ),
        }

    def remaining(self, version: int) -> int:
        """How many active accounts this version's mailing has still to reach."""
        with self.factory() as session:
            done = session.get(PolicyMailing, version)
            after = done.after if done is not None else ""
            if done is not None and done.finished_at is not None:
                return 0
            return (
                session.scalar(
                    select(func.count()).select_from(
                        active_accounts().where(Account.subject_id > after).subquery()
                    )
                )
                or 0
            )

    def run(
        self,
        version: int,
        batch: int = BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> MailingReport:
        """Queue ``version``'s mail to every active account not mailed yet, ``batch`` a
        transaction, calling ``progress`` with each batch's size once it is committed.
        Raises ``PolicyVersionNotFound``, ``MailingRefused``."""
        with self.factory() as session, session.begin():
            context = self.context(session, version)
            if session.get(PolicyMailing, version) is None:
                session.add(
                    PolicyMailing(version=version, after="", queued=0, started_at=self.clock.now())
                )
        queued = skipped = 0
        while True:
            with self.factory() as session, session.begin():
                step = self._batch(session, version, context, batch)
            if step is None:
                break
            queued += step[0]
            skipped += step[1]
            if progress is not None:
                progress(step[0] + step[1])
        with self.factory() as session:
            done = session.get(PolicyMailing, version)
            assert done is not None
            return MailingReport(version, queued, done.queued, skipped)

    def _batch(
        self, session: Session, version: int, context: dict[str, Any], size: int
    ) -> tuple[int, int] | None:
        """One batch: the next accounts after the mailing's mark, claimed by moving the
        mark (only if no other run moved it first), each sent the mail. None when done."""
        mark = session.get(PolicyMailing, version, populate_existing=True)
        assert mark is not None
        if mark.finished_at is not None:
            return None
        ids = list(
            session.scalars(
                active_accounts()
                .where(Account.subject_id > mark.after)
                .order_by(Account.subject_id)
                .limit(size)
            )
        )
        if not ids:
            mark.finished_at = self.clock.now()
            return None
        claimed = session.execute(
            update(PolicyMailing)
            .where(PolicyMailing.version == version, PolicyMailing.after == mark.after)
            .values(after=ids[-1])
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], claimed).rowcount != 1:
            return 0, 0  # another run took this batch: look again from its mark
        queued = skipped = 0
        for subject_id in ids:
            address = self.address_of(session, subject_id)
            if address is None:
                skipped += 1
                continue
            self.outbox.enqueue(session, subject_id, address, TEMPLATE, context)
            queued += 1
        session.execute(
            update(PolicyMailing)
            .where(PolicyMailing.version == version)
            .values(queued=PolicyMailing.queued + queued)
            .execution_options(synchronize_session=False)
        )
        self.audit.record(
            session,
            self.source,
            Event.POLICY_NOTIFIED,
            actor="operator",
            categories=[CATEGORY],
            purpose=PURPOSE,
            detail={"version": version, "count": queued},
        )
        return queued, skipped
