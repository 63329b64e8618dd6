"""Column checks of the rate experiments (rate_hard_chain, rate_benign, multistep_rate,
mlp_sinusoid) and of the registry's coverage; see ``tests/experiment_columns.py``."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd

from mamlcheck.experiments import registry
from mamlcheck.problems import make_family
from mamlcheck.problems.hard_chain import HardChain
from tests.experiment_columns import (CELLS, COVERED_BY, L_N, REL, REL_PATH, SKIPPED, D_h_least, F_tasks,
                                      L_local, _claims, _constants, _k, _module, chain_inf, chain_T, close,
                                      floor_of, grad_F_tasks, mean_task_grad, rate14, table)


# --- the registry ---------------------------------------------------------------------------
def test_every_registered_experiment_is_checked_here_or_skipped_with_a_reason():
    names = [m.NAME for m in registry.experiments()]
    missing = [n for n in names if n not in CELLS and n not in SKIPPED]
    assert not missing, f"experiments with no column checks here: {missing} (add them to CELLS or SKIPPED)"
    assert all(reason for reason in SKIPPED.values())
    assert not (set(CELLS) | set(SKIPPED)) - set(names), "CELLS or SKIPPED name an unregistered experiment"
    for n in names:
        if n in CELLS:
            left_out = [p for p in _module(n).cells("tiny") if not CELLS[n][0](p)]
            assert not left_out or CELLS[n][1], f"{n}: cells left out without a reason"
    # the tests of each experiment live in one module, the one COVERED_BY names
    assert set(COVERED_BY) == set(CELLS), "COVERED_BY and CELLS name different experiments"
    modules = {m: vars(importlib.import_module(f"tests.{m}")) for m in sorted(set(COVERED_BY.values()))}
    for n, where in COVERED_BY.items():
        holding = [m for m, names in modules.items() if any(k.startswith(f"test_{n}_") for k in names)]
        assert holding == [where], f"{n}: its tests are in {holding}, COVERED_BY says {where}"


# --- rate_hard_chain ------------------------------------------------------------------------
def _chain_family(r) -> HardChain:
    """The chain of a row, built for ``ε′ = ε/(1 − αL)`` with the length of THEORY.md §7."""
    eps_prime = r.eps / (1.0 - r.alpha * r.L)
    return HardChain(eps=eps_prime, Delta=r.Delta, L=r.L, T=chain_T(eps_prime, r.Delta, r.L))


def test_rate_hard_chain_is_built_for_eps_prime_and_its_lower_bound_is_floor_T_of_eps_prime_over_2():
    t = table("rate_hard_chain")
    for r in t.itertuples():
        close(r.alpha, 1.0 / (6.0 * r.L))                                  # α = 1/(6L)
        close(r.beta, 0.2 / r.L)                                           # β = 1/(5L)
        eps_prime = r.eps / (1.0 - r.alpha * r.L)                          # §7: ε′ = ε/(1 − αL)
        close(r.eps_prime, eps_prime)
        T = chain_T(eps_prime, r.Delta, r.L)
        assert r.T == T
        close(r.Delta * r.L / (1824.0 * eps_prime ** 2), T + 0.5)          # ε in the middle of the floor's step
        assert r.lower == T // 2                                           # ⌊T(ε′)/2⌋


def test_rate_hard_chain_upper_column_is_formula_14_with_delta_from_w0_zero_and_the_chain_s_infimum():
    t = table("rate_hard_chain")
    for r in t.itertuples():
        fam = _chain_family(r)
        c = _constants(fam)
        close([r.L, r.rho, r.sigma], [c["L"], c["rho"], c["sigma"]])
        close(fam.inf_f_lower(), chain_inf(fam))
        F0 = float(F_tasks(fam, np.zeros(fam.d), r.alpha))
        close(r.Delta_bound, F0 - chain_inf(fam), atol=REL * abs(F0))
        # the chain's Δ ≤ 12T·152ε′²/L ≤ the budget (THEORY.md §7; F(0) ≤ f(0) for α ≤ 1/L)
        assert r.Delta_bound <= 12 * r.T * 152 * fam.eps ** 2 / r.L * (1 + REL) <= r.Delta * (1 + REL)
        close(r.upper, rate14(r.eps, r.Delta_bound, r.L, r.rho, r.alpha, r.sigma))


def test_rate_hard_chain_measured_iterations_respect_the_zero_respecting_lower_bound():
    t = table("rate_hard_chain")
    k = _k(t.first_k)
    assert np.all(np.isfinite(k))
    assert np.all(k >= t.lower.to_numpy(float))                        # zero-respecting: any step size (§7)
    assert np.all(t.upper >= t.lower)
    # one deterministic seed: the seed band is the measurement
    close(t.first_k_seed_min.astype(float), k)
    close(t.first_k_seed_max.astype(float), k)
    # β·L(w_k) with L(w) = 4L + 2ρα‖∇f‖ ≥ 4L (§3): the certificate is at least 4βL
    assert np.all(t.beta_L_max >= 4.0 * t.beta * t.L * (1 - REL))


def test_rate_hard_chain_claims_cite_the_table_and_their_verdicts_follow_from_the_numbers():
    t = table("rate_hard_chain")
    for r, c in zip(t.sort_values(["series", "eps"], ascending=[True, False]).itertuples(),
                    _claims("rate_hard_chain", t, "lower bound ⌊T(ε′)/2⌋ ≤ measured ≤ (14)")):
        assert (c.measured, c.bound_lo, c.bound) == (int(r.first_k), float(r.lower), float(r.upper))
        assert c.verdict == ("holds" if r.lower <= r.first_k <= r.upper else "violated")
    k = _k(t.first_k)
    (up,) = _claims("rate_hard_chain", t, "upper bound (14) / measured")
    close(up.measured, np.min(t.upper / k))
    assert up.verdict == ("holds" if up.measured >= 1 else "violated")
    (lo,) = _claims("rate_hard_chain", t, "lower bound ⌊T(ε′)/2⌋ / measured")
    close(lo.measured, np.max(t.lower / k))
    (cert,) = _claims("rate_hard_chain", t, "constant β ≤ 1/L(w_k)")
    assert cert.measured == t.beta_L_max.max() and cert.bound == 1.0
    assert cert.verdict == ("holds" if cert.measured <= 1 else "violated")


# --- rate_benign ----------------------------------------------------------------------------
def _benign_w0(root: int, d: int, seeds: int) -> np.ndarray:
    """``w_0 ~ N(0, I)`` per seed from ``default_rng((root, seed))`` (rate_benign, multistep_rate docstrings)."""
    return np.stack([np.random.default_rng((root, s)).standard_normal(d) for s in range(seeds)])


def _cosine_inf_bracket(fam) -> tuple[float, float, float]:
    """``m = Σ_i p_i Σ_j min_x h_ij(x)``, ``h = ½a(x − c)² + γcos(ωx)`` on ``|x − c| ≤ 2√(γ/a)``
    (the coordinatewise minorant of cosine-quadratic's docstring), bracketed by a fine
    grid: ``lo ≤ m ≤ hi`` (its minimum, lowered by its Lipschitz step ``(ar + γω)δ/2``),
    and the docstring's own allowance for its grid of 4001 points."""
    a = (fam.A if fam.diagonal else np.full(fam.d, fam.eig[0]))[None, :, None]
    r = 2.0 * np.sqrt(fam.gamma / a)
    t = np.linspace(-1.0, 1.0, 20001)
    x = fam.c[:, :, None] + r * t
    h = (0.5 * a * (x - fam.c[:, :, None]) ** 2 + fam.gamma * np.cos(fam.omega * x)).min(-1)
    lip = np.broadcast_to((a * r + fam.gamma * fam.omega)[..., 0], h.shape)
    fine, coarse = (lip * r[..., 0] * (t[1] - t[0]) / 2, lip * r[..., 0] * (2.0 / 4000) / 2)
    return float(fam.p @ (h - fine).sum(-1)), float(fam.p @ h.sum(-1)), float(fam.p @ coarse.sum(-1))


def test_rate_benign_delta_is_the_seed_mean_of_F_at_w0_minus_a_certified_infimum():
    t = table("rate_benign")
    for fam_name, sub in t.groupby("family"):
        fam = make_family(fam_name, **json.loads(sub.family_params.iloc[0]))
        r = sub.iloc[0]
        w0 = _benign_w0(20200, fam.d, int(r.seeds))                 # rate_benign.W0_ROOT
        F0 = float(np.mean(F_tasks(fam, w0, r.alpha)))
        inf = fam.inf_f_lower()
        if fam_name == "cosine-quadratic":
            lo, hi, allowance = _cosine_inf_bracket(fam)
            # certified (≤ the minorant's minimum) and within the docstring's grid allowance of it
            assert lo - allowance - 1e-12 <= inf <= hi
        else:
            assert inf == 0.0                                        # robust-regression: φ ≥ 0
        close(sub.Delta_bound, F0 - inf, atol=REL_PATH * abs(F0))


def test_rate_benign_upper_column_is_formula_14_on_the_table_s_constants():
    t = table("rate_benign")
    for fam_name, sub in t.groupby("family"):
        c = _constants(make_family(fam_name, **json.loads(sub.family_params.iloc[0])))
        close(sub[["L", "rho", "sigma"]].to_numpy(), np.broadcast_to([c["L"], c["rho"], c["sigma"]], (len(sub), 3)))
        close(sub.alpha, 1.0 / (6.0 * c["L"]))
        close(sub.upper, rate14(sub.eps, sub.Delta_bound, sub.L, sub.rho, sub.alpha, sub.sigma))
        assert (sub.conditions_broken == "none").all()            # exact MAML at α = 1/(6L), β_k = 1/(12L(w_k))


def _first_hit_bookkeeping(sub: pd.DataFrame, avg_kind: str = "seed average") -> None:
    """First hits of one run: each non-decreasing as ε shrinks (a norm at or below a smaller
    ε is at or below a larger one); the seed average's no earlier than the earliest seed's
    (a mean ≤ ε needs one seed ≤ ε at that k)."""
    seeds = sub[sub.kind == "seed"]
    for _, g in seeds.groupby("seed"):
        k = _k(g.sort_values("eps", ascending=False).first_k)
        k = k[np.isfinite(k)]
        assert np.all(np.diff(k) >= 0)
    avg = sub[sub.kind == avg_kind].sort_values("eps", ascending=False)
    ka = _k(avg.first_k)
    assert np.all(np.diff(ka[np.isfinite(ka)]) >= 0)
    earliest = seeds.assign(k=_k(seeds.first_k)).groupby("eps").k.min()
    for e, k in zip(avg.eps, ka):
        if np.isfinite(k):
            assert earliest[e] <= k


def test_rate_benign_first_hits_are_monotone_in_eps_and_the_seed_average_hits_after_the_first_seed():
    t = table("rate_benign")
    for _, sub in t.groupby("family"):
        assert len(sub[sub.kind == "seed"]) == sub.seeds.iloc[0] * sub[sub.kind == "seed average"].eps.nunique()
        _first_hit_bookkeeping(sub)


def test_rate_benign_seed_average_reaches_every_eps_within_formula_14_inside_the_theorem():
    t = table("rate_benign")
    avg = t[(t.kind == "seed average") & (t.conditions_broken == "none")]
    k = _k(avg.first_k)
    assert np.all(np.isfinite(k)) and np.all(k <= avg.upper)


def test_rate_benign_ratio_claim_is_the_smallest_formula_14_over_measured():
    t = table("rate_benign")
    for fam_name, sub in t.groupby("family"):
        avg = sub[sub.kind == "seed average"]
        (c,) = _claims("rate_benign", t, f"{fam_name}: measured ≤ (14)")
        close(c.measured, np.min(avg.upper / _k(avg.first_k)))
        assert c.bound == 1.0 and c.verdict == ("holds" if c.lo >= 1 else "violated")


# --- multistep_rate -------------------------------------------------------------------------
def test_multistep_rate_delta_is_the_seed_mean_of_F_N_at_w0_minus_the_certified_infimum():
    t = table("multistep_rate")
    for (fam_name, series, N), g in t[t.part == "benign"].groupby(["family", "series", "N"]):
        fam = make_family(fam_name, **json.loads(g.family_params.iloc[0]))
        w0 = _benign_w0(20290, fam.d, int(g.seeds.iloc[0]))              # multistep_rate.W0_ROOT
        F0 = float(np.mean(F_tasks(fam, w0, g.alpha.iloc[0], int(N))))
        close(g.Delta, F0 - fam.inf_f_lower(), atol=REL * abs(F0))
        m0 = mean_task_grad(fam, w0)
        L, rho, a = g.L.iloc[0], g.rho.iloc[0], g.alpha.iloc[0]
        L0 = L_local(L, rho, a, m0) if N == 1 else L_N(L, rho, a, int(N), m0)   # §3 at N = 1, (D2) beyond
        close(g.L_w0, L0.max(), rel=REL_PATH)
        if series == "exact":                                # L̄ ≥ the exact L at the start: k = 0 is in the max
            seeds = g[g.kind == "seed"]
            assert (seeds.L_bar >= L0[seeds.seed.astype(int)] * (1 - REL_PATH)).all()
            assert (g[g.kind == "seed average"].L_bar >= L0.max() * (1 - REL_PATH)).all()
    ch = t[t.part == "chain"]
    for r in ch.itertuples():
        eps_prime = r.eps / (1 - r.alpha * r.L) ** r.N                     # §9 (D7)
        fam = HardChain(eps=eps_prime, Delta=1.0, L=r.L, T=chain_T(eps_prime, 1.0, r.L))
        F0 = float(F_tasks(fam, np.zeros(fam.d), r.alpha, r.N))
        close(r.Delta, F0 - chain_inf(fam), atol=REL * abs(F0))
        m0 = mean_task_grad(fam, np.zeros(fam.d))
        close(r.L_w0, L_local(r.L, r.rho, r.alpha, m0) if r.N == 1 else L_N(r.L, r.rho, r.alpha, r.N, m0))


def test_multistep_rate_order_sufficing_constant_upper14_and_floor14_are_their_formulas():
    t = table("multistep_rate")
    close(t.order, t.Delta * t.L_bar / t.eps ** 2)                               # Δ·L̄/ε² (§9)
    close(t.C_suff, _k(t.first_k) / t.order)
    b = t[t.part == "benign"]
    for (fam_name, series, N), g in b.groupby(["family", "series", "N"]):
        c = _constants(make_family(fam_name, **json.loads(g.family_params.iloc[0])))
        close(g[["L", "rho", "sigma"]].to_numpy(), np.broadcast_to([c["L"], c["rho"], c["sigma"]], (len(g), 3)))
        B = 20 if series == "maml" else 1
        close(g.floor14, floor_of(series, c["L"], c["rho"], c["sigma"], c["sigma_tilde"], g.alpha.iloc[0], B, 1, 1))
        if N == 1:
            close(g.upper14, rate14(g.eps, g.Delta, g.L, g.rho, g.alpha, g.sigma))
        else:
            assert g.upper14.isna().all()


def test_multistep_rate_configuration_is_the_N_step_theorem_s():
    t = table("multistep_rate")
    close(t.alpha, 1.0 / (6.0 * t.N * t.L))
    close(t.alpha_NL, 1.0 / 6.0)
    b = t[t.part == "benign"]
    assert (b.conditions_broken == "none").all() and (b.step_c == 12).all()
    m = b[b.series == "maml"]
    assert (m.B == 20).all() and (m.calls_per_task == 2 * m.N + 1).all()            # §9: 2N + 1 per task
    assert (m.D_h == [D_h_least("maml", a, s, n) for a, s, n in
                      zip(m.alpha, [_constants(make_family(f, **json.loads(p)))["sigma_H"]
                                    for f, p in zip(m.family, m.family_params)], m.N)]).all()
    assert (b[b.N == 1].theorem.str.startswith("MAML theorem")).all()
    assert (b[b.N > 1].theorem == "multi-step MAML theorem").all()
    ch = t[t.part == "chain"]
    assert (ch.conditions_broken == "step_rule").all() and (ch.beta_mean == 0.5 / ch.L).all()


def test_multistep_rate_steps_never_exceed_one_over_c_times_the_least_smoothness():
    t = table("multistep_rate")
    b = t[t.part == "benign"]
    q = 1 + b.alpha * b.L
    least = pd.Series(np.where(b.N == 1, 4 * b.L, q ** (2 * b.N) * b.L), index=b.index)  # §3: ≥ 4L; (D2): ≥ q^{2N}L
    assert (b.L_bar >= least * (1 - REL)).all()
    bm = b.beta_mean.dropna()
    assert len(bm) and (bm <= 1.0 / (12 * least[bm.index]) * (1 + REL)).all()


def test_multistep_rate_first_hits_are_monotone_in_eps_and_the_seed_average_hits_after_the_first_seed():
    t = table("multistep_rate")
    for _, g in t[t.part == "benign"].groupby(["family", "series", "N"]):
        assert len(g[g.kind == "seed"]) == g.seeds.iloc[0] * g[g.kind == "seed average"].eps.nunique()
        _first_hit_bookkeeping(g)


def test_multistep_rate_at_N_1_the_exact_series_reaches_every_eps_within_formula_14():
    t = table("multistep_rate")
    one = t[(t.part == "benign") & (t.N == 1) & (t.kind == "seed average") & (t.conditions_broken == "none")
            & (t.eps >= t.floor14)]
    assert len(one)
    k = _k(one.first_k)
    assert np.all(np.isfinite(k)) and np.all(k <= one.upper14)
    for c in _claims("multistep_rate", t, "at N = 1 the first k"):
        g = one[one.series == ("exact" if "exact gradients" in c.statement else "maml")]
        close(c.measured, np.max(_k(g.first_k) / g.upper14))


def test_multistep_rate_chain_row_is_built_for_eps_prime_with_lower_bound_floor_T_over_N_plus_1():
    t = table("multistep_rate")
    for r in t[t.part == "chain"].itertuples():
        eps_prime = r.eps / (1 - r.alpha * r.L) ** r.N
        close(r.eps_prime, eps_prime)
        T = chain_T(eps_prime, 1.0, r.L)
        assert r.T == T and r.lower == T // (r.N + 1)
        close(1.0 * r.L / (1824.0 * eps_prime ** 2), T + 0.5)
        assert r.first_k >= r.lower                                          # zero-respecting (§9 (D7))
        q = 1 + r.alpha * r.L
        close(r.L_bar * r.beta_mean, r.beta_L_max)                             # L̄ is the certificate's L_N
        assert r.beta_L_max >= r.beta_mean * q ** (2 * r.N) * r.L * (1 - REL)
    for c in _claims("multistep_rate", t, "≥ ⌊T(ε′)/(N+1)⌋"):
        r = t[(t.part == "chain") & (t["T"] == c.context["T"]) & (t.N == c.context["N"])].iloc[0]
        assert (c.measured, c.bound) == (float(r.first_k), float(r.lower))
        assert c.verdict == ("holds" if r.first_k >= r.lower else "violated")


def test_multistep_rate_sufficing_constant_claims_cite_the_largest_seed_average_value():
    t = table("multistep_rate")
    for c in _claims("multistep_rate", t, "the constant that sufficed"):
        avg = t[t.kind == "seed average"]
        if c.context["series"].startswith("hard chain"):
            g = avg[avg.part == "chain"]
        else:
            fam, label = c.context["series"].split(", ", 1)
            g = avg[(avg.family == fam) & (avg.series == ("exact" if label.startswith("exact") else "maml"))]
        close(c.measured, g.C_suff.max())
        assert c.bound == 1600


# --- mlp_sinusoid ---------------------------------------------------------------------------
def _mlp_family(t):
    return make_family(_module("mlp_sinusoid").FAMILY, **json.loads(t.family_params.iloc[0]))


def test_mlp_sinusoid_delta_alpha_and_step_are_the_configuration_s_at_the_ball_centre():
    t = table("mlp_sinusoid")
    fam = _mlp_family(t)
    c = _constants(fam)
    centre, radius = fam.certificate_ball()
    close(t.radius, radius)
    for cfg, g in t.groupby("config"):
        a = 1.0 / (6.0 * c["L"]) if cfg == "theorem" else 0.01                  # α = 1/(6L); Finn et al.'s 0.01
        close(g.alpha, a)
        close(g[["L", "rho", "sigma", "sigma_tilde", "sigma_H"]].to_numpy(),
              np.broadcast_to([c[k] for k in ("L", "rho", "sigma", "sigma_tilde", "sigma_H")], (len(g), 5)))
        F0 = float(F_tasks(fam, centre, a))
        close(g.Delta, F0 - 0.0, atol=REL * abs(F0))                          # inf_f_lower = 0: ½r² ≥ 0
        start = g[g.k == 0]
        assert (start.distance == 0).all()                                     # w_0 = w_c
        close(start.grad_norm, np.linalg.norm(grad_F_tasks(fam, centre, a)), rel=REL_PATH)
        H = [np.linalg.norm(fam.hess(centre, i), 2) for i in range(fam.M)]
        close(start.local_L, max(H), rel=REL_PATH)
        beta = g.beta.dropna()
        if cfg == "theorem":
            assert (beta <= 1.0 / (48.0 * c["L"]) * (1 + REL)).all()           # β_k = 1/(12L̃), L̃ ≥ 4L
            assert (g.B == 20).all()
        else:
            assert (beta == 0.01).all()
        s = int(_module("mlp_sinusoid").SCALES["tiny"].stride)
        assert g.local_L.notna().to_numpy().tolist() == (g.k % s == 0).tolist()


def test_mlp_sinusoid_local_constants_inside_the_ball_stay_below_the_certified_ones():
    t = table("mlp_sinusoid")
    s = int(_module("mlp_sinusoid").SCALES["tiny"].stride)
    for _, g in t.groupby(["config", "seed"]):
        g = g.set_index("k")
        inside = g.distance <= g.radius
        assert (g.local_L[inside].dropna() <= g.L[inside][g.local_L[inside].notna()]).all()
        ratio = g.rho_ratio.dropna()
        both = [k for k in ratio.index if inside[k] and inside[k - s]]      # the segment lies in the (convex) ball
        assert (ratio[both] <= g.rho[both]).all()


def test_mlp_sinusoid_14_claims_use_the_table_s_delta_and_the_first_seed_average_hit():
    t = table("mlp_sinusoid")
    for cfg, g in t.groupby("config"):
        r = g.iloc[0]
        curve = g.groupby("k").grad_norm.mean()
        label = "the theorem" if cfg == "theorem" else "practice"
        cs = [c for c in _claims("mlp_sinusoid", t, "against (14) with the ball constants") if label in c.statement]
        eps = json.loads(r.eps_grid)
        assert [c.context["eps"] for c in cs] == eps
        for c, e in zip(cs, eps):
            hit = curve.index[curve <= e]
            assert (c.measured == hit[0]) if len(hit) else np.isnan(c.measured)
            close(c.bound, rate14(e, r.Delta, r.L, r.rho, r.alpha, r.sigma))
            held = (g.distance <= g.radius).all()
            assert c.kind == ("upper" if held and cfg == "theorem" and len(hit) else "report")
