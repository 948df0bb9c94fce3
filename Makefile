# Two commands for everyone: `make lab` opens the lessons, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.buflesson-installed
PORT ?= 8888
TORCH := $(shell sed -n "s/^torch==//p" constraints.txt)
JOBS ?= 2
export PYTHONHASHSEED := 0
# `make lab LANG=zh` picks the Chinese course. Make would also hand LANG=zh to every command it runs,
# and zh is no locale: those commands get C.UTF-8 instead.
LESSON_LANG := $(if $(filter zh,$(LANG)),zh,en)
ifeq ($(LESSON_LANG),zh)
override LANG := C.UTF-8
export LANG
endif

NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	--nbval-cell-timeout 120

.PHONY: lab test test-e2e lint format notebooks lesson clean

# Install once; again only when the pins or the package metadata change. pip shows what it fetches.
$(STAMP): pyproject.toml constraints.txt
	@if [ -f $@ ]; then echo "== pyproject.toml or constraints.txt changed: updating .venv/"; \
	else echo "== First run: setting up .venv/ with torch $(TORCH) (CPU), JupyterLab, matplotlib and buflesson."; \
	echo "   This takes 1 to 3 minutes, depending on the network, once; later runs start in seconds."; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -c constraints.txt -e '.[lab,test]'
	$(BIN)/python -m buflesson.kernel >/dev/null
	@touch $@
	@echo "== Set-up done."

# The project's kernel, "Python (buflesson)", loads buflesson.kernel (short tracebacks, the line
# above a NameError, the warm-up); registered again whenever that module changes.
KERNELSPEC := $(VENV)/share/jupyter/kernels/buflesson/kernel.json
$(KERNELSPEC): buflesson/kernel.py | $(STAMP)
	$(BIN)/python -m buflesson.kernel >/dev/null

# JupyterLab on your own copy of the lessons (my-lessons/, made on first run and never overwritten).
# `make lab RESET=05` replaces lesson 5 with a fresh copy first (yours goes to my-lessons/backups/).
# `make lab LANG=zh`: the course in Chinese (my-lessons-zh/), JupyterLab's interface in Chinese.
lab: $(STAMP) $(KERNELSPEC)
	$(BIN)/buflesson lab --lang=$(LESSON_LANG) --port=$(PORT)$(if $(RESET), --reset=$(RESET))

test: $(STAMP) $(KERNELSPEC)
	$(BIN)/ruff check buflesson tests benchmarks notebooks
	$(BIN)/ruff format --check buflesson tests benchmarks
	$(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadfile --ignore-glob="*/.ipynb_checkpoints/*" \
		tests notebooks $(NBVAL_FLAGS)

# End-to-end: every notebook, English and Chinese, run in JupyterLab in Debian's Chromium, driven by
# Playwright (no browser download). Screenshots go to _e2e/screenshots/.
E2E_STAMP := $(VENV)/.buflesson-e2e-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# fonts-noto-cjk: the Chinese lessons' glyphs in the browser (Debian's Chromium ships no CJK font).
$(E2E_STAMP): $(STAMP)
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@dpkg-query -W -f='$${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'ok installed' || \
		{ $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt playwright
	@touch $@

test-e2e: $(E2E_STAMP) $(KERNELSPEC)
	BUFLESSON_E2E=1 $(BIN)/python -m pytest -p no:cacheprovider --durations=0 -v tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check buflesson tests benchmarks notebooks

format: $(STAMP)
	$(BIN)/ruff format buflesson tests benchmarks
	$(BIN)/ruff check --fix buflesson tests benchmarks

# Maintainers: regenerate the student notebooks from the answer notebooks and re-run both.
notebooks: $(STAMP) $(KERNELSPEC)
	$(BIN)/buflesson notebooks

# Maintainers: regenerate one lesson (make lesson N=03) and run exactly its tests: its checks' corpus,
# the generator's tests for it, and strict nbval on its answer and student notebooks.
lesson: $(STAMP)
	@test -n "$(N)" || { echo "usage: make lesson N=03"; exit 2; }
	@ls notebooks/answers/$(N)-*.ipynb >/dev/null 2>&1 || { echo "no lesson notebooks/answers/$(N)-*.ipynb"; exit 2; }
	$(BIN)/buflesson notebooks --only '$(N)-*'
	$(BIN)/ruff check buflesson tests notebooks/answers/$(N)-*.ipynb
	$(BIN)/python -m pytest -p no:cacheprovider -q $(wildcard tests/test_exercises_lesson$(N).py) \
		tests/test_check.py tests/test_corpus.py
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/test_authoring.py -k '$(N)-'
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/test_translations.py -k '$(N)-'
	$(BIN)/python -m pytest -p no:cacheprovider -q $(NBVAL_FLAGS) \
		$$(ls notebooks/$(N)-*.ipynb notebooks/answers/$(N)-*.ipynb notebooks/*/$(N)-*.ipynb \
		notebooks/*/answers/$(N)-*.ipynb 2>/dev/null | sort -u)

clean:
	find . -name __pycache__ -o -name .ipynb_checkpoints -o -name .pytest_cache -o -name .ruff_cache | xargs rm -rf
