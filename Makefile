# Two commands do all set-up on a fresh machine:
#   make demo   installs pamflow in .venv and runs the main job on the embedded demo corpus
#   make test   installs pamflow (with test tools) in .venv and runs the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= out/demo

.PHONY: install demo test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/pamflow demo --out $(DEMO)

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q

bench: install
	$(BIN)/python benchmarks/perturbations.py

clean:
	rm -rf $(VENV) out .pytest_cache
