"""The PBX posts CDRs over HTTP, as JSON or as Master.csv lines (P2.7)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import UK_MOBILE, Person, api_error, cdr, give_room_id
from privault.clock import aware
from privault.runtime import Runtime
from privault.service.cdr_schemas import CdrBatchOut
from privault.service.models import CallRecord
from privault.vault import Field

CDRS = "/api/v1/pbx/cdrs"
MASTER_CSV = Path(__file__).parent.parent / "fixtures" / "Master.csv"
ROOM_A, ROOM_B = "4817305926", "7305924816"


def stored(runtime: Runtime) -> list[CallRecord]:
    with runtime.factory() as session:
        return list(session.scalars(select(CallRecord).order_by(CallRecord.call_id)))


def test_p2_7_the_pbx_posts_a_json_batch_and_hears_back_per_row(
    client: TestClient, runtime: Runtime, pbx: dict[str, str], alice: Person, bob: Person
) -> None:
    body = {
        "cdrs": [
            cdr(alice.room_id, "j1"),
            cdr(bob.room_id, "j2", caller=None, answer=None, billsec=0, disposition="NO ANSWER"),
            cdr(alice.room_id, "j3", end="2024-05-01T09:00:00Z"),
            cdr("5926481730", "j4"),
            cdr(alice.room_id, "j1"),
        ]
    }
    response = client.post(CDRS, json=body, headers=pbx)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (2, 1, 2)
    assert answer["results"] == [
        {"row": 1, "call_id": "j1", "status": "accepted", "reason": None, "detail": None},
        {"row": 2, "call_id": "j2", "status": "accepted", "reason": None, "detail": None},
        {
            "row": 3,
            "call_id": "j3",
            "status": "rejected",
            "reason": "end_before_start",
            "detail": "end is before start",
        },
        {
            "row": 4,
            "call_id": "j4",
            "status": "rejected",
            "reason": "unknown_room",
            "detail": "no room has this Room ID",
        },
        {"row": 5, "call_id": "j1", "status": "duplicate", "reason": None, "detail": None},
    ]
    assert CdrBatchOut.model_validate(answer).results[3].reason == "unknown_room"
    assert UK_MOBILE not in response.text and "7700900123" not in response.text
    first, second = stored(runtime)
    assert (first.call_id, first.subject_id) == ("j1", alice.subject_id)
    assert (second.call_id, second.subject_id, second.caller_ct) == ("j2", bob.subject_id, None)
    assert first.caller_ct is not None and b"7700900123" not in first.caller_ct
    with runtime.factory() as session:
        assert (
            runtime.vault.decrypt(
                session,
                alice.subject_id,
                Field("call_records", "caller_ct", "j1"),
                first.caller_ct,
                purpose="service",
            )
            == UK_MOBILE
        )
    assert first.caller_index == runtime.vault.blind_index("phone", UK_MOBILE)

    again = client.post(CDRS, json=body, headers=pbx)
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicate"]) == (0, 3)
    assert len(stored(runtime)) == 2


def test_p2_7_the_pbx_posts_master_csv(
    client: TestClient, runtime: Runtime, pbx: dict[str, str], alice: Person, bob: Person
) -> None:
    give_room_id(runtime, alice.subject_id, ROOM_A)
    give_room_id(runtime, bob.subject_id, ROOM_B)
    response = client.post(
        CDRS,
        content=MASTER_CSV.read_bytes(),
        headers=pbx | {"Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (9, 0, 2)
    rejected = [(r["row"], r["reason"]) for r in answer["results"] if r["status"] == "rejected"]
    assert rejected == [(7, "missing_room"), (9, "unknown_room")]
    owners = {r.call_id: r.subject_id for r in stored(runtime)}
    assert owners["1714555800.1"] == alice.subject_id
    assert owners["1714572005.4"] == bob.subject_id
    assert len(owners) == 9


def test_csv_times_are_read_in_the_pbx_time_zone_when_told(
    client: TestClient, runtime: Runtime, pbx: dict[str, str], alice: Person
) -> None:
    give_room_id(runtime, alice.subject_id, ROOM_A)
    first_line = MASTER_CSV.read_text().splitlines()[0] + "\n"
    headers = pbx | {"Content-Type": "text/csv"}
    response = client.post(
        CDRS, params={"timezone": "Europe/Paris"}, content=first_line, headers=headers
    )
    assert response.status_code == 200, response.text
    (record,) = stored(runtime)
    assert aware(record.started_at).isoformat() == "2024-05-01T07:30:00+00:00"
    wrong = client.post(CDRS, params={"timezone": "Paris"}, content=first_line, headers=headers)
    api_error(wrong, 422, "invalid_timezone")


def test_rows_of_the_wrong_shape_are_rejected_alone(
    client: TestClient, runtime: Runtime, pbx: dict[str, str], alice: Person
) -> None:
    body = {
        "cdrs": [
            cdr(alice.room_id, "s1", colour="blue"),
            {k: v for k, v in cdr(alice.room_id, "s2").items() if k != "start"},
            cdr(alice.room_id, "s3") | {"room_id": 4817305926},
            "not a cdr",
            cdr(alice.room_id, "s5"),
            cdr(alice.room_id, "s6", duration=730.0, billsec="726"),
            cdr(alice.room_id, "s7", duration=7.5),
        ]
    }
    response = client.post(CDRS, json=body, headers=pbx)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["row"], r["call_id"], r["status"], r["reason"]) for r in results] == [
        (1, "s1", "rejected", "invalid_row"),
        (2, "s2", "rejected", "invalid_row"),
        (3, "s3", "rejected", "invalid_row"),
        (4, None, "rejected", "invalid_row"),
        (5, "s5", "accepted", None),
        (6, "s6", "accepted", None),
        (7, "s7", "rejected", "invalid_row"),
    ]
    assert results[0]["detail"] == "colour: is not a known field"
    assert results[1]["detail"] == "start: is required"
    assert results[2]["detail"].startswith("room_id: ")
    assert [(r.call_id, r.duration, r.billsec) for r in stored(runtime)] == [
        ("s5", 730, 726),
        ("s6", 730, 726),
    ]


def test_it_needs_a_pbx_token(client: TestClient, runtime: Runtime, alice: Person) -> None:
    body = {"cdrs": [cdr(alice.room_id, "t1")]}
    api_error(client.post(CDRS, json=body), 401, "pbx_token_invalid")
    # A person's session token is not a PBX token.
    api_error(client.post(CDRS, json=body, headers=alice.auth), 401, "pbx_token_invalid")
    api_error(
        client.post(CDRS, json=body, headers={"Authorization": "Bearer pbx_made-up"}),
        401,
        "pbx_token_invalid",
    )
    # Authentication comes first: a broken body without a token is still a 401.
    api_error(
        client.post(CDRS, content=b"{", headers={"Content-Type": "application/json"}),
        401,
        "pbx_token_invalid",
    )
    assert stored(runtime) == []


def test_other_media_types_get_415_and_csv_is_refused_elsewhere(
    client: TestClient, pbx: dict[str, str], alice: Person
) -> None:
    for kind in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        detail = api_error(
            client.post(CDRS, content=b"a=b", headers=pbx | {"Content-Type": kind}),
            415,
            "unsupported_media_type",
        )
        assert detail == "send the body as application/json or text/csv"
    api_error(
        client.post(
            "/api/v1/pbx/pin-check",
            content=b'"4817305926","1234"',
            headers=pbx | {"Content-Type": "text/csv"},
        ),
        415,
        "unsupported_media_type",
    )
    api_error(
        client.post("/api/v1/session", content=b"a,b", headers={"Content-Type": "text/csv"}),
        415,
        "unsupported_media_type",
    )


def test_a_body_that_is_not_a_batch_is_refused_whole(
    client: TestClient, pbx: dict[str, str], alice: Person
) -> None:
    json_headers = pbx | {"Content-Type": "application/json"}
    api_error(client.post(CDRS, content=b'{"cdrs": [', headers=json_headers), 400, "malformed_json")
    api_error(client.post(CDRS, content=b"\xff\xfe", headers=json_headers), 400, "malformed_json")
    api_error(client.post(CDRS, content=b"", headers=json_headers), 400, "malformed_json")
    for body in ([cdr(alice.room_id, "l1")], {"cdrs": {}}, {"cdrs": [], "more": 1}, "x"):
        api_error(client.post(CDRS, json=body, headers=pbx), 422, "invalid_cdr_batch")


def test_a_batch_over_ten_thousand_rows_is_refused(
    client: TestClient, runtime: Runtime, pbx: dict[str, str]
) -> None:
    detail = api_error(
        client.post(CDRS, json={"cdrs": [{}] * 10_001}, headers=pbx), 422, "cdr_batch_too_large"
    )
    assert "10000" in detail
    csv = b"\n" + b'"",""\n' * 10_001
    detail = api_error(
        client.post(CDRS, content=csv, headers=pbx | {"Content-Type": "text/csv"}),
        422,
        "cdr_batch_too_large",
    )
    assert stored(runtime) == []


def test_a_thousand_cdrs_fit_in_the_body_limit(
    client: TestClient, runtime: Runtime, pbx: dict[str, str], alice: Person
) -> None:
    body = {"cdrs": [cdr(alice.room_id, f"1714555800.{i}") for i in range(1000)]}
    response = client.post(CDRS, json=body, headers=pbx)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1000
    assert runtime.settings.max_body_bytes >= len(response.request.content)
    with runtime.factory() as session:
        assert session.scalar(select(func.count()).select_from(CallRecord)) == 1000


def test_the_openapi_schema_documents_json_and_csv_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][CDRS]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    batch = content["application/json"]["schema"]
    assert batch["required"] == ["cdrs"]
    row = batch["properties"]["cdrs"]["items"]
    assert {"call_id", "room_id", "start", "disposition"} <= set(row["required"])
    assert "$ref" not in str(batch)
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CdrBatchOut"
    }
    assert {"401", "413", "415", "422"} <= set(operation["responses"])
    assert [p["name"] for p in operation["parameters"]] == ["timezone"]
