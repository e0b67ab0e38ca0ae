"""Run every benchmark in this folder; each prints its own ratio against a raw baseline."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    sys.path.insert(0, str(HERE))
    for script in sorted(HERE.glob("*.py")):
        if script.name in {"run.py", "common.py"}:
            continue
        print(f"== {script.stem}", flush=True)
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as done:
            if done.code not in (0, None):
                return int(done.code) if isinstance(done.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
