# The two commands of the README: `make demo` and `make test`.
# Both create .venv when absent and install visim (editable, dev and export extras) plus every
# plugin package under plugins/. Re-installs only when a pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
STAMP  := $(VENV)/.installed

.PHONY: demo test lint docs pytest install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# PYTHONWARNINGS: setuptools warns about every editable install of a flat layout; not a problem here.
$(STAMP): $(BIN)/python pyproject.toml $(PLUGINS)
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/pip install -q -e '.[dev,export]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/visim run configs/demo.yaml --baseline

lint: $(STAMP)
	$(BIN)/ruff check visim plugins tests benchmarks docs

docs: $(STAMP)
	$(BIN)/sphinx-build -q -W --keep-going -b html docs docs/_build/html

# One pytest worker per core (pytest-xdist); a module's tests stay on one worker, so its
# module-scoped fixtures (a trained run, an export) are built once. Modules go out in
# collection order, which tests/conftest.py makes "modules with slow tests first".
pytest: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadscope --no-loadscope-reorder

test: lint docs pytest

clean:
	rm -rf $(VENV) docs/_build
