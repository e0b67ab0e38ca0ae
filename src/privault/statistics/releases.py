"""The named, versioned releases of statistics (P3.10): what each counts, from which
categories of the policy, as cells keyed by their dimensions.

Every cell counts the distinct people behind it (a room's owner, an account, a buyer),
the number small-cell suppression looks at, and its measures. A release reads only
aggregates from the database, except the age bands, which need each person's birthday:
opened in one batch through the vault, read for the purpose ``statistics``. Nothing that
names a person, and no free text, reaches a cell: dimensions are months, countries,
bands and currencies. A change to what a release counts is a new ``version``.

A release with differential privacy publishes a fixed set of cells, its ``domain``: the
whole months of its window, every dial-in country of the operator's number list (and ZZ),
every age band, kind and currency. Which cells exist then depends on no one's data: a
person alone in a month or a country adds noise-covered counts to cells that are there
anyway, instead of a cell of their own.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import pycountry
from sqlalchemy import ColumnElement, Select, distinct, func, literal_column, select
from sqlalchemy.orm import Session

from privault.service.models import CallRecord, DialInNumber, ProfileField, Purchase
from privault.service.purchases import PurchaseKind
from privault.statistics.bounding import Contribution
from privault.statistics.suppression import Cell, Key
from privault.vault import Field, Vault

PURPOSE: Final = "statistics"
#: The country of a call whose dial-in number is not (or no longer) in the number list.
UNKNOWN_COUNTRY: Final = "ZZ"
AGE_BANDS: Final = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"))
AGE_BANDS_OLDER: Final = ((55, "45-54"), (65, "55-64"))
OLDEST_BAND: Final = "65 and over"


@dataclass(frozen=True)
class Source:
    """What a release's query reads: the database, the vault (for the batch path), and
    the moment of the release (ages are counted at it)."""

    session: Session
    vault: Vault
    now: datetime
    #: The months (``YYYY-MM``) a release with differential privacy covers, oldest first.
    months: tuple[str, ...] = ()


@dataclass(frozen=True)
class Release:
    name: str
    version: int
    title: str
    #: Every policy category the query reads; each must be one the statistics purpose uses.
    categories: tuple[str, ...]
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    #: What is counted, in one sentence, for the output's header.
    method: str
    query: Callable[[Source], list[Cell]]
    #: One row per person and cell, for a release with differential privacy, whose
    #: cells are then summed in Python with each person's contribution bounded.
    contributions: Callable[[Source], list[Contribution]]
    #: Every cell a release with differential privacy publishes, whoever is in the data.
    domain: Callable[[Source], list[Key]]


def window(now: datetime, count: int) -> tuple[str, ...]:
    """The ``count`` whole UTC months before that of ``now``, oldest first."""
    at = now.astimezone(UTC)
    index = at.year * 12 + at.month - 1
    return tuple(f"{n // 12:04d}-{n % 12 + 1:02d}" for n in range(index - count, index))


def _countries(session: Session) -> list[str]:
    """Every country of the dial-in number list (the operator's own, public), and ZZ."""
    listed = session.scalars(select(DialInNumber.country).distinct()).all()
    return sorted({*listed, UNKNOWN_COUNTRY})


def _bands() -> list[str]:
    return [band for _, band in (*AGE_BANDS, *AGE_BANDS_OLDER)] + [OLDEST_BAND]


def calls_by_country_domain(source: Source) -> list[Key]:
    countries = _countries(source.session)
    return [(month, country) for month in source.months for country in countries]


def active_rooms_domain(source: Source) -> list[Key]:
    return [(month,) for month in source.months]


def accounts_by_age_domain(source: Source) -> list[Key]:
    countries = _countries(source.session)
    return [(band, country) for band in _bands() for country in countries]


def purchases_by_month_domain(source: Source) -> list[Key]:
    """Every month, kind and ISO 4217 currency (the codes a purchase may be made in)."""
    currencies = sorted(currency.alpha_3 for currency in pycountry.currencies)
    kinds = sorted(kind.value for kind in PurchaseKind)
    return [(m, k, c) for m in source.months for k in kinds for c in currencies]


def month_of(session: Session, column: Any) -> ColumnElement[str]:
    """``YYYY-MM`` of a UTC timestamp column, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), literal_column("'YYYY-MM'"))
    # SQLite keeps UTC wall time as ISO text.
    return func.substr(column, 1, 7)


def _country() -> ColumnElement[str]:
    return func.coalesce(DialInNumber.country, UNKNOWN_COUNTRY)


def _calls(*columns: Any) -> Select[Any]:
    """``columns`` of the call records, each with its dial-in number's country."""
    return (
        select(*columns)
        .select_from(CallRecord)
        .outerjoin(DialInNumber, DialInNumber.number == CallRecord.dial_in)
    )


def _by_position(count: int) -> list[ColumnElement[Any]]:
    return [literal_column(str(n)) for n in range(1, count + 1)]


def calls_by_country(source: Source) -> list[Cell]:
    month = month_of(source.session, CallRecord.started_at)
    query = _calls(
        month,
        _country(),
        func.count(distinct(CallRecord.subject_id)),
        func.count(),
        func.coalesce(func.sum(CallRecord.billsec), 0),
    ).group_by(*_by_position(2))
    return [
        Cell((m, c), people, (calls, round(seconds / 60, 1)))
        for m, c, people, calls, seconds in source.session.execute(query)
    ]


def calls_by_country_per_person(source: Source) -> list[Contribution]:
    month = month_of(source.session, CallRecord.started_at)
    query = _calls(
        CallRecord.subject_id,
        month,
        _country(),
        func.count(),
        func.coalesce(func.sum(CallRecord.billsec), 0),
    ).group_by(*_by_position(3))
    return [
        Contribution(subject, (m, c), (calls, seconds / 60))
        for subject, m, c, calls, seconds in source.session.execute(query)
    ]


def active_rooms(source: Source) -> list[Cell]:
    month = month_of(source.session, CallRecord.started_at)
    query = select(month, func.count(distinct(CallRecord.subject_id))).group_by(*_by_position(1))
    return [Cell((m,), rooms, (rooms,)) for m, rooms in source.session.execute(query)]


def active_rooms_per_person(source: Source) -> list[Contribution]:
    month = month_of(source.session, CallRecord.started_at)
    query = select(CallRecord.subject_id, month).group_by(*_by_position(2))
    return [Contribution(subject, (m,), (1,)) for subject, m in source.session.execute(query)]


def age_band(born: date, on: date) -> str:
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    for below, band in (*AGE_BANDS, *AGE_BANDS_OLDER):
        if age < below:
            return band
    return OLDEST_BAND


def _home_countries(session: Session) -> dict[str, str]:
    """Each person's country: that of the dial-in number their room is called on most."""
    query = _calls(CallRecord.subject_id, _country(), func.count()).group_by(*_by_position(2))
    best: dict[str, tuple[int, str]] = {}
    for subject_id, country, calls in session.execute(query):
        current = best.get(subject_id)
        if current is None or (calls, country) > current:
            best[subject_id] = (calls, country)
    return {subject_id: country for subject_id, (_, country) in best.items()}


def accounts_by_age(source: Source) -> list[Cell]:
    people = Counter(row.key for row in accounts_by_age_per_person(source))
    return [Cell(key, count, (count,)) for key, count in people.items()]


def accounts_by_age_per_person(source: Source) -> list[Contribution]:
    rows = source.session.execute(
        select(ProfileField.subject_id, ProfileField.value_ct).where(
            ProfileField.field == "birthday"
        )
    ).all()
    items = [(s, Field("profile_fields", "value_ct", f"{s}/birthday"), blob) for s, blob in rows]
    opened = source.vault.decrypt_across(source.session, items, purpose=PURPOSE)
    homes = _home_countries(source.session)
    today = source.now.date()
    return [
        Contribution(
            subject_id,
            (
                age_band(date.fromisoformat(str(json.loads(text))), today),
                homes.get(subject_id, UNKNOWN_COUNTRY),
            ),
            (1,),
        )
        for (subject_id, _), text in zip(rows, opened, strict=True)
    ]


def purchases_by_month(source: Source) -> list[Cell]:
    month = month_of(source.session, Purchase.created_at)
    query = select(
        month,
        Purchase.kind,
        Purchase.currency,
        func.count(distinct(Purchase.subject_id)),
        func.count(),
        func.sum(Purchase.amount_minor),
    ).group_by(*_by_position(3))
    return [
        Cell((m, kind, currency), buyers, (count, amount))
        for m, kind, currency, buyers, count, amount in source.session.execute(query)
    ]


def purchases_by_month_per_person(source: Source) -> list[Contribution]:
    month = month_of(source.session, Purchase.created_at)
    query = select(
        Purchase.subject_id,
        month,
        Purchase.kind,
        Purchase.currency,
        func.count(),
        func.sum(Purchase.amount_minor),
    ).group_by(*_by_position(4))
    return [
        Contribution(subject, (m, kind, currency), (count, amount))
        for subject, m, kind, currency, count, amount in source.session.execute(query)
    ]


RELEASES: Final = {
    r.name: r
    for r in (
        Release(
            "calls_by_country",
            1,
            "Calls and call minutes per dial-in country per month",
            ("call_records",),
            ("month", "country"),
            ("calls", "minutes"),
            "calls by the UTC month they started and the country of the dial-in number "
            "(ZZ: unknown); minutes of talk time; people: distinct room owners",
            calls_by_country,
            calls_by_country_per_person,
            calls_by_country_domain,
        ),
        Release(
            "active_rooms",
            1,
            "Rooms with at least one call, per month",
            ("call_records",),
            ("month",),
            ("rooms",),
            "rooms with at least one call started in the UTC month; people: their owners",
            active_rooms,
            active_rooms_per_person,
            active_rooms_domain,
        ),
        Release(
            "accounts_by_age",
            1,
            "People by age band and country",
            ("profile", "call_records"),
            ("age_band", "country"),
            ("accounts",),
            "people who gave a birthday in their profile, by age on the day of the release "
            "and the country of the dial-in number their room is called on most (ZZ: none)",
            accounts_by_age,
            accounts_by_age_per_person,
            accounts_by_age_domain,
        ),
        Release(
            "purchases_by_month",
            1,
            "Purchases and donations per month and currency",
            ("transactions",),
            ("month", "kind", "currency"),
            ("count", "amount_minor"),
            "purchases and donations by the UTC month they were made, kind and currency; "
            "amounts in minor units (cents); people: distinct buyers",
            purchases_by_month,
            purchases_by_month_per_person,
            purchases_by_month_domain,
        ),
    )
}


def release_named(name: str) -> Release | None:
    return RELEASES.get(name)


def names() -> Sequence[str]:
    return tuple(RELEASES)
