"""The whole test session's log, scanned for personal data (P7.5, P7.3, P7.1).

A pytest plugin (loaded by conftest.py). For the whole session a handler on the root logger
writes every record from INFO, as in production, in JSON lines to a file; tests add the
output of the child processes they run (``child_output``). At the end the file is searched
for every personal value the factories made (``remember``), for e-mail addresses other than
the service's own, for PIN and password fields and for card numbers. A hit fails the
session with its kind and the line of the file, never the value.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

import pytest

from privault.config import Settings
from privault.logs import prepared

KALLU = Path(__file__).resolve().parents[1] / "policies" / "kallu.toml"

#: Every personal value the tests made, lower-cased, and its kind.
MARKERS: dict[str, str] = {}

EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
#: A PIN or password as a JSON or Python mapping, or a form or query, would show it.
SECRET_FIELD = re.compile(
    r"""\b(?:\w+_)?(?:pin|password)[\\"']*\s*[:=]\s*(?:\\?"[^"\\]+|'[^']+'|\d{4,})"""
    r"""|[?&](?:\w+_)?(?:pin|password)=[^&\s"\\]+"""
)
CARD = re.compile(r"(?<!\d)(?:\d{13,19}|\d{4}(?:[ -]\d{4}){3})(?!\d)")
#: Where a card number could be (a quick first look: CARD alone is slow on long lines).
_DIGITS = re.compile(r"\d[\d -]{11,}\d")
_RUN = re.compile(r"[a-z0-9]+")
#: Loggers of the tests' own side: the HTTP client logs each URL it asks for.
CLIENT_LOGGERS = ("httpx2", "httpx")


def remember(kind: str, *values: str) -> None:
    """Values of a synthetic person that no log may hold (a phone number also as bare digits)."""
    for value in values:
        MARKERS[value.lower()] = kind
        if value.startswith("+"):
            MARKERS[value[1:].lower()] = kind


def own_addresses() -> frozenset[str]:
    """The service's own addresses (the policy's privacy address, the sender of mail)."""
    sender = parseaddr(str(Settings.model_fields["mail_from"].default))[1]
    return frozenset({sender.lower(), *EMAIL.findall(KALLU.read_text(encoding="utf-8").lower())})


def _anchor(value: str) -> str:
    """The part of ``value`` a line is looked up by: its longest run of letters and digits,
    one with a digit if it has one (``example`` of an address would match every address)."""
    runs = _RUN.findall(value) or [value]
    return max(runs, key=lambda run: (any(c.isdigit() for c in run), len(run)))


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


@dataclass(frozen=True)
class Hit:
    line: int
    kind: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}"


def scan(lines: Iterable[str], markers: dict[str, str], own: frozenset[str]) -> Iterator[Hit]:
    """Where ``lines`` hold one of ``markers`` (by its kind), an e-mail address not in
    ``own``, a PIN or password field, or a card number; case does not matter."""
    anchors: dict[str, list[str]] = {}
    for value in markers:
        anchors.setdefault(_anchor(value), []).append(value)
    for number, line in enumerate(lines, start=1):
        text = line.lower()
        kinds = {
            markers[value]
            for run in set(_RUN.findall(text))
            for value in anchors.get(run, ())
            if value in text
        }
        if "@" in text and any(address not in own for address in EMAIL.findall(text)):
            kinds.add("an e-mail address")
        if ("pin" in text or "password" in text) and SECRET_FIELD.search(text):
            kinds.add("a PIN or password field")
        if any(
            _luhn(re.sub(r"\D", "", card))
            for digits in _DIGITS.findall(text)
            for card in CARD.findall(digits)
        ):
            kinds.add("a card number")
        yield from (Hit(number, kind) for kind in sorted(kinds))


class _Session:
    """The session's log file and its handler, and what the scan found."""

    def __init__(self) -> None:
        self.handler: logging.FileHandler | None = None
        self.path: Path | None = None
        #: "file, line N: kind" for each hit, the workers' included.
        self.hits: list[str] = []


_session = _Session()


def child_output(text: str) -> None:
    """Add what a child process wrote to stderr (its log) to the session's log."""
    handler = _session.handler
    if handler is None or not text:
        return
    with handler.lock:  # type: ignore[union-attr]
        handler.stream.write(text if text.endswith("\n") else text + "\n")
        handler.stream.flush()


#: Where xdist's workers leave what their scans found, for the controller to report.
FOUND_DIR = "PRIVAULT_LOGSCAN_DIR"


def pytest_configure(config: pytest.Config) -> None:
    if config.option.collectonly:
        return
    # Set by the controller before its workers start, so they inherit it.
    os.environ.setdefault(FOUND_DIR, tempfile.mkdtemp(prefix="privault-logscan-"))
    descriptor, name = tempfile.mkstemp(prefix="privault-session-", suffix=".log")
    os.close(descriptor)
    handler = prepared(logging.FileHandler(name, encoding="utf-8"), json_lines=True)
    handler.setLevel(logging.INFO)
    handler.addFilter(lambda record: not record.name.startswith(CLIENT_LOGGERS))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    _session.handler, _session.path = handler, Path(name)


def pytest_sessionfinish(session: pytest.Session) -> None:
    handler, path = _session.handler, _session.path
    if handler is None or path is None:
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
    _session.handler = None
    with path.open(encoding="utf-8", errors="replace") as lines:
        hits = [f"{path}, {hit}" for hit in scan(lines, MARKERS, own_addresses())]
    if not hits:
        path.unlink()
    found = Path(os.environ[FOUND_DIR])
    if hasattr(session.config, "workerinput"):  # an xdist worker: its controller reports
        if hits:
            (found / f"{path.name}.hits").write_text("\n".join(hits), encoding="utf-8")
        return
    for left in sorted(found.glob("*.hits")):
        hits += left.read_text(encoding="utf-8").splitlines()
        left.unlink()
    _session.hits = hits
    if hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _session.hits:
        return
    terminalreporter.section("personal data in the session's log", sep="=", red=True)
    terminalreporter.line(f"{len(_session.hits)} hit(s), the files kept:")
    for hit in _session.hits[:20]:
        terminalreporter.line(f"  {hit}")
