# One entry point for people and CI. Every target installs what it needs first
# (idempotent: a second run only checks timestamps).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: deps system-deps compose-deps test test-compose soak start bench lint contracts clean

deps: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# npm ci installs package-lock.json as committed and never rewrites it (it lists anvil's
# binaries for every platform); after changing package.json, run `npm install` and commit
# the lock file it writes.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Debian packages the tests use when present: docker-compose validates docker-compose.yml,
# chromium runs the browser tests (Playwright cannot download browsers here). Installed only
# when running as root (CI); otherwise those tests skip with a reason.
system-deps:
	@missing=""; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        $$missing >/dev/null) || echo "warning: could not install$$missing"; \
	fi

# What the compose test needs besides: Debian's docker.io (dockerd), docker-compose and
# debootstrap (the offline base image), installed when missing and running as root (CI).
# Without root and without a running Docker engine, the test skips with the reason.
compose-deps:
	@missing=""; \
	command -v dockerd >/dev/null 2>&1 || missing="$$missing docker.io"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v debootstrap >/dev/null 2>&1 || missing="$$missing debootstrap"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        $$missing >/dev/null) || echo "warning: could not install$$missing"; \
	fi

lint: deps
	$(BIN)/ruff check .
	$(BIN)/mypy

test: deps system-deps lint
	$(BIN)/pytest

# docker-compose up for real (tests/integration/test_compose_up.py): builds the images on
# offline stand-ins, starts the stack, pays through it in Chromium, takes it down. Kept
# out of `make test`; .ci/run runs both. Prints its run time.
test-compose: deps system-deps compose-deps
	$(BIN)/pytest -p no:cacheprovider -m compose tests/integration/test_compose_up.py

# The long kill loop: the node SIGKILLed 100 times during payments, links, withdrawals and
# reclaims (make test runs the same loop with 10 kills).
soak: deps
	KILL_LOOP_KILLS=100 $(BIN)/pytest -p no:cacheprovider tests/integration/test_kill_loop.py

start: deps
	@echo "starting the local stack; the wallet opens at http://localhost:3000"
	$(BIN)/connext start

# Every benchmark (docs/BENCH.md); `make bench BENCH="stores wallet"` runs only those
# sections and keeps the others' figures in bench/results.json. Chromium (system-deps) is
# for the wallet section, which skips with the reason without it.
bench: deps system-deps
	$(BIN)/python -m bench $(BENCH)

contracts: deps
	$(BIN)/python -m connext.contracts.build

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis test-results
