"""`privault worker` carries requests forward as a process of its own (P0.4, P9.1)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from factories import register, run_cli
from privault.config import Settings
from privault.rights.models import RightsRequest
from privault.runtime import open_runtime, prepare


def test_p0_4_two_passes_of_the_worker_erase_a_closed_account(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    alice = register(runtime, "alice")
    with runtime.transaction() as session:
        request = runtime.accounts(session).close(
            alice.subject_id, alice.token, runtime.rights(session)
        )
        request_id = request.id
    runtime.close()

    first = run_cli(fresh_settings, tmp_path, "worker", "--once")
    assert first.returncode == 0, first.stderr
    assert "3 mail(s) sent" in first.stdout  # verification, closure, and the last notice
    second = run_cli(fresh_settings, tmp_path, "worker", "--once")
    assert second.returncode == 0, second.stderr

    runtime = open_runtime(fresh_settings)
    with runtime.factory() as session:
        done = session.scalar(select(RightsRequest).where(RightsRequest.id == request_id))
        assert done is not None and (done.state, done.step, done.subject_id) == (
            "completed",
            "done",
            None,
        )
    runtime.close()
