# Two commands on a fresh machine do everything: `make solve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEV    := $(VENV)/.installed-dev
GPU    := $(VENV)/.installed-gpu
SCENARIO ?= scenarios/texas.yaml

.PHONY: test test-all test-gpu test-browser solve bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEV): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,dask,nvrtc]'
	@touch $@

$(GPU): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[gpu,dev,dask]'
	@touch $@

test: $(DEV)
	$(PY) -m pytest -m "not gpu and not slow" -q

test-all: $(DEV)
	$(PY) -m pytest -m "not gpu" -q

# Fails when no CUDA device answers: skipped GPU tests must not pass for a GPU run.
test-gpu: $(GPU)
	$(PY) -c "from siteopt.kernels.backend import cupy_usable; ok, why = cupy_usable(); \
		assert ok, 'make test-gpu needs a CUDA device: ' + why"
	$(PY) -m pytest -m gpu -q -rs

# The report in headless Chromium; installs Debian's chromium when no such browser is on PATH.
test-browser: $(DEV)
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| command -v google-chrome >/dev/null \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PY) -m pytest -m slow -q tests/siteopt/test_report_browser.py

solve: $(DEV)
	$(VENV)/bin/siteopt solve $(SCENARIO)

bench: $(DEV)
	$(PY) benchmarks/bench_valuation.py

lint: $(DEV)
	$(VENV)/bin/ruff check siteopt kernels optimizer tests benchmarks
	$(VENV)/bin/ruff format --check siteopt kernels optimizer tests benchmarks

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .ruff_cache
