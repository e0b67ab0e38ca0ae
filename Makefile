# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint browser bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/privault demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# The browser tests drive Debian's Chromium: installed here when missing and we are root
# (as CI is). Without it they are skipped, or fail when CI is set.
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		 apt-get install -y -qq --no-install-recommends chromium >/dev/null)
	@command -v chromium >/dev/null || \
		echo "no Chromium: run 'make browser' as root, or the browser tests are skipped"

# Every promise of docs/promises.md has a mechanism that exists and a test that names it.
# The suite runs on every core (TEST_WORKERS=0 runs it in one process).
TEST_WORKERS ?= auto
test: lint browser
	$(BIN)/pytest --numprocesses=$(TEST_WORKERS)
	$(BIN)/privault promises --strict

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
