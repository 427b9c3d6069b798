# `make run` and `make test` bootstrap a .venv on a fresh machine by themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/find-python.sh
	@if [ ! -x "$(PY)" ]; then \
		interp=$$(sh scripts/find-python.sh) || exit 1; \
		echo "creating $(VENV) with $$interp"; \
		"$$interp" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/quotio serve

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) scripts/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
