"""Log setup: plain lines or JSON lines. Code logs ids and counts, never personal data.

Every record carries the id of the HTTP request or worker sweep it was written for. An
exception is logged by its class and its frames only, never its message: a message may
quote input, or a database error's values.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar

#: The id of the HTTP request being answered (``X-Request-ID``).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
#: The id of the worker's sweep running.
RUN_ID: ContextVar[str | None] = ContextVar("run_id", default=None)

#: A client's ``X-Request-ID`` is kept only when it is a plain token like this.
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

#: What a record may carry besides its message, in this order in a JSON line.
FIELDS = ("request_id", "run_id", "method", "route", "status", "duration_ms")

Handler = TypeVar("Handler", bound=logging.Handler)


def new_id() -> str:
    """A fresh request or run id: 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


@contextmanager
def run_id() -> Iterator[str]:
    """Tag every record logged inside with a run id (one pass of the worker): a fresh one,
    or the id of the run this is part of."""
    value = RUN_ID.get() or new_id()
    token = RUN_ID.set(value)
    try:
        yield value
    finally:
        RUN_ID.reset(token)


def without_message(kind: type[BaseException], tb: TracebackType | None) -> str:
    """An exception as its class and the frames it went through, without its message."""
    return "".join(traceback.format_tb(tb)) + f"{kind.__name__} (message not logged)"


class Ids(logging.Filter):
    """Stamps each record with the request id and run id of the context that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.setdefault("request_id", REQUEST_ID.get())
        record.__dict__.setdefault("run_id", RUN_ID.get())
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(line)


class Plain(logging.Formatter):
    """``time LEVEL logger request_id=... run_id=...: message``, an exception without its
    message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.ids = "".join(
            f" {key}={value}"
            for key in ("request_id", "run_id")
            if (value := getattr(record, key, None)) is not None
        )
        # Another handler may have cached the exception's text with its message.
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        return "" if ei[0] is None else without_message(ei[0], ei[2])


def prepared(handler: Handler, json_lines: bool) -> Handler:
    """``handler`` writing plain or JSON lines, each record with its ids."""
    handler.setFormatter(JsonLines() if json_lines else Plain())
    handler.addFilter(Ids())
    return handler


def _print_without_message(
    kind: type[BaseException], _: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, kind(), None)
        return
    print(f"Traceback (most recent call last):\n{without_message(kind, tb)}", file=sys.stderr)


def _thread_without_message(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    print(f"Exception in thread {name}:", file=sys.stderr)
    _print_without_message(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)


def hide_exception_messages() -> None:
    """An exception nothing catches, in any thread, goes to stderr (the service's log under
    a service manager) as its class and frames, without its message."""
    sys.excepthook = _print_without_message
    threading.excepthook = _thread_without_message


def configure(json_lines: bool, level: int = logging.INFO) -> None:
    """Logs of a server or worker process: to stderr, plain or JSON lines, from ``level``."""
    root = logging.getLogger()
    root.handlers[:] = [prepared(logging.StreamHandler(sys.stderr), json_lines)]
    root.setLevel(level)
