"""The privacy policy page (P8.1, P11.2): rendered from the policy file, each stored version
readable at /privacy/v/N, the same data as the code enforces, and `privault policy render`."""

from __future__ import annotations

import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from factories import KALLU, Tables, declared_cookies, kallu_data, policy_refusal, run_cli
from privault.config import Settings
from privault.policy import Policy, Recipient, RecipientKind, build_policy
from privault.policy.render import TITLES, render
from privault.policy.store import PolicyStore
from privault.policy.wording import Format, country_name, day, period_words
from privault.runtime import Runtime, open_runtime, prepare
from privault.web.app import create_app

#: The seed's section titles, as the Kallu policy's prose keeps them.
SEED_TITLES = [kallu_data()["prose"][str(n)]["title"] for n in range(1, 12)]


def sections(html: str) -> list[str]:
    return re.findall(r'<h2 id="section-\d+-title">(.*?)</h2>', html)


def section(html: str, number: int) -> str:
    after = html.split(f'<section id="section-{number}"')[1]
    return after.split(f'<section id="section-{number + 1}"')[0].split("</article>")[0]


def page(client: TestClient, path: str = "/privacy") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def store_edited(runtime: Runtime, tmp_path: Path, old: str, new: str) -> int:
    """Stores the Kallu policy with ``old`` replaced by ``new`` as the next version."""
    text = KALLU.read_text(encoding="utf-8")
    assert old in text
    edited = tmp_path / "kallu.toml"
    edited.write_text(text.replace(old, new), encoding="utf-8")
    with runtime.transaction() as session:
        return PolicyStore(session, runtime.clock).load_file(edited)


# --- The page ------------------------------------------------------------------------------


def test_p8_1_the_page_shows_the_version_in_force_in_the_seeds_eleven_sections(
    client: TestClient, runtime: Runtime
) -> None:
    html = page(client)
    assert sections(html) == [f"{n}. {title}" for n, title in enumerate(SEED_TITLES, 1)]
    assert TITLES[1:] == tuple(SEED_TITLES)  # the titles of a file without prose
    version = runtime.policy_version
    # In force since the day the fixture stored it on its clock (not the file's own date).
    since = day(runtime.clock.now().date())
    assert f"Version {version} (policy 1.0.0), in force since {since}." in html
    assert re.search(rf"Version {version} of \d+ \w+ \d+ \(this page\): in force now", html)
    assert "Hello there, here is our Privacy Policy." in html
    assert 'href="mailto:privacy@kallu.cc"' in html
    rights = section(html, 9)
    assert "Include &#34;My Personal Data&#34; in the subject line." in rights
    assert "within 30 days of receipt" in rights and "a maximum of three months" in rights
    assert "{" not in html.split("<article")[1]


def test_p8_1_the_page_is_linked_from_every_page_and_from_the_cookie_declaration(
    client: TestClient,
) -> None:
    for path in ("/", "/cookies", "/contact", "/privacy"):
        assert '<a href="/privacy">Privacy policy</a>' in page(client, path)
    assert 'href="/privacy#section-11"' in page(client, "/cookies")


def test_p8_1_each_stored_version_renders_and_an_older_one_stays_readable(
    base_settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    first = runtime.policy_version
    second = store_edited(runtime, tmp_path, 'version = "1.0.0"', 'version = "1.1.0"')
    third = store_edited(
        runtime,
        tmp_path,
        'title = "Third party website"',
        'title = "Other websites"',
    )
    assert (first, second, third) == (first, first + 1, first + 2)
    later = open_runtime(base_settings, factory=runtime.factory, clock=runtime.clock)
    assert later.policy_version == third
    with TestClient(create_app(later)) as client:
        now = page(client)
        old = page(client, f"/privacy/v/{first}")
        middle = page(client, f"/privacy/v/{second}")
        assert page(client, f"/privacy/v/{third}") == now
    assert f"Version {third} (policy 1.0.0)" in now and "10. Other websites" in now
    assert f"Version {first} (policy 1.0.0)" in old and "10. Third party website" in old
    assert f"Version {second} (policy 1.1.0)" in middle
    assert "10. Third party website" in middle
    for html, shown in ((now, third), (old, first), (middle, second)):
        for number in (first, second, third):
            link = f'<a href="/privacy/v/{number}">Version {number}</a>'
            assert (link in html) is (number != shown)
        assert re.search(rf"Version {shown}( of \d+ \w+ \d+) \(this page\)", html)
        assert re.search(rf"Version {third}(</a>)? of \d+ \w+ \d+( \(this page\))?: in force", html)


@pytest.mark.parametrize(
    "number", ["99", "0", "x", "1.0", "-1", "99999999999", "99999999999999999999"]
)
def test_p8_1_a_version_never_stored_is_a_page_saying_so(client: TestClient, number: str) -> None:
    response = client.get(f"/privacy/v/{number}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no such version of the privacy policy" in response.text


# --- The same data as the code ------------------------------------------------------------


def test_p11_2_the_cookie_table_of_the_policy_is_the_policy_files_and_the_declarations(
    client: TestClient, runtime: Runtime
) -> None:
    in_policy = Tables(section(page(client), 11)).rows
    on_declaration = Tables(page(client, "/cookies")).rows
    assert in_policy == on_declaration == declared_cookies(runtime.policy)
    assert len(in_policy) == len(runtime.policy.cookies)


def changed(policy: Policy) -> Policy:
    """The policy with a category, a purpose, a retention reason, a recipient and a cookie
    changed, as an operator's next version might."""
    profile = policy.categories["profile"]
    retention = profile.retention.model_copy(update={"reason": "Kept for the test's sake."})
    categories = dict(policy.categories)
    categories["profile"] = profile.model_copy(
        update={"title": "Profile (changed)", "retention": retention}
    )
    purposes = dict(policy.purposes)
    purposes["billing"] = purposes["billing"].model_copy(
        update={"description": "Invoicing, changed for the test."}
    )
    auditor = Recipient(
        id="auditors",
        name="Statutory auditors",
        kind=RecipientKind.PROCESSOR,
        country="NL",
        purposes=("legal",),
        description="Check our accounts once a year.",
    )
    cookies = tuple(c for c in policy.cookies if c.name != "IDE")
    return policy.model_copy(
        update={
            "categories": categories,
            "purposes": purposes,
            "recipients": (*policy.recipients, auditor),
            "cookies": cookies,
        }
    )


@pytest.mark.parametrize("edit", [False, True], ids=["kallu", "changed"])
def test_p8_1_categories_purposes_retention_and_recipients_on_the_page_are_the_policys(
    runtime: Runtime, edit: bool
) -> None:
    policy = changed(runtime.policy) if edit else runtime.policy
    with TestClient(create_app(dataclasses.replace(runtime, policy=policy))) as client:
        tables = Tables(page(client))
    categories = policy.categories.values()
    assert tables.table("What we collect") == [[c.title, c.description] for c in categories]
    assert [row[:2] for row in tables.table("What we use it for")] == [
        [p.title, p.description] for p in policy.purposes.values()
    ]
    assert [row[3] for row in tables.table("What we use it for")] == [
        ", ".join(policy.category(c).title for c in p.categories) for p in policy.purposes.values()
    ]
    assert [[r[0], r[2], r[4]] for r in tables.table("Who may receive it: no one else")] == [
        [r.name, country_name(r.country), r.description] for r in policy.recipients
    ]
    assert [[r[0], r[1], r[3]] for r in tables.table("How long we keep it")] == [
        [c.title, period_words(c.retention), c.retention.reason] for c in categories
    ]
    assert [row[0] for row in tables.table("Where it is kept and processed")] == [
        loc.name for loc in policy.locations
    ]
    cookies = [row for t in tables.tables if not t.caption for row in t.rows]
    assert cookies == declared_cookies(policy)
    if edit:
        assert [
            "Statutory auditors",
            "Processor (GDPR Art. 28)",
            "Netherlands (NL)",
            "Legal obligations and legal claims",
            "Check our accounts once a year.",
        ] in tables.table("Who may receive it: no one else")
        assert "IDE" not in [row[0] for row in cookies]


# --- The prose ------------------------------------------------------------------------------


def test_prose_names_only_values_the_policy_has() -> None:
    data = kallu_data()
    data["prose"]["9"]["paragraphs"][0] = "Write to {privacy_adress}"
    assert policy_refusal(data).startswith("kallu.toml: prose.9: unknown {privacy_adress}: one of ")
    data["prose"]["9"]["paragraphs"][0] = "A lone } brace"
    assert policy_refusal(data) == (
        "kallu.toml: prose.9: Single '}' encountered in format string (write {{ and }} for a brace)"
    )
    data = kallu_data()
    data["prose"]["12"] = {"title": "Extra"}
    assert (
        policy_refusal(data)
        == "kallu.toml: prose.12: the policy page has sections 0 (preamble) to 11"
    )


def test_p8_1_a_policy_without_prose_still_has_the_eleven_sections_and_all_its_data(
    runtime: Runtime,
) -> None:
    data = kallu_data()
    del data["prose"]
    bare = build_policy(data)
    html = render(bare, None, bare.meta.effective_date, Format.HTML)
    assert sections(html) == [f"{n}. {title}" for n, title in enumerate(SEED_TITLES, 1)]
    assert "<strong>Draft</strong> of policy 1.0.0" in html
    assert "Hello there" not in html
    assert Tables(section(html, 11)).rows == declared_cookies(bare)
    assert len(Tables(html).table("What we collect")) == len(bare.categories)


# --- privault policy render ---------------------------------------------------------------


def test_p8_1_policy_render_prints_html_and_markdown_and_refuses_bad_options(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    stored_between = {datetime.now(UTC).date()}
    prepare(fresh_settings).dispose()
    stored_between.add(datetime.now(UTC).date())
    draft = tmp_path / "next.toml"
    draft.write_text(
        KALLU.read_text(encoding="utf-8").replace('version = "1.0.0"', 'version = "2.0.0"'),
        encoding="utf-8",
    )
    runs = {
        "html": ("policy", "render"),
        "md": ("policy", "render", "--format", "md", "--version", "1"),
        "draft": ("policy", "render", "--file", str(draft), "--format", "md"),
        "unknown": ("policy", "render", "--version", "7"),
        "not a number": ("policy", "render", "--version", "one"),
        "format": ("policy", "render", "--format", "pdf"),
        "both": ("policy", "render", "--version", "1", "--file", str(draft)),
        "broken": ("policy", "render", "--file", str(tmp_path / "missing.toml")),
    }
    with ThreadPoolExecutor(4) as pool:
        results = pool.map(lambda args: run_cli(fresh_settings, tmp_path, *args), runs.values())
        done = dict(zip(runs, results, strict=True))
    for name in ("html", "md", "draft"):
        assert done[name].returncode == 0, done[name].stderr
    html, md, drafted = done["html"].stdout, done["md"].stdout, done["draft"].stdout
    assert sections(html) == [f"{n}. {title}" for n, title in enumerate(SEED_TITLES, 1)]
    edition = "Version 1 (policy 1.0.0), in force since {}."
    assert any(edition.format(day(d)) in html for d in stored_between)
    assert html.startswith('<article class="policy">')
    assert md.startswith("# Privacy Policy\n\nVersion 1 (policy 1.0.0), in force since")
    headings = re.findall(r"^## (.*)$", md, flags=re.M)
    assert headings == [f"{n}. {title}" for n, title in enumerate(SEED_TITLES, 1)]
    assert "| \\_ga | Google Ireland Limited (Google Analytics) |" not in md
    assert "| _ga | Google Ireland Limited (Google Analytics) |" in md
    assert "- Version 1 of " in md and "(this page): in force now" in md
    assert drafted.startswith("# Privacy Policy\n\n**Draft** of policy 2.0.0")
    assert "Version 1" not in drafted
    errors = {name: done[name] for name in ("unknown", "not a number", "format", "both", "broken")}
    for name, result in errors.items():
        assert result.returncode == 1, (name, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("privault: "), name
        assert result.stdout == "", name
    assert errors["unknown"].stderr == "privault: there is no policy version 7\n"
    assert errors["not a number"].stderr == (
        "privault: --version must be a version number, not 'one'\n"
    )
    assert errors["format"].stderr == "privault: --format must be html or md, not 'pdf'\n"
    assert errors["both"].stderr == "privault: give --version or --file, not both\n"
    assert errors["broken"].stderr.endswith("missing.toml: no such file\n")
