"""Marketing sends (P0.2, P3.8): only to people with a live consent for the channel, never
more than the policy's monthly cap, every mail with a one-click unsubscribe link.

A send is a *campaign*: a template (or, for letters, a name for the letter) and a key that
tells one send from another, kept in each ``MarketingSend`` row as ``template/key``. A
person gets a campaign at most once, so a send cut short is finished by running it again.
The cap counts marketing mail and letters of the current calendar month (UTC) across
channels; newsletters the person subscribed to are neither counted nor capped, as the
policy says.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock
from privault.consent.channels import ChannelConsents, ConsentChannel
from privault.consent.errors import MarketingRefused, MarketingSendInvalid
from privault.consent.models import MarketingSend, Subscriber
from privault.consent.unsubscribe import UnsubscribeLinks
from privault.db import new_id
from privault.notify.outbox import Kind, Outbox, template_of
from privault.policy.model import Channel, Policy
from privault.service.models import Account, Purchase
from privault.vault import Field, Vault

#: The policy's purposes a send serves.
MARKETING = "marketing"
NEWSLETTERS = "newsletters"
#: The ``channel`` of a newsletter's MarketingSend: recorded, never counted by the cap.
NEWSLETTER_SEND = "newsletter"
_KEY = re.compile(r"[A-Za-z0-9._-]{1,40}")
_LABEL = re.compile(r"[a-z0-9_-]{1,19}")


class Segment(StrEnum):
    #: Everyone who agreed to marketing on the channel.
    ALL = "all"
    #: Newsletter subscribers (double opt-in), with a newsletter template.
    NEWSLETTER = "newsletter"


@dataclass(frozen=True)
class Campaign:
    template: str
    channel: Channel
    segment: Segment
    key: str
    context: dict[str, Any]

    @property
    def consent(self) -> ConsentChannel:
        if self.segment is Segment.NEWSLETTER:
            return ConsentChannel.NEWSLETTER
        return (
            ConsentChannel.MARKETING_POST
            if self.channel is Channel.POST
            else (ConsentChannel.MARKETING_EMAIL)
        )

    @property
    def capped(self) -> bool:
        return self.segment is not Segment.NEWSLETTER

    @property
    def stored(self) -> str:
        """What ``MarketingSend.template`` holds: which campaign reached the person."""
        return f"{self.template}/{self.key}"


@dataclass
class SendCounts:
    queued: int = 0
    capped: int = 0
    no_consent: int = 0
    no_address: int = 0
    already_sent: int = 0

    def add(self, other: SendCounts) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Audience:
    """Who may get a campaign now, in a stable order, and how many were left out."""

    subject_ids: list[str]
    counts: SendCounts = field(default_factory=SendCounts)


@dataclass(frozen=True)
class Letter:
    """One line of the print shop's file: where to send the letter, and the link it must
    print for objecting to letters with one step (P3.8)."""

    name: str
    address: str
    unsubscribe_url: str


def month_start(now: datetime) -> datetime:
    """The first instant of ``now``'s calendar month, in UTC: where the cap's count begins."""
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class MarketingService:
    """Plans and carries out marketing sends, batch by batch in the caller's transactions."""

    def __init__(
        self,
        session: Session,
        vault: Vault,
        policy: Policy,
        clock: Clock,
        outbox: Outbox,
        consents: ChannelConsents,
        links: UnsubscribeLinks,
        audit: AuditLog,
        source: str = "cli",
    ) -> None:
        self.session = session
        self.vault = vault
        self.policy = policy
        self.clock = clock
        self.outbox = outbox
        self.consents = consents
        self.links = links
        self.audit = audit
        self.source = source

    # -- what a send is ------------------------------------------------------------------

    def campaign(
        self,
        template: str,
        channel: Channel | str,
        segment: Segment | str = Segment.ALL,
        *,
        key: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> Campaign:
        """Check a send against the templates and the policy. ``key`` names the campaign
        (by default a digest of the template and ``context``, so the same words never reach
        a person twice). Raises ``MarketingSendInvalid`` for a template, segment or key
        that does not fit, ``MarketingRefused`` (with the reason) when the policy does not
        allow the send."""
        try:
            channel = Channel(channel)
        except ValueError:
            raise MarketingSendInvalid("the channel is email or post") from None
        try:
            segment = Segment(segment)
        except ValueError:
            raise MarketingSendInvalid("the segment is all or newsletter") from None
        context = dict(context or {})
        if channel not in self.policy.marketing.channels:
            raise MarketingRefused(f"the policy allows no marketing by {channel}")
        if channel is Channel.EMAIL:
            self._check_mail_template(template, segment)
        else:
            if segment is not Segment.ALL:
                raise MarketingSendInvalid("letters go to the segment all; newsletters are mail")
            if not _LABEL.fullmatch(template):
                raise MarketingSendInvalid(
                    "name a letter with 1 to 19 of a-z, 0-9, _ and -, such as spring-offer"
                )
        self._check_purposes(channel, segment)
        if key is None:
            words = json.dumps([template, channel, context], sort_keys=True, default=str)
            key = hashlib.sha256(words.encode()).hexdigest()[:12]
        elif not _KEY.fullmatch(key):
            raise MarketingSendInvalid("a campaign is 1 to 40 of A-Z, a-z, 0-9, '.', '_' and '-'")
        return Campaign(template, channel, segment, key, context)

    def _check_mail_template(self, template: str, segment: Segment) -> None:
        try:
            kind = template_of(template).kind
        except LookupError:
            raise MarketingSendInvalid(f"there is no mail template {template!r}") from None
        wanted = Kind.NEWSLETTER if segment is Segment.NEWSLETTER else Kind.MARKETING
        if kind is not wanted:
            raise MarketingSendInvalid(
                f"the segment {segment} takes a {wanted} template; {template!r} is a {kind}"
            )

    def _check_purposes(self, channel: Channel, segment: Segment) -> None:
        if segment is Segment.NEWSLETTER:
            if not self.policy.purpose_allows(NEWSLETTERS, "newsletter"):
                raise MarketingRefused(
                    f"the policy's {NEWSLETTERS!r} purpose may not use the newsletter category"
                )
            return
        purpose = self.policy.purposes.get(MARKETING)
        if purpose is None or not purpose.direct_marketing:
            raise MarketingRefused(f"the policy has no direct-marketing purpose {MARKETING!r}")
        if channel not in purpose.channels:
            raise MarketingRefused(f"the policy's {MARKETING!r} purpose does not use {channel}")
        if channel is Channel.POST and "transactions" not in purpose.categories:
            raise MarketingRefused(
                f"postal addresses are transactions data, and the policy's {MARKETING!r} "
                "purpose may not use that category"
            )
        if channel is Channel.EMAIL and not self._mail_categories():
            raise MarketingRefused(
                f"the policy's {MARKETING!r} purpose may use neither registration nor "
                "newsletter data, where the addresses are"
            )

    def _mail_categories(self) -> set[str]:
        return {
            c for c in ("registration", "newsletter") if self.policy.purpose_allows(MARKETING, c)
        }

    # -- who gets it -----------------------------------------------------------------------

    def audience(self, campaign: Campaign) -> Audience:
        """The people with a live consent for the campaign's channel who might be reached
        (an open account, a subscription, or for letters a billing address), in id order;
        the rest counted as ``no_consent``."""
        if campaign.channel is Channel.POST:
            reachable = set(
                self.session.scalars(
                    select(Purchase.subject_id).where(Purchase.billing_address_ct.is_not(None))
                )
            )
        else:
            reachable = set(self.session.scalars(select(Subscriber.subject_id)))
            if campaign.segment is Segment.ALL:
                reachable |= set(self.session.scalars(select(Account.subject_id)))
        candidates = reachable - set(
            self.session.scalars(select(Account.subject_id).where(Account.closed_at.is_not(None)))
        )
        live = self.consents.live(campaign.consent, candidates)
        return Audience(sorted(live), SendCounts(no_consent=len(candidates) - len(live)))

    def _sendable(
        self, campaign: Campaign, subject_ids: Collection[str]
    ) -> tuple[list[str], SendCounts]:
        """Those of ``subject_ids`` still to get the campaign now: consent checked again (it
        may have been withdrawn since the audience was drawn), the campaign not had, the
        cap not reached."""
        counts = SendCounts()
        live = self.consents.live(campaign.consent, subject_ids)
        counts.no_consent = len(subject_ids) - len(live)
        had = set(
            self.session.scalars(
                select(MarketingSend.subject_id).where(
                    MarketingSend.template == campaign.stored, MarketingSend.subject_id.in_(live)
                )
            )
        )
        counts.already_sent = len(had)
        month = self.sent_this_month(live - had) if campaign.capped else {}
        cap = self.policy.marketing.max_per_month
        ready = []
        for subject_id in sorted(live - had):
            if campaign.capped and month.get(subject_id, 0) >= cap:
                counts.capped += 1
            else:
                ready.append(subject_id)
        return ready, counts

    def sent_this_month(self, subject_ids: Iterable[str]) -> dict[str, int]:
        """How many marketing mails and letters each person got this calendar month (the
        cap's count: newsletters are not in it)."""
        ids, start = list(subject_ids), month_start(self.clock.now())
        counts: dict[str, int] = {}
        for first in range(0, len(ids), 500):
            rows = self.session.execute(
                select(MarketingSend.subject_id, func.count())
                .where(
                    MarketingSend.subject_id.in_(ids[first : first + 500]),
                    MarketingSend.channel != NEWSLETTER_SEND,
                    MarketingSend.sent_at >= start,
                )
                .group_by(MarketingSend.subject_id)
            )
            counts.update((subject_id, count) for subject_id, count in rows)
        return counts

    # -- sending ---------------------------------------------------------------------------

    def send(self, campaign: Campaign, subject_ids: Collection[str]) -> SendCounts:
        """Queue the campaign's mail to those of ``subject_ids`` who may get it now, each
        with its unsubscribe link, and record a ``MarketingSend`` for each."""
        if campaign.channel is not Channel.EMAIL:
            raise MarketingSendInvalid("letters are written with letters(), not sent")
        ready, counts = self._sendable(campaign, subject_ids)
        for subject_id in ready:
            address = self._mail_address(subject_id, campaign.segment)
            if address is None:
                counts.no_address += 1
                continue
            context = campaign.context | {
                "unsubscribe_url": self.links.url(subject_id, campaign.consent)
            }
            self.outbox.enqueue(self.session, subject_id, address, campaign.template, context)
            self._record(subject_id, campaign)
            counts.queued += 1
        self._log(campaign, counts.queued)
        return counts

    def letters(
        self, campaign: Campaign, subject_ids: Collection[str]
    ) -> tuple[list[Letter], SendCounts]:
        """The print shop's lines for those of ``subject_ids`` who may get the letter now:
        the name and address of their latest purchase that has one; a ``MarketingSend`` is
        recorded for each."""
        if campaign.channel is not Channel.POST:
            raise MarketingSendInvalid("mail is sent with send(), not written as letters")
        ready, counts = self._sendable(campaign, subject_ids)
        letters = []
        for subject_id in ready:
            letter = self._postal_address(subject_id)
            if letter is None:
                counts.no_address += 1
                continue
            url = self.links.url(subject_id, ConsentChannel.MARKETING_POST)
            letters.append(Letter(letter[0], letter[1], url))
            self._record(subject_id, campaign)
            counts.queued += 1
        self._log(campaign, counts.queued)
        return letters, counts

    def _record(self, subject_id: str, campaign: Campaign) -> None:
        channel = NEWSLETTER_SEND if campaign.segment is Segment.NEWSLETTER else campaign.channel
        self.session.add(
            MarketingSend(
                id=new_id(),
                subject_id=subject_id,
                channel=str(channel),
                template=campaign.stored,
                sent_at=self.clock.now(),
            )
        )

    def _log(self, campaign: Campaign, count: int) -> None:
        if not count:
            return
        if campaign.channel is Channel.POST:
            categories = ["transactions"]
        elif campaign.segment is Segment.NEWSLETTER:
            categories = ["newsletter"]
        else:
            categories = sorted(self._mail_categories())
        self.audit.record(
            self.session,
            self.source,
            Event.MARKETING_SENT,
            actor="operator",
            categories=categories,
            purpose=NEWSLETTERS if campaign.segment is Segment.NEWSLETTER else MARKETING,
            detail={"campaign": campaign.stored, "channel": str(campaign.channel), "count": count},
        )

    # -- addresses ---------------------------------------------------------------------------

    def _mail_address(self, subject_id: str, segment: Segment) -> str | None:
        """A newsletter goes to the subscribed address; other marketing to the account's
        address, else a subscribed one, as far as the marketing purpose may use each."""
        newsletter = segment is Segment.NEWSLETTER
        purpose = NEWSLETTERS if newsletter else MARKETING
        allowed = {"newsletter"} if newsletter else self._mail_categories()
        if "registration" in allowed:
            account = self.session.get(Account, subject_id)
            if account is not None and account.closed_at is None:
                return self.vault.decrypt(
                    self.session,
                    subject_id,
                    Field("accounts", "email_ct", subject_id),
                    account.email_ct,
                    purpose=purpose,
                )
        if "newsletter" in allowed:
            subscriber = self.session.scalar(
                select(Subscriber)
                .where(Subscriber.subject_id == subject_id)
                .order_by(Subscriber.last_activity_at.desc(), Subscriber.id)
                .limit(1)
            )
            if subscriber is not None:
                return self.vault.decrypt(
                    self.session,
                    subject_id,
                    Field("subscribers", "email_ct", subscriber.id),
                    subscriber.email_ct,
                    purpose=purpose,
                )
        return None

    def _postal_address(self, subject_id: str) -> tuple[str, str] | None:
        purchase = self.session.scalar(
            select(Purchase)
            .where(Purchase.subject_id == subject_id, Purchase.billing_address_ct.is_not(None))
            .order_by(Purchase.created_at.desc(), Purchase.id)
            .limit(1)
        )
        if purchase is None or purchase.billing_address_ct is None:
            return None
        name, address = (
            self.vault.decrypt(
                self.session,
                subject_id,
                Field("purchases", f"{column}_ct", purchase.id),
                blob,
                purpose=MARKETING,
            )
            for column, blob in (
                ("billing_name", purchase.billing_name_ct),
                ("billing_address", purchase.billing_address_ct),
            )
        )
        return name, address
