"""Consents per channel (P3.8, P3.16, P2.5): newsletters, marketing by email and by post,
and sharing with third parties for their own marketing.

Each change is a new ``ChannelConsent`` row carrying the policy version and the time; the
latest row per subject and channel is the state. A channel with no row yet takes its
default from the policy's opt mode: email marketing is opt-in (off until agreed), post is
opt-out (on until the person objects). Newsletters and third-party sharing are always
opt-in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.consent.errors import UnknownChannel
from privault.consent.models import ChannelConsent, Subscriber
from privault.db import advisory_lock, new_id
from privault.policy.model import Channel, OptMode, Policy, RecipientKind
from privault.vault.models import Subject


class ConsentChannel(StrEnum):
    NEWSLETTER = "newsletter"
    MARKETING_EMAIL = "marketing_email"
    MARKETING_POST = "marketing_post"
    THIRD_PARTY = "third_party"


class Source(StrEnum):
    """How a consent was given or withdrawn: the proof says so."""

    WEB = "web"
    API = "api"
    CLI = "cli"
    #: The newsletter link mailed to the address was followed (P2.5).
    DOUBLE_OPT_IN = "double_opt_in"
    #: Newsletter asked for from the privacy centre by an account whose address is proven.
    VERIFIED_ACCOUNT = "verified_account"
    #: A one-click unsubscribe link (RFC 8058).
    UNSUBSCRIBE = "unsubscribe"
    #: An objection to direct marketing (Art. 21(3)), filed as a data-subject request.
    OBJECTION = "objection"


#: The marketing channel of the policy each consent channel stands for.
POLICY_CHANNEL = {
    ConsentChannel.MARKETING_EMAIL: Channel.EMAIL,
    ConsentChannel.MARKETING_POST: Channel.POST,
}


def channel_of(name: str) -> ConsentChannel:
    """The channel called ``name``; raises ``UnknownChannel`` naming it and the known ones."""
    try:
        return ConsentChannel(name)
    except ValueError:
        known = ", ".join(c.value for c in ConsentChannel)
        shown = name if len(name) <= 40 and name.isprintable() else name[:40].encode().hex()
        raise UnknownChannel(f"unknown channel {shown!r}: the channels are {known}") from None


class ChannelConsents:
    """Reads and changes a person's channel consents, one proof row per change."""

    def __init__(
        self,
        session: Session,
        policy: Policy,
        policy_version: int,
        clock: Clock,
        audit: AuditLog,
        source: str = "api",
    ) -> None:
        self.session = session
        self.policy = policy
        self.policy_version = policy_version
        self.clock = clock
        self.audit = audit
        self.source = source

    def default(self, channel: ConsentChannel) -> bool:
        """The state before any choice: ``True`` only for a policy channel marked opt_out."""
        marketing = POLICY_CHANNEL.get(channel)
        if marketing is None:
            return False
        return self.policy.marketing.channels.get(marketing, OptMode.OPT_IN) == OptMode.OPT_OUT

    def state(self, subject_id: str) -> dict[str, bool]:
        """Every channel and whether the person's consent to it is live now."""
        latest = self._latest(subject_id)
        return {c.value: latest.get(c, (self.default(c),))[0] for c in ConsentChannel}

    def is_given(self, subject_id: str, channel: ConsentChannel) -> bool:
        return self.state(subject_id)[channel.value]

    def give(self, subject_id: str, channel: ConsentChannel | str, source: Source | str) -> bool:
        """Give consent to ``channel`` in one step; returns whether it changed (a proof row
        is written only then). Raises ``UnknownChannel``."""
        return self._record(subject_id, channel_of(channel), True, Source(source))

    def stop_marketing(self, subject_id: str) -> list[str]:
        """Withdraw every direct-marketing consent (email, post, sharing for third parties'
        marketing) as an objection (Art. 21(3)); returns the channels that were live."""
        return [
            str(channel)
            for channel in (
                ConsentChannel.MARKETING_EMAIL,
                ConsentChannel.MARKETING_POST,
                ConsentChannel.THIRD_PARTY,
            )
            if self.withdraw(subject_id, channel, Source.OBJECTION)
        ]

    def withdraw(
        self, subject_id: str, channel: ConsentChannel | str, source: Source | str
    ) -> bool:
        """Withdraw consent to ``channel`` in one step; returns whether it changed (a proof
        row is written only then). Withdrawing the newsletter ends the
        subscription at once: the subscriber's address and name are deleted (the policy's
        newsletter retention), the proof rows stay. Raises ``UnknownChannel``."""
        return self._record(subject_id, channel_of(channel), False, Source(source))

    def change(self, subject_id: str, wanted: dict[str, bool], source: Source | str) -> list[str]:
        """Set several channels at once; every name is checked before anything changes.
        Returns the channels whose state changed. Raises ``UnknownChannel``."""
        channels = {channel_of(name): given for name, given in wanted.items()}
        return [
            channel.value
            for channel, given in channels.items()
            if self._record(subject_id, channel, given, Source(source))
        ]

    def may_share_with(self, subject_id: str, recipient_id: str) -> bool:
        """Whether the person's consents let ``recipient_id`` receive their data: a recipient
        of kind marketing needs the separate ``third_party`` consent (P3.16); a recipient
        the policy does not name never may (P4.6). The disclosure register calls this; it
        checks purposes and legal bases itself."""
        recipient = next((r for r in self.policy.recipients if r.id == recipient_id), None)
        if recipient is None:
            return False
        if recipient.kind == RecipientKind.MARKETING:
            return self.is_given(subject_id, ConsentChannel.THIRD_PARTY)
        return True

    def live(self, channel: ConsentChannel, among: Collection[str]) -> set[str]:
        """Which of the subjects ``among`` have a live consent to ``channel`` now."""
        if not among:
            return set()
        recorded = dict(self.latest_of(channel, among))
        default = self.default(channel)
        return {s for s in among if recorded.get(s, default)}

    def latest_of(
        self, channel: ConsentChannel, among: Iterable[str]
    ) -> Iterable[tuple[str, bool]]:
        """The recorded state (subject id, given) of ``channel`` for the subjects ``among``
        that made a choice; one query per 500 subjects."""
        ids = list(among)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            newest = (
                select(ChannelConsent.subject_id, func.max(ChannelConsent.at).label("at"))
                .where(ChannelConsent.channel == channel.value)
                .where(ChannelConsent.subject_id.in_(chunk))
                .group_by(ChannelConsent.subject_id)
                .subquery()
            )
            rows = self.session.execute(
                select(ChannelConsent.subject_id, ChannelConsent.given)
                .join(
                    newest,
                    and_(
                        ChannelConsent.subject_id == newest.c.subject_id,
                        ChannelConsent.at == newest.c.at,
                    ),
                )
                .where(ChannelConsent.channel == channel.value)
            )
            yield from ((subject_id, given) for subject_id, given in rows)

    def _latest(self, subject_id: str) -> dict[ConsentChannel, tuple[bool, datetime]]:
        rows = self.session.execute(
            select(ChannelConsent.channel, ChannelConsent.given, ChannelConsent.at)
            .where(ChannelConsent.subject_id == subject_id)
            .order_by(ChannelConsent.at)
        )
        latest: dict[ConsentChannel, tuple[bool, datetime]] = {}
        for channel, given, at in rows:
            if channel in ConsentChannel.__members__.values():
                latest[ConsentChannel(channel)] = (given, aware(at))
        return latest

    def _record(
        self, subject_id: str, channel: ConsentChannel, given: bool, source: Source
    ) -> bool:
        # One change at a time per person: the latest row must be the one written last.
        advisory_lock(self.session, f"consent:{subject_id}")
        if self.session.get(Subject, subject_id) is None:
            return False  # erased: there is nothing left to consent for
        if channel is ConsentChannel.NEWSLETTER and not given:
            # Also a subscription still waiting for its confirmation: the person said no.
            self.session.execute(delete(Subscriber).where(Subscriber.subject_id == subject_id))
        previous = self._latest(subject_id).get(channel)
        if (previous[0] if previous else self.default(channel)) == given:
            return False
        now = self.clock.now()
        if previous is not None and previous[1] >= now:
            # Two choices within the clock's resolution still keep their order.
            now = previous[1] + timedelta(microseconds=1)
        self.session.add(
            ChannelConsent(
                id=new_id(),
                subject_id=subject_id,
                channel=channel.value,
                given=given,
                source=source.value,
                policy_version=self.policy_version,
                at=now,
            )
        )
        self.session.flush()
        self.audit.record(
            self.session,
            self.source,
            Event.CONSENT_GIVEN if given else Event.CONSENT_WITHDRAWN,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["newsletter"],
            purpose="newsletters" if channel is ConsentChannel.NEWSLETTER else "marketing",
            detail={"channel": channel.value, "source": source.value},
        )
        return True
