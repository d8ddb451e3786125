# One task runner, used the same way locally and in CI.
#   make demo   install, generate a month of sales for 12 branches, load it, print a report
#   make test   install and run the whole test suite
#   make lint   ruff (lint + format check) and mypy
#   make bench  throughput and memory benchmarks (not part of the tests)
#   make lambda the AWS Lambda artifact dist/brewline-lambda.zip, with its sizes

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test lint bench lambda clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	$(VENV)/bin/brewline demo

test: install
	scripts/ensure-system-deps.sh
	$(PY) -m pytest -n 2

lint: install
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_marts_load.py
	$(PY) benchmarks/bench_dashboard.py
	$(PY) benchmarks/bench_fanout.py
	$(PY) benchmarks/bench_s3_clients.py
	$(PY) benchmarks/bench_totesys.py
	$(PY) benchmarks/bench_scale.py

lambda: install
	$(PY) scripts/build_lambda.py --out dist/brewline-lambda.zip

clean:
	rm -rf $(VENV) demo brewline.duckdb brewline.duckdb.wal bench-data dist
