"""PIN checks through HTTP against a real `privault serve` (one worker), against /healthz.

Starts `privault serve --no-worker` on a free port of 127.0.0.1 over a fresh data
folder holding one account with a PIN and a PBX token, then times, one request
after another on a kept-alive connection:

- the baseline: GET /healthz on the same server (routing, middleware, JSON; no database);
- PIN checks with the right PIN (token look-up, lockout look-up, room look-up, HMAC);
- PIN checks with a wrong PIN, each for another made-up Room ID, so every one records a
  failure and counts the window without ever locking.

Prints the three rates and each PIN-check rate as a ratio of the baseline.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import httpx2

from common import Figure, backends, data_folder, free_port, record, served
from privault.config import Settings
from privault.runtime import open_runtime, prepare
from privault.service.pbx import PbxTokenService

REQUESTS = 2_000
WARM_UP = 100
PIN = "4831"


def seed(settings: Settings) -> tuple[str, str]:
    """One account whose room has PIN, and a PBX token; returns (room_id, token)."""
    prepare(settings).dispose()
    runtime = open_runtime(settings)
    with runtime.transaction() as session:
        done = runtime.accounts(session).register(
            "pbx-bench@example.com", "correct-horse-battery-42"
        )
        room_id = done.room_id
        if PIN in room_id:
            room_id = runtime.rooms(session).rotate_room_id(done.subject_id)
        runtime.pins(session).set_pin(done.subject_id, PIN)
        token = PbxTokenService(session, runtime.clock).create("bench")
    runtime.close()
    return room_id, token


def rate(request: Callable[[int], httpx2.Response], expect: object) -> float:
    """Requests a second over REQUESTS sequential requests, after WARM_UP untimed ones."""
    for i in range(WARM_UP):
        request(-1 - i)
    start = time.perf_counter()
    for i in range(REQUESTS):
        response = request(i)
        if response.status_code != 200 or response.json() != expect:
            raise RuntimeError(f"unexpected answer {response.status_code}: {response.text}")
    return REQUESTS / (time.perf_counter() - start)


def run(backend: str) -> float:
    with data_folder(backend) as settings:
        room_id, token = seed(settings)
        with (
            served(settings, free_port()) as base,
            httpx2.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client,
        ):
            healthz = rate(lambda _: client.get("/healthz"), {"status": "ok"})
            right = rate(
                lambda _: client.post(
                    "/api/v1/pbx/pin-check", json={"room_id": room_id, "pin": PIN}
                ),
                {"allowed": True},
            )
            wrong = rate(
                lambda i: client.post(
                    "/api/v1/pbx/pin-check",
                    json={"room_id": str(2_000_000_000 + WARM_UP + i), "pin": "041738"},
                ),
                {"allowed": False},
            )
        print(
            f"pin_check[{backend}]: {REQUESTS} sequential requests each, one server worker; "
            f"healthz {healthz:,.0f} req/s; pin-check right PIN {right:,.0f} req/s "
            f"(ratio {right / healthz:.3f}); wrong PIN, unknown room {wrong:,.0f} req/s "
            f"(ratio {wrong / healthz:.3f})"
        )
        for what, value in (("right PIN", right), ("wrong PIN, unknown room", wrong)):
            record(
                Figure(
                    "pin_check",
                    backend,
                    f"PIN checks, {what}",
                    value,
                    "req/s",
                    "GET /healthz",
                    healthz,
                )
            )
        return right


def main() -> int:
    for backend in backends():
        run(backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
