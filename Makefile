# Every target bootstraps .venv from scratch, so the README's two commands
# work on a fresh machine that has only Python 3.11 and pip.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test test-random test-thorough reproduce bench explore clean mutate conformance test-conformance

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,cluster,explore,fast]'
	touch $(STAMP)

test: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -p no:cacheprovider -m "not conformance"

# the suite's assertions are about laws: it must pass for any stream root and
# any hypothesis draws; this runs it with fresh ones (printed in the header)
test-random: $(STAMP)
	MAMLCHECK_TEST_ROOT=$$($(BIN)/python -c 'import secrets; print(1 + secrets.randbelow(2**31))') \
	HYPOTHESIS_PROFILE=random $(BIN)/python -m pytest -q -p no:cacheprovider -m "not conformance"

test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -q -p no:cacheprovider

# every experiment, then the proof explorer exported with its outputs as static HTML
# (the export also writes a session snapshot beside the notebook, not kept)
reproduce: $(STAMP)
	$(BIN)/python -m mamlcheck run-all --scale default $(if $(FORCE),--force,)
	$(BIN)/marimo export html docs/explorer.py -o figures/explorer.html -f
	rm -rf docs/__marimo__

# seed-iterations per second of the configurations users run, each beside a JAX implementation
# of the same configuration (the bench extra: jax; experiments/bench_jax.py)
$(VENV)/.bench-stamp: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,cluster,explore,fast,bench]'
	touch $@

bench: $(VENV)/.bench-stamp
	$(BIN)/python -m mamlcheck bench --jax

# the proof explorer as a read-only app in the browser (`marimo edit docs/explorer.py` to see its code)
explore: $(STAMP)
	$(BIN)/marimo run docs/explorer.py

# mutation testing (mutmut) of the theory, constants, steps and runner; not part of
# `make test`. Writes mutation/results.md. MUTATE="--all" takes every module of
# [tool.mutmut] in pyproject.toml, MUTATE="theory/rate.py --minutes 10" one file
# with a time cap (see mutation/run.py).
$(VENV)/.mutate-stamp: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,cluster,explore,fast,mutate]'
	touch $@

mutate: $(VENV)/.mutate-stamp
	$(BIN)/python mutation/run.py $(MUTATE)

# the conformance extra: torch (CPU), jax, higher from PyPI; learn2learn built from its sdist
$(VENV)/.conformance-stamp: $(STAMP) conformance/install_learn2learn.sh
	$(BIN)/python -m pip install -q -e '.[test,cluster,explore,fast,conformance]'
	conformance/install_learn2learn.sh $(BIN)/python
	touch $@

# check the MAML libraries against the exact meta-gradients: results/conformance.csv, docs/CONFORMANCE.md
conformance: $(VENV)/.conformance-stamp
	$(BIN)/python -m mamlcheck conformance

# the tests that need the conformance extra (torch, jax, higher, learn2learn); CI runs them after `make test`
test-conformance: $(VENV)/.conformance-stamp
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_conformance.py \
	    tests/test_sinusoid_mlp.py \
	    tests/test_family_frameworks.py

clean:
	rm -rf $(VENV) results
