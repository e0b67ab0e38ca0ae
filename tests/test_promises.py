"""`privault promises`: the promise table with its mechanisms (checked to exist) and the
tests that name each ID; ``--strict`` fails on what does not add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from privault.config import REPO_POLICY
from privault.policy.loader import load_policy
from privault.policy.model import Policy
from privault.promises.evidence import NamedTest, ids_in_name, ids_in_text, named_tests
from privault.promises.registry import MECHANISMS, code, policy
from privault.promises.report import build, resolve_code, resolve_policy
from privault.promises.table import load_table, parse_table
from test_cli import cli_env

TABLE = """
| ID | The policy says | What the system must do |
|---|---|---|
| P0.1 | We won't sell your data | No buyer. |
| P4.2\u2013P4.5 | Disclosure when the law requires it | A register. |
"""


@pytest.fixture(scope="module")
def kallu() -> Policy:
    return load_policy(REPO_POLICY)


def suite(folder: Path, source: str) -> Path:
    tests = folder / "tests"
    tests.mkdir()
    (tests / "test_some.py").write_text(source, encoding="utf-8")
    return tests


def promises(tests: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "privault.cli", "promises", "--tests", str(tests), *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ids_are_read_from_names_and_docstrings_not_from_durations() -> None:
    assert ids_in_name("test_p9_3_request_from_unregistered_address") == ["P9.3"]
    assert ids_in_name("test_p4_2_to_p4_5_each_ground") == ["P4.2", "P4.5"]
    assert ids_in_name("test_p3_x_reads") == ["P3.x"]
    assert ids_in_name("test_help_p2") == []
    assert ids_in_text("Proves P8.1 and (P2.10); P3.x too.") == ["P8.1", "P2.10", "P3.x"]
    assert ids_in_text("P1.5M is a duration, P13M too, v1.P2.3 is no promise") == []


def test_the_table_is_read_with_ranges_as_their_clauses() -> None:
    first, ranged = parse_table(TABLE)
    assert (first.id, first.says, first.must, first.members) == (
        "P0.1",
        "We won't sell your data",
        "No buyer.",
        ("P0.1",),
    )
    assert ranged.members == ("P4.2", "P4.3", "P4.4", "P4.5")
    shipped = load_table()
    assert len(shipped) == 44 and shipped[0].id == "P0.1" and shipped[-1].id == "P11.4"


def test_every_reference_of_the_registry_resolves(kallu: Policy) -> None:
    report = build(load_table(), [], kallu)
    assert [c.problem for line in report.lines for c in line.mechanisms if c.problem] == []
    assert report.unregistered == ()
    assert set(MECHANISMS) <= {p.id for p in load_table()}


def test_references_that_name_nothing_say_why(kallu: Policy) -> None:
    assert resolve_code("privault.vault.service.Vault.encrypt") is None
    assert resolve_code("privault.vault.service.Vault.nothing") == (
        "privault.vault.service.Vault.nothing: privault.vault.service.Vault has no 'nothing'"
    )
    assert resolve_code("privault.nowhere.thing") == (
        "privault.nowhere.thing: privault has no 'nowhere'"
    )
    assert resolve_policy("categories.other.retention.from", kallu) is None
    assert resolve_policy("cookies.privault_session.lifetime", kallu) is None
    assert resolve_policy("recipients.google", kallu) is None
    assert resolve_policy("categories.elsewhere", kallu) == (
        "policy key categories.elsewhere: categories has no 'elsewhere'"
    )


def test_a_broken_mechanism_or_a_promise_without_a_test_is_a_problem(kallu: Policy) -> None:
    registry = {
        "P0.1": (code("gone", "privault.disclosure.service.sell"),),
        "P4.2\u2013P4.5": (policy("the register", "recipients.courts_and_authorities"),),
        "P12.1": (code("a promise the table lacks", "privault.cli.main"),),
    }
    named = [
        NamedTest("tests/test_a.py::test_p4_3_court_order", ("P4.3",)),
        NamedTest("tests/test_a.py::test_p8_9_typo", ("P8.9",)),
    ]
    report = build(parse_table(TABLE), named, kallu, registry)
    assert report.problems() == [
        "P0.1: no test names it",
        "P0.1: privault.disclosure.service.sell: privault.disclosure.service has no 'sell'",
        "P8.9 is not in the promise table, yet tests/test_a.py::test_p8_9_typo names it",
        "registry: P12.1 is not in the promise table",
    ]
    assert report.lines[1].tests == ("tests/test_a.py::test_p4_3_court_order",)


def test_collection_finds_collected_tests_by_name_and_docstring(tmp_path: Path) -> None:
    tests = suite(
        tmp_path,
        'def test_p0_1_no_sale():\n    pass\n\n\ndef test_plain():\n    """Proves P2.11."""\n\n\n'
        "class TestRooms:\n    def test_p2_6_rooms(self):\n        pass\n\n\n"
        "def helper_p9_9():\n    pass\n",
    )
    assert named_tests(tests) == [
        NamedTest("tests/test_some.py::test_p0_1_no_sale", ("P0.1",)),
        NamedTest("tests/test_some.py::test_plain", ("P2.11",)),
        NamedTest("tests/test_some.py::TestRooms::test_p2_6_rooms", ("P2.6",)),
    ]


def test_strict_fails_with_one_line_per_promise_without_a_test(tmp_path: Path) -> None:
    tests = suite(tmp_path, "def test_p0_1_no_sale():\n    pass\n\n\ndef test_p8_9():\n    pass\n")
    done = promises(tests, "--strict")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert "privault promises: P0.2: no test names it" in lines
    assert not any(line.startswith("privault promises: P0.1:") for line in lines)
    assert "privault promises: P8.9 is not in the promise table, yet " in done.stderr
    assert len(lines) == len(set(lines)) and all(
        line.startswith("privault promises: ") for line in lines
    )
    assert "P0.1" in done.stdout  # the table is printed all the same
    assert promises(tests).returncode == 0  # without --strict it only reports


def test_json_output_has_each_promise_with_mechanisms_and_tests(tmp_path: Path) -> None:
    tests = suite(tmp_path, 'def test_x():\n    """P2.11: anything else."""\n')
    done = promises(tests, "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"promises", "unknown_ids", "problems"}
    other = next(p for p in report["promises"] if p["id"] == "P2.11")
    assert set(other) == {"id", "says", "must", "mechanisms", "tests"}
    assert other["tests"] == ["tests/test_some.py::test_x"]
    assert {"what", "kind", "ref", "problem"} == set(other["mechanisms"][0])
    assert {"categories.other", "categories.other.retention"} <= {
        m["ref"] for m in other["mechanisms"] if m["kind"] == "policy"
    }
    assert "P0.1: no test names it" in report["problems"]


def test_a_suite_that_does_not_collect_fails_in_one_line(tmp_path: Path) -> None:
    done = promises(suite(tmp_path, "def test_broken(:\n"))
    assert done.returncode == 1
    assert done.stderr.startswith("privault: pytest cannot collect ")
    assert len(done.stderr.splitlines()) == 1
