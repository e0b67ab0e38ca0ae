"""`privault dsr list|show|verify|extend|complete|refuse` as a real process: the operator's
queue of data-subject requests, and the one-line `privault: <detail>` on every refusal."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from pathlib import Path

from factories import marker, register, run_cli
from privault.config import Settings
from privault.rights.models import RightsRequest
from privault.rights.service import Channel, State
from privault.runtime import open_runtime, prepare


def dsr(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(settings, cwd, "dsr", *args)


def ok(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, (done.args, done.stderr)
    assert done.stderr == "", done.stderr
    return done.stdout.splitlines()


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.args, done.stdout, done.stderr)
    assert done.stdout == "", done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("privault: "), done.stderr
    return lines[0]


def line_of(lines: list[str], request_id: str) -> int:
    found = [i for i, line in enumerate(lines) if request_id in line]
    assert len(found) == 1, (request_id, lines)
    return found[0]


def test_the_operator_works_through_the_queue_of_requests(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    try:
        alice = register(runtime, "alice")
        secret = marker("details")
        with runtime.transaction() as session:
            rights = runtime.rights(session)
            staff = {"actor": "staff:test"}
            unverified = rights.file(
                alice.subject_id,
                "rectification",
                Channel.STAFF,
                verified=False,
                details=secret,
                **staff,
            ).id
            late = rights.file(
                alice.subject_id, "restriction", Channel.STAFF, verified=True, **staff
            ).id
            due = rights.file(
                alice.subject_id, "objection", Channel.MAIL, verified=True, **staff
            ).id
        with runtime.transaction() as session:
            row = session.get(RightsRequest, late)
            assert row is not None
            row.due_at = runtime.clock.now() - timedelta(days=2)

        # The queue: the overdue request first, in red and marked; unverified ones (no
        # deadline yet) last; nothing the person wrote.
        listed = dsr(fresh_settings, tmp_path, "list")
        lines = ok(listed)
        order = [line_of(lines, i) for i in (late, due, unverified)]
        assert order == sorted(order), listed.stdout
        assert "OVERDUE" in lines[order[0]]
        assert listed.stdout.count("OVERDUE") == 1
        assert "restriction" in lines[order[0]] and "received" in lines[order[2]]
        assert secret not in listed.stdout and alice.email not in listed.stdout

        # Steps that change a request, one after another.
        verified = dsr(fresh_settings, tmp_path, "verify", unverified, "--note", "passport seen")
        soon = (runtime.clock.now() + timedelta(days=60)).astimezone(UTC)
        extended = dsr(
            fresh_settings,
            tmp_path,
            "extend",
            due,
            "--reason",
            "many systems",
            "--to",
            f"{soon:%Y-%m-%d}",
        )
        completed = dsr(
            fresh_settings, tmp_path, "complete", late, "--outcome", "processing restricted"
        )
        with runtime.factory() as session:
            rights = runtime.rights(session)
            now_verified = rights.get(unverified)
            assert now_verified.state == State.VERIFIED
            assert now_verified.due_at is not None and now_verified.verified_at is not None
            assert now_verified.due_at - now_verified.verified_at >= timedelta(days=28)
            assert rights.history(unverified)[-1].actor == "operator"
            assert rights.get(due).extended_to == soon.replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            assert rights.get(late).state == State.COMPLETED
        due_text = f"{now_verified.due_at.astimezone(UTC):%Y-%m-%d %H:%M}"
        assert ok(verified) == [f"request {unverified} verified; due {due_text} UTC"]
        assert ok(extended) == [f"request {due} extended to {soon:%Y-%m-%d} 00:00 UTC"]
        assert ok(completed) == [f"request {late} completed"]

        # Reading and refusals change nothing: side by side.
        far = runtime.clock.now() + timedelta(days=100)
        commands = [
            ("show", late),
            ("list", "--all"),
            ("list", "--due-before", f"{runtime.clock.now() + timedelta(days=45):%Y-%m-%d}"),
            ("extend", due, "--reason", "still more", "--to", f"{far:%Y-%m-%d}"),
            ("refuse", due, "--grounds", "whim", "--reason", "no"),
            ("show", "0" * 32),
        ]
        with ThreadPoolExecutor(len(commands)) as pool:
            shown, all_listed, due_soon, too_far, no_grounds, unknown = pool.map(
                lambda args: dsr(fresh_settings, tmp_path, *args), commands
            )

        lines = ok(shown)
        assert f"id:               {late}" in lines
        assert "state:            completed" in lines
        assert "outcome:          processing restricted" in lines
        history = [line for line in lines if "staff:test" in line or "operator" in line]
        assert len(history) == 3, shown.stdout
        assert "received" in history[0] and "verified" in history[1]
        assert "completed" in history[2] and "processing restricted" in history[2]
        assert secret not in shown.stdout

        lines = ok(all_listed)
        assert "completed" in lines[line_of(lines, late)]
        assert "OVERDUE" not in all_listed.stdout
        rows = [line for line in ok(due_soon) if "staff" in line or "mail" in line]
        assert len(rows) == 1 and unverified in rows[0], due_soon.stdout

        assert one_line_error(too_far).startswith(
            "privault: a request may run at most 3 months: until "
        )
        assert one_line_error(no_grounds) == (
            "privault: --grounds must be one of identity_not_confirmed, manifestly_unfounded, "
            "excessive, legal_grounds"
        )
        assert one_line_error(unknown) == "privault: no request has this id"
        with runtime.factory() as session:
            assert runtime.rights(session).get(due).state == State.VERIFIED
    finally:
        runtime.close()
