# make demo   the demo fleet on the embedded default (private broker, server on SQLite, simulated nodes)
# make test   the test suite (starts its own broker on a free port; never the machine's)
# make bench  benchmarks and soaks, with results written down in docs/benchmarks.md
# make hil-image  the emulated node's boot image for tests/hil (cached; `make test` builds it when missing)
# Each target installs what it needs first (scripts/bootstrap).

VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(PATH):/usr/sbin

.PHONY: demo test bench hil-image schemas clean

$(VENV)/.installed: pyproject.toml scripts/bootstrap
	VENV=$(VENV) scripts/bootstrap

demo: $(VENV)/.installed
	$(PY) -m rpfleet demo

test: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) -m pytest -m bench tests/bench

hil-image: $(VENV)/.installed
	$(PY) -m tests.hil.image

schemas: $(VENV)/.installed
	$(PY) -m rpfleet schema export docs/schemas
	$(PY) -m rpfleet server openapi docs/openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
