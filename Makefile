# bidloop developer commands. Each target sets up .venv first if needed (torch's CPU build first).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test test-all lint format typecheck bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed  ## set up .venv with bidloop and the dev tools

demo: install  ## one optimization cycle on the embedded simulated market
	$(VENV)/bin/bidloop run

test: install  ## the test suite (slow learning-quality tests excluded)
	$(PY) -m pytest -m "not expensive" $(PYTEST_ARGS)

test-all: install  ## every test, the expensive ones too
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install  ## ruff lint + format check, then the type checker
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) typecheck

# mypy cannot follow setuptools' editable import hook to the renamed root: point it at a symlink.
typecheck: install
	mkdir -p build/typecheck && ln -sfn "$(CURDIR)" build/typecheck/bidloop
	MYPYPATH=build/typecheck $(VENV)/bin/mypy -p bidloop.core -p bidloop.tools -p bidloop.policies -p bidloop.guardrails -p bidloop.agents -p bidloop.graph -p bidloop.cli -p bidloop.testing

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install  ## every benchmark; each prints a table and a last JSON line
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
