"""Issue 11: Schemathesis sends every operation of /openapi.json generated requests, valid
and not, without authentication and with each kind of credential the API knows (a person's
session, a PBX's service token, a staff session). It fails on any 5xx, any response the
spec does not declare (status, media type, body schema, headers), and any body that
carries a stack trace.

The app is served in process on the test's runtime, inside its rolled-back transaction.
Examples are bounded and derandomized, so a run is the same on every machine and a
failure reproduces with the same command. Path parameters are drawn at random and, where
the caller owns one, from a real object too, so that updates and deletions get past 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext
from schemathesis.python import asgi
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from factories import Person, add_staff, mails, register, staff_login
from privault.clock import FrozenClock
from privault.runtime import Runtime
from privault.web.app import create_app

Headers = dict[str, str]

#: What a response body may never hold: Python's traceback header, a frame line, and the
#: qualified name of an exception of the app or of a library under it.
TRACEBACK = re.compile(
    r"Traceback \(most recent call last\)"
    r'|File "[^"]+", line \d+'
    r"|\b(?:privault|sqlalchemy|psycopg|sqlite3|pydantic_core|starlette|fastapi)(?:\.\w+)*\.[A-Z]\w*"
)


def no_stack_trace(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """No response body tells the caller how the server failed inside."""
    found = TRACEBACK.search(response.content.decode("utf-8", "replace"))
    assert found is None, f"the response body quotes {found.group()!r}"


CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    no_stack_trace,
]

#: Operations that end the credential they are sent with, or what it may do (a refused
#: policy): they run last, each with a credential of its own, so that the others are not
#: all answered 401 or 403.
ENDERS = (
    "POST /api/v1/me/policy/refuse",
    "PUT /api/v1/me/password",
    "DELETE /api/v1/session",
    "DELETE /api/v1/staff/session",
    "DELETE /api/v1/me",
)


def bounded(examples: int) -> settings:
    """Bounded for CI; derandomized (and without a database of past failures), so that a
    run is the same on every machine."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def modes_of(operation: APIOperation) -> list[GenerationMode]:
    """Valid requests always; invalid ones where a body or a query can be made invalid (a path
    of string parameters cannot: every string is one)."""
    if operation.body or operation.query:
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def order(operation: APIOperation) -> tuple[int, int]:
    """Deletions after the rest, the deepest path first (a list's entry before the list), and
    the operations that end a credential last of all."""
    ends = ENDERS.index(operation.label) + 1 if operation.label in ENDERS else 0
    deletes = operation.method.upper() == "DELETE"
    return ends, -operation.path.count("/") if deletes else -100


def spec_test(
    operation: APIOperation,
    mode: GenerationMode,
    headers: Headers,
    owned: dict[str, str],
    examples: int,
) -> Callable[[], None]:
    """A Hypothesis test of ``operation``: its requests drawn from the spec, half of them on
    what the caller owns where its path names that, and each answer checked."""
    drawn = operation.as_strategy(mode)
    names = {parameter.name for parameter in operation.path_parameters}
    if names and names <= owned.keys():
        mine = operation.as_strategy(mode, path_parameters={n: owned[n] for n in names})
        drawn = st.one_of(drawn, mine)

    @bounded(examples)
    @given(case=drawn)
    def holds_its_spec(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)
        if case.path_parameters and case.path_parameters.items() <= owned.items():
            # Once more on the real object, as the first request left it: deleted,
            # withdrawn, a link used.
            case.call_and_validate(headers=headers, checks=CHECKS)

    return holds_its_spec


def fuzz(
    api: BaseSchema,
    subtests: pytest.Subtests,
    headers: Headers,
    *,
    sign_in: Callable[[], Headers] | None = None,
    examples: int = 25,
    prefix: str = "/",
    owned: dict[str, str] | None = None,
) -> None:
    """Each operation under ``prefix``, with valid requests and with invalid ones, sent with
    ``headers``; an operation that ends a credential with one of ``sign_in``'s."""
    operations = [result.ok() for result in api.get_all_operations()]
    for operation in sorted((op for op in operations if op.path.startswith(prefix)), key=order):
        if operation.label in ENDERS and sign_in is not None:
            headers = sign_in()
        for mode in modes_of(operation):
            with subtests.test(operation.label, mode=mode.value):
                spec_test(operation, mode, headers, owned or {}, examples)()


@pytest.fixture
def app(at: Runtime) -> Iterator[FastAPI]:
    yield create_app(at)
    # Schemathesis keeps the lifespan of each app it served running: end it with the test.
    asgi.shutdown_lifespans()


@pytest.fixture
def api(app: FastAPI) -> BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def owned_by(client: TestClient, at: Runtime, person: Person) -> dict[str, str]:
    """One of each thing a person keeps, made through the API, and the link of an export:
    the path parameters naming them."""
    auth = person.auth
    made = {
        "post_id": client.post("/api/v1/me/posts", json={"body": "A note"}, headers=auth),
        "message_id": client.post(
            "/api/v1/me/messages", json={"subject": "Hello", "body": "A question"}, headers=auth
        ),
        "request_id": client.post("/api/v1/me/requests", json={"kind": "access"}, headers=auth),
        "purchase_id": client.post(
            "/api/v1/me/purchases",
            json={
                "kind": "purchase",
                "item": "Premium room",
                "amount_minor": 4999,
                "currency": "EUR",
                "billing_name": "Fuzz Tester",
                "payment_token": "tok_fuzz",
            },
            headers=auth,
        ),
        "list_id": client.post(
            "/api/v1/me/number-lists",
            json={"name": "Team", "numbers": [{"number": "+358401234567"}]},
            headers=auth,
        ),
    }
    assert all(r.status_code == 201 for r in made.values()), [r.text for r in made.values()]
    owned = {name: answer.json()["id"] for name, answer in made.items()}
    owned["entry_id"] = made["list_id"].json()["numbers"][0]["id"]
    chosen = client.put("/api/v1/me/username", json={"username": "fuzz.tester"}, headers=auth)
    assert chosen.status_code == 200, chosen.text
    owned["username"] = "fuzz.tester"
    at.rights_engine().run_once()
    [ready] = mails(at, person.subject_id, "rights_export_ready")
    owned["token"] = ready["context"]["link"].rpartition("/")[2]
    return owned


def test_every_operation_holds_its_spec_without_authentication(
    api: BaseSchema, subtests: pytest.Subtests
) -> None:
    # Nearly every answer is 401 before the body is read: fewer examples find as much.
    fuzz(api, subtests, {}, examples=5)


def test_every_operation_holds_its_spec_with_a_persons_session(
    api: BaseSchema, subtests: pytest.Subtests, at: Runtime, client_at: TestClient
) -> None:
    person = register(at, "fuzz")
    owned = owned_by(client_at, at, person)
    fuzz(api, subtests, person.auth, sign_in=lambda: register(at, "fuzz").auth, owned=owned)


def test_the_pbx_operations_hold_their_spec_with_a_pbx_token(
    api: BaseSchema, subtests: pytest.Subtests, pbx: Headers
) -> None:
    fuzz(api, subtests, pbx, prefix="/api/v1/pbx/")


def test_the_staff_operations_hold_their_spec_with_a_staff_session(
    api: BaseSchema,
    subtests: pytest.Subtests,
    at: Runtime,
    client_at: TestClient,
    clock: FrozenClock,
) -> None:
    officer = add_staff(at, "fuzz.officer", "privacy_officer")
    asker = register(at, "asker")
    asked = client_at.post("/api/v1/me/requests", json={"kind": "access"}, headers=asker.auth)
    assert asked.status_code == 201, asked.text

    def sign_in() -> Headers:
        clock.advance(timedelta(seconds=30))  # a code is good once: the next login, the next one
        return staff_login(client_at, officer, clock)

    fuzz(
        api,
        subtests,
        sign_in(),
        sign_in=sign_in,
        prefix="/api/v1/staff/",
        owned={"request_id": asked.json()["id"]},
    )
