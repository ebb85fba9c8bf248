# The README's two commands: `make demo` (install + main job) and `make test` (install + tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench bench-study studies clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m experiments.sweep --flagfile=experiments/configs/quickstart.flags

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile  # two workers, one test file each at a time

studies: $(STAMP)
	$(PY) -m experiments.studies --flagfile=experiments/configs/studies.flags

bench: $(STAMP)
	$(PY) -m experiments.bench --bank_layers=128

bench-study: $(STAMP)
	$(PY) -m experiments.bench_study

clean:
	rm -rf $(VENV) build *.egg-info
