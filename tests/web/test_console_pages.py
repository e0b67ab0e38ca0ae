"""The staff console (issue 10, part 3): a login with a second factor, each page for the
roles whose purposes allow it (P4.1), the request queue with overdue ones marked in words
(P9.4), a request's steps by its state, holds, the registers, the access log and its chain,
and the two pictures drawn on the server."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Connection, func, select, text

from factories import Person, add_staff, register
from privault.access.audit import Event
from privault.access.models import AccessLogEntry
from privault.clock import FrozenClock
from privault.rights.service import Channel
from privault.runtime import Runtime
from privault.staff import totp
from privault.staff.service import SESSION_HOURS, NewStaff
from privault.vault.models import SubjectKey
from privault.web.console.access import PAGES, STAFF_COOKIE

LOGIN = "/staff/login"


def code_of(made: NewStaff, clock: FrozenClock) -> str:
    key = parse_qs(urlsplit(made.totp_uri).query)["secret"][0]
    secret = base64.b32decode(key + "=" * (-len(key) % 8))
    return totp.code_at(secret, totp.step_of(clock.now()))


def log_in(client: TestClient, made: NewStaff, clock: FrozenClock, next: str = "/staff") -> None:
    """Log ``made`` in through the page; the client keeps the staff cookie."""
    form = {"name": made.name, "password": made.password, "code": code_of(made, clock)}
    answer = client.post(LOGIN, data={**form, "next": next}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def officer(at: Runtime, client: TestClient, clock: FrozenClock, name: str = "olga") -> NewStaff:
    made = add_staff(at, name, "privacy_officer")
    log_in(client, made, clock)
    return made


def csrf_of(page: Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


def svgs(html: str) -> list[ET.Element]:
    """Every picture of a page, parsed as XML (a malformed one fails here)."""
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    return [ET.fromstring(svg) for svg in found]  # noqa: S314 - our own page, not untrusted


def file_request(at: Runtime, person: Person, kind: str, *, verified: bool = True) -> str:
    with at.transaction() as session:
        channel = Channel.API if verified else Channel.MAIL
        return (
            at.rights(session)
            .file(person.subject_id, kind, channel, actor="t", verified=verified, details="Fix it")
            .id
        )


# -- logging in ------------------------------------------------------------------------


def test_p4_1_staff_log_in_with_a_totp_code_into_a_strict_cookie_of_their_own(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    made = add_staff(at, "olga", "privacy_officer")
    assert client_at.get("/staff/requests", follow_redirects=False).headers["location"] == (
        "/staff/login?next=%2Fstaff%2Frequests"
    )
    page = client_at.get("/staff/login?next=/staff/requests")
    assert page.status_code == 200 and 'name="code"' in page.text
    assert page.headers["cache-control"] == "no-store"
    form = {"name": "olga", "password": made.password, "code": code_of(made, clock)}
    answer = client_at.post(LOGIN, data={**form, "next": "/staff/requests"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/staff/requests"
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("privault_staff=")
    for attribute in ("httponly", "samesite=strict", "path=/staff", "max-age=28800"):
        assert attribute in cookie
    assert "privault_session" not in cookie
    assert client_at.get("/staff/requests").status_code == 200
    # Somewhere else than the console is not a place a login sends anyone.
    clock.advance(timedelta(seconds=30))
    form["code"] = code_of(made, clock)
    elsewhere = client_at.post(
        LOGIN, data={**form, "next": "https://evil.example/"}, follow_redirects=False
    )
    assert elsewhere.headers["location"] == "/staff"


def test_p11_1_the_staff_cookie_is_declared_as_it_is_set(runtime: Runtime) -> None:
    """The cookie list names every cookie the site sets (P11.1): the console's too, with
    the lifetime of a staff session."""
    (declared,) = [c for c in runtime.policy.cookies if c.name == STAFF_COOKIE]
    assert declared.category == "strictly_necessary" and declared.kind == "persistent"
    assert declared.lifetime is not None
    start = datetime(2027, 1, 20, 9, tzinfo=UTC)
    assert declared.lifetime.add_to(start) - start == timedelta(hours=SESSION_HOURS)


def test_p4_1_a_wrong_code_or_password_gets_one_message_and_nothing_echoed(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    made = add_staff(at, "olga", "privacy_officer")
    good = code_of(made, clock)
    wrong_code = str((int(good) + 1) % 1_000_000).zfill(6)
    answers = [
        client_at.post(LOGIN, data={"name": "olga", "password": made.password, "code": wrong_code}),
        client_at.post(LOGIN, data={"name": "olga", "password": "not-it-at-all", "code": good}),
        client_at.post(LOGIN, data={"name": "nobody", "password": made.password, "code": good}),
    ]
    messages = set()
    for answer in answers:
        assert answer.status_code == 401
        assert "privault_staff" not in answer.headers.get("set-cookie", "")
        assert made.password not in answer.text and "not-it-at-all" not in answer.text
        assert good not in answer.text and wrong_code not in answer.text
        found = re.search(r'<p class="notice bad" role="alert">([^<]+)</p>', answer.text)
        assert found
        messages.add(found.group(1))
    assert messages == {"Wrong name, password or code (a code works once)."}
    assert 'value="olga"' in answers[0].text  # the name is kept
    empty = client_at.post(LOGIN, data={"name": "olga", "password": "", "code": ""})
    assert empty.status_code == 422
    assert 'id="f-password-error"' in empty.text and 'id="f-code-error"' in empty.text
    assert 'value="olga"' in empty.text


def test_p4_1_logging_out_needs_the_form_token_and_ends_the_session(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    officer(at, client_at, clock)
    page = client_at.get("/staff/requests")
    refused = client_at.post("/staff/logout", data={"csrf": "0" * 64})
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert client_at.get("/staff/requests").status_code == 200
    out = client_at.post("/staff/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == LOGIN
    assert client_at.get("/staff/requests", follow_redirects=False).status_code == 303


def test_a_person_session_is_no_staff_session(
    client_at: TestClient, at: Runtime, alice: Person
) -> None:
    client_at.cookies.set("privault_session", alice.token)
    client_at.cookies.set("privault_staff", alice.token)
    answer = client_at.get("/staff/requests", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith(LOGIN)


# -- roles and pages -------------------------------------------------------------------


def test_p4_1_every_page_answers_each_role_by_its_purposes(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    seen = {}
    for role_id, role in at.policy.roles.items():
        client_at.cookies.clear()
        log_in(client_at, add_staff(at, f"s-{role_id}".replace("_", "-"), role_id), clock)
        allowed = {p.key for p in PAGES if not p.purposes or set(p.purposes) & set(role.purposes)}
        for page in PAGES:
            answer = client_at.get(page.path)
            may = page.key in allowed
            assert answer.status_code == (200 if may else 403), (role_id, page.path)
            assert "text/html" in answer.headers["content-type"]
            assert answer.headers["cache-control"] == "no-store"
            nav = answer.text.split("</nav>")[0]
            assert {p.key for p in PAGES if f'href="{p.path}"' in nav} == allowed
            if not may:
                assert "Not for your role" in answer.text
        seen[role_id] = allowed
        home = client_at.get("/staff", follow_redirects=False)
        first = next(p for p in PAGES if p.key in allowed)
        assert home.headers["location"] == first.path
    assert seen["billing"] == {"datamap"}
    assert seen["security"] == {"audit", "datamap"}
    assert seen["privacy_officer"] == {p.key for p in PAGES}
    with at.transaction() as session:
        refusals = session.scalar(
            select(func.count()).where(AccessLogEntry.action == "staff:staff:purpose_refused")
        )
    assert refusals  # each 403 is on record


def test_p4_1_a_page_hides_what_the_role_may_not_see_from_its_navigation(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    log_in(client_at, add_staff(at, "sam", "support"), clock)
    page = client_at.get("/staff/outbox")
    nav = page.text.split("</nav>")[0]
    assert 'href="/staff/outbox"' in nav and 'href="/staff/datamap"' in nav
    assert 'href="/staff/requests"' not in nav and 'href="/staff/audit"' not in nav
    # A form of a page the role may not see is refused like the page.
    token = csrf_of(page)
    placed = client_at.post("/staff/holds", data={"csrf": token, "category": "other"})
    assert placed.status_code == 403 and "Not for your role" in placed.text
    with at.transaction() as session:
        assert at.holds(session).all() == []


# -- the queue and a request -------------------------------------------------------------


def test_p9_4_the_queue_marks_overdue_requests_in_red_and_in_words(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    late = file_request(at, alice, "objection")
    clock.advance(timedelta(days=31))
    fresh = file_request(at, bob, "rectification")
    officer(at, client_at, clock)
    page = client_at.get("/staff/requests")
    assert page.status_code == 200
    rows = re.findall(r"<tr( class=\"overdue\")?>(.*?)</tr>", page.text, flags=re.S)
    mine = [(marked, body) for marked, body in rows if late in body or fresh in body]
    assert [late in body for _, body in mine] == [True, False]  # soonest due first
    (marked, body), (plain, other) = mine
    assert marked and "overdue" in body
    assert not plain and "overdue" not in other
    alone = client_at.get("/staff/requests?state=completed")
    assert late not in alone.text
    bad = client_at.get("/staff/requests?state=lost")
    assert bad.status_code == 422 and 'id="f-state-error"' in bad.text


def test_p9_4_the_chart_of_requests_by_week_is_svg_without_style(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    file_request(at, alice, "objection")
    file_request(at, alice, "rectification", verified=False)
    officer(at, client_at, clock)
    page = client_at.get("/staff/requests").text
    (chart, *_) = svgs(page)
    namespace = "{http://www.w3.org/2000/svg}"
    assert chart.find(f"{namespace}title") is not None
    assert chart.find(f"{namespace}desc") is not None
    titles = [t.text or "" for t in chart.iter(f"{namespace}title")]
    assert any("1 verified" in t for t in titles) and any("1 received" in t for t in titles)
    for picture in svgs(page):
        assert all("style" not in element.attrib for element in picture.iter())
    assert "<caption>Requests received per week, by state now</caption>" in page


def test_p9_4_a_request_page_offers_only_the_steps_its_state_allows(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    mailed = file_request(at, alice, "rectification", verified=False)
    erasure = file_request(at, alice, "erasure")
    officer(at, client_at, clock)

    def steps(request_id: str) -> set[str]:
        page = client_at.get(f"/staff/requests/{request_id}")
        assert page.status_code == 200
        return set(re.findall(rf'action="/staff/requests/{request_id}/(\w+)"', page.text))

    assert steps(mailed) == {"verify", "refuse"}
    assert steps(erasure) == {"carry_out", "extend", "refuse"}  # never completed by hand
    page = client_at.get(f"/staff/requests/{mailed}")
    assert "Fix it" in page.text  # what the person wrote, a read on record
    token = csrf_of(page)
    by_hand = client_at.post(
        f"/staff/requests/{erasure}/complete", data={"csrf": token, "complete_outcome": "done"}
    )
    assert by_hand.status_code == 409 and "does not allow complete" in by_hand.text
    empty = client_at.post(
        f"/staff/requests/{mailed}/verify", data={"csrf": token, "verify_note": "  "}
    )
    assert empty.status_code == 422
    assert re.search(r'id="f-verify_note-error">a note on how identity', empty.text)
    done = client_at.post(
        f"/staff/requests/{mailed}/verify",
        data={"csrf": token, "verify_note": "Called back"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert steps(mailed) == {"extend", "complete", "refuse"}
    far = client_at.post(
        f"/staff/requests/{mailed}/extend",
        data={"csrf": token, "extend_reason": "Archives", "extend_to": "2031-01-01"},
    )
    assert far.status_code == 422 and 'id="f-extend_to-error"' in far.text
    assert 'value="Archives"' in far.text and 'value="2031-01-01"' in far.text
    refused = client_at.post(
        f"/staff/requests/{mailed}/refuse",
        data={"csrf": token, "refuse_grounds": "excessive", "refuse_reason": ""},
    )
    assert refused.status_code == 422 and 'id="f-refuse_reason-error"' in refused.text
    assert '<option value="excessive" selected>' in refused.text
    client_at.post(
        f"/staff/requests/{mailed}/complete",
        data={"csrf": token, "complete_outcome": "Address corrected"},
    )
    closed = client_at.get(f"/staff/requests/{mailed}")
    assert steps(mailed) == set() and "staff:olga" in closed.text
    assert "Address corrected" in closed.text


def test_p9_4_an_officer_carries_out_an_erasure_now_and_it_completes_with_the_data_gone(
    at: Runtime, client_at: TestClient, clock: FrozenClock
) -> None:
    """Instead of waiting for the sweep: the steps are the sweep's, the officer's word is in
    the history, and a request not open, or not an export or erasure, is refused."""
    alice = register(at, "alice")
    erasure = file_request(at, alice, "erasure")
    objection = file_request(at, alice, "objection")
    officer(at, client_at, clock)
    token = csrf_of(client_at.get(f"/staff/requests/{erasure}"))
    wrong = client_at.post(f"/staff/requests/{objection}/carry_out", data={"csrf": token})
    assert wrong.status_code == 409 and "only an open export or erasure" in wrong.text
    done = client_at.post(
        f"/staff/requests/{erasure}/carry_out", data={"csrf": token}, follow_redirects=False
    )
    assert done.status_code == 303
    page = client_at.get(f"/staff/requests/{erasure}").text
    assert "completed" in page and "erased" in page and "staff:olga" in page
    with at.transaction() as session:
        view = at.rights(session).get(erasure)
        assert view.state == "completed"
        assert session.get(SubjectKey, alice.subject_id) is None
        history = [(e.actor, e.note) for e in at.rights(session).history(erasure)]
    assert ("staff:olga", "carried out now, without the sweep") in history
    assert history[-1][0] == "system:erasure"
    again = client_at.post(f"/staff/requests/{erasure}/carry_out", data={"csrf": token})
    assert again.status_code == 409


def test_p9_4_a_step_without_the_form_token_or_from_elsewhere_is_refused(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    mailed = file_request(at, alice, "rectification", verified=False)
    officer(at, client_at, clock)
    token = csrf_of(client_at.get(f"/staff/requests/{mailed}"))
    path = f"/staff/requests/{mailed}/verify"
    forged = client_at.post(path, data={"verify_note": "ok"})
    assert forged.status_code == 403 and "reload it" in forged.text
    elsewhere = client_at.post(
        path,
        data={"csrf": token, "verify_note": "ok"},
        headers={"Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403 and "text/html" in elsewhere.headers["content-type"]
    with at.transaction() as session:
        assert at.rights(session).get(mailed).state == "received"


def test_a_missing_request_is_a_404_page(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    officer(at, client_at, clock)
    answer = client_at.get("/staff/requests/nope")
    assert answer.status_code == 404 and "Not found" in answer.text
    assert "text/html" in answer.headers["content-type"]


# -- holds and registers ----------------------------------------------------------------


def test_p6_3_holds_are_placed_and_released_from_the_console(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    officer(at, client_at, clock)
    token = csrf_of(client_at.get("/staff/holds"))
    form = {"csrf": token, "kind": "proceedings", "reason": "", "people": "", "category": ""}
    nothing = client_at.post("/staff/holds", data=form)
    assert nothing.status_code == 422 and 'id="f-people-error"' in nothing.text
    unknown = client_at.post("/staff/holds", data={**form, "people": "nobody@example.com"})
    assert unknown.status_code == 422 and "line 1: no account has that address" in unknown.text
    assert "nobody@example.com</textarea>" in unknown.text
    no_reason = client_at.post("/staff/holds", data={**form, "people": alice.email})
    assert no_reason.status_code == 422 and 'id="f-reason-error"' in no_reason.text
    bad_day = client_at.post(
        "/staff/holds",
        data={**form, "people": alice.email, "reason": "Case 42", "until": "soon"},
    )
    assert bad_day.status_code == 422 and 'id="f-until-error"' in bad_day.text
    placed = client_at.post(
        "/staff/holds",
        data={**form, "people": alice.email, "reason": "Case 42", "category": "transactions"},
        follow_redirects=False,
    )
    assert placed.status_code == 303
    with at.transaction() as session:
        (hold,) = at.holds(session).covering(alice.subject_id)
    assert hold.placed_by == "staff:olga" and hold.category == "transactions"
    listed = client_at.get("/staff/holds").text
    assert "Case 42" in listed and f"/staff/holds/{hold.id}/release" in listed
    client_at.post(f"/staff/holds/{hold.id}/release", data={"csrf": token})
    with at.transaction() as session:
        assert at.holds(session).covering(alice.subject_id) == []
    assert "Case 42" not in client_at.get("/staff/holds").text
    assert "Case 42" in client_at.get("/staff/holds?all=1").text
    gone = client_at.post("/staff/holds/nope/release", data={"csrf": token})
    assert gone.status_code == 404


def test_the_registers_show_disclosures_releases_budgets_and_the_outbox_without_addresses(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    officer(at, client_at, clock)
    with at.transaction() as session:
        approver = at.staff(session).on_server("olga")
        at.disclosures(session).disclose(
            "courts_and_authorities",
            [alice.subject_id],
            ["registration"],
            "legal",
            "court_order",
            "Tribunal case 42",
            approver,
        )
    register_page = client_at.get("/staff/disclosures").text
    assert (
        "Tribunal case 42" in register_page and "Courts and competent authorities" in register_page
    )
    other = client_at.get("/staff/disclosures?recipient=hosting").text
    assert "Tribunal case 42" not in other
    assert client_at.get("/staff/disclosures?recipient=nope").status_code == 422
    statistics = client_at.get("/staff/statistics").text
    assert "Recipients of anonymous statistics" in statistics and "1 of 1" in statistics
    outbox = client_at.get("/staff/outbox")
    assert "verify_email" in outbox.text and alice.email not in outbox.text
    assert client_at.get("/staff/outbox?state=pending").status_code == 200
    assert client_at.get("/staff/outbox?state=lost").status_code == 422


# -- the access log and the data map ---------------------------------------------------------


def test_p4_1_the_access_log_filters_and_pages(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    officer(at, client_at, clock)
    page = client_at.get(f"/staff/audit?subject={alice.subject_id}")
    assert page.status_code == 200 and "Chain verified" in page.text
    assert alice.subject_id in page.text and bob.subject_id not in page.text
    opened = client_at.get("/staff/audit?actor=staff:olga&action=session:opened").text
    assert opened.count("staff_session:opened") == 1
    day = clock.now().strftime("%Y-%m-%d")
    assert alice.subject_id in client_at.get(f"/staff/audit?since={day}&until={day}").text
    assert alice.subject_id not in client_at.get("/staff/audit?until=2020-01-01").text
    bad = client_at.get("/staff/audit?since=yesterday&actor=staff:olga")
    assert bad.status_code == 422 and 'id="f-since-error"' in bad.text
    assert 'value="staff:olga"' in bad.text
    with at.transaction() as session:
        for _ in range(60):
            at.audit.record(session, "test", Event.KEYS_ROTATED, actor="test:pager")
    first = client_at.get("/staff/audit?actor=test:pager").text
    assert first.count("test:pager</td>") == 50
    older = re.search(r'href="/staff/audit(\?[^"]+)">Older entries', first)
    assert older
    second = client_at.get("/staff/audit" + older.group(1).replace("&amp;", "&")).text
    assert second.count("test:pager</td>") == 10 and "Older entries" not in second


def test_p4_1_the_access_log_page_shows_a_broken_chain(
    client_at: TestClient, at: Runtime, clock: FrozenClock, connection: Connection
) -> None:
    officer(at, client_at, clock)
    last = connection.execute(text("SELECT max(seq) FROM access_log")).scalar_one()
    connection.execute(
        text("UPDATE access_log SET actor = 'staff:mallory' WHERE seq = :seq"), {"seq": last}
    )
    page = client_at.get("/staff/audit")
    assert "Chain broken" in page.text and f"entry {last} was altered" in page.text


def test_the_data_map_is_drawn_as_svg_with_the_same_edges_in_words(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    log_in(client_at, add_staff(at, "bill", "billing"), clock)
    page = client_at.get("/staff/datamap")
    assert page.status_code == 200
    (picture,) = svgs(page.text)
    assert all("style" not in element.attrib for element in picture.iter())
    namespace = "{http://www.w3.org/2000/svg}"
    edges = [p.find(f"{namespace}title") for p in picture.iter(f"{namespace}path")]
    names = {e.text for e in edges if e is not None}
    assert "Call detail records → Billing" in names
    assert "Billing → Payment service provider" in names
    assert "Payment service provider → Ireland (IE)" in names
    assert '<th scope="row">Payment service provider</th><td>Ireland (IE)</td>' in page.text


def test_a_stored_value_that_fails_its_check_is_a_500_page_that_names_nothing(
    client_at: TestClient, at: Runtime, clock: FrozenClock, connection: Connection
) -> None:
    alice = register(at, "alice")
    mailed = file_request(at, alice, "rectification", verified=False)
    connection.execute(
        text("UPDATE rights_requests SET details_ct = :ct WHERE id = :id"),
        {"ct": bytes(60), "id": mailed},
    )
    officer(at, client_at, clock)
    answer = client_at.get(f"/staff/requests/{mailed}")
    assert answer.status_code == 500 and "text/html" in answer.headers["content-type"]
    assert "the operators have been alerted" in answer.text
    assert "rights_requests" not in answer.text and "Traceback" not in answer.text
