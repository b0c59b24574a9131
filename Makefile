# Two commands on a fresh machine: `make demo` (main job on the embedded demo data) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install demo test test-fast lint bench bench-table clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,postgres,browser,onnx,cluster]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mlgov demo

test: $(STAMP)
	$(PY) -m pytest -n 3 --dist loadgroup

test-fast: $(STAMP)
	$(PY) -m pytest -m unit

lint: $(STAMP)
	$(VENV)/bin/ruff check cli flows tasks mlgov deployments tests bench docs/*.py
	$(VENV)/bin/ruff format --check cli flows tasks mlgov deployments tests bench docs/*.py
	$(VENV)/bin/mypy cli flows tasks mlgov deployments docs
	$(VENV)/bin/lint-imports
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

bench: $(STAMP)
	$(PY) bench/record.py training_throughput
	$(PY) bench/record.py validation_speed
	$(PY) bench/record.py drift_speed
	$(PY) bench/record.py flow_overhead
	$(PY) bench/record.py cold_start
	$(PY) bench/record.py cli_reads
	$(PY) bench/record.py fanout
	$(PY) bench/backfill_speed.py
	$(PY) bench/load_predict.py
	$(PY) bench/table.py

# The speed table of docs/benchmarks.md, from the figures `make bench` recorded in bench/results/.
bench-table: $(STAMP)
	$(PY) bench/table.py

clean:
	rm -rf $(VENV) .mlgov .pytest_cache
