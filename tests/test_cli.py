"""The `privault` command as a real process: help for each command, policy check, init,
audit verify, keys rotate, and the one-line `privault: <detail>` error with exit status 1."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.main import get_command

from logscan import child_output
from privault import demo
from privault.cli import _served_at, app
from privault.config import REPO_POLICY, Settings
from privault.db import make_engine
from privault.runtime import prepare

TIMEOUT = 120


def cli_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no PRIVAULT_* from outside, wide output, the test's data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVAULT_")}
    env["COLUMNS"] = "200"
    if settings is not None:
        env["PRIVAULT_DATA_DIR"] = str(settings.data_dir)
        env["PRIVAULT_DATABASE_URL"] = settings.db_url
        env["PRIVAULT_ARGON2_TIME_COST"] = str(settings.argon2_time_cost)
        env["PRIVAULT_ARGON2_MEMORY_KIB"] = str(settings.argon2_memory_kib)
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "privault.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    child_output(stderr)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return finish(start(args, env, cwd))


def run_all(
    commands: list[list[str]], env: dict[str, str], cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands side by side: each process spends most of its time importing."""
    return [finish(process) for process in [start(args, env, cwd) for args in commands]]


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: exit {done.returncode}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The failure contract: exit 1, exactly one stderr line `privault: ...`, no traceback."""
    assert done.returncode == 1, f"{done.args}: exit {done.returncode}\n{done.stderr}"
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("privault: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def room_ids(stdout: str) -> list[str]:
    found = re.findall(r"room (\d+)", stdout)
    assert len(found) == len(demo.CAST), stdout
    return found


# --- Help ---------------------------------------------------------------------------------

COMMANDS = [
    [],
    ["init"],
    ["serve"],
    ["demo"],
    ["policy", "check"],
    ["policy", "render"],
    ["keys", "rotate"],
    ["audit", "verify"],
    ["ropa"],
]


def test_every_command_answers_help(tmp_path: Path) -> None:
    env = cli_env(PRIVAULT_DATA_DIR=str(tmp_path / "var"))
    results = run_all([[*command, "--help"] for command in COMMANDS], env, tmp_path)
    for command, done in zip(COMMANDS, results, strict=True):
        stdout = ok(done)
        assert "Usage:" in stdout, command
    assert not (tmp_path / "var").exists()
    serve_help = results[COMMANDS.index(["serve"])].stdout
    assert "--host" in serve_help
    assert "--port" in serve_help
    assert "[default: 127.0.0.1]" in serve_help


def test_p7_2_serve_and_demo_bind_localhost_unless_told_otherwise() -> None:
    cli = get_command(app)
    for name in ("serve", "demo"):
        command = cli.commands[name]  # type: ignore[attr-defined]
        host = next(param for param in command.params if param.name == "host")
        assert host.default == "127.0.0.1", name


# --- policy check -------------------------------------------------------------------------

KALLU = REPO_POLICY.read_text(encoding="utf-8")


def broken_copy(folder: Path, name: str, old: str, new: str) -> Path:
    assert old in KALLU
    path = folder / name
    path.write_text(KALLU.replace(old, new, 1), encoding="utf-8")
    return path


def test_policy_check_accepts_the_kallu_policy_in_one_line_however_narrow(tmp_path: Path) -> None:
    stdout = ok(run(["policy", "check", str(REPO_POLICY)], cli_env(COLUMNS="40"), tmp_path))
    assert stdout == (
        f"{REPO_POLICY}: valid: 11 categories, 15 purposes, 7 recipients, 9 cookies\n"
    )


def test_policy_check_refuses_broken_files_in_one_line_naming_the_key_and_reason(
    tmp_path: Path,
) -> None:
    duration = broken_copy(tmp_path, "duration.toml", 'period = "P13M"', 'period = "P13X"')
    category = broken_copy(
        tmp_path,
        "category.toml",
        'categories = ["newsletter", "registration"]',
        'categories = ["newsleter", "registration"]',
    )
    syntax = tmp_path / "syntax.toml"
    syntax.write_text(KALLU + "\n[recipients\n", encoding="utf-8")
    missing = tmp_path / "missing.toml"
    expected = {
        duration: (
            f"privault: {duration}: categories.device.retention.period: 'P13X' is not a duration"
        ),
        category: (
            f"privault: {category}: purposes.newsletters.categories: unknown category 'newsleter'"
        ),
        syntax: f"privault: {syntax}: line {KALLU.count(chr(10)) + 2}, column ",
        missing: f"privault: {missing}: no such file",
    }
    results = run_all([["policy", "check", str(path)] for path in expected], cli_env(), tmp_path)
    for (path, start_of_line), done in zip(expected.items(), results, strict=True):
        line = one_line_error(done)
        assert line.startswith(start_of_line), (path, line)
        assert done.stdout == "", path


# --- Settings -----------------------------------------------------------------------------


def test_a_bad_setting_fails_in_one_line_naming_it(tmp_path: Path) -> None:
    data = str(tmp_path / "var")
    results = [
        *run_all(
            [["init"], ["serve", "--port", str(free_port())]],
            cli_env(PRIVAULT_DATA_DIR=data, PRIVAULT_MAX_BODY_BYTES="abc"),
            tmp_path,
        ),
        run(["init"], cli_env(PRIVAULT_DATA_DIR=data, PRIVAULT_SESSION_DAYS="0"), tmp_path),
    ]
    for done in results[:2]:
        line = one_line_error(done)
        assert line.startswith("privault: setting PRIVAULT_MAX_BODY_BYTES: "), line
        assert "abc" not in line.removeprefix("privault: setting PRIVAULT_MAX_BODY_BYTES")
    assert one_line_error(results[2]).startswith("privault: setting PRIVAULT_SESSION_DAYS: ")
    assert not (tmp_path / "var").exists()


def test_secrets_can_be_read_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("relay-pass-word\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path, smtp_password_file=secret)
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "relay-pass-word"
    assert "relay-pass-word" not in repr(settings)
    missing = run(
        ["init"],
        cli_env(PRIVAULT_DATA_DIR=str(tmp_path / "var"), PRIVAULT_SMTP_PASSWORD_FILE="/no/such"),
        tmp_path,
    )
    assert one_line_error(missing) == (
        "privault: setting PRIVAULT_SMTP_PASSWORD_FILE: cannot read /no/such: "
        "No such file or directory"
    )


# --- init, serve --------------------------------------------------------------------------


def test_p7_1_init_creates_the_data_folder_keyring_and_maildir_and_can_run_twice(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    env = cli_env(fresh_settings)
    stdout = ok(run(["init"], env, tmp_path))
    assert "policy version 1 loaded" in stdout
    assert fresh_settings.data_dir.is_dir()
    assert stat.S_IMODE(fresh_settings.keyring_path.stat().st_mode) == 0o600
    for sub in ("tmp", "new", "cur"):
        assert (fresh_settings.maildir / sub).is_dir()
    keyring = fresh_settings.keyring_path.read_bytes()

    again = ok(run(["init"], env, tmp_path))
    assert "policy version 1 loaded" in again
    assert fresh_settings.keyring_path.read_bytes() == keyring
    assert stat.S_IMODE(fresh_settings.keyring_path.stat().st_mode) == 0o600


def test_p7_1_serve_refuses_a_world_readable_keyring_before_binding(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    fresh_settings.keyring_path.chmod(0o644)
    done = run(["serve", "--port", str(free_port())], cli_env(fresh_settings), tmp_path)
    line = one_line_error(done)
    assert f"run `chmod 600 {fresh_settings.keyring_path}`" in line
    assert "serving on" not in done.stdout


# --- audit verify, keys rotate ------------------------------------------------------------


def test_p7_1_audit_verify_and_keys_rotate_on_a_demo_data_folder(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    env = cli_env(fresh_settings)
    rooms = room_ids(ok(run(["demo", "--no-serve"], env, tmp_path)))
    assert "intact" in ok(run(["audit", "verify"], env, tmp_path))

    rotated = ok(run(["keys", "rotate"], env, tmp_path))
    keys = re.search(r"master key mk-\S+ is active; (\d+) data keys re-wrapped", rotated)
    assert keys is not None and int(keys[1]) > len(demo.CAST), rotated  # and a visitor's
    assert room_ids(ok(run(["demo", "--no-serve"], env, tmp_path))) == rooms
    assert "intact" in ok(run(["audit", "verify"], env, tmp_path))

    engine = make_engine(fresh_settings.db_url)
    try:
        with engine.begin() as conn:
            last = conn.scalar(text("SELECT max(seq) FROM access_log"))
            conn.execute(text("DELETE FROM access_log WHERE seq = :seq"), {"seq": last})
        line = one_line_error(run(["audit", "verify"], env, tmp_path))
        assert line == (
            f"privault: access log broken after {last - 1} good entries: entry {last} is "
            f"missing (the log ends at {last - 1}, its head is entry {last})"
        )
        with engine.begin() as conn:
            changed = conn.execute(text("UPDATE access_log SET actor = 'mallory' WHERE seq = 3"))
            assert changed.rowcount == 1
    finally:
        engine.dispose()
    line = one_line_error(run(["audit", "verify"], env, tmp_path))
    assert line == "privault: access log broken after 2 good entries: entry 3 was altered"


def test_serve_without_a_base_url_links_to_where_it_serves(
    base_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links in pages and mail (the policy's address, verification links) point at the
    host and port `serve` and `demo` bind, unless PRIVAULT_BASE_URL says otherwise."""
    unset = base_settings.model_copy()
    unset.model_fields_set.discard("base_url")
    assert _served_at(unset, "127.0.0.1", 8765).base_url == "http://127.0.0.1:8765"
    monkeypatch.setenv("PRIVAULT_BASE_URL", "https://calls.example.org")
    configured = Settings()
    assert _served_at(configured, "127.0.0.1", 8765).base_url == "https://calls.example.org"
