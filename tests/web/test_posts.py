"""Usernames, posts and the public page (P2.9, P3.15, P0.3)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from factories import Person, api_error, marker
from privault.runtime import Runtime
from privault.service.models import Post, Username

USERNAME = "/api/v1/me/username"
POSTS = "/api/v1/me/posts"
PROFILE = "/api/v1/me/profile"


def name_for(person: Person) -> str:
    return f"{person.email.split('@')[0].replace('.', '_')}"


def choose(client: TestClient, person: Person, username: str) -> Response:
    return client.put(USERNAME, json={"username": username}, headers=person.auth)


def post(client: TestClient, person: Person, body: str, **extra: Any) -> dict[str, Any]:
    response = client.post(POSTS, json={"body": body, **extra}, headers=person.auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def page(client: TestClient, username: str, viewer: Person | None = None) -> Response:
    return client.get(f"/api/v1/people/{username}", headers=viewer.auth if viewer else {})


def html(client: TestClient, username: str, viewer: Person | None = None) -> Response:
    return client.get(f"/u/{username}", headers=viewer.auth if viewer else {})


class Published:
    """Alice's page: one profile field and one post at each visibility, each a marker."""

    def __init__(self, client: TestClient, alice: Person) -> None:
        self.username = name_for(alice)
        assert choose(client, alice, self.username).status_code == 200
        self.fields = {
            "public": ("gender", marker("pub")),
            "members": ("education", marker("mem")),
            "private": ("employment", marker("prv")),
        }
        changes = {field: {"value": v, "visibility": k} for k, (field, v) in self.fields.items()}
        assert client.patch(PROFILE, json=changes, headers=alice.auth).status_code == 200
        self.posts = {
            level: post(client, alice, marker(f"post{level[:3]}"), visibility=level)["body"]
            for level in ("public", "members", "private")
        }

    def shown(self, text: str) -> set[str]:
        """The visibility levels whose markers appear in ``text``."""
        return {
            level
            for level in ("public", "members", "private")
            if self.fields[level][1] in text or self.posts[level] in text
        }


@pytest.fixture
def published(client: TestClient, alice: Person) -> Published:
    return Published(client, alice)


# Usernames


def test_p2_9_a_username_is_chosen_and_kept_lower_case(client: TestClient, alice: Person) -> None:
    assert client.get(USERNAME, headers=alice.auth).json() == {"username": None}
    response = choose(client, alice, "  Alice_Example.99 ")
    assert response.status_code == 200, response.text
    assert response.json() == {"username": "alice_example.99"}
    assert client.get(USERNAME, headers=alice.auth).json() == {"username": "alice_example.99"}


def test_p2_9_a_username_is_unique_whatever_the_letter_case(
    client: TestClient, alice: Person, bob: Person
) -> None:
    assert choose(client, alice, "carol-example").status_code == 200
    detail = api_error(choose(client, bob, "Carol-Example"), 409, "username_taken")
    assert "carol" not in detail.lower()
    assert choose(client, alice, "CAROL-EXAMPLE").status_code == 200
    assert client.get(USERNAME, headers=bob.auth).json() == {"username": None}


def test_p2_9_changing_the_username_frees_the_old_one(
    client: TestClient, alice: Person, bob: Person
) -> None:
    choose(client, alice, "first-name")
    assert choose(client, alice, "second-name").json() == {"username": "second-name"}
    assert choose(client, bob, "first-name").status_code == 200


def test_p2_9_dropping_the_username_takes_the_page_down(
    client: TestClient, alice: Person, published: Published
) -> None:
    assert page(client, published.username).status_code == 200
    assert client.delete(USERNAME, headers=alice.auth).status_code == 204
    api_error(page(client, published.username), 404, "person_not_found")
    assert client.delete(USERNAME, headers=alice.auth).status_code == 204


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 31, "al ice", "\u00e5lice", "_alice", ".alice", "-alice", "alice!", "al/ice"],
)
def test_p2_9_an_invalid_username_is_refused(
    client: TestClient, alice: Person, username: str
) -> None:
    detail = api_error(choose(client, alice, username), 422, "invalid_username")
    assert "3 to 30" in detail
    assert username not in detail


def test_p7_3_a_card_number_is_no_username(client: TestClient, alice: Person) -> None:
    api_error(choose(client, alice, "4111-1111-1111-1111"), 422, "card_number_refused")


# Posts


def test_p0_3_a_new_post_is_private_by_default(client: TestClient, alice: Person) -> None:
    created = post(client, alice, "Hello")
    assert created["visibility"] == "private"
    assert created["body"] == "Hello"
    assert client.get(POSTS, headers=alice.auth).json() == {"posts": [created]}
    assert client.get(f"{POSTS}/{created['id']}", headers=alice.auth).json() == created


def test_p3_15_a_post_changes_its_body_and_visibility(client: TestClient, alice: Person) -> None:
    created = post(client, alice, "Draft")
    url = f"{POSTS}/{created['id']}"
    response = client.patch(url, json={"visibility": "public"}, headers=alice.auth)
    assert response.status_code == 200, response.text
    assert response.json()["visibility"] == "public" and response.json()["body"] == "Draft"
    response = client.patch(url, json={"body": "Final"}, headers=alice.auth)
    assert response.json()["visibility"] == "public" and response.json()["body"] == "Final"
    assert client.delete(url, headers=alice.auth).status_code == 204
    api_error(client.get(url, headers=alice.auth), 404, "post_not_found")
    assert client.get(POSTS, headers=alice.auth).json() == {"posts": []}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"body": ""}, "invalid_request"),
        ({"body": "   "}, "invalid_input"),
        ({"body": "x" * 10_001}, "invalid_request"),
        ({"body": "Hi", "visibility": "friends"}, "invalid_request"),
        ({"body": "Pay me: 5555 5555 5555 4444"}, "card_number_refused"),
    ],
    ids=["empty", "blank", "too-long", "visibility", "card-number"],
)
def test_p2_9_a_bad_post_is_refused(
    client: TestClient, alice: Person, body: dict[str, Any], code: str
) -> None:
    api_error(client.post(POSTS, json=body, headers=alice.auth), 422, code)
    assert client.get(POSTS, headers=alice.auth).json() == {"posts": []}


def test_p2_9_posts_and_usernames_are_stored_encrypted(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    body, username = marker("body"), marker("user")
    created = post(client, alice, body, visibility="public")
    choose(client, alice, username)
    with runtime.transaction() as session:
        row = session.get(Post, created["id"])
        name = session.scalar(select(Username).where(Username.subject_id == alice.subject_id))
        assert row is not None and name is not None
        assert body.encode() not in row.body_ct
        assert username.encode() not in name.username_ct + name.username_index


# The public page: only what the settings allow (P0.3, P3.15)


def test_p0_3_an_anonymous_visitor_sees_only_what_is_public(
    client: TestClient, published: Published
) -> None:
    response = page(client, published.username)
    assert response.status_code == 200, response.text
    body = response.json()
    gender = published.fields["public"][1]
    assert body == {
        "username": published.username,
        "fields": {"gender": gender},
        "posts": [
            {
                "id": body["posts"][0]["id"],
                "body": published.posts["public"],
                "created_at": body["posts"][0]["created_at"],
            }
        ],
    }
    assert response.headers["cache-control"] == "no-store"
    assert published.shown(html(client, published.username).text) == {"public"}


def test_p3_15_a_member_sees_what_is_public_or_for_members(
    client: TestClient, published: Published, bob: Person
) -> None:
    response = page(client, published.username, bob)
    assert set(response.json()["fields"]) == {"gender", "education"}
    assert len(response.json()["posts"]) == 2
    assert published.shown(response.text) == {"public", "members"}
    assert published.shown(html(client, published.username, bob).text) == {"public", "members"}


def test_p3_15_the_owner_sees_their_page_as_members_do(
    client: TestClient, published: Published, alice: Person
) -> None:
    """The page is an honest preview: private things stay on the owner's own endpoints."""
    assert published.shown(page(client, published.username, alice).text) == {"public", "members"}


def test_p3_15_a_session_cookie_counts_as_a_member(
    client: TestClient, published: Published, bob: Person
) -> None:
    response = client.get(
        f"/u/{published.username}", headers={"Cookie": f"privault_session={bob.token}"}
    )
    assert published.shown(response.text) == {"public", "members"}


def test_p3_15_an_expired_session_sees_the_public_page(
    client: TestClient, published: Published
) -> None:
    response = client.get(
        f"/api/v1/people/{published.username}", headers={"Authorization": "Bearer expired"}
    )
    assert published.shown(response.text) == {"public"}


def test_p3_15_the_username_is_found_whatever_its_letter_case(
    client: TestClient, published: Published
) -> None:
    assert page(client, published.username.upper()).json()["username"] == published.username


def test_p3_15_the_html_page_escapes_what_people_write(client: TestClient, alice: Person) -> None:
    choose(client, alice, "alice-html")
    post(client, alice, "<script>alert(1)</script>\nsecond line", visibility="public")
    response = html(client, "alice-html")
    assert response.status_code == 200
    assert "<script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_p3_15_a_change_of_visibility_holds_at_once(
    client: TestClient, published: Published, alice: Person
) -> None:
    public_post = next(
        p
        for p in client.get(POSTS, headers=alice.auth).json()["posts"]
        if p["visibility"] == "public"
    )
    client.patch(f"{POSTS}/{public_post['id']}", json={"visibility": "private"}, headers=alice.auth)
    client.patch(PROFILE, json={"gender": {"visibility": "members"}}, headers=alice.auth)
    api_error(page(client, published.username), 404, "person_not_found")


def test_p0_3_reading_a_public_page_needs_no_session_of_its_owner(
    client: TestClient, runtime: Runtime, published: Published, alice: Person
) -> None:
    assert client.delete("/api/v1/session", headers=alice.auth).status_code == 204
    runtime.vault.forget_cached_keys()
    assert published.shown(page(client, published.username).text) == {"public"}


# Nothing visible: the same 404 as an unknown name


def not_found_pair(client: TestClient, known: str, viewer: Person | None) -> None:
    unknown = f"nobody-{secrets.token_hex(4)}"
    for fetch in (page, html):
        hidden, missing = fetch(client, known, viewer), fetch(client, unknown, viewer)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.content == missing.content
        assert known not in hidden.text
        for header in ("content-type", "content-length", "cache-control"):
            assert hidden.headers.get(header) == missing.headers.get(header)
    api_error(page(client, known, viewer), 404, "person_not_found")


def test_p0_3_someone_who_shows_nothing_is_not_found_like_an_unknown_name(
    client: TestClient, alice: Person, bob: Person
) -> None:
    choose(client, alice, "alice-private")
    post(client, alice, marker("secret"))
    client.patch(PROFILE, json={"name": {"value": "Alice"}}, headers=alice.auth)
    not_found_pair(client, "alice-private", None)
    not_found_pair(client, "alice-private", bob)
    not_found_pair(client, "alice-private", alice)


def test_p0_3_someone_with_only_a_username_is_not_found(client: TestClient, alice: Person) -> None:
    choose(client, alice, "alice-bare")
    not_found_pair(client, "alice-bare", None)


def test_p3_15_members_only_is_not_found_for_visitors(
    client: TestClient, alice: Person, bob: Person
) -> None:
    choose(client, alice, "alice-members")
    text = marker("mem")
    post(client, alice, text, visibility="members")
    not_found_pair(client, "alice-members", None)
    assert text in page(client, "alice-members", bob).text


def test_p0_3_an_invalid_username_is_not_found_like_any_other(client: TestClient) -> None:
    for name in ("x", "A B", "..."):
        api_error(client.get(f"/api/v1/people/{name}"), 404, "person_not_found")
    assert client.get("/u/x").status_code == 404


def test_p0_4_a_closed_account_has_no_page(
    client: TestClient, published: Published, alice: Person
) -> None:
    assert client.delete("/api/v1/me", headers=alice.auth).status_code == 202
    not_found_pair(client, published.username, None)


# Mallory


def test_it_rejects_mallory(
    client: TestClient, alice: Person, mallory: Person, published: Published
) -> None:
    """Mallory can neither read nor change alice's posts, nor take her name."""
    own = client.get(POSTS, headers=alice.auth).json()["posts"]
    url = f"{POSTS}/{own[0]['id']}"
    for response in (
        client.get(url, headers=mallory.auth),
        client.patch(url, json={"body": "mallory was here"}, headers=mallory.auth),
        client.patch(url, json={"visibility": "public"}, headers=mallory.auth),
        client.delete(url, headers=mallory.auth),
    ):
        api_error(response, 404, "post_not_found")
        assert published.posts["private"] not in response.text
    assert client.get(POSTS, headers=mallory.auth).json() == {"posts": []}
    api_error(choose(client, mallory, published.username), 409, "username_taken")
    assert client.get(POSTS, headers=alice.auth).json()["posts"] == own
    api_error(client.get(POSTS), 401, "not_authenticated")
    api_error(client.patch(url, json={"body": "x"}), 401, "not_authenticated")
    assert published.shown(page(client, published.username, mallory).text) == {
        "public",
        "members",
    }
