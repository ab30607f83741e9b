# One entry point: `make test` and `make run` set up .venv (once) and then work.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PACKAGES := rose-estimator rdnas-space advbench rdnas-search

.PHONY: setup test test-fast run lint bench clean

$(STAMP): requirements.txt $(foreach p,$(PACKAGES),packages/$(p)/pyproject.toml)
	command -v dot >/dev/null || { apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; } \
		|| { echo "graphviz (the dot program) is missing and could not be installed: install it with your package manager" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation $(foreach p,$(PACKAGES),-e "packages/$(p)[test]")
	$(PY) -m pip check
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m ruff check packages tools tests conftest.py
	$(PY) -m pytest

# the inner loop: every test not marked slow (make test and CI run everything)
test-fast: setup
	$(PY) -m ruff check packages tools tests conftest.py
	$(PY) -m pytest -m "not slow"

run: setup
	$(VENV)/bin/rdnas-search run --out runs/search-$$(date +%Y%m%d-%H%M%S)

lint: setup
	$(PY) -m ruff check packages tools tests conftest.py

bench: setup
	$(PY) tools/bench/rose_bench.py
	$(PY) tools/bench/supernet_bench.py
	$(PY) tools/bench/attack_bench.py
	$(PY) tools/bench/search_bench.py

clean:
	rm -rf $(VENV)
