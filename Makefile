# One command each, on a fresh machine: `make demo` (set up + run the demo), `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: setup demo test bench bench-quick
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml scripts/setup.sh
	scripts/setup.sh $(VENV)
	touch $@

demo: setup
	$(BIN)/ltbench demo

test: setup
	$(BIN)/python -m pytest

# The full benchmark suite; rewrites BENCHMARKS.md.
bench: setup
	$(BIN)/python -m benchmarks.report

# Small sizes, few rounds: what CI runs after the tests.
bench-quick: setup
	$(BIN)/python -m benchmarks.report --quick
