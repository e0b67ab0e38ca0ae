"""The room, its PIN, the PBX's PIN check and number lists over HTTP (P7.5, P2.6)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from factories import Person, api_error
from privault.clock import FrozenClock
from privault.config import Settings
from privault.runtime import Runtime, open_runtime
from privault.service.models import Room
from privault.service.pbx import PbxTokenService
from privault.web.app import create_app

ROOM = "/api/v1/me/room"
PIN = "/api/v1/me/room/pin"
ROTATE = "/api/v1/me/room/rotate"
CHECK = "/api/v1/pbx/pin-check"
LISTS = "/api/v1/me/number-lists"
STRONG = ("4831", "5927", "7364")
LONG = ("3719520", "8042613", "5926481")
FI_MOBILE = "+358401234567"
GB_LONDON = "+442079460958"


def strong_pin(room_id: str, choices: tuple[str, ...] = STRONG) -> str:
    return next(pin for pin in choices if pin not in room_id)


def set_pin(client: TestClient, person: Person, pin: str) -> None:
    response = client.put(PIN, json={"pin": pin}, headers=person.auth)
    assert response.status_code == 204, response.text
    assert response.content == b""


def check(
    client: TestClient, pbx: dict[str, str], room_id: str, pin: str, **extra: str
) -> Response:
    return client.post(CHECK, json={"room_id": room_id, "pin": pin, **extra}, headers=pbx)


def allowed(client: TestClient, pbx: dict[str, str], room_id: str, pin: str, **extra: str) -> bool:
    response = check(client, pbx, room_id, pin, **extra)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"allowed"} and isinstance(body["allowed"], bool)
    return bool(body["allowed"])


def made_up_room(runtime: Runtime) -> str:
    with runtime.transaction() as session:
        rooms = runtime.rooms(session)
        candidate = 1_000_000_001
        while rooms.owner_of(str(candidate)) is not None:
            candidate += 1
    return str(candidate)


# -- the owner's room ----------------------------------------------------------------------


def test_the_owner_sees_the_room_id_whether_a_pin_is_set_and_the_dial_in_numbers(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    with runtime.transaction() as session:
        dial_ins = runtime.dial_ins(session)
        dial_ins.add("+44 20 7946 0000", city="London")
        dial_ins.add("+358 9 4245 0000", city="Helsinki")
    response = client.get(ROOM, headers=alice.auth)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "room_id": alice.room_id,
        "pin_set": False,
        "pin_changed_at": None,
        "dial_in": [
            {
                "country": "FI",
                "number": "+358942450000",
                "display": "+358 9 42450000",
                "city": "Helsinki",
            },
            {
                "country": "GB",
                "number": "+442079460000",
                "display": "+44 20 7946 0000",
                "city": "London",
            },
        ],
    }


def test_p7_5_the_owner_sets_and_changes_the_pin_which_is_never_shown(
    client: TestClient, alice: Person
) -> None:
    first, second = strong_pin(alice.room_id), strong_pin(alice.room_id, LONG)
    set_pin(client, alice, first)
    set_pin(client, alice, second)
    room = client.get(ROOM, headers=alice.auth)
    assert room.json()["pin_set"] is True
    changed = datetime.fromisoformat(room.json()["pin_changed_at"])
    assert abs(changed - datetime.now(UTC)) < timedelta(minutes=1)
    me = client.get("/api/v1/me", headers=alice.auth)
    for pin in (first, second):
        for response in (room, me):
            assert pin not in response.text.replace(alice.room_id, "")


@pytest.mark.parametrize(
    ("pin", "code"),
    [
        ("123", "invalid_pin"),
        ("12345678901", "invalid_pin"),
        ("0000", "weak_pin"),
        ("4567", "weak_pin"),
    ],
)
def test_p7_5_a_bad_pin_is_refused_with_the_reason_and_without_the_pin(
    client: TestClient, alice: Person, pin: str, code: str
) -> None:
    detail = api_error(client.put(PIN, json={"pin": pin}, headers=alice.auth), 422, code)
    assert pin not in detail
    assert client.get(ROOM, headers=alice.auth).json()["pin_set"] is False


def test_p7_5_a_pin_must_be_a_json_string(client: TestClient, alice: Person) -> None:
    api_error(client.put(PIN, json={"pin": 4831}, headers=alice.auth), 422, "invalid_request")
    api_error(client.put(PIN, json={"pin": "4831", "x": 1}, headers=alice.auth), 422)


def test_p7_5_rotating_the_room_id_stops_the_old_one_at_once(
    client: TestClient, alice: Person, pbx: dict[str, str]
) -> None:
    pin = strong_pin(alice.room_id)
    set_pin(client, alice, pin)
    response = client.post(ROTATE, headers=alice.auth)
    assert response.status_code == 200, response.text
    new_id = response.json()["room_id"]
    assert set(response.json()) == {"room_id"}
    assert new_id != alice.room_id and len(new_id) == 10 and new_id.isdigit()
    assert client.get("/api/v1/me", headers=alice.auth).json()["room_id"] == new_id
    assert client.get(ROOM, headers=alice.auth).json()["room_id"] == new_id
    assert allowed(client, pbx, alice.room_id, pin) is False
    assert allowed(client, pbx, new_id, pin) is True


def test_p7_2_the_room_needs_a_login(client: TestClient) -> None:
    for method, path in [("GET", ROOM), ("PUT", PIN), ("POST", ROTATE)]:
        api_error(client.request(method, path, json={"pin": "4831"}), 401, "not_authenticated")


# -- the PBX's PIN check -------------------------------------------------------------------


def test_p7_5_the_pbx_learns_only_allowed_or_not(
    client: TestClient, alice: Person, pbx: dict[str, str]
) -> None:
    pin = strong_pin(alice.room_id)
    assert allowed(client, pbx, alice.room_id, pin) is False, "no PIN set yet"
    set_pin(client, alice, pin)
    assert allowed(client, pbx, alice.room_id, pin, caller="+358 40 123 4567") is True
    assert allowed(client, pbx, alice.room_id, "0417") is False


def test_p7_5_the_pin_check_cannot_tell_a_made_up_room_from_a_real_one_with_a_wrong_pin(
    client: TestClient, runtime: Runtime, alice: Person, pbx: dict[str, str]
) -> None:
    set_pin(client, alice, strong_pin(alice.room_id))
    made_up = made_up_room(runtime)

    def seen(response: Response) -> tuple[int, bytes, dict[str, str]]:
        # The date and the request's own id differ from one request to any other.
        varying = {"date", "x-request-id"}
        headers = {k: v for k, v in response.headers.items() if k.lower() not in varying}
        return response.status_code, response.content, headers

    for _ in range(7):  # wrong, then locked: the same every time
        real = check(client, pbx, alice.room_id, "041738", caller=FI_MOBILE)
        fake = check(client, pbx, made_up, "041738", caller=GB_LONDON)
        assert seen(real) == seen(fake)
        assert real.json() == {"allowed": False}


def test_p7_5_it_refuses_the_right_pin_while_locked(
    client: TestClient, alice: Person, pbx: dict[str, str]
) -> None:
    pin = strong_pin(alice.room_id)
    set_pin(client, alice, pin)
    for _ in range(5):
        assert allowed(client, pbx, alice.room_id, "041738") is False
    assert allowed(client, pbx, alice.room_id, pin) is False


@pytest.fixture
def frozen(base_settings: Settings, runtime: Runtime) -> Iterator[tuple[TestClient, FrozenClock]]:
    """A client of an app on a clock the test moves, sharing the test's transaction."""
    clock = FrozenClock(datetime.now(UTC))
    moved = open_runtime(base_settings, factory=runtime.factory, clock=clock)
    with TestClient(create_app(moved), raise_server_exceptions=False) as client:
        yield client, clock


def test_p7_5_a_locked_room_opens_again_after_15_minutes(
    frozen: tuple[TestClient, FrozenClock], alice: Person, pbx: dict[str, str]
) -> None:
    client, clock = frozen
    pin = strong_pin(alice.room_id)
    set_pin(client, alice, pin)
    for _ in range(5):
        assert allowed(client, pbx, alice.room_id, "041738") is False
    clock.advance(timedelta(minutes=14))
    assert allowed(client, pbx, alice.room_id, pin) is False
    clock.advance(timedelta(minutes=1))
    assert allowed(client, pbx, alice.room_id, pin) is True


@pytest.mark.parametrize("credentials", ["none", "session token", "revoked token", "made up"])
def test_p7_5_the_pin_check_needs_a_pbx_token(
    client: TestClient, runtime: Runtime, alice: Person, credentials: str
) -> None:
    pin = strong_pin(alice.room_id)
    set_pin(client, alice, pin)
    headers: dict[str, str] = {}
    if credentials == "session token":
        headers = alice.auth
    elif credentials == "revoked token":
        with runtime.transaction() as session:
            tokens = PbxTokenService(session, runtime.clock)
            token = tokens.create("old-pbx")
            tokens.revoke("old-pbx")
        headers = {"Authorization": f"Bearer {token}"}
    elif credentials == "made up":
        headers = {"Authorization": f"Bearer pbx_{secrets.token_urlsafe(32)}"}
    response = check(client, headers, alice.room_id, pin)
    api_error(response, 401, "pbx_token_invalid")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "body",
    [
        {"room_id": "1234567890"},
        {"room_id": "1234567890", "pin": "4831", "extra": True},
        {"room_id": "1234567890", "pin": "4" * 33},
        {"room_id": "1" * 33, "pin": "4831"},
        {"room_id": "1234567890", "pin": "4831", "caller": "1" * 41},
        {"room_id": 1234567890, "pin": "4831"},
    ],
)
def test_a_malformed_pin_check_is_422_without_echoing_it(
    client: TestClient, pbx: dict[str, str], body: dict[str, Any]
) -> None:
    detail = api_error(client.post(CHECK, json=body, headers=pbx), 422, "invalid_request")
    assert "1234567890" not in detail and "4831" not in detail


@pytest.mark.parametrize("body", [b"{", b'{"room_id": "1", "pin": }', b"[" * 10_000])
def test_malformed_json_to_the_pin_check_is_400(
    client: TestClient, pbx: dict[str, str], body: bytes
) -> None:
    headers = {**pbx, "content-type": "application/json"}
    api_error(client.post(CHECK, content=body, headers=headers), 400, "malformed_json")


def test_p7_5_pins_and_room_ids_stay_out_of_logs_and_the_pin_out_of_the_database(
    client: TestClient,
    runtime: Runtime,
    alice: Person,
    pbx: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    pin = strong_pin(alice.room_id, LONG)
    set_pin(client, alice, pin)
    api_error(client.put(PIN, json={"pin": "9876543"}, headers=alice.auth), 422, "weak_pin")
    for _ in range(6):
        allowed(client, pbx, alice.room_id, "0417385", caller=FI_MOBILE)
    assert "PIN checks of a room" in caplog.text
    for value in (pin, "9876543", "0417385", alice.room_id, FI_MOBILE[1:]):
        assert value not in caplog.text
    with runtime.transaction() as session:
        row = session.scalar(select(Room).where(Room.subject_id == alice.subject_id))
        assert row is not None and row.pin_hash is not None
        assert pin.encode() not in row.pin_hash


# -- number lists --------------------------------------------------------------------------


def create_list(client: TestClient, person: Person, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(LISTS, json=body, headers=person.auth)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def test_p2_6_the_owner_keeps_named_lists_of_labelled_numbers(
    client: TestClient, alice: Person
) -> None:
    made = create_list(
        client,
        alice,
        {"name": "Team", "numbers": [{"number": "040 123 4567", "label": "Ann", "region": "FI"}]},
    )
    assert made["name"] == "Team"
    assert [(n["number"], n["country"], n["label"]) for n in made["numbers"]] == [
        (FI_MOBILE, "FI", "Ann")
    ]
    url = f"{LISTS}/{made['id']}"
    added = client.post(f"{url}/numbers", json={"number": "+44 20 7946 0958"}, headers=alice.auth)
    assert added.status_code == 201, added.text
    assert added.json()["number"] == GB_LONDON and added.json()["label"] is None

    renamed = client.patch(url, json={"name": "Crew"}, headers=alice.auth)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Crew"
    listed = client.get(LISTS, headers=alice.auth).json()
    assert [(s["id"], s["name"], s["size"]) for s in listed["lists"]] == [(made["id"], "Crew", 2)]

    gone = client.delete(f"{url}/numbers/{made['numbers'][0]['id']}", headers=alice.auth)
    assert gone.status_code == 204
    assert [n["number"] for n in client.get(url, headers=alice.auth).json()["numbers"]] == [
        GB_LONDON
    ]
    assert client.delete(url, headers=alice.auth).status_code == 204
    api_error(client.get(url, headers=alice.auth), 404, "number_list_not_found")
    assert client.get(LISTS, headers=alice.auth).json() == {"lists": []}


def test_p2_6_an_invalid_number_is_refused_with_the_reason(
    client: TestClient, alice: Person
) -> None:
    made = create_list(client, alice, {"name": "Team"})
    url = f"{LISTS}/{made['id']}/numbers"
    detail = api_error(
        client.post(url, json={"number": "+1 555"}, headers=alice.auth), 422, "invalid_phone_number"
    )
    assert detail == "the number is not a valid phone number: too short"
    detail = api_error(
        client.post(url, json={"number": "040 123 4567"}, headers=alice.auth),
        422,
        "invalid_phone_number",
    )
    assert "no country code" in detail and "4567" not in detail
    api_error(
        client.post(url, json={"number": "040 123 4567", "region": "QQ"}, headers=alice.auth),
        422,
        "invalid_region",
    )
    detail = api_error(
        client.post(
            LISTS,
            json={"name": "Two", "numbers": [{"number": FI_MOBILE}, {"number": "12"}]},
            headers=alice.auth,
        ),
        422,
        "invalid_phone_number",
    )
    assert detail.startswith("numbers[1] is not a valid phone number")
    assert [s["name"] for s in client.get(LISTS, headers=alice.auth).json()["lists"]] == ["Team"]
    api_error(
        client.post(url, json={"number": FI_MOBILE, "label": "x" * 101}, headers=alice.auth), 422
    )


def test_p2_6_a_number_is_in_a_list_once(client: TestClient, alice: Person) -> None:
    made = create_list(client, alice, {"name": "Team", "numbers": [{"number": FI_MOBILE}]})
    api_error(
        client.post(
            f"{LISTS}/{made['id']}/numbers",
            json={"number": "040-1234567", "region": "FI"},
            headers=alice.auth,
        ),
        409,
        "number_already_listed",
    )


def test_it_rejects_mallory(client: TestClient, alice: Person, mallory: Person) -> None:
    """Alice's list id in mallory's hands answers exactly like an id nobody has."""
    made = create_list(client, alice, {"name": "Team", "numbers": [{"number": FI_MOBILE}]})
    mine = create_list(client, mallory, {"name": "Mine"})
    entry = made["numbers"][0]["id"]

    def attempts(list_id: str) -> list[Response]:
        url = f"{LISTS}/{list_id}"
        return [
            client.get(url, headers=mallory.auth),
            client.patch(url, json={"name": "Taken"}, headers=mallory.auth),
            client.post(f"{url}/numbers", json={"number": GB_LONDON}, headers=mallory.auth),
            client.delete(f"{url}/numbers/{entry}", headers=mallory.auth),
            client.delete(url, headers=mallory.auth),
        ]

    for theirs, nobodys in zip(attempts(made["id"]), attempts(secrets.token_hex(16)), strict=True):
        api_error(theirs, 404, "number_list_not_found")
        assert (theirs.status_code, theirs.content) == (nobodys.status_code, nobodys.content)
        assert FI_MOBILE not in theirs.text and "Team" not in theirs.text
    api_error(
        client.delete(f"{LISTS}/{mine['id']}/numbers/{entry}", headers=mallory.auth),
        404,
        "number_list_entry_not_found",
    )
    assert [s["id"] for s in client.get(LISTS, headers=mallory.auth).json()["lists"]] == [
        mine["id"]
    ]
    assert client.get(f"{LISTS}/{made['id']}", headers=alice.auth).json() == made


def test_p7_2_number_lists_need_a_login(client: TestClient, alice: Person) -> None:
    made = create_list(client, alice, {"name": "Team"})
    for method, path in [
        ("GET", LISTS),
        ("POST", LISTS),
        ("GET", f"{LISTS}/{made['id']}"),
        ("PATCH", f"{LISTS}/{made['id']}"),
        ("DELETE", f"{LISTS}/{made['id']}"),
        ("POST", f"{LISTS}/{made['id']}/numbers"),
    ]:
        response = client.request(method, path, json={"name": "x"})
        api_error(response, 401, "not_authenticated")
        assert "Team" not in response.text
