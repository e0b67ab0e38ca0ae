"""`privault cdr import` as a real process: Master.csv and JSON files, in batches (P2.7)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import func, select

from factories import give_room_id, register, run_cli
from privault.config import Settings
from privault.runtime import open_runtime, prepare
from privault.service.models import CallRecord

MASTER_CSV = Path(__file__).parent / "fixtures" / "Master.csv"
ROOM_A, ROOM_B = "4817305926", "7305924816"


def cdr(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(settings, cwd, "cdr", *args)


def test_p2_7_the_operator_imports_master_csv_and_json_files(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    try:
        alice, bob = register(runtime, "alice"), register(runtime, "bob")
        give_room_id(runtime, alice.subject_id, ROOM_A)
        give_room_id(runtime, bob.subject_id, ROOM_B)

        first = cdr(fresh_settings, tmp_path, "import", str(MASTER_CSV), "--batch-size", "4")
        assert first.returncode == 0, first.stderr
        lines = first.stdout.splitlines()
        assert f"{MASTER_CSV}: 9 accepted, 0 duplicate, 2 rejected" in lines
        assert (
            "line 7: rejected: missing_room: the record names no Room ID "
            "(Master.csv: set CDR(userfield) to the Room ID)"
        ) in lines
        assert "line 9: rejected: unknown_room: no room has this Room ID" in lines
        assert any(line.startswith("line 8: accepted: caller_unreadable: ") for line in lines)
        assert "7700900123" not in first.stdout

        again = cdr(fresh_settings, tmp_path, "import", str(MASTER_CSV))
        assert again.returncode == 0, again.stderr
        assert f"{MASTER_CSV}: 0 accepted, 9 duplicate, 2 rejected" in again.stdout.splitlines()

        batch = tmp_path / "batch.json"
        batch.write_text(
            json.dumps(
                {
                    "cdrs": [
                        {
                            "call_id": f"json-{i}",
                            "room_id": ROOM_B,
                            "caller": "+12025550147",
                            "start": "2024-05-04 10:00:00",
                            "end": "2024-05-04 10:01:00",
                            "disposition": "ANSWERED",
                        }
                        for i in range(3)
                    ]
                    + [{"call_id": "json-bad"}]
                }
            )
        )
        imported = cdr(fresh_settings, tmp_path, "import", str(batch), "--timezone", "Europe/Paris")
        assert imported.returncode == 0, imported.stderr
        assert f"{batch}: 3 accepted, 0 duplicate, 1 rejected" in imported.stdout.splitlines()
        assert "cdr 4: rejected: invalid_row: room_id: is required" in imported.stdout

        with runtime.factory() as session:
            assert session.scalar(select(func.count()).select_from(CallRecord)) == 12
            record = session.get(CallRecord, "json-0")
            assert record is not None and record.subject_id == bob.subject_id
            assert record.duration == 60
    finally:
        runtime.close()


def test_cdr_import_fails_in_one_line(fresh_settings: Settings, tmp_path: Path) -> None:
    prepare(fresh_settings).dispose()
    not_json = tmp_path / "cdrs.json"
    not_json.write_text("{")
    for args, message in [
        (("import", str(tmp_path / "missing.csv")), "privault: cannot read "),
        (("import", str(not_json)), f"privault: {not_json} is not JSON"),
        (("import", str(MASTER_CSV), "--format", "xml"), "privault: --format must be csv or json"),
        (("import", str(MASTER_CSV), "--timezone", "Paris"), "privault: 'Paris' is not a time"),
    ]:
        done = cdr(fresh_settings, tmp_path, *args)
        assert done.returncode == 1, done.stdout
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith(message), done.stderr


def test_cdr_import_answers_help(tmp_path: Path) -> None:
    done = run_cli(Settings(data_dir=tmp_path / "var"), tmp_path, "cdr", "import", "--help")
    assert done.returncode == 0, done.stderr
    assert "Master.csv" in done.stdout and "--timezone" in done.stdout
    assert not (tmp_path / "var").exists()
