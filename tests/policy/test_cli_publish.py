"""`privault policy publish`, `policy diff` and `policy notify` as real processes, and the
page the policy mail links to."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from factories import revised, run_cli, verified
from privault.clock import FrozenClock
from privault.config import Settings
from privault.policy.diff import ChangeKind
from privault.policy.errors import PolicyError
from privault.policy.store import PolicyStore, PolicyVersion
from privault.runtime import Runtime, open_runtime, prepare, publish_policy


def test_p8_2_policy_publish_prints_the_diff_and_mails_every_active_account(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    rt = open_runtime(fresh_settings)
    people = [verified(rt, name) for name in ("alice", "bob")]
    rt.close()
    path = revised(tmp_path)

    published = run_cli(fresh_settings, tmp_path, "policy", "publish", str(path))
    assert published.returncode == 0, published.stderr
    lines = published.stdout.splitlines()
    assert lines[0].startswith("policy version 2 published, in force from ")
    assert lines[1].strip().startswith("New analytics cookie: _gat")
    assert lines[2].strip() == "Notice only: nobody needs to agree again."
    assert lines[-1] == (
        "policy version 2: 2 mail(s) queued now, 2 in all; 0 account(s) without an address"
    )

    again = run_cli(fresh_settings, tmp_path, "policy", "notify", "2")
    assert again.stdout.strip() == (
        "policy version 2: 0 mail(s) queued now, 2 in all; 0 account(s) without an address"
    )
    compared = run_cli(fresh_settings, tmp_path, "policy", "diff", str(path), "1")
    assert compared.stdout.splitlines()[:2] == [
        f"From {path} to version 1:",
        "  Cookie _gat_<tracker-id> is no longer used.",
    ]
    unchanged = run_cli(fresh_settings, tmp_path, "policy", "publish", str(path))
    assert unchanged.returncode == 1
    assert unchanged.stderr == (
        f"privault: {path.name} is version 2 unchanged: nothing to publish\n"
    )
    rt = open_runtime(fresh_settings)
    try:
        assert rt.policy_version == 2
        with rt.factory() as session:
            assert len(rt.outbox.ids_of(session, people[0].subject_id)) == 2  # verify + policy
    finally:
        rt.close()


def test_the_diff_page_lists_the_changes_and_what_they_need(
    at: Runtime, client_at: TestClient, clock: FrozenClock, tmp_path: Path
) -> None:
    with at.transaction() as session:
        version = PolicyStore(session, clock).publish(revised(tmp_path)).version
    page = client_at.get(f"/privacy/diff/{version - 1}/{version}")
    assert page.status_code == 200
    assert "New analytics cookie: _gat" in page.text
    assert "Notice only: nobody needs to agree again." in page.text
    assert f'href="/privacy/v/{version}"' in page.text
    missing = client_at.get(f"/privacy/diff/{version}/{version + 5}")
    assert missing.status_code == 404
    assert f"There is no policy version {version + 5}." in missing.text
    assert client_at.get(f"/privacy/diff/x/{version}").status_code == 404


def test_an_old_data_folder_whose_policy_no_longer_parses_publishes_its_way_out(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    engine = prepare(fresh_settings)
    with engine.begin() as conn:
        conn.execute(update(PolicyVersion).values(text="[meta]\nname = 'Kallu'\n", sha256="0" * 64))
    engine.dispose()
    with pytest.raises(PolicyError):
        open_runtime(fresh_settings)
    published = publish_policy(fresh_settings, revised(tmp_path))
    assert published.version == 2 and published.diff is not None
    assert published.diff.changes[0].kind is ChangeKind.UNREADABLE
    rt = open_runtime(fresh_settings)
    assert rt.policy_version == 2
    rt.close()
