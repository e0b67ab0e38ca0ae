"""Phone numbers: parsed with ``phonenumbers`` and kept in E.164 (``+358401234567``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from privault.service.errors import InvalidPhoneNumber, InvalidRegion

#: Longest text accepted as a phone number before parsing (spaces, dashes and all).
MAX_RAW = 40

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code is unknown",
    NumberParseException.NOT_A_NUMBER: "it does not look like a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_LENGTH_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code is unknown",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "no number in its country has this length",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "it can only be dialled locally; add the area code",
}


@dataclass(frozen=True)
class Phone:
    e164: str
    #: ISO 3166 alpha-2 region of the number, or ``None`` for a non-geographic one (+800 ...).
    region: str | None

    @property
    def display(self) -> str:
        """The international format for people: ``+358 40 1234567``."""
        return phonenumbers.format_number(
            phonenumbers.parse(self.e164), PhoneNumberFormat.INTERNATIONAL
        )


def check_region(region: str | None) -> str | None:
    """``region`` upper-cased, or ``InvalidRegion`` when ``phonenumbers`` does not know it."""
    if region is None:
        return None
    upper = region.strip().upper()
    if upper not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidRegion(f"{region!r} is not a region code phone numbers are known for")
    return upper


def parse_phone(raw: str, region: str | None = None, *, what: str = "the number") -> Phone:
    """Parse ``raw`` as written by people, in international format or national to ``region``.

    Raises ``InvalidPhoneNumber`` saying why, as "<what> is not a valid phone number: <reason>",
    or ``InvalidRegion`` for an unknown ``region``. ``what`` names the number in the message:
    callers pass a position or a description, never the number when it is someone's personal data.
    """
    region = check_region(region)
    text = raw.strip()

    def refuse(reason: str) -> InvalidPhoneNumber:
        return InvalidPhoneNumber(f"{what} is not a valid phone number: {reason}")

    if not text:
        raise refuse("it is empty")
    if len(text) > MAX_RAW:
        raise refuse(f"it is longer than {MAX_RAW} characters")
    international = text.startswith("+")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE and not international:
            raise refuse(
                "it has no country code: write it as +<country code> <number>, "
                "or give the region it is dialled in"
            ) from None
        raise refuse(_PARSE_REASONS.get(exc.error_type, "it cannot be read")) from None
    if number.extension:
        raise refuse("it has an extension, which cannot be dialled into a conference")
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        raise refuse(_LENGTH_REASONS.get(possible, "it has an impossible length"))
    if not phonenumbers.is_valid_number(number):
        raise refuse("no such number exists in its country's numbering plan")
    return Phone(*_e164_and_region(number))


def _e164_and_region(number: phonenumbers.PhoneNumber) -> tuple[str, str | None]:
    """``number`` in E.164 and its ISO country; ``None`` for a non-geographic one (+800 ...).
    A number no numbering plan knows goes to its country code's main country."""
    regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    country = regions[0] if regions else None
    if len(regions) > 1:
        # Only a code several countries share (+1, +44, +7, ...) needs the slower look-up.
        country = phonenumbers.region_code_for_number(number) or country
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return e164, country if country and len(country) == 2 and country != "ZZ" else None


@lru_cache(maxsize=100_000)
def read_number(text: str, region: str | None = None) -> tuple[str, str | None] | None:
    """A number as a network reports it (a PBX's caller ID or dialled number), as (E.164,
    ISO country or ``None``); ``None`` when it reads as no number. Lenient where
    ``parse_phone`` is strict: a possible number is enough, ``00`` and bare international
    digits are read too, and national numbers are read in ``region``.

    Remembered in memory (bounded, never written anywhere): reading one costs tens of
    microseconds, and the same callers come back call after call.
    """
    text = text.strip()
    if not text or len(text) > MAX_RAW:
        return None
    tries = [text]
    if text.startswith("00"):
        tries.append("+" + text[2:])
    if text.isdigit():
        tries.append("+" + text)
    for candidate in tries:
        try:
            number = phonenumbers.parse(candidate, region)
        except NumberParseException:
            continue
        possible = phonenumbers.is_possible_number_with_reason(number)
        if not number.extension and possible == ValidationResult.IS_POSSIBLE:
            return _e164_and_region(number)
    return None
