# The two commands of the README:
#   make demo   install and run the hub on its embedded defaults, with the mock systems
#   make test   install and run every check and the whole test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-dev lint typecheck pytest bench bench-quick reliability-full clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

demo: install
	$(BIN)/hub run --demo

test: install-dev lint typecheck pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# Declared dependencies equal imports: the runtime code's ([tool.deptry]), then the tests' (in the dev extra).
	$(BIN)/deptry .
	$(BIN)/deptry . -e '\.venv' -e build -e var -e hub -e adapters -e schemas -e mocks -e bench --ignore DEP002,DEP004
	# One core, many plugins: the import contracts of [tool.importlinter] (docs/architecture.md).
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest

bench: install-dev
	$(BIN)/python -m bench

bench-quick: install-dev
	$(BIN)/python -m bench --quick

# The reliability suite at full size: a few thousand messages per fault, a 60 s target outage
# (docs/reliability.md). `make test` runs its quick subset.
reliability-full: install-dev
	$(BIN)/pytest tests/reliability --full

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
