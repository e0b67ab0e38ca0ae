"""The promise table as the code sees it: each promise with its mechanisms (checked to
exist) and the tests that name it, and everything that does not add up."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from privault.policy.model import Policy
from privault.promises.evidence import NamedTest
from privault.promises.registry import MECHANISMS, Kind, Mechanism, policy
from privault.promises.table import Promise


@dataclass(frozen=True)
class Checked:
    mechanism: Mechanism
    #: Why the reference does not resolve; None when it does.
    problem: str | None


@dataclass(frozen=True)
class Line:
    promise: Promise
    mechanisms: tuple[Checked, ...]
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    lines: tuple[Line, ...]
    #: IDs tests name that the table does not have, with those tests.
    unknown: dict[str, tuple[str, ...]]
    #: IDs the registry names that the table does not have.
    unregistered: tuple[str, ...]

    def problems(self) -> list[str]:
        """One sentence for each thing ``--strict`` fails on."""
        found: list[str] = []
        for line in self.lines:
            pid = line.promise.id
            if not line.tests:
                found.append(f"{pid}: no test names it")
            if not line.mechanisms:
                found.append(f"{pid}: no mechanism in the registry or the policy")
            found += [f"{pid}: {c.problem}" for c in line.mechanisms if c.problem]
        for pid, tests in self.unknown.items():
            found.append(f"{pid} is not in the promise table, yet {tests[0]} names it")
        found += [f"registry: {pid} is not in the promise table" for pid in self.unregistered]
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "promises": [
                {
                    "id": line.promise.id,
                    "says": line.promise.says,
                    "must": line.promise.must,
                    "mechanisms": [
                        {
                            "what": c.mechanism.what,
                            "kind": str(c.mechanism.kind),
                            "ref": c.mechanism.ref,
                            "problem": c.problem,
                        }
                        for c in line.mechanisms
                    ],
                    "tests": list(line.tests),
                }
                for line in self.lines
            ],
            "unknown_ids": {pid: list(tests) for pid, tests in self.unknown.items()},
            "problems": self.problems(),
        }


def markdown(report: Report) -> str:
    """The report as a Markdown table."""
    rows = ["| ID | What the system must do | Mechanisms | Tests |", "|---|---|---|---|"]
    for line in report.lines:
        refs = "<br>".join(
            f"`{c.mechanism.ref}`" + (" (broken)" if c.problem else "") for c in line.mechanisms
        )
        rows.append(
            f"| {line.promise.id} | {line.promise.must} | {refs or 'none'} | "
            f"{len(line.tests)}{': ' if line.tests else ''}"
            f"{', '.join(f'`{short(t)}`' for t in line.tests[:3])} |"
        )
    return "\n".join(rows) + "\n"


def short(node: str) -> str:
    """A test's name without its file."""
    return node.rsplit("::", 1)[-1]


def resolve_code(path: str) -> str | None:
    """Why the dotted ``path`` names nothing importable, or None when it does."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and not module_name.startswith(exc.name):
                return f"{path}: importing {module_name} fails: {exc}"
            continue
        except ImportError as exc:
            return f"{path}: importing {module_name} fails: {exc}"
        for i, attribute in enumerate(parts[cut:], start=cut):
            try:
                found = getattr(found, attribute)
            except AttributeError:
                return f"{path}: {'.'.join(parts[:i])} has no {attribute!r}"
        return None
    return f"{path}: no module {parts[0]!r}"


def resolve_policy(key: str, loaded: Policy) -> str | None:
    """Why ``key`` names nothing in the policy, or None when it does. A part of the key is
    a field, a table's key, or a list entry's id or name."""
    found: object = loaded
    walked: list[str] = []
    for part in key.split("."):
        found = _step(found, part)
        if found is _MISSING:
            where = ".".join(walked) or "the policy"
            return f"policy key {key}: {where} has no {part!r}"
        walked.append(part)
    return None


_MISSING = object()


def _step(found: object, part: str) -> object:
    if isinstance(found, BaseModel):
        names = {part, *(n for n, f in type(found).model_fields.items() if f.alias == part)}
        for name in names & set(type(found).model_fields):
            return getattr(found, name)
        return _MISSING
    if isinstance(found, Mapping):
        return found.get(part, _MISSING)
    if isinstance(found, Sequence) and not isinstance(found, str):
        for entry in found:
            if part in (getattr(entry, "id", None), getattr(entry, "name", None)):
                return entry
    return _MISSING


def _from_policy(loaded: Policy, pid: str) -> list[Mechanism]:
    """What the policy itself says keeps ``pid``: its categories and security measures."""
    found = [
        policy(f"category: {category.title}", f"categories.{cid}")
        for cid, category in loaded.categories.items()
        if category.promise == pid
    ]
    found += [
        policy(f"security: {measure.title}", f"security.{sid}")
        for sid, measure in loaded.security.items()
        if pid in measure.promises
    ]
    return found


def build(
    promises: Sequence[Promise],
    named: Iterable[NamedTest],
    loaded: Policy,
    registry: Mapping[str, Sequence[Mechanism]] = MECHANISMS,
) -> Report:
    """Join the table, the registry, the policy and the tests into a report."""
    row_of = {member: p.id for p in promises for member in p.members}
    tests: dict[str, list[str]] = {p.id: [] for p in promises}
    unknown: dict[str, list[str]] = {}
    for test in named:
        for pid in test.ids:
            if pid in row_of:
                if test.node not in tests[row_of[pid]]:
                    tests[row_of[pid]].append(test.node)
            else:
                unknown.setdefault(pid, []).append(test.node)
    lines = []
    for promise in promises:
        mechanisms = [*registry.get(promise.id, ()), *_from_policy(loaded, promise.id)]
        checked = tuple(
            Checked(
                m,
                resolve_code(m.ref) if m.kind is Kind.CODE else resolve_policy(m.ref, loaded),
            )
            for m in mechanisms
        )
        lines.append(Line(promise, checked, tuple(tests[promise.id])))
    known = {p.id for p in promises}
    return Report(
        tuple(lines),
        {pid: tuple(nodes) for pid, nodes in unknown.items()},
        tuple(pid for pid in registry if pid not in known),
    )
