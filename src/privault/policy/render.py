"""The privacy policy as people read it (P8.1, P11.2): the seed's eleven sections, in its
order and under its titles, as an HTML fragment or Markdown.

Each section is the operator's prose from the file's ``[prose]`` around what the code
enforces, built from the same sections of the policy it reads: categories, purposes,
recipients, locations and transfers, retention, security measures, rights and cookies. The
page cannot promise what the code does not do, and a change to the policy changes both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Final

from markupsafe import Markup

from privault.consent.cookies import banner, lifetime_words
from privault.policy.model import (
    PROSE_SECTIONS,
    CookieKind,
    LocationRole,
    Paragraph,
    Policy,
    ProseSection,
    RequestKind,
)
from privault.policy.store import PolicyStore
from privault.policy.types import duration_words
from privault.policy.wording import (
    EEA,
    LEGAL_BASES,
    RECIPIENT_KINDS,
    Format,
    Table,
    anchor_words,
    country_name,
    day,
    label,
    period_words,
    templates,
    transfers,
)

#: The seed's section titles, for a section the file gives no prose.
TITLES: Final = (
    "Privacy Policy",
    "Introduction",
    "Collecting personal information",
    "Using your personal information",
    "Disclosing personal information",
    "International data transfers",
    "Retaining personal information",
    "Security of your personal information",
    "Amendments",
    "Your rights",
    "Third party website",
    "Cookies",
)
RIGHTS: Final = {
    RequestKind.ACCESS: "Access: a copy of the personal information we hold about you and "
    "what we do with it (GDPR Art. 15).",
    RequestKind.RECTIFICATION: "Rectification: correcting or completing it (GDPR Art. 16).",
    RequestKind.ERASURE: "Erasure: deleting it, except what the law obliges us to keep "
    "(GDPR Art. 17).",
    RequestKind.RESTRICTION: "Restriction: limiting what we do with it while a question about "
    "it is settled (GDPR Art. 18).",
    RequestKind.PORTABILITY: "Portability: what you gave us and what the service recorded "
    "as you used it, in a machine-readable format (GDPR Art. 20).",
    RequestKind.OBJECTION: "Objection: stopping a use that rests on our legitimate "
    "interests, and any direct marketing (GDPR Art. 21).",
}
COOKIE_HEADERS: Final = ("Name", "Provider", "Purpose", "Category", "Type", "Lifetime")
_BLANK_LINES: Final = re.compile(r"\n{3,}")
ROLES: Final = {LocationRole.STORAGE: "Storage", LocationRole.PROCESSING: "Processing"}


# --- The parts of a section ------------------------------------------------------------------


@dataclass(frozen=True)
class Prose:
    text: str
    kind: ClassVar[str] = "prose"


@dataclass(frozen=True)
class Points:
    items: tuple[str, ...]
    kind: ClassVar[str] = "points"


@dataclass(frozen=True)
class Grid:
    table: Table
    kind: ClassVar[str] = "table"


@dataclass(frozen=True)
class CookieTable:
    """One category of the cookie declaration and its cookies, a row each."""

    id: str
    title: str
    description: str
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Cookies:
    tables: tuple[CookieTable, ...]
    kind: ClassVar[str] = "cookies"


@dataclass(frozen=True)
class StoredVersion:
    number: int
    stored: date
    #: The version in force now.
    current: bool


@dataclass(frozen=True)
class Versions:
    versions: tuple[StoredVersion, ...]
    shown: int | None
    kind: ClassVar[str] = "versions"


Part = Prose | Points | Grid | Cookies | Versions


@dataclass(frozen=True)
class Section:
    number: int
    title: str
    parts: tuple[Part, ...]

    @property
    def anchor(self) -> str:
        return f"section-{self.number}"


@dataclass(frozen=True)
class Page:
    title: str
    version: int | None
    policy_version: str
    effective: date
    preamble: tuple[Part, ...]
    sections: tuple[Section, ...]


# --- Rendering ---------------------------------------------------------------------------------


def render(
    policy: Policy,
    version: int | None,
    effective: date,
    fmt: Format,
    versions: Sequence[StoredVersion] = (),
) -> str:
    """The policy as an HTML fragment (for a page of the site) or as Markdown: the preamble,
    then sections 1 to 11. ``version`` is the stored version's number (None: a file not
    stored yet, shown as a draft); ``versions`` are listed, linked, under Amendments."""
    page = build_page(policy, version, effective, versions)
    name = "policy.md" if fmt is Format.MARKDOWN else "policy.html"
    text = templates.get_template(name).render(page=page, cookie_headers=COOKIE_HEADERS)
    return _BLANK_LINES.sub("\n\n", text)


class PolicyPages:
    """The policy page of the version in force and of every stored version (P8.1)."""

    def __init__(self, store: PolicyStore, policy: Policy, version: int) -> None:
        """``policy`` is the version in force, numbered ``version``: what the code enforces."""
        self.store = store
        self.policy = policy
        self.version = version

    def current(self, fmt: Format) -> str:
        return self._render(self.policy, self.version, fmt)

    def stored(self, number: int, fmt: Format) -> str:
        """Stored version ``number``, as it was; raises ``PolicyVersionNotFound``."""
        return self._render(self.store.policy_of(number), number, fmt)

    def _render(self, policy: Policy, version: int, fmt: Format) -> str:
        versions = stored_versions(self.store.versions(), self.version)
        effective = self.store.effective_at(version)
        return render(
            policy,
            version,
            effective.date() if effective else policy.meta.effective_date,
            fmt,
            versions,
        )


def cookie_declaration(policy: Policy, heading: int = 2) -> Markup:
    """The cookie tables, by category, as HTML with ``<h{heading}>`` titles: the same
    markup on the cookie declaration and in the policy's section 11 (P11.2)."""
    html = templates.get_template("cookie_tables.html").render(
        tables=cookie_tables(policy), heading=heading, headers=COOKIE_HEADERS
    )
    return Markup(html)  # noqa: S704 (rendered by an autoescaping template)


def cookie_tables(policy: Policy) -> tuple[CookieTable, ...]:
    """Every cookie of the policy under its banner category, in the banner's order."""
    return tuple(
        CookieTable(
            category.id,
            category.title,
            category.description,
            tuple(
                (
                    cookie.name,
                    cookie.provider,
                    f"{cookie.purpose}. {cookie.description}",
                    category.title,
                    "Session" if cookie.kind is CookieKind.SESSION else "Persistent",
                    lifetime_words(cookie),
                )
                for cookie in category.cookies
            ),
        )
        for category in banner(policy)
    )


def stored_versions(
    versions: Iterable[tuple[int, datetime]], current: int
) -> tuple[StoredVersion, ...]:
    return tuple(StoredVersion(n, stored.date(), n == current) for n, stored in versions)


def build_page(
    policy: Policy, version: int | None, effective: date, versions: Sequence[StoredVersion]
) -> Page:
    data = {
        1: _controller(policy),
        2: _categories(policy),
        3: _purposes(policy),
        4: _recipients(policy),
        5: _places(policy),
        6: _retention(policy),
        7: _security(policy),
        8: (Versions(tuple(versions), version),) if versions else (),
        9: _rights(policy),
        11: _cookies(policy),
    }
    values = policy.prose_values()
    sections = []
    for number in PROSE_SECTIONS:
        prose = policy.prose.get(str(number), ProseSection())
        parts = (
            *_prose(prose.paragraphs, values),
            *data.get(number, ()),
            *_prose(prose.after, values),
        )
        sections.append(Section(number, prose.title or TITLES[number], parts))
    preamble = sections.pop(0)
    return Page(
        preamble.title,
        version,
        policy.meta.version,
        effective,
        preamble.parts,
        tuple(sections),
    )


def _prose(paragraphs: Iterable[Paragraph], values: dict[str, str]) -> Iterable[Part]:
    for paragraph in paragraphs:
        if isinstance(paragraph, str):
            yield Prose(paragraph.format_map(values))
        else:
            yield Points(tuple(point.format_map(values) for point in paragraph))


# --- What the code enforces, section by section ------------------------------------------------


def _controller(policy: Policy) -> tuple[Part, ...]:
    meta = policy.meta
    rows = [
        ("Controller", meta.controller),
        ("Website", meta.website),
        ("Contact for personal information", meta.privacy_address),
    ]
    if meta.dpo:
        rows.append(("Data protection officer", meta.dpo))
    if meta.representative:
        rows.append(("Representative in the EU", meta.representative))
    return (Grid(Table("Who we are", ("", ""), tuple(rows))),)


def _categories(policy: Policy) -> tuple[Part, ...]:
    rows = tuple((c.title, c.description) for c in policy.categories.values())
    return (Grid(Table("What we collect", ("Information", "What it is"), rows)),)


def _purposes(policy: Policy) -> tuple[Part, ...]:
    rows = tuple(
        (
            purpose.title,
            purpose.description,
            label(LEGAL_BASES, purpose.legal_basis),
            _titles(policy.category(c).title for c in purpose.categories),
        )
        for purpose in policy.purposes.values()
    )
    headers = ("Purpose", "What for", "Legal basis", "Information it may use")
    return (Grid(Table("What we use it for", headers, rows)),)


def _recipients(policy: Policy) -> tuple[Part, ...]:
    rows = tuple(
        (
            recipient.name,
            label(RECIPIENT_KINDS, recipient.kind),
            country_name(recipient.country),
            _titles(policy.purpose(p).title for p in recipient.purposes),
            recipient.description,
        )
        for recipient in policy.recipients
    )
    headers = ("Recipient", "Kind", "Country", "Purposes", "What they do")
    return (Grid(Table("Who may receive it: no one else", headers, rows)),)


def _places(policy: Policy) -> tuple[Part, ...]:
    rows = tuple(
        (
            location.name,
            label(ROLES, location.role),
            country_name(location.country),
            location.description or "",
        )
        for location in policy.locations
    )
    headers = ("Place", "Role", "Country", "What it is")
    parts: list[Part] = [Grid(Table("Where it is kept and processed", headers, rows))]
    outside = tuple((t.name, country_name(t.country), t.safeguard) for t in transfers(policy))
    if outside:
        across = ("Recipient or place", "Country", "Safeguard")
        parts.append(Grid(Table("Outside the European Economic Area", across, outside)))
    else:
        parts.append(Prose("None of it leaves the European Economic Area."))
    checked = day(policy.transfers.checked)
    parts.append(
        Prose(
            "It may go only to the European Economic Area and to these countries, whose "
            "protection the European Commission has found adequate (as checked on "
            f"{checked}); anywhere else is refused:"
        )
    )
    parts.append(
        Points(
            tuple(
                country_name(code)
                + (
                    f": {policy.transfers.conditions[code]}"
                    if code in policy.transfers.conditions
                    else ""
                )
                for code in policy.transfers.adequacy
                if code not in EEA
            )
        )
    )
    return tuple(parts)


def _retention(policy: Policy) -> tuple[Part, ...]:
    rows = tuple(
        (
            category.title,
            period_words(category.retention),
            anchor_words(category.retention),
            category.retention.reason,
            category.retention.obligation or "no",
        )
        for category in policy.categories.values()
    )
    headers = ("Information", "Kept for", "Counted from", "Why", "Kept by law after erasure")
    return (Grid(Table("How long we keep it", headers, rows)),)


def _security(policy: Policy) -> tuple[Part, ...]:
    rows = tuple((m.title, m.description) for m in policy.security.values())
    return (Grid(Table("How we protect it", ("Measure", "What we do"), rows)),)


def _rights(policy: Policy) -> tuple[Part, ...]:
    return (
        Prose("You may ask for:"),
        Points(tuple(label(RIGHTS, kind) for kind in policy.rights.kinds)),
        Prose(policy.meta.supervisory_authority),
    )


def _cookies(policy: Policy) -> tuple[Part, ...]:
    lasts = duration_words(policy.consent.lifetime)
    return (
        Cookies(cookie_tables(policy)),
        Prose(
            "Strictly necessary cookies are always on; the others are set only if you accept "
            f"their category. Your choice holds for {lasts}, or until this list changes."
        ),
    )


def _titles(titles: Iterable[str]) -> str:
    return ", ".join(titles)
