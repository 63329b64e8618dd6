"""Theorem conditions: a run inside each theorem holds; breaking one condition names exactly it.

Constants: L=2, rho=100, sigma=2, sigma_tilde=0.5, sigma_H=30, and alpha=0.03, so
  α ≤ 1/(6L) = 0.0833, α ≤ 1/(10L) = 0.05, α ≤ 1/L = 0.5,
  MAML D_h ≥ ⌈2(0.03·30)²⌉ = ⌈1.62⌉ = 2,  HF-MAML D_h ≥ ⌈36·0.81⌉ = ⌈29.16⌉ = 30,
  B′ ≥ ⌈½(100·0.03·2/2)²⌉ = ⌈4.5⌉ = 5,   D_β ≥ ⌈(2·100·0.03·0.5/2)²⌉ = ⌈2.25⌉ = 3.
"""
import dataclasses

import numpy as np
import pytest

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.problems.base import Constant, Constants
from mamlcheck.theory.conditions import (Condition, broken, check_conditions, conditions_table,
                               format_conditions)

VALUES = dict(L=2.0, rho=100.0, sigma=2.0, sigma_tilde=0.5, sigma_H=30.0)
CONSTANTS = Constants(**{k: Constant(v, True, "test") for k, v in VALUES.items()},
                      L_i=np.array([2.0]), rho_i=np.array([100.0]))
GOOD = dict(alpha=0.03, B=20, D_in=4, D_o=2, D_h=40)
ALGORITHMS = ("maml", "fomaml", "hfmaml", "exact")

# (algorithm, overrides, conditions that must then be broken, exactly)
BREAKS = [
    ("maml", dict(alpha=0.09, D_h=300), {"alpha_range"}),          # > 1/12; D_h ≥ ⌈2·2.7²⌉ = 15
    ("maml", dict(alpha=0.0), {"alpha_range"}),                    # α ∈ (0, ·]
    # α ≤ 1/L is implied by α ≤ 1/(6L): breaking it breaks both (D_h ≥ ⌈2·18²⌉ = 648)
    ("maml", dict(alpha=0.6, D_h=5000), {"alpha_range", "alpha_smoothness"}),
    ("maml", dict(B=19), {"B_min"}),
    ("maml", dict(D_h=1), {"D_h_min"}),
    ("maml", dict(step="constant", beta=0.1), {"step_rule"}),
    ("maml", dict(step_c=13.0), {"step_rule"}),
    ("maml", dict(B_prime=4), {"B_prime_min"}),
    ("maml", dict(D_beta=2), {"D_beta_min"}),
    ("fomaml", dict(alpha=0.06), {"alpha_range"}),                 # > 1/20
    ("fomaml", dict(alpha=0.0), {"alpha_range"}),
    ("fomaml", dict(alpha=0.6), {"alpha_range", "alpha_smoothness"}),
    ("fomaml", dict(step="constant", beta=0.1), {"step_rule"}),
    ("fomaml", dict(step_c=12.0), {"step_rule"}),                  # MAML's c is not FO-MAML's
    ("fomaml", dict(B_prime=4), {"B_prime_min"}),
    ("fomaml", dict(D_beta=2), {"D_beta_min"}),
    ("hfmaml", dict(alpha=0.09, D_h=300), {"alpha_range"}),        # D_h ≥ ⌈36·2.7²⌉ = 263
    ("hfmaml", dict(alpha=0.6, D_h=20000), {"alpha_range", "alpha_smoothness"}),   # ⌈36·18²⌉ = 11664
    ("hfmaml", dict(D_h=29), {"D_h_min"}),
    ("hfmaml", dict(step="constant", beta=0.1), {"step_rule"}),
    ("hfmaml", dict(step_c=12.0), {"step_rule"}),
    ("hfmaml", dict(B_prime=4), {"B_prime_min"}),
    ("hfmaml", dict(D_beta=2), {"D_beta_min"}),
    ("exact", dict(alpha=0.09), {"alpha_range"}),
    ("exact", dict(alpha=0.6), {"alpha_range", "alpha_smoothness"}),
    ("exact", dict(step="constant", beta=0.1), {"step_rule"}),
    ("exact", dict(step_c=25.0), {"step_rule"}),
]

# overrides outside what a theorem constrains: nothing breaks
FREE = [
    ("fomaml", dict(B=1, D_h=1)),        # §5 states no batch condition; D_h unused
    ("hfmaml", dict(B=1, alpha=0.0)),    # §6: α ≤ 1/(6L) only, no B condition
    ("exact", dict(B=1, D_h=1, B_prime=1, D_beta=1)),
]

NAMES = {
    "maml": {"alpha_range", "alpha_smoothness", "B_min", "D_h_min", "step_rule", "B_prime_min", "D_beta_min"},
    "fomaml": {"alpha_range", "alpha_smoothness", "step_rule", "B_prime_min", "D_beta_min", "batch_sizes"},
    "hfmaml": {"alpha_range", "alpha_smoothness", "D_h_min", "step_rule", "B_prime_min", "D_beta_min",
               "batch_sizes", "delta_rule"},
    "exact": {"alpha_range", "alpha_smoothness", "step_rule"},
}


def _check(algorithm, **overrides):
    return check_conditions(CONSTANTS, Hyper(algorithm=algorithm, **{**GOOD, **overrides}))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_good_configuration_holds(algorithm):
    conds = _check(algorithm)
    assert {c.name for c in conds} == NAMES[algorithm]
    assert broken(conds) == []
    assert all(c.holds for c in conds)


@pytest.mark.parametrize("algorithm, overrides, expected", BREAKS,
                         ids=[f"{a}-{'-'.join(e)}-{i}" for i, (a, _, e) in enumerate(BREAKS)])
def test_breaking_one_condition_names_it(algorithm, overrides, expected):
    assert set(broken(_check(algorithm, **overrides))) == expected


def test_every_breakable_condition_is_exercised():
    informational = {"batch_sizes", "delta_rule"}
    for algorithm in ALGORITHMS:
        covered = set().union(*(e for a, _, e in BREAKS if a == algorithm))
        assert covered == NAMES[algorithm] - informational


@pytest.mark.parametrize("algorithm, overrides", FREE)
def test_unconstrained_choices_break_nothing(algorithm, overrides):
    assert broken(_check(algorithm, **overrides)) == []


def test_required_values_by_hand():
    by_name = {c.name: c for c in _check("maml")}
    assert by_name["D_h_min"].required == 2 and by_name["B_prime_min"].required == 5
    assert by_name["D_beta_min"].required == 3 and by_name["B_min"].required == 20
    assert {c.name: c for c in _check("hfmaml")}["D_h_min"].required == 30


def test_boundary_alpha_counts_as_inside():
    assert broken(_check("maml", alpha=1 / (6 * 2.0), D_h=100)) == []
    assert broken(_check("fomaml", alpha=1 / (10 * 2.0))) == []


def test_mapping_of_constants_is_accepted():
    hyper = Hyper(algorithm="maml", **GOOD)
    assert check_conditions(VALUES, hyper) == check_conditions(CONSTANTS, hyper)
    with pytest.raises(ValueError):
        check_conditions({**VALUES, "L": -1.0}, hyper)
    with pytest.raises(ValueError):
        check_conditions({k: v for k, v in VALUES.items() if k != "sigma_H"}, hyper)


def test_condition_is_frozen_and_table_has_one_row_each():
    conds = _check("hfmaml", D_h=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        conds[0].holds = False
    table = conditions_table(conds)
    assert list(table.columns) == [f.name for f in dataclasses.fields(Condition)]
    assert len(table) == len(conds) and table.loc[~table.holds, "name"].tolist() == ["D_h_min"]


def test_format_ends_with_verdict():
    text = format_conditions(_check("maml"))
    assert text.splitlines()[-1] == "all conditions of the MAML theorem hold"
    text = format_conditions(_check("maml", B=19, D_beta=2))
    assert text.splitlines()[-1] == "outside the theorem: B_min, D_beta_min"
    assert "FO-MAML theorem" in format_conditions(_check("fomaml")).splitlines()[-1]
    with pytest.raises(ValueError):
        format_conditions([])


def test_a_table_of_no_conditions_keeps_its_columns():
    from mamlcheck.theory.conditions import Condition, conditions_table
    import dataclasses
    assert list(conditions_table([]).columns) == [f.name for f in dataclasses.fields(Condition)]


def test_format_conditions_prints_each_cell_in_its_column():
    conds = _check("hfmaml", D_h=1)                 # D_h_min broken (required 30), the rest hold
    lines = format_conditions(conds).splitlines()
    assert lines[0] == conds[0].theorem
    assert lines[1].split() == ["condition", "required", "given", "holds", "statement"]
    for c, line in zip(conds, lines[2:-1]):
        cells = line.split("  ")
        cells = [x.strip() for x in cells if x.strip()]
        assert cells[0] == c.name and cells[-1] == c.statement
        assert cells[3] == ("yes" if c.holds else "NO")
        assert cells[1] == (f"{c.required:.6g}" if isinstance(c.required, float) else str(c.required))
        assert cells[2] == (f"{c.given:.6g}" if isinstance(c.given, float) else str(c.given))
    bad = next(line for c, line in zip(conds, lines[2:-1]) if c.name == "D_h_min")
    assert " 30 " in bad and " 1 " in bad and " NO " in bad
