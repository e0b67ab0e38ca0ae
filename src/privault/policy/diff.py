"""What changed between two policy versions, in plain words, and whether people must
agree again (fresh consent) or only be told (notice).

A change needs fresh consent when it uses data people already gave for something they did
not agree to: a purpose newly using a category that existed before, a new recipient of
personal data (or a recipient receiving it for a new purpose), a new advertising cookie.
Everything else (a new category collected from now on, a shorter retention, a cookie gone,
a new storage country inside the adequacy list...) is told to people: notice only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from privault.policy.model import Cookie, CookieCategory, Policy, RecipientKind, Retention
from privault.policy.types import Duration, duration_words

#: Only to compare two durations: calendar months and years differ in length, so both are
#: added to the same moment.
_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)


class ChangeKind(StrEnum):
    CATEGORY_ADDED = "category_added"
    CATEGORY_REMOVED = "category_removed"
    FIELD_ADDED = "field_added"
    FIELD_REMOVED = "field_removed"
    PURPOSE_ADDED = "purpose_added"
    PURPOSE_REMOVED = "purpose_removed"
    PURPOSE_EXTENDED = "purpose_extended"
    PURPOSE_NARROWED = "purpose_narrowed"
    RETENTION_LONGER = "retention_longer"
    RETENTION_SHORTER = "retention_shorter"
    RETENTION_CHANGED = "retention_changed"
    RECIPIENT_ADDED = "recipient_added"
    RECIPIENT_REMOVED = "recipient_removed"
    RECIPIENT_EXTENDED = "recipient_extended"
    COUNTRY_ADDED = "country_added"
    LOCATION_ADDED = "location_added"
    LOCATION_REMOVED = "location_removed"
    SAFEGUARD_CHANGED = "safeguard_changed"
    COOKIE_ADDED = "cookie_added"
    COOKIE_REMOVED = "cookie_removed"
    COOKIE_LIFETIME = "cookie_lifetime"
    OTHER = "other"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    text: str
    #: Why this change needs fresh consent; None when telling people is enough.
    consent: str | None = None


@dataclass(frozen=True)
class PolicyDiff:
    changes: tuple[Change, ...]

    @property
    def needs_consent(self) -> bool:
        return any(change.consent for change in self.changes)

    @property
    def reasons(self) -> list[str]:
        """Why fresh consent is needed, each once, in the order of the changes."""
        return list(dict.fromkeys(c.consent for c in self.changes if c.consent))

    @property
    def verdict(self) -> str:
        if not self.needs_consent:
            return "Notice only: nobody needs to agree again."
        return "Needs fresh consent: " + "; ".join(self.reasons) + "."

    def summary(self) -> list[str]:
        """Every change as a sentence, then the verdict."""
        if not self.changes:
            return ["Nothing changed.", self.verdict]
        return [change.text for change in self.changes] + [self.verdict]


def unreadable(version: int, reason: str) -> PolicyDiff:
    """The diff against a stored version that this Privault can no longer read: it says so,
    and, unable to tell what changed, treats the change as one that needs consent."""
    return PolicyDiff(
        (
            Change(
                ChangeKind.UNREADABLE,
                f"Version {version} can no longer be read ({reason}), so what changed since "
                "cannot be listed.",
                "what changed cannot be told",
            ),
        )
    )


def diff(old: Policy, new: Policy) -> PolicyDiff:
    """The changes from ``old`` to ``new``, in the order of the policy's sections."""
    changes = [
        *_categories(old, new),
        *_purposes(old, new),
        *_recipients(old, new),
        *_places(old, new),
        *_cookies(old, new),
    ]
    changes.extend(_other(old, new, said=bool(changes)))
    return PolicyDiff(tuple(changes))


def _categories(old: Policy, new: Policy) -> Iterator[Change]:
    for cid, category in new.categories.items():
        before = old.categories.get(cid)
        if before is None:
            yield Change(
                ChangeKind.CATEGORY_ADDED,
                f"New kind of data collected: {category.title} ({', '.join(category.fields)}).",
            )
            continue
        added = [f for f in category.fields if f not in before.fields]
        removed = [f for f in before.fields if f not in category.fields]
        if added:
            yield Change(
                ChangeKind.FIELD_ADDED,
                f"{category.title}: now also collected: {', '.join(added)}.",
            )
        if removed:
            yield Change(
                ChangeKind.FIELD_REMOVED,
                f"{category.title}: no longer collected: {', '.join(removed)}.",
            )
        yield from _retention(category.title, before.retention, category.retention)
    for cid, category in old.categories.items():
        if cid not in new.categories:
            yield Change(ChangeKind.CATEGORY_REMOVED, f"No longer collected: {category.title}.")


def _retention(title: str, old: Retention, new: Retention) -> Iterator[Change]:
    if old.period == new.period and old.from_ == new.from_:
        return
    was, now = _kept(old), _kept(new)
    kind = ChangeKind.RETENTION_CHANGED
    if (
        isinstance(old.period, Duration)
        and isinstance(new.period, Duration)
        and old.from_ == new.from_
    ):
        longer = new.period.add_to(_EPOCH) > old.period.add_to(_EPOCH)
        kind = ChangeKind.RETENTION_LONGER if longer else ChangeKind.RETENTION_SHORTER
    what = {
        ChangeKind.RETENTION_LONGER: "kept longer",
        ChangeKind.RETENTION_SHORTER: "kept for less time",
        ChangeKind.RETENTION_CHANGED: "kept differently",
    }[kind]
    yield Change(kind, f"{title}: {what}: {now}, instead of {was}.")


def _kept(retention: Retention) -> str:
    if not isinstance(retention.period, Duration):
        return "while the account exists"
    anchor = str(retention.from_).replace("_", " ")
    return f"{duration_words(retention.period)} from {anchor}"


def _purposes(old: Policy, new: Policy) -> Iterator[Change]:
    for pid, purpose in new.purposes.items():
        before = old.purposes.get(pid)
        existing = [c for c in purpose.categories if c in old.categories]
        if before is None:
            titles = _titles(new, purpose.categories)
            yield Change(
                ChangeKind.PURPOSE_ADDED,
                f"New purpose: {purpose.title}, using {titles}.",
                _new_use(new, existing),
            )
            continue
        gained = [c for c in purpose.categories if c not in before.categories]
        lost = [c for c in before.categories if c not in purpose.categories]
        if gained:
            yield Change(
                ChangeKind.PURPOSE_EXTENDED,
                f"{purpose.title}: now also uses {_titles(new, gained)}.",
                _new_use(new, [c for c in gained if c in old.categories]),
            )
        if lost:
            yield Change(
                ChangeKind.PURPOSE_NARROWED,
                f"{purpose.title}: no longer uses {_titles(old, lost)}.",
            )
    for pid, purpose in old.purposes.items():
        if pid not in new.purposes:
            yield Change(ChangeKind.PURPOSE_REMOVED, f"Purpose dropped: {purpose.title}.")


def _new_use(policy: Policy, existing: list[str]) -> str | None:
    if not existing:
        return None
    return f"a new purpose for data already held ({_titles(policy, existing)})"


def _titles(policy: Policy, category_ids: Any) -> str:
    return ", ".join(policy.categories[c].title for c in category_ids)


def _recipients(old: Policy, new: Policy) -> Iterator[Change]:
    before = {r.id: r for r in old.recipients}
    after = {r.id: r for r in new.recipients}
    for rid, recipient in after.items():
        was = before.get(rid)
        if was is None:
            anonymous = recipient.kind is RecipientKind.STATISTICS
            yield Change(
                ChangeKind.RECIPIENT_ADDED,
                f"New recipient: {recipient.name} ({recipient.kind}, in {recipient.country})"
                + (", of anonymous statistics only." if anonymous else "."),
                None if anonymous else f"a new recipient ({recipient.name})",
            )
            continue
        gained = [p for p in recipient.purposes if p not in was.purposes]
        if gained and recipient.kind is not RecipientKind.STATISTICS:
            titles = ", ".join(new.purposes[p].title for p in gained)
            yield Change(
                ChangeKind.RECIPIENT_EXTENDED,
                f"{recipient.name} now also receives data for: {titles}.",
                f"a recipient receives data for a new purpose ({recipient.name})",
            )
    for rid, recipient in before.items():
        if rid not in after:
            yield Change(ChangeKind.RECIPIENT_REMOVED, f"{recipient.name} no longer receives data.")


def _countries(policy: Policy) -> set[str]:
    return {r.country for r in policy.recipients if r.kind is not RecipientKind.STATISTICS} | {
        loc.country for loc in policy.locations
    }


def _places(old: Policy, new: Policy) -> Iterator[Change]:
    for country in sorted(_countries(new) - _countries(old)):
        condition = new.transfers.conditions.get(country)
        yield Change(
            ChangeKind.COUNTRY_ADDED,
            f"Personal data may now go to a new country: {country}"
            + (f" ({condition})." if condition else "."),
        )
    before = {loc.id: loc for loc in old.locations}
    after = {loc.id: loc for loc in new.locations}
    for lid, location in after.items():
        if lid not in before:
            yield Change(
                ChangeKind.LOCATION_ADDED,
                f"New place where data is {_role(location.role)}: {location.name}, "
                f"in {location.country}.",
            )
    for lid, location in before.items():
        if lid not in after:
            yield Change(
                ChangeKind.LOCATION_REMOVED,
                f"Data is no longer {_role(location.role)} at {location.name}.",
            )
    yield from _safeguards(old, new)


def _role(role: str) -> str:
    return "stored" if role == "storage" else "processed"


def _safeguards(old: Policy, new: Policy) -> Iterator[Change]:
    was, now = old.transfers, new.transfers
    added = [c for c in now.adequacy if c not in was.adequacy]
    removed = [c for c in was.adequacy if c not in now.adequacy]
    if added:
        yield Change(
            ChangeKind.SAFEGUARD_CHANGED,
            f"Countries added to those with adequate protection: {', '.join(added)}.",
        )
    if removed:
        yield Change(
            ChangeKind.SAFEGUARD_CHANGED,
            f"Countries no longer treated as adequately protected: {', '.join(removed)}.",
        )
    for country in sorted(set(was.conditions) | set(now.conditions)):
        before, after = was.conditions.get(country), now.conditions.get(country)
        if before == after:
            continue
        if after is None:
            text = f"Transfers to {country}: the condition is lifted (was: {before})."
        elif before is None:
            text = f"Transfers to {country}: now only on a condition: {after}"
        else:
            text = f"Transfers to {country}: the condition is now: {after}"
        yield Change(ChangeKind.SAFEGUARD_CHANGED, text)


def _cookies(old: Policy, new: Policy) -> Iterator[Change]:
    before = {c.name: c for c in old.cookies}
    after = {c.name: c for c in new.cookies}
    for name, cookie in after.items():
        was = before.get(name)
        if was is None:
            advertising = cookie.category is CookieCategory.ADVERTISING
            yield Change(
                ChangeKind.COOKIE_ADDED,
                f"New {cookie.category.replace('_', ' ')} cookie: {name} ({cookie.provider}), "
                f"{_lasts(cookie)}.",
                f"a new advertising cookie ({name})" if advertising else None,
            )
        elif was.lifetime != cookie.lifetime:
            yield Change(
                ChangeKind.COOKIE_LIFETIME,
                f"Cookie {name} now lasts {_lasts(cookie, bare=True)} instead of "
                f"{_lasts(was, bare=True)}.",
            )
    for name in before:
        if name not in after:
            yield Change(ChangeKind.COOKIE_REMOVED, f"Cookie {name} is no longer used.")


def _lasts(cookie: Cookie, bare: bool = False) -> str:
    if cookie.lifetime is None:
        return "until the browser closes" if bare else "lasting until the browser closes"
    words = duration_words(cookie.lifetime)
    return words if bare else f"lasting {words}"


_SECTIONS = {
    "prose": "the policy's wording",
    "subjects": "the kinds of people the policy covers",
    "security": "the security measures",
    "rights": "how requests about your data are handled",
    "marketing": "the marketing rules",
    "consent": "the cookie banner",
    "roles": "the staff roles",
}


def _other(old: Policy, new: Policy, said: bool) -> Iterator[Change]:
    """Changes of sections the sentences above do not cover, one line each; when nothing
    else changed but the text did, that (every new version has a new ``meta.version``)."""
    was, now = old.model_dump(mode="json"), new.model_dump(mode="json")
    changed = [label for key, label in _SECTIONS.items() if was.get(key) != now.get(key)]
    if not changed and not said and old.fingerprint != new.fingerprint:
        changed = ["the policy's details (name, contact, version, dates)"]
    for label in changed:
        yield Change(ChangeKind.OTHER, f"Changed: {label}.")
