"""The keyring file: created 0600, refused when exposed or malformed, never overwritten,
and never silently replaced while the database still holds data keys it wrapped."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from factories import register
from privault.config import Settings
from privault.db import make_sessionmaker
from privault.runtime import open_runtime, prepare
from privault.vault import Keyring, KeyringError, KeyringInsecure
from privault.vault.keyring import SECRET_NAMES


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_private(path: Path, body: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body)
    finally:
        os.close(fd)
    path.chmod(0o600)


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVAULT_")}
    env["PRIVAULT_DATA_DIR"] = str(settings.data_dir)
    env["PRIVAULT_DATABASE_URL"] = settings.db_url
    return env


def test_p7_1_init_creates_the_keyring_with_mode_0600_even_under_a_permissive_umask(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "privault.cli", "init"],
        env=cli_env(fresh_settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        umask=0,
    )
    assert done.returncode == 0, done.stderr
    assert mode_of(fresh_settings.keyring_path) == 0o600
    ring = Keyring.load(fresh_settings.keyring_path)
    assert all(len(ring.secret(name)) == 32 for name in SECRET_NAMES)


def test_p7_1_saving_keeps_the_keyring_private(tmp_path: Path) -> None:
    ring = Keyring.create(tmp_path / "keyring.json")
    assert mode_of(ring.path) == 0o600
    ring.add_master_key()
    assert mode_of(ring.path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o620, 0o602, 0o700 | 0o007])
def test_p7_1_load_refuses_a_keyring_other_users_can_reach_and_names_the_chmod_fix(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    path.chmod(mode)
    with pytest.raises(KeyringInsecure) as caught:
        Keyring.load(path)
    assert f"chmod 600 {path}" in caught.value.detail
    assert f"{mode:04o}" in caught.value.detail
    assert caught.value.code == "keyring_insecure"


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_load_accepts_a_keyring_only_its_owner_can_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keyring.json"
    created = Keyring.create(path)
    path.chmod(mode)
    loaded = Keyring.load(path)
    assert loaded.active == created.active
    assert loaded.master_keys == created.master_keys
    assert all(loaded.secret(n) == created.secret(n) for n in SECRET_NAMES)


def test_load_of_a_missing_keyring_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="not found; run `privault init`"):
        Keyring.load(tmp_path / "keyring.json")


def _valid() -> dict[str, object]:
    key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # 32 bytes
    return {
        "format": 1,
        "active": "mk-1",
        "master_keys": {"mk-1": key},
        "secrets": {name: key for name in SECRET_NAMES},
    }


def _with(**changes: object) -> bytes:
    data = _valid()
    data.update(changes)
    return json.dumps(data).encode()


MALFORMED = {
    "empty": b"",
    "not json": b"this is not a keyring",
    "binary": b"\xff\xfe\x00\x01garbage",
    "truncated": _with()[:40],
    "a list": b"[1, 2, 3]",
    "a number": b"42",
    "unknown format": _with(format=2),
    "no format": json.dumps({k: v for k, v in _valid().items() if k != "format"}).encode(),
    "no master keys": json.dumps(
        {k: v for k, v in _valid().items() if k != "master_keys"}
    ).encode(),
    "no active": json.dumps({k: v for k, v in _valid().items() if k != "active"}).encode(),
    "active key absent": _with(active="mk-2"),
    "master keys a list": _with(master_keys=["mk-1"]),
    "master key not base64": _with(master_keys={"mk-1": "not base64!"}),
    "master key a number": _with(master_keys={"mk-1": 12}),
    "master key too short": _with(master_keys={"mk-1": "AAEC"}),
    "secrets null": _with(secrets=None),
    "secret wrong length": _with(secrets={"audit": "AAEC"}),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_keyring_gives_keyring_error_not_a_traceback(
    tmp_path: Path, body: bytes
) -> None:
    path = tmp_path / "keyring.json"
    write_private(path, body)
    with pytest.raises(KeyringError) as caught:
        Keyring.load(path)
    assert not isinstance(caught.value, KeyringInsecure)
    assert str(path) in caught.value.detail
    assert "\n" not in caught.value.detail


def test_the_well_formed_sample_keyring_loads(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    write_private(path, _with())
    assert Keyring.load(path).active == "mk-1"


def test_load_adds_missing_secrets_and_keeps_the_file_private(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    data = _valid()
    data["secrets"] = {"blind_index": data["master_keys"]["mk-1"]}  # type: ignore[index]
    write_private(path, json.dumps(data).encode())
    ring = Keyring.load(path)
    assert all(len(ring.secret(name)) == 32 for name in SECRET_NAMES)
    assert set(json.loads(path.read_text())["secrets"]) == set(SECRET_NAMES)
    assert Keyring.load(path).secret("audit") == ring.secret("audit")
    assert mode_of(path) == 0o600


def test_create_refuses_to_overwrite_an_existing_keyring(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    before = path.read_bytes()
    with pytest.raises(KeyringError, match="already exists; refusing to overwrite"):
        Keyring.create(path)
    assert path.read_bytes() == before


def test_a_loaded_keyring_sees_a_rotation_made_through_another_handle(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    server = Keyring.load(path)
    operator = Keyring.load(path)
    new_id = operator.add_master_key()
    assert server.master(new_id) == operator.master(new_id)
    assert server.active == new_id


def test_a_keyring_cannot_retire_its_active_master_key(tmp_path: Path) -> None:
    ring = Keyring.create(tmp_path / "keyring.json")
    with pytest.raises(KeyringError, match="active master key cannot be retired"):
        ring.retire(ring.active)
    assert ring.active in Keyring.load(ring.path).master_keys


def test_p7_1_prepare_refuses_a_new_keyring_when_the_database_holds_wrapped_keys(
    fresh_settings: Settings,
) -> None:
    engine = prepare(fresh_settings)
    try:
        runtime = open_runtime(fresh_settings, factory=make_sessionmaker(engine))
        register(runtime, "alice")
        fresh_settings.keyring_path.unlink()
        with pytest.raises(KeyringError, match="restore it from its backup"):
            prepare(fresh_settings, engine)
        assert not fresh_settings.keyring_path.exists()
    finally:
        engine.dispose()


def test_prepare_again_keeps_the_existing_keyring(
    fresh_settings: Settings,
) -> None:
    engine = prepare(fresh_settings)
    try:
        first = Keyring.load(fresh_settings.keyring_path)
        prepare(fresh_settings, engine)
        assert Keyring.load(fresh_settings.keyring_path).master_keys == first.master_keys
    finally:
        engine.dispose()
