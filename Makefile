# Nightshift: two commands on a fresh machine.
#   make demo   set everything up and run the pipeline through Airflow on the embedded default
#   make test   set everything up and run the tests
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STATE := $(CURDIR)/state

export AIRFLOW_HOME ?= $(STATE)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export GX_ANALYTICS_ENABLED := False
# No telemetry from any process a recipe starts (dbt parse, `airflow standalone` and the Cosmos dbt
# tasks it runs, dbt docs): nothing phones home and dbt writes no .user.yml cookie into dbt/.
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Some environments set this; with it every process recompiles Airflow and GX from source.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-fast airflow mlflow dbt-docs lock bench clean

# Cosmos renders the dbt task graph from this manifest instead of running dbt at parse time.
MANIFEST := dbt/target/manifest.json
$(MANIFEST): $(BIN)/.installed $(shell find dbt/models dbt/macros dbt/tests -type f) dbt/dbt_project.yml dbt/profiles.yml
	cd dbt && NIGHTSHIFT_WAREHOUSE_DIR=$(STATE)/warehouse ../$(BIN)/dbt parse --profiles-dir . --quiet

# The venv is rebuilt only when the lock or the package metadata change.
$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	# --compile-bytecode: each Airflow task is a new process; precompiled imports start ~2x faster.
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

demo: $(BIN)/.installed $(MANIFEST)
	$(BIN)/python -m nightshift.demo

test: $(BIN)/.installed $(MANIFEST)
	$(BIN)/python -m pytest -m "not e2e" -q -n 2 --dist loadfile
	$(BIN)/python -m pytest -m e2e -q -n 2 --dist loadfile

test-fast: $(BIN)/.installed $(MANIFEST)
	$(BIN)/python -m pytest -m "not e2e" -q -n 2 --dist loadfile

airflow: $(BIN)/.installed $(MANIFEST)
	@echo "Airflow UI on http://localhost:8080 (login details are printed by standalone below)"
	$(BIN)/python -c "import os, pathlib; from nightshift.airflow import runs; runs.ensure_metadata_db(runs.airflow_environment(pathlib.Path(os.environ['AIRFLOW_HOME'])))"
	# SQLite metadata DB: WAL journal (set above) and a writer that waits for the lock (nightshift.airflow.sqlite)
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=nightshift.airflow.sqlite.CONNECT_ARGS \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC=nightshift.airflow.sqlite.CONNECT_ARGS $(BIN)/airflow standalone

# The MLflow UI on the demo's tracking store: runs, gate reports, registered versions and aliases.
mlflow: $(BIN)/.installed
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(STATE)/mlflow/mlflow.db --port 5000

# dbt's documentation site (models, grains, columns, tests, lineage) on the demo's warehouse.
dbt-docs: $(BIN)/.installed
	cd dbt && NIGHTSHIFT_WAREHOUSE_DIR=$(STATE)/warehouse ../$(BIN)/dbt docs generate --profiles-dir . --target-path $(STATE)/dbt-docs --quiet
	cd dbt && ../$(BIN)/dbt docs serve --profiles-dir . --target-path $(STATE)/dbt-docs --port 8081

# Regenerate the lock after editing requirements.in.
lock: $(BIN)/.installed
	$(BIN)/uv pip compile requirements.in -o requirements.txt --python-version 3.11

# Each benchmark prints ratios against a baseline measured in the same run (see README), and adds its
# lines to one summary table printed at the end; the ingest memory case is a batch just under the suites' cap of 5M rows.
BENCHMARKS := bench_parse bench_ingest bench_materialize bench_training_set bench_retrain bench_score bench_monitor bench_features_history bench_production
BENCH_SUMMARY := $(STATE)/bench/summary.jsonl
bench: $(BIN)/.installed $(MANIFEST)
	mkdir -p $(STATE)/bench && rm -f $(BENCH_SUMMARY)
	failed=0; for b in $(BENCHMARKS); do NIGHTSHIFT_BENCH_SUMMARY=$(BENCH_SUMMARY) $(BIN)/python bench/$$b.py || failed=1; done; \
	NIGHTSHIFT_BENCH_SUMMARY=$(BENCH_SUMMARY) $(BIN)/python bench/bench_ingest.py --rows 4995000 || failed=1; \
	$(BIN)/python bench/summary.py $(BENCH_SUMMARY) $(BENCHMARKS) && exit $$failed

clean:
	rm -rf $(STATE)
