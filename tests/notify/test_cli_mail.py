"""`privault mail outbox` and `privault mail show` as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from factories import register
from logscan import child_output
from privault.config import Settings
from privault.notify.models import OutboxMessage
from privault.runtime import open_runtime, prepare

NEWS = {"title": "News", "body": "Rooms for ten.", "unsubscribe_url": "https://kallu.example/u/1"}


def start(settings: Settings, cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PRIVAULT_")}
    environ |= {
        "COLUMNS": "200",
        "PRIVAULT_DATA_DIR": str(settings.data_dir),
        "PRIVAULT_DATABASE_URL": settings.db_url,
    } | env
    return subprocess.Popen(
        [sys.executable, "-m", "privault.cli", *args],
        env=environ,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=120)
    child_output(stderr)
    return process.returncode, stdout, stderr


def one_line_error(done: tuple[int, str, str]) -> str:
    code, _, stderr = done
    assert code == 1, stderr
    [line] = stderr.splitlines()
    assert line.startswith("privault: ")
    return line


def test_mail_outbox_lists_mails_without_addresses_and_show_prints_a_copy(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    alice, bob = register(runtime, "alice"), register(runtime, "bob")
    runtime.mailer().deliver_pending()
    with runtime.transaction() as session:
        news = runtime.outbox.enqueue(session, bob.subject_id, bob.email, "newsletter", NEWS)
    with runtime.factory() as session:
        verify = session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.subject_id == alice.subject_id)
        ).one()
    runtime.close()

    commands = [
        ["mail", "outbox"],
        ["mail", "outbox", "--state", "pending"],
        ["mail", "outbox", "--limit", "1", "--state", "sent"],
        ["mail", "show", verify],
        ["mail", "show", news],
        ["mail", "show", "0" * 32],
        ["mail", "show", "../keyring"],
        ["mail", "outbox", "--state", "lost"],
    ]
    results = [finish(p) for p in [start(fresh_settings, tmp_path, *c) for c in commands]]
    relayed = finish(
        start(fresh_settings, tmp_path, "mail", "show", verify, PRIVAULT_SMTP_HOST="relay.example")
    )
    listed, pending, one_sent, shown, unsent, unknown, walking, bad_state = results

    assert listed[0] == 0, listed[2]
    assert "@" not in listed[1] and alice.email not in listed[1]
    rows = [line for line in listed[1].splitlines() if verify in line or news in line]
    assert len(rows) == 2 and news in rows[0]  # newest first
    assert "verify_email" in rows[1] and "sent" in rows[1]
    assert "newsletter" in rows[0] and "pending" in rows[0]
    assert news in pending[1] and verify not in pending[1]
    assert len([line for line in one_sent[1].splitlines() if "verify_email" in line]) == 1

    assert shown[0] == 0, shown[2]
    assert f"Message-ID: <{verify}@kallu.cc>" in shown[1]
    assert f"To: {alice.email}" in shown[1]
    assert "Subject: Confirm your email address" in shown[1]
    assert "/verify-email?token=" in shown[1]

    assert f"no copy of mail {news!r}" in one_line_error(unsent)
    assert "no copy of mail" in one_line_error(unknown)
    assert "no copy of mail" in one_line_error(walking)
    assert "--state must be one of pending, sending, sent, failed" in one_line_error(bad_state)
    assert "relay.example; no copy is kept here" in one_line_error(relayed)
