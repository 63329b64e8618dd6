"""The multi-step α experiment at tiny scale, its claims against doctored
tables (so each verdict is seen to fail when it should), and the exact
facts its claims rest on: the saddle's ``‖∇²F_N(w°)‖``, the ``2N`` exponent of
(D2) and the N-uniform forms of (D3), (D6) at ``α = c/(NL)``."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from mamlcheck.experiments import multistep_alpha as ms
from mamlcheck.experiments.run_all import claim_cells
from mamlcheck.problems import make_family
from mamlcheck.theory.checks import REPORTED, VERDICTS, Check
from mamlcheck.theory.multistep import multistep_alpha_max, multistep_second_moment, multistep_smooth_L
from tests.experiment_tables import tiny_table

C = ms.C_INNER
SADDLE_FAMILY, SADDLE_PARAMS = ms.FAMILIES["saddle"]
COLUMNS = {
    "smoothness": {"schedule", "fixed", "N", "alpha", "point", "reference", "h", "ratio", "hess_norm", "m_w", "m_u",
                   "bound", "bound_uniform", "bound_qN", "saddle_norm", "saddle_Lambda", "saddle_factor"},
    "moments": {"schedule", "fixed", "N", "alpha", "draws", "bias", "bias_lo", "bias_hi", "bias_bound", "second",
                "second_lo", "second_hi", "second_bound", "second_bound_uniform", "kappa_h"},
    "runs": {"schedule", "fixed", "N", "alpha", "seed", "eps", "budget", "first_k", "mean_first_k", "diverged"},
}
#: the claims that use no random draw: finite differences of exact gradients only
EXACT_CLAIMS = ("≤ L_N(w, w′)", "the same for every N", "equals max_λ", "exponent 2N", "stays in")


@pytest.fixture(scope="module")
def table():
    return tiny_table(ms)


def _saddle():
    fam = make_family(SADDLE_FAMILY, **SADDLE_PARAMS)
    c = fam.constants().values()
    return fam, c["L"], c["rho"], fam.hess(np.zeros(fam.d), 0)


def _claim(checks, *texts) -> Check:
    found = [c for c in checks if all(t in c.statement for t in texts)]
    assert len(found) == 1, [c.statement for c in checks]
    return found[0]


# --- the tiny table ------------------------------------------------------------------------
def test_the_tiny_table_has_every_kind_and_the_columns_its_claims_read(table):
    assert set(table.kind) == set(COLUMNS)
    for kind, cols in COLUMNS.items():
        part = table[table.kind == kind]
        assert cols <= set(part.columns), cols - set(part.columns)
        assert set(part.schedule) == {"αL = 0.5", ms.CN}
    assert set(table.variant) == set(ms.FAMILIES)
    smooth = table[table.kind == "smoothness"]
    assert np.all(np.isfinite(smooth.ratio)) and np.all(smooth.ratio > 0)
    cn = smooth[smooth.schedule == ms.CN]
    assert np.allclose(cn.alpha * cn.N * cn.L, C)                       # α = c/(NL) = multistep_alpha_max


def test_the_figures_are_drawn_and_the_claims_carry_verdicts_not_only_reports(table, tmp_path):
    paths = ms.plot(table, tmp_path)
    assert {p.name for p in paths} == {f"{ms.NAME}_{n}.{e}" for n in ("smoothness", "moments", "iterations")
                                       for e in ("png", "svg")}
    assert all(p.stat().st_size > 0 for p in paths)
    checks = ms.claims(table)
    assert all(isinstance(c, Check) and set(claim_cells(c)) == {"claim", "measured", "bound", "verdict"}
               for c in checks)
    assert {c.verdict for c in checks} <= set(VERDICTS) | {REPORTED}
    assert not any("|" in cell for c in checks for cell in claim_cells(c).values())     # a Markdown table row
    assert sum(c.verdict != REPORTED for c in checks) >= 10
    assert all("THEORY.md §9" in c.equation for c in checks)
    exact = [c for c in checks if any(t in c.statement for t in EXACT_CLAIMS)]
    assert len(exact) >= 8 and all(c.verdict == "holds" for c in exact), [(c.statement, c.verdict) for c in exact]


def test_the_claims_are_the_same_after_a_round_trip_through_csv(table, tmp_path):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    back = ms.claims(pd.read_csv(path))
    assert [(c.statement, c.verdict) for c in back] == [(c.statement, c.verdict) for c in ms.claims(table)]


def test_cells_are_json_able_and_the_quick_and_default_scales_grow_from_tiny():
    for scale in ("tiny", "quick", "default", "full"):
        json.dumps(ms.cells(scale))
    tiny, default = ms.SCALES["tiny"], ms.SCALES["default"]
    assert max(default.smooth_N_fixed) >= 10 and default.draws > tiny.draws
    assert all(s.seeds < 8 for s in ms.SCALES.values())                 # one thread: no prefetch


# --- the exact facts the claims rest on ---------------------------------------------------
def test_the_exponent_two_version_of_the_slip_is_D2_itself():
    L, rho = 2.5, 4.0
    for N in (1, 3, 10):
        for alpha in (0.5 / L, multistep_alpha_max(L=L, N=N)):
            for m in (0.0, 0.7):
                assert math.isclose(ms.smooth_L_exponent(L, rho, alpha, N, m, 2.0),
                                    float(multistep_smooth_L(L=L, rho=rho, alpha=alpha, N=N, mean_grad_norm=m)),
                                    rel_tol=1e-12)


def test_a_bound_with_the_factor_1_plus_alpha_L_to_the_N_is_exceeded_at_the_saddle_for_some_N(table):
    # negative control: the plausible slip q^N for q^{2N} in (D2) fails; (D2) itself holds
    fam, L, rho, H = _saddle()
    alpha = 0.5 / L
    exact = np.array([ms.saddle_norm(H, alpha, N) for N in range(1, 11)])
    slip = np.array([ms.smooth_L_exponent(L, rho, alpha, N, 0.0, 1.0) for N in range(1, 11)])
    d2 = np.array([ms.smooth_L_exponent(L, rho, alpha, N, 0.0, 2.0) for N in range(1, 11)])
    assert np.any(exact > 1.5 * slip) and np.all(exact <= d2)             # margin 1.5: no rounding question
    ref = table[(table.kind == "smoothness") & (table.variant == "saddle") & table.reference.astype(bool)
                & (table.schedule == "αL = 0.5")]
    assert np.any(ref.ratio > 1.2 * ref.bound_qN) and np.all(ref.ratio <= ref.bound)


def test_at_alpha_c_over_N_the_saddle_constant_is_bounded_in_N_and_at_fixed_alpha_it_is_not():
    fam, L, rho, H = _saddle()
    Lam = np.abs(np.linalg.eigvalsh(H)).max()
    cn = np.array([ms.saddle_norm(H, multistep_alpha_max(L=L, N=N), N) for N in range(1, 65)])
    assert np.all(cn >= (1 - C) ** 2 * Lam) and np.all(cn <= math.exp(2 * C) * Lam)
    assert cn.max() / cn.min() <= math.exp(2 * C) / (1 - C) ** 2
    fixed = np.array([ms.saddle_norm(H, 0.5 / L, N) for N in (1, 10)])
    assert fixed[1] / fixed[0] > 10 * math.exp(2 * C) / (1 - C) ** 2


def test_the_uniform_brackets_bound_the_N_step_bounds_at_alpha_c_over_N():
    L, rho, s, sH = 2.5, 4.0, 1.3, 0.9
    g_w, p = np.array([0.0, 0.4, 2.0]), np.array([0.2, 0.3, 0.5])
    for N in (1, 2, 5, 17, 64):
        alpha = multistep_alpha_max(L=L, N=N)
        for m in (0.0, 0.5, 3.0):
            assert float(multistep_smooth_L(L=L, rho=rho, alpha=alpha, N=N, mean_grad_norm=m)) <= \
                ms.smooth_L_uniform(L, rho, C, m) * (1 + 1e-12)
        for D in (1, 4):
            # ‖∇f_i(u^N)‖ at its largest by (D1), q^N‖∇f_i(w)‖; any φ is allowed, so the best φ per task
            g = (1 + alpha * L) ** N * g_w
            best = sum(pi * min(float(multistep_second_moment(grad_norm_at_inner_point=gi, alpha=alpha, L=L,
                                                              sigma_tilde=s, sigma_H=sH, D_in=D, D_o=D, D_h=D,
                                                              N=N, phi=phi))
                                for phi in np.geomspace(1e-3, 1e3, 61))
                       for pi, gi in zip(p, g))
            assert best <= ms.second_moment_uniform(g_w, p, C, L, s, sH, D, D, D) * (1 + 1e-12)


def test_the_saddle_variant_refuses_tasks_that_are_not_identical():
    fam = make_family(SADDLE_FAMILY, **{**SADDLE_PARAMS, "spread": 0.1})
    with pytest.raises(ValueError, match="identical tasks"):
        ms._reference(fam, "saddle")


def test_the_monte_carlo_interval_covers_zero_bias_on_quadratic_tasks():
    # γ = 0: quadratic tasks with additive noise, so E G^N = ∇F_N exactly (the Hessians
    # are constant) and the bias interval must reach 0.  One row: |b̂_j| ≤ z·se_j for every
    # coordinate j fails with probability ≤ d·δ/d = δ = FALSE_ALARM = 1e-6 (normal
    # approximation of the mean of 3000 draws per task, Bonferroni over coordinates).
    params = {**SADDLE_PARAMS, "gamma": 0.0}
    fam = make_family(SADDLE_FAMILY, **params)
    cell = {"variant": "saddle", "family": SADDLE_FAMILY, "family_params": params, "fixed_alpha_L": [0.5],
            "N_fixed": [3], "N_cN": [], "draws": 3000, "seed": 7}
    row = ms._moments(fam, cell, fam.constants().values()).iloc[0]
    assert row.bias_lo == 0.0 < row.bias < row.bias_hi
    assert row.second_lo <= row.second <= row.second_hi <= row.second_bound


# --- each verdict can fail ------------------------------------------------------------------
def _doctor(table, kind, where, **cols):
    t = table.copy()
    rows = (t.kind == kind) & where(t)
    for col, f in cols.items():
        t.loc[rows, col] = f(t.loc[rows])
    return t


def test_a_ratio_above_the_D2_bound_makes_its_claim_violated(table):
    t = _doctor(table, "smoothness", lambda t: (t.variant == "robust") & (t.schedule == ms.CN) & (t.N == 2),
                ratio=lambda r: 2.0 * r.bound)
    checks = ms.claims(t)
    assert _claim(checks, "robust", ms.CN, "≤ L_N(w, w′)").verdict == "violated"
    assert _claim(checks, "robust", "αL = 0.5", "≤ L_N(w, w′)").verdict == "holds"


def test_a_hessian_norm_one_percent_off_the_saddle_identity_is_violated(table):
    t = _doctor(table, "smoothness", lambda t: t.reference.astype(bool) & (t.variant == "saddle") & (t.N == 4),
                hess_norm=lambda r: 1.01 * r.hess_norm)
    assert _claim(ms.claims(t), "equals max_λ").verdict == "violated"


def test_a_ratio_at_the_saddle_below_the_slip_bound_at_every_N_violates_the_exponent_claim(table):
    t = _doctor(table, "smoothness", lambda t: t.reference.astype(bool) & (t.variant == "saddle"),
                ratio=lambda r: 0.5 * r.bound_qN)
    assert _claim(ms.claims(t), "exponent 2N").verdict == "violated"


def test_a_saddle_ratio_growing_with_N_at_alpha_c_over_N_leaves_the_D3_bracket(table):
    t = _doctor(table, "smoothness", lambda t: t.reference.astype(bool) & (t.variant == "saddle")
                & (t.schedule == ms.CN), ratio=lambda r: r.saddle_Lambda * 1.5 ** r.N)
    assert _claim(ms.claims(t), "stays in").verdict in ("violated", "inconclusive")
    above = _doctor(table, "smoothness", lambda t: t.reference.astype(bool) & (t.variant == "saddle")
                    & (t.schedule == ms.CN), ratio=lambda r: 3.0 * r.saddle_Lambda)
    assert _claim(ms.claims(above), "stays in").verdict == "violated"


@pytest.mark.parametrize("col", ["bias", "second"])
def test_a_moment_above_its_bound_is_violated_and_one_straddling_it_is_inconclusive(table, col):
    where = lambda t: (t.variant == "saddle") & (t.schedule == "αL = 0.5") & (t.N == 2)      # noqa: E731
    b = f"{col}_bound"
    over = _doctor(table, "moments", where, **{col: lambda r: 2.0 * r[b], f"{col}_lo": lambda r: 1.5 * r[b],
                                                f"{col}_hi": lambda r: 2.5 * r[b]})
    straddle = _doctor(table, "moments", where, **{col: lambda r: 1.0 * r[b], f"{col}_lo": lambda r: 0.5 * r[b],
                                                    f"{col}_hi": lambda r: 1.5 * r[b]})
    text = "‖E G^N − ∇F_N‖ ≤" if col == "bias" else "E‖G^N‖² ≤ its bound"
    assert _claim(ms.claims(over), "saddle", "αL = 0.5", text).verdict == "violated"
    assert _claim(ms.claims(straddle), "saddle", "αL = 0.5", text).verdict == "inconclusive"


def _runs_with(table, k_of_N):
    """The runs of the tiny table with every first hit set to ``k_of_N(N, fixed)``
    (times a small per-seed wobble, so the fits have an interval)."""
    t = table.copy()
    rows = t.kind == "runs"
    fixed = t.loc[rows, "fixed"].astype(bool)
    wobble = 1.0 + 0.02 * (t.loc[rows, "seed"] % 2)
    t.loc[rows, "first_k"] = [k_of_N(N, f) * w for N, f, w in zip(t.loc[rows, "N"], fixed, wobble)]
    return t


def test_iterations_that_fall_with_N_at_fixed_alpha_violate_the_slowdown_claims(table):
    falling = _runs_with(table, lambda N, fixed: 1000.0 * (0.5 ** N if fixed else 1.0))
    checks = ms.claims(falling)
    assert _claim(checks, "αL = 0.5: iterations", "grow with N").verdict == "violated"
    assert _claim(checks, "grow faster in N").verdict == "violated"
    growing = _runs_with(table, lambda N, fixed: 100.0 * (3.0 ** N if fixed else 1.0))
    checks = ms.claims(growing)
    assert _claim(checks, "αL = 0.5: iterations", "grow with N").verdict == "holds"
    assert _claim(checks, "grow faster in N").verdict == "holds"


def test_runs_censored_at_the_budget_from_the_smallest_N_leave_the_slowdown_claims_inconclusive(table):
    # every seed at budget + 1 would fit a slope of exactly 0 with no spread: no evidence either way
    t = table.copy()
    t.loc[(t.kind == "runs") & t.fixed.astype(bool), "first_k"] = np.nan
    checks = ms.claims(t)
    assert _claim(checks, "αL = 0.5: iterations", "grow with N").verdict == "inconclusive"
    cn = table.copy()
    runs_cn = (cn.kind == "runs") & ~cn.fixed.astype(bool)
    cn.loc[runs_cn & (cn.N == cn[runs_cn].N.max()), "first_k"] = np.nan     # censoring at α = c/(NL)
    assert _claim(ms.claims(cn), "grow faster in N").verdict == "inconclusive"
