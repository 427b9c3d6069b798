# `make run` and `make test` bootstrap a .venv on a fresh machine by themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench soak clean venv chromium

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

test: $(STAMP) chromium
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The dashboard test drives Debian's chromium; install it once where apt-get
# can (as root, or with password-less sudo). Without it that test is skipped.
BROWSERS := chromium chromium-browser google-chrome google-chrome-stable
chromium:
	@for b in $(BROWSERS); do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	[ -n "$$QUOTIO_CHROMIUM" ] && exit 0; \
	command -v apt-get >/dev/null 2>&1 || exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else exit 0; fi; \
	echo "installing chromium (apt-get) for the dashboard test"; \
	{ $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1 \
		|| echo "could not install chromium; the dashboard's browser test will be skipped"

bench: $(STAMP)
	$(PY) scripts/bench.py $(BENCH_ARGS)

# 1,000 concurrent streams, then 100,000 mixed requests; prints its tables.
soak: $(STAMP)
	$(PY) scripts/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
