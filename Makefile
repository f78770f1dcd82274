# Two commands on a fresh machine do everything: `make solve` and `make test`.
# Both install into .venv through a lock (requirements/*.txt): every transitive version
# pinned to what the tests passed with. pyproject.toml keeps the loose ranges for people
# who install siteopt as a library. `make lock` re-resolves the locks after a change to
# pyproject.toml (keeping every pin that still fits); `make lock-upgrade` moves every pin
# to the newest release. Commit the locks with the change, after `make test` passes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SCENARIO ?= scenarios/texas.yaml

LOCK_SOLVE := requirements/solve.txt
LOCK_TEST  := requirements/test.txt
LOCK_GPU   := requirements/gpu.txt
SOLVE := $(VENV)/.installed-solve
DEV   := $(VENV)/.installed-test
GPU   := $(VENV)/.installed-gpu

# The lock tool, pinned like everything else; only `make lock` needs it.
UV_VERSION := 0.13.9
UV         := $(VENV)/bin/uv
LOCK_FOR   := --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
              --custom-compile-command "make lock" --quiet

# Install a lock exactly: no resolver run, no dependency outside the lock, then siteopt
# itself (editable, without dependencies) and a consistency check.
define install_lock
	$(PY) -m pip install -q --no-deps -r $(1)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	@touch $@
endef

.PHONY: test test-all test-gpu test-browser solve bench lint lock lock-upgrade clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Solving needs no CuPy, no Dask and no test tools: ~350 MB instead of ~860 MB.
$(SOLVE): $(LOCK_SOLVE) pyproject.toml | $(PY)
	$(call install_lock,$(LOCK_SOLVE))

# Tests: dev tools, Dask, and CuPy with NVRTC so the CUDA source compiles without a GPU.
$(DEV): $(LOCK_TEST) pyproject.toml | $(PY)
	$(call install_lock,$(LOCK_TEST))

$(GPU): $(LOCK_GPU) pyproject.toml | $(PY)
	$(call install_lock,$(LOCK_GPU))

# -P: the repository root stays off sys.path (kernels/ is only ever siteopt.kernels)
test: $(DEV)
	$(PY) -P -m pytest -m "not gpu and not slow" -q

test-all: $(DEV)
	$(PY) -P -m pytest -m "not gpu" -q

# Fails when no CUDA device answers: skipped GPU tests must not pass for a GPU run.
test-gpu: $(GPU)
	$(PY) -c "from siteopt.kernels.backend import cupy_usable; ok, why = cupy_usable(); \
		assert ok, 'make test-gpu needs a CUDA device: ' + why"
	$(PY) -P -m pytest -m gpu -q -rs

# The report in headless Chromium; installs Debian's chromium when no such browser is on PATH.
test-browser: $(DEV)
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| command -v google-chrome >/dev/null \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PY) -P -m pytest -m slow -q tests/siteopt/test_report_browser.py

solve: $(SOLVE)
	$(VENV)/bin/siteopt solve $(SCENARIO)

bench: $(DEV)
	$(PY) benchmarks/bench_valuation.py

lint: $(DEV)
	$(VENV)/bin/ruff check siteopt kernels optimizer tests benchmarks
	$(VENV)/bin/ruff format --check siteopt kernels optimizer tests benchmarks

$(UV): | $(PY)
	$(PY) -m pip install -q uv==$(UV_VERSION)

lock: $(UV)
	$(UV) pip compile pyproject.toml $(LOCK_FOR) $(UPGRADE) -o $(LOCK_SOLVE)
	$(UV) pip compile pyproject.toml $(LOCK_FOR) $(UPGRADE) \
		--extra dev --extra dask --extra nvrtc -o $(LOCK_TEST)
	$(UV) pip compile pyproject.toml $(LOCK_FOR) $(UPGRADE) \
		--extra gpu --extra dev --extra dask -o $(LOCK_GPU)

lock-upgrade:
	$(MAKE) lock UPGRADE=--upgrade

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .ruff_cache
