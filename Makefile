# Two commands on a fresh machine: `make demo` (main job on the embedded demo data) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,postgres,browser,onnx]'
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
	$(PY) bench/training_throughput.py
	$(PY) bench/validation_speed.py
	$(PY) bench/drift_speed.py
	$(PY) bench/flow_overhead.py
	$(PY) bench/backfill_speed.py
	$(PY) bench/load_predict.py

clean:
	rm -rf $(VENV) .mlgov .pytest_cache
