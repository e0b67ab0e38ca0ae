"""First-party analytics (P2.1, P2.2): page views sent by consent.js, only with analytics
consent, and the statistics computed from them.

What is kept of a visit is what the statistics need and no more: the browser and its
major version and the operating system parsed from the user agent (the string itself is
not kept), the network the address is in (IPv4 /24, IPv6 /48) and its country (looked up
on the full address, which is then dropped; never a city). Pages and referrers lose their
query string and fragment, and path segments that look like tokens or addresses, as those
can carry personal data or secrets (a confirmation link's token).

A visit is tied to a person only when they were logged in: the visit id from the browser
is digested together with the person's id, so a login in the middle of a tab's visit
starts a new visit, an anonymous visit is never attached to anyone afterwards, and
someone else holding the same visit id cannot add to a person's visit.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

import ua_parser
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.consent.cookies import (
    CookieConsents,
    CookieVersions,
    accepting,
    live_params,
    with_live,
)
from privault.consent.geo import CountryResolver
from privault.consent.models import PageView, Visit
from privault.db import new_id, table_of
from privault.errors import Forbidden, InvalidInput
from privault.policy.model import CookieCategory
from privault.retention.partitions import Partitions
from privault.service.messages import truncate_ip
from privault.vault.crypto import token_digest

#: The longest page or referrer accepted, in characters.
MAX_URL = 2000
#: A user agent is parsed from its first characters only: a longer one is junk or an attack.
MAX_USER_AGENT = 512
VISIT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
#: A path segment replaced by this when it may be a token, an id or an address.
HIDDEN = "{id}"
_HIDE_FROM = 20
_AT = re.compile(r"@|%40", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# Built once: a page view runs these on every request.
_VISIT_ID = select(Visit.id).where(Visit.visit_key == bindparam("visit_key"))
_CHOICE_AND_VISIT = with_live(_VISIT_ID)
# Of the tables, not the classes: plain Core inserts, without the ORM's bulk insert path.
_VIEWS, _VISITS = table_of(PageView), table_of(Visit)
_INSERT_VIEW = insert(_VIEWS)
#: A page view of a visit already made, written only if the browser's live choice accepts
#: analytics: most views, in one statement.
_VIEW_OF_KNOWN_VISIT = (
    insert(_VIEWS)
    .from_select(
        ["id", "visit_id", "subject_id", "page", "referrer", "at"],
        select(
            bindparam("id", type_=_VIEWS.c.id.type),
            _VISITS.c.id,
            bindparam("subject_id", type_=_VIEWS.c.subject_id.type),
            bindparam("page", type_=_VIEWS.c.page.type),
            bindparam("referrer", type_=_VIEWS.c.referrer.type),
            bindparam("at", type_=_VIEWS.c.at.type),
        ).where(_VISITS.c.visit_key == bindparam("visit_key"), accepting(CookieCategory.ANALYTICS)),
    )
    .execution_options(preserve_rowcount=True)
)  # else kept for UPDATE and DELETE only
#: A new visit, unless one with its key was made at the same moment (then no id comes back).
_NEW_VISIT = {
    name: make(_VISITS).on_conflict_do_nothing(index_elements=["visit_key"]).returning(_VISITS.c.id)
    for name, make in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


class AnalyticsNotConsented(Forbidden):
    """A page view from a browser without a live choice accepting analytics cookies."""

    code = "analytics_not_consented"


class AnalyticsEventInvalid(InvalidInput):
    """A page view whose visit id, page or referrer cannot be taken."""

    code = "invalid_analytics_event"


@dataclass(frozen=True)
class PageEvent:
    """What consent.js sends for a page load."""

    visit: str
    page: str
    referrer: str | None = None


@dataclass(frozen=True)
class Device:
    browser: str | None
    browser_version: str | None
    os: str | None


@dataclass(frozen=True)
class Report:
    """Statistics of a period (the ``statistics`` purpose): visits started in it, their
    average length, page views per page, and the most common navigation paths."""

    since: datetime
    until: datetime
    visits: int
    page_views: list[tuple[str, int]]
    average_visit_length: timedelta | None
    paths: list[tuple[tuple[str, ...], int]]


def load_device_rules() -> None:
    """Load the user-agent parser's rules (a few hundred regular expressions) now: at
    start, rather than in the first visitor's request."""
    ua_parser.parse("")


def device_of(user_agent: str | None) -> Device:
    """Browser with its major version, and operating system with its major and minor
    version, of a User-Agent header; None for what the parser does not recognise. The
    browser's full build number is not kept: it narrows a device down for no statistic."""
    if not user_agent:
        return Device(None, None, None)
    parsed = ua_parser.parse(user_agent[:MAX_USER_AGENT])
    agent, system = parsed.user_agent, parsed.os
    browser = agent.family if agent and agent.family != "Other" else None
    version = agent.major if agent and browser else None
    os = None
    if system and system.family != "Other":
        numbers = ".".join(n for n in (system.major, system.minor) if n)
        os = f"{system.family} {numbers}" if system.major else system.family
    return Device(_cut(browser, 60), _cut(version, 30), _cut(os, 60))


def page_path(page: str) -> str:
    """The path of a page, as kept: no query string, no fragment, no token-like segment.

    Raises ``AnalyticsEventInvalid`` for anything but a path or an http(s) address.
    """
    _check_text(page, "page")
    if page.startswith("/") and not page.startswith("//"):
        path = urlsplit(page).path
    else:
        path = _http(page, "page").path
    return _hidden(path or "/")


def referrer_address(referrer: str | None) -> str | None:
    """Where the visitor came from, as kept: scheme, host and path (no login, query string
    or fragment, no token-like segment); None for none.

    Raises ``AnalyticsEventInvalid`` for anything but an http(s) address.
    """
    if referrer is None or referrer == "":
        return None
    _check_text(referrer, "referrer")
    parts = _http(referrer, "referrer")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        raise AnalyticsEventInvalid("referrer: the port is not a number") from None
    return f"{parts.scheme.lower()}://{host}{port}{_hidden(parts.path or '/')}"


class Analytics:
    """Page views of visits, recorded with analytics consent, and their statistics."""

    def __init__(
        self,
        session: Session,
        consents: CookieConsents,
        countries: CountryResolver,
        clock: Clock,
        partitions: Partitions,
    ) -> None:
        self.session = session
        self.consents = consents
        self.countries = countries
        self.clock = clock
        self.partitions = partitions

    def record(
        self,
        event: PageEvent,
        *,
        consent_id: str | None,
        subject_id: str | None,
        user_agent: str | None,
        ip: str | None,
        known_visit_tried: bool = False,
    ) -> None:
        """Store a page view at the server's time, and its visit if it is the first.

        ``consent_id`` is the browser's cookie choice; ``subject_id`` the person logged in,
        if any; ``user_agent`` and ``ip`` are used for a new visit only, and the address is
        kept only as its network and country. ``known_visit_tried``: the caller has just
        tried ``record_on_known_visit``, which did not count the view.

        Raises ``AnalyticsEventInvalid`` for a bad visit id, page or referrer, and
        ``AnalyticsNotConsented`` unless the browser's live choice accepts analytics (a
        choice made by another logged-in person does not count). Nothing is stored when it
        raises.
        """
        now = self.clock.now()
        key, view = _view(event, subject_id, now)
        self.partitions.ensure(self.session, "analytics_page_views", (now,))
        if consent_id and not known_visit_tried:
            counted = self.session.connection().execute(
                _VIEW_OF_KNOWN_VISIT,
                {**view, "visit_key": key, **self.consents.live_params(consent_id, subject_id)},
            )
            if counted.rowcount:
                return
        # The visit's first view, or no consent: find out which.
        choice, visit_id = self.consents.current_and(
            consent_id, _CHOICE_AND_VISIT, {"visit_key": key}, subject_id=subject_id
        )
        if choice is None or choice.choices.get(CookieCategory.ANALYTICS) is not True:
            raise AnalyticsNotConsented(
                "analytics cookies are not accepted in this browser's cookie choice"
            )
        visit_id = visit_id or self._new_visit(key, subject_id, now, user_agent, ip)
        self.session.execute(_INSERT_VIEW, {**view, "visit_id": visit_id})

    def visit_length(self, visit: Visit) -> timedelta:
        """From the first page view of a visit to its last (zero for a single one)."""
        last = self.session.scalar(
            select(func.max(PageView.at)).where(PageView.visit_id == visit.id)
        )
        return timedelta() if last is None else aware(last) - aware(visit.started_at)

    def path(self, visit: Visit) -> tuple[str, ...]:
        """The pages of a visit in the order seen, a page reloaded counted once."""
        pages = self.session.scalars(
            select(PageView.page)
            .where(PageView.visit_id == visit.id)
            .order_by(PageView.at, PageView.id)
        )
        return _collapsed(pages)

    def paths(
        self, since: datetime, until: datetime, *, limit: int = 10
    ) -> list[tuple[tuple[str, ...], int]]:
        """The most common navigation paths of visits started in [since, until), each with
        the number of visits that took it, most common first (ties by path)."""
        rows = self.session.execute(
            select(PageView.visit_id, PageView.page)
            .join(Visit, Visit.id == PageView.visit_id)
            .where(Visit.started_at >= since, Visit.started_at < until)
            .order_by(PageView.visit_id, PageView.at, PageView.id)
        )
        by_visit: dict[str, list[str]] = {}
        for visit_id, page in rows:
            by_visit.setdefault(visit_id, []).append(page)
        counts = Counter(_collapsed(pages) for pages in by_visit.values())
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def report(self, since: datetime, until: datetime, *, top: int = 10) -> Report:
        """The statistics of [since, until): visits started in it and their average
        length, page views per page (most viewed first), and the ``top`` paths."""
        spans = self.session.execute(
            select(Visit.started_at, func.coalesce(func.max(PageView.at), Visit.started_at))
            .outerjoin(PageView, PageView.visit_id == Visit.id)
            .where(Visit.started_at >= since, Visit.started_at < until)
            .group_by(Visit.id, Visit.started_at)
        ).all()
        lengths = [aware(last) - aware(first) for first, last in spans]
        views = self.session.execute(
            select(PageView.page, func.count())
            .where(PageView.at >= since, PageView.at < until)
            .group_by(PageView.page)
        ).all()
        return Report(
            since=since,
            until=until,
            visits=len(spans),
            page_views=sorted(((p, int(n)) for p, n in views), key=lambda v: (-v[1], v[0])),
            average_visit_length=sum(lengths, timedelta()) / len(lengths) if lengths else None,
            paths=self.paths(since, until, limit=top),
        )

    def _new_visit(
        self,
        key: bytes,
        subject_id: str | None,
        now: datetime,
        user_agent: str | None,
        ip: str | None,
    ) -> str:
        """The id of a visit made with this first page view (or by a page view of it that
        came in at the same moment)."""
        device = device_of(user_agent)
        new = _NEW_VISIT[self.session.get_bind().dialect.name]
        made = self.session.scalar(
            new,
            {
                "id": new_id(),
                "visit_key": key,
                "subject_id": subject_id,
                "started_at": now,
                "ip_prefix": truncate_ip(ip),
                "country": self.countries.country_of(ip),
                "browser": device.browser,
                "browser_version": device.browser_version,
                "os": device.os,
            },
        )
        if made is not None:
            return str(made)
        # The same visit's first two page views at once: the other one made the row.
        return str(self.session.execute(_VISIT_ID, {"visit_key": key}).scalar_one())


async def record_on_known_visit(
    engine: AsyncEngine,
    event: PageEvent,
    *,
    consent_id: str,
    versions: CookieVersions,
    clock: Clock,
    partitions: Partitions,
) -> bool:
    """``Analytics.record``'s common case, a visitor's page view of a visit already made,
    in one statement on the event loop (no worker thread): the view is written only if
    the browser's live choice accepts analytics. False when it was not counted (the
    visit's first view, no such choice, or a month whose partition this process has not
    met yet): then ``Analytics.record`` decides, with ``known_visit_tried``.

    Raises ``AnalyticsEventInvalid`` for a bad visit id, page or referrer."""
    now = clock.now()
    key, view = _view(event, None, now)
    if not partitions.has("analytics_page_views", now):
        return False
    async with engine.connect() as connection:
        counted = await connection.execute(
            _VIEW_OF_KNOWN_VISIT,
            {**view, "visit_key": key, **live_params(versions, now, consent_id, None)},
        )
    return bool(counted.rowcount)


def _view(event: PageEvent, subject_id: str | None, now: datetime) -> tuple[bytes, dict[str, Any]]:
    """The key of the visit of a page view (its visit id, bound to the person when logged
    in) and the view's row but its visit. Raises ``AnalyticsEventInvalid``."""
    if not VISIT_ID.fullmatch(event.visit):
        raise AnalyticsEventInvalid("visit: must be 16 to 64 letters, digits, - or _")
    page, referrer = page_path(event.page), referrer_address(event.referrer)
    key = token_digest(event.visit if subject_id is None else f"{event.visit}/{subject_id}")
    view = {"id": new_id(), "subject_id": subject_id, "page": page, "referrer": referrer, "at": now}
    return key, view


def _collapsed(pages: Iterable[str]) -> tuple[str, ...]:
    path: list[str] = []
    for page in pages:
        if not path or path[-1] != page:
            path.append(page)
    return tuple(path)


def _check_text(value: str, name: str) -> None:
    if len(value) > MAX_URL:
        raise AnalyticsEventInvalid(f"{name}: must be at most {MAX_URL} characters long")
    if _CONTROL.search(value):
        raise AnalyticsEventInvalid(f"{name}: must not hold spaces or control characters")


def _http(value: str, name: str) -> SplitResult:
    try:
        parts = urlsplit(value)
    except ValueError:
        raise AnalyticsEventInvalid(f"{name}: is not a valid address") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise AnalyticsEventInvalid(f"{name}: must be a path or an http(s) address")
    return parts


def _hidden(path: str) -> str:
    """``path`` with each segment that may be a token, an id or an address as ``{id}``."""
    return "/".join(
        HIDDEN if len(segment) >= _HIDE_FROM or _AT.search(segment) else segment
        for segment in path.split("/")
    )


def _cut(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]
