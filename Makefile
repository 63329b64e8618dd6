# Every target bootstraps .venv from scratch, so the README's two commands
# work on a fresh machine that has only Python 3.11 and pip.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test test-thorough reproduce bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,cluster]'
	touch $(STAMP)

test: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -p no:cacheprovider

test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -q -p no:cacheprovider

reproduce: $(STAMP)
	$(BIN)/python -m mamlcheck run-all --scale default $(if $(FORCE),--force,)

bench: $(STAMP)
	$(BIN)/python -m mamlcheck bench

clean:
	rm -rf $(VENV) results
