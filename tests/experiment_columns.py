"""Every registered experiment's table, recomputed column by column: the shared part
of ``tests/test_columns_*.py``.

The experiment tests (``test_experiments_*``) check what each experiment
*claims*; the ``test_columns_*`` modules check what its table *says*.  For
every experiment of the registry they compute the ``tiny`` cells
(``module.compute(cell)``, the cells ``tests/experiment_tables.tiny_table``
concatenates; a few expensive cells are left out, each with its reason in
``CELLS``) and check, from the table, the family's certified constants and
THEORY.md alone:

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
the modules pass for any ``MAMLCHECK_TEST_ROOT``.

This module holds what they share: which cells each experiment is checked on
(``CELLS``) and which module checks it (``COVERED_BY``), the tables and claims
(each computed once per session, whichever module asks first: the ``lru_cache``
below), the tolerances, and the theory written out.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from mamlcheck.experiments import registry
from mamlcheck.problems.hard_chain import HardChain

#: relative tolerance of "equals its formula": float64 rounding of a few operations
REL = 1e-12
#: the same, where the two sides take different float paths through a sum of many
#: terms (a closed form against a task sum, an eigen-decomposition)
REL_PATH = 1e-10

# --- which tiny cells each experiment is checked on ---------------------------------------
#: experiment NAME -> (cell filter, why cells are left out).  Every registered
#: experiment must be here or in SKIPPED (test_columns_rates.py).
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
#: experiment NAME -> the test module whose ``test_<NAME>_*`` functions check its table
#: (every experiment of CELLS; test_columns_rates.py checks that they are there and only there)
COVERED_BY = {
    **dict.fromkeys(("rate_hard_chain", "rate_benign", "multistep_rate", "mlp_sinusoid"), "test_columns_rates"),
    **dict.fromkeys(("noise_floor", "bias_din", "maml_variants", "step_sizes", "local_smoothness"),
                    "test_columns_noise"),
    **dict.fromkeys(("multistep_alpha", "multistep_cost", "proof_ledger", "slack"), "test_columns_ledger"),
}


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
