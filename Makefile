# pybuild: `make demo` and `make test` do all set-up on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench system venv clean grammar fuzz stress

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml scripts/setup-system.sh
	@bash scripts/setup-system.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@# the dataclass methods' bytecode beside the .pyc files (builder/_dataclass_code.py)
	$(PY) -c 'from builder._dataclass_code import warm; warm()'
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check builder tests bench
	$(VENV)/bin/ruff format --check builder tests bench
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q -n auto

# the fuzz targets (tests/property: parser, expander, .dockerignore, references, tar reader, layer
# applier) with 50 times their examples
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -n auto tests/property/test_fuzz_inputs.py \
		tests/property/test_tar_fuzz.py tests/property/test_expand_props.py

unit: $(STAMP)
	$(PY) -m pytest -q -m "not integration"

# The grammar's terminal table (builder/syntax/_line_terminals.py), regenerated with Lark after
# grammar/dockerfile.lark changes; tests/unit/syntax/test_line_terminals.py checks it is current.
grammar: $(STAMP)
	$(PY) -m builder.syntax.lark_grammar
	$(VENV)/bin/ruff format builder/syntax/_line_terminals.py

# SECURITY.md case 26 at full count: SIGKILL a build + push 50 times (make test runs 5)
stress: $(STAMP)
	$(PY) -m tests.adversarial.killtest --kills 50

demo: $(STAMP)
	@bash scripts/demo.sh

bench: $(STAMP)
	$(PY) bench/parse.py
	$(PY) bench/layers.py --size-mb 200
	$(PY) bench/registry.py
	bash bench/anchors.sh

clean:
	rm -rf $(VENV) dist build .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
