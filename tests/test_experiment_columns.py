"""Every registered experiment's table, recomputed column by column.

The experiment tests (``test_experiments_*``) check what each experiment
*claims*; this module checks what its table *says*.  For every experiment of
the registry it computes the ``tiny`` cells (``module.compute(cell)``, the
cells ``tests/experiment_tables.tiny_table`` concatenates; a few expensive
cells are left out, each with its reason in ``CELLS``) and checks, from the
table, the family's certified constants and THEORY.md alone:

* **formulas**: every bound or theoretical column equals its formula written
  out here from its citation (explainer equation or THEORY.md section), not
  by calling the helper the experiment calls; literature constants are
  written as the numbers THEORY.md states (1600, 61, 14, 36, 20, 4, 2, ...);
  to rounding (``REL``);
* **bookkeeping**: every measured column that follows from other columns of
  the same table (first hits, seed averages, ratios, verdicts, claims) does so
  exactly; ``Δ = E F(w_0) − inf_f_lower()`` is recomputed from ``w_0``
  (redrawn here from the experiment's documented seed roots) with ``F``
  written as the task sum of (1);
* **directions**: where the theory guarantees an inequality (a lower bound by
  zero-respecting steps, (14) inside the theorem, the lemma bounds on exact
  quantities, ``L̃ ≥ 4L``), the table respects it.

No assertion here is statistical except the two Monte Carlo directions of
``multistep_alpha`` (thresholds derived in their test, false-alarm rate
≤ 1e-6 each); everything else is an identity or a guaranteed inequality, so
the module passes for any ``MAMLCHECK_TEST_ROOT``.
"""
from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mamlcheck.experiments import registry
from mamlcheck.problems import make_family
from mamlcheck.problems.hard_chain import HardChain

#: relative tolerance of "equals its formula": float64 rounding of a few operations
REL = 1e-12
#: the same, where the two sides take different float paths through a sum of many
#: terms (a closed form against a task sum, an eigen-decomposition)
REL_PATH = 1e-10

# --- which tiny cells each experiment is checked on ---------------------------------------
#: experiment NAME -> (cell filter, why cells are left out).  Every registered
#: experiment must be here or in SKIPPED (test below).
CELLS = {
    "rate_hard_chain": (lambda p: p["algorithm"] == "exact",
                        "the stochastic-MAML cell (0.6 s) retraces the exact one on the one-task chain; "
                        "test_experiments_rate checks that it does"),
    "rate_benign": (lambda p: p["family"] == "cosine-quadratic",
                    "robust-regression's cell has the same columns and costs 0.5 s more"),
    "noise_floor": (lambda p: True, ""),
    "bias_din": (lambda p: True, ""),
    "maml_variants": (lambda p: p["spread"] > 0,
                      "the spread-0 cells repeat the same formulas at σ(w*) = 0"),
    "step_sizes": (lambda p: True, ""),
    "local_smoothness": (lambda p: p["source"] == "random",
                         "the trajectory cells have the same columns, at adaptive-MAML iterates"),
    "multistep_alpha": (lambda p: p["kind"] != "runs",
                        "the runs cell (2 s) has only run bookkeeping; test_experiments_multistep_alpha "
                        "checks its claims"),
    "multistep_rate": (lambda p: (p["part"] == "chain" and p["N"] == 1)
                       or (p["part"] == "benign" and p["family"] == "robust-regression"
                           and (p["series"], p["N"]) in (("exact", 1), ("maml", 2))),
                       "one benign run per series (exact at N = 1 where (14) applies, MAML at N = 2 "
                       "where (D2) sets the step) and the cheapest chain run cover every column; "
                       "the other 12 cells take 4.5 s"),
    "multistep_cost": (lambda p: True, ""),
    "mlp_sinusoid": (lambda p: p["part"] == "runs",
                     "the ledger cell (1.2 s) is the proof ledger's table, checked on proof_ledger; "
                     "the FO-/HF-MAML cells have only the columns of the runs"),
    "proof_ledger": (lambda p: True, ""),
    "slack": (lambda p: True, ""),
}
#: experiment NAME -> why its table is not checked here
SKIPPED: dict[str, str] = {}


@functools.lru_cache(maxsize=None)
def _module(name: str):
    return registry.get(name)


@functools.lru_cache(maxsize=None)
def _table(name: str) -> pd.DataFrame:
    """The experiment's table on its selected tiny cells (computed once per session)."""
    m = _module(name)
    keep, _ = CELLS[name]
    cells = [p for p in m.cells("tiny") if keep(p)]
    assert cells, f"{name}: no tiny cell left by the filter of CELLS"
    return pd.concat([m.compute(p) for p in cells], ignore_index=True)


def table(name: str) -> pd.DataFrame:
    return _table(name).copy()


@functools.lru_cache(maxsize=None)
def _all_claims(name: str) -> tuple:
    return tuple(_module(name).claims(table(name)))


def _claims(name: str, t: pd.DataFrame, text: str) -> list:
    """The experiment's claims on ``t`` (its selected table) whose statement contains ``text``."""
    assert t.equals(_table(name)), "claims are read from the experiment's own table"
    found = [c for c in _all_claims(name) if text in c.statement]
    assert found, f"{name}: no claim with {text!r}"
    return found


def close(actual, expected, rel=REL, atol=0.0, what=""):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rel, atol=atol,
                               err_msg=what)


def _k(s: pd.Series) -> np.ndarray:
    """First hits as floats (NaN: not reached)."""
    return pd.to_numeric(s, errors="coerce").astype(float).to_numpy()


# --- the theory written out (THEORY.md §1-§9), independently of theory/ ----------------------
def F_tasks(fam, w, alpha: float, N: int = 1):
    """(1) and §9: ``F_N(w) = Σ_i p_i f_i(u_i^N)``, ``u^{j+1} = u^j − α∇f_i(u^j)``, task by task."""
    w = np.asarray(w, float)
    out = 0.0
    for i in range(fam.M):
        u = w
        for _ in range(N):
            u = u - alpha * fam.grad(u, i)
        out = out + fam.p[i] * fam.loss(u, i)
    return out


def grad_F_tasks(fam, w, alpha: float, N: int = 1):
    """(5) and §9 (D0): ``∇F_N(w) = Σ_i p_i A^0⋯A^{N−1}∇f_i(u^N)``, ``A^j = I − α∇²f_i(u^j)``,
    with full Hessians (the code uses Hessian-vector products or closed forms)."""
    w = np.asarray(w, float)
    out = np.zeros_like(w)
    for i in range(fam.M):
        us = [w]
        for _ in range(N):
            us.append(us[-1] - alpha * fam.grad(us[-1], i))
        v = fam.grad(us[-1], i)
        for u in reversed(us[:-1]):
            v = v - alpha * np.einsum("...ij,...j->...i", fam.hess(u, i), v)
        out = out + fam.p[i] * v
    return out


def mean_task_grad(fam, w):
    """``E_i‖∇f_i(w)‖ = Σ_i p_i ‖∇f_i(w)‖``."""
    w = np.asarray(w, float)
    return sum(fam.p[i] * np.linalg.norm(fam.grad(w, i), axis=-1) for i in range(fam.M))


def L_local(L, rho, alpha, m):
    """THEORY.md §3, smoothness lemma: ``L(w) = 4L + 2ρα E_i‖∇f_i(w)‖``."""
    return 4.0 * L + 2.0 * rho * alpha * np.asarray(m, float)


def L_N(L, rho, alpha, N, m):
    """THEORY.md §9 (D2): ``q^{2N}L + (ρ/L)q^{2N−1}(q^N − 1)m``, ``q = 1 + αL``."""
    q = 1.0 + alpha * L
    return q ** (2 * N) * L + (rho / L) * q ** (2 * N - 1) * (q ** N - 1.0) * np.asarray(m, float)


def rate14(eps, Delta, L, rho, alpha, sigma):
    """(14): ``1600Δ(L + ρα(σ + ε))/ε²``."""
    eps = np.asarray(eps, float)
    return 1600.0 * Delta * (L + rho * alpha * (sigma + eps)) / eps ** 2


def floor_of(algorithm, L, rho, sigma, sigma_tilde, alpha, B, D_in, D_o):
    """THEORY.md §4-§6: ``max{√(a(1 + ρασ/L)S), a(ρα/L)S}`` with ``S = σ²/B + σ̃²/(B·D_o) + σ̃²/D_in``;
    a = 61 (MAML), 36 (HF-MAML: 6√(..)), 14 with ``S′ = S + 20α²L²σ²`` (FO-MAML); 0 for exact gradients."""
    if algorithm == "exact":
        return 0.0
    S = sigma ** 2 / B + sigma_tilde ** 2 / (B * D_o) + sigma_tilde ** 2 / D_in
    if algorithm == "fomaml":
        S = S + 20.0 * (alpha * L * sigma) ** 2
    a = {"maml": 61.0, "hfmaml": 36.0, "fomaml": 14.0}[algorithm]
    return max(math.sqrt(a * (1 + rho * alpha * sigma / L) * S), a * (rho * alpha / L) * S)


def D_h_least(algorithm, alpha, sigma_H, N=1):
    """The Hessian batch of the theorems: ``⌈2α²σ_H²⌉`` (§4), ``⌈36(ασ_H)²⌉`` (§6),
    ``⌈2Nα²σ_H²⌉`` (§9); at least 1; FO-MAML and exact gradients use none (1)."""
    factor = {"maml": 2.0 * N, "hfmaml": 36.0}.get(algorithm, 0.0)
    return max(1, math.ceil(factor * (alpha * sigma_H) ** 2))


def chain_inf(fam: HardChain) -> float:
    """The untilted chain's certified infimum (problems/hard_chain.py, ``inf_f_lower``):
    ``Ψ ≥ 0``, ``Ψ ≤ e``, ``0 < Φ < √(2πe)``, ``Ψ(1) = 1``, so
    ``inf f̄_T ≥ −√(2πe)(1 + (T − 1)e)``, scaled by ``Lλ²/152``, ``λ = 152ε/L``."""
    lam = 152.0 * fam.eps / fam.L
    return -math.sqrt(2 * math.pi * math.e) * (1.0 + (fam.T - 1) * math.e) * fam.L * lam ** 2 / 152.0


def chain_T(eps_prime, Delta, L) -> int:
    """THEORY.md §7: ``T(ε′) = ⌊ΔL/(1824ε′²)⌋`` (1824 = 12·152)."""
    return int(math.floor(Delta * L / (1824.0 * eps_prime ** 2)))


def _constants(fam) -> dict:
    return {k: float(v) for k, v in fam.constants().values().items()}


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
