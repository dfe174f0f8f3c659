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
# `make demo` needs neither torch nor Ultralytics: it installs only this lock (both roles, the footage
# server and the embedded broker; the same pins as $(LOCK)), with its own stamp, and a later
# `make setup` adds the rest.
DEMO_LOCK := requirements/demo.txt
DEMO_STAMP := $(VENV)/.sharpeyes-demo-installed
PYTEST_ARGS ?= -q
LINTED := edge central broker models sharpeyes

.PHONY: setup demo-deps face-model test lint demo smoke bench bench-deps lock clean distclean

setup: $(STAMP) face-model

demo-deps: $(DEMO_STAMP) face-model

# The face detector for evidence redaction (scripts/fetch-face-model.sh; a no-op once it is in place).
# Its own exit status decides: a failed fetch fails the set-up, even where an older file is in place.
face-model: | $(BIN)/python
	@scripts/fetch-face-model.sh $(BIN)/python

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || { \
		echo "sharpeyes needs Python >= 3.11 (the lock is resolved for 3.11); try: make PYTHON=python3.11"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "'$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install -y python3-venv (Python >= 3.11)"; exit 1; }

# $(call install,LOCK): scripts/install-lock.sh runs pip install --require-hashes --no-deps -r LOCK
# (the lock lists every package; it leaves out the GUI OpenCV build on purpose, scripts/lock.sh),
# taking torch's CPU build from the machine's own package sources, or from PyTorch's CPU index where
# they lack it; then sharpeyes itself from the checkout. pip's chatter goes to a log that is shown
# only when the install fails.
PIP_LOG := $(VENV)/pip-install.log
install = : > $(PIP_LOG) && scripts/install-lock.sh $(BIN)/python $(1) $(PIP_LOG) \
	&& { $(BIN)/python -m pip install --no-deps --no-build-isolation -e . >> $(PIP_LOG) 2>&1 \
	|| { tail -n 40 $(PIP_LOG); echo "setup: pip could not install sharpeyes from the checkout (above; log: $(PIP_LOG))"; exit 1; }; }

$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	@echo "installing $(LOCK) (pinned, hashed) and sharpeyes into $(VENV) (log: $(PIP_LOG))"
	@$(call install,$(LOCK))
	@touch $@ $(DEMO_STAMP)

# Nothing to do where the full set-up is newer than the demo's lock (it holds the same pins).
$(DEMO_STAMP): $(DEMO_LOCK) pyproject.toml | $(BIN)/python
	@if [ $(STAMP) -nt $(DEMO_LOCK) ] && [ $(STAMP) -nt pyproject.toml ]; then :; else \
		echo "installing $(DEMO_LOCK) (the demo's share of the lock: no torch, no Ultralytics) and sharpeyes into $(VENV) (log: $(PIP_LOG))" \
		&& $(call install,$(DEMO_LOCK)); fi
	@touch $@

test: setup
	@scripts/ensure-system.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check $(LINTED) tests
	$(BIN)/mypy $(LINTED)

demo: demo-deps
	$(BIN)/sharpeyes demo

smoke: demo-deps
	$(BIN)/sharpeyes demo --smoke

# Kept for old instructions: the set-up installs the benchmark's Ultralytics peer now.
bench-deps: setup

# The edge benchmark with its peer (docs/benchmarks.md); BENCH_ARGS to change cameras and seconds.
BENCH_ARGS ?= --cameras 32 --seconds 60
bench: bench-deps
	$(BIN)/sharpeyes bench edge $(BENCH_ARGS)

lock: setup
	scripts/lock.sh
	rm -f $(STAMP) $(DEMO_STAMP)
	$(MAKE) --no-print-directory test

clean:
	rm -rf var/demo .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
