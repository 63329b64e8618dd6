"""Multi-step MAML: iterations to ε against the number N of inner steps (THEORY.md §9).

With ``α = c/(NL)`` (D2)–(D6) are bounded uniformly in ``N``: the iterations,
of order ``Δ·L̄/ε²`` (``multistep_iterations_order``, no published constant),
should not grow with ``N``; a step costs ``2N + 1`` calls per task
(``multistep_cost``).  For ``N`` on a grid, at ``α = 1/(6NL)``:

* **Benign families** (small ``cosine-quadratic``, ``robust-regression``) at the
  theorem's steps ``β_k = 1/(12 L_N(w_k))`` (Hyper's default; exact ``L_N`` for
  exact gradients, the estimate ``L̃_N`` on its own ``B′, D_β`` batch for MAML,
  which takes ``B = 20``, ``D_in = D_o = 1``, ``D_h`` from its conditions);
  ``check_conditions`` per run in ``conditions_broken``.  Series ``exact`` (seeds
  differ by ``w_0 ~ N(0, I)``) and ``maml`` (also by their draws): per seed and
  ε the first ``k`` with ``‖∇F_N(w_k)‖ ≤ ε``, per ε that of the seed average.
  MAML's ε are ≥ 2× its plateau (≈ 0.045 cosine, ≈ 0.006 robust, ``N ≥ 2``).
* **The constant that sufficed** ``C = k·ε²/(Δ·L̄)``, ``Δ = E F_N(w_0) −
  inf_f_lower()``, ``L̄ = max_{k<K} 1/(c·β_k)``: the largest smoothness the step
  rule divided by before the hit (``L_bar_source``; ``L_w0``: at ``w_0``), beside
  (14)'s 1600.  At ``N = 1`` also (14) itself, where the first theorem applies
  (ε above its floor: exact gradients only, MAML's floor at ``B = 20`` is above ε).
* **N = 1 has another step rule**: ``4L + 2ραm`` (§3) against (D2)'s ≈ ``1.4L``
  for ``N > 1``, so ``β_k`` is ≈ 2.8× larger from ``N = 2`` on and the iterations
  drop by that factor: growth is fitted over ``N ≥ 2``, the drop reported.
* **The hard chain** (one task) with exact gradients from ``w_0 = 0``: one chain
  of ``T`` coordinates for all ``N`` (``ΔL/(1824ε′²) = T + ½``), run to
  ``ε_N = (1 − αL)^N ε′``; the first ``k`` must be ≥ ``⌊T(ε′)/(N + 1)⌋`` (D7,
  ``chain_lower_bound_iterations``).  The theorem's step needs ≈ 1500 iterations
  per coordinate (``T = 4``: 17 631 at ``N = 1``, ≈ 6 200 for ``N = 2..8``), so
  the chain runs at ``β = 1/(2L)`` for all ``N`` (``full`` adds the theorem's
  step on ``T = 4``): outside the theorem (``step_rule``), with ``β·L_N(w_k) ≤ 1``
  certified by (D2) and ``‖∇f(w_k)‖ ≤ ‖∇F_N(w_k)‖/(1 − αL)^{2N}`` (D7).

Each run is a deterministic function of its cell.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mamlcheck import literature as lit
from mamlcheck.algorithms.estimators import ALGORITHMS
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import local_L
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import make_family
from mamlcheck.problems.hard_chain import HardChain
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck.theory.conditions import broken, check_conditions
from mamlcheck.theory.multistep import multistep_alpha_max, multistep_iterations_order, multistep_smooth_L


__all__ = ["NAME", "TITLE", "Scale", "SCALES", "cells", "compute", "plot", "claims", "theorem_hyper",
           "chain_eps"]

NAME = "multistep_rate"
TITLE = ("Multi-step MAML: iterations to ε against N at α = 1/(6NL), beside Δ·L̄/ε², (14) at N = 1 "
         "and the hard chain's ⌊T(ε′)/(N+1)⌋")

W0_ROOT = 20290                          # root of the per-seed initial points w_0 ~ N(0, I)
B_TASKS = lit.B_MIN                      # stochastic MAML: B = 20 tasks per step (the theorem's minimum)
L_CHAIN = 1.0
DELTA_CHAIN = 1.0                        # the chain's budget Δ (THEORY.md §7)
BETA_CHAIN_L = 0.5                       # the chain's constant step β = 1/(2L)
GROWTH_MAX = 0.25                        # claim: log-log slope of iterations on N at most this (k ∝ N: 1)
BENIGN_BUDGET = {"exact": 20_000, "maml": 3_000}
CHAIN_BUDGET_PER_COORD = {"constant": 400, "theorem": 4_000}

_SMALL = {"cosine-quadratic": {"d": 4, "M": 5, "a_min": 1.0, "a_max": 2.0, "gamma": 0.1},
          "robust-regression": {"d": 3, "M": 4, "N": 20}}
#: ε of the stochastic series, largest first: at least twice its plateau at B = 20 (module docstring)
MAML_EPS = {"cosine-quadratic": (0.3, 0.2, 0.1), "robust-regression": (0.05, 0.03, 0.02)}
SERIES = {"exact": "exact gradients, β_k = 1/(12 L_N(w_k))",
          "maml": f"MAML (B = {B_TASKS}), β_k = 1/(12 L̃_N(w_k))",
          "chain-constant": "hard chain, exact gradients, β = 1/(2L)",
          "chain-theorem": "hard chain, exact gradients, β_k = 1/(12 L_N(w_k))"}


class Scale(NamedTuple):
    """One scale: benign seeds and N grid, exact ε exponents (hi, lo, count), how many
    ``MAML_EPS``, chain lengths and their N grid, chain lengths at the theorem's step."""

    seeds: Any
    inner_steps: Any
    eps_exponents: Any
    maml_eps: Any
    chain_T: Any
    chain_inner_steps: Any
    chain_theorem_T: Any


SCALES = {
    "tiny": Scale(seeds=4, inner_steps=(1, 2, 4), eps_exponents=(-2, -2.5, 2), maml_eps=3, chain_T=(2,),
                  chain_inner_steps=(1, 2, 3), chain_theorem_T=()),
    "quick": Scale(seeds=6, inner_steps=(1, 2, 4), eps_exponents=(-2, -4, 3), maml_eps=3, chain_T=(5,),
                   chain_inner_steps=(1, 2, 4), chain_theorem_T=()),
    "default": Scale(seeds=6, inner_steps=(1, 2, 3, 5, 8), eps_exponents=(-2, -6, 5), maml_eps=3, chain_T=(9,),
                     chain_inner_steps=(1, 2, 4, 8), chain_theorem_T=()),
    "full": Scale(seeds=16, inner_steps=(1, 2, 3, 4, 6, 8, 12, 16), eps_exponents=(-2, -7, 6), maml_eps=3,
                  chain_T=(9, 20), chain_inner_steps=(1, 2, 3, 4, 6, 8, 12, 16), chain_theorem_T=(4,)),
}


# --- cells ------------------------------------------------------------------------
def cells(scale: str) -> list[dict]:
    """One cell per run: (benign family, series, N) and (chain length, step rule, N)."""
    s = SCALES[scale]
    hi, lo, n = s.eps_exponents
    eps = {"exact": lambda fam: np.logspace(hi, lo, n).tolist(), "maml": lambda fam: list(MAML_EPS[fam][:s.maml_eps])}
    out = [{"part": "benign", "family": fam, "family_params": fp, "series": series, "N": int(N), "seeds": s.seeds,
            "eps": eps[series](fam), "budget": BENIGN_BUDGET[series]}
           for fam, fp in _SMALL.items() for series in ("exact", "maml") for N in s.inner_steps]
    return out + [{"part": "chain", "series": f"chain-{rule}", "rule": rule, "T": int(T), "N": int(N),
                   "Delta": DELTA_CHAIN, "L": L_CHAIN, "beta_L": BETA_CHAIN_L if rule == "constant" else None,
                   "budget": CHAIN_BUDGET_PER_COORD[rule] * (int(T) + 2)}
                  for rule, lengths in (("constant", s.chain_T), ("theorem", s.chain_theorem_T))
                  for T in lengths for N in s.chain_inner_steps]


# --- helpers ------------------------------------------------------------------------
def theorem_hyper(constants, algorithm: str, alpha: float, N: int, B: int = B_TASKS, **kw) -> Hyper:
    """Hyper's default step rule (``kw`` passed on, e.g. ``step_c``); when stochastic, ``B``
    tasks and the ``D_h`` the theorem's conditions require (``check_conditions``; else 1)."""
    if ALGORITHMS[algorithm].exact:
        return Hyper(algorithm, alpha=alpha, inner_steps=N, **kw)
    h = Hyper(algorithm, alpha=alpha, inner_steps=N, B=B, **kw)
    need = {c.name: c.required for c in check_conditions(constants, h)}
    return Hyper(algorithm, alpha=alpha, inner_steps=N, B=B, D_h=int(need.get("D_h_min", 1)), **kw)


def chain_eps(T: int, N: int, alpha: float, Delta: float = DELTA_CHAIN, L: float = L_CHAIN) -> tuple[float, float]:
    """``(ε, ε′)``: ``ΔL/(1824ε′²) = T + ½`` and ``ε = (1 − αL)^N ε′`` (so that
    ``chain_eps_prime(ε) = ε′``); raises unless ``T(ε′) = T``."""
    eps_prime = float(np.sqrt(Delta * L / (lit.CHAIN_T_DEN * (T + 0.5))))
    eps = eps_prime * (1.0 - alpha * L) ** N
    T_got = bounds.chain_T(eps=bounds.chain_eps_prime(eps=eps, alpha=alpha, L=L, N=N), Delta=Delta, L=L)
    if T_got != T:
        raise ValueError(f"no ε found for chain length T = {T} at N = {N} (got T = {T_got})")
    return eps, eps_prime


def _w0(d: int, seeds: int) -> np.ndarray:
    return np.stack([np.random.default_rng((W0_ROOT, s)).standard_normal(d) for s in range(seeds)])


def _step_arrays(res, c: float) -> tuple[np.ndarray, np.ndarray]:
    """From the trace (stride 1): ``1/(c·β_k)`` (what the step rule divided by) and ``β_k``, ``(k, seed)``."""
    beta = res.trace.beta.to_numpy(float).reshape(int(res.trace.k.max()) + 1, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 / (c * beta), beta


def _upto(arr: np.ndarray, K) -> np.ndarray:
    """The rows ``k < K`` (``k = 0`` alone when ``K = 0``; every row when K is NA)."""
    return arr if pd.isna(K) else arr[:max(int(K), 1)]


def _nan(f, x) -> float:
    """``f`` (``np.nanmax``, ``np.nanmean``) of the finite entries of ``x``; NaN if none."""
    x = np.asarray(x, float)
    return float(f(x)) if np.isfinite(x).any() else float("nan")


def _order(eps: np.ndarray, Delta: float, L_bar: np.ndarray) -> np.ndarray:
    """``multistep_iterations_order = Δ·L̄/ε²`` where ``L̄`` is known, NaN elsewhere."""
    out = np.full(eps.shape, np.nan)
    ok = np.isfinite(L_bar) & (L_bar > 0)
    if ok.any() and Delta > 0:
        out[ok] = multistep_iterations_order(eps=eps[ok], Delta=Delta, L_bar=L_bar[ok])
    return out


def _config(consts, hyper, N: int) -> dict:
    """The run's columns shared by both parts: algorithm, step, constants, conditions."""
    v, conds = consts.values(), check_conditions(consts, hyper)
    const = hyper.step == "constant"
    return {"algorithm": hyper.algorithm, "N": N, "alpha": hyper.alpha, "alpha_NL": hyper.alpha * N * v["L"],
            "step": f"constant β = {hyper.beta:g}" if const else f"adaptive, c = {hyper.c:g}",
            "step_c": np.nan if const else hyper.c, "L": v["L"], "rho": v["rho"], "sigma": v["sigma"],
            "D_h": hyper.D_h, "calls_per_task": ALGORITHMS[hyper.algorithm].calls(N),
            "theorem": conds[0].theorem.split(" (")[0], "conditions_broken": ";".join(broken(conds)) or "none"}


# --- compute --------------------------------------------------------------------------
def compute(params: dict) -> pd.DataFrame:
    """One run: a row per seed × ε (``kind = "seed"``) and per ε for the seed average."""
    return _benign(params) if params["part"] == "benign" else _chain(params)


_COLUMNS = ["part", "series", "family", "algorithm", "rule", "N", "kind", "seed", "eps", "first_k", "lower", "T",
            "eps_prime", "order", "C_suff", "L_bar", "L_bar_source", "L_w0", "Delta", "upper14", "floor14",
            "beta_mean", "beta_L_max", "step", "step_c", "alpha", "alpha_NL", "L", "rho", "sigma", "B", "D_h",
            "calls_per_task", "seeds", "budget", "theorem", "conditions_broken", "family_params"]


def _benign(params: dict) -> pd.DataFrame:
    fam = make_family(params["family"], **params["family_params"])
    consts = fam.constants()
    v = consts.values()
    N, series, R = params["N"], params["series"], params["seeds"]
    alpha = multistep_alpha_max(L=v["L"], N=N)
    hyper = theorem_hyper(consts, series, alpha, N)
    w0 = _w0(fam.d, R)
    res = run(fam, hyper, params["eps"], seeds=R, budget=params["budget"], w0=w0, trace_stride=1)
    hyper = res.hyper                                         # B′, D_β resolved to the theorem's minimum
    ell, beta = _step_arrays(res, hyper.c)
    Delta = float(res.Delta)
    rows = []
    for r in res.table.itertuples():
        s = int(r.seed)
        rows.append({"kind": "seed", "seed": s, "eps": r.eps, "first_k": r.first_k,
                     "L_bar": _nan(np.nanmax, _upto(ell[:, s], r.first_k)),
                     "beta_mean": _nan(np.nanmean, _upto(beta[:, s], r.first_k)) if not pd.isna(r.first_k) else np.nan})
    for r in res.mean_table.itertuples():
        rows.append({"kind": "seed average", "seed": pd.NA, "eps": r.eps, "first_k": r.mean_first_k,
                     "L_bar": _nan(np.nanmax, _upto(ell, r.mean_first_k)),
                     "beta_mean": _nan(np.nanmean, _upto(beta, r.mean_first_k)) if not pd.isna(r.mean_first_k) else np.nan})
    out = pd.DataFrame(rows)
    k = out.first_k.astype("Float64").astype(float)
    order = _order(out.eps.to_numpy(float), Delta, out.L_bar.to_numpy(float))
    floor14 = bounds.noise_floor(algorithm=hyper.algorithm, L=v["L"], rho=v["rho"], sigma=v["sigma"],
                                 sigma_tilde=v["sigma_tilde"], alpha=alpha, B=hyper.B, D_in=hyper.D_in, D_o=hyper.D_o)
    upper14 = (np.asarray(bounds.iterations_upper(eps=out.eps.to_numpy(float), Delta=Delta, L=v["L"], rho=v["rho"],
                                                  alpha=alpha, sigma=v["sigma"])) if N == 1 else np.nan)
    source = ("max_{k<K} 1/(c·β_k): "
              + ("exact L(w_k), one-step lemma (§3)" if N == 1 and series == "exact"
                 else "exact L_N(w_k), (D2)" if series == "exact"
                 else "estimate L̃(w_k), one-step lemma (§3)" if N == 1
                 else "estimate L̃_N(w_k), (D2)"))
    out = out.assign(
        part="benign", series=series, family=params["family"], rule="theorem", lower=pd.NA, T=pd.NA,
        eps_prime=np.nan, order=order, C_suff=k.to_numpy() / order, L_bar_source=source,
        L_w0=float(np.max(local_L(fam, w0, alpha, v["L"], v["rho"], inner_steps=N))), Delta=Delta,
        upper14=upper14, floor14=float(floor14), beta_L_max=np.nan,
        B=hyper.B if not ALGORITHMS[hyper.algorithm].exact else pd.NA, seeds=R, budget=params["budget"],
        family_params=json.dumps(params["family_params"], sort_keys=True), **_config(consts, hyper, N))
    return _typed(out)


def _chain(params: dict) -> pd.DataFrame:
    T, N, L, Delta = params["T"], params["N"], params["L"], params["Delta"]
    alpha = multistep_alpha_max(L=L, N=N)
    eps, eps_prime = chain_eps(T, N, alpha, Delta, L)
    fam = HardChain(eps=bounds.chain_eps_prime(eps=eps, alpha=alpha, L=L, N=N), Delta=Delta, L=L)
    if fam.T != T:
        raise ValueError(f"chain built with T = {fam.T}, expected {T}")
    consts = fam.constants()
    v = consts.values()
    constant = params["rule"] == "constant"
    hyper = (Hyper("exact", alpha=alpha, inner_steps=N, step="constant", beta=params["beta_L"] / L) if constant
             else Hyper("exact", alpha=alpha, inner_steps=N))
    res = run(fam, hyper, [eps], seeds=1, budget=params["budget"], trace_stride=0 if constant else 1)
    K = res.mean_table.mean_first_k.iloc[0]
    gF = res.mean_grad_norm[:(res.iterations if pd.isna(K) else int(K)) + 1]
    # ‖∇f(w_k)‖ ≤ ‖∇F_N(w_k)‖/(1 − αL)^{2N} ((D1) twice, one task): (D2) bounds L_N(w_k) from the run
    L_N_max = float(multistep_smooth_L(L=v["L"], rho=v["rho"], alpha=alpha, N=N,
                                       mean_grad_norm=float(np.max(gF)) / (1.0 - alpha * L) ** (2 * N)))
    if constant:
        L_bar, source, beta_mean = L_N_max, "(D2) at the run's largest ‖∇F_N(w_k)‖/(1 − αL)^{2N}", hyper.beta
        beta_L_max = hyper.beta * L_N_max
    else:
        ell, beta = _step_arrays(res, hyper.c)
        L_bar = _nan(np.nanmax, _upto(ell, K))
        source = "max_{k<K} 1/(c·β_k): exact " + ("L(w_k), one-step lemma (§3)" if N == 1 else "L_N(w_k), (D2)")
        beta_mean, beta_L_max = (_nan(np.nanmean, _upto(beta, K)) if not pd.isna(K) else np.nan), 1.0 / hyper.c
    order = float(_order(np.array([eps]), float(res.Delta), np.array([L_bar]))[0])
    row = {"part": "chain", "series": params["series"], "family": "hard-chain", "rule": params["rule"],
           "kind": "seed average", "seed": 0, "eps": eps, "first_k": K, "T": fam.T,
           "lower": bounds.chain_lower_bound_iterations(eps=eps, Delta=Delta, L=L, alpha=alpha, N=N),
           "eps_prime": eps_prime, "order": order, "C_suff": (np.nan if pd.isna(K) else float(K)) / order,
           "L_bar": L_bar, "L_bar_source": source, "Delta": float(res.Delta),
           "L_w0": float(local_L(fam, np.zeros(fam.d), alpha, v["L"], v["rho"], inner_steps=N)),
           "upper14": np.nan, "floor14": np.nan, "beta_mean": beta_mean, "beta_L_max": beta_L_max, "B": pd.NA,
           "seeds": 1, "budget": params["budget"],
           "family_params": json.dumps({"T": fam.T, "Delta": Delta, "L": L, "M": 1}, sort_keys=True),
           **_config(consts, hyper, N)}
    return _typed(pd.DataFrame([row]))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df[_COLUMNS]
    return df.astype({"first_k": "Int64", "lower": "Int64", "T": "Int64", "seed": "Int64", "B": "Int64"})


def claims(table: pd.DataFrame) -> list[Check]:
    """The experiment's claims (``multistep_rate_report.claims``)."""
    from .multistep_rate_report import claims as _claims
    return _claims(table)


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """The experiment's figures (``multistep_rate_report.plot``)."""
    from .multistep_rate_report import plot as _plot
    return _plot(table, outdir)
