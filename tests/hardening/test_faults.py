"""Issue 11: `privault serve` and `privault worker` as real processes, killed with SIGKILL
at moments chosen by a seeded random from the client's progress, twenty times, while a
client posts CDRs, changes consents, registers people and closes accounts. After the last
restart and the worker's catching up: every request answered with a success is in the
database exactly once, every erasure is whole, every mail was delivered exactly once and
the access log's chain verifies."""

from __future__ import annotations

import email
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from sqlalchemy import func, select

from factories import STARTUP_SECONDS, Site, cdr, child_environment, run_cli, unique_email
from logscan import child_output
from privault.config import Settings
from privault.consent.models import ChannelConsent
from privault.db import Base
from privault.notify.models import OutboxMessage
from privault.rights.models import RightsRequest
from privault.rights.service import State
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.models import CallRecord
from privault.vault.datamap import tables
from privault.vault.models import Subject, SubjectKey

pytestmark = pytest.mark.e2e

KILLS = 20
SEED = 11
#: How many answers the client gets between two kills, at most (at least one).
MOST_ANSWERS_BETWEEN_KILLS = 12
#: One kill of the server in this many takes the worker down with it.
WORKER_KILLED_ONE_IN = 4
#: A mail a killed worker left "sending" is taken over this soon (the default is minutes).
ENV = {"PRIVAULT_WORKER_INTERVAL": "0.5", "PRIVAULT_OUTBOX_LEASE": "2"}
#: A request is sent again until answered; a restart may take a cold start of the web stack.
ANSWER_SECONDS = STARTUP_SECONDS + 60
DRAIN_SECONDS = 90
STAYERS = 3
CHANNEL = "marketing_email"


class WorkerProcess:
    """`privault worker` as a child process, its output appended to worker.log."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.output = folder / "worker.log"
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("privault")), "worker"],
                env=child_environment(settings, ENV),
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        child_output(self.output.read_text(errors="replace"))  # every run's, appended


@dataclass
class Ledger:
    """What the client was told was done, and how many answers it has had."""

    #: Call ids the ingest answered accepted or duplicate.
    calls: set[str] = field(default_factory=set)
    #: Per person, each consent change answered, in order.
    consents: dict[str, list[bool]] = field(default_factory=dict)
    #: Registered people: subject id to address.
    people: dict[str, str] = field(default_factory=dict)
    #: People whose account closing (and erasure) was answered.
    erased: set[str] = field(default_factory=set)
    answers: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def answered(self) -> None:
        with self.changed:
            self.answers += 1
            self.changed.notify_all()

    def wait_for(self, answers: int, stop: threading.Event) -> None:
        with self.changed:
            deadline = time.monotonic() + ANSWER_SECONDS
            while self.answers < answers:
                assert not stop.is_set(), "a client thread stopped early"
                assert time.monotonic() < deadline, f"no answer {answers} in time"
                self.changed.wait(timeout=0.5)


class Client:
    """An HTTP client that sends a request again until it gets an answer: the server may
    be down (killed, restarting) when it is sent, or die before it answers."""

    def __init__(self, url: str, ledger: Ledger) -> None:
        self.http = httpx2.Client(base_url=url, timeout=30)
        self.ledger = ledger

    def close(self) -> None:
        self.http.close()

    def send(self, method: str, path: str, **options: Any) -> tuple[httpx2.Response, bool]:
        """The answer, and whether an earlier attempt may have been carried out unanswered."""
        deadline = time.monotonic() + ANSWER_SECONDS
        retried = False
        while True:
            try:
                answer = self.http.request(method, path, **options)
            except httpx2.TransportError:
                assert time.monotonic() < deadline, f"{method} {path}: no answer in time"
                retried = True
                time.sleep(0.02)  # the server is restarting: poll it
                continue
            assert answer.status_code < 500, (method, path, answer.status_code, answer.text)
            self.ledger.answered()
            return answer, retried


def post_cdrs(
    client: Client, ledger: Ledger, pbx: dict[str, str], rooms: list[str], stop: threading.Event
) -> None:
    """Batches of CDRs, each sent until answered: a retried batch may find its call ids
    stored already (duplicate), a batch answered at its first sending never does."""
    batch = 0
    while not stop.is_set():
        batch += 1
        ids = [f"fault-{batch}-{n}" for n in range(4)]
        body = {"cdrs": [cdr(rooms[n % len(rooms)], call) for n, call in enumerate(ids)]}
        answer, retried = client.send("POST", "/api/v1/pbx/cdrs", json=body, headers=pbx)
        assert answer.status_code == 200, answer.text
        statuses = {row["call_id"]: row["status"] for row in answer.json()["results"]}
        allowed = {"accepted", "duplicate"} if retried else {"accepted"}
        assert set(statuses) == set(ids) and set(statuses.values()) <= allowed, statuses
        ledger.calls.update(ids)


def change_consents(
    client: Client, ledger: Ledger, people: dict[str, str], stop: threading.Event
) -> None:
    """Each stayer's email marketing turned on and off in turn, each change sent until
    answered."""
    turn = 0
    while not stop.is_set():
        subject_id = list(people)[turn % len(people)]
        turn += 1
        wanted = not (ledger.consents[subject_id] or [False])[-1]
        auth = {"Authorization": f"Bearer {people[subject_id]}"}
        answer, _ = client.send(
            "PUT", "/api/v1/me/consents", json={"channels": {CHANNEL: wanted}}, headers=auth
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["channels"][CHANNEL] is wanted
        ledger.consents[subject_id].append(wanted)


def register(client: Client, ledger: Ledger, name: str) -> tuple[str, str]:
    """A person registered and logged in; their subject id and session token. A retried
    registration that finds the address taken was carried out by an unanswered attempt."""
    person = {"email": unique_email(name), "password": f"{name}-fault-lantern-pass"}
    made, retried = client.send("POST", "/api/v1/accounts", json=person)
    assert made.status_code == 201 or (retried and made.status_code == 409), made.text
    login, _ = client.send("POST", "/api/v1/session", json=person)
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    me, _ = client.send("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    subject_id = me.json()["subject_id"]
    ledger.people[subject_id] = person["email"]
    return subject_id, token


def come_and_go(client: Client, ledger: Ledger, stop: threading.Event) -> None:
    """People register; every second one closes their account at once, which files their
    erasure. A retried closing answered 401 was carried out by an unanswered attempt (it
    ended every session)."""
    count = 0
    while not stop.is_set():
        count += 1
        subject_id, token = register(client, ledger, f"passer{count}")
        if count % 2:
            continue
        closed, retried = client.send(
            "DELETE", "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert closed.status_code == 202 or (retried and closed.status_code == 401), closed.text
        ledger.erased.add(subject_id)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


Child = TypeVar("Child", bound=Site | WorkerProcess)


@pytest.fixture
def started() -> Iterator[Callable[[Child], Child]]:
    """Keeps the child processes a test starts; those still running are stopped after it."""
    children: list[Site | WorkerProcess] = []

    def keep(child: Child) -> Child:
        children.append(child)
        return child

    yield keep
    for child in children:
        child.stop()


@pytest.fixture
def checked(fresh_settings: Settings) -> Iterator[Runtime]:
    """A runtime of the test's own on the children's database (made here), to check it."""
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    yield runtime
    runtime.close()


def drained(runtime: Runtime) -> bool:
    """No request open, no mail waiting or being sent."""
    with runtime.factory() as session:
        open_requests = session.scalar(
            select(func.count())
            .select_from(RightsRequest)
            .where(RightsRequest.state.in_([s.value for s in State if s.open]))
        )
        waiting = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.state.in_(("pending", "sending")))
        )
    return open_requests == 0 and waiting == 0


def poll(what: str, done: Callable[[], bool], seconds: float, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"{what} not within {seconds}s:\n{log()}"
        time.sleep(0.1)


def test_issue_11_killed_twenty_times_every_answered_request_is_kept_exactly_once(
    fresh_settings: Settings,
    tmp_path: Path,
    ledger: Ledger,
    checked: Runtime,
    started: Callable[[Child], Child],
) -> None:
    began = time.monotonic()
    site = started(Site(fresh_settings, tmp_path, ENV))
    worker = started(WorkerProcess(fresh_settings, tmp_path))
    made = run_cli(fresh_settings, tmp_path, "pbx", "token", "create", "fault-pbx")
    assert made.returncode == 0, made.stderr
    pbx = {"Authorization": f"Bearer {made.stdout.strip()}"}

    stayers: dict[str, str] = {}
    rooms = []
    with closing(Client(site.url, ledger)) as client:
        for n in range(STAYERS):
            subject_id, token = register(client, ledger, f"stayer{n}")
            stayers[subject_id] = token
            ledger.consents[subject_id] = []
            auth = {"Authorization": f"Bearer {token}"}
            me, _ = client.send("GET", "/api/v1/me", headers=auth)
            rooms.append(me.json()["room_id"])

    stop = threading.Event()
    failures: list[BaseException] = []

    def run(work: Callable[..., None], *args: Any) -> threading.Thread:
        def guarded() -> None:
            try:
                with closing(Client(site.url, ledger)) as client:
                    work(client, ledger, *args, stop)
            except BaseException as exc:
                failures.append(exc)
                stop.set()

        thread = threading.Thread(target=guarded, name=work.__name__)
        thread.start()
        return thread

    threads = [run(post_cdrs, pbx, rooms), run(change_consents, stayers), run(come_and_go)]
    chance = random.Random(SEED)  # noqa: S311 - moments to kill at, not secrets
    worker_kills = 0
    try:
        for _ in range(KILLS):
            ledger.wait_for(ledger.answers + chance.randint(1, MOST_ANSWERS_BETWEEN_KILLS), stop)
            site.kill()
            if chance.randrange(WORKER_KILLED_ONE_IN) == 0:
                worker.kill()
                worker_kills += 1
                worker = started(WorkerProcess(fresh_settings, tmp_path))
            site = started(Site(fresh_settings, tmp_path, ENV, port=site.port))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=ANSWER_SECONDS)
        if failures:
            raise failures[0]
    assert ledger.erased and ledger.calls and all(ledger.consents.values())

    poll("the worker catching up", lambda: drained(checked), DRAIN_SECONDS, site.log)
    worker.stop()
    site.stop()

    with checked.factory() as session:
        stored = Counter(session.scalars(select(CallRecord.call_id)))
        assert set(stored) == ledger.calls and set(stored.values()) == {1}

        for subject_id, choices in ledger.consents.items():
            rows = session.scalars(
                select(ChannelConsent.given)
                .where(ChannelConsent.subject_id == subject_id, ChannelConsent.channel == CHANNEL)
                .order_by(ChannelConsent.at)
            ).all()
            assert rows == choices, subject_id
            assert checked.channel_consents(session).state(subject_id)[CHANNEL] is choices[-1]

        accounts = checked.accounts(session)
        rights = checked.rights(session)
        for subject_id, address in ledger.people.items():
            erased = subject_id in ledger.erased
            assert accounts.subject_of(address) == (None if erased else subject_id)
            filed = session.scalars(
                select(RightsRequest).where(
                    RightsRequest.subject_ref == rights.subject_ref(subject_id),
                    RightsRequest.kind == "erasure",
                )
            ).all()
            assert len(filed) == (1 if erased else 0), subject_id
        for request in session.scalars(select(RightsRequest)):
            assert request.kind == "erasure"
            assert (request.state, request.step, request.subject_id) == (
                State.COMPLETED,
                "done",
                None,
            )
        for subject_id in ledger.erased:
            assert session.get(Subject, subject_id) is None
            assert session.get(SubjectKey, subject_id) is None
            for entry in tables():
                table = Base.metadata.tables[entry.table]
                left = session.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c[entry.subject_column] == subject_id)
                )
                assert left == 0, (entry.table, subject_id)
        # Nobody is half erased: whoever still has rows still has their key.
        keyless = session.scalars(
            select(Subject.id).where(~Subject.id.in_(select(SubjectKey.subject_id)))
        ).all()
        assert keyless == []

        mails = session.execute(select(OutboxMessage.id, OutboxMessage.state)).all()
    assert {state for _, state in mails} == {"sent"}
    files = [f for sub in ("new", "cur") for f in (fresh_settings.maildir / sub).glob("*.eml")]
    ids = Counter(
        email.message_from_bytes(f.read_bytes(), policy=default_policy)["Message-ID"] for f in files
    )
    assert set(ids.values()) == {1}, "a mail was delivered twice"
    assert sorted(f.stem for f in files) == sorted(row_id for row_id, _ in mails)
    addressed = {
        email.message_from_bytes(f.read_bytes(), policy=default_policy)["To"] for f in files
    }
    assert addressed == {ledger.people[s] for s in ledger.people if s not in ledger.erased}

    verified = run_cli(fresh_settings, tmp_path, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    print(
        f"{KILLS} server kills ({worker_kills} with the worker), {ledger.answers} answers, "
        f"{len(ledger.calls)} CDRs, {sum(map(len, ledger.consents.values()))} consent changes, "
        f"{len(ledger.people)} people ({len(ledger.erased)} erased), {len(mails)} mails, "
        f"in {time.monotonic() - began:.0f}s"
    )
