"""Cookie choices made in the banner, kept with their proof (P1.2, P11.3).

Every choice is a new ``CookieConsent`` row: the categories, the versions of the banner
text, of the cookie list and of the policy it was given under, the time, and the network
the browser was in (IPv4 /24, IPv6 /48). The current choice is the latest row of a consent
id; it lapses when it expires or when any of the three versions has changed since, and the
banner asks again.

The consent id is a random value kept in the browser's ``privault_consent`` cookie; only
its digest is stored, so the table cannot be used to forge a cookie.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Exists, Row, Select, String, bindparam, exists, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.consent.errors import ConsentNotYours, CookieChoiceInvalid
from privault.consent.models import CookieConsent
from privault.db import new_id, table_of
from privault.policy.model import Cookie, CookieCategory, CookieKind, Policy
from privault.policy.types import Duration, duration_words
from privault.service.messages import truncate_ip
from privault.vault.crypto import token_digest

#: id, subject_id, choices, gpc, given_at, expires_at and the banner, cookies and policy
#: versions of a stored choice.
_ChoiceRow = Row[str, str | None, dict[str, bool], bool, datetime, datetime, str, str, int]
_CONSENT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_CARD_LIKE = re.compile(r"\d{13}")


@dataclass(frozen=True)
class CookieVersions:
    """What a choice was given under: a new banner text, cookie list or policy version
    means the person has not agreed to what is there now."""

    banner: str
    cookies: str
    policy: int

    @classmethod
    def of(cls, policy: Policy, policy_version: int) -> CookieVersions:
        banner = [
            [str(cid), c.title, c.description, c.always_on, c.gpc_refuses]
            for cid, c in policy.consent.categories.items()
        ]
        cookies = [
            [c.name, c.provider, c.purpose, str(c.category), str(c.kind), _iso(c.lifetime)]
            for c in policy.cookies
        ]
        return cls(_version(banner), _version(cookies), policy_version)


@dataclass(frozen=True)
class BannerCategory:
    """One category of the banner and of the cookie declaration, with its cookies."""

    id: str
    title: str
    description: str
    always_on: bool
    gpc_refuses: bool
    cookies: tuple[Cookie, ...]


@dataclass(frozen=True)
class Choice:
    consent_id: str
    subject_id: str | None
    choices: dict[str, bool]
    gpc: bool
    given_at: datetime
    expires_at: datetime
    versions: CookieVersions

    @property
    def accepted(self) -> list[str]:
        return [category for category, on in self.choices.items() if on]


def banner(policy: Policy) -> list[BannerCategory]:
    """The banner's categories in the policy's order, each with the cookies it covers."""
    return [
        BannerCategory(
            str(cid),
            c.title,
            c.description,
            c.always_on,
            c.gpc_refuses,
            tuple(k for k in policy.cookies if k.category == cid),
        )
        for cid, c in policy.consent.categories.items()
    ]


def lifetime_words(cookie: Cookie) -> str:
    """How long a cookie lasts, in plain words: "6 months", "2 years", "15 minutes", or
    "until you close the browser" for a session cookie."""
    if cookie.kind == CookieKind.SESSION or cookie.lifetime is None:
        return "until you close the browser"
    return duration_words(cookie.lifetime)


def cookie_value(choice: Choice) -> str:
    """The ``privault_consent`` cookie: ``<consent id>.<accepted categories joined by
    '+'>.<cookie list version>``. consent.js reads the categories to start scripts without
    asking the server; the server trusts only its own row."""
    return f"{choice.consent_id}.{'+'.join(choice.accepted)}.{choice.versions.cookies}"


def consent_id_from_cookie(value: str | None) -> str | None:
    """The consent id at the start of a ``privault_consent`` cookie; None if it has none."""
    if not value:
        return None
    consent_id = value.partition(".")[0]
    return consent_id if _CONSENT_ID.fullmatch(consent_id) else None


class CookieConsents:
    """Cookie choices of browsers, anonymous or logged in, and what they allow.

    Who may change a choice: a consent id given while nobody was logged in may be changed
    by whoever holds it (and a logged-in change ties it to that person). Once tied to a
    person, only that person may add to its history: another logged-in person is refused
    (``ConsentNotYours``), and a request without a login gets a new anonymous consent id
    instead, so a copied cookie value never lets a stranger rewrite someone's proof.
    """

    def __init__(
        self, session: Session, policy: Policy, versions: CookieVersions, clock: Clock
    ) -> None:
        self.session = session
        self.policy = policy
        self.versions = versions
        self.clock = clock

    def record(
        self,
        consent_id: str | None,
        choices: Mapping[str, bool],
        *,
        subject_id: str | None,
        gpc: bool,
        ip: str | None,
    ) -> Choice:
        """Store a choice as a new row and return it, with the consent id to keep in the
        browser (a new one when ``consent_id`` is None, unknown, or tied to a person while
        this request is anonymous).

        ``choices`` must name every category of the banner, each true or false; refusing
        strictly necessary cookies is refused, not ignored, so the proof never shows a
        choice the service could not honour. With ``gpc`` (``Sec-GPC: 1``) every category
        the policy marks ``gpc_refuses`` is stored as refused, whatever was sent.

        Raises ``CookieChoiceInvalid`` for an unknown or missing category or strictly
        necessary refused, ``ConsentNotYours`` for a consent id tied to another person.
        Nothing is stored when it raises.
        """
        clean = _checked(self.policy, choices, gpc)
        latest = self._latest(consent_id) if consent_id else None
        if latest is not None and latest.subject_id not in (None, subject_id):
            if subject_id is not None:
                raise ConsentNotYours(
                    "this cookie choice was made by another account; remove the "
                    "privault_consent cookie to make your own"
                )
            latest = None  # a visitor starts afresh rather than edit someone's proof
        now = self.clock.now()
        if latest is None or consent_id is None:
            consent_id, row_id = secrets.token_urlsafe(24), new_id()
        else:
            # Later than the latest even in the same instant: the history keeps its order.
            row_id = _id_after(latest.id, aware(latest.given_at), now)
        choice = _made(self.policy, self.versions, consent_id, subject_id, clean, gpc, now)
        self.session.execute(_INSERT, _row(choice, row_id, ip))
        return choice

    def current(
        self, consent_id: str | None, *, subject_id: str | None = None, gpc: bool = False
    ) -> Choice | None:
        """The live choice of ``consent_id``: its latest row, unless it has expired or was
        given under another banner text, cookie list or policy version (then None: ask
        again).

        ``subject_id`` is the logged-in caller: a choice tied to someone else is not theirs
        to see (None). With ``gpc`` a choice that accepts a category GPC refuses is not
        live either: the browser now signals a refusal, so the banner asks once more.
        """
        if not consent_id:
            return None
        row = self.session.execute(_LIVE, self.live_params(consent_id, subject_id)).first()
        if row is None:
            return None
        if gpc and any(
            row.choices.get(str(cid))
            for cid, c in self.policy.consent.categories.items()
            if c.gpc_refuses
        ):
            return None
        return _choice(consent_id, row)

    def current_and(
        self,
        consent_id: str | None,
        statement: Select[Any],
        params: Mapping[str, Any],
        *,
        subject_id: str | None = None,
    ) -> tuple[Choice | None, Any]:
        """``current``, and in the same round trip to the database a value the caller
        needs as well (a page view: its visit). ``statement`` comes from ``with_live``;
        ``params`` are its parameters but the choice's. Without a live choice the value is
        not looked up: (None, None)."""
        if not consent_id:
            return None, None
        row = self.session.execute(
            statement, {**params, **self.live_params(consent_id, subject_id)}
        ).first()
        if row is None:
            return None, None
        return _choice(consent_id, row), row.also

    def live_params(self, consent_id: str, subject_id: str | None) -> dict[str, Any]:
        """``live_params`` under this policy, now."""
        return live_params(self.versions, self.clock.now(), consent_id, subject_id)

    def allows(self, consent_id: str | None, category: str) -> bool:
        """Whether the browser holding ``consent_id`` has a live choice accepting
        ``category``; strictly necessary cookies are always allowed, anything else needs
        a live choice (an unknown category: no)."""
        if category == CookieCategory.STRICTLY_NECESSARY:
            return True
        choice = self.current(consent_id)
        return choice is not None and choice.choices.get(category) is True

    def _latest(self, consent_id: str) -> _ChoiceRow | None:
        return self.session.execute(_LATEST, {"key": token_digest(consent_id)}).first()


#: The latest choice of a consent id; choices of one id in the same instant are ordered by
#: their ids (see _id_after). Built once: every page view asks it.
_LATEST = (
    select(
        CookieConsent.id,
        CookieConsent.subject_id,
        CookieConsent.choices,
        CookieConsent.gpc,
        CookieConsent.given_at,
        CookieConsent.expires_at,
        CookieConsent.banner_version,
        CookieConsent.cookies_version,
        CookieConsent.policy_version,
    )
    .where(CookieConsent.consent_key == bindparam("key"))
    .order_by(CookieConsent.given_at.desc(), CookieConsent.id.desc())
    .limit(1)
)
_LATEST_ROW = _LATEST.subquery()
#: The latest choice of a consent id while it is live: given under the current banner text,
#: cookie list and policy versions, not expired, and not tied to a person other than the
#: logged-in caller (``caller``; None for a visitor, who may use any choice they hold).
_LIVE = select(_LATEST_ROW).where(
    _LATEST_ROW.c.banner_version == bindparam("banner"),
    _LATEST_ROW.c.cookies_version == bindparam("cookies"),
    _LATEST_ROW.c.policy_version == bindparam("policy"),
    _LATEST_ROW.c.expires_at > bindparam("now"),
    or_(
        _LATEST_ROW.c.subject_id.is_(None),
        _LATEST_ROW.c.subject_id
        == func.coalesce(bindparam("caller", type_=String), _LATEST_ROW.c.subject_id),
    ),
)
_INSERT = insert(table_of(CookieConsent))


async def record_first_choice(
    engine: AsyncEngine,
    policy: Policy,
    versions: CookieVersions,
    clock: Clock,
    choices: Mapping[str, bool],
    *,
    gpc: bool,
    ip: str | None,
) -> Choice:
    """``CookieConsents.record`` for a browser without a consent id, nobody logged in (a
    first visit's choice): one INSERT, on the event loop (no worker thread). ``engine``
    commits each statement on its own and waits for the disk: this row is a proof.

    Raises ``CookieChoiceInvalid``, as ``record`` does; nothing is stored then."""
    clean = _checked(policy, choices, gpc)
    made = _made(policy, versions, secrets.token_urlsafe(24), None, clean, gpc, clock.now())
    async with engine.connect() as connection:
        await connection.execute(_INSERT, _row(made, new_id(), ip))
    return made


def _checked(policy: Policy, choices: Mapping[str, bool], gpc: bool) -> dict[str, bool]:
    """The choice to store: every category of the banner named, strictly necessary on;
    with ``gpc`` every category the policy says GPC refuses is refused."""
    known = [str(cid) for cid in policy.consent.categories]
    unknown = [name for name in choices if name not in known]
    if unknown:
        raise CookieChoiceInvalid(f"unknown cookie category {_shown(unknown[0])}")
    missing = [name for name in known if name not in choices]
    if missing:
        raise CookieChoiceInvalid(
            f"the choice must name every category: {', '.join(missing)} is missing"
        )
    for cid, category in policy.consent.categories.items():
        if category.always_on and choices[str(cid)] is not True:
            raise CookieChoiceInvalid(
                f"{cid} cookies are always on: the site cannot work without them"
            )
    refused = {str(cid) for cid, c in policy.consent.categories.items() if gpc and c.gpc_refuses}
    return {name: bool(choices[name]) and name not in refused for name in known}


def _made(
    policy: Policy,
    versions: CookieVersions,
    consent_id: str,
    subject_id: str | None,
    choices: dict[str, bool],
    gpc: bool,
    now: datetime,
) -> Choice:
    return Choice(
        consent_id=consent_id,
        subject_id=subject_id,
        choices=choices,
        gpc=gpc,
        given_at=now,
        expires_at=policy.consent.lifetime.add_to(now),
        versions=versions,
    )


def _row(choice: Choice, row_id: str, ip: str | None) -> dict[str, Any]:
    """The ``cookie_consents`` row of a choice: its proof. The address only as its network."""
    return {
        "id": row_id,
        "consent_key": token_digest(choice.consent_id),
        "subject_id": choice.subject_id,
        "choices": choice.choices,
        "gpc": choice.gpc,
        "banner_version": choice.versions.banner,
        "cookies_version": choice.versions.cookies,
        "policy_version": choice.versions.policy,
        "given_at": choice.given_at,
        "expires_at": choice.expires_at,
        "ip_prefix": truncate_ip(ip),
    }


def with_live(also: Select[Any]) -> Select[Any]:
    """The statement ``CookieConsents.current_and`` runs: the live choice of a consent id
    with the value of ``also`` (a one-column select) beside it. Build it once, at
    import."""
    live = _LIVE.subquery()
    return select(*live.c, also.scalar_subquery().label("also"))


def live_params(
    versions: CookieVersions, now: datetime, consent_id: str, subject_id: str | None
) -> dict[str, Any]:
    """The parameters of a statement built with ``with_live`` or ``accepting``: the live
    choice of ``consent_id`` at ``now`` under ``versions``, for the logged-in caller
    ``subject_id`` (None for a visitor)."""
    return {
        "key": token_digest(consent_id),
        "banner": versions.banner,
        "cookies": versions.cookies,
        "policy": versions.policy,
        "now": now,
        "caller": subject_id,
    }


def accepting(category: str) -> Exists:
    """A condition that holds when the live choice of a consent id accepts ``category``:
    for a statement that writes only with consent, checked in the same round trip. Its
    parameters come from ``live_params``. Build it once, at import."""
    live = _LIVE.subquery()
    return exists().select_from(live).where(live.c.choices[category].as_boolean())


def _choice(consent_id: str, row: _ChoiceRow | Row[Any]) -> Choice:
    return Choice(
        consent_id=consent_id,
        subject_id=row.subject_id,
        choices=dict(row.choices),
        gpc=row.gpc,
        given_at=aware(row.given_at),
        expires_at=aware(row.expires_at),
        versions=CookieVersions(row.banner_version, row.cookies_version, row.policy_version),
    )


def _id_after(previous: str, previous_at: datetime, now: datetime) -> str:
    """A row id for a choice following the row ``previous`` of the same consent id: random,
    but sorting after it when both fall in the same instant (a frozen clock, or one
    microsecond), so the latest stays the latest. Never 13 decimal digits in a row, as
    ``new_id``."""
    if previous_at < now:
        return new_id()
    base = int(previous, 16)
    for _ in range(100):
        text = f"{base + 1 + secrets.randbelow(2**64):032x}"
        if len(text) == 32 and not _CARD_LIKE.search(text):
            return text
    return new_id()


def _iso(duration: Duration | None) -> str | None:
    return None if duration is None else str(duration)


def _version(parts: Iterable[object]) -> str:
    text = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _shown(name: str) -> str:
    """A category name the caller sent, quoted and cut short for an error detail."""
    return repr(name if len(name) <= 40 else name[:40] + "…")
