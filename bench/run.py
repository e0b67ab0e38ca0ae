"""Run every benchmark in this folder (or those named) and, after a whole run, write
bench/REPORT.md: each figure beside the raw baseline measured in the same run, the ratio,
the target, and the machine it ran on. Each benchmark prints its own lines as it goes.

    python bench/run.py                 # all of them, then REPORT.md
    python bench/run.py load rights     # only these; REPORT.md is left as it is
"""

from __future__ import annotations

import os
import platform
import runpy
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common import Figure

HERE = Path(__file__).parent
REPORT = HERE / "REPORT.md"
NOT_BENCHMARKS = {"run.py", "common.py"}


def _first_line(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> list[tuple[str, str]]:
    """What the figures were measured on."""
    from sqlalchemy import text

    from common import PG_URL, postgres_reachable
    from privault.db import make_engine

    kib = _first_line("/proc/meminfo", "MemTotal").removesuffix(" kB")
    memory = f"{int(kib) / 2**20:.1f} GiB" if kib.isdigit() else kib
    postgres = "not reachable"
    if postgres_reachable():
        engine = make_engine(PG_URL)
        with engine.connect() as conn:
            postgres = str(conn.execute(text("SHOW server_version")).scalar_one())
        engine.dispose()
    commit = subprocess.run(  # noqa: S603 - git, with fixed arguments
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return [
        ("CPU", _first_line("/proc/cpuinfo", "model name")),
        ("cores", str(os.cpu_count())),
        ("memory", memory),
        ("system", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", postgres),
        ("commit", commit or "unknown"),
    ]


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def write_report(figures: list[Figure], took: dict[str, float], started: datetime) -> None:
    lines = [
        "# Benchmark report",
        "",
        f"Written by `make bench` on {started:%Y-%m-%d %H:%M} UTC. Every figure is measured "
        "beside its raw baseline in the same run, because the machine is shared and noisy: "
        "compare the ratios, not the absolute rates, across runs.",
        "",
        "## The machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in machine()),
        "",
        "## The figures",
        "",
        "| benchmark | backend | figure | value | baseline | baseline value | ratio | target |",
        "|---|---|---|---:|---|---:|---:|---|",
    ]
    for f in figures:
        baseline = f.baseline or "none (an absolute bound)"
        base_value = f"{_number(f.baseline_value)} {f.unit}" if f.baseline_value else ""
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
        lines.append(
            f"| {f.bench} | {f.backend} | {f.figure} | {_number(f.value)} {f.unit} | "
            f"{baseline} | {base_value} | {ratio} | {f.target} |"
        )
    lines += [
        "",
        "## Time taken",
        "",
        "| benchmark | seconds |",
        "|---|---:|",
        *(f"| {name} | {secs:,.0f} |" for name, secs in took.items()),
        "",
    ]
    REPORT.write_text("\n".join(lines), encoding="utf-8")


def main(names: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    import common

    scripts = sorted(p for p in HERE.glob("*.py") if p.name not in NOT_BENCHMARKS)
    unknown = set(names) - {p.stem for p in scripts}
    if unknown:
        print(f"no such benchmark: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    took: dict[str, float] = {}
    for script in scripts:
        if names and script.stem not in names:
            continue
        print(f"== {script.stem}", flush=True)
        began = time.perf_counter()
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as done:
            if done.code not in (0, None):
                return int(done.code) if isinstance(done.code, int) else 1
        took[script.stem] = time.perf_counter() - began
        if not names:  # after each, so a run cut short still leaves what it measured
            write_report(common.FIGURES, took, started)
    if not names:
        print(f"wrote {REPORT.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
