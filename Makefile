# Each target sets itself up: a .venv with the project installed (dev extras for tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PORT   ?= 5006
CATALOG ?= data_catalog.yaml
# JupyterLab refuses to start as root without this; containers often run as root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: demo test docs serve lab bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(STAMP)

## demo: run the whole pipeline of $(CATALOG) (data_catalog.yaml) on a local Dask cluster
demo: $(STAMP)
	$(BIN)/workbench run --catalog $(CATALOG)

## test: run the test suite (lint included)
test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## docs: the documentation site into build/site (offline; reference pages generated from the code)
docs: $(DEV_STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

## serve: the Panel dashboards on http://127.0.0.1:$(PORT) (run `make demo` first);
## CATALOG=my_catalog.yaml serves another catalog's workspace;
## SERVE_ARGS="--credentials users.yaml" turns on sign-in (see docs/howto/dashboards.md)
serve: $(STAMP)
	$(BIN)/workbench serve --port $(PORT) --catalog $(CATALOG) $(SERVE_ARGS)

## lab: JupyterLab on 127.0.0.1 with the notebooks
lab: $(DEV_STAMP)
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks $(LAB_ROOT)

## bench: time the workbench against peers (DuckDB, pandas) on the demo data
bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/pipeline.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check workbench apps tests benchmarks

clean:
	rm -rf $(VENV) workspace .pytest_cache
