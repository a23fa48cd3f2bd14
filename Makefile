# One command each, on a fresh machine: `make demo` (set up + run the demo), `make test`.
# Tests come in two tiers: `make test` (fast, everything not marked slow) and `make test-slow`
# (kill -9, torchrun, end-to-end training, the installed console script). `.ci/run` runs both.
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k extract -x"`.
PYTEST_ARGS ?=

.PHONY: setup demo test test-slow bench bench-quick
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml scripts/setup.sh
	scripts/setup.sh $(VENV)
	touch $@

demo: setup
	$(BIN)/ltbench demo

# pytest exits 5 when no test is collected or selected: make fails on it like on any failure.
test: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The full benchmark suite; rewrites BENCHMARKS.md.
bench: setup
	$(BIN)/python -m benchmarks.report

# Small sizes, few rounds: what CI runs after the tests.
bench-quick: setup
	$(BIN)/python -m benchmarks.report --quick
