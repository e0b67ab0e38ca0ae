"""Consent records and analytics events over HTTP (issue 6), against a bare FastAPI
endpoint that does nothing, served the same way on the same machine in the same run.

`privault serve --no-worker` (one process, one uvicorn worker) on a fresh data folder:
REQUESTS cookie choices through ``PUT /api/v1/consent`` (each from a new visitor, so each
is a new consent record with its proof), then REQUESTS page views through
``POST /api/v1/analytics/events`` from visitors who accepted analytics (a visit every
VIEWS_PER_VISIT views: the first view of a visit also parses the user agent and
creates the visit). Baseline: a FastAPI app with the same two routes that return at
once, under uvicorn in a process of its own, fed the same requests by the same client.
One client, one request at a time, keep-alive. Target: ratio >= 0.3 for each.

CONSENT_BENCH_REQUESTS scales the run (default 2,000).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx2

from common import Figure, backends, data_folder, free_port, record, served

REQUESTS = int(os.environ.get("CONSENT_BENCH_REQUESTS", "2000"))
VIEWS_PER_VISIT = 10
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
CHOICES = {"strictly_necessary": True, "analytics": True, "advertising": False}
BARE = """
from fastapi import FastAPI, Response
import uvicorn, sys
app = FastAPI()
@app.put("/api/v1/consent")
def consent(body: dict) -> dict:
    return {}
@app.post("/api/v1/analytics/events", status_code=204)
def event(body: dict) -> Response:
    return Response(status_code=204)
@app.get("/healthz")
def health() -> dict:
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@contextmanager
def bare(port: int) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", BARE, str(port)], stdout=subprocess.DEVNULL, stderr=errors
        )
        try:
            for _ in range(300):
                try:
                    if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                time.sleep(0.1)
            else:
                errors.seek(0)
                raise RuntimeError(f"the bare app did not start: {errors.read().decode()}")
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def consents(base: str) -> float:
    """Consent records a second: each PUT from a new visitor (no cookie)."""
    with httpx2.Client(base_url=base, headers={"User-Agent": UA}, timeout=30) as client:
        start = time.perf_counter()
        for _ in range(REQUESTS):
            client.cookies.clear()
            answer = client.put("/api/v1/consent", json={"choices": CHOICES})
            if answer.status_code != 200:
                raise RuntimeError(f"consent: {answer.status_code} {answer.text[:200]}")
        return REQUESTS / (time.perf_counter() - start)


def events(base: str) -> float:
    """Page views a second from a visitor who accepted analytics."""
    with httpx2.Client(base_url=base, headers={"User-Agent": UA}, timeout=30) as client:
        given = client.put("/api/v1/consent", json={"choices": CHOICES})
        if given.status_code != 200:
            raise RuntimeError(f"consent: {given.status_code} {given.text[:200]}")
        start = time.perf_counter()
        visit = ""
        for n in range(REQUESTS):
            if n % VIEWS_PER_VISIT == 0:
                visit = secrets.token_urlsafe(16)
            answer = client.post(
                "/api/v1/analytics/events",
                json={"visit": visit, "page": f"/rooms/{n % 7}", "referrer": None},
            )
            if answer.status_code not in (200, 201, 202, 204):
                raise RuntimeError(f"event: {answer.status_code} {answer.text[:200]}")
        return REQUESTS / (time.perf_counter() - start)


def measure(run: Callable[[str], float], ours: str, raw: str) -> tuple[float, float]:
    """Best of three rounds each, alternating, so neither gets the quieter moment."""
    best_ours = best_raw = 0.0
    for _ in range(3):
        best_ours = max(best_ours, run(ours))
        best_raw = max(best_raw, run(raw))
    return best_ours, best_raw


def main() -> None:
    for backend in backends():
        with (
            data_folder(backend) as settings,
            served(settings, free_port()) as ours,
            bare(free_port()) as raw,
        ):
            for name, run in (("consent records", consents), ("analytics events", events)):
                mine, base = measure(run, ours, raw)
                print(
                    f"consent[{backend}] {name}: {mine:,.0f}/s through Privault, "
                    f"{base:,.0f}/s bare FastAPI, ratio {mine / base:.2f} (target >= 0.3)"
                )
                record(
                    Figure(
                        "consent",
                        backend,
                        name,
                        mine,
                        "req/s",
                        "bare FastAPI, same routes",
                        base,
                        target=">= 0.3",
                    )
                )


if __name__ == "__main__":
    main()
