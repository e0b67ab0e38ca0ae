"""A bounded load run on 127.0.0.1 (issue 11): CONCURRENCY clients send REQUESTS requests of a
fixed, seeded mix, against the same clients sending as many GET /healthz to the same servers
in the same run.

Servers: on SQLite one `privault serve --no-worker` (SQLite has one writer); on PostgreSQL
two, on two ports over the same database, the client sending request ``n`` to server
``n % 2`` (two processes rather than uvicorn's ``--workers``: `privault serve` hands uvicorn
an app built around a runtime, which its worker processes cannot import). Exports are made
at once by the request (``GET /api/v1/me/export``), so no worker is needed.

Data, in a fresh data folder per backend: PEOPLE accounts registered through the account
service (real Argon2id hashes at the production cost, the settings' defaults), ROOMS more
rooms through the vault's batch path (``common.make_people``), a PBX token. Every person
logs in once before the run (so an export's login is under 15 minutes old).

The mix (``MIX``, shares of REQUESTS, drawn with a fixed seed; bodies encoded beforehand):
logins (``POST /api/v1/session``, Argon2id verify and a new session; the token replaces
that person's), CDR batches (``POST /api/v1/pbx/cdrs``, CDR_BATCH CDRs with fresh call ids
for any room), cookie choices of first visits (``PUT /api/v1/consent``), channel consents
(``PUT /api/v1/me/consents``, giving or withdrawing marketing email) and exports
(``GET /api/v1/me/export``, a zip of everything held on the person, recorded as a
completed request).

Clients: asyncio and httpx2, CONCURRENCY requests in flight, kept-alive connections, no
cookie jar (each request says who it is by its bearer token). An error is a transport
error or any answer other than the one expected (200, with every CDR of a batch
accepted); the target is none, and the script exits 1 if there is one. Printed per kind
and overall: requests a second, p50 and p99 latency, errors; the figure is the mix's
requests a second over /healthz's (the better of a run before and one after the mix).

LOAD_BENCH_REQUESTS, LOAD_BENCH_CONCURRENCY and LOAD_BENCH_PEOPLE scale the run
(defaults 2,000, 32 and 64). Every person, address and number is fictional.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx2

from cdr_ingest import callers, synthetic_cdr
from common import Figure, backends, data_folder, free_port, make_people, record, served
from privault.config import Settings
from privault.runtime import open_runtime, prepare
from privault.service.pbx import PbxTokenService

REQUESTS = int(os.environ.get("LOAD_BENCH_REQUESTS", "2000"))
CONCURRENCY = int(os.environ.get("LOAD_BENCH_CONCURRENCY", "32"))
PEOPLE = int(os.environ.get("LOAD_BENCH_PEOPLE", "64"))
ROOMS = 2_000
CDR_BATCH = 50
#: Shares of the mix, in per cent.
MIX = {"login": 10, "cdr batch": 30, "cookie consent": 25, "channel consent": 20, "export": 15}
COOKIE_CHOICES = {"strictly_necessary": True, "analytics": True, "advertising": False}
CDR_FIELDS = ("call_id", "room_id", "caller", "dial_in", "start", "answer", "end")
CDR_FIELDS += ("duration", "billsec", "disposition")


@dataclass(frozen=True)
class Person:
    email: str
    password: str


@dataclass(frozen=True)
class Call:
    """One request of the run: ``person`` is whose token it carries (None: no login)."""

    kind: str
    method: str
    path: str
    body: bytes | None = None
    person: int | None = None
    expect: bytes = b""


@dataclass
class Tally:
    """Latencies (ms) per kind, the errors seen and the run's wall time."""

    ms: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.ms.values()) + len(self.errors)

    @property
    def rate(self) -> float:
        return self.count / self.seconds


@dataclass(frozen=True)
class Stats:
    requests: int
    rate: float
    p50: float
    p99: float
    errors: int


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def stats(tally: Tally, kind: str | None = None) -> Stats:
    """Figures for one kind, or for the whole run; errors are counted, not timed."""
    if kind is None:
        ms = [v for values in tally.ms.values() for v in values]
        errors = len(tally.errors)
    else:
        ms = tally.ms.get(kind, [])
        errors = sum(1 for e in tally.errors if e.startswith(f"{kind}:"))
    count = len(ms) + errors
    return Stats(count, count / tally.seconds, percentile(ms, 0.5), percentile(ms, 0.99), errors)


def setup(settings: Settings) -> tuple[list[Person], list[str], str]:
    """The accounts, every room's Room ID (accounts' first) and a PBX token."""
    prepare(settings).dispose()
    runtime = open_runtime(settings)
    people, room_ids = [], []
    for n in range(PEOPLE):
        person = Person(f"load-person-{n}@example.org", f"synthetic pass {n:04d} for load")
        with runtime.transaction() as session:
            done = runtime.accounts(session).register(
                person.email, person.password, f"Load Person {n}"
            )
        people.append(person)
        room_ids.append(done.room_id)
    room_ids += [room_id for _, room_id in make_people(runtime, ROOMS)]
    with runtime.transaction() as session:
        token = PbxTokenService(session, runtime.clock).create("load bench")
    runtime.close()
    return people, room_ids, token


def login(people: list[Person], n: int) -> Call:
    body = {"email": people[n].email, "password": people[n].password}
    return Call("login", "POST", "/api/v1/session", json.dumps(body).encode(), n)


def plan(people: list[Person], room_ids: list[str], seed: int) -> list[Call]:
    """REQUESTS calls in a seeded order, MIX's shares of each kind."""
    rng = random.Random(seed)
    pool = callers(rng)
    counts = {kind: REQUESTS * share // 100 for kind, share in MIX.items()}
    counts["cdr batch"] += REQUESTS - sum(counts.values())
    kinds = [kind for kind, n in counts.items() for _ in range(n)]
    rng.shuffle(kinds)
    calls = []
    for i, kind in enumerate(kinds):
        person = rng.randrange(len(people))
        if kind == "login":
            calls.append(login(people, person))
        elif kind == "cdr batch":
            cdrs = [
                synthetic_cdr(
                    rng,
                    pool,
                    i,
                    # Calls of ten days, not 180: a PBX posts calls as they end, so a run of
                    # minutes meets one month (one partition on PostgreSQL), not six.
                    REQUESTS * 18,
                    room_ids[rng.randrange(len(room_ids))],
                    row=j + 1,
                    call_id=f"load-{i}.{j}",
                )
                for j in range(CDR_BATCH)
            ]
            body = {"cdrs": [dict(zip(CDR_FIELDS, c[1:], strict=True)) for c in cdrs]}
            expect = f'"accepted":{CDR_BATCH},'.encode()
            calls.append(
                Call(kind, "POST", "/api/v1/pbx/cdrs", json.dumps(body).encode(), None, expect)
            )
        elif kind == "cookie consent":
            body = {"choices": COOKIE_CHOICES}
            calls.append(Call(kind, "PUT", "/api/v1/consent", json.dumps(body).encode()))
        elif kind == "channel consent":
            body = {"channels": {"marketing_email": rng.random() < 0.5}}
            calls.append(
                Call(kind, "PUT", "/api/v1/me/consents", json.dumps(body).encode(), person)
            )
        else:
            calls.append(Call(kind, "GET", "/api/v1/me/export", None, person, b"PK"))
    return calls


async def drive(bases: list[str], calls: list[Call], tokens: list[str], pbx: str) -> Tally:
    """Send ``calls`` with CONCURRENCY in flight, call ``n`` to ``bases[n % len(bases)]``;
    a login's token replaces its person's in ``tokens``."""
    tally = Tally(ms={call.kind: [] for call in calls})
    limits = httpx2.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    clients = [
        httpx2.AsyncClient(base_url=base, limits=limits, timeout=120, cookies=no_cookies)
        for base in bases
    ]
    queue: Iterator[tuple[int, Call]] = iter(enumerate(calls))

    async def one(client: httpx2.AsyncClient, call: Call) -> None:
        headers = {"Content-Type": "application/json"} if call.body is not None else {}
        if call.kind == "cdr batch":
            headers["Authorization"] = f"Bearer {pbx}"
        elif call.person is not None and call.kind != "login":
            headers["Authorization"] = f"Bearer {tokens[call.person]}"
        start = time.perf_counter()
        try:
            answer = await client.request(
                call.method, call.path, content=call.body, headers=headers
            )
        except httpx2.TransportError as exc:
            tally.errors.append(f"{call.kind}: {type(exc).__name__} {exc}")
            return
        ms = (time.perf_counter() - start) * 1000
        if answer.status_code != 200 or call.expect not in answer.content[:200]:
            tally.errors.append(f"{call.kind}: {answer.status_code} {answer.text[:200]}")
            return
        if call.kind == "login" and call.person is not None:
            tokens[call.person] = answer.json()["token"]
        tally.ms[call.kind].append(ms)

    async def client_loop() -> None:
        for n, call in queue:
            await one(clients[n % len(clients)], call)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(client_loop() for _ in range(CONCURRENCY)))
    finally:
        tally.seconds = time.perf_counter() - start
        for client in clients:
            await client.aclose()
    return tally


@dataclass(frozen=True)
class Result:
    backend: str
    servers: int
    mixed: Tally
    healthz: float
    healthz_p50: float
    healthz_p99: float


def measure(backend: str) -> Result:
    """The setup, a /healthz run, the mixed run and another /healthz run on ``backend``."""
    with data_folder(backend) as settings, ExitStack() as stack:
        people, room_ids, pbx = setup(settings)
        calls = plan(people, room_ids, 17)
        servers = 2 if backend == "postgresql" else 1
        bases = [stack.enter_context(served(settings, free_port())) for _ in range(servers)]
        health = [Call("healthz", "GET", "/healthz")] * REQUESTS
        logins = [login(people, n) for n in range(len(people))]
        tokens = [""] * len(people)
        warm = asyncio.run(drive(bases, logins, tokens, pbx))
        if warm.errors:
            raise RuntimeError(f"logging in before the run failed: {warm.errors[:3]}")
        before = asyncio.run(drive(bases, health, tokens, pbx))
        mixed = asyncio.run(drive(bases, calls, tokens, pbx))
        after = asyncio.run(drive(bases, health, tokens, pbx))
        best = max(before, after, key=lambda t: t.rate)
        if best.errors:
            raise RuntimeError(f"/healthz failed: {best.errors[:3]}")
        best_stats = stats(best)
        return Result(backend, servers, mixed, best.rate, best_stats.p50, best_stats.p99)


def report(result: Result) -> None:
    backend, mixed = result.backend, result.mixed
    whole = stats(mixed)
    ratio = whole.rate / result.healthz
    where = f"{result.servers} server process{'es' if result.servers > 1 else ''}"
    print(
        f"load[{backend}]: {whole.requests:,} requests, {CONCURRENCY} concurrent clients, "
        f"{where}; mix {whole.rate:,.0f} req/s, p50 {whole.p50:.0f} ms, p99 {whole.p99:.0f} ms, "
        f"{whole.errors} errors (target 0); GET /healthz {result.healthz:,.0f} req/s "
        f"(p99 {result.healthz_p99:.0f} ms); ratio {ratio:.3f}",
        flush=True,
    )
    for kind in MIX:
        s = stats(mixed, kind)
        print(
            f"  {kind:<16} {s.requests:>5} requests {s.rate:>7,.1f} req/s  p50 {s.p50:>6.0f} ms  "
            f"p99 {s.p99:>6.0f} ms  {s.errors} errors",
            flush=True,
        )
    for error in sorted(set(mixed.errors))[:5]:
        print(f"  error: {error}", flush=True)
    baseline = "GET /healthz, same clients and servers"
    record(Figure("load", backend, "mixed", whole.rate, "req/s", baseline, result.healthz))
    record(
        Figure("load", backend, "mixed p50 latency", whole.p50, "ms", baseline, result.healthz_p50)
    )
    record(
        Figure("load", backend, "mixed p99 latency", whole.p99, "ms", baseline, result.healthz_p99)
    )
    record(Figure("load", backend, "errors", whole.errors, "errors", target="0"))


def main() -> int:
    failed = False
    for backend in backends():
        result = measure(backend)
        report(result)
        failed = failed or bool(result.mixed.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
