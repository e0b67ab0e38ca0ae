"""Purchases and donations (P2.8): the card only as a token, never its number (P7.3)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import Person, api_error, marker
from privault.db import Base
from privault.runtime import Runtime
from privault.service.models import Purchase
from privault.vault import Field

PURCHASES = "/api/v1/me/purchases"
JSON = {"content-type": "application/json"}
CARD = "4111 1111 1111 1111"
CARD_FORMS = ["4111111111111111", "4111 1111 1111 1111", "5555555555554444"]


def valid(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "purchase",
        "item": "Premium room, 12 months",
        "amount_minor": 4999,
        "currency": "eur",
        "billing_name": "Alice Example",
        "billing_address": "1 Example Street\n75001 Paris\nFrance",
        "phone": "+44 20 7946 0958",
        "email": "alice@example.com",
        "payment_token": "tok_1Nv0FGQ9RKHgCVdK",
        "card_brand": "Visa",
        "card_last4": "4242",
        "card_expiry": "09/27",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def stored_bytes(runtime: Runtime) -> bytes:
    """Every value of every table, as bytes: what a thief of the database would see."""
    parts: list[bytes] = []
    with runtime.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(table.select()):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value))
                    elif value is not None:
                        parts.append(str(value).encode())
    return b"\n".join(parts)


def purchases_of(client: TestClient, person: Person) -> list[dict[str, Any]]:
    response = client.get(PURCHASES, headers=person.auth)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["purchases"]
    return found


# Recording and reading back


def test_p2_8_a_purchase_is_recorded_and_read_back_by_its_owner(
    client: TestClient, alice: Person
) -> None:
    response = client.post(PURCHASES, json=valid(), headers=alice.auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        "id": body["id"],
        "kind": "purchase",
        "item": "Premium room, 12 months",
        "amount_minor": 4999,
        "currency": "EUR",
        "billing_name": "Alice Example",
        "billing_address": "1 Example Street\n75001 Paris\nFrance",
        "phone": "+442079460958",
        "email": "alice@example.com",
        "payment_token": "tok_1Nv0FGQ9RKHgCVdK",
        "card_brand": "visa",
        "card_last4": "4242",
        "card_expiry": "2027-09",
        "created_at": body["created_at"],
    }
    assert purchases_of(client, alice) == [body]
    assert client.get(f"{PURCHASES}/{body['id']}", headers=alice.auth).json() == body


def test_p2_8_a_donation_needs_only_the_name_the_amount_and_the_token(
    client: TestClient, alice: Person
) -> None:
    body = {
        "kind": "donation",
        "item": "Donation",
        "amount_minor": 500,
        "currency": "JPY",
        "billing_name": "Alice Example",
        "payment_token": "pm_card_visa",
    }
    response = client.post(PURCHASES, json=body, headers=alice.auth)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["kind"] == "donation" and out["currency"] == "JPY"
    assert [out[k] for k in ("billing_address", "phone", "email", "card_brand")] == [None] * 4
    assert [out[k] for k in ("card_last4", "card_expiry")] == [None, None]


def test_p2_8_expiry_is_taken_as_mm_yy_or_yyyy_mm(client: TestClient, alice: Person) -> None:
    for given in ("2028-02", "02/28"):
        response = client.post(PURCHASES, json=valid(card_expiry=given), headers=alice.auth)
        assert response.status_code == 201, response.text
        assert response.json()["card_expiry"] == "2028-02"


def test_p2_8_the_newest_purchase_comes_first(client: TestClient, alice: Person) -> None:
    first = client.post(PURCHASES, json=valid(item="First"), headers=alice.auth).json()
    second = client.post(PURCHASES, json=valid(item="Second"), headers=alice.auth).json()
    assert [p["id"] for p in purchases_of(client, alice)] == [second["id"], first["id"]]


# Stored: the card as token, brand, last four and expiry only, personal fields sealed


def test_p2_8_the_table_has_no_place_for_a_card_number() -> None:
    columns = set(Purchase.__table__.columns.keys())
    assert not {c for c in columns if "number" in c or "pan" in c or "cvv" in c or "cvc" in c}
    assert {"payment_token_ct", "card_brand", "card_last4_ct", "card_expiry_ct"} <= columns


def test_p2_8_personal_fields_are_stored_encrypted(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    name, address, token = marker("name"), marker("addr"), f"tok_{marker('token')}"
    email = f"{marker('email')}@example.com"
    response = client.post(
        PURCHASES,
        json=valid(billing_name=name, billing_address=address, payment_token=token, email=email),
        headers=alice.auth,
    )
    assert response.status_code == 201
    purchase_id = response.json()["id"]
    with runtime.transaction() as session:
        row = session.get(Purchase, purchase_id)
        assert row is not None
        assert row.subject_id == alice.subject_id
        assert row.card_brand == "visa"
        sealed = [
            row.billing_name_ct,
            row.billing_address_ct,
            row.phone_ct,
            row.email_ct,
            row.payment_token_ct,
            row.card_last4_ct,
            row.card_expiry_ct,
        ]
        assert all(isinstance(blob, bytes) for blob in sealed)
        opened = runtime.vault.decrypt(
            session,
            alice.subject_id,
            Field("purchases", "card_last4_ct", purchase_id),
            row.card_last4_ct or b"",
            purpose="billing",
        )
    assert opened == "4242"
    stored = stored_bytes(runtime)
    for text in (name, address, token, email, "+442079460958", "2079460958"):
        assert text.encode() not in stored


# P7.3: a card number anywhere is refused, and appears nowhere


REFUSED_BODIES: dict[str, bytes] = {
    "billing-address": json.dumps(valid(billing_address=f"Paid with {CARD}")).encode(),
    "payment-token": json.dumps(valid(payment_token="4111111111111111")).encode(),
    "last4-holding-it-all": json.dumps(valid(card_last4="4111111111111111")).encode(),
    "item": json.dumps(valid(item="5555-5555-5555-4444")).encode(),
    "amount-integer": json.dumps(valid(amount_minor=4111111111111111)).encode(),
    "amount-exponent": json.dumps(valid()).replace("4999", "4.111111111111111e15").encode(),
    "unknown-field": json.dumps(valid(card_number=CARD)).encode(),
    "nested-unknown": json.dumps(valid(extra={"a": [1, {"b": ["5555 5555 5555 4444"]}]})).encode(),
    "as-a-key": json.dumps(valid(extra={"4111111111111111": True})).encode(),
    "escaped": json.dumps(valid())
    .replace('"Alice Example"', '"' + "".join(f"\\u{ord(c):04x}" for c in "4111111111111111") + '"')
    .encode(),
    "with-a-wrong-type": json.dumps(valid(amount_minor="lots", billing_name=CARD)).encode(),
    "with-a-missing-field": json.dumps({"billing_name": CARD}).encode(),
    "string-number": json.dumps(valid(amount_minor="4111111111111111")).encode(),
}


@pytest.mark.parametrize("raw", REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys())
def test_p7_3_a_card_number_anywhere_in_the_body_is_refused_and_kept_nowhere(
    client: TestClient,
    runtime: Runtime,
    alice: Person,
    caplog: pytest.LogCaptureFixture,
    raw: bytes,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post(PURCHASES, content=raw, headers={**alice.auth, **JSON})
    detail = api_error(response, 422, "card_number_refused")
    assert "token" in detail
    assert not any(char.isdigit() for char in detail)
    assert purchases_of(client, alice) == []
    stored = stored_bytes(runtime)
    for form in [*CARD_FORMS, "5555-5555-5555-4444", "5555 5555 5555 4444"]:
        assert form not in response.text
        assert form not in caplog.text
        assert form.encode() not in stored
    assert "refused a request carrying a card number" in caplog.text


def test_p7_3_a_card_number_in_the_query_string_is_refused(
    client: TestClient, alice: Person
) -> None:
    response = client.get(PURCHASES, params={"card": CARD}, headers=alice.auth)
    api_error(response, 422, "card_number_refused")
    assert "4111" not in response.text


def test_p7_3_the_card_check_comes_before_anything_reads_the_body(client: TestClient) -> None:
    """Even without a login the body is refused first: it is never parsed further."""
    response = client.post(PURCHASES, json=valid(billing_name=CARD))
    api_error(response, 422, "card_number_refused")


@pytest.mark.parametrize(
    "phone",
    ["+50108001234123", "+9608001234567", "+960 800 123 4567"],
    ids=["14-digits-failing-luhn", "e164-passing-luhn", "international-format"],
)
def test_p7_3_a_long_phone_number_is_not_taken_for_a_card(
    client: TestClient, alice: Person, phone: str
) -> None:
    response = client.post(PURCHASES, json=valid(phone=phone), headers=alice.auth)
    assert response.status_code == 201, response.text
    assert response.json()["phone"] == phone.replace(" ", "")


# Bad input: the field is named, its value never echoed


BAD: list[tuple[str, Any, str]] = [
    ("currency", "XYZ", "invalid_currency"),
    ("currency", "12€", "invalid_currency"),
    ("currency", "EURO", "invalid_request"),
    ("phone", "not a phone", "invalid_phone_number"),
    ("phone", "+99912345", "invalid_phone_number"),
    ("email", "MARK@@example.com", "invalid_input"),
    ("email", "MARK@xn--ls8h\u0aba.com", "invalid_input"),
    ("card_expiry", "13/27", "invalid_card_details"),
    ("card_expiry", "2027/09", "invalid_card_details"),
    ("card_last4", "42a2", "invalid_card_details"),
    ("card_brand", "MARK", "invalid_card_details"),
    ("payment_token", "tok MARK with spaces", "invalid_card_details"),
    ("amount_minor", 0, "invalid_request"),
    ("amount_minor", -5, "invalid_request"),
    ("amount_minor", 12.5, "invalid_request"),
    ("amount_minor", "1250", "invalid_request"),
    ("amount_minor", True, "invalid_request"),
    ("kind", "MARK", "invalid_request"),
    ("item", "", "invalid_request"),
    ("item", "   ", "invalid_input"),
    ("billing_name", "  ", "invalid_input"),
    ("billing_name", None, "invalid_request"),
    ("surname", "MARK", "invalid_request"),
]


@pytest.mark.parametrize(("field", "value", "code"), BAD)
def test_p2_8_a_bad_field_is_named_and_never_echoed(
    client: TestClient, alice: Person, field: str, value: Any, code: str
) -> None:
    planted = marker("bad")
    value = value.replace("MARK", planted) if isinstance(value, str) else value
    body = valid()
    if value is None:
        body.pop(field)
    else:
        body[field] = value
    response = client.post(PURCHASES, json=body, headers=alice.auth)
    detail = api_error(response, 422, code)
    assert field in detail
    assert planted not in response.text
    if isinstance(value, str) and value.strip():
        assert value not in response.text
    assert purchases_of(client, alice) == []


# Mallory


def test_it_rejects_mallory(client: TestClient, alice: Person, mallory: Person) -> None:
    name, address = marker("name"), marker("addr")
    response = client.post(
        PURCHASES, json=valid(billing_name=name, billing_address=address), headers=alice.auth
    )
    purchase_id = response.json()["id"]
    assert purchases_of(client, mallory) == []
    attempts = [
        client.get(f"{PURCHASES}/{purchase_id}", headers=mallory.auth),
        client.get(PURCHASES, params={"subject_id": alice.subject_id}, headers=mallory.auth),
        client.get(PURCHASES),
        client.get(f"{PURCHASES}/{purchase_id}"),
    ]
    api_error(attempts[0], 404, "purchase_not_found")
    assert attempts[1].json() == {"purchases": []}
    api_error(attempts[2], 401, "not_authenticated")
    api_error(attempts[3], 401, "not_authenticated")
    for response in attempts:
        assert name not in response.text and address not in response.text
    assert [p["billing_name"] for p in purchases_of(client, alice)] == [name]
