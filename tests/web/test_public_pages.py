"""The public profile page in the site's layout (issue 10): its pictures load from nowhere
but the page itself (the CSP allows images from this origin and data: URLs only)."""

from __future__ import annotations

import base64
import re

from fastapi.testclient import TestClient

from factories import Person

#: The PNG signature is all the profile's check reads: enough for a data URL it accepts.
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(16)).decode()


def test_public_pictures_are_data_urls_in_the_page_and_nothing_loads_from_elsewhere(
    client: TestClient, alice: Person
) -> None:
    name = "alice_" + alice.subject_id[:8]
    assert (
        client.put("/api/v1/me/username", json={"username": name}, headers=alice.auth).status_code
        == 200
    )
    changed = client.patch(
        "/api/v1/me/profile",
        json={"pictures": {"value": [PNG], "visibility": "public"}},
        headers=alice.auth,
    )
    assert changed.status_code == 200, changed.text

    page = client.get(f"/u/{name}")
    assert page.status_code == 200
    assert f'<img src="{PNG}"' in page.text
    sources = re.findall(r'\ssrc="([^"]+)"', page.text)
    assert all(src.startswith(("/", "data:")) for src in sources), sources
    assert '<a class="brand" href="/">' in page.text  # the site's layout
