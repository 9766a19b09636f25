# Two commands do all set-up on a fresh machine:
#   make demo   installs pamflow in .venv and runs the main job on the embedded demo corpus
#   make test   installs pamflow (with test tools) in .venv and runs the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= out/demo

.PHONY: install system-deps demo test lint bench gpu-check clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Debian's Chromium, for the test that opens `pamflow inspect --report` in a real browser
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "could not install chromium (not root?): the browser test will be skipped"; \
	  else echo "chromium not found and apt-get unavailable: the browser test will be skipped"; fi; }

demo: install
	$(BIN)/pamflow demo --out $(DEMO)

# formatter, linter (unused noqa included) and type checker: zero findings
lint: install
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: install system-deps lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/perturbations.py
	$(BIN)/python benchmarks/loader.py
	$(BIN)/python benchmarks/build.py

# what only a GPU can show (benchmarks/gpu.py, under 5 minutes): "no device" without CUDA.
# On a GPU machine, install a CUDA build of torch in the venv first.
gpu-check: install
	$(BIN)/python benchmarks/gpu.py

clean:
	rm -rf $(VENV) out .pytest_cache
