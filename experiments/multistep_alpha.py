"""Why the inner step must scale like 1/N: multi-step MAML at fixed α and at α = c/(NL) (THEORY.md §9).

The N-step bounds of ``theory.multistep`` (derived in THEORY.md §9, (D1)–(D7);
the paper's own constants were not recovered) carry factors exponential in
``N`` through ``q = 1 + αL``: the smoothness constant of ``∇F_N`` (D2) grows like
``q^{2N}L`` (its ``ρ``-term like ``q^{3N}``), the bias (D5) of the N-step
estimator like ``q^{2N}`` (``q^N L√V_N``), its second moment (D6) like
``κ_h^N = (q² + α²σ_H²/D_h)^N`` times a bracket that grows too.  With ``α = c/(NL)``
(``c = 1/6``: ``multistep_alpha_max``) ``q^N ≤ e^c`` and all of them are bounded in
``N`` (D3).  Measured here, for ``α`` fixed (``αL = 0.5``; ``full`` adds ``αL = 1``)
and for ``α = c/(NL)``, against ``N``:

* **Smoothness.**  At a reference point and at random points around it, the
  Jacobian of the exact ``∇F_N`` (``algorithms.objective.grad_F``) by central
  differences along every coordinate (``d ≤ 4``: cheaper and surer than power
  iteration), its top eigenvector ``v`` (of the symmetrised matrix), and the
  secant ratio ``‖∇F_N(w + hv) − ∇F_N(w)‖/h`` of that nearby pair, checked
  against ``L_N(w, w + hv)`` of (D2) (``multistep_smooth_L`` with the smaller
  ``E_i‖∇f_i‖`` of the two points) and, at ``α = c/(NL)``, against the
  N-uniform bracket of (D3).
* **Bias and second moment.**  Monte Carlo over ``n`` draws per task of the
  N-step estimator ``G_i^N`` (``algorithms.estimators``, MAML, ``D_in = D_o = D_h
  = 1``) at one point ``w``, with every task of the family (the task draw is
  an exact sum with weights ``p``): ``‖E G^N − ∇F_N‖`` and ``E‖G^N‖²`` with
  ``1 − δ`` intervals (``δ = FALSE_ALARM``, normal approximation): for the bias
  ``‖b̂‖ ± z‖se‖`` with ``z = Φ⁻¹(1 − δ/(2d))`` (Bonferroni over coordinates:
  then ``‖b̂ − b‖ ≤ z‖se‖``), for the second moment ``Ŝ ± Φ⁻¹(1 − δ/2)·se``.
  Against (D5), (D6) (``multistep_bias``, ``multistep_second_moment``, the
  latter at the best Young's ``φ`` per task, ``φ_i = ‖∇f_i(u_i^N)‖/(L√V_N)``:
  any ``φ > 0`` is allowed), and, at ``α = c/(NL)``, the N-uniform form of (D6)
  (``second_moment_uniform``).
* **Iterations.**  MAML (``B = 20`` tasks, unit batches) with the theorem's
  adaptive step ``β_k = 1/(12 L̃_N(w_k))`` (``Hyper``'s default rule) from one
  start near the saddle, seeds in parallel: the first ``k`` with
  ``‖∇F_N(w_k)‖ ≤ ε`` per seed (``algorithms.runner.run``), censored at the
  budget.  The step rule at ``N = 1`` is the one-step lemma's
  ``4L + 2ραE‖∇̃f‖`` (THEORY.md §3), larger than (D2)'s ``q²L + ρα q E‖∇̃f‖``; so
  the iteration slopes are fitted over ``N ≥ N_FIT_MIN = 2`` only, where one
  rule, (D2)'s, sets the step.  The step shrinks with ``L̃_N``, whose ``ρ``-term
  grows like ``q^{3N}`` at fixed α: the slowdown follows the bound used in the
  step rule, not only the curvature actually met (which grows more slowly).

Families:

* ``cosine-quadratic`` with **identical tasks** (``spread = 0``), ``d = 4``,
  ``γω² = 2 > a_min = 0.1`` (nonconvex; ``a_max = 0.5``, ``L = 2.5``, ``ρ = 4``): ``w° = 0`` is a
  stationary point of every task with Hessian ``H = A − γω²I`` (eigenvalues
  ``a_j − 2 ∈ [−1.9, −1.5]``).  There the inner loop stays at ``w°`` and, by the chain rule
  (D0), ``∇²F_N(w°) = (I − αH)^N H (I − αH)^N`` exactly: its norm
  ``max_λ |1 − αλ|^{2N}|λ|`` (``saddle_norm``) grows like ``(1 + α|λ_min|)^{2N}``
  with ``|λ_min| = 1.9 = 0.76L`` — the ``2N`` exponent of (D2) is attained up to
  the ratio ``|λ_min|/L``, so a bound with ``q^N`` in place of ``q^{2N}``
  (``smooth_L_exponent(..., 1)``, a plausible slip) is exceeded.  Since
  ``|1 − αλ| ∈ [1 − αΛ, 1 + αΛ]`` with ``Λ = max|λ| ≤ L``, at ``α = c/(NL)``
  ``(1 − c/N)^{2N}Λ ≤ ‖∇²F_N(w°)‖ ≤ (1 + c/N)^{2N}Λ``, so every ``N`` lies in
  ``[(1 − c)²Λ, e^{2c}Λ]``: the (D3) bracket, measured.
* ``robust-regression`` (``d = 3``, heterogeneous tasks): curvature in
  ``[−L/8, L]``, so ``|1 − αλ| ≤ 1 + αL/8``: the measured growth is slight and
  the ``q^{2N}`` of (D2) is far from attained (the bounds are worst cases).

Finite differences: ``h = H_REL·max(1, ‖w‖)``; a ratio exceeds its bound
"numerically" only beyond the relative slack ``FD_RTOL``; the saddle
identity holds to ``SADDLE_RTOL`` (central differences, ``O(h²)``).
Every draw comes from ``np.random.default_rng`` seeded by the cell's
parameters (``seed``, the schedule's index, ``N``), and the runs from the
runner's per-seed streams of root ``root``: the table is a deterministic
function of the cell.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from mamlcheck import literature as lit
from mamlcheck.algorithms.estimators import algorithm
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import grad_F, mean_task_grad_norm
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import make_family
from mamlcheck.theory.checks import Check
from mamlcheck.theory.multistep import (multistep_alpha_max, multistep_bias, multistep_second_moment,
                                        multistep_smooth_L)

from .analysis import broken_names

__all__ = ["NAME", "TITLE", "Scale", "SCALES", "cells", "compute", "plot", "claims", "saddle_norm",
           "smooth_L_exponent", "smooth_L_uniform", "second_moment_uniform", "fd_smoothness",
           "FALSE_ALARM", "FD_RTOL", "SADDLE_RTOL", "C_INNER"]

NAME = "multistep_alpha"
TITLE = "Why the inner step must scale like 1/N (multi-step MAML)"

#: ``c`` of ``α = c/(NL)``: ``multistep_alpha_max`` (the one-step theorem's ``1/6`` at ``N = 1``).
C_INNER = lit.ALPHA_MAX_LD["maml"]
FAMILIES = {
    "saddle": ("cosine-quadratic", {"d": 4, "M": 4, "gamma": 0.5, "omega": 2.0, "a_min": 0.1, "a_max": 0.5,
                                    "spread": 0.0}),
    "robust": ("robust-regression", {"d": 3, "M": 4, "N": 20}),
}
LABELS = {"saddle": "cosine-quadratic, identical tasks (saddle at w° = 0)",
          "robust": "robust-regression (heterogeneous tasks)"}
CN = "α = c/(NL)"                 # the schedule label of α = c/(NL)
H_REL = 1e-6                      # finite-difference step, relative to max(1, ‖w‖)
FD_RTOL = 1e-4                    # slack for finite-difference rounding in the verdicts
SADDLE_RTOL = 1e-5                # central differences against the exact ‖∇²F_N(w°)‖
FALSE_ALARM = 1e-6                # δ of the Monte-Carlo intervals (per (family, schedule, N))
N_FIT_MIN = 2                     # iteration slopes over N ≥ this (one step rule, (D2)'s)
START_RADIUS = 0.5                # the runs' start and the moments' point: w° + 0.5·u
SMOOTH_RADII = (1e-2, 1.0)        # random points w° + r·u, r log-uniform (in units of the family's length)
BATCH = {"B": lit.B_MIN, "D_in": 1, "D_o": 1, "D_h": 1}


class Scale(NamedTuple):
    """The sweep at one scale."""

    fixed_alpha_L: tuple          # the fixed α's, in units of 1/L
    smooth_N_fixed: tuple         # N at fixed α (smoothness)
    smooth_N_cN: tuple            # N at α = c/(NL) (smoothness)
    points: int                   # random points per family (besides the reference point)
    moment_N: tuple               # N for bias and second moment (both schedules)
    draws: int                    # Monte-Carlo draws per task
    run_N_fixed: tuple            # N of the runs at fixed α
    run_N_cN: tuple               # N of the runs at α = c/(NL)
    seeds: int                    # seeds per run (< 8: one thread, no prefetch)
    budget: int                   # iterations per run (censoring)
    eps: float                    # target ‖∇F_N‖


SCALES = {
    "tiny": Scale((0.5,), (1, 2, 4, 6), (1, 2, 4, 8), 6, (1, 2, 4), 300, (2, 3), (2, 4), 2, 1300, 0.1),
    "quick": Scale((0.5,), tuple(range(1, 9)), (1, 2, 3, 4, 6, 8, 12), 20, (1, 2, 3, 4, 6, 8), 1000,
                   (1, 2, 3), (1, 2, 3, 4, 8), 3, 5000, 0.1),
    "default": Scale((0.5,), tuple(range(1, 11)), (1, 2, 3, 4, 6, 8, 12, 16), 40, (1, 2, 3, 4, 6, 8, 10), 4000,
                     (1, 2, 3), (1, 2, 3, 4, 6, 8), 4, 8000, 0.05),
    "full": Scale((0.5, 1.0), tuple(range(1, 13)), (1, 2, 3, 4, 6, 8, 12, 16, 24, 32), 200,
                  (1, 2, 3, 4, 5, 6, 8, 10, 12), 20000, (1, 2, 3, 4), (1, 2, 3, 4, 6, 8, 12, 16), 6, 40000, 0.05),
}


def cells(scale: str) -> list[dict]:
    """Per family: a smoothness cell and a moments cell; for ``cosine-quadratic``
    (whose saddle makes the fixed-α slowdown visible) a runs cell."""
    s = SCALES[scale]
    out = []
    for variant, (fam, params) in FAMILIES.items():
        base = {"variant": variant, "family": fam, "family_params": params, "fixed_alpha_L": list(s.fixed_alpha_L),
                "seed": 0}
        out.append({**base, "kind": "smoothness", "N_fixed": list(s.smooth_N_fixed), "N_cN": list(s.smooth_N_cN),
                    "points": s.points})
        out.append({**base, "kind": "moments", "N_fixed": list(s.moment_N), "N_cN": list(s.moment_N),
                    "draws": s.draws})
        if variant == "saddle":
            out.append({**base, "kind": "runs", "N_fixed": list(s.run_N_fixed), "N_cN": list(s.run_N_cN),
                        "seeds": s.seeds, "budget": s.budget, "eps": s.eps, "root": 0})
    return out


# --- the bounds and the exact saddle --------------------------------------------------
def smooth_L_exponent(L, rho, alpha, N, mean_grad_norm, exponent: float = 2.0):
    """(D2)'s ``L_N`` with the exponent ``2N`` replaced by ``exponent·N``:
    ``q^{eN}L + (ρ/L) q^{eN−1}(q^N − 1)·m``.  ``exponent = 2`` is (D2)
    (``multistep_smooth_L``); ``exponent = 1`` is the plausible slip ``(1 + αL)^N``
    that the saddle's measured ratio must exceed (negative control)."""
    q = 1.0 + np.asarray(alpha, float) * L
    return q ** (exponent * N) * L + (rho / L) * q ** (exponent * N - 1) * (q ** N - 1.0) * mean_grad_norm


def smooth_L_uniform(L, rho, c, mean_grad_norm):
    """The N-uniform bracket of (D3): ``e^{2c}L + (ρ/L)e^{2c}(e^c − 1)·m``, which
    bounds (D2)'s ``L_N`` for every ``N`` when ``α = c/(NL)`` (``q^N ≤ e^c``)."""
    return math.exp(2 * c) * L + (rho / L) * math.exp(2 * c) * (math.exp(c) - 1.0) * np.asarray(mean_grad_norm)


def second_moment_uniform(task_grad_norms, p, c, L, sigma_tilde, sigma_H, D_in, D_o, D_h):
    """(D6) made N-uniform for ``α = c/(NL)`` (THEORY.md §9, (D6) with (D1), (D3), (D4)):
    ``E‖G^N‖² ≤ e^{2c}e^{c²σ_H²/(L²D_h)} Σ_i p_i [(e^c‖∇f_i(w)‖ + ce^cσ̃/√D_in)² + σ̃²/D_o]``.

    Derivation: ``κ_h^N ≤ e^{2c}exp(c²σ_H²/(NL²D_h))`` (D6); ``‖∇f_i(u_i^N)‖ ≤
    q^N‖∇f_i(w)‖ ≤ e^c‖∇f_i(w)‖`` (D1); ``L²V_N ≤ Nα²q^{2N−2}L²σ̃²/D_in ≤
    c²e^{2c}σ̃²/(N D_in)`` (D4); then Young's ``φ`` at its best,
    ``min_φ (1 + 1/φ)a + (1 + φ)b = (√a + √b)²``, and ``N ≥ 1``."""
    g = np.asarray(task_grad_norms, float)
    ec = math.exp(c)
    inner = (ec * g + c * ec * sigma_tilde / math.sqrt(D_in)) ** 2 + sigma_tilde ** 2 / D_o
    return float(ec ** 2 * math.exp((c * sigma_H / L) ** 2 / D_h) * (np.asarray(p) @ inner))


def saddle_norm(H: np.ndarray, alpha: float, N: int) -> float:
    """``‖(I − αH)^N H (I − αH)^N‖₂ = max_λ |1 − αλ|^{2N}|λ|``: the exact ``‖∇²F_N(w°)‖``
    at a point ``w°`` where every task is stationary with the same Hessian ``H``
    (the inner loop stays at ``w°``; chain rule (D0))."""
    lam = np.linalg.eigvalsh(H)
    return float(np.max(np.abs(1.0 - alpha * lam) ** (2 * N) * np.abs(lam)))


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def fd_smoothness(fam, W: np.ndarray, alpha: float, N: int) -> dict:
    """At each row of ``W`` ``(P, d)``: the Jacobian of ``∇F_N`` by central
    differences along every coordinate, its symmetrised top eigenpair
    (``hess_norm``, ``v``), and the secant ratio ``‖∇F_N(w + hv) − ∇F_N(w)‖/h``
    of the pair ``(w, w + hv)`` with ``E_i‖∇f_i‖`` at both points."""
    P, d = W.shape
    h = H_REL * np.maximum(1.0, np.linalg.norm(W, axis=-1))
    E = np.eye(d)[None] * h[:, None, None]                        # (P, d, d): row k is h·e_k
    J = (grad_F(fam, W[:, None, :] + E, alpha, N) - grad_F(fam, W[:, None, :] - E, alpha, N)) / (2 * h[:, None, None])
    lam, vec = np.linalg.eigh(0.5 * (J + np.swapaxes(J, -1, -2)))
    top = np.argmax(np.abs(lam), axis=-1)
    v = vec[np.arange(P), :, top]
    U = W + h[:, None] * v
    ratio = np.linalg.norm(grad_F(fam, U, alpha, N) - grad_F(fam, W, alpha, N), axis=-1) / h
    return {"h": h, "hess_norm": np.abs(lam[np.arange(P), top]), "ratio": ratio,
            "m_w": mean_task_grad_norm(fam, W), "m_u": mean_task_grad_norm(fam, U)}


# --- the cells ------------------------------------------------------------------------
def _schedules(params: dict, L: float):
    """``(index, label, fixed, N, α)`` for every N of the cell: the fixed α's, then α = c/(NL)."""
    for j, aL in enumerate(params["fixed_alpha_L"]):
        for N in params["N_fixed"]:
            yield j, f"αL = {aL:g}", True, int(N), aL / L
    for N in params["N_cN"]:
        yield len(params["fixed_alpha_L"]), CN, False, int(N), multistep_alpha_max(L=L, N=int(N))


def _reference(fam, variant: str) -> tuple[np.ndarray, float]:
    """The reference point and the length scale of the random points: the
    common saddle ``w° = 0`` (checked), or the tasks' centre."""
    if variant == "saddle":
        w0 = np.zeros(fam.d)
        tasks = np.arange(fam.M)
        if np.abs(fam.grad(w0, tasks)).max() > 0 or np.ptp(fam.hess(np.broadcast_to(w0, (fam.M, fam.d)), tasks), 0).max() > 0:
            raise ValueError("the saddle variant needs identical tasks stationary at w° = 0 (spread = 0)")
        return w0, 1.0
    return fam.centre_and_length()


def _start(fam, variant: str, seed: int) -> np.ndarray:
    """``w° + START_RADIUS·length·u``, ``u`` a unit vector drawn from the cell's seed."""
    ref, length = _reference(fam, variant)
    u = _unit(np.random.default_rng([seed, 1]).standard_normal(fam.d))
    return ref + START_RADIUS * length * u


def _smoothness(fam, params: dict, c: dict) -> pd.DataFrame:
    L, rho = c["L"], c["rho"]
    ref, length = _reference(fam, params["variant"])
    rng = np.random.default_rng([params["seed"], 0])
    P = params["points"]
    r = length * 10 ** rng.uniform(*np.log10(SMOOTH_RADII), P)
    W = np.vstack([ref, ref + r[:, None] * _unit(rng.standard_normal((P, fam.d)))])
    H = fam.hess(ref, 0) if params["variant"] == "saddle" else None
    frames = []
    for _, label, fixed, N, alpha in _schedules(params, L):
        m = fd_smoothness(fam, W, alpha, N)
        m_min = np.minimum(m["m_w"], m["m_u"])
        frames.append(pd.DataFrame({
            "schedule": label, "fixed": fixed, "N": N, "alpha": alpha, "alpha_L": alpha * L, "c": alpha * N * L,
            "point": np.arange(P + 1), "reference": np.arange(P + 1) == 0, "radius": np.r_[0.0, r], **m,
            "bound": multistep_smooth_L(L=L, rho=rho, alpha=alpha, N=N, mean_grad_norm=m_min),
            "bound_uniform": smooth_L_uniform(L, rho, alpha * N * L, m_min),
            "bound_qN": smooth_L_exponent(L, rho, alpha, N, m_min, 1.0),
            "saddle_norm": np.r_[saddle_norm(H, alpha, N), np.full(P, np.nan)] if H is not None else np.nan,
            "saddle_Lambda": float(np.abs(np.linalg.eigvalsh(H)).max()) if H is not None else np.nan,
            "saddle_factor": float(np.abs(1 - alpha * np.linalg.eigvalsh(H)).max()) if H is not None else np.nan,
        }))
    return pd.concat(frames, ignore_index=True)


def _moments(fam, params: dict, c: dict) -> pd.DataFrame:
    L, rho, s, sH = c["L"], c["rho"], c["sigma_tilde"], c["sigma_H"]
    w = _start(fam, params["variant"], params["seed"])
    n, M, d = params["draws"], fam.M, fam.d
    tasks = np.broadcast_to(np.arange(M), (n, M))
    W = np.broadcast_to(w, (n, d))
    maml = algorithm("maml")
    z_vec = stats.norm.isf(FALSE_ALARM / (2 * d))          # Bonferroni over the d coordinates
    z_sc = stats.norm.isf(FALSE_ALARM / 2)
    g_w = np.linalg.norm(fam.grad(w[None, :], np.arange(M)), axis=-1)
    rows = []
    for j, label, fixed, N, alpha in _schedules(params, L):
        hyper = Hyper("maml", alpha=alpha, inner_steps=N, **BATCH)
        G = maml.task_directions(fam, W, tasks, hyper, rho, np.random.default_rng([params["seed"], 2, j, N]))
        grad = grad_F(fam, w, alpha, N)
        b = fam.p @ G.mean(axis=0) - grad
        b_se = np.sqrt(fam.p ** 2 @ G.var(axis=0, ddof=1) / n)
        sq = np.einsum("nmd,nmd->nm", G, G)
        S, S_se = float(fam.p @ sq.mean(axis=0)), float(np.sqrt(fam.p ** 2 @ sq.var(axis=0, ddof=1) / n))
        bn, bse = float(np.linalg.norm(b)), float(np.linalg.norm(b_se))
        u_N = fam.inner_trajectory(w, alpha, N)[-1]
        g_uN = np.linalg.norm(fam.grad(u_N, np.arange(M)), axis=-1)
        bias_bound = float(fam.p @ multistep_bias(alpha=alpha, L=L, rho=rho, sigma_tilde=s, D_in=BATCH["D_in"], N=N,
                                                   grad_norm_at_inner_point=g_uN))
        q = 1 + alpha * L
        V_N = (alpha * s) ** 2 / BATCH["D_in"] * ((q ** (2 * N) - 1) / (q ** 2 - 1))
        phi = np.maximum(g_uN / (L * math.sqrt(V_N)), 1e-12)
        sm_bound = float(fam.p @ np.array([
            multistep_second_moment(grad_norm_at_inner_point=g, alpha=alpha, L=L, sigma_tilde=s, sigma_H=sH,
                                    D_in=BATCH["D_in"], D_o=BATCH["D_o"], D_h=BATCH["D_h"], N=N, phi=f)
            for g, f in zip(g_uN, phi)]))
        rows.append({
            "schedule": label, "fixed": fixed, "N": N, "alpha": alpha, "alpha_L": alpha * L, "c": alpha * N * L,
            "draws": n, "grad_FN_norm": float(np.linalg.norm(grad)),
            "bias": bn, "bias_se": bse, "bias_lo": max(0.0, bn - z_vec * bse), "bias_hi": bn + z_vec * bse,
            "bias_bound": bias_bound,
            "second": S, "second_se": S_se, "second_lo": S - z_sc * S_se, "second_hi": S + z_sc * S_se,
            "second_bound": sm_bound,
            "second_bound_uniform": second_moment_uniform(g_w, fam.p, alpha * N * L, L, s, sH, BATCH["D_in"],
                                                          BATCH["D_o"], BATCH["D_h"]),
            "kappa_h": q ** 2 + (alpha * sH) ** 2 / BATCH["D_h"],
            "broken": broken_names(fam.constants(), hyper)})
    return pd.DataFrame(rows)


def _runs(fam, params: dict, c: dict) -> pd.DataFrame:
    L = c["L"]
    w0 = _start(fam, params["variant"], params["seed"])
    frames = []
    for _, label, fixed, N, alpha in _schedules(params, L):
        hyper = Hyper("maml", alpha=alpha, inner_steps=N, **BATCH)
        res = run(fam, hyper, [params["eps"]], seeds=params["seeds"], budget=params["budget"], w0=w0,
                  root=params["root"])
        t = res.table
        frames.append(pd.DataFrame({
            "schedule": label, "fixed": fixed, "N": N, "alpha": alpha, "alpha_L": alpha * L, "c": alpha * N * L,
            "seed": t.seed.to_numpy(), "eps": params["eps"], "budget": params["budget"],
            "first_k": t.first_k.astype("float").to_numpy(), "diverged": t.diverged.to_numpy(),
            "mean_first_k": float(res.mean_table.mean_first_k.astype("float").iloc[0]),
            "iterations": res.iterations,
            "L_N_start": float(multistep_smooth_L(L=L, rho=c["rho"], alpha=alpha, N=N,
                                                  mean_grad_norm=mean_task_grad_norm(fam, w0))),
            "broken": broken_names(fam.constants(), hyper)}))
    return pd.concat(frames, ignore_index=True)


_KINDS = {"smoothness": _smoothness, "moments": _moments, "runs": _runs}


def compute(params: dict) -> pd.DataFrame:
    """One cell: the smoothness ratios, the Monte-Carlo moments, or the runs (see module)."""
    fam = make_family(params["family"], **params["family_params"])
    c = fam.constants().values()
    out = _KINDS[params["kind"]](fam, params, c)
    return out.assign(kind=params["kind"], variant=params["variant"], family=fam.name,
                      family_params=json.dumps(params["family_params"], sort_keys=True), **c)


def claims(table: pd.DataFrame) -> list[Check]:
    """The experiment's claims (``multistep_alpha_report.claims``)."""
    from .multistep_alpha_report import claims as _claims
    return _claims(table)


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """The experiment's figures (``multistep_alpha_report.plot``)."""
    from .multistep_alpha_report import plot as _plot
    return _plot(table, outdir)
