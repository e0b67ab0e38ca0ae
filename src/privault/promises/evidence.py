"""The tests that name a promise: the suite as pytest collects it, each test's name and
docstring read for promise IDs (``test_p9_3_...``, ``P9.3``).

Collection runs pytest in a subprocess (``--collect-only``), so a test counts only if the
suite really collects it; docstrings are read from the collected files with ``ast``, without
importing them a second time.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: An ID in a test's name: ``p8_1``, ``p3_x``, between underscores.
_IN_NAME = re.compile(r"(?:^|_)p(\d+)_(\d+|x)(?=_|$)")
#: An ID in a docstring: ``P8.1``, ``P3.x``; not the start of ``P1.5M`` (a duration).
_IN_TEXT = re.compile(r"(?<![\w.])P(\d+)\.(\d+|x)(?!\w)")
#: pytest exit statuses that still mean "collected": fine, and no tests at all.
_COLLECTED = (0, 5)
COLLECT_TIMEOUT = 600
_PYTEST = (sys.executable, "-m", "pytest")


class CollectionFailed(RuntimeError):
    """pytest could not collect the suite."""


@dataclass(frozen=True)
class NamedTest:
    #: The pytest node id, without parameters: ``tests/x/test_y.py::test_p8_1_...``.
    node: str
    #: The promise IDs it names (``P8.1``), in the order named.
    ids: tuple[str, ...]


def ids_in_name(name: str) -> list[str]:
    return [f"P{section}.{clause}" for section, clause in _IN_NAME.findall(name.lower())]


def ids_in_text(text: str) -> list[str]:
    return [f"P{section}.{clause}" for section, clause in _IN_TEXT.findall(text)]


def collect(tests: Path) -> list[str]:
    """The node ids pytest collects under ``tests``, parameters dropped, in order.

    pytest runs from the folder above ``tests`` so that the project's configuration
    applies. Raises ``CollectionFailed`` with pytest's last words when collection fails.
    """
    root = tests.resolve().parent
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own arguments)
        [*_PYTEST, "--collect-only", "-q", "-p", "no:cacheprovider", str(tests.resolve())],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=COLLECT_TIMEOUT,
        check=False,
    )
    if done.returncode not in _COLLECTED:
        said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        last = said[-1] if said else f"exit status {done.returncode}"
        raise CollectionFailed(f"pytest cannot collect {tests}: {last}")
    nodes: dict[str, None] = {}
    for line in done.stdout.splitlines():
        if "::" in line and not line.startswith(" "):
            nodes[line.strip().split("[", 1)[0]] = None
    return list(nodes)


def docstrings(path: Path) -> dict[str, str]:
    """The docstrings of a test file's functions and methods by node path
    (``test_x``, ``TestY::test_x``); a file that does not parse has none."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    found: dict[str, str] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found[prefix + node.name] = ast.get_docstring(node) or ""
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}::")

    visit(tree.body, "")
    return found


def named_tests(tests: Path) -> list[NamedTest]:
    """Every collected test that names at least one promise ID."""
    root = tests.resolve().parent
    texts: dict[str, dict[str, str]] = {}
    named: list[NamedTest] = []
    for node in collect(tests):
        file, _, path = node.partition("::")
        if file not in texts:
            texts[file] = docstrings(root / file)
        name = path.rsplit("::", 1)[-1]
        ids = ids_in_name(name) + ids_in_text(texts[file].get(path, ""))
        if ids:
            named.append(NamedTest(node, tuple(dict.fromkeys(ids))))
    return named
