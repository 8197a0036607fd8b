# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,test]'
	touch $(STAMP)

run: install
	$(BIN)/ktpel-coverage demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/python -m openapi_spec_validator openapi.yaml
	$(BIN)/hadolint Dockerfile

# The national benchmark (bench/RESULTS.md). It drives the service with wrk, installed from Debian if missing.
bench: install
	command -v wrk >/dev/null || apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk) \
		|| echo "wrk could not be installed: the slower Python load generator will be used"
	test -x $(BIN)/py-spy || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pgdata .pgdata-bench .pytest_cache .ruff_cache .hypothesis *.egg-info
