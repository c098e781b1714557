# RobustLab: `make setup` (idempotent, ~1 s when done), `make app`, `make lint`, `make test` (lint, then
# the tests), `make test-fast` (lint, then the tests not marked slow, ray or browser), `make bench`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

VENV := .venv
PY   := $(VENV)/bin/python
NLTK := $(CURDIR)/.nltk_data

# Everything below runs offline: NLTK data comes from .nltk_data, models from packages.
export NLTK_DATA := $(NLTK)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

# pip warns once per package about the machine's sparse local index; hide that noise.
PIP_QUIET := grep -v 'is ignored: it is neither a file nor a directory' || true

.PHONY: setup app lint test test-fast bench
setup: $(VENV)/.installed $(NLTK)/.ready $(VENV)/.chromium
	@if [ -d ../shared/data ] && [ ! -e data ]; then ln -s ../shared/data data && echo "linked data -> ../shared/data"; fi

$(PY):
	python3 -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | { $(PIP_QUIET); }
	touch $@

$(NLTK)/.ready: scripts/prepare_nltk_data.py | $(PY)
	$(PY) scripts/prepare_nltk_data.py $(NLTK)

# Debian Chromium for the Playwright browser test; a warning, not a failure, if it can't be had.
$(VENV)/.chromium: | $(PY)
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1; apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } || true; \
	  fi; \
	  [ -x /usr/bin/chromium ] || echo "WARNING: /usr/bin/chromium missing and could not be installed; browser tests will skip, or fail under ROBUSTLAB_REQUIRE_ALL=1 as in CI (rm $@ to retry)"; \
	fi
	touch $@

app: setup
	$(VENV)/bin/streamlit run app/main.py --server.port 8501 --server.address localhost

# -rs prints why each skipped test skipped; CI (.ci/run) sets ROBUSTLAB_REQUIRE_ALL=1 so those fail instead.
lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q -rs tests

# Everything but the tests that train MiniLM, start a Ray cluster or start Chromium (pytest markers), one pytest
# worker per core: 82 s on a 2-core machine.
test-fast: lint
	$(PY) -m pytest -q -rs -n auto -m "not slow and not ray and not browser" tests

bench: setup
	$(PY) benchmarks/train_throughput.py
