"""Mail to the privacy address (issue 5): messages a second through the intake, against
the raw rate of Python's email parser on the same messages, measured in the same run.

Messages: MESSAGES synthetic ones as mail clients write them (text and HTML parts) from
PEOPLE registered people: requests signed with DKIM by their domain (the key look-up
answered in process: no DNS here), requests without a signature, replies quoting an
earlier answer, requests missing a part, and plain support mail.

(a) Reading: ``mail.reading.parse`` then ``is_request_subject`` and ``read_request`` on
every message (what ``privault mail ingest`` does before the database). Baseline:
``email.message_from_bytes(raw, policy=policy.default)`` with the body fetched
(``get_body``), as any program reading mail would. Best of RUNS each; the ratio is the
intake's rate over the parser's.

(b) The SMTP intake on 127.0.0.1 (``mail.server.IntakeServer`` in this process) fed by
one ``smtplib`` client, each message taken in its own transaction: the replay check,
DKIM, filing requests, sealing the message as the sender's, queueing replies. Its
rate over the same parser baseline.

MAIL_BENCH_MESSAGES scales the run (default 2,000).
"""

from __future__ import annotations

import os
import random
import smtplib
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from sqlalchemy import func, select

from common import Figure, backends, data_folder, free_port, record

# The tests' DKIM signer and in-process DNS: the same mail the tests send.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mailkit import Dns, Signer
from privault.mail.intake import Outcome
from privault.mail.models import InboundMail
from privault.mail.reading import is_request_subject, parse, read_request
from privault.mail.server import IntakeServer
from privault.runtime import Runtime, open_runtime, prepare

MESSAGES = int(os.environ.get("MAIL_BENCH_MESSAGES", "2000"))
PEOPLE = 100
RUNS = 3
PRIVACY = "privacy@kallu.cc"
WORDS = [
    "Please send me a copy of all the personal data you hold about me.",
    "I would like my account and everything about me deleted.",
    "My display name is wrong, please correct it, and send me my data.",
    "Please give me my data in a machine-readable file so I can move it.",
]


def mail(sender: str, subject: str, text: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = PRIVACY
    message["Subject"] = subject
    message["Date"] = "Wed, 20 Jan 2027 09:00:00 +0000"
    message["Message-ID"] = make_msgid(domain="bench.example")
    message.set_content(text)
    html = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
    message.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def messages(people: list[tuple[str, str]], signer: Signer, rng: random.Random) -> list[bytes]:
    out = []
    for n in range(MESSAGES):
        email, room_id = people[n % len(people)]
        words = rng.choice(WORDS)
        request = f"Hello,\n\n{words}\n\nRoom ID: {room_id}\nName: Person Number\n\nThanks\n"
        kind = n % 10
        if kind < 4:
            out.append(signer.sign(mail(email, "My Personal Data", request)))
        elif kind < 6:
            out.append(mail(email, "Re: my personal data", request + "\n> quoted answer\n"))
        elif kind < 7:
            out.append(mail(email, "My Personal Data", f"{words}\n"))
        else:
            out.append(mail(email, f"Question {n}", "Which dial-in number do I use abroad?\n"))
    return out


def reading_rate(raws: list[bytes], runtime: Runtime) -> float:
    subject, kinds = runtime.policy.meta.request_subject, runtime.policy.rights.kinds
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for raw in raws:
            parsed = parse(raw)
            if is_request_subject(parsed.subject, subject):
                read_request(parsed, kinds)
        best = min(best, time.perf_counter() - start)
    return len(raws) / best


def parser_rate(raws: list[bytes]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for raw in raws:
            message = message_from_bytes(raw, policy=policy.default)
            body = message.get_body(("plain", "html"))  # type: ignore[attr-defined]
            if body is not None:
                body.get_content()
        best = min(best, time.perf_counter() - start)
    return len(raws) / best


def smtp_rate(runtime: Runtime, raws: list[bytes], dns: Dns) -> tuple[float, int]:
    port = free_port()
    server = IntakeServer(runtime, "127.0.0.1", port, dns)
    server.start()
    try:
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for raw in raws:
                sender = parse(raw).sender or "bench@example.com"
                smtp.sendmail(sender, [PRIVACY], raw)
        secs = time.perf_counter() - start
    finally:
        server.stop()
    with runtime.transaction() as session:
        filed = session.scalar(
            select(func.count())
            .select_from(InboundMail)
            .where(InboundMail.outcome == Outcome.FILED)
        )
        taken = session.scalar(select(func.count()).select_from(InboundMail))
    if taken != len(raws):
        raise RuntimeError(f"the intake took {taken} of {len(raws)} messages")
    return len(raws) / secs, int(filed or 0)


def run(backend: str) -> None:
    with data_folder(backend) as base:
        settings = base.model_copy(
            update={"argon2_time_cost": 1, "argon2_memory_kib": 8192, "intake_per_hour": 10**9}
        )
        prepare(settings).dispose()
        runtime = open_runtime(settings)
        people = []
        with runtime.transaction() as session:
            accounts = runtime.accounts(session)
            for n in range(PEOPLE):
                email = f"person{n}@example.com"
                people.append((email, accounts.register(email, f"bench-{n}-pass-Word").room_id))
        dns = Dns()
        raws = messages(people, Signer.make("example.com", dns), random.Random(5))
        if backend == backends()[0]:
            ours, raw = reading_rate(raws, runtime), parser_rate(raws)
            print(
                f"mail_intake reading: {len(raws):,} messages, {ours:,.0f}/s through parse + "
                f"classify, email parser {raw:,.0f}/s, ratio {ours / raw:.2f}"
            )
            record(
                Figure(
                    "mail_intake",
                    "any",
                    "messages read (parse + classify)",
                    ours,
                    "messages/s",
                    "email parser",
                    raw,
                )
            )
        else:
            raw = parser_rate(raws)
        rate, filed = smtp_rate(runtime, raws, dns)
        print(
            f"mail_intake[{backend}] SMTP on loopback: {rate:,.0f} messages/s "
            f"({filed:,} of them filed as verified requests), email parser {raw:,.0f}/s, "
            f"ratio {rate / raw:.3f}"
        )
        record(
            Figure(
                "mail_intake",
                backend,
                "messages over SMTP on loopback",
                rate,
                "messages/s",
                "email parser",
                raw,
            )
        )
        runtime.close()


if __name__ == "__main__":
    for backend in backends():
        run(backend)
