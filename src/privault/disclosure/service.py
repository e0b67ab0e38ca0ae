"""Disclosing personal data to a recipient of the policy file, and the register of it.

A disclosure names the recipient, the people, the categories, the purpose, a legal basis,
who asked and which staff member approved it. It is refused, and the refusal logged, when
the policy does not allow it: a recipient it does not name (P4.6), a sale (P0.1), a
purpose the recipient is not declared for, a category the purpose may not use (P3.x),
personal data to a statistics recipient (P3.10), a country outside the adequacy list
(P5.2), a marketing recipient without each person's consent (P3.16), an approver whose
role may not use data for the purpose, or for the legal purpose disclosures fall under.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.consent.channels import ChannelConsents, ConsentChannel
from privault.db import new_id
from privault.disclosure.errors import (
    AggregatesOnly,
    CategoryRefused,
    DisclosureRefused,
    InvalidDisclosure,
    RecipientPurposeRefused,
    SaleRefused,
    ThirdPartyConsentMissing,
    TransferRefused,
    UnknownCategory,
    UnknownPurpose,
    UnknownRecipient,
    UnknownSubject,
)
from privault.disclosure.models import Disclosure, DisclosureSubject
from privault.errors import PrivaultError
from privault.policy.model import Policy, Recipient, RecipientKind
from privault.staff.errors import PurposeRefused
from privault.staff.service import Staff, StaffService
from privault.vault import Field, Vault
from privault.vault.models import Subject


class DisclosureBasis(StrEnum):
    """Why the data may go out: the policy's section 4 (P4.2-P4.5), or the person's own
    consent or contract."""

    LAW = "law"
    COURT_ORDER = "court_order"
    PROCEEDINGS = "proceedings"
    LEGAL_RIGHTS = "legal_rights"
    LIKELY_COURT_ORDER = "likely_court_order"
    CONSENT = "consent"
    CONTRACT = "contract"

    @property
    def text(self) -> str:
        """The basis as the person reads it in their export."""
        return _BASIS_TEXT[self]


_BASIS_TEXT: Final = {
    DisclosureBasis.LAW: "because the law requires it",
    DisclosureBasis.COURT_ORDER: "under a court order",
    DisclosureBasis.PROCEEDINGS: "for ongoing or prospective legal proceedings",
    DisclosureBasis.LEGAL_RIGHTS: "to establish, exercise or defend legal rights",
    DisclosureBasis.LIKELY_COURT_ORDER: "where a court would likely order it",
    DisclosureBasis.CONSENT: "with your consent",
    DisclosureBasis.CONTRACT: "as your contract with us needs",
}

#: The purpose under which the policy puts every disclosure ("Disclosing or keeping data
#: where the law requires it ..."): an approver's role must hold it, as well as the
#: disclosure's own purpose. In the Kallu policy: the privacy officer and the administrator.
APPROVING_PURPOSE: Final = "legal"

#: A purpose whose id holds one of these words is a sale, refused whatever the policy says.
_SALE_WORDS: Final = frozenset(
    {"sale", "sales", "sell", "selling", "sold", "resale", "monetisation", "monetization"}
)
_ID_SHAPED = re.compile(r"[a-z][a-z0-9_]{0,59}")
MAX_REQUESTER = 500


def is_sale(purpose: str) -> bool:
    """Whether ``purpose`` names a sale of data (P0.1)."""
    return not _SALE_WORDS.isdisjoint(re.split(r"[^a-z]+", purpose.lower()))


def _shown(value: str) -> str:
    """A value the operator typed, quoted when it looks like a policy id; otherwise not
    repeated (it could be anything, an address even)."""
    return repr(value) if _ID_SHAPED.fullmatch(value) else "given"


@dataclass(frozen=True)
class Entry:
    """A line of the register, for the privacy officer."""

    id: str
    recipient_id: str
    recipient_name: str
    recipient_kind: str
    recipient_country: str
    purpose: str
    legal_basis: str
    categories: tuple[str, ...]
    requester: str
    approved_by: str
    created_at: datetime
    subjects: int
    confidential: bool


@dataclass(frozen=True)
class Received:
    """A disclosure as the person it covered is told of it (Art. 15(1)(c)): who received
    what, when and why; not who asked, who may be someone else."""

    recipient: str
    kind: str
    country: str
    at: datetime
    categories: tuple[str, ...]
    purpose: str
    legal_basis: str


class DisclosureService:
    def __init__(
        self,
        session: Session,
        policy: Policy,
        clock: Clock,
        audit: AuditLog,
        vault: Vault,
        staff: StaffService,
        consents: ChannelConsents,
        source: str = "cli",
    ) -> None:
        self.session = session
        self.policy = policy
        self.clock = clock
        self.audit = audit
        self.vault = vault
        self.staff = staff
        self.consents = consents
        self.source = source

    def disclose(
        self,
        recipient_id: str,
        subjects: Sequence[str],
        categories: Sequence[str],
        purpose: str,
        legal_basis: DisclosureBasis | str,
        requester: str,
        approved_by: Staff,
        *,
        confidential: bool = False,
    ) -> Entry:
        """Record that ``categories`` of ``subjects`` go to ``recipient_id`` for ``purpose``,
        asked for by ``requester`` (who may be shown to staff, never to the people), approved
        by ``approved_by``; ``confidential`` keeps it out of the people's exports (a legal
        gag). One register entry and one access-log entry per person.

        Raises (each logged as ``disclosure:refused``, nothing else stored): ``SaleRefused``,
        ``UnknownRecipient``, ``UnknownPurpose``, ``RecipientPurposeRefused``,
        ``AggregatesOnly``, ``TransferRefused``, ``UnknownCategory``, ``CategoryRefused``,
        ``PurposeRefused`` (the approver's role), ``UnknownSubject``,
        ``ThirdPartyConsentMissing``, ``InvalidDisclosure`` (basis, requester, empty lists).
        """
        people = list(dict.fromkeys(subjects))
        wanted = list(dict.fromkeys(categories))
        try:
            recipient, basis, text = self._check(
                recipient_id, people, wanted, purpose, legal_basis, requester, approved_by
            )
        except (DisclosureRefused, InvalidDisclosure, PurposeRefused) as exc:
            self._refused(exc, approved_by, recipient_id, people, wanted, purpose)
            raise
        disclosure_id = new_id()
        ordered = tuple(c for c in self.policy.categories if c in wanted)
        row = Disclosure(
            id=disclosure_id,
            recipient_id=recipient.id,
            recipient_name=recipient.name,
            recipient_kind=str(recipient.kind),
            recipient_country=recipient.country,
            requester_ct=self.vault.seal_retained(_requester_field(disclosure_id), text),
            legal_basis=basis.value,
            purpose=purpose,
            categories=",".join(ordered),
            subjects=len(people),
            confidential=confidential,
            approved_by=approved_by.actor,
            created_at=self.clock.now(),
        )
        self.session.add(row)
        self.session.flush()
        self.session.add_all(
            DisclosureSubject(disclosure_id=disclosure_id, subject_id=s) for s in people
        )
        for subject_id in people:
            self.audit.record(
                self.session,
                self.source,
                Event.DISCLOSURE_RECORDED,
                actor=approved_by.actor,
                subject_id=subject_id,
                categories=ordered,
                purpose=purpose,
                detail={
                    "disclosure": disclosure_id,
                    "recipient": recipient.id,
                    "basis": basis.value,
                },
            )
        return self._entry(row)

    def register(self, recipient: str | None = None, subject: str | None = None) -> list[Entry]:
        """The register, oldest first: every disclosure, or those to ``recipient`` or
        covering the person ``subject``. Confidential ones included (staff only)."""
        query = select(Disclosure).order_by(Disclosure.created_at, Disclosure.id)
        if recipient is not None:
            query = query.where(Disclosure.recipient_id == recipient)
        if subject is not None:
            query = query.where(Disclosure.id.in_(_covering(subject)))
        return [self._entry(row) for row in self.session.scalars(query)]

    def recipients_of(self, subject_id: str) -> list[Received]:
        """Who received the person's data, as their access export says it (not the
        confidential disclosures)."""
        return recipients_of(self.session, subject_id)

    def _check(
        self,
        recipient_id: str,
        people: list[str],
        wanted: list[str],
        purpose: str,
        legal_basis: DisclosureBasis | str,
        requester: str,
        approver: Staff,
    ) -> tuple[Recipient, DisclosureBasis, str]:
        text = requester.strip()
        if not text or len(text) > MAX_REQUESTER:
            raise InvalidDisclosure(
                f"a disclosure names who asked for it, in 1 to {MAX_REQUESTER} characters"
            )
        try:
            basis = DisclosureBasis(legal_basis)
        except ValueError:
            known = ", ".join(b.value for b in DisclosureBasis)
            raise InvalidDisclosure(f"the legal basis must be one of {known}") from None
        if not people:
            raise InvalidDisclosure("a disclosure covers at least one person")
        if not wanted:
            raise InvalidDisclosure("a disclosure names at least one category")
        if is_sale(purpose):
            raise SaleRefused("we do not sell personal data: a disclosure for a sale is refused")
        recipient = next((r for r in self.policy.recipients if r.id == recipient_id), None)
        if recipient is None:
            raise UnknownRecipient(
                f"the recipient {_shown(recipient_id)} is not in the policy file, and "
                "personal data goes to no other third party"
            )
        if purpose not in self.policy.purposes:
            raise UnknownPurpose(f"the policy file declares no purpose {_shown(purpose)}")
        if purpose not in recipient.purposes:
            raise RecipientPurposeRefused(
                f"the policy declares {recipient.id} for {', '.join(recipient.purposes)}, "
                f"not for {purpose}"
            )
        if recipient.kind is RecipientKind.STATISTICS:
            raise AggregatesOnly(
                f"{recipient.id} receives anonymous statistics only, never personal data"
            )
        if not self.policy.is_adequate(recipient.country):
            raise TransferRefused(
                f"{recipient.id} is in {recipient.country}, outside the EEA and the adequacy "
                f"list (checked {self.policy.transfers.checked:%Y-%m-%d})"
            )
        unknown = [c for c in wanted if c not in self.policy.categories]
        if unknown:
            raise UnknownCategory(f"the policy file declares no category {_shown(unknown[0])}")
        refused = [c for c in wanted if not self.policy.purpose_allows(purpose, c)]
        if refused:
            raise CategoryRefused(f"the purpose {purpose} may not use {', '.join(refused)}")
        self.staff.require(approver, purpose)
        if purpose != APPROVING_PURPOSE:
            self.staff.require(approver, APPROVING_PURPOSE)
        missing = len(people) - len(self._existing(people))
        if missing:
            raise UnknownSubject(
                f"{missing} of the {len(people)} people named do not exist (or were erased)"
            )
        if recipient.kind is RecipientKind.MARKETING:
            without = len(people) - len(self._consenting(recipient, people))
            if without:
                raise ThirdPartyConsentMissing(
                    f"{without} of the {len(people)} people have not given the consent "
                    f"{recipient.consent} that {recipient.id} needs, a marketing recipient"
                )
        return recipient, basis, text

    def _existing(self, people: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(people), 500):
            chunk = people[start : start + 500]
            found.update(self.session.scalars(select(Subject.id).where(Subject.id.in_(chunk))))
        return found

    def _consenting(self, recipient: Recipient, people: list[str]) -> set[str]:
        """Those whose consent the recipient's ``consent`` names is live; a consent the
        system does not record is nobody's (the policy loader cannot know the channels)."""
        try:
            channel = ConsentChannel(recipient.consent or "")
        except ValueError:
            return set()
        return self.consents.live(channel, people)

    def _refused(
        self,
        error: PrivaultError,
        approver: Staff,
        recipient_id: str,
        people: list[str],
        wanted: list[str],
        purpose: str,
    ) -> None:
        """Log a refusal with only what is known to be a policy id: what was typed could be
        anything."""
        known = any(r.id == recipient_id for r in self.policy.recipients)
        self.audit.record(
            self.session,
            self.source,
            Event.DISCLOSURE_REFUSED,
            actor=approver.actor,
            categories=[c for c in wanted if c in self.policy.categories],
            purpose=purpose if purpose in self.policy.purposes else None,
            detail={
                "reason": error.code,
                "recipient": recipient_id if known else None,
                "subjects": len(people),
            },
        )

    def _entry(self, row: Disclosure) -> Entry:
        requester = self.vault.open_retained(
            self.session, _requester_field(row.id), row.requester_ct, purpose="legal"
        )
        return Entry(
            row.id,
            row.recipient_id,
            row.recipient_name,
            row.recipient_kind,
            row.recipient_country,
            row.purpose,
            row.legal_basis,
            tuple(row.categories.split(",")),
            str(requester),
            row.approved_by,
            aware(row.created_at),
            row.subjects,
            row.confidential,
        )


def _requester_field(disclosure_id: str) -> Field:
    """The requester, sealed under the retention key; the row names its table, whose
    category (communications: who wrote to us, and what) governs reading it."""
    return Field("disclosures", "requester_ct", f"disclosures/{disclosure_id}")


def _covering(subject_id: str) -> Select[str]:
    return select(DisclosureSubject.disclosure_id).where(DisclosureSubject.subject_id == subject_id)


def recipients_of(session: Session, subject_id: str) -> list[Received]:
    """Who received the person's data, oldest first, without the confidential disclosures
    (a legal gag): what the access export lists."""
    rows = session.scalars(
        select(Disclosure)
        .where(Disclosure.id.in_(_covering(subject_id)), Disclosure.confidential.is_(False))
        .order_by(Disclosure.created_at, Disclosure.id)
    )
    return [
        Received(
            r.recipient_name,
            r.recipient_kind,
            r.recipient_country,
            aware(r.created_at),
            tuple(r.categories.split(",")),
            r.purpose,
            r.legal_basis,
        )
        for r in rows
    ]
