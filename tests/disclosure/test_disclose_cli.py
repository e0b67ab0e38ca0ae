"""`privault disclose record|list` as a real process: the privacy officer, named on the
server, records a disclosure; a refused one is one `privault: ...` line, and stays in the
access log (P4.2, P4.6, P0.1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy import select

from factories import register, run_cli
from privault.access.models import AccessLogEntry
from privault.config import Settings
from privault.runtime import open_runtime, prepare


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.args, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("privault: "), done.stderr
    return lines[0]


def test_p4_2_the_privacy_officer_records_and_lists_disclosures(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    alice, bob = register(runtime, "alice"), register(runtime, "bob")
    with runtime.transaction() as session:
        runtime.staff(session).add("ann", "privacy_officer")
        runtime.staff(session).add("sam", "support")
    runtime.close()
    record = [
        "disclose",
        "record",
        "--recipient",
        "courts_and_authorities",
        "--subject",
        alice.subject_id,
        "--email",
        bob.email,
        "--category",
        "call_records",
        "--category",
        "registration",
        "--purpose",
        "legal",
        "--basis",
        "court_order",
        "--requester",
        "Tribunal judiciaire de Paris, case 24/123",
    ]
    done = run_cli(fresh_settings, tmp_path, *record, "--staff", "ann")
    assert done.returncode == 0, done.stderr
    disclosure_id = done.stdout.split()[1]
    assert done.stdout.strip() == (
        f"disclosure {disclosure_id} recorded: 2 person(s), registration, call_records "
        "to courts_and_authorities"
    )
    gagged = run_cli(
        fresh_settings,
        tmp_path,
        *record[:4],
        "--subject",
        bob.subject_id,
        "--category",
        "communications",
        "--purpose",
        "legal",
        "--basis",
        "law",
        "--requester",
        "Parquet de Paris",
        "--staff",
        "ann",
        "--confidential",
    )
    assert gagged.returncode == 0, gagged.stderr

    listed = run_cli(fresh_settings, tmp_path, "disclose", "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if disclosure_id in line]
    assert len(lines) == 1
    for cell in ("courts_and_authorities", "authority", "court_order", "staff:ann", "case 24/123"):
        assert cell in lines[0]
    assert listed.stdout.count("CONFIDENTIAL") == 1
    assert alice.email not in listed.stdout and bob.email not in listed.stdout
    mine = run_cli(fresh_settings, tmp_path, "disclose", "list", "--subject", alice.subject_id)
    assert disclosure_id in mine.stdout and "Parquet" not in mine.stdout
    other = run_cli(fresh_settings, tmp_path, "disclose", "list", "--recipient", "hosting")
    assert other.stdout.strip() == "no disclosures"

    # Refusals: one line each, and each on record in the access log.
    sale = run_cli(
        fresh_settings, tmp_path, *record[:-6], "--purpose", "sale", *record[-4:], "--staff", "ann"
    )
    assert one_line_error(sale) == (
        "privault: we do not sell personal data: a disclosure for a sale is refused"
    )
    broker = run_cli(
        fresh_settings,
        tmp_path,
        *record[:2],
        "--recipient",
        "data_broker",
        *record[4:],
        "--staff",
        "ann",
    )
    assert "is not in the policy file" in one_line_error(broker)
    support = run_cli(fresh_settings, tmp_path, *record, "--staff", "sam")
    assert one_line_error(support) == (
        "privault: the role support may not use personal data for the purpose legal"
    )
    nobody = run_cli(fresh_settings, tmp_path, *record, "--staff", "nobody")
    assert one_line_error(nobody) == "privault: no staff member is called nobody"

    runtime = open_runtime(fresh_settings)
    try:
        with runtime.factory() as session:
            refusals = session.scalars(
                select(AccessLogEntry.detail)
                .where(AccessLogEntry.action == "cli:disclosure:refused")
                .order_by(AccessLogEntry.seq)
            ).all()
            assert runtime.audit.verify(session).ok
    finally:
        runtime.close()
    assert ['"reason":"sale_refused"' in d for d in refusals] == [True, False, False]
    assert '"reason":"unknown_recipient"' in refusals[1]
    assert '"reason":"purpose_refused"' in refusals[2]
