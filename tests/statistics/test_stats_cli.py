"""`privault stats release|budget` as a real process: a release written to a file or to
stdout and recorded; a refused one is one `privault: ...` line (P3.10)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select

from factories import run_cli
from privault.config import Settings
from privault.disclosure.models import StatisticsRelease
from privault.runtime import open_runtime, prepare


def test_p3_10_the_operator_runs_a_release_from_the_command_line(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    with runtime.transaction() as session:
        runtime.staff(session).add("ann", "privacy_officer")
    runtime.close()
    out = tmp_path / "rooms.json"
    release = ["stats", "release", "active_rooms", "--recipient", "statistics_recipients"]
    done = run_cli(
        fresh_settings, tmp_path, *release, "--staff", "ann", "--format", "json", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["release"] == "active_rooms" and document["parameters"]["k"] == 10
    assert document["columns"] == ["month", "people", "rooms", "suppressed"]
    to_stdout = run_cli(fresh_settings, tmp_path, *release)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.startswith("# release: active_rooms\n")
    assert "suppressed" in to_stdout.stderr
    runtime = open_runtime(fresh_settings)
    with runtime.factory() as session:
        rows = session.scalars(select(StatisticsRelease).order_by(StatisticsRelease.created_at))
        hashes = [(r.approved_by, r.output_sha256) for r in rows]
    runtime.close()
    assert hashes == [
        ("staff:ann", hashlib.sha256(out.read_bytes()).hexdigest()),
        ("operator", hashlib.sha256(to_stdout.stdout.encode()).hexdigest()),
    ]
    register = run_cli(fresh_settings, tmp_path, "disclose", "list")
    assert register.returncode == 0, register.stderr
    assert "statistics releases" in register.stdout
    for approver, digest in hashes:
        [line] = [line for line in register.stdout.splitlines() if digest in line]
        assert "statistics_recipients" in line and "active_rooms v1" in line
        assert approver in line
    about_someone = run_cli(fresh_settings, tmp_path, "disclose", "list", "--subject", "x" * 32)
    assert about_someone.stdout.strip() == "no disclosures"  # releases name no one
    refused = run_cli(
        fresh_settings, tmp_path, "stats", "release", "active_rooms", "--recipient", "hosting"
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "privault: hosting is a recipient of kind processor, not statistics: "
        "it receives no statistics release"
    )
    budget = run_cli(fresh_settings, tmp_path, "stats", "budget", "statistics_recipients")
    assert budget.stdout.strip() == (
        "statistics_recipients: epsilon 1 of 1 left (0 spent), "
        "delta 1e-06 of 1e-06 left (0 spent), per P1M"
    )
