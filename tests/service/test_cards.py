"""Spotting full card numbers so that none is ever kept (P2.8, P7.3)."""

from __future__ import annotations

import json

import pytest

from privault.service.cards import (
    REFUSAL,
    REMOVED,
    card_number_spans,
    contains_card_number,
    json_has_card_number,
    luhn_valid,
    redact,
    refuse_card_numbers,
)
from privault.service.errors import CardNumberRefused


def with_check_digit(prefix: str) -> str:
    """``prefix`` and the digit that makes it pass Luhn (computed here, independently)."""
    for last in "0123456789":
        digits = [int(c) for c in prefix + last]
        total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
        if total % 10 == 0:
            return prefix + last
    raise AssertionError("unreachable")


NINETEEN = with_check_digit("622126000000000012")
THIRTEEN = with_check_digit("422222222222")

# Published test numbers of the card schemes, and ones built to pass Luhn.
CARDS = [
    "4111 1111 1111 1111",
    "5555-5555-5555-4444",
    "4111111111111111",
    "378282246310005",
    "3782 822463 10005",
    "6011111111111117",
    "3530 1113 3330 0000",
    THIRTEEN,
    NINETEEN,
    "4111 - 1111 - 1111 - 1111",
    "4111\u20131111\u20131111\u20131111",
    "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
    "4111\n1111\n1111\n1111",
]


@pytest.mark.parametrize("card", CARDS)
def test_p7_3_known_card_numbers_are_found(card: str) -> None:
    assert contains_card_number(card)
    assert contains_card_number(f"my card is {card}, thanks")
    assert contains_card_number(f"tok{card.replace(' ', '')}x")


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111 123",
        "4111111111111111 exp 09/27 cvv 123",
        "12 4111 1111 1111 1111",
        "+447700900123 4111111111111111",
        "+4111111111111111",
        "+378282246310005",
    ],
    ids=["cvv-after", "words-after", "digits-before", "after-a-phone", "plus-16", "plus-amex"],
)
def test_p7_3_a_card_number_among_other_digits_is_found(text: str) -> None:
    """Every run of groups is tried, and a '+' does not make a card number a phone number."""
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",
        "50108001234123",
        "+50108001234123",
        "+9608001234567",
        "+960 800 123 4567",
        "+358 40 123 4567",
        "+447700900123",
        "123456789012",
        "41111111111111111111",
        "4111.1111.1111.1111",
        "2024-05-01 09:30:00",
        "Room 4817305926, PIN 4831",
        "tok_1Nv0FGQ9RKHgCVdK",
        "",
    ],
    ids=[
        "fails-luhn",
        "14-digit-phone-fails-luhn",
        "14-digit-e164-fails-luhn",
        "e164-passes-luhn",
        "international-format-passes-luhn",
        "short-e164",
        "uk-drama-number",
        "12-digits",
        "20-digit-run",
        "dots-are-not-separators",
        "a-date",
        "room-and-pin",
        "processor-token",
        "empty",
    ],
)
def test_p7_3_what_is_not_a_card_number_passes(text: str) -> None:
    assert not contains_card_number(text)


def test_p7_3_a_long_phone_number_without_its_plus_is_judged_by_its_digits() -> None:
    """+960 800 123 4567 is a valid number that passes Luhn: with its '+' it is a phone
    number, without it nothing tells it from a card, so it is refused (write the '+')."""
    assert luhn_valid("9608001234567")
    assert not contains_card_number("+9608001234567")
    assert contains_card_number("9608001234567")


def test_p7_3_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("")


def test_p7_3_redact_takes_out_only_the_card_number() -> None:
    text = "Card 4111 1111 1111 1111 123 and 5555-5555-5555-4444. Call +447700900123."
    out = redact(text)
    assert out == f"Card {REMOVED} 123 and {REMOVED}. Call +447700900123."
    assert not contains_card_number(out)
    assert redact("nothing here 1234") == "nothing here 1234"
    assert card_number_spans("x 4111111111111111 y") == [(2, 18)]


@pytest.mark.parametrize(
    "body",
    [
        {"billing_address": "4111 1111 1111 1111"},
        {"a": {"b": [1, 2, {"c": "5555-5555-5555-4444"}]}},
        {"4111111111111111": "a key"},
        {"amount_minor": 4111111111111111},
        {"n": [[[[[[["378282246310005"]]]]]]]},
    ],
    ids=["field", "nested", "key", "integer", "deep"],
)
def test_p7_3_a_card_number_anywhere_in_a_json_body_is_found(body: object) -> None:
    assert json_has_card_number(json.dumps(body).encode())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"amount": 4.111111111111111e15}',
        b'{"amount": 4111111111111111.0}',
        b'{"amount": 41111111111111110e-1}',
        b'{"amount": -4111111111111111}',
        ('{"x": "' + "".join(f"\\u{ord(c):04x}" for c in "4111111111111111") + '"}').encode(),
        b'{"big": ' + NINETEEN.encode() + b"}",
        b"4111 1111 1111 1111 is not JSON",
        ("[" * 500 + '"4111111111111111"' + "]" * 500).encode(),
    ],
    ids=[
        "exponent",
        "float",
        "negative-exponent",
        "negative",
        "escaped",
        "19-digits",
        "text",
        "500-deep",
    ],
)
def test_p7_3_numbers_escapes_and_non_json_are_judged_by_their_digits(raw: bytes) -> None:
    assert json_has_card_number(raw)


def test_p7_3_an_ordinary_body_passes() -> None:
    body = {
        "kind": "purchase",
        "amount_minor": 4999,
        "price": 49.99,
        "ok": True,
        "none": None,
        "phone": "+447700900123",
        "token": "tok_1Nv0FGQ9RKHgCVdK",
        "huge": 1e300,
    }
    assert not json_has_card_number(json.dumps(body).encode())
    assert not json_has_card_number(b'{"n": 1e999999999}')


def test_p7_3_the_refusal_never_carries_the_number() -> None:
    with pytest.raises(CardNumberRefused) as caught:
        refuse_card_numbers(["fine", None, "pay with 4111 1111 1111 1111"])
    assert caught.value.code == "card_number_refused"
    assert caught.value.detail == REFUSAL
    assert not any(char.isdigit() for char in str(caught.value))
    refuse_card_numbers(["fine", None, "", "+447700900123"])
