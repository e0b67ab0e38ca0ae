"""Small value types of the policy file: ids, countries, durations, and the error they raise."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal

import pycountry
from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

ACCOUNT: Final = "account"
"""Retention period meaning: kept while the account exists, erased when it closes."""

# ISO 3166-1 alpha-2, the officially assigned codes.
ISO_COUNTRIES: Final = frozenset(country.alpha_2 for country in pycountry.countries)


def invalid(kind: str, reason: str, path: str = "", more: int = 0) -> PydanticCustomError:
    """A validation error whose reason (and sub-path, if any) the loader reports verbatim."""
    template = ("{path}: " if path else "") + "{reason}" + (" (and {more} more)" if more else "")
    return PydanticCustomError(
        f"policy_{kind}", template, {"reason": reason, "path": path, "more": more}
    )


# --- Durations ---------------------------------------------------------------------------

_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO 8601 duration ("P13M", "P30D", "P2Y6M", "PT30M"), added in calendar terms."""

    years: int = 0
    months: int = 0
    days: int = 0
    seconds: int = 0

    @classmethod
    def parse(cls, text: object) -> Duration:
        """Parse ``PnYnMnWnDTnHnMnS`` (weeks become days); raise ValueError otherwise."""
        match = _DURATION.fullmatch(text) if isinstance(text, str) else None
        if match is None or not any(match.groups()):
            raise ValueError(f"{text!r} is not a duration like P13M or P30D")
        n = {unit: int(value or 0) for unit, value in match.groupdict().items()}
        return cls(
            years=n["years"],
            months=n["months"],
            days=7 * n["weeks"] + n["days"],
            seconds=3600 * n["hours"] + 60 * n["minutes"] + n["seconds"],
        )

    def add_to(self, moment: datetime) -> datetime:
        """``moment`` plus this duration; months are calendar months (Jan 31 + P1M = Feb 28/29)."""
        return self._shift(moment, 1)

    def subtract_from(self, moment: datetime) -> datetime:
        """``moment`` minus this duration: the cut-off before which a period has run out."""
        return self._shift(moment, -1)

    def _shift(self, moment: datetime, sign: int) -> datetime:
        month_index = moment.month - 1 + sign * (12 * self.years + self.months)
        year, month0 = divmod(month_index, 12)
        year += moment.year
        day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
        shifted = moment.replace(year=year, month=month0 + 1, day=day)
        return shifted + sign * timedelta(days=self.days, seconds=self.seconds)

    def __str__(self) -> str:
        hours, rest = divmod(self.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        day_part = _units((self.years, "Y"), (self.months, "M"), (self.days, "D"))
        time_part = _units((hours, "H"), (minutes, "M"), (seconds, "S"))
        if not day_part and not time_part:
            return "P0D"
        return "P" + day_part + (f"T{time_part}" if time_part else "")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _to_duration, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": _DURATION.pattern, "examples": ["P13M", "P30D"]}


def duration_words(duration: Duration) -> str:
    """A duration in plain words: "6 months", "2 years and 6 months", "15 minutes"."""
    hours, rest = divmod(duration.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    units = (
        (duration.years, "year"),
        (duration.months, "month"),
        (duration.days, "day"),
        (hours, "hour"),
        (minutes, "minute"),
        (seconds, "second"),
    )
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in units if n]
    if not parts:
        return "0 seconds"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _units(*pairs: tuple[int, str]) -> str:
    return "".join(f"{value}{unit}" for value, unit in pairs if value)


def _to_duration(value: object) -> Duration:
    if isinstance(value, Duration):
        return value
    try:
        return Duration.parse(value)
    except ValueError as exc:
        raise invalid("duration", str(exc)) from None


def _to_period(value: object) -> Duration | Literal["account"]:
    if value == ACCOUNT:
        return ACCOUNT
    if isinstance(value, Duration):
        return value
    try:
        return Duration.parse(value)
    except ValueError as exc:
        raise invalid("duration", f"{exc}, or 'account'") from None


RetentionPeriod = Annotated[
    Duration | Literal["account"],
    PlainValidator(_to_period, json_schema_input_type=str),
    PlainSerializer(str, return_type=str, when_used="json"),
]

# --- Small value types -------------------------------------------------------------------

_ID = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_PROMISE = re.compile(r"P\d+(?:\.\d+)?")
# RFC 6265 token characters, optionally ending in a <placeholder> for a generated suffix.
_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:<[a-z][a-z0-9-]*>)?")


def _checked(pattern: re.Pattern[str], kind: str, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise invalid(kind, f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _country(value: str) -> str:
    if value not in ISO_COUNTRIES:
        raise invalid("country", f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise invalid("blank", "must not be blank")
    return value


def distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise invalid("duplicate", f"lists {str(value)!r} twice")
        seen.add(value)
    return values


Id = Annotated[str, _checked(_ID, "id", "a lowercase snake_case id")]
Country = Annotated[str, AfterValidator(_country)]
Text = Annotated[str, AfterValidator(_not_blank)]
Promise = Annotated[str, _checked(_PROMISE, "promise", "a promise id like P2.1")]
CookieName = Annotated[str, _checked(_COOKIE_NAME, "cookie_name", "a cookie name")]
WebAddress = Annotated[
    str, _checked(re.compile(r"https://[^\s/]+(?:/\S*)?"), "url", "an https URL")
]
SectionKey = Annotated[str, _checked(re.compile(r"\d+"), "section", "a section number")]
IdList = Annotated[tuple[Id, ...], Field(min_length=1), AfterValidator(distinct)]
