"""Column checks of the noise, bias and step-size experiments (noise_floor, bias_din,
maml_variants, step_sizes, local_smoothness); see ``tests/experiment_columns.py``."""
from __future__ import annotations

import json
import math

import numpy as np
from scipy import stats

from mamlcheck.problems import make_family
from tests.experiment_columns import (REL, REL_PATH, D_h_least, L_local, _claims, _constants, _k, close, floor_of,
                                      grad_F_tasks, mean_task_grad, table)


# --- noise_floor ----------------------------------------------------------------------------
def test_noise_floor_S_floor_D_h_and_window_columns_are_the_maml_theorem_s():
    t = table("noise_floor")
    for (B, D_in, D_o), g in t.groupby(["B", "D_in", "D_o"]):
        r = g.iloc[0]
        c = _constants(make_family(r.family, spread=r.spread, noise_grad=r.noise_grad))
        close([r[k] for k in c], list(c.values()))
        close(g.alpha, 1.0 / (6.0 * c["L"]))
        S = c["sigma"] ** 2 / B + c["sigma_tilde"] ** 2 / (B * D_o) + c["sigma_tilde"] ** 2 / D_in
        close(g.S, S)
        close(g.floor, floor_of("maml", c["L"], c["rho"], c["sigma"], c["sigma_tilde"], r.alpha, B, D_in, D_o))
        assert (g.D_h == D_h_least("maml", r.alpha, c["sigma_H"])).all()
        assert (g.window_start == g.budget // 2).all()
        # B < 20 breaks the theorem's B ≥ 20 and nothing else (α = 1/(6L), least D_h, c = 12, B′, D_β)
        assert (g.broken == ("B_min" if B < 20 else "none")).all() and (g.conditions_hold == (B >= 20)).all()
        assert len(g[g.kind == "plateau"]) == r.seeds and g[g.kind == "plateau"].seed.nunique() == r.seeds


def test_noise_floor_claims_use_the_seed_mean_plateau_its_t_interval_and_the_floor_column():
    t = table("noise_floor")
    p = t[t.kind == "plateau"]
    for c in _claims("noise_floor", t, "plateau ≤ floor"):
        g = p[(p.B == c.context["B"]) & (p.D_in == c.context["D_in"]) & (p.D_o == c.context["D_o"])]
        n = len(g)
        half = stats.t.ppf(0.975, n - 1) * g.grad_norm.std() / math.sqrt(n)
        close([c.measured, c.lo, c.hi, c.bound], [g.grad_norm.mean(), g.grad_norm.mean() - half,
                                                   g.grad_norm.mean() + half, g.floor.iloc[0]])
        assert c.verdict == ("holds" if c.hi <= c.bound else "violated" if c.lo > c.bound else "inconclusive")
    (e,) = _claims("noise_floor", t, "plateau ∝ S^(1/2)")
    per = p.groupby("B").agg(S=("S", "first"), m=("grad_norm", "mean"))
    close(e.measured, np.polyfit(np.log(per.S), np.log(per.m), 1)[0], rel=1e-9)


# --- bias_din -------------------------------------------------------------------------------
def test_bias_din_bound_columns_are_the_bias_lemma_and_its_A3_refinement():
    t = table("bias_din")
    for _, g in t.groupby(["family_params", "alpha_L"]):
        r = g.iloc[0]
        c = _constants(make_family(r.family, **json.loads(r.family_params)))
        close([r[k] for k in c], list(c.values()))
        a, L = r.alpha_L / c["L"], c["L"]
        close(g.alpha, a)
        D = g.D_in.to_numpy(float)
        close(g.bound, (1 + a * L) * a * L * c["sigma_tilde"] / np.sqrt(D))                 # §3-§4, bias lemma
        close(g.bound_A3, (1 + a * L) * c["rho"] * a ** 2 * c["sigma_tilde"] ** 2 / (2 * D))  # A3 refinement


def test_bias_din_gradient_column_is_grad_F_at_the_start_and_zero_at_w_star():
    t = table("bias_din")
    r = t.iloc[0]
    fam = make_family(r.family, **json.loads(r.family_params))
    start = t[t.point == "k = 0"]
    close(start.grad_F_norm, np.linalg.norm(grad_F_tasks(fam, np.zeros(fam.d), r.alpha)), rel=REL_PATH)
    assert (t[t.point == "w*"].grad_F_norm <= 1e-8).all()           # w*: BFGS to ‖∇F‖ ≤ 1e-12 (analysis.stationary_point)
    # one row per point × D_in, every D_in of the cell at every point
    assert t.groupby("point").D_in.apply(lambda s: tuple(sorted(s))).nunique() == 1


def test_bias_din_exact_bias_never_exceeds_either_bound_and_the_claims_cite_the_largest_ratio():
    t = table("bias_din")
    assert (t.bias <= t.bound).all() and (t.bias <= t.bound_A3).all()    # exact bias: the lemmas hold
    for col, text in (("bound", "bias lemma"), ("bound_A3", "A3 refinement")):
        (c,) = _claims("bias_din", t, text)
        assert c.measured == (t.bias / t[col]).max() and c.verdict == "holds"


# --- maml_variants --------------------------------------------------------------------------
def test_maml_variants_floor_bound_is_each_theorem_s_floor_with_its_own_constant_and_noise_level():
    t = table("maml_variants")
    for (alg, spread, aL), g in t.groupby(["algorithm", "spread", "alpha_L"]):
        r = g.iloc[0]
        fam = make_family(r.family, d=int(r.d), M=int(r.M), N=int(r.N), noise=r.noise,
                          outlier_frac=r.outlier_frac, spread=spread)
        c = _constants(fam)
        close([r[k] for k in c], list(c.values()))
        close(g.alpha, aL / c["L"])
        close(g.floor_bound, floor_of(alg, c["L"], c["rho"], c["sigma"], c["sigma_tilde"], r.alpha, r.B, r.D_in, r.D_o))


def test_maml_variants_dropped_term_bound_is_alpha_L_times_the_inner_gradient_plus_the_bias_lemma():
    t = table("maml_variants")
    p = t[t.kind == "plateau"]
    aL = p.alpha * p.L
    close(p.dropped_hessian_part, aL * p.inner_grad_norm)                              # §5: αL·E_i‖∇f_i(u_i)‖
    close(p.dropped_bound, aL * p.inner_grad_norm + aL * p.sigma_tilde / np.sqrt(p.D_in))   # + αLσ̃/√D_in
    assert (p.dropped_bound >= p.dropped_hessian_part).all()


def test_maml_variants_cost_step_and_window_columns_are_each_algorithm_s():
    t = table("maml_variants")
    calls = {"maml": 3, "fomaml": 2, "hfmaml": 4}       # per task: inner, outer, Hessian-vector (HF: two gradients)
    for alg, g in t.groupby("algorithm"):
        assert (g.oracle_calls == calls[alg] * g.B).all()
        assert (g.D_h == [D_h_least(alg, a, s) for a, s in zip(g.alpha, g.sigma_H)]).all()
    assert (t.step_c == 12).all() and (t.window_start == t.budget // 2).all() and (t.D_in == 1).all()
    p = t[t.kind == "plateau"]
    assert (p.groupby(["algorithm", "spread", "alpha_L"]).seed.nunique() == p.seeds.iloc[0]).all()
    for c in _claims("maml_variants", t, "FO-MAML plateau ≤"):
        fo = p[p.algorithm == "fomaml"].groupby(["spread", "alpha_L"])
        col = "floor_bound" if "floor bound" in c.statement else "dropped_bound"
        close(c.measured, (fo.grad_norm.mean() / fo[col].mean()).max())


# --- step_sizes -----------------------------------------------------------------------------
def _far_starts(fam, radius: float, R: int) -> np.ndarray:
    """step_sizes.far_starts, written out: ``centre + r·u/‖u‖``, ``u`` from
    ``default_rng([0, round(1000 r)])``, the centre where the tasks sit."""
    u = np.random.default_rng([0, int(round(radius * 1000))]).standard_normal((R, fam.d))
    return fam.centre_and_length()[0] + radius * u / np.linalg.norm(u, axis=1, keepdims=True)


def test_step_sizes_local_L_column_is_the_smoothness_lemma_of_the_task_gradient_on_the_same_row():
    t = table("step_sizes")
    tr = t[t.kind == "trajectory"]
    close(tr.L_w, L_local(tr.L, tr.rho, tr.alpha, tr.mean_task_grad_norm))
    # the rule's own estimate: L̃ = 4L + 2ρα(1/B′)Σ‖∇̃f‖ ≥ 4L, so β_k = 1/(12L̃) ≤ 1/(48L)
    est = tr.L_tilde.dropna()
    assert len(est) and (est >= 4.0 * tr.L[est.index] * (1 - REL)).all()
    ad = t[(t.kind == "run") & (t.step == "adaptive")]
    assert (ad.beta_max <= 1.0 / (48.0 * ad.L) * (1 + REL)).all() and (ad.beta_min <= ad.beta_max).all()


def test_step_sizes_rule_s_estimate_column_is_one_over_c_beta_of_the_adaptive_run_on_the_same_streams():
    """The trajectory cell walks the engine with the run cell's seeds and streams (the same
    iterates as ``run``), recording every step at this scale: per seed, the range of
    ``1/(c·L̃_k)`` is the run's ``[beta_min, beta_max]``."""
    t = table("step_sizes")
    tr = t[t.kind == "trajectory"]
    ad = t[(t.kind == "run") & (t.step == "adaptive")].set_index(["radius", "seed"])
    assert (tr.budget == ad.budget.iloc[0]).all()
    K = int(tr.budget.iloc[0])
    assert (tr.groupby(["radius", "seed"]).k.apply(lambda k: sorted(k) == list(range(K + 1)))).all()
    assert tr[tr.k == K].L_tilde.isna().all() and tr[tr.k < K].L_tilde.notna().all()
    beta = (1.0 / (tr.step_c * tr.L_tilde)).groupby([tr.radius, tr.seed]).agg(["min", "max"])
    close(beta["min"], ad.beta_min.loc[beta.index])
    close(beta["max"], ad.beta_max.loc[beta.index])


def test_step_sizes_start_columns_are_recomputed_at_the_far_starts():
    t = table("step_sizes")
    r = t.iloc[0]
    fam = make_family(r.family, gamma=r.gamma, omega=r.omega)
    c = _constants(fam)
    close([r[k] for k in c], list(c.values()))
    for radius, g in t.groupby("radius"):
        W0 = _far_starts(fam, radius, int(g.seed.max()) + 1)
        m0, gF0 = mean_task_grad(fam, W0), np.linalg.norm(grad_F_tasks(fam, W0, r.alpha), axis=-1)
        close(g.L_start_median, np.median(L_local(c["L"], c["rho"], r.alpha, m0)), rel=REL_PATH)
        start = g[(g.kind == "trajectory") & (g.k == 0)].sort_values("seed")
        close(start.mean_task_grad_norm, m0, rel=REL_PATH)
        close(start.grad_norm, gF0, rel=REL_PATH)
        for _, run in g[g.kind == "run"].groupby(["step", "beta_L"], dropna=False):
            close(run.sort_values("seed").start_grad_norm, gF0, rel=REL_PATH)


def test_step_sizes_configuration_and_divergence_bookkeeping():
    t = table("step_sizes")
    close(t.alpha, 1.0 / (6.0 * t.L))
    assert (t.B == 20).all() and (t.D_h == [D_h_least("maml", a, s) for a, s in zip(t.alpha, t.sigma_H)]).all()
    const = t[t.step == "constant"]
    close(const.beta, const.beta_L / const.L)
    assert t[t.step == "adaptive"].beta.isna().all() and (t.step_c == 12).all()
    runs = t[t.kind == "run"]
    assert (runs.diverged == runs.diverged_at.notna()).all()
    at = _k(runs.diverged_at)
    assert np.all(at[np.isfinite(at)] <= runs.budget.to_numpy()[np.isfinite(at)])
    assert np.all(np.isfinite(runs.final_grad_norm[~runs.diverged.astype(bool)]))


def test_step_sizes_claims_cite_the_divergence_counts_and_the_lemma_s_moments_of_the_table():
    t = table("step_sizes")
    runs = t[t.kind == "run"]
    (ad,) = _claims("step_sizes", t, "never diverged")
    assert ad.measured == int(runs[runs.step == "adaptive"].diverged.sum())
    for c in _claims("step_sizes", t, "the smallest constant β·L at which seeds diverged"):
        g = runs[(runs.radius == c.context["radius"]) & (runs.step == "constant")]
        hit = g[g.diverged.astype(bool)].beta_L
        assert c.measured == hit.min() if len(hit) else np.isnan(c.measured)
        assert c.bound == (g[g.beta_L < hit.min()].beta_L.max() if len(hit) else g.beta_L.max())
    tr = t[(t.kind == "trajectory")].dropna(subset=["L_tilde"])
    q = tr.L_w / tr.L_tilde
    (m1,) = _claims("step_sizes", t, "E[L(w)/L̃(w)] ≥ 0.8")
    (m2,) = _claims("step_sizes", t, "E[(L(w)/L̃(w))²] ≤ 3.125")
    close([m1.measured, m1.bound, m2.measured, m2.bound], [q.mean(), 0.8, (q ** 2).mean(), 3.125])
    assert m1.verdict == ("holds" if m1.measured >= 0.8 else "violated")
    assert m2.verdict == ("holds" if m2.measured <= 3.125 else "violated")


# --- local_smoothness -----------------------------------------------------------------------
def test_local_smoothness_bounds_are_L_w_and_the_smaller_of_L_w_L_u():
    t = table("local_smoothness")
    close(t.alpha, 1.0 / (6.0 * t.L))
    close(t.L_w, L_local(t.L, t.rho, t.alpha, t.mean_task_grad_norm))
    close(t.bound1, np.minimum(t.L_w, t.L_u))
    close(t.bound2, t.L_w)
    assert (t.L_u >= 4.0 * t.L * (1 - REL)).all()
    close(t.h, 1e-5 * np.maximum(1.0, t.w_norm))                    # ‖u − w‖ = 1e-5·max(1, ‖w‖)
    assert (t.groupby(["family", "source", "point"]).direction.nunique() == 2).all()


def test_local_smoothness_measured_ratios_stay_within_the_lemma_and_the_claims_cite_the_largest():
    t = table("local_smoothness")
    # the smoothness lemma bounds both secant ratios; 1e-4: the finite differences' rounding (FD_RTOL)
    assert (t.ratio1 <= t.bound1 * (1 + 1e-4)).all() and (t.ratio2 <= t.bound2 * (1 + 1e-4)).all()
    for fam, g in t.groupby("family"):
        for col, bcol, text in (("ratio1", "bound1", "‖∇F(u) − ∇F(w)‖"), ("ratio2", "bound2", "abs(F(u)")):
            (c,) = [c for c in _claims("local_smoothness", t, text) if c.context["family"] == fam]
            assert c.measured == (g[col] / g[bcol]).max()
            assert c.verdict == ("holds" if c.measured <= 1 + 1e-4 else "violated")
        (s,) = [c for c in _claims("local_smoothness", t, "bound's slope 2ρα") if c.context["family"] == fam]
        close(s.bound, 2 * g.rho.iloc[0] * g.alpha.iloc[0])
