"""Logs: JSON or plain lines, a request id on every record of a request, one access line per
request naming its route, never its path, and no exception's message anywhere (P7.5)."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from factories import api_error, marker, register
from logscan import Hit, own_addresses, scan
from privault import logs
from privault.runtime import Runtime
from privault.web.app import create_app
from privault.worker import Worker


def _record(message: str = "hello %d", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("privault.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def _raised(message: str) -> logging.LogRecord:
    try:
        raise ValueError(message)
    except ValueError:
        record = _record("it failed")
        record.exc_info = sys.exc_info()
    return record


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "privault.access"]


def test_a_json_line_has_time_level_logger_message_and_the_request_id() -> None:
    token = logs.REQUEST_ID.set("req-0001.abc")
    try:
        record = _record("hello %d", 7)
        assert logs.Ids().filter(record)
    finally:
        logs.REQUEST_ID.reset(token)
    line = json.loads(logs.JsonLines().format(record))
    assert set(line) == {"at", "level", "logger", "message", "request_id"}
    assert line["level"] == "warning" and line["logger"] == "privault.test"
    assert line["message"] == "hello 7" and line["request_id"] == "req-0001.abc"
    assert line["at"].endswith("+00:00")


def test_p7_5_an_exception_is_logged_by_its_class_and_frames_never_its_message() -> None:
    secret = marker("exc")
    record = _raised(f"a message quoting {secret}")
    line = json.loads(logs.JsonLines().format(record))
    assert line["exception"] == "ValueError" and "_raised" in line["stack"]
    # Another handler (pytest's) formats it first, with the message, and caches that text.
    assert secret in logging.Formatter().format(record)
    plain = logs.Plain().format(record)
    assert "ValueError (message not logged)" in plain and "_raised" in plain
    assert secret not in json.dumps(line) and secret not in plain


def test_a_plain_line_names_the_request_and_the_run() -> None:
    with logs.run_id() as run:
        with logs.run_id() as inner:
            assert inner == run, "a part of a run logs with the run's id"
        record = _record("swept")
        logs.Ids().filter(record)
    assert logs.RUN_ID.get() is None
    line = logs.Plain().format(record)
    assert line.endswith(f"WARNING privault.test run_id={run}: swept")
    assert json.loads(logs.JsonLines().format(record))["run_id"] == run


def test_what_a_worker_pass_logs_carries_its_run_id(
    served: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    runtime: Runtime = served.app.state.runtime  # type: ignore[attr-defined]
    register(runtime, "wanda")  # her address check is a mail to send
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(logs.Ids())
    worker = Worker(runtime, interval=0.05)
    worker.start()
    deadline = time.monotonic() + 60
    try:
        while not (sent := [r for r in caplog.records if r.name == "privault.worker"]):
            assert time.monotonic() < deadline, "the worker sent nothing within a minute"
            time.sleep(0.02)
    finally:
        worker.stop()
    assert sent[0].getMessage() == "outbox: 1 mail(s) sent"
    assert logs.SAFE_ID.fullmatch(sent[0].run_id)  # type: ignore[attr-defined]
    assert sent[0].request_id is None  # type: ignore[attr-defined]


def test_a_request_id_is_made_or_taken_and_echoed(client: TestClient) -> None:
    made = client.get("/healthz").headers["x-request-id"]
    assert logs.SAFE_ID.fullmatch(made)
    assert client.get("/healthz").headers["x-request-id"] != made
    given = "lb-7f3a9c.01_x"
    assert client.get("/healthz", headers={"X-Request-ID": given}).headers["x-request-id"] == given


@pytest.mark.parametrize(
    "forged", ["short", "has spaces in it", "a<script>alert(1)</script>", "x" * 65, "\xe4" * 10]
)
def test_a_forged_request_id_is_replaced(client: TestClient, forged: str) -> None:
    answer = client.get("/healthz", headers={"X-Request-ID": forged.encode("latin-1")})
    echoed = answer.headers["x-request-id"]
    assert echoed != forged and logs.SAFE_ID.fullmatch(echoed)


def test_the_access_line_names_the_route_template_never_the_path(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    username, token = marker("user"), marker("token")
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(logs.Ids())
    asks = [
        client.get(f"/u/{username}?ref={token}"),
        client.get(f"/api/v1/people/{username}"),
        client.post(f"/api/v1/me/requests/{token}/withdraw"),
        client.get(f"/no/such/{username}"),
        client.get("/static/consent.js"),
    ]
    lines = _access(caplog)
    assert [(r.method, r.route, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("GET", "/u/{username}", asks[0].status_code),
        ("GET", "/api/v1/people/{username}", asks[1].status_code),
        ("POST", "/api/v1/me/requests/{request_id}/withdraw", 401),
        ("GET", "-", 404),
        ("GET", "/static/{path}", 200),
    ]
    for record, ask in zip(lines, asks, strict=True):
        assert record.request_id == ask.headers["x-request-id"]  # type: ignore[attr-defined]
        assert record.duration_ms >= 0  # type: ignore[attr-defined]
    logged = "\n".join(logs.JsonLines().format(r) for r in caplog.records if r.name != "httpx2")
    assert username not in logged and token not in logged
    assert "testclient" not in logged, "no client address"


def test_p7_5_a_500_logs_the_class_and_the_request_id_not_the_message(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(runtime)
    secret = marker("boom")

    @app.get("/boom")
    def boom() -> None:
        logging.getLogger("privault.test").warning("about to fail")
        raise RuntimeError(f"a message quoting input: {secret}")

    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(logs.Ids())
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "trace-500-check"})
    api_error(response, 500, "internal_error")
    assert response.headers["x-request-id"] == "trace-500-check"
    lines = [json.loads(logs.JsonLines().format(r)) for r in caplog.records]
    ours = [line for line in lines if line.get("request_id") == "trace-500-check"]
    assert [line["logger"] for line in ours] == ["privault.test", "privault.web", "privault.access"]
    assert ours[1]["message"].startswith("unexpected RuntimeError")
    assert ours[2]["route"] == "/boom" and ours[2]["status"] == 500
    assert secret not in caplog.text


def test_p7_5_the_smtp_servers_warnings_keep_neither_the_peer_nor_what_it_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    importlib.import_module("privault.mail.server")  # which quiets aiosmtpd's log
    address = marker("smtp") + "@example.com"
    logging.getLogger("mail.log").warning(
        "%r unrecognised: %s", ("203.0.113.9", 40123), f"MAIL FROM <{address}>"
    )
    assert caplog.messages == ["... unrecognised: ..."]


def test_p7_5_a_database_error_does_not_quote_its_parameters(engine: Engine) -> None:
    value = marker("param")
    with engine.connect() as conn, pytest.raises(SQLAlchemyError) as failed:
        conn.execute(text("SELECT * FROM no_such_table WHERE name = :name"), {"name": value})
    assert "hidden" in str(failed.value) and value not in str(failed.value)


def test_p7_5_an_uncaught_exception_prints_no_message() -> None:
    secret = marker("crash")
    program = (
        "import threading\n"
        "from privault.logs import hide_exception_messages\n"
        "hide_exception_messages()\n"
        "def fail(): raise KeyError(SECRET)\n"
        "thread = threading.Thread(target=fail, name='sweeper'); thread.start(); thread.join()\n"
        "raise ValueError(SECRET)\n"
    ).replace("SECRET", repr(secret))
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "Exception in thread sweeper" in done.stderr
    assert "KeyError (message not logged)" in done.stderr
    assert done.stderr.rstrip().endswith("ValueError (message not logged)")
    assert secret not in done.stderr


def test_p7_5_p7_3_the_session_scan_finds_each_kind_by_line() -> None:
    """The scan of the whole session's log (tests/logscan.py) is not blind: it finds a
    person's value, a stranger's address, PIN and password fields and a card number, in
    JSON lines and plain ones, and passes the service's own addresses and an access line."""
    email, password = marker("em") + "@example.com", marker("pw")
    markers = {email: "email", password: "password", "+358401234567": "phone number"}
    clean = json.dumps({"message": "GET /u/{username} 200 1.2 ms", "request_id": "abc12345"})
    lines = [
        clean,
        json.dumps({"message": f"mail to {email.upper()}"}),
        f"2026-01-01 WARNING privault.x: login {password} refused",
        json.dumps({"message": "called from +358401234567"}),
        json.dumps({"message": "from privacy@kallu.cc and no-reply@kallu.cc to z@example.org"}),
        json.dumps({"message": str({"room_id": "x", "pin": "48213975"})}),
        json.dumps({"message": "body email=a&password=hunter2hunter2"}),
        json.dumps({"message": "card 4111 1111 1111 1111 and 4242424242424241"}),
        json.dumps({"message": '"pin_set": true, "pin": null, "password": ""'}),
    ]
    assert list(scan(lines, markers, own_addresses())) == [
        Hit(2, "an e-mail address"),
        Hit(2, "email"),
        Hit(3, "password"),
        Hit(4, "phone number"),
        Hit(5, "an e-mail address"),
        Hit(6, "a PIN or password field"),
        Hit(7, "a PIN or password field"),
        Hit(8, "a card number"),
    ]
    assert str(Hit(3, "password")) == "line 3: password"
