# Two commands for everyone: `make lab` opens the lessons, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.buflesson-installed
PORT ?= 8888
JOBS ?= 2
export PYTHONHASHSEED := 0

NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	--nbval-cell-timeout 120

.PHONY: lab test lint format notebooks clean

# Install once; again only when the pins or the package metadata change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[lab,test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name buflesson --display-name "Python (buflesson)" >/dev/null
	@touch $@

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT)

test: $(STAMP)
	$(BIN)/ruff check buflesson tests benchmarks notebooks
	$(BIN)/ruff format --check buflesson tests benchmarks
	$(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadfile --ignore-glob="*/.ipynb_checkpoints/*" \
		tests notebooks $(NBVAL_FLAGS)

lint: $(STAMP)
	$(BIN)/ruff check buflesson tests benchmarks notebooks

format: $(STAMP)
	$(BIN)/ruff format buflesson tests benchmarks
	$(BIN)/ruff check --fix buflesson tests benchmarks

# Maintainers: regenerate the student notebooks from the answer notebooks and re-run both.
notebooks: $(STAMP)
	$(BIN)/buflesson notebooks

clean:
	find . -name __pycache__ -o -name .ipynb_checkpoints -o -name .pytest_cache -o -name .ruff_cache | xargs rm -rf
