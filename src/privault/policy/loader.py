"""Reading a policy file: TOML in, a checked ``Policy`` out, or one line saying what is wrong."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from privault.policy.errors import PolicyError
from privault.policy.model import Policy

_TOML_POSITION = re.compile(
    r"(?P<reason>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)"
)


def load_policy(path: Path) -> Policy:
    """Read, parse and check the policy file at ``path``; raise PolicyError naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse TOML ``text`` into a checked Policy; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: {_syntax_error(exc)}") from None
    return build_policy(data, source)


def build_policy(data: Mapping[str, Any], source: str = "<policy>") -> Policy:
    """Check already-parsed policy data (e.g. from a stored version); raise PolicyError."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {describe(exc)}") from None


def describe(error: ValidationError) -> str:
    """The first problem as ``dotted.key.path: reason``, plus how many more there are."""
    errors = error.errors(include_url=False)
    first = errors[0]
    path = [str(part) for part in first["loc"] if part != "[key]"]
    ctx = first.get("ctx") or {}
    more = len(errors) - 1
    if first["type"].startswith("policy_"):
        path += [ctx["path"]] if ctx["path"] else []
        reason, more = str(ctx["reason"]), more + int(ctx["more"])
    else:
        reason = _reason(first)
    line = f"{'.'.join(path)}: {reason}" if path else reason
    return f"{line} (and {more} more)" if more else line


def _reason(error: ErrorDetails) -> str:
    kind, value, ctx = error["type"], error["input"], error.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("enum", "literal_error"):
        return f"{value!r} is not one of {ctx['expected']}"
    if isinstance(value, str | int | float | bool):
        return f"{error['msg']} (got {value!r})"
    return error["msg"]


def _syntax_error(exc: tomllib.TOMLDecodeError) -> str:
    match = _TOML_POSITION.fullmatch(str(exc))
    if match is None:
        return f"TOML syntax error: {exc}"
    if match["line"] is None:
        return f"end of file: {match['reason']}"
    return f"line {match['line']}, column {match['col']}: {match['reason']}"
