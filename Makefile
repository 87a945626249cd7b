# theorybench: the two entry points of the README, plus helpers.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
.PHONY: smoke test unit suite lint validate publish serve clean-venv

$(STAMP): pyproject.toml examples/claim-package/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps -e examples/claim-package  # its tests run in `make test`
	touch $(STAMP)

smoke: $(STAMP)  ## install, run the smoke suite, print verdicts, write records
	$(BIN)/theorybench run smoke

test: $(STAMP)  ## install, run the unit tests and the smoke suite (pytest -m suite)
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not suite"

suite: $(STAMP)
	$(BIN)/python -m pytest -m suite

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

validate: $(STAMP)
	$(BIN)/theorybench validate

publish: $(STAMP)  ## rebuild results/site/ from results/runs/
	$(BIN)/theorybench publish

serve: $(STAMP)  ## show results/site/ on http://127.0.0.1:8000
	$(BIN)/theorybench serve

clean-venv:
	rm -rf $(VENV)
