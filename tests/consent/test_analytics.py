"""First-party analytics (P2.1, P2.2): page views counted only with analytics consent,
the device kept coarse (network, country, browser and OS), visits tied to a person only
when logged in."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

import factories
from factories import Person, api_error
from privault.clock import Clock, FrozenClock
from privault.config import Settings
from privault.consent.analytics import (
    MAX_URL,
    AnalyticsEventInvalid,
    AnalyticsNotConsented,
    PageEvent,
    record_on_known_visit,
)
from privault.consent.cookies import consent_id_from_cookie
from privault.consent.geo import CsvCountries, GeoIpFileInvalid, NoCountries
from privault.consent.models import PageView, Visit
from privault.db import Base
from privault.policy.model import CONSENT_COOKIE
from privault.runtime import Runtime, open_runtime, prepare
from privault.vault.crypto import token_digest

EVENTS = "/api/v1/analytics/events"
CONSENT = "/api/v1/consent"
ACCEPT = {"strictly_necessary": True, "analytics": True, "advertising": False}
REFUSE = {"strictly_necessary": True, "analytics": False, "advertising": True}
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.91 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
#: Documentation ranges only (RFC 5737, RFC 3849), each given a country.
GEO_CSV = """\
192.0.2.0,192.0.2.255,FR
198.51.100.0,198.51.100.255,DE
203.0.113.0,203.0.113.127,FI
203.0.113.128,203.0.113.255,ZZ
2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,SE
"""
HOME = "203.0.113.77"


@pytest.fixture
def geo_csv(tmp_path: Path) -> Path:
    path = tmp_path / "dbip-country-lite.csv"
    path.write_text(GEO_CSV, encoding="utf-8")
    return path


@pytest.fixture
def on_geo(base_settings: Settings, at: Runtime, geo_csv: Path) -> Runtime:
    """The test's runtime on its clock, with PRIVAULT_GEOIP_CSV set to the test's file."""
    settings = Settings(**(base_settings.model_dump() | {"geoip_csv": geo_csv}))
    return open_runtime(settings, factory=at.factory, clock=at.clock)


def browser(runtime: Runtime, host: str = HOME, agent: str = CHROME) -> TestClient:
    """A browser, Chrome unless told otherwise: a page view's device comes from it."""
    return factories.browser(runtime, host, agent)


@pytest.fixture
def web(on_geo: Runtime) -> Iterator[TestClient]:
    with browser(on_geo) as client:
        yield client


def visit_id() -> str:
    return secrets.token_urlsafe(16)


def consent(client: TestClient, choices: dict[str, bool], **headers: str) -> None:
    answer = client.put(CONSENT, json={"choices": choices}, headers=headers)
    assert answer.status_code == 200, answer.text


def view(
    client: TestClient, visit: str, page: str, referrer: str | None = None, **headers: str
) -> Any:
    return client.post(
        EVENTS, json={"visit": visit, "page": page, "referrer": referrer}, headers=headers
    )


def counted(client: TestClient, visit: str, page: str, **headers: str) -> None:
    answer = view(client, visit, page, **headers)
    assert answer.status_code == 204, answer.text


def stored(runtime: Runtime) -> tuple[list[Visit], list[PageView]]:
    with runtime.transaction() as session:
        visits = list(session.scalars(select(Visit).order_by(Visit.started_at, Visit.id)))
        views = list(session.scalars(select(PageView).order_by(PageView.at, PageView.id)))
        session.expunge_all()
    return visits, views


def counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.transaction() as session:
        return (
            int(session.scalar(select(func.count()).select_from(Visit)) or 0),
            int(session.scalar(select(func.count()).select_from(PageView)) or 0),
        )


def everything_stored(runtime: Runtime) -> str:
    """Every row of every table, as text: what a look at the database would show."""
    with runtime.transaction() as session:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(table.select())
        )


def row_text(row: Base) -> str:
    return repr([getattr(row, c.key) for c in row.__table__.columns])


# P2.1: device data only through analytics, the address cut to its network, the country


def test_p2_1_the_visit_keeps_the_ipv4_network_and_country_never_the_address(
    web: TestClient, on_geo: Runtime
) -> None:
    consent(web, ACCEPT)
    counted(web, visit_id(), "/")
    [visit], [page_view] = stored(on_geo)
    assert visit.ip_prefix == "203.0.113.0/24"
    assert visit.country == "FI"
    assert HOME not in row_text(visit) and HOME not in row_text(page_view)
    assert HOME not in everything_stored(on_geo)


def test_p2_1_the_visit_keeps_the_ipv6_slash_48(on_geo: Runtime) -> None:
    address = "2001:db8:1234:5678:9abc::42"
    with browser(on_geo, host=address) as client:
        consent(client, ACCEPT)
        counted(client, visit_id(), "/")
    [visit], _ = stored(on_geo)
    assert visit.ip_prefix == "2001:db8:1234::/48"
    assert visit.country == "SE"
    text = everything_stored(on_geo)
    assert address not in text and "2001:db8:1234:5678" not in text


def test_p2_1_browser_version_and_os_are_parsed_from_the_user_agent(
    on_geo: Runtime, clock: FrozenClock
) -> None:
    for agent in (CHROME, FIREFOX):
        with browser(on_geo, agent=agent) as client:
            consent(client, ACCEPT)
            counted(client, visit_id(), "/")
        clock.advance(timedelta(seconds=1))
    chrome, firefox = stored(on_geo)[0]
    assert (chrome.browser, chrome.browser_version, chrome.os) == ("Chrome", "124", "Windows 10")
    assert (firefox.browser, firefox.browser_version, firefox.os) == ("Firefox", "125", "Ubuntu")
    # The user agent string itself is not kept.
    assert "6367.91" not in everything_stored(on_geo)


def test_p2_1_only_the_country_is_derived_never_a_finer_place(
    web: TestClient, on_geo: Runtime
) -> None:
    consent(web, ACCEPT)
    counted(web, visit_id(), "/")
    place = {"city", "region", "latitude", "longitude", "postcode", "location"}
    assert not place & {c.key for c in Visit.__table__.columns}
    assert stored(on_geo)[0][0].country == "FI"


def test_p2_1_without_a_file_or_a_known_range_the_country_is_unknown(
    at: Runtime, on_geo: Runtime, clock: FrozenClock
) -> None:
    with browser(at, host="192.0.2.10") as client:  # no PRIVAULT_GEOIP_CSV
        consent(client, ACCEPT)
        counted(client, visit_id(), "/")
    for host in ("203.0.113.200", "100.64.0.1"):  # ZZ in the file; not in the file
        clock.advance(timedelta(seconds=1))
        with browser(on_geo, host=host) as client:
            consent(client, ACCEPT)
            counted(client, visit_id(), "/")
    visits, _ = stored(at)
    assert [v.country for v in visits] == [None, None, None]
    assert [v.ip_prefix for v in visits] == ["192.0.2.0/24", "203.0.113.0/24", "100.64.0.0/24"]


# The IP-ranges file


def test_p2_1_countries_are_read_from_the_db_ip_layout(geo_csv: Path) -> None:
    countries = CsvCountries(geo_csv)
    assert countries.country_of("192.0.2.0") == "FR"
    assert countries.country_of("192.0.2.255") == "FR"
    assert countries.country_of("198.51.100.7") == "DE"
    assert countries.country_of("203.0.113.127") == "FI"
    assert countries.country_of("203.0.113.128") is None  # ZZ: unknown
    assert countries.country_of("192.0.3.0") is None
    assert countries.country_of("2001:db8::1") == "SE"
    assert countries.country_of("::ffff:192.0.2.9") == "FR"
    assert countries.country_of("2001:db9::1") is None
    assert countries.country_of("not an address") is None
    assert countries.country_of(None) is None
    assert NoCountries().country_of("192.0.2.1") is None


def test_p2_1_countries_are_read_from_the_ip2location_layout(tmp_path: Path) -> None:
    mapped = 0xFFFF_0000_0000  # ::ffff:0.0.0.0, where IP2Location's IPv6 file keeps IPv4
    v4 = int.from_bytes(bytes([192, 0, 2, 0]))
    db6 = 0x2001_0DB8 << 96
    path = tmp_path / "IP2LOCATION-LITE-DB1.IPV6.CSV"
    path.write_text(
        f'"0","{mapped - 1}","-","-"\n'
        f'"{mapped}","{mapped + v4 - 1}","-","-"\n'
        f'"{mapped + v4}","{mapped + v4 + 255}","FR","France"\n'
        f'"{db6}","{db6 + 2**96 - 1}","SE","Sweden"\n',
        encoding="utf-8",
    )
    countries = CsvCountries(path)
    assert countries.country_of("192.0.2.200") == "FR"
    assert countries.country_of("192.0.3.1") is None
    assert countries.country_of("2001:db8:abcd::1") == "SE"
    v4_file = tmp_path / "IP2LOCATION-LITE-DB1.CSV"
    v4_file.write_text(f'"{v4}","{v4 + 255}","FR","France"\n', encoding="utf-8")
    assert CsvCountries(v4_file).country_of("192.0.2.1") == "FR"


def test_a_broken_ip_ranges_file_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("start,end,country\n192.0.2.0,192.0.2.255,FR\n192.0.2.9,oops,FR\n")
    with pytest.raises(GeoIpFileInvalid, match="line 3"):
        CsvCountries(path).country_of("192.0.2.1")


def test_a_missing_ip_ranges_file_fails_at_start_with_the_setting_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="geoip_csv"):
        Settings(data_dir=tmp_path, geoip_csv=tmp_path / "absent.csv")


# P2.2: visits, their page views, length and navigation paths


def test_p2_2_a_visit_has_its_page_views_length_and_path(
    web: TestClient, on_geo: Runtime, clock: FrozenClock
) -> None:
    consent(web, ACCEPT)
    visit, started = visit_id(), clock.now()
    for page, seconds in (("/", 0), ("/pricing", 20), ("/pricing", 25), ("/contact", 95)):
        clock.at = started + timedelta(seconds=seconds)
        counted(web, visit, page)
    [row], views = stored(on_geo)
    assert row.visit_key == token_digest(visit)
    assert [v.page for v in views] == ["/", "/pricing", "/pricing", "/contact"]
    assert {v.visit_id for v in views} == {row.id}
    with on_geo.transaction() as session:
        analytics = on_geo.analytics(session)
        visit_row = session.get(Visit, row.id)
        assert visit_row is not None
        assert analytics.visit_length(visit_row) == timedelta(seconds=95)
        # A reload is not a step of the navigation.
        assert analytics.path(visit_row) == ("/", "/pricing", "/contact")


def test_p2_2_the_report_counts_views_visits_length_and_common_paths(
    web: TestClient, on_geo: Runtime, clock: FrozenClock
) -> None:
    consent(web, ACCEPT)
    start = clock.now()
    plans = [
        [("/", 0), ("/pricing", 30)],
        [("/", 0), ("/pricing", 90)],
        [("/contact", 0)],
    ]
    for number, plan in enumerate(plans):
        visit = visit_id()
        for page, seconds in plan:
            clock.at = start + timedelta(minutes=number, seconds=seconds)
            counted(web, visit, page)
    clock.at = start + timedelta(days=40)
    counted(web, visit_id(), "/later")  # outside the period
    with on_geo.transaction() as session:
        report = on_geo.analytics(session).report(start, start + timedelta(days=1))
    assert report.visits == 3
    assert report.page_views == [("/", 2), ("/pricing", 2), ("/contact", 1)]
    assert report.average_visit_length == timedelta(seconds=40)
    assert report.paths == [(("/", "/pricing"), 2), (("/contact",), 1)]


def test_p2_2_page_and_referrer_lose_query_fragment_and_tokens(
    web: TestClient, on_geo: Runtime
) -> None:
    consent(web, ACCEPT)
    token = secrets.token_urlsafe(24)
    secret = "mkqueryc0ffee"
    answer = view(
        web,
        visit_id(),
        f"/newsletter/confirm/{token}?email={secret}#top",
        referrer=f"https://ann:{secret}@Search.Example.com/results?q={secret}#frag",
    )
    assert answer.status_code == 204, answer.text
    _, [page_view] = stored(on_geo)
    assert page_view.page == "/newsletter/confirm/{id}"
    assert page_view.referrer == "https://search.example.com/results"
    text = everything_stored(on_geo)
    assert secret not in text and token not in text


def test_p2_2_an_anonymous_visit_is_tied_to_no_one(web: TestClient, on_geo: Runtime) -> None:
    consent(web, ACCEPT)
    counted(web, visit_id(), "/")
    [visit], [page_view] = stored(on_geo)
    assert visit.subject_id is None and page_view.subject_id is None


def test_p2_2_a_logged_in_visit_is_tied_to_the_person(
    web: TestClient, on_geo: Runtime, alice: Person, clock: FrozenClock
) -> None:
    consent(web, ACCEPT, **alice.auth)
    visit = visit_id()
    counted(web, visit, "/")  # before logging in, in the same tab
    clock.advance(timedelta(seconds=10))
    counted(web, visit, "/rooms", **alice.auth)
    clock.advance(timedelta(seconds=10))
    counted(web, visit, "/profile", **alice.auth)
    visits, views = stored(on_geo)
    anonymous, hers = visits
    assert anonymous.subject_id is None
    assert hers.subject_id == alice.subject_id
    assert [(v.page, v.subject_id, v.visit_id) for v in views] == [
        ("/", None, anonymous.id),
        ("/rooms", alice.subject_id, hers.id),
        ("/profile", alice.subject_id, hers.id),
    ]


def test_p2_2_someone_else_with_the_visit_id_cannot_add_to_a_persons_visit(
    on_geo: Runtime, alice: Person, mallory: Person
) -> None:
    visit = visit_id()
    with browser(on_geo) as hers, browser(on_geo) as theirs:
        consent(hers, ACCEPT, **alice.auth)
        counted(hers, visit, "/", **alice.auth)
        consent(theirs, ACCEPT, **mallory.auth)
        counted(theirs, visit, "/fake", **mallory.auth)
        consent(theirs, ACCEPT)
        counted(theirs, visit, "/fake")
    with on_geo.transaction() as session:
        mine = session.scalars(select(PageView.page).where(PageView.subject_id == alice.subject_id))
        assert list(mine) == ["/"]
        assert session.scalar(select(func.count()).select_from(Visit)) == 3


# P2.2: only with analytics consent; nothing stored without it


def test_p2_2_without_a_cookie_choice_nothing_is_stored(web: TestClient, on_geo: Runtime) -> None:
    detail = api_error(view(web, visit_id(), "/"), 403, "analytics_not_consented")
    assert "analytics" in detail
    assert counts(on_geo) == (0, 0)


def test_p2_2_with_analytics_refused_nothing_is_stored(web: TestClient, on_geo: Runtime) -> None:
    consent(web, REFUSE)
    api_error(view(web, visit_id(), "/"), 403, "analytics_not_consented")
    assert counts(on_geo) == (0, 0)


def test_p2_2_after_a_withdrawal_nothing_more_is_stored(web: TestClient, on_geo: Runtime) -> None:
    consent(web, ACCEPT)
    visit = visit_id()
    counted(web, visit, "/")
    consent(web, REFUSE)
    api_error(view(web, visit, "/pricing"), 403, "analytics_not_consented")
    assert counts(on_geo) == (1, 1)


def test_p2_2_an_expired_choice_allows_nothing(
    web: TestClient, on_geo: Runtime, clock: FrozenClock
) -> None:
    consent(web, ACCEPT)
    clock.advance(timedelta(days=200))  # the policy keeps a choice six months
    api_error(view(web, visit_id(), "/"), 403, "analytics_not_consented")
    assert counts(on_geo) == (0, 0)


def test_p2_2_a_forged_consent_id_allows_nothing(web: TestClient, on_geo: Runtime) -> None:
    forged = f"{secrets.token_urlsafe(24)}.strictly_necessary+analytics.{'0' * 16}"
    web.cookies.set(CONSENT_COOKIE, forged, domain="testserver.local")
    api_error(view(web, visit_id(), "/"), 403, "analytics_not_consented")
    assert counts(on_geo) == (0, 0)


def test_p2_2_it_rejects_mallory_using_alices_consent_cookie(
    on_geo: Runtime, alice: Person, mallory: Person
) -> None:
    with browser(on_geo) as hers, browser(on_geo) as theirs:
        consent(hers, ACCEPT, **alice.auth)
        theirs.cookies.set(CONSENT_COOKIE, hers.cookies[CONSENT_COOKIE], domain="testserver.local")
        answer = view(theirs, visit_id(), "/", **mallory.auth)
    api_error(answer, 403, "analytics_not_consented")
    assert counts(on_geo) == (0, 0)


@pytest.mark.parametrize(
    "body",
    [
        {"visit": "short", "page": "/"},
        {"visit": "a" * 65, "page": "/"},
        {"visit": "not/url+safe-but-long-enough", "page": "/"},
        {"visit": "v" * 20, "page": "/" + "p" * MAX_URL},
        {"visit": "v" * 20, "page": "/", "referrer": "https://example.com/" + "r" * MAX_URL},
        {"visit": "v" * 20, "page": ""},
        {"visit": "v" * 20, "page": "javascript:alert(1)"},
        {"visit": "v" * 20, "page": "//elsewhere.example.com/"},
        {"visit": "v" * 20, "page": "/a b"},
        {"visit": "v" * 20, "page": "/", "referrer": "ftp://example.com/"},
        {"visit": "v" * 20, "page": "/", "referrer": "https://example.com:port/"},
        {"visit": "v" * 20, "page": "/", "at": "yesterday"},
        {"visit": "v" * 20, "page": "/", "email": "ann@example.com"},
        {"visit": "v" * 20},
    ],
    ids=[
        "visit-short",
        "visit-long",
        "visit-chars",
        "page-long",
        "referrer-long",
        "page-empty",
        "page-script",
        "page-other-host",
        "page-space",
        "referrer-ftp",
        "referrer-port",
        "at-not-a-time",
        "unknown-field",
        "page-missing",
    ],
)
def test_p2_2_bad_input_is_refused_and_nothing_stored(
    web: TestClient, on_geo: Runtime, body: dict[str, Any]
) -> None:
    consent(web, ACCEPT)
    answer = web.post(EVENTS, json=body)
    detail = api_error(answer, 422)
    assert "ann@example.com" not in detail and "alert" not in detail
    assert counts(on_geo) == (0, 0)


def test_p2_2_a_body_that_is_not_json_is_refused(web: TestClient, on_geo: Runtime) -> None:
    consent(web, ACCEPT)
    answer = web.post(
        EVENTS,
        content=b'{"visit":"vvvvvvvvvvvvvvvvvvvv","page":"/"}',
        headers={"Content-Type": "text/plain"},
    )
    api_error(answer, 415, "unsupported_media_type")
    assert counts(on_geo) == (0, 0)


def test_p2_2_the_time_sent_is_ignored_for_the_servers(
    web: TestClient, on_geo: Runtime, clock: FrozenClock
) -> None:
    consent(web, ACCEPT)
    body = {"visit": visit_id(), "page": "/", "at": "2001-01-01T00:00:00Z"}
    assert web.post(EVENTS, json=body).status_code == 204
    _, [page_view] = stored(on_geo)
    assert page_view.at.replace(tzinfo=None) == clock.now().replace(tzinfo=None)


def test_p2_2_the_service_refuses_without_consent_too(on_geo: Runtime) -> None:
    with on_geo.transaction() as session:
        analytics = on_geo.analytics(session)
        with pytest.raises(AnalyticsNotConsented):
            analytics.record(
                PageEvent(visit_id(), "/"),
                consent_id=None,
                subject_id=None,
                user_agent=CHROME,
                ip=HOME,
            )
    assert counts(on_geo) == (0, 0)


def test_p2_2_on_postgresql_only_page_views_commit_before_the_wal_is_flushed(
    fresh_settings: Settings, backend: str
) -> None:
    """Page views get sessions of their own: on PostgreSQL in autocommit with
    synchronous_commit off; every other write keeps waiting for the disk."""
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    setting = text("SHOW synchronous_commit")
    try:
        if backend == "postgresql":
            with runtime.transaction(runtime.page_views) as session:
                views = session.scalar(setting)
            with runtime.transaction() as session:
                others = session.scalar(setting)
            assert (views, others) == ("off", "on")
        else:
            assert runtime.page_views is runtime.factory
        with browser(runtime) as client:
            consent(client, ACCEPT)
            visit = visit_id()
            counted(client, visit, "/")
            counted(client, visit, "/pricing")
            consent(client, REFUSE)
            assert view(client, visit, "/contact").status_code == 403
        assert counts(runtime) == (1, 2)
    finally:
        runtime.close()


def test_p2_2_on_postgresql_a_visitors_view_of_a_known_visit_is_counted_on_the_event_loop(
    fresh_settings: Settings, backend: str
) -> None:
    """The common case, a visitor's next view of a visit, is one statement on the served
    app's event loop, written only while the browser's live choice accepts analytics;
    anything else is left to the worker thread's full check."""
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    try:
        if backend != "postgresql":
            assert runtime.on_loop(page_views=True) is None
            return
        with browser(runtime) as client:
            assert client.app.state.loop_page_views is not None  # type: ignore[attr-defined]
            consent(client, ACCEPT)
            visit = visit_id()
            counted(client, visit, "/")
            consent_id = consent_id_from_cookie(client.cookies[CONSENT_COOKIE])
        assert consent_id is not None

        def on_loop(event: PageEvent, clock: Clock = runtime.clock) -> bool:
            async def record() -> bool:
                engine = runtime.on_loop(page_views=True)
                assert engine is not None
                try:
                    return await record_on_known_visit(
                        engine,
                        event,
                        consent_id=consent_id,
                        versions=runtime.cookie_versions,
                        clock=clock,
                        partitions=runtime.partitions,
                    )
                finally:
                    await engine.dispose()

            return asyncio.run(record())

        assert on_loop(PageEvent(visit, "/pricing?ref=mail"))
        assert not on_loop(PageEvent(visit_id(), "/"))  # a new visit: the thread makes it
        later = FrozenClock(runtime.clock.now() + timedelta(days=200))
        assert not on_loop(PageEvent(visit, "/contact"), later)  # the choice has expired
        with pytest.raises(AnalyticsEventInvalid):
            on_loop(PageEvent("short", "/"))
        with browser(runtime) as client:
            client.cookies.set(CONSENT_COOKIE, f"{consent_id}.x.0", domain="testserver.local")
            consent(client, REFUSE)
        assert not on_loop(PageEvent(visit, "/contact"))  # withdrawn
        _, views = stored(runtime)
        assert sorted(v.page for v in views) == ["/", "/pricing"]
    finally:
        runtime.close()


def test_p2_2_two_first_views_of_a_visit_at_once_make_one_visit(on_geo: Runtime) -> None:
    """The first page views of a visit, sent together, both find no visit; the second to
    insert one meets the first's row on the unique key and takes its id. Made to happen in
    one transaction here: the second insert conflicts with the first as it would with
    another request's."""
    key = token_digest(visit_id())
    with on_geo.transaction() as session:
        analytics = on_geo.analytics(session)
        now = on_geo.clock.now()
        first = analytics._new_visit(key, None, now, CHROME, HOME)
        second = analytics._new_visit(key, None, now, FIREFOX, "192.0.2.1")
        assert second == first
    [visit], _ = stored(on_geo)
    assert (visit.id, visit.browser, visit.ip_prefix) == (first, "Chrome", "203.0.113.0/24")
