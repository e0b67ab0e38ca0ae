"""The room pages (issue 10): Room ID, PIN, dial-in numbers and number lists in the browser.

Every form needs the session's form token and this site's origin; a PIN is never shown; a
list of someone else is a 404 page like one that does not exist.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from factories import Person, fi_mobile, pin_for
from formkit import OTHER_SITE, field_error, field_value, form_token, is_page
from privault.runtime import Runtime
from privault.web.room_pages import grouped

ROOM = "/room"


@pytest.fixture
def as_alice(client: TestClient, alice: Person) -> TestClient:
    client.cookies.set("privault_session", alice.token)
    return client


def token(client: TestClient, path: str = ROOM) -> str:
    return form_token(client.get(path))


def room_id_of(runtime: Runtime, person: Person) -> str:
    with runtime.transaction() as session:
        return runtime.rooms(session).overview(person.subject_id).room_id


def make_list(client: TestClient, name: str = "Team") -> str:
    made = client.post(
        f"{ROOM}/lists", data={"list_name": name, "csrf": token(client)}, follow_redirects=False
    )
    assert made.status_code == 303, made.text
    found = re.fullmatch(r"/room/lists/(\w+)", made.headers["location"])
    assert found
    return found.group(1)


def test_grouped_room_ids_read_in_threes_with_no_digit_alone() -> None:
    assert grouped("1234567890") == "123 456 7890"
    assert grouped("123456789") == "123 456 789"
    assert grouped("12345678") == "123 456 78"
    assert grouped("1234567") == "123 4567"


def test_the_room_page_shows_the_room_id_pin_state_and_dial_in_numbers_by_country(
    as_alice: TestClient, runtime: Runtime, alice: Person
) -> None:
    with runtime.transaction() as session:
        dial_ins = runtime.dial_ins(session)
        dial_ins.add("+358 9 4242 4242", "Helsinki")
        dial_ins.add("+44 20 7946 0123", "London")
    page = as_alice.get(ROOM)
    assert page.status_code == 200
    is_page(page)
    assert '<p class="room-id"' in page.text
    assert grouped(alice.room_id) in page.text
    assert "No PIN yet" in page.text
    assert re.search(
        r"<h3>Finland \(FI\)</h3>\s*<ul>\s*<li><a href=\"tel:\+358942424242\">", page.text
    )
    assert "<h3>United Kingdom (GB)</h3>" in page.text
    assert "(London)" in page.text


def test_the_room_page_needs_a_login(client: TestClient) -> None:
    response = client.get(ROOM, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Froom"


def test_setting_a_pin_says_so_and_never_shows_it(
    as_alice: TestClient, runtime: Runtime, alice: Person
) -> None:
    pin = pin_for(alice.room_id)
    response = as_alice.post(f"{ROOM}/pin", data={"pin": pin, "csrf": token(as_alice)})
    assert response.status_code == 200
    assert str(response.url).endswith("/room?done=pin")
    assert "PIN set." in response.text
    assert "A PIN is set" in response.text
    assert pin not in response.text
    with runtime.transaction() as session:
        assert runtime.pins(session).check(alice.room_id, pin, pbx="test")


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        ("12a4", "a PIN is 4 to 8 digits"),
        ("", "a PIN is 4 to 8 digits"),
        ("7777", "repeats one digit"),
        ("3456", "a run of digits"),
    ],
)
def test_a_refused_pin_is_explained_next_to_the_field_and_not_shown(
    as_alice: TestClient, runtime: Runtime, alice: Person, pin: str, message: str
) -> None:
    response = as_alice.post(f"{ROOM}/pin", data={"pin": pin, "csrf": token(as_alice)})
    assert response.status_code == 422
    is_page(response)
    assert message in (field_error(response, "pin") or "")
    assert field_value(response, "pin") is None
    if pin:
        assert f'value="{pin}"' not in response.text
    with runtime.transaction() as session:
        assert not runtime.rooms(session).overview(alice.subject_id).pin_set


def test_a_new_room_id_replaces_the_old_one(
    as_alice: TestClient, runtime: Runtime, alice: Person
) -> None:
    response = as_alice.post(f"{ROOM}/rotate", data={"csrf": token(as_alice)})
    assert response.status_code == 200
    assert "The old one no longer works" in response.text
    new = room_id_of(runtime, alice)
    assert new != alice.room_id
    assert grouped(new) in response.text


def test_a_number_list_is_made_filled_renamed_emptied_and_deleted(
    as_alice: TestClient, runtime: Runtime, alice: Person
) -> None:
    list_id = make_list(as_alice, "Family")
    path = f"{ROOM}/lists/{list_id}"
    page = as_alice.get(path)
    assert "<h1>Family</h1>" in page.text
    assert page.headers["cache-control"] == "no-store"

    number = fi_mobile()
    added = as_alice.post(
        f"{path}/numbers", data={"number": number, "label": "Grandma", "csrf": form_token(page)}
    )
    assert added.status_code == 200
    assert f'<th scope="row">{number}</th>' in added.text
    assert "Grandma" in added.text
    national = as_alice.post(
        f"{path}/numbers",
        data={"number": "020 7946 0124", "region": "gb", "csrf": form_token(page)},
    )
    assert "+442079460124" in national.text

    renamed = as_alice.post(f"{path}/name", data={"name": "Kin", "csrf": form_token(page)})
    assert "<h1>Kin</h1>" in renamed.text
    assert "Kin" in as_alice.get(ROOM).text

    entry_id = re.search(rf"{path}/numbers/(\w+)/remove", renamed.text)
    assert entry_id
    removed = as_alice.post(
        f"{path}/numbers/{entry_id.group(1)}/remove", data={"csrf": form_token(page)}
    )
    assert number not in removed.text
    assert "+442079460124" in removed.text

    deleted = as_alice.post(f"{path}/delete", data={"csrf": form_token(page)})
    assert str(deleted.url).endswith("/room?done=list_deleted")
    assert as_alice.get(path).status_code == 404
    with runtime.transaction() as session:
        assert runtime.number_lists(session).lists(alice.subject_id) == []


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"number": "12"}, "number", "the number is not a valid phone number"),
        ({"number": "040 123 4567"}, "number", "no country code"),
        ({"number": "040 123 4567", "region": "XX"}, "region", ""),
        ({"number": "+358401234567", "label": "x" * 101}, "label", "longer than 100"),
    ],
)
def test_a_refused_number_is_explained_next_to_its_field_and_kept(
    as_alice: TestClient, data: dict[str, str], field: str, message: str
) -> None:
    path = f"{ROOM}/lists/{make_list(as_alice)}"
    response = as_alice.post(f"{path}/numbers", data={**data, "csrf": token(as_alice, path)})
    assert response.status_code == 422
    is_page(response)
    assert message in (field_error(response, field) or "-")
    assert field_error(response, field)
    for name, value in data.items():
        assert field_value(response, name) == value


def test_a_number_listed_twice_is_refused_next_to_the_field(as_alice: TestClient) -> None:
    path = f"{ROOM}/lists/{make_list(as_alice)}"
    number = fi_mobile()
    as_alice.post(f"{path}/numbers", data={"number": number, "csrf": token(as_alice, path)})
    again = as_alice.post(f"{path}/numbers", data={"number": number, "csrf": token(as_alice, path)})
    assert again.status_code == 409
    assert "in the list already" in (field_error(again, "number") or "")


def test_list_names_are_checked_next_to_their_field(as_alice: TestClient) -> None:
    made = as_alice.post(f"{ROOM}/lists", data={"list_name": "  ", "csrf": token(as_alice)})
    assert made.status_code == 422
    assert "1 to 100 characters" in (field_error(made, "list_name") or "")
    path = f"{ROOM}/lists/{make_list(as_alice)}"
    long = "n" * 101
    renamed = as_alice.post(f"{path}/name", data={"name": long, "csrf": token(as_alice, path)})
    assert renamed.status_code == 422
    assert "1 to 100 characters" in (field_error(renamed, "name") or "")
    assert field_value(renamed, "name") == long


def forms(list_id: str, entry_id: str) -> list[tuple[str, dict[str, str]]]:
    path = f"{ROOM}/lists/{list_id}"
    return [
        (f"{ROOM}/pin", {"pin": "80514273"}),
        (f"{ROOM}/rotate", {}),
        (f"{ROOM}/lists", {"list_name": "Other"}),
        (f"{path}/name", {"name": "Renamed"}),
        (f"{path}/numbers", {"number": "+358401234560"}),
        (f"{path}/numbers/{entry_id}/remove", {}),
        (f"{path}/delete", {}),
    ]


def _state(runtime: Runtime, alice: Person) -> tuple[object, ...]:
    with runtime.transaction() as session:
        room = runtime.rooms(session).overview(alice.subject_id)
        lists = runtime.number_lists(session)
        views = [lists.get(alice.subject_id, s.id) for s in lists.lists(alice.subject_id)]
    return room.room_id, room.pin_set, views


def _filled_list(client: TestClient) -> tuple[str, str]:
    list_id = make_list(client)
    path = f"{ROOM}/lists/{list_id}"
    page = client.post(f"{path}/numbers", data={"number": fi_mobile(), "csrf": token(client)})
    entry = re.search(rf"{path}/numbers/(\w+)/remove", page.text)
    assert entry
    return list_id, entry.group(1)


@pytest.mark.parametrize("csrf", ["", "f" * 64])
def test_every_room_form_needs_the_sessions_form_token(
    as_alice: TestClient, runtime: Runtime, alice: Person, csrf: str
) -> None:
    list_id, entry_id = _filled_list(as_alice)
    before = _state(runtime, alice)
    for path, data in forms(list_id, entry_id):
        response = as_alice.post(path, data={**data, "csrf": csrf})
        assert response.status_code == 403, path
        is_page(response)
        assert "reload it" in response.text, path
    assert _state(runtime, alice) == before


def test_every_room_form_refuses_another_site(
    as_alice: TestClient, runtime: Runtime, alice: Person
) -> None:
    list_id, entry_id = _filled_list(as_alice)
    before = _state(runtime, alice)
    good = token(as_alice)
    for path, data in forms(list_id, entry_id):
        response = as_alice.post(path, data={**data, "csrf": good}, headers=OTHER_SITE)
        assert response.status_code == 403, path
    assert _state(runtime, alice) == before


def test_it_rejects_mallory_from_alices_lists(
    client: TestClient, runtime: Runtime, alice: Person, mallory: Person
) -> None:
    client.cookies.set("privault_session", alice.token)
    list_id, entry_id = _filled_list(client)
    before = _state(runtime, alice)

    client.cookies.set("privault_session", mallory.token)
    shown = client.get(f"{ROOM}/lists/{list_id}")
    assert shown.status_code == 404
    is_page(shown)
    assert "There is no such list" in shown.text
    good = token(client)
    for path, data in forms(list_id, entry_id)[3:]:
        response: Response = client.post(path, data={**data, "csrf": good})
        assert response.status_code == 404, path
        is_page(response)
    assert _state(runtime, alice) == before


def test_a_visitor_posting_a_room_form_is_sent_to_log_in(client: TestClient) -> None:
    response = client.post(f"{ROOM}/pin", data={"pin": "80514273"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
