# sharpeyes developer entry points. `make test` is what CI runs (.ci/run).
# Every install comes from the lock files in requirements/ (pinned, with sha256 hashes);
# `make lock` re-resolves them deliberately and runs the tests on the result.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The development lock with Ultralytics and CPU PyTorch: `sharpeyes models train` and its tests, the
# benchmark's peer (the edge itself needs neither: requirements/edge.txt).
LOCK := requirements/export.txt
# Re-install only when the lock or the project's metadata changes.
STAMP := $(VENV)/.sharpeyes-installed
PYTEST_ARGS ?= -q
LINTED := edge central broker models sharpeyes

.PHONY: setup face-model test lint demo smoke bench bench-deps lock clean distclean

setup: $(STAMP) face-model

# The face detector for evidence redaction (scripts/fetch-face-model.sh; a no-op once it is in place).
# Its own exit status decides: a failed fetch fails the set-up, even where an older file is in place.
face-model: | $(STAMP)
	@scripts/fetch-face-model.sh $(BIN)/python

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || { \
		echo "sharpeyes needs Python >= 3.11 (the lock is resolved for 3.11); try: make PYTHON=python3.11"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "'$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install -y python3-venv (Python >= 3.11)"; exit 1; }

# pip's chatter goes to a log that is shown only when the install fails. --no-deps: the lock
# already lists every package; it leaves out the GUI OpenCV build on purpose (scripts/lock.sh).
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	@echo "installing $(LOCK) (pinned, hashed) and sharpeyes into $(VENV) (log: $(VENV)/pip-install.log)"
	@{ $(BIN)/python -m pip install --require-hashes --no-deps -r $(LOCK) \
		&& $(BIN)/python -m pip install --no-deps --no-build-isolation -e . ; } \
		> $(VENV)/pip-install.log 2>&1 || { tail -n 40 $(VENV)/pip-install.log; \
		echo "setup: the lock pins torch's CPU build (torch==2.13.0+cpu), which PyPI does not carry;"; \
		echo "  fix: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make setup"; exit 1; }
	@touch $@

test: setup
	@scripts/ensure-system.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check $(LINTED) tests
	$(BIN)/mypy $(LINTED)

demo: setup
	$(BIN)/sharpeyes demo

smoke: setup
	$(BIN)/sharpeyes demo --smoke

# Kept for old instructions: the set-up installs the benchmark's Ultralytics peer now.
bench-deps: setup

# The edge benchmark with its peer (docs/benchmarks.md); BENCH_ARGS to change cameras and seconds.
BENCH_ARGS ?= --cameras 32 --seconds 60
bench: bench-deps
	$(BIN)/sharpeyes bench edge $(BENCH_ARGS)

lock: setup
	scripts/lock.sh
	rm -f $(STAMP)
	$(MAKE) --no-print-directory test

clean:
	rm -rf var/demo .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
