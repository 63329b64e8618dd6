"""The multi-step theorem's conditions (THEORY.md §9), each by hand.

Constants L = 2, ρ = 100, σ = 2, σ̃ = 0.5, σ_H = 30 (as tests/test_conditions.py), N = 3:
  α ≤ 1/(6NL) = 1/36,  D_h ≥ ⌈2N(ασ_H)²⌉ = ⌈6·(0.02·30)²⌉ = ⌈2.16⌉ = 3 at α = 0.02.
"""
import math

import numpy as np
import pytest

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.theory import conditions
from mamlcheck.theory.conditions import THEOREMS, broken, check_conditions, format_conditions
from mamlcheck.theory.multistep import multistep_alpha_max

C = dict(L=2.0, rho=100.0, sigma=2.0, sigma_tilde=0.5, sigma_H=30.0)
N = 3


def _rows(algorithm="maml", **kw):
    kw = {"alpha": 0.02, "inner_steps": N, "D_h": 3, **kw}
    return {c.name: c for c in check_conditions(C, Hyper(algorithm, **kw))}


def test_n_step_maml_lists_the_multi_step_theorems_conditions_in_order():
    conds = check_conditions(C, Hyper("maml", alpha=0.02, inner_steps=N, D_h=3))
    assert [c.name for c in conds] == ["alpha_range", "B_min", "D_h_min", "step_rule", "B_prime_min", "D_beta_min"]
    assert all(c.theorem == THEOREMS["multistep"] for c in conds) and broken(conds) == []
    assert all(isinstance(c.statement, str) and "THEORY.md" in c.statement for c in conds)
    assert format_conditions(conds).splitlines()[-1] == "all conditions of the multi-step MAML theorem hold"


def test_the_inner_step_range_is_one_over_6NL_closed_above_open_at_zero():
    a_max = 1 / (6 * N * C["L"])
    row = _rows(alpha=a_max)["alpha_range"]
    assert row.holds and row.given == a_max and row.required == f"(0, {a_max:.6g}]"
    assert "1/(6NL)" in row.statement and f"N = {N}" in row.statement
    assert not _rows(alpha=a_max * (1 + 1e-9))["alpha_range"].holds
    # closed at the edge of the rounding slack itself (α = 1/(6NL) typed by hand lands within it)
    edge = multistep_alpha_max(L=C["L"], N=N) * (1 + conditions._REL)
    assert _rows(alpha=edge)["alpha_range"].holds
    assert not _rows(alpha=np.nextafter(edge, 1.0))["alpha_range"].holds
    assert not _rows(alpha=2 * a_max)["alpha_range"].holds
    assert not _rows(alpha=0.0)["alpha_range"].holds
    assert _rows(alpha=1e-9)["alpha_range"].holds


def test_the_hessian_batch_grows_with_N():
    row = _rows()["D_h_min"]
    assert row.required == math.ceil(2 * N * (0.02 * 30) ** 2) == 3 and row.given == 3 and row.holds
    assert not _rows(D_h=2)["D_h_min"].holds
    assert _rows(alpha=0.025, D_h=4)["D_h_min"].required == math.ceil(6 * 0.75 ** 2) == 4
    assert check_conditions({**C, "sigma_H": 0.0}, Hyper("maml", alpha=0.02, inner_steps=N))[2].required == 1
    assert "2N(ασ_H)²" in row.statement


def test_the_step_rule_is_the_N_step_smoothness_with_c_12():
    row = _rows()["step_rule"]
    assert row.holds and row.required == "adaptive, c = 12" and row.given == "adaptive, c = 12"
    assert "L̃_N(w_k)" in row.statement and "(D2)" in row.statement
    assert not _rows(step_c=11.0)["step_rule"].holds
    constant = _rows(step="constant", beta=0.5)["step_rule"]
    assert not constant.holds and constant.given == "constant β = 0.5"
    exact = check_conditions(C, Hyper("exact", alpha=0.02, inner_steps=N))
    assert [c.name for c in exact] == ["alpha_range", "step_rule"]
    assert all(c.theorem == THEOREMS["multistep-exact"] for c in exact)
    assert "L_N(w_k)" in exact[1].statement and "L̃" not in exact[1].statement


@pytest.mark.parametrize("algorithm", ["fomaml", "hfmaml"])
def test_first_order_and_hessian_free_N_step_runs_have_no_theorem(algorithm):
    conds = check_conditions(C, Hyper(algorithm, alpha=0.02, inner_steps=2, step_c=12.0))
    assert len(conds) == 1
    (c,) = conds
    assert (c.name, c.required, c.given, c.holds, c.theorem) == (
        "theorem", "maml or exact", algorithm, False, THEOREMS["none"])
    assert f"{algorithm} with N = 2 inner steps" in c.statement
    assert format_conditions(conds).splitlines()[-1] == "outside the theorem: theorem"


def test_one_inner_step_keeps_the_first_theorems_conditions():
    conds = check_conditions(C, Hyper("maml", alpha=0.02, D_h=2))
    assert conds[0].theorem == THEOREMS["maml"] and "1/(6L)" in conds[0].statement
