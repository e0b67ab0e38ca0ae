"""Spotting full card numbers (PANs) in what people send, so that none is ever kept (P2.8, P7.3).

What counts as a card number: 13 to 19 digits that pass the Luhn check, written together
or in groups separated by spaces or dashes (at most three separator characters between two
groups), with no digit right before or after. Every run of consecutive groups of a text is
tried, so a number followed by more digits ("4111 1111 1111 1111 123") is still found; one
unbroken run of more than 19 digits is not a card number and is not searched inside. Any
Unicode decimal digit counts as a digit.

How phone numbers are told apart: a run written with a leading ``+`` (E.164 or the
international format, ``+358 40 1234567``) whose first groups form a number that is valid
in its country's numbering plan (``phonenumbers``) is a phone number, not a card, even when
its digits pass the Luhn check. A card number dressed up with a ``+`` is still caught: it is
not a valid phone number (E.164 allows 15 digits at most, and a 13-15 digit card number is
almost never valid in a numbering plan). A long phone number written without the ``+``
(``0086 138 0013 8000``) is judged by its digits alone, so one in ten of those is refused:
write phone numbers with their ``+``. Short numbers are never at risk: under 13 digits is no
card number.

Nothing here returns, logs or raises with the number itself: callers get yes/no, spans to
blank out, or ``CardNumberRefused`` with a fixed sentence.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

import phonenumbers

from privault.service.errors import CardNumberRefused

MIN_DIGITS = 13
MAX_DIGITS = 19
#: E.164 numbers have at most 15 digits.
MAX_PHONE_DIGITS = 15
REMOVED = "[card number removed]"
REFUSAL = (
    "the request carries what looks like a full card number, which is never accepted: "
    "send only the payment processor's token, the card brand, the last four digits and "
    "the expiry date"
)

_SEPARATOR = "[\\s\\-\u2010\u2011\u2012\u2013\u2014\u2212]"
_RUN = re.compile(rf"\+?\d+(?:{_SEPARATOR}{{1,3}}\d+)*")
_GROUP = re.compile(r"\d+")


def luhn_valid(digits: str) -> bool:
    """Whether ASCII ``digits`` pass the Luhn (mod 10) check used by every card number."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return bool(digits) and total % 10 == 0


def _ascii(digits: str) -> str:
    return digits if digits.isascii() else "".join(str(unicodedata.decimal(c)) for c in digits)


def _is_phone(digits: str) -> bool:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def _spans_in_run(run: re.Match[str]) -> Iterator[tuple[int, int]]:
    groups = [
        (g.start() + run.start(), g.end() + run.start(), _ascii(g.group()))
        for g in _GROUP.finditer(run.group())
    ]
    plus = run.group().startswith("+")
    for first in range(len(groups)):
        digits = ""
        for last in range(first, len(groups)):
            digits += groups[last][2]
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) < MIN_DIGITS or not luhn_valid(digits):
                continue
            if plus and first == 0 and len(digits) <= MAX_PHONE_DIGITS and _is_phone(digits):
                continue
            yield groups[first][0], groups[last][1]


def card_number_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds card numbers: merged, sorted ``(start, end)`` spans of digits."""
    spans: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        spans.extend(_spans_in_run(run))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds anything that looks like a full card number."""
    return any(True for run in _RUN.finditer(text) for _ in _spans_in_run(run))


def redact(text: str) -> str:
    """``text`` with every card number replaced by ``[card number removed]``."""
    out, at = [], 0
    for start, end in card_number_spans(text):
        out += [text[at:start], REMOVED]
        at = end
    return "".join([*out, text[at:]])


class _Number(str):
    """A JSON number kept as the literal text it was written as."""


def _number_has_card(literal: str) -> bool:
    if contains_card_number(literal):
        return True
    # 4.111111111111111e15 is the integer 4111111111111111: judge the value too.
    try:
        value = Decimal(literal)
    except InvalidOperation:
        return False
    if not value.is_finite() or value.adjusted() >= MAX_DIGITS:
        return False
    if value != value.to_integral_value():
        return False
    return contains_card_number(str(abs(int(value))))


def value_has_card_number(value: object) -> bool:
    """Whether a decoded JSON value holds a card number in any key, string or number, at
    any depth. Numbers are judged by their text; use ``json_has_card_number`` on a raw body
    so that no digit is lost to a float."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, _Number) or (
            isinstance(item, int | float) and not isinstance(item, bool)
        ):
            if _number_has_card(str(item)):
                return True
        elif isinstance(item, str) and contains_card_number(item):
            return True
    return False


def json_has_card_number(raw: bytes | str) -> bool:
    """Whether a raw JSON body holds a card number anywhere (keys, strings, numbers; nested;
    fields the schema does not know). A body that is not JSON is searched as text."""
    try:
        document = json.loads(raw, parse_int=_Number, parse_float=_Number, parse_constant=_Number)
    except (ValueError, RecursionError):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return contains_card_number(text)
    return value_has_card_number(document)


def refuse_card_numbers(values: Iterable[str | None]) -> None:
    """Raise ``CardNumberRefused`` (with a fixed sentence, never the number) when any of
    ``values`` holds a card number."""
    if any(value and contains_card_number(value) for value in values):
        raise CardNumberRefused(REFUSAL)
