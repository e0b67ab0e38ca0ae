"""`privault dialin add|list|remove` as a real process: the operator's dial-in numbers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from factories import run_cli
from privault.config import Settings
from privault.runtime import prepare


def dialin(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(settings, cwd, "dialin", *args)


def test_the_operator_adds_lists_and_removes_dial_in_numbers(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    added = dialin(fresh_settings, tmp_path, "add", "+358 9 4245 0000", "--city", "Helsinki")
    assert added.returncode == 0, added.stderr
    assert "dial-in +358942450000 added for FI" in added.stdout
    assert dialin(fresh_settings, tmp_path, "add", "+44 20 7946 0000").returncode == 0

    listed = dialin(fresh_settings, tmp_path, "list")
    assert listed.stdout.splitlines() == [
        "FI\t+358942450000\tHelsinki",
        "GB\t+442079460000\t-",
    ]

    for args, message in [
        (("add", "+1 555"), "privault: '+1 555' is not a valid phone number: too short"),
        (("add", "+358942450000"), "privault: +358942450000 is a dial-in number already"),
        (("remove", "+358 2 1234 5678"), "privault: +358212345678 is not a dial-in number"),
    ]:
        done = dialin(fresh_settings, tmp_path, *args)
        assert done.returncode == 1, done.stdout
        assert done.stderr.splitlines() == [message]

    removed = dialin(fresh_settings, tmp_path, "remove", "+358 9 42450000")
    assert removed.returncode == 0, removed.stderr
    assert dialin(fresh_settings, tmp_path, "list").stdout.splitlines() == ["GB\t+442079460000\t-"]
