"""The policy file, typed: what is collected, why, who sees it, where, for how long.

Everything else in Privault asks this model what is allowed. Loading it checks
that the file is consistent with itself and with the promises it encodes
(no buyers, P0.1; no transfer outside the adequacy list, P5.2; a declared
lifetime for every persistent cookie, P11.1).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from enum import StrEnum
from string import Formatter
from typing import Annotated, Any, Final, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from privault.policy.errors import UnknownPolicyEntry
from privault.policy.types import (
    ACCOUNT,
    CookieName,
    Country,
    Duration,
    Id,
    IdList,
    Promise,
    RetentionPeriod,
    SectionKey,
    Text,
    WebAddress,
    distinct,
    invalid,
)
from privault.statistics.catalog import SUMS

SESSION_COOKIE: Final = "privault_session"
CONSENT_COOKIE: Final = "privault_consent"

_T = TypeVar("_T")
_NUMBERS: Final = dict(enumerate(("no", "one", "two", "three", "four", "five", "six"), start=0))


class Sensitivity(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    SECRET = "secret"  # noqa: S105 (a level, not a password)


class Source(StrEnum):
    """Where a category's data comes from (Art. 15(1)(g)); portability (Art. 20) covers
    what the person provided and what the service generated as they used it."""

    PROVIDED = "provided"
    GENERATED = "generated"
    INFERRED = "inferred"

    @property
    def portable(self) -> bool:
        return self is not Source.INFERRED


class RetentionAnchor(StrEnum):
    COLLECTION = "collection"
    ACCOUNT_CLOSURE = "account_closure"
    CONTRACT_END = "contract_end"
    LAST_ACTIVITY = "last_activity"


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) (a)-(e) and (f)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    LEGITIMATE_INTERESTS = "legitimate_interests"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"


class RecipientKind(StrEnum):
    """Who may receive data. There is deliberately no "buyer" (P0.1: we won't sell it)."""

    GROUP = "group"
    PROCESSOR = "processor"
    AUTHORITY = "authority"
    STATISTICS = "statistics"
    MARKETING = "marketing"


class LocationRole(StrEnum):
    STORAGE = "storage"
    PROCESSING = "processing"


class CookieCategory(StrEnum):
    STRICTLY_NECESSARY = "strictly_necessary"
    ANALYTICS = "analytics"
    ADVERTISING = "advertising"


class CookieKind(StrEnum):
    SESSION = "session"
    PERSISTENT = "persistent"


class RequestKind(StrEnum):
    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    PORTABILITY = "portability"
    RESTRICTION = "restriction"
    OBJECTION = "objection"


class Channel(StrEnum):
    EMAIL = "email"
    POST = "post"


class OptMode(StrEnum):
    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"


class MeasureKind(StrEnum):
    TECHNICAL = "technical"
    ORGANISATIONAL = "organisational"


# --- The sections of the file ------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Meta(_Entry):
    name: Text
    controller: Text
    privacy_address: EmailStr
    request_subject: Text
    version: Text
    effective_date: date
    website: WebAddress
    supervisory_authority: Text
    #: Art. 30(1)(a): the data protection officer and the representative (Art. 27), if any.
    dpo: Text | None = None
    representative: Text | None = None


class Retention(_Entry):
    """How long a category is kept: ``period`` counted ``from`` an anchor, or "account"."""

    period: RetentionPeriod
    from_: RetentionAnchor | None = Field(default=None, alias="from", validate_default=True)
    reason: Text
    obligation: Text | None = Field(default=None, validate_default=True)
    """The law that makes us keep this data after an erasure request (Art. 17(3)(b)):
    erasure then keeps it, re-encrypted under a retention key and restricted, until the
    period ends."""

    @field_validator("from_")
    @classmethod
    def _anchor_fits_period(cls, value: RetentionAnchor | None, info: ValidationInfo) -> Any:
        period = info.data.get("period")
        if period == ACCOUNT and value is not None:
            raise invalid("anchor", "leave 'from' out when the period is 'account'")
        if isinstance(period, Duration) and value is None:
            raise invalid("anchor", "required: the moment the period counts from")
        return value

    @field_validator("obligation")
    @classmethod
    def _obligation_has_an_end(cls, value: str | None, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("period") == ACCOUNT:
            raise invalid(
                "obligation", "a legal obligation to keep data needs a period, not 'account'"
            )
        return value

    @property
    def while_account_exists(self) -> bool:
        return self.period == ACCOUNT

    def expires_at(self, anchor: datetime) -> datetime | None:
        """When data anchored at ``anchor`` runs out; None while the account decides."""
        return self.period.add_to(anchor) if isinstance(self.period, Duration) else None


class Category(_Entry):
    title: Text
    description: Text
    promise: Promise
    fields: IdList
    sensitivity: Sensitivity
    source: Source
    retention: Retention


class Purpose(_Entry):
    title: Text
    description: Text
    legal_basis: LegalBasis
    categories: IdList
    direct_marketing: bool = False
    channels: Annotated[tuple[Channel, ...], AfterValidator(distinct)] = ()
    consent: Id | None = Field(default=None, validate_default=True)
    """The consent kind that governs this purpose (for opt-out channels: its withdrawal)."""

    @field_validator("channels")
    @classmethod
    def _channels_are_marketing(cls, value: tuple[Channel, ...], info: ValidationInfo) -> Any:
        if value and not info.data.get("direct_marketing"):
            raise invalid("channels", "only a direct_marketing purpose has channels")
        return value

    @field_validator("consent")
    @classmethod
    def _consent_when_needed(cls, value: str | None, info: ValidationInfo) -> Any:
        needed = info.data.get("legal_basis") == LegalBasis.CONSENT or info.data.get(
            "direct_marketing"
        )
        if needed and value is None:
            raise invalid("consent", "required: consent-based and marketing purposes name one")
        return value


class Recipient(_Entry):
    id: Id
    name: Text
    kind: RecipientKind
    country: Country
    purposes: IdList
    description: Text
    consent: Id | None = Field(default=None, validate_default=True)

    @field_validator("consent")
    @classmethod
    def _marketing_needs_consent(cls, value: str | None, info: ValidationInfo) -> Any:
        if info.data.get("kind") == RecipientKind.MARKETING and value is None:
            raise invalid("consent", "required: a marketing recipient needs express consent")
        return value


class Role(_Entry):
    """A staff role and the purposes for which it may use personal data (P4.1)."""

    title: Text
    purposes: IdList


class Location(_Entry):
    id: Id
    name: Text
    country: Country
    role: LocationRole
    description: Text | None = None


class Transfers(_Entry):
    adequacy: Annotated[tuple[Country, ...], Field(min_length=1), AfterValidator(distinct)]
    #: When ``adequacy`` was last checked against the Commission's decisions (P5.2): the
    #: list is only as good as that date, so it is required and shown where it decides.
    checked: date
    conditions: dict[Country, Text] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _conditions_are_adequate(self) -> Transfers:
        for country in self.conditions:
            if country not in self.adequacy:
                raise invalid("condition", "not in the adequacy list", f"conditions.{country}")
        return self


class Cookie(_Entry):
    name: CookieName
    provider: Text
    purpose: Text
    category: CookieCategory
    kind: CookieKind
    lifetime: Duration | None = Field(default=None, validate_default=True)
    description: Text

    @field_validator("lifetime")
    @classmethod
    def _lifetime_fits_kind(cls, value: Duration | None, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind == CookieKind.PERSISTENT and value is None:
            raise invalid("lifetime", "required for a persistent cookie")
        if kind == CookieKind.SESSION and value is not None:
            raise invalid("lifetime", "a session cookie ends with the session; leave it out")
        return value

    def matches(self, name: str) -> bool:
        """Whether cookie ``name`` is this one (``_ga_<container-id>`` matches ``_ga_ABC1``)."""
        stem, placeholder, _ = self.name.partition("<")
        if not placeholder:
            return name == self.name
        return name.startswith(stem) and len(name) > len(stem)


class ConsentCategory(_Entry):
    title: Text
    description: Text
    always_on: bool = False
    gpc_refuses: bool = False
    """A ``Sec-GPC: 1`` header counts as refusing this category (P11.3)."""


class ConsentRules(_Entry):
    lifetime: Duration
    categories: dict[CookieCategory, ConsentCategory]

    @model_validator(mode="after")
    def _categories_are_complete(self) -> ConsentRules:
        for category in CookieCategory:
            entry = self.categories.get(category)
            path = f"categories.{category}"
            if entry is None:
                raise invalid(
                    "consent", "missing: every cookie category needs a banner entry", path
                )
            if entry.always_on != (category == CookieCategory.STRICTLY_NECESSARY):
                raise invalid("consent", "only strictly_necessary is always on", path)
            if entry.always_on and entry.gpc_refuses:
                raise invalid("consent", "an always-on category cannot be refused by GPC", path)
        return self


class Rights(_Entry):
    deadline_days: Annotated[int, Field(ge=1)]
    # GDPR Art. 12(3): one month, extended by at most two more: three months in all.
    extension_max_months: Annotated[int, Field(ge=1, le=3)]
    kinds: Annotated[tuple[RequestKind, ...], Field(min_length=1), AfterValidator(distinct)]
    #: What an access export says about automated decision-making (Art. 15(1)(h), Art. 22).
    automated_decisions: Text

    def due_at(self, received: datetime) -> datetime:
        """The policy's days, but never later than one calendar month (Art. 12(3)): in
        February the month comes first."""
        return min(
            received + timedelta(days=self.deadline_days), Duration(months=1).add_to(received)
        )

    def latest_due_at(self, received: datetime) -> datetime:
        """The furthest an extended (complex) request may run, counted from receipt."""
        return Duration(months=self.extension_max_months).add_to(received)


class Marketing(_Entry):
    max_per_month: Annotated[int, Field(ge=0)]
    channels: dict[Channel, OptMode]

    @field_validator("channels")
    @classmethod
    def _email_is_opt_in(cls, value: dict[Channel, OptMode]) -> Any:
        if value.get(Channel.EMAIL, OptMode.OPT_IN) != OptMode.OPT_IN:
            raise invalid("channel", "email marketing must be opt_in (P3.8)", "email")
        return value


class Amendments(_Entry):
    """How a new version of the policy takes over (P8.3): until a person accepts it, only
    the policy, acceptance, export and erasure stay open to them, except for the PIN
    check of their room, which works for ``pbx_grace`` after the version takes effect so
    that meetings already arranged by phone are not cut off mid-change."""

    pbx_grace: Duration = Duration(days=14)


class NoiseMechanism(StrEnum):
    LAPLACE = "laplace"
    GAUSSIAN = "gaussian"


Epsilon = Annotated[float, Field(gt=0, le=100)]
Delta = Annotated[float, Field(ge=0, lt=1)]


class Noise(_Entry):
    """Differential-privacy noise on a release's counts and sums. Each person counts in at
    most ``max_contributions`` cells of the release (their first cells in key order), and
    each measure a person adds to a kept cell is clamped to that measure's ``bounds``
    (low, high) before summing. ``epsilon`` and ``delta`` are the whole release's: split
    evenly between its people counts and each summed measure (basic composition). Its
    cells are fixed before any data is read (``months`` whole months, every country, band,
    kind or currency), so which cells a release has reveals no one."""

    mechanism: NoiseMechanism
    epsilon: Epsilon
    delta: Delta = 0.0
    max_contributions: Annotated[int, Field(ge=1, le=10_000)] = 1
    bounds: dict[Id, tuple[float, float]] = Field(default_factory=dict)
    #: The whole UTC months before the release's own that a release by month covers.
    months: Annotated[int, Field(ge=1, le=120)] = 12

    @model_validator(mode="after")
    def _delta_fits_mechanism(self) -> Noise:
        if self.mechanism is NoiseMechanism.GAUSSIAN and self.delta <= 0:
            raise invalid("delta", "the gaussian mechanism needs a delta above 0", "delta")
        if self.mechanism is NoiseMechanism.LAPLACE and self.delta != 0:
            raise invalid("delta", "the laplace mechanism takes no delta (leave it out)", "delta")
        for measure, (lo, hi) in self.bounds.items():
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise invalid(
                    "bounds", "bounds are two finite numbers, low <= high", f"bounds.{measure}"
                )
            if lo == hi == 0:
                raise invalid(
                    "bounds", "bounds of [0, 0] leave nothing to sum", f"bounds.{measure}"
                )
        return self


class ReleaseRules(_Entry):
    """How one named release of statistics is protected (P3.10)."""

    enabled: bool = True
    #: Overrides ``statistics.k`` for this release.
    k: Annotated[int, Field(ge=2, le=1000)] | None = None
    dp: Noise | None = None


class PrivacyBudget(_Entry):
    """What each statistics recipient may spend on noisy releases in each ``period``."""

    epsilon: Epsilon
    delta: Delta = 0.0
    period: Duration


class Statistics(_Entry):
    """Statistics for third parties that identify no one (P3.10): a cell counting fewer
    than ``k`` distinct people is suppressed."""

    k: Annotated[int, Field(ge=2, le=1000)] = 10
    budget: PrivacyBudget | None = None
    releases: dict[Id, ReleaseRules] = Field(default_factory=dict)

    def k_for(self, release: str) -> int:
        entry = self.releases.get(release)
        return entry.k if entry is not None and entry.k is not None else self.k

    def enabled(self, release: str) -> bool:
        entry = self.releases.get(release)
        return entry is None or entry.enabled

    def noise_for(self, release: str) -> Noise | None:
        entry = self.releases.get(release)
        return entry.dp if entry is not None else None

    @model_validator(mode="after")
    def _noise_has_a_budget(self) -> Statistics:
        for name, release in self.releases.items():
            if release.dp is None:
                continue
            if self.budget is None:
                raise invalid(
                    "budget",
                    "a release with dp needs [statistics.budget] (epsilon, delta, period)",
                    f"releases.{name}.dp",
                )
            if release.dp.epsilon > self.budget.epsilon or release.dp.delta > self.budget.delta:
                raise invalid(
                    "budget",
                    "the release spends more than the whole budget of a period",
                    f"releases.{name}.dp",
                )
            _check_bounds(name, release.dp)
        return self


def _check_bounds(name: str, noise: Noise) -> None:
    """Every summed measure of a known release has bounds, and no bounds name another."""
    sums = SUMS.get(name)
    if sums is None:
        return
    missing = [m for m in sums if m not in noise.bounds]
    if missing:
        raise invalid(
            "bounds",
            f"a release with dp needs bounds for {', '.join(missing)} "
            "(e.g. bounds = { " + f"{missing[0]} = [0, 100]" + " })",
            f"releases.{name}.dp.bounds",
        )
    stray = [m for m in noise.bounds if m not in sums]
    if stray:
        known = ", ".join(sums) if sums else "none (its measures count people)"
        raise invalid(
            "bounds",
            f"{name} sums no measure {', '.join(stray)}: its summed measures are {known}",
            f"releases.{name}.dp.bounds.{stray[0]}",
        )


class DataSubjects(_Entry):
    """A kind of person whose data the policy covers (Art. 30(1)(c)) and their categories."""

    title: Text
    description: Text
    categories: IdList


class SecurityMeasure(_Entry):
    """A technical or organisational measure that protects personal data (Art. 30(1)(g),
    Art. 32). Only what the code or the organisation really does."""

    title: Text
    kind: MeasureKind
    description: Text
    promises: Annotated[tuple[Promise, ...], AfterValidator(distinct)] = ()


#: The policy page's sections, numbered as in the seed: 0 is the preamble, 1-11 the sections.
PROSE_SECTIONS: Final = range(12)

Paragraph = Text | Annotated[tuple[Text, ...], Field(min_length=1)]
"""A paragraph of the policy page, or a list of points (an array in the file)."""


class ProseSection(_Entry):
    """The operator's own words for one section of the policy page. What the code enforces
    (categories, purposes, recipients, places, retention, cookies) is never written here:
    the page builds it from the sections above, between ``paragraphs`` and ``after``.
    ``{name}`` in the text stands for a value of the file (see ``Policy.prose_values``)."""

    title: Text | None = None
    paragraphs: tuple[Paragraph, ...] = ()
    after: tuple[Paragraph, ...] = ()

    def texts(self) -> Iterator[str]:
        for paragraph in (*self.paragraphs, *self.after):
            yield from (paragraph,) if isinstance(paragraph, str) else paragraph


# --- The policy --------------------------------------------------------------------------


class Policy(_Entry):
    meta: Meta
    categories: Annotated[dict[Id, Category], Field(min_length=1)]
    purposes: Annotated[dict[Id, Purpose], Field(min_length=1)]
    recipients: tuple[Recipient, ...]
    locations: Annotated[tuple[Location, ...], Field(min_length=1)]
    transfers: Transfers
    cookies: tuple[Cookie, ...]
    consent: ConsentRules
    roles: Annotated[dict[Id, Role], Field(min_length=1)]
    rights: Rights
    marketing: Marketing
    amendments: Amendments = Amendments()
    statistics: Statistics = Statistics()
    # Required, but defaulted so that a missing section gets the reason below rather than
    # "required key is missing": the record of processing needs both (Art. 30(1)(c), (g)).
    subjects: dict[Id, DataSubjects] = Field(default_factory=dict, validate_default=True)
    security: dict[Id, SecurityMeasure] = Field(default_factory=dict, validate_default=True)
    prose: dict[SectionKey, ProseSection] = Field(default_factory=dict)

    @field_validator("subjects")
    @classmethod
    def _subjects_listed(cls, value: dict[str, DataSubjects]) -> Any:
        if not value:
            raise invalid(
                "missing",
                "required: the kinds of people whose data is processed, each with its "
                "categories (GDPR Art. 30(1)(c))",
            )
        return value

    @field_validator("security")
    @classmethod
    def _security_listed(cls, value: dict[str, SecurityMeasure]) -> Any:
        if not value:
            raise invalid(
                "missing",
                "required: the technical and organisational measures that protect the data "
                "(GDPR Art. 30(1)(g), Art. 32)",
            )
        return value

    @field_validator("prose")
    @classmethod
    def _prose_sections_exist(cls, value: dict[str, ProseSection]) -> Any:
        for key in value:
            if int(key) not in PROSE_SECTIONS:
                raise invalid("section", "the policy page has sections 0 (preamble) to 11", key)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        problems = list(_problems(self))
        if problems:
            path, reason = problems[0]
            raise invalid("inconsistent", reason, path, more=len(problems) - 1)
        return self

    def category(self, category_id: str) -> Category:
        return _lookup(self.categories, category_id, "category")

    def purpose(self, purpose_id: str) -> Purpose:
        return _lookup(self.purposes, purpose_id, "purpose")

    def recipient(self, recipient_id: str) -> Recipient:
        return _lookup({r.id: r for r in self.recipients}, recipient_id, "recipient")

    def location(self, location_id: str) -> Location:
        return _lookup({loc.id: loc for loc in self.locations}, location_id, "location")

    def role(self, role_id: str) -> Role:
        return _lookup(self.roles, role_id, "role")

    def cookie(self, name: str) -> Cookie:
        """The declared cookie called ``name`` (exactly, or by its placeholder pattern)."""
        for cookie in self.cookies:
            if cookie.matches(name):
                return cookie
        raise UnknownPolicyEntry(f"the policy declares no cookie {name!r}")

    def purpose_allows(self, purpose: str, category: str) -> bool:
        """Whether the policy lets ``purpose`` use ``category`` (unknown ids: no)."""
        entry = self.purposes.get(purpose)
        return entry is not None and category in entry.categories

    def purposes_for(self, category: str) -> tuple[str, ...]:
        return tuple(pid for pid, p in self.purposes.items() if category in p.categories)

    def is_adequate(self, country: str) -> bool:
        """Whether personal data may go to ``country`` (EEA or an adequacy decision, P5.2)."""
        return country in self.transfers.adequacy

    def prose_values(self) -> dict[str, str]:
        """What ``{name}`` may stand for in the prose: values the code also uses, so the page
        cannot promise another address, subject line or deadline than the one enforced."""
        months = self.rights.extension_max_months
        return {
            "name": self.meta.name,
            "controller": self.meta.controller,
            "website": self.meta.website,
            "privacy_address": self.meta.privacy_address,
            "request_subject": self.meta.request_subject,
            "deadline_days": str(self.rights.deadline_days),
            "extension_months": f"{_NUMBERS.get(months, str(months))} month"
            + ("s" if months != 1 else ""),
        }

    def canonical_json(self) -> str:
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON: identical policies, identical fingerprints."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _lookup(entries: dict[str, _T], key: str, what: str) -> _T:
    try:
        return entries[key]
    except KeyError:
        raise UnknownPolicyEntry(f"the policy declares no {what} {key!r}") from None


def _problems(policy: Policy) -> Iterator[tuple[str, str]]:
    """Every way the sections disagree with each other, as (dotted path, reason)."""
    for pid, purpose in policy.purposes.items():
        for category in purpose.categories:
            if category not in policy.categories:
                yield f"purposes.{pid}.categories", f"unknown category {category!r}"
        for channel in purpose.channels:
            if channel not in policy.marketing.channels:
                yield f"purposes.{pid}.channels", f"{channel!r} is not in marketing.channels"
    for cid in policy.categories:
        if not policy.purposes_for(cid):
            yield f"categories.{cid}", "no purpose uses this category"
    for sid, subjects in policy.subjects.items():
        for category in subjects.categories:
            if category not in policy.categories:
                yield f"subjects.{sid}.categories", f"unknown category {category!r}"
    for cid in policy.categories:
        if policy.subjects and not any(cid in s.categories for s in policy.subjects.values()):
            yield f"categories.{cid}", "no kind of data subject in [subjects] lists this category"
    for rid, role in policy.roles.items():
        for purpose_id in role.purposes:
            if purpose_id not in policy.purposes:
                yield f"roles.{rid}.purposes", f"unknown purpose {purpose_id!r}"
    yield from _duplicates("recipients", [r.id for r in policy.recipients], "id")
    yield from _duplicates("locations", [loc.id for loc in policy.locations], "id")
    yield from _duplicates("cookies", [c.name for c in policy.cookies], "name")
    for i, recipient in enumerate(policy.recipients):
        for purpose_id in recipient.purposes:
            if purpose_id not in policy.purposes:
                yield f"recipients.{i}.purposes", f"unknown purpose {purpose_id!r}"
        # Anonymous aggregates are not personal data; everyone else receives personal data.
        if recipient.kind != RecipientKind.STATISTICS and not policy.is_adequate(recipient.country):
            yield (
                f"recipients.{i}.country",
                _outside(recipient.kind, recipient.id, recipient.country),
            )
    for i, location in enumerate(policy.locations):
        if not policy.is_adequate(location.country):
            yield f"locations.{i}.country", _outside("location", location.id, location.country)
    yield from _cookie_problems(policy)
    yield from _prose_problems(policy)


def _prose_problems(policy: Policy) -> Iterator[tuple[str, str]]:
    known = policy.prose_values()
    for key, section in policy.prose.items():
        for text in section.texts():
            try:
                names = [name for _, name, _, _ in Formatter().parse(text) if name is not None]
            except ValueError as exc:
                yield f"prose.{key}", f"{exc} (write {{{{ and }}}} for a brace)"
                continue
            for name in names:
                if name not in known:
                    yield f"prose.{key}", f"unknown {{{name}}}: one of {', '.join(known)}"


def _cookie_problems(policy: Policy) -> Iterator[tuple[str, str]]:
    session = next((c for c in policy.cookies if c.name == SESSION_COOKIE), None)
    if session is None:
        yield "cookies", f"{SESSION_COOKIE!r} (the login session) must be declared"
    elif session.category != CookieCategory.STRICTLY_NECESSARY:
        index = policy.cookies.index(session)
        yield f"cookies.{index}.category", f"{SESSION_COOKIE!r} must be strictly_necessary"
    elif session.kind != CookieKind.SESSION:
        index = policy.cookies.index(session)
        yield f"cookies.{index}.kind", f"{SESSION_COOKIE!r} must be a session cookie"
    for i, cookie in enumerate(policy.cookies):
        # The cookie that remembers the choice must last exactly as long as the choice (P1.2).
        if cookie.name == CONSENT_COOKIE and cookie.lifetime != policy.consent.lifetime:
            yield (
                f"cookies.{i}.lifetime",
                f"must equal consent.lifetime ({policy.consent.lifetime})",
            )


def _outside(kind: str, entry_id: str, country: str) -> str:
    return f"{kind} {entry_id!r} in country {country!r} is outside the EEA and the adequacy list"


def _duplicates(section: str, keys: list[str], key: str) -> Iterator[tuple[str, str]]:
    for i, value in enumerate(keys):
        if value in keys[:i]:
            yield f"{section}.{i}.{key}", f"{value!r} is declared twice"
