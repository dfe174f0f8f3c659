# sharpeyes developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the dependency list changes.
STAMP := $(VENV)/.sharpeyes-installed
PYTEST_ARGS ?= -q

.PHONY: setup test demo smoke clean distclean

setup: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "'$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install -y python3-venv (Python >= 3.11)"; exit 1; }

# pip's build chatter goes to a log that is shown only when the install fails.
$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing sharpeyes[dev] into $(VENV) (log: $(VENV)/pip-install.log)"
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[dev]' \
		&& scripts/keep-headless-opencv.sh $(BIN)/python; } \
		> $(VENV)/pip-install.log 2>&1 || { tail -n 40 $(VENV)/pip-install.log; exit 1; }
	@touch $@

test: setup
	@scripts/ensure-system.sh
	$(BIN)/pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/sharpeyes demo

smoke: setup
	$(BIN)/sharpeyes demo --smoke

clean:
	rm -rf var/demo .pytest_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
