"""How the policy's data reads in the documents made from it (the record of processing,
the policy page): labels, countries, periods, tables, and the templates that print them.

One wording for both, so the record and the page cannot describe the same entry two ways.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final, TypeVar

import pycountry
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from privault.policy.model import LegalBasis, Policy, RecipientKind, Retention, RetentionAnchor
from privault.policy.types import Duration, duration_words

#: The European Economic Area: the 27 EU member states, Iceland, Liechtenstein and Norway.
#: Data going elsewhere is a transfer to a third country (GDPR Chapter V), even where an
#: adequacy decision allows it.
EEA: Final = frozenset(
    {
        *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"),
        *("IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"),
        *("IS", "LI", "NO"),
    }
)

LEGAL_BASES: Final = {
    LegalBasis.CONSENT: "Consent (GDPR Art. 6(1)(a))",
    LegalBasis.CONTRACT: "Contract (GDPR Art. 6(1)(b))",
    LegalBasis.LEGAL_OBLIGATION: "Legal obligation (GDPR Art. 6(1)(c))",
    LegalBasis.VITAL_INTERESTS: "Vital interests (GDPR Art. 6(1)(d))",
    LegalBasis.PUBLIC_TASK: "Public task (GDPR Art. 6(1)(e))",
    LegalBasis.LEGITIMATE_INTERESTS: "Legitimate interests (GDPR Art. 6(1)(f))",
}
RECIPIENT_KINDS: Final = {
    RecipientKind.GROUP: "Group company",
    RecipientKind.PROCESSOR: "Processor (GDPR Art. 28)",
    RecipientKind.AUTHORITY: "Court or authority",
    RecipientKind.STATISTICS: "Recipient of anonymous statistics",
    RecipientKind.MARKETING: "Marketing recipient (with the person's express consent)",
}
ANCHORS: Final = {
    RetentionAnchor.COLLECTION: "collection",
    RetentionAnchor.ACCOUNT_CLOSURE: "the closure of the account",
    RetentionAnchor.CONTRACT_END: "the end of the contract",
    RetentionAnchor.LAST_ACTIVITY: "the person's last activity",
}
NONE: Final = "none"
_E = TypeVar("_E", bound=StrEnum)


class Format(StrEnum):
    MARKDOWN = "md"
    HTML = "html"


@dataclass(frozen=True)
class Table:
    """A table of a document; the first cell of each row heads that row."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Transfer:
    """A recipient or a location outside the EEA, and what makes sending data there lawful."""

    name: str
    entry_id: str
    country: str
    safeguard: str


def label(labels: Mapping[_E, str], value: _E) -> str:
    """The wording for an enum value; a value added to the model later reads as itself."""
    return labels.get(value) or str(value).replace("_", " ")


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    name = getattr(country, "common_name", None) or getattr(country, "name", code)
    return f"{name} ({code})"


def period_words(retention: Retention) -> str:
    period = retention.period
    if not isinstance(period, Duration):
        return "while the account exists; erased when it closes"
    return f"{duration_words(period)} ({period})"


def anchor_words(retention: Retention) -> str:
    return label(ANCHORS, retention.from_) if retention.from_ is not None else "not applicable"


def transfers(policy: Policy) -> Iterator[Transfer]:
    """Every recipient and location outside the EEA, with its safeguard (Art. 30(1)(e))."""
    for recipient in policy.recipients:
        if recipient.country not in EEA:
            anonymous = recipient.kind is RecipientKind.STATISTICS
            yield Transfer(
                recipient.name,
                recipient.id,
                recipient.country,
                _safeguard(policy, recipient.country, anonymous),
            )
    for location in policy.locations:
        if location.country not in EEA:
            yield Transfer(
                location.name,
                location.id,
                location.country,
                _safeguard(policy, location.country, False),
            )


def _safeguard(policy: Policy, country: str, anonymous: bool) -> str:
    if anonymous:
        return "none needed: anonymous statistics are not personal data"
    condition = policy.transfers.conditions.get(country)
    return "EU adequacy decision (GDPR Art. 45)" + (f"; {condition}" if condition else "")


def day(value: date) -> str:
    """A date as people write it: 29 November 2026."""
    return f"{value.day} {value:%B %Y}"


def markdown_cell(text: str) -> str:
    """Text safe in a Markdown table cell or paragraph: pipes, backslashes and angle
    brackets escaped, lines joined."""
    for char in ("\\", "|", "<", "*", "`"):
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


# A web address or an email address in running text; trailing punctuation is the sentence's.
_LINKABLE = re.compile(
    r"(?P<url>https?://[^\s<>\"']+[^\s<>\"'.,;:!?)])|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
)


def linked(text: str) -> Markup:
    """``text`` as HTML, its web addresses and email addresses made links. A link to
    another site carries rel="noopener noreferrer" (P10.1): the site it opens learns
    neither the page it came from nor gets a handle on its window."""
    html = Markup()
    end = 0
    for match in _LINKABLE.finditer(text):
        html += escape(text[end : match.start()])
        if match["url"]:
            html += Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(match["url"])
        else:
            html += Markup('<a href="mailto:{0}">{0}</a>').format(match["email"])
        end = match.end()
    return html + escape(text[end:])


templates = Environment(
    loader=PackageLoader("privault.policy", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
templates.filters["md"] = markdown_cell
templates.filters["linked"] = linked
templates.filters["day"] = day
