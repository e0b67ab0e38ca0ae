"""The profile of P2.4: every field optional, each with its own visibility (P3.15, P0.3)."""

from __future__ import annotations

import base64
import struct
import zlib
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import Person, api_error, marker
from privault.runtime import Runtime
from privault.service.models import ProfileField

PROFILE = "/api/v1/me/profile"
FIELDS = (
    "name",
    "pictures",
    "gender",
    "birthday",
    "relationship_status",
    "interests",
    "education",
    "employment",
)


def tiny_png() -> bytes:
    """A real 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def data_url(kind: str, raw: bytes) -> str:
    return f"data:{kind};base64,{base64.b64encode(raw).decode()}"


PNG = data_url("image/png", tiny_png())
VALID: dict[str, Any] = {
    "name": "Carol Example",
    "pictures": [PNG],
    "gender": "female",
    "birthday": "1990-04-30",
    "relationship_status": "single",
    "interests": ["chess", "hiking"],
    "education": "Example University, physics",
    "employment": "Example Ltd, engineer",
}


def read(client: TestClient, person: Person) -> dict[str, dict[str, Any]]:
    response = client.get(PROFILE, headers=person.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"fields"}
    fields: dict[str, dict[str, Any]] = body["fields"]
    return fields


def patch(client: TestClient, person: Person, changes: dict[str, Any]) -> Any:
    return client.patch(PROFILE, json=changes, headers=person.auth)


# P2.4: every field optional; P3.15 / P0.3: a visibility per field, default private


def test_p2_4_a_fresh_profile_shows_all_eight_fields_unset_and_private(
    client: TestClient, alice: Person
) -> None:
    assert read(client, alice) == {
        name: {"value": None, "visibility": "private"} for name in FIELDS
    }


def test_p2_4_an_empty_patch_changes_nothing(client: TestClient, alice: Person) -> None:
    response = patch(client, alice, {})
    assert response.status_code == 200
    assert response.json()["fields"] == read(client, alice)
    assert all(entry["value"] is None for entry in read(client, alice).values())


@pytest.mark.parametrize("field", FIELDS)
def test_p2_4_each_field_is_set_on_its_own_and_private_by_default(
    client: TestClient, alice: Person, field: str
) -> None:
    response = patch(client, alice, {field: {"value": VALID[field]}})
    assert response.status_code == 200, response.text
    fields = response.json()["fields"]
    assert fields == read(client, alice)
    assert fields[field] == {"value": VALID[field], "visibility": "private"}
    for other in FIELDS:
        if other != field:
            assert fields[other] == {"value": None, "visibility": "private"}


def test_p3_15_each_field_has_its_own_visibility(client: TestClient, alice: Person) -> None:
    levels = ["private", "members", "public"]
    wanted = {name: levels[i % 3] for i, name in enumerate(FIELDS)}
    changes = {name: {"value": VALID[name], "visibility": wanted[name]} for name in FIELDS}
    assert patch(client, alice, changes).status_code == 200
    assert read(client, alice) == {
        name: {"value": VALID[name], "visibility": wanted[name]} for name in FIELDS
    }


def test_p0_3_changing_a_value_keeps_its_visibility(client: TestClient, alice: Person) -> None:
    patch(client, alice, {"gender": {"value": "female", "visibility": "public"}})
    patch(client, alice, {"gender": {"value": "non-binary"}})
    assert read(client, alice)["gender"] == {"value": "non-binary", "visibility": "public"}


def test_p3_15_a_visibility_only_change_applies_to_a_set_field(
    client: TestClient, alice: Person
) -> None:
    patch(client, alice, {"interests": {"value": ["chess"]}})
    response = patch(client, alice, {"interests": {"visibility": "members"}})
    assert response.status_code == 200
    assert read(client, alice)["interests"] == {"value": ["chess"], "visibility": "members"}


def test_p3_15_a_visibility_only_change_is_refused_for_an_unset_field(
    client: TestClient, alice: Person
) -> None:
    detail = api_error(patch(client, alice, {"birthday": {"visibility": "public"}}), 422)
    assert "birthday" in detail
    assert read(client, alice)["birthday"] == {"value": None, "visibility": "private"}


def test_p3_15_an_unknown_visibility_is_refused(client: TestClient, alice: Person) -> None:
    response = patch(client, alice, {"name": {"value": "Carol", "visibility": "friends"}})
    assert "name.visibility" in api_error(response, 422, "invalid_request")


def test_p2_4_null_clears_a_field_and_its_visibility(client: TestClient, alice: Person) -> None:
    patch(client, alice, {"name": {"value": "Carol", "visibility": "public"}})
    patch(client, alice, {"employment": {"value": "Example Ltd"}})
    response = patch(client, alice, {"name": {"value": None}})
    assert response.status_code == 200
    fields = read(client, alice)
    assert fields["name"] == {"value": None, "visibility": "private"}
    assert fields["employment"]["value"] == "Example Ltd"


def test_p2_4_clearing_an_unset_field_is_harmless(client: TestClient, alice: Person) -> None:
    assert patch(client, alice, {"education": {"value": None}}).status_code == 200
    assert read(client, alice)["education"] == {"value": None, "visibility": "private"}


def test_p2_4_a_tiny_png_data_url_is_accepted(client: TestClient, alice: Person) -> None:
    jpeg = data_url("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(16))
    webp = data_url("image/webp", b"RIFF" + struct.pack("<I", 20) + b"WEBPVP8 " + bytes(12))
    response = patch(client, alice, {"pictures": {"value": [PNG, jpeg, webp]}})
    assert response.status_code == 200, response.text
    assert read(client, alice)["pictures"]["value"] == [PNG, jpeg, webp]


# Validation: a sentence naming the field, never a 500, nothing stored


def future() -> str:
    return (date.today() + timedelta(days=2)).isoformat()


INVALID: list[tuple[str, Any]] = [
    ("birthday", "30/04/1990"),
    ("birthday", "1990-02-30"),
    ("birthday", 19900430),
    ("birthday", "1850-01-01"),
    ("birthday", "future"),
    ("interests", "chess"),
    ("interests", [1, 2]),
    ("interests", {"chess": True}),
    ("interests", ["x"] * 51),
    ("pictures", "https://example.com/me.png"),
    ("pictures", ["https://example.com/me.png"]),
    ("pictures", [data_url("image/gif", b"GIF89a" + bytes(10))]),
    ("pictures", [data_url("image/png", b"\xff\xd8\xff\xe0" + bytes(16))]),
    ("pictures", ["data:image/png;base64,not base64!"]),
    ("pictures", [PNG.removeprefix("data:")]),
    ("pictures", [data_url("image/webp", b"RIFF" + struct.pack("<I", 20) + b"WAVEfmt ")]),
    ("pictures", [data_url("image/png", tiny_png() + bytes(256 * 1024))]),
    ("pictures", [PNG] * 4),
    ("pictures", [42]),
    ("name", "x" * 201),
    ("name", ""),
    ("name", "   "),
    ("name", 42),
    ("name", ["Carol"]),
    ("gender", "x" * 61),
    ("education", "x" * 1001),
]


@pytest.mark.parametrize(("field", "value"), INVALID)
def test_p2_4_an_invalid_value_is_refused_with_a_sentence(
    client: TestClient, alice: Person, field: str, value: Any
) -> None:
    value = future() if value == "future" else value
    companion = {"relationship_status": {"value": "single"}}
    response = patch(client, alice, {field: {"value": value}, **companion})
    detail = api_error(response, 422, "invalid_input")
    assert field in detail
    assert detail.startswith("profile field") or detail.startswith(f"each of {field}")
    assert len(detail.split()) >= 5
    if isinstance(value, str) and len(value) > 20:
        assert value not in detail
    assert read(client, alice)["relationship_status"]["value"] is None


def test_p2_4_a_future_birthday_is_refused(client: TestClient, alice: Person) -> None:
    detail = api_error(patch(client, alice, {"birthday": {"value": future()}}), 422)
    assert "future" in detail
    today = date.today().isoformat()
    assert patch(client, alice, {"birthday": {"value": today}}).status_code == 200


def test_p2_4_an_unknown_profile_field_is_refused(client: TestClient, alice: Person) -> None:
    response = patch(client, alice, {"shoe_size": {"value": "44"}})
    assert "shoe_size" in api_error(response, 422, "invalid_request")


# Encrypted at rest


def test_p2_4_profile_values_are_stored_encrypted(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    values: dict[str, Any] = {
        "name": marker("name"),
        "gender": marker("gender"),
        "relationship_status": marker("rel"),
        "interests": [marker("interest")],
        "education": marker("edu"),
        "employment": marker("job"),
        "birthday": "1984-07-11",
    }
    changes = {name: {"value": value, "visibility": "public"} for name, value in values.items()}
    assert patch(client, alice, changes).status_code == 200
    with runtime.transaction() as session:
        rows = session.scalars(
            select(ProfileField).where(ProfileField.subject_id == alice.subject_id)
        ).all()
    assert {row.field for row in rows} == set(values)
    stored = b"".join(row.value_ct for row in rows)
    for value in values.values():
        for text in value if isinstance(value, list) else [value]:
            assert text.encode() not in stored


# Mallory


def test_it_rejects_mallory(client: TestClient, alice: Person, mallory: Person) -> None:
    secrets_of_alice = {name: marker(name) for name in ("name", "gender", "education")}
    changes: dict[str, Any] = {
        name: {"value": value, "visibility": "public"} for name, value in secrets_of_alice.items()
    }
    changes["interests"] = {"value": [marker("interest")], "visibility": "members"}
    assert patch(client, alice, changes).status_code == 200
    leaks = [
        *secrets_of_alice.values(),
        changes["interests"]["value"][0],
        alice.subject_id,
        alice.email,
        alice.room_id,
    ]

    responses = [
        client.get(PROFILE, headers=mallory.auth),
        client.get(PROFILE, params={"subject_id": alice.subject_id}, headers=mallory.auth),
        client.get("/api/v1/me", headers=mallory.auth),
        client.get("/api/v1/me", params={"subject_id": alice.subject_id}, headers=mallory.auth),
    ]
    assert all(r.status_code == 200 for r in responses)
    assert responses[0].json()["fields"] == {
        name: {"value": None, "visibility": "private"} for name in FIELDS
    }
    assert responses[1].json() == responses[0].json()
    assert responses[3].json()["subject_id"] == mallory.subject_id

    for path in [
        f"/api/v1/profiles/{alice.subject_id}",
        f"/api/v1/accounts/{alice.subject_id}/profile",
        f"/api/v1/me/profile/{alice.subject_id}",
        f"/api/v1/{alice.subject_id}/profile",
        f"/api/v1/rooms/{alice.room_id}/profile",
    ]:
        response = client.get(path, headers=mallory.auth)
        assert response.status_code in (404, 405)
        api_error(response, response.status_code)
        responses.append(response)

    sneaky = client.patch(
        PROFILE,
        json={"subject_id": alice.subject_id, "name": {"value": "pwned"}},
        headers=mallory.auth,
    )
    assert "subject_id" in api_error(sneaky, 422, "invalid_request")
    own = patch(client, mallory, {"name": {"value": "Mallory", "visibility": "public"}})
    assert own.status_code == 200
    responses += [sneaky, own]

    for response in responses:
        for leak in leaks:
            assert leak not in response.text
    fields = read(client, alice)
    assert {name: fields[name]["value"] for name in secrets_of_alice} == secrets_of_alice


def test_no_route_addresses_another_subjects_profile(client: TestClient) -> None:
    """The profile routes take no path, query or header parameter naming a subject."""
    paths = client.get("/openapi.json").json()["paths"]
    profile_paths = [path for path in paths if "profile" in path]
    assert profile_paths == [PROFILE]
    for operation in paths[PROFILE].values():
        assert operation.get("parameters", []) == []


def test_p2_4_null_for_a_field_clears_it(client: TestClient, alice: Person) -> None:
    assert (
        patch(client, alice, {"gender": {"value": "f", "visibility": "public"}}).status_code == 200
    )
    response = patch(client, alice, {"gender": None})
    assert response.status_code == 200
    assert response.json()["fields"]["gender"] == {"value": None, "visibility": "private"}
