"""Consents and what they allow: cookie choices with their proof (P1.2), channel consents
for newsletters and marketing (P2.5, P3.8, P3.16, P0.2), first-party analytics (P2.1,
P2.2), and the marketing sends the monthly cap counts.

A choice is never updated in place: each one is a new row, so the history is the proof
of what was agreed, when, under which texts. The current choice is the latest row.
Nothing here holds a full IP address: a network prefix (IPv4 /24, IPv6 /48) at most.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base
from privault.vault.datamap import personal_data
from privault.vault.models import SUBJECT_ID


def _subject(*, nullable: bool) -> Mapped[Any]:
    return mapped_column(
        SUBJECT_ID,
        ForeignKey("subjects.id", ondelete="CASCADE"),
        index=True,
        nullable=nullable,
    )


@personal_data(
    "device",
    kept_from="given_at",
    exported=(
        "id",
        "choices",
        "gpc",
        "banner_version",
        "cookies_version",
        "policy_version",
        "given_at",
        "expires_at",
        "ip_prefix",
    ),
)
class CookieConsent(Base):
    """One cookie choice made in the banner (P1.2). ``consent_key`` is a digest of the
    anonymous consent id kept in the ``privault_consent`` cookie; ``subject_id`` is set
    when the person was logged in."""

    __tablename__ = "cookie_consents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    consent_key: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    subject_id: Mapped[str | None] = _subject(nullable=True)
    #: Category -> accepted, for every category of the policy's banner.
    choices: Mapped[dict[str, bool]] = mapped_column(JSON)
    #: The browser sent ``Sec-GPC: 1``: the categories the policy says GPC refuses are off.
    gpc: Mapped[bool] = mapped_column(Boolean, default=False)
    banner_version: Mapped[str] = mapped_column(String(16))
    cookies_version: Mapped[str] = mapped_column(String(16))
    policy_version: Mapped[int] = mapped_column(Integer)
    given_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ip_prefix: Mapped[str | None] = mapped_column(String(64))


@personal_data(
    "newsletter",
    encrypted=("email_ct", "name_ct"),
    indexed=("email_index",),
    exported=("id", "email_ct", "name_ct", "created_at", "confirmed_at", "last_activity_at"),
    kept_from="last_activity_at",
)
class Subscriber(Base):
    """Someone who gave an address for newsletters or marketing mail, with or without an
    account (P2.5): the address sealed, found by blind index. For an account holder the
    account's address is used and this row holds only what they gave here."""

    __tablename__ = "subscribers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = _subject(nullable=False)
    email_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    email_ct: Mapped[bytes] = mapped_column(LargeBinary)
    name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the address was confirmed by following the double opt-in link.
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The last sign of life (confirmation, a consent given): the retention counts from it.
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@personal_data(
    "newsletter",
    exported=("id", "channel", "given", "source", "policy_version", "at"),
    kept_from="at",
)
class ChannelConsent(Base):
    """One consent given or withdrawn for a channel (P3.8, P3.16): ``newsletter``,
    ``marketing_email`` (opt-in), ``marketing_post`` (opt-out: given until withdrawn) or
    ``third_party`` (sharing with third parties for their marketing, opt-in). The latest
    row per subject and channel is the state; ``source`` says how (web, api, the double
    opt-in link, a one-click unsubscribe)."""

    __tablename__ = "channel_consents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = _subject(nullable=False)
    channel: Mapped[str] = mapped_column(String(24))
    given: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(24))
    policy_version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class OptInLink(Base):
    """A double opt-in link mailed to a newsletter address; only its digest is kept."""

    __tablename__ = "opt_in_links"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    subscriber_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(24))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@personal_data("newsletter", exported=("id", "channel", "template", "sent_at"), kept_from="sent_at")
class MarketingSend(Base):
    """A marketing mail or letter sent to a person: what the monthly cap counts (P0.2)."""

    __tablename__ = "marketing_sends"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = _subject(nullable=False)
    channel: Mapped[str] = mapped_column(String(24))
    template: Mapped[str] = mapped_column(String(60))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


@personal_data(
    "device",
    kept_from="started_at",
    exported=(
        "id",
        "started_at",
        "ip_prefix",
        "country",
        "browser",
        "browser_version",
        "os",
    ),
)
class Visit(Base):
    """A visit counted by first-party analytics, only with analytics consent (P2.1): the
    device as parsed from the user agent, the network prefix and the country derived
    from the address; tied to a person only when they were logged in."""

    __tablename__ = "analytics_visits"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The visit id consent.js keeps for the tab, digested.
    visit_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    subject_id: Mapped[str | None] = _subject(nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ip_prefix: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    browser: Mapped[str | None] = mapped_column(String(60))
    browser_version: Mapped[str | None] = mapped_column(String(30))
    os: Mapped[str | None] = mapped_column(String(60))


@personal_data("visits", exported=("id", "visit_id", "page", "referrer", "at"), kept_from="at")
class PageView(Base):
    """One page view of a visit (P2.2): the page, where the visitor came from, when.
    Visit length and navigation paths are computed from these."""

    __tablename__ = "analytics_page_views"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    visit_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("analytics_visits.id", ondelete="CASCADE"), index=True
    )
    subject_id: Mapped[str | None] = _subject(nullable=True)
    page: Mapped[str] = mapped_column(Text)
    referrer: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


@personal_data(
    "registration",
    exported=("id", "policy_version", "accepted", "source", "ip_prefix", "at"),
)
class PolicyAcceptance(Base):
    """A person accepting or refusing a version of the privacy policy (P8.3), with its
    proof: when, how (``source``: registration, web, api, the migration that recorded
    the accounts there were), from which network. Each answer is a row; the latest row
    for a version is the person's answer to it. Kept while the account exists: it is the
    proof of the terms the account runs under."""

    __tablename__ = "policy_acceptances"
    __table_args__ = (
        Index("ix_policy_acceptances_subject_version", "subject_id", "policy_version"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        SUBJECT_ID, ForeignKey("subjects.id", ondelete="CASCADE")
    )
    policy_version: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(24))
    ip_prefix: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
