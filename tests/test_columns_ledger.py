"""Column checks of the proof ledger, slack and multi-step constants (proof_ledger, slack,
multistep_alpha, multistep_cost); see ``tests/experiment_columns.py``."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from mamlcheck.problems import make_family
from tests.experiment_columns import (L_N, REL, REL_PATH, D_h_least, F_tasks, _claims, _constants, _module, close,
                                      floor_of, grad_F_tasks, rate14, table)


# --- multistep_alpha ------------------------------------------------------------------------
def _ms_family(r):
    return make_family(r.family, **json.loads(r.family_params))


def _ms_start(fam, variant: str, seed: int = 0) -> np.ndarray:
    """multistep_alpha's moments point ``w° + ½·length·u``, ``u`` a unit vector from
    ``default_rng([seed, 1])``; ``w° = 0`` at the saddle, the tasks' centre otherwise."""
    ref, length = (np.zeros(fam.d), 1.0) if variant == "saddle" else fam.centre_and_length()
    u = np.random.default_rng([seed, 1]).standard_normal(fam.d)
    return ref + 0.5 * length * u / np.linalg.norm(u)


def test_multistep_alpha_schedules_are_the_fixed_alpha_L_and_one_over_6NL():
    t = table("multistep_alpha")
    for _, g in t.groupby(["variant", "kind"]):
        c = _constants(_ms_family(g.iloc[0]))
        close(g[["L", "rho", "sigma", "sigma_tilde", "sigma_H"]].to_numpy(),
              np.broadcast_to([c[k] for k in ("L", "rho", "sigma", "sigma_tilde", "sigma_H")], (len(g), 5)))
        fixed = g.fixed.astype(bool)
        close(g.alpha[~fixed], 1.0 / (6.0 * g.N[~fixed] * c["L"]))        # §9: α = 1/(6NL)
        close(g.alpha_L[fixed], 0.5)
        close(g.alpha_L, g.alpha * c["L"])
        close(g.c, g.alpha * g.N * c["L"])
        close(g.c[~fixed], 1.0 / 6.0)


def test_multistep_alpha_smoothness_bounds_are_D2_D3_and_the_q_to_the_N_slip_at_the_pair_s_smaller_gradient():
    t = table("multistep_alpha")
    s = t[t.kind == "smoothness"]
    m = np.minimum(s.m_w, s.m_u)
    L, rho, a, N, c = s.L, s.rho, s.alpha, s.N, s.c
    q = 1.0 + a * L
    close(s.bound, L_N(L, rho, a, N, m))                                                    # (D2)
    close(s.bound_uniform, np.exp(2 * c) * L + (rho / L) * np.exp(2 * c) * (np.exp(c) - 1) * m)   # (D3)
    close(s.bound_qN, q ** N * L + (rho / L) * q ** (N - 1) * (q ** N - 1) * m)            # exponent N
    sd = s[s.variant == "saddle"]                                # w = w° + r·u with w° = 0: ‖w‖ = r
    close(sd.h, 1e-6 * np.maximum(1.0, sd.radius), rel=1e-9)         # h = 1e-6·max(1, ‖w‖)
    assert (s.bound >= s.bound_qN).all()


def test_multistep_alpha_saddle_columns_are_the_exact_spectrum_of_the_common_hessian():
    t = table("multistep_alpha")
    s = t[(t.kind == "smoothness") & (t.variant == "saddle")]
    fam = _ms_family(s.iloc[0])
    lam = np.linalg.eigvalsh(fam.hess(np.zeros(fam.d), 0))
    for i in range(1, fam.M):                                           # identical tasks: one Hessian at w° = 0
        close(fam.hess(np.zeros(fam.d), i), fam.hess(np.zeros(fam.d), 0))
    ref = s[s.reference.astype(bool)]
    close(ref.saddle_Lambda, np.abs(lam).max())
    close(ref.saddle_factor, [np.abs(1 - a * lam).max() for a in ref.alpha])
    # (D0) at a common stationary point: ‖(I − αH)^N H (I − αH)^N‖ = max_λ |1 − αλ|^{2N}|λ|
    close(ref.saddle_norm, [np.max(np.abs(1 - a * lam) ** (2 * n) * np.abs(lam)) for a, n in zip(ref.alpha, ref.N)],
          rel=REL_PATH)
    assert s[~s.reference.astype(bool)].saddle_norm.isna().all()
    close(ref.hess_norm, ref.saddle_norm, rel=1e-5)                      # central differences, SADDLE_RTOL


def test_multistep_alpha_measured_smoothness_stays_within_D2_and_at_c_over_NL_within_D3():
    t = table("multistep_alpha")
    s = t[t.kind == "smoothness"]
    # (D2) bounds the secant ratio of every pair; 1e-4: finite-difference rounding (FD_RTOL)
    assert (s.ratio <= s.bound * (1 + 1e-4)).all()
    cn = s[~s.fixed.astype(bool)]
    assert (cn.ratio <= cn.bound_uniform * (1 + 1e-4)).all() and (cn.bound <= cn.bound_uniform * (1 + REL)).all()


def _V(alpha, L, sigma_tilde, D_in, N):
    """(D4): ``V_N = (α²σ̃²/D_in)(q^{2N} − 1)/(q² − 1)``."""
    q = 1.0 + alpha * L
    return (alpha * sigma_tilde) ** 2 / D_in * (q ** (2 * N) - 1) / (q ** 2 - 1)


def test_multistep_alpha_bias_and_second_moment_bounds_are_D5_and_D6_at_the_moments_point():
    t = table("multistep_alpha")
    for variant, g in t[t.kind == "moments"].groupby("variant"):
        fam = _ms_family(g.iloc[0])
        c = _constants(fam)
        L, rho, s, sH = c["L"], c["rho"], c["sigma_tilde"], c["sigma_H"]
        w = _ms_start(fam, variant)
        g_w = np.array([np.linalg.norm(fam.grad(w, i)) for i in range(fam.M)])
        for r in g.itertuples():
            a, N = r.alpha, int(r.N)
            q = 1 + a * L
            u = np.array([w] * fam.M)
            for _ in range(N):
                u = np.array([u[i] - a * fam.grad(u[i], i) for i in range(fam.M)])
            g_u = np.array([np.linalg.norm(fam.grad(u[i], i)) for i in range(fam.M)])
            close(r.grad_FN_norm, np.linalg.norm(grad_F_tasks(fam, w, a, N)), rel=REL_PATH)
            V = _V(a, L, s, 1, N)
            bias = q ** N * L * math.sqrt(V) + a * rho * q ** (N - 1) * g_u * sum(math.sqrt(_V(a, L, s, 1, j))
                                                                                 for j in range(1, N))
            close(r.bias_bound, fam.p @ bias)                                                # (D5)
            kappa = q ** 2 + (a * sH) ** 2 / 1                                               # D_h = 1
            close(r.kappa_h, kappa)
            # (D6) at the best Young's φ: min_φ (1 + 1/φ)g² + (1 + φ)L²V = (g + L√V)²
            close(r.second_bound, fam.p @ (kappa ** N * ((g_u + L * math.sqrt(V)) ** 2 + s ** 2 / 1)), rel=1e-10)
            cc = a * N * L
            unif = math.exp(2 * cc) * math.exp((cc * sH / L) ** 2 / 1) * (
                fam.p @ ((math.exp(cc) * g_w + cc * math.exp(cc) * s) ** 2 + s ** 2))
            close(r.second_bound_uniform, unif)


def test_multistep_alpha_monte_carlo_intervals_are_the_estimate_plus_minus_the_stated_normal_quantile():
    t = table("multistep_alpha")
    g = t[t.kind == "moments"]
    d = {v: _ms_family(x.iloc[0]).d for v, x in g.groupby("variant")}
    z_vec = np.array([stats.norm.isf(1e-6 / (2 * d[v])) for v in g.variant])   # Bonferroni over coordinates
    close(g.bias_lo, np.maximum(0.0, g.bias - z_vec * g.bias_se))
    close(g.bias_hi, g.bias + z_vec * g.bias_se)
    z = stats.norm.isf(1e-6 / 2)
    close(g.second_lo, g.second - z * g.second_se)
    close(g.second_hi, g.second + z * g.second_se)
    assert (g.draws == _module("multistep_alpha").SCALES["tiny"].draws).all()


def test_multistep_alpha_monte_carlo_moments_do_not_exceed_their_bounds_beyond_a_one_in_a_million_margin():
    """(D5), (D6) hold for the exact moments; the estimates may exceed them only by noise.
    Thresholds: with ``n`` rows, each row's one-sided normal tail is set to ``1e-6/n``
    (union bound: false alarm ≤ 1e-6 for the whole assertion).  Second moment: a mean of
    draws, ``Ŝ − z·se ≤ S`` with ``z = Φ⁻¹(1 − 1e-6/n)``.  Bias: ``‖b̂ − b‖ ≤ z‖se‖`` holds
    when every coordinate has ``|b̂_j − b_j| ≤ z·se_j``, so Bonferroni over the ``d``
    coordinates and both tails: ``z = Φ⁻¹(1 − 1e-6/(2dn))``; then ``‖b̂‖ − z‖se‖ ≤ ‖b‖``."""
    t = table("multistep_alpha")
    g = t[t.kind == "moments"]
    n = len(g)
    z_s = stats.norm.isf(1e-6 / n)
    assert (g.second - z_s * g.second_se <= g.second_bound).all()
    d = max(_ms_family(x.iloc[0]).d for _, x in g.groupby("variant"))
    z_b = stats.norm.isf(1e-6 / (2 * d * n))
    assert (g.bias - z_b * g.bias_se <= g.bias_bound).all()


# --- multistep_cost -------------------------------------------------------------------------
def test_multistep_cost_calls_are_2N_plus_1_N_plus_1_and_3N_plus_1_per_task_and_the_counts_split_by_oracle():
    t = table("multistep_cost")
    N, B = t.N, t.B
    per_task = {"maml": 2 * N + 1, "fomaml": N + 1, "hfmaml": 3 * N + 1}       # THEORY.md §9, cost per task
    grads = {"maml": N + 1, "fomaml": N + 1, "hfmaml": 3 * N + 1}             # inner steps + outer (+ 2 per difference)
    hvps = {"maml": N, "fomaml": 0 * N, "hfmaml": 0 * N}
    for alg in per_task:
        sel = t.algorithm == alg
        assert (t.calls_per_task[sel] == per_task[alg][sel]).all()
        assert (t.calls_expected[sel] == per_task[alg][sel] * B[sel]).all()
        assert (t.grad_counted[sel] == grads[alg][sel] * B[sel]).all()
        assert (t.hvp_counted[sel] == hvps[alg][sel] * B[sel]).all()
    assert (t.calls_counted == t.grad_counted + t.hvp_counted).all()
    assert (t.calls_formula == t.algorithm.map({"maml": "2N + 1", "fomaml": "N + 1", "hfmaml": "3N + 1"})).all()


def test_multistep_cost_configuration_follows_each_theorem():
    t = table("multistep_cost")
    fam = make_family(t.family.iloc[0], **json.loads(t.family_params.iloc[0]))
    c = _constants(fam)
    close(t.alpha, 1.0 / (6.0 * t.N * c["L"]))
    close(t.alpha_NL, 1.0 / 6.0)
    r = c["rho"] * t.alpha / c["L"]
    B_prime = [max(1, math.ceil(0.5 * (x * c["sigma"]) ** 2)) for x in r]            # §3: ⌈½(ρασ/L)²⌉
    D_beta = [max(1, math.ceil(4.0 * (x * c["sigma_tilde"]) ** 2)) for x in r]       # §3: ⌈(2ρασ̃/L)²⌉
    assert (t.B_prime == B_prime).all() and (t.D_beta == D_beta).all()
    assert (t.step_calls_expected == t.B_prime).all() and (t.step_calls_counted == t.B_prime).all()
    theorem = np.where(t.N == 1, t.algorithm, np.where(t.algorithm == "maml", "multistep", "none"))
    assert (t.theorem == theorem).all()
    D_h = [D_h_least(th if th != "multistep" else "maml", a, c["sigma_H"], n if th == "multistep" else 1)
           if th in ("maml", "hfmaml", "multistep") else 1 for th, a, n in zip(theorem, t.alpha, t.N)]
    assert (t.D_h == D_h).all() and (t.D_in == 1).all() and (t.D_o == 1).all()
    # FO-MAML at α = 1/(6L) is outside its α ≤ 1/(10L) and its c = 18; with N > 1 there is no theorem
    assert (t[theorem == "fomaml"].conditions_broken == "alpha_range;step_rule").all()
    assert (t[theorem == "hfmaml"].conditions_broken == "step_rule").all()
    assert (t[theorem == "none"].conditions_broken == "theorem").all()
    assert (t[t.algorithm == "maml"].conditions_broken == "none").all()


def test_multistep_cost_match_claims_cite_the_largest_difference_of_the_table():
    t = table("multistep_cost")
    s = t.drop_duplicates(["algorithm", "N"])
    for alg, g in s.groupby("algorithm"):
        (c,) = [c for c in _claims("multistep_cost", t, "gradient-oracle calls per iteration, counted")
                if c.context["algorithm"] == alg]
        assert c.measured == (g.calls_counted - g.calls_expected).abs().max()
        assert c.verdict == ("holds" if c.measured == 0 else "violated")
    (b,) = _claims("multistep_cost", t, "L̃ estimate costs B′")
    assert b.measured == (s.step_calls_counted - s.step_calls_expected).abs().max()


# --- proof_ledger ---------------------------------------------------------------------------
def _ledger_parts():
    t = table("proof_ledger")
    cfg = {r.key: json.loads(r.value[len("json:"):]) for r in t[t.part == "config"].itertuples()}
    rows = t[t.part == "rows"]
    traj = t[t.part == "trajectory"].sort_values("k")
    return t, cfg, rows, traj


def test_proof_ledger_delta_floor_threshold_and_per_step_decrease_are_their_formulas():
    t, cfg, rows, traj = _ledger_parts()
    cell = _module("proof_ledger").cells("tiny")[0]
    fam = make_family(cell["family"], **cell["params"])
    assert cfg["family"] == cell["family"]
    c = {k: cfg[f"{k}_used"] for k in ("L", "rho", "sigma", "sigma_tilde", "sigma_H")}
    cert = _constants(fam)
    assert c == pytest.approx(cert, rel=REL)
    L, rho, sig, st, a, eps = c["L"], c["rho"], c["sigma"], c["sigma_tilde"], cfg["alpha"], cfg["eps"]
    close(a, 1.0 / (6.0 * L))
    assert cfg["D_h"] == D_h_least("maml", a, c["sigma_H"])
    w0 = np.full(fam.d, float(cfg["w0"].split()[0]))                           # "1 in every coordinate"
    F0 = float(F_tasks(fam, w0, a))
    close(cfg["F_w0"], F0, rel=REL_PATH)
    close(traj.mean_F.iloc[0], F0, rel=REL_PATH)
    close(cfg["inf_f_lower"], fam.inf_f_lower())
    close(cfg["Delta"], cfg["F_w0"] - cfg["inf_f_lower"])
    floor = floor_of("maml", L, rho, sig, st, a, cfg["B"], cfg["D_in"], cfg["D_o"])
    close(cfg["noise_floor"], floor)
    close(cfg["threshold"], max(eps, floor))
    close(cfg["per_step_decrease"], eps ** 2 / (1600.0 * (L + rho * a * (sig + eps))))      # (11)
    close(cfg["T_bound"], rate14(eps, cfg["Delta"], L, rho, a, sig))                          # (14)
    assert cfg["B_prime"] == max(1, math.ceil(0.5 * (rho * a * sig / L) ** 2))                 # §3: ⌈½(ρασ/L)²⌉
    assert cfg["D_beta"] == max(1, math.ceil(4.0 * (rho * a * st / L) ** 2))                 # §3: ⌈(2ρασ̃/L)²⌉
    assert cfg["iterations"] == len(traj) - 1


def test_proof_ledger_rows_of_14_13_and_11_are_built_from_the_trajectory():
    t, cfg, rows, traj = _ledger_parts()
    g = traj.mean_grad_norm.to_numpy()
    hit = np.flatnonzero(g <= cfg["eps"])
    (r14,) = rows[rows.step == "(14)"].itertuples()
    assert hit.size and r14.left == hit[0] == cfg["T_measured"]                # first k with mean ‖∇F‖ ≤ ε
    assert r14.right == cfg["T_bound"]
    K = cfg["iterations"]
    above = g[:K] > cfg["threshold"]
    T_star = int(np.argmin(above)) if not above.all() else K
    assert cfg["T_star"] == T_star
    assert (traj.above_threshold.astype(bool).to_numpy() == (g > cfg["threshold"])).all()
    c11, EF = cfg["per_step_decrease"], traj.mean_F.to_numpy()
    r11 = rows[rows.step == "(11)"].sort_values("k")
    assert r11.k.tolist() == list(range(T_star))
    close(r11.right, EF[:T_star] - c11)
    close(r11.trajectory_left, EF[1:T_star + 1])
    assert (r11.bound == c11).all()
    r13 = rows[rows.step == "(13)"].sort_values("k")
    assert r13.k.tolist() == list(range(1, T_star + 1))
    close(r13.right, cfg["F_w0"] - r13.k * c11)
    close(r13.bound, r13.k * c11)


def test_proof_ledger_rows_of_7_and_8_bound_one_gradient_norm():
    """(7) ``2g² + 0.08σ̃²/D_in`` and (8) ``40g² + 14σ² + σ̃²(2/D_o + 1/(6D_in))`` at the same
    ``g = ‖∇F(w_k)‖``: solve (7) for ``g²`` and rebuild (8)."""
    t, cfg, rows, traj = _ledger_parts()
    st, sig = cfg["sigma_tilde_used"], cfg["sigma_used"]
    D_in, D_o = cfg["D_in"], cfg["D_o"]
    r7 = rows[rows.step == "(7)"].sort_values(["k", "seed"])
    r8 = rows[rows.step == "(8)"].sort_values(["k", "seed"])
    assert r7[["k", "seed"]].to_numpy().tolist() == r8[["k", "seed"]].to_numpy().tolist()
    g2 = (r7.right.to_numpy() - 0.08 * st ** 2 / D_in) / 2.0
    assert (g2 >= 0).all()
    close(r8.right, 40.0 * g2 + 14.0 * sig ** 2 + st ** 2 * (2.0 / D_o + 1.0 / (6.0 * D_in)), rel=1e-10)
    assert (g2 <= traj.mean_grad_norm.max() ** 2 * 64).all()                  # a ‖∇F‖ of this run, not another


def test_proof_ledger_verdicts_summary_and_claims_follow_from_the_rows():
    t, cfg, rows, traj = _ledger_parts()
    lo, hi, right = rows.left_lo.to_numpy(float), rows.left_hi.to_numpy(float), rows.right.to_numpy(float)
    scale = 1e-8 * np.maximum.reduce([np.ones_like(right), np.abs(right), np.abs(hi), np.abs(lo)])
    v = rows.verdict.to_numpy()
    assert np.all(v[hi <= right] == "holds")                                     # every row reads left ≤ right
    assert np.all(v[lo > right + scale] == "violated")
    assert np.all(v[(hi > right + scale) & (lo <= right)] == "inconclusive")
    assert (rows.holds.astype(bool) == (rows.verdict == "holds")).all()
    # measured/bound are the two sides at the interval's conservative end
    upper = rows.step.isin(["(7)", "(8)", "(9)", "(10)", "(14)"])
    diff = np.where(upper, hi - right, right - hi)
    close(rows.measured - rows.bound, diff, atol=1e-9 * max(1.0, np.abs(right).max()))
    fin = upper & (rows.measured > 0) & np.isfinite(rows.slack)
    close(rows.slack[fin], (rows.bound / rows.measured)[fin])
    led = _module("proof_ledger")
    for c in led.claims(t):
        g = rows[rows.step == c.equation]
        assert c.measured == (g.verdict == "violated").sum() and c.bound == 0
        assert c.verdict == ("holds" if c.measured == 0 else "violated")
    counts = rows.groupby("step").verdict.value_counts().unstack(fill_value=0)
    from mamlcheck.experiments.ledger import Ledger
    s = Ledger.from_table(t).summary.set_index("step")
    for step, r in counts.iterrows():
        assert (s.loc[step, "rows"], s.loc[step, "held"], s.loc[step, "violated"]) == (
            r.sum(), r.get("holds", 0), r.get("violated", 0))


# --- slack ----------------------------------------------------------------------------------
def test_slack_rows_of_7_and_8_share_one_gradient_norm_and_their_terms_are_THEORY_s():
    t = table("slack")
    for draw, g in t.groupby("draw"):
        r = g.iloc[0]
        s, sig, D_in, D_o = r.const_sigma_tilde, r.const_sigma, r.D_in, r.D_o
        b7 = g[g.property == "(7)"].bound.iloc[0]
        b8 = g[g.property == "(8)"].bound.iloc[0]
        g2 = (b7 - 0.08 * s ** 2 / D_in) / 2.0
        close(b8, 40.0 * g2 + 14.0 * sig ** 2 + s ** 2 * (2.0 / D_o + 1.0 / (6.0 * D_in)), rel=1e-10)
        aL = r.alpha * r.const_L
        close(g[g.property == "bias lemma"].bound, aL * s / math.sqrt(D_in))              # §3
        close(g[g.property == "MAML bias"].bound, (1 + aL) * aL * s / math.sqrt(D_in))    # §4
        stated = dict(zip(g.constant, g.stated))
        for name, value in (("(7): 2‖∇F‖²", 2), ("(7): 0.08σ̃²/D_in", 0.08), ("(8): 40‖∇F‖²", 40), ("(8): 14σ²", 14),
                            ("(8): 2σ̃²/D_o", 2), ("(8): σ̃²/(6D_in)", 1 / 6), ("smoothness: 4L", 4),
                            ("step size: 0.8/L(w)", 0.8), ("step size: 3.125/L(w)²", 3.125)):
            assert stated.get(name, value) == pytest.approx(value, rel=REL), name


def test_slack_ratios_holds_and_claims_follow_from_measured_bound_and_allowance():
    t = table("slack")
    up = t.kind == "upper"
    single = t.groupby(["draw", "property", "task"], dropna=False).constant.transform("size") == 1
    whole = t.constant.str.endswith("whole bound") | single
    w = t[whole & (t.measured > 0)]
    expect = np.where(w.kind == "upper", w.bound / w.measured, w.measured / w.bound)
    # a lone term whose needed constant is below 1e-9 of the stated one says nothing: ∞ (Check.term_slack)
    lone = ~w.constant.str.endswith("whole bound") & (w.kind == "upper") & (w.measured <= 1e-9 * w.bound)
    expect = np.where(lone, np.inf, expect)
    close(w.ratio, expect, rel=1e-9)
    # a term's ratio: the constant that would have sufficed with the others as stated,
    # needed = (measured − (bound − value))/(value/stated), for the terms of (7), (8)
    for draw, g in t.groupby("draw"):
        r = g.iloc[0]
        s, sig, D_in, D_o = r.const_sigma_tilde, r.const_sigma, r.D_in, r.D_o
        g2 = (g[g.property == "(7)"].bound.iloc[0] - 0.08 * s ** 2 / D_in) / 2.0
        values = {"(7): 2‖∇F‖²": 2 * g2, "(7): 0.08σ̃²/D_in": 0.08 * s ** 2 / D_in, "(8): 40‖∇F‖²": 40 * g2,
                  "(8): 14σ²": 14 * sig ** 2, "(8): 2σ̃²/D_o": 2 * s ** 2 / D_o, "(8): σ̃²/(6D_in)": s ** 2 / (6 * D_in)}
        terms = g[g.constant.isin(values)]
        assert len(terms) >= 2                       # at least (7)'s and (8)'s ‖∇F‖² terms
        for x in terms.itertuples():
            v = values[x.constant]
            needed = (x.measured - (x.bound - v)) / (v / x.stated)
            close(x.needed, needed, rel=1e-9, atol=1e-9 * x.stated)
            close(x.ratio, x.stated / needed if needed > 1e-9 * x.stated else np.inf, rel=1e-9)
    ok = np.where(up, t.measured <= t.bound + t.allowance, t.measured >= t.bound - t.allowance)
    assert (t.holds.astype(bool).to_numpy() == ok).all()
    s = _module("slack")
    for c in s.claims(t):
        g = t[t.constant == c.statement.split(" (stated")[0]]
        assert c.measured == g[~g.holds.astype(bool)].draw.nunique()
        assert c.verdict == ("holds" if c.measured == 0 else "violated")
