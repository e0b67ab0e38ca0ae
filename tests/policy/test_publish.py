"""Publishing policy versions with effective dates, and a running server that follows the
version in force without a restart."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from factories import revised
from privault.clock import FrozenClock
from privault.policy.diff import ChangeKind
from privault.policy.errors import PolicyError, PublishRefused
from privault.policy.store import PolicyStore, PolicyVersion
from privault.runtime import Runtime


def test_a_version_published_for_a_later_date_is_stored_but_not_in_force_yet(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    with at.transaction() as session:
        store = PolicyStore(session, clock)
        before = store.effective_version()
        published = store.publish(revised(tmp_path), clock.now() + timedelta(days=2))
        assert published.version == (before or 0) + 1
        assert store.effective_version() == before
        clock.advance(timedelta(days=2))
        assert store.effective_version() == published.version
        row = store.get(published.version)
        assert row.published_at < row.effective_at
    assert published.diff is not None
    assert [c.text for c in published.diff.changes] == [
        "New analytics cookie: _gat_<tracker-id> (Google Ireland Limited (Google Analytics)), "
        "lasting 1 minute."
    ]


def test_publish_refuses_an_unchanged_file(at: Runtime, clock: FrozenClock) -> None:
    with at.transaction() as session, pytest.raises(PublishRefused) as refused:
        PolicyStore(session, clock).publish(at.settings.policy_file)
    assert refused.value.detail == "kallu.toml is version 1 unchanged: nothing to publish"


def test_publish_refuses_a_date_before_the_latest_versions_or_in_the_past(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    with at.transaction() as session:
        store = PolicyStore(session, clock)
        first = store.publish(revised(tmp_path, "1.1.0"), clock.now() + timedelta(days=10))
        with pytest.raises(PublishRefused) as early:
            store.publish(revised(tmp_path, "1.2.0"), clock.now() + timedelta(days=5))
        with pytest.raises(PublishRefused) as past:
            store.publish(revised(tmp_path, "1.2.0"), clock.now() - timedelta(days=1))
    assert early.value.detail == (
        f"the effective date 2027-01-25 09:00 is before version {first.version}'s "
        "(2027-01-30 09:00 UTC)"
    )
    assert past.value.detail == "the effective date 2027-01-19 is in the past"


def test_publish_refuses_an_invalid_file_with_the_key_and_the_reason(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    broken = revised(tmp_path, extra="").read_text(encoding="utf-8")
    path = tmp_path / "broken.toml"
    path.write_text(broken.replace('lifetime = "P6M"', 'lifetime = "six months"', 1))
    with at.transaction() as session, pytest.raises(PolicyError) as refused:
        PolicyStore(session, clock).publish(path)
    assert refused.value.detail.startswith(f"{path}: cookies.1.lifetime:")
    assert "\n" not in refused.value.detail


def test_publish_works_over_a_stored_version_that_no_longer_parses(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    old = "[meta]\nname = 'Kallu'\n"  # what an older Privault accepted, say
    with at.transaction() as session:
        store = PolicyStore(session, clock)
        number = (store.effective_version() or 0) + 1
        session.add(
            PolicyVersion(
                version=number,
                sha256=hashlib.sha256(old.encode()).hexdigest(),
                source="old.toml",
                text=old,
                loaded_at=clock.now(),
                published_at=clock.now(),
                effective_at=clock.now(),
            )
        )
        session.flush()
        with pytest.raises(PolicyError):
            store.current()
        published = store.publish(revised(tmp_path))
        assert store.current() is not None
    assert published.diff is not None
    (change,) = published.diff.changes
    assert change.kind is ChangeKind.UNREADABLE
    assert change.text.startswith(f"Version {number} can no longer be read (policy version")
    assert published.diff.needs_consent


def test_a_running_server_follows_a_version_once_it_is_in_force(
    at: Runtime, client_at: TestClient, clock: FrozenClock, tmp_path: Path
) -> None:
    first, cookies = at.policy_version, at.cookie_versions
    with at.transaction() as session:
        later = PolicyStore(session, clock).publish(
            revised(tmp_path), clock.now() + timedelta(days=1)
        )
    clock.advance(timedelta(hours=1))  # the check is due, the version not in force yet
    assert client_at.get("/").status_code == 200
    assert at.policy_version == first
    clock.advance(timedelta(days=1))
    assert client_at.get("/").status_code == 200
    assert at.policy_version == later.version
    assert [c.name for c in at.policy.cookies][-1] == "_gat_<tracker-id>"
    assert at.cookie_versions.policy == later.version
    assert at.cookie_versions.cookies != cookies.cookies
    assert at.vault.purposes is at.purposes and at.purposes.policy is at.policy


def test_the_server_looks_at_most_once_an_interval(
    at: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    with at.transaction() as session:
        PolicyStore(session, clock).publish(revised(tmp_path))
    assert not at.follow_policy()  # just opened: not due
    clock.advance(timedelta(seconds=at.settings.policy_check_interval))
    assert at.follow_policy()
    clock.advance(timedelta(seconds=at.settings.policy_check_interval))
    assert not at.follow_policy()  # due, but nothing new
