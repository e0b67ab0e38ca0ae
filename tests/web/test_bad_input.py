"""Bad input gets the JSON error shape ``{"error", "detail"}`` and a fitting status, never 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import Person, api_error, unique_email

PASSWORD = "correct-horse-battery-42"
MiB = 1024 * 1024
JSON = {"content-type": "application/json"}

# (method, path, a valid body, needs a login)
ENDPOINTS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("POST", "/api/v1/accounts", {"email": "carol@example.com", "password": PASSWORD}, False),
    ("POST", "/api/v1/session", {"email": "carol@example.com", "password": PASSWORD}, False),
    ("POST", "/api/v1/accounts/verify", {"token": "abc"}, False),
    ("PUT", "/api/v1/me/password", {"current_password": "a", "new_password": PASSWORD}, True),
    ("PATCH", "/api/v1/me/profile", {"name": {"value": "Carol"}}, True),
    ("PUT", "/api/v1/me/room/pin", {"pin": "4831"}, True),
    ("POST", "/api/v1/me/number-lists", {"name": "Team"}, True),
    ("PATCH", "/api/v1/me/number-lists/1", {"name": "Team"}, True),
    ("POST", "/api/v1/me/number-lists/1/numbers", {"number": "+358401234567"}, True),
    ("PUT", "/api/v1/me/username", {"username": "carol"}, True),
    ("POST", "/api/v1/me/posts", {"body": "Hello"}, True),
    ("PATCH", "/api/v1/me/posts/1", {"body": "Hello"}, True),
    ("POST", "/api/v1/me/messages", {"subject": "Hi", "body": "Hello"}, True),
    (
        "POST",
        "/api/v1/me/purchases",
        {
            "kind": "donation",
            "item": "Donation",
            "amount_minor": 500,
            "currency": "EUR",
            "billing_name": "Carol Example",
            "payment_token": "tok_visa",
        },
        True,
    ),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _, _ in ENDPOINTS]


def register(client: TestClient, body: Any) -> Any:
    return client.post("/api/v1/accounts", json=body)


# Malformed JSON: 400


@pytest.mark.parametrize(("method", "path", "_", "login"), ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"email": }',
        b"not json",
        b"{'email': 'carol@example.com'}",
        b'{"email": "carol@example.com",}',
        b'{"a": 1}{"b": 2}',
        b'{"email": "carol\xff@example.com"}',
        b"[" * 100_000,
        b'{"password": ' + b"9" * 5000 + b"}",
    ],
    ids=[
        "open",
        "no-value",
        "words",
        "single-quotes",
        "trailing-comma",
        "two-documents",
        "bad-utf8",
        "deep-nesting",
        "huge-integer",
    ],
)
def test_malformed_json_is_400(
    client: TestClient,
    alice: Person,
    method: str,
    path: str,
    _: dict[str, Any],
    login: bool,
    body: bytes,
) -> None:
    headers = {**JSON, **(alice.auth if login else {})}
    response = client.request(method, path, content=body, headers=headers)
    assert api_error(response, 400, "malformed_json") == "the request body is not valid JSON"


# Request shape: 422 invalid_request naming the field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "carol@example.com", "password": 123}, "password"),
        ({"email": "carol@example.com", "password": None}, "password"),
        ({"email": "carol@example.com", "password": [PASSWORD]}, "password"),
        ({"email": 42, "password": PASSWORD}, "email"),
        ({"email": "carol@example.com", "password": PASSWORD, "display_name": 7}, "display_name"),
        ({"email": "carol@example.com", "password": PASSWORD, "display_name": ""}, "display_name"),
        ({"email": "carol@example.com", "password": "x" * 2000}, "password"),
        ([{"email": "carol@example.com", "password": PASSWORD}], "body"),
        ("carol@example.com", "body"),
        (None, "body"),
    ],
)
def test_wrong_types_are_422_naming_the_field(client: TestClient, body: Any, field: str) -> None:
    detail = api_error(register(client, body), 422, "invalid_request")
    assert detail.startswith(f"{field}: ")


@pytest.mark.parametrize(("method", "path", "valid", "login"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_unknown_fields_are_422_naming_the_field(
    client: TestClient,
    alice: Person,
    method: str,
    path: str,
    valid: dict[str, Any],
    login: bool,
) -> None:
    headers = alice.auth if login else {}
    body = {**valid, "is_admin": True}
    response = client.request(method, path, json=body, headers=headers)
    assert api_error(response, 422, "invalid_request") == "is_admin: is not a known field"


def test_unknown_nested_fields_are_422_naming_the_path(client: TestClient, alice: Person) -> None:
    body = {"name": {"value": "Carol", "audience": "everyone"}}
    response = client.patch("/api/v1/me/profile", json=body, headers=alice.auth)
    assert api_error(response, 422, "invalid_request") == "name.audience: is not a known field"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"email": "carol@example.com"}, "password: is required"),
        ({"password": PASSWORD}, "email: is required"),
        ({}, "email: is required (and 1 more)"),
    ],
)
def test_missing_fields_are_422(client: TestClient, body: dict[str, str], detail: str) -> None:
    assert api_error(register(client, body), 422, "invalid_request") == detail


def test_a_missing_body_is_422(client: TestClient) -> None:
    response = client.post("/api/v1/accounts")
    assert api_error(response, 422, "invalid_request") == "body: is required"


@pytest.mark.parametrize(
    "address",
    [
        "carol",
        "carol.example.com",
        "carol@",
        "@example.com",
        "carol@@example.com",
        "carol smith@example.com",
        "carol@example",
        "carol@example..com",
        "carol@example.invalid",
        "",
    ],
)
def test_an_invalid_email_is_422(client: TestClient, address: str) -> None:
    detail = api_error(
        register(client, {"email": address, "password": PASSWORD}), 422, "invalid_request"
    )
    assert detail.startswith("email: ")
    assert len(detail.split()) >= 4
    if address:
        assert address not in detail
    assert api_error(
        client.post("/api/v1/session", json={"email": address, "password": PASSWORD}), 422
    ).startswith("email: ")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("carol@[IPv6:secretpart]", "The IPv6 address in brackets after the @-sign is not valid."),
        ("carol@xn--secretpart.org", "The part after the @-sign is not valid IDNA."),
        ("carol@secret_part.org", "The part after the @-sign contains invalid characters."),
        ("secret<part>@example.org", "There can't be anything after the email address."),
    ],
)
def test_an_invalid_email_is_refused_without_quoting_any_part_of_it(
    client: TestClient, address: str, reason: str
) -> None:
    """email_validator's reasons may quote a character or a label of the address: the
    sentence stays, what it quotes goes."""
    for route in ("/api/v1/accounts", "/api/v1/session"):
        detail = api_error(client.post(route, json={"email": address, "password": PASSWORD}), 422)
        assert detail == f"email: value is not a valid email address: {reason}"
        assert "secret" not in detail and "_" not in detail


# Weak passwords: 422 weak_password, saying why


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-1", "at least 10 characters"),
        ("", "password: String should have at least 1 character"),
        ("x" * 257, "at most 256 characters"),
        ("password123", "one of the most common passwords"),
        ("QWERTYUIOP", "one of the most common passwords"),
        ("1234567890", "one of the most common passwords"),
        ("abababababab", "too few different characters"),
        (None, "must not contain the email address"),
    ],
)
def test_a_weak_password_is_422_saying_why(
    client: TestClient, password: str | None, reason: str
) -> None:
    address = unique_email("carol")
    password = password if password is not None else f"x-{address.split('@')[0].upper()}-9"
    response = register(client, {"email": address, "password": password})
    code = "invalid_request" if password == "" else "weak_password"
    detail = api_error(response, 422, code)
    assert reason in detail
    if password:
        assert password not in detail
    # Nothing was created: the address is still free.
    assert register(client, {"email": address, "password": PASSWORD}).status_code == 201


# Oversized bodies: 413 before anything reads them


def big_registration(size: int) -> bytes:
    head = b'{"email": "carol@example.com", "password": "'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("size", [MiB + 1, 2 * MiB, 8 * MiB])
def test_an_oversized_body_with_content_length_is_413(client: TestClient, size: int) -> None:
    body = big_registration(size)
    response = client.post("/api/v1/accounts", content=body, headers=JSON)
    assert response.request.headers["content-length"] == str(size)
    assert "over 1048576 bytes" in api_error(response, 413, "body_too_large")


@pytest.mark.parametrize("size", [MiB + 1, 3 * MiB])
def test_an_oversized_chunked_body_is_413(client: TestClient, size: int) -> None:
    response = client.post("/api/v1/accounts", content=chunks(big_registration(size)), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "over 1048576 bytes" in api_error(response, 413, "body_too_large")


def test_an_oversized_body_to_an_authenticated_route_is_413(
    client: TestClient, alice: Person
) -> None:
    body = b'{"name": {"value": "' + b"x" * (2 * MiB) + b'"}}'
    response = client.patch("/api/v1/me/profile", content=body, headers={**JSON, **alice.auth})
    api_error(response, 413, "body_too_large")
    chunked = client.patch(
        "/api/v1/me/profile", content=chunks(body), headers={**JSON, **alice.auth}
    )
    api_error(chunked, 413, "body_too_large")


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_body_of_exactly_the_limit_is_read(client: TestClient, streamed: bool) -> None:
    body = big_registration(MiB)
    response = client.post(
        "/api/v1/accounts", content=chunks(body) if streamed else body, headers=JSON
    )
    detail = api_error(response, 422, "invalid_request")
    assert detail.startswith("password: ")


def test_an_oversized_registration_creates_nothing(client: TestClient) -> None:
    address = unique_email("carol")
    body = b'{"email": "' + address.encode() + b'", "password": "' + PASSWORD.encode()
    body += b'", "display_name": "' + b"x" * MiB + b'"}'
    api_error(client.post("/api/v1/accounts", content=body, headers=JSON), 413)
    api_error(client.post("/api/v1/accounts", content=chunks(body), headers=JSON), 413)
    assert register(client, {"email": address, "password": PASSWORD}).status_code == 201


# Content types, routes, methods


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=x",
        None,
    ],
)
def test_a_non_json_content_type_is_refused(client: TestClient, content_type: str | None) -> None:
    body = b'{"email": "carol@example.com", "password": "correct-horse-battery-42"}'
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/v1/accounts", content=body, headers=headers)
    assert api_error(response, 415, "unsupported_media_type") == "send the body as application/json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v2/accounts"),
        ("POST", "/api/v1/me/nothing"),
        ("GET", "/api/v1/accounts/123"),
    ],
)
def test_an_unknown_route_is_404(client: TestClient, method: str, path: str) -> None:
    api_error(client.request(method, path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/accounts", "POST"),
        ("GET", "/api/v1/accounts", "POST"),
        ("GET", "/api/v1/session", "POST"),
        ("PUT", "/api/v1/me/profile", "GET"),
        ("POST", "/api/v1/me", "GET"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_a_wrong_method_is_405(client: TestClient, method: str, path: str, allowed: str) -> None:
    response = client.request(method, path)
    api_error(response, 405, "method_not_allowed")
    assert allowed in response.headers["allow"]


def test_a_405_allows_every_method_the_spec_declares_for_the_path(client: TestClient) -> None:
    """Found by the fuzzer (issue 11): Starlette's ``Allow`` named the methods of the first
    route of the path only, so ``OPTIONS /api/v1/me/posts`` allowed POST and not GET."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        declared = {method.upper() for method in operations}
        url = path.replace("{", "x").replace("}", "")
        response = client.options(url)
        api_error(response, 405, "method_not_allowed")
        allowed = set(response.headers["allow"].split(", "))
        assert allowed - {"HEAD"} == declared, (path, response.headers["allow"])


# Health and the fixed paths


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_lists_the_fixed_paths(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    fixed = {
        "/api/v1/accounts": {"post"},
        "/api/v1/session": {"post", "delete"},
        "/api/v1/me/profile": {"get", "patch"},
    }
    for path, methods in fixed.items():
        assert methods <= set(paths[path]), path
    register_op = paths["/api/v1/accounts"]["post"]
    assert "201" in register_op["responses"]
    assert "409" in register_op["responses"]
    error_shape = response.json()["components"]["schemas"]["ErrorOut"]
    assert set(error_shape["properties"]) == {"error", "detail"}
