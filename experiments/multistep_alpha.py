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

from . import style
from .analysis import CI, broken_names, fit_line

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


# --- analysis (from the table alone) ---------------------------------------------------
D2 = "THEORY.md §9 (D2)"
D3 = "THEORY.md §9 (D3)"
D5 = "THEORY.md §9 (D5)"
D6 = "THEORY.md §9 (D6)"
D0 = "THEORY.md §9 (D0) at a common stationary point"
MS = "THEORY.md §9, MS2/MS5/MS7 (α ∝ 1/N; iterations flat in N at α = c/(NL))"


def _bool(s: pd.Series) -> pd.Series:
    """A boolean column, also after a round trip through CSV."""
    return s.astype(str).str.lower().isin(("true", "1"))


def _part(table: pd.DataFrame, kind: str, variant: str | None = None) -> pd.DataFrame:
    t = table[table.kind == kind]
    return t if variant is None else t[t.variant == variant]


def _variants(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table.variant))


def _label(variant: str) -> str:
    return LABELS.get(variant, variant)


def _slope(x, y) -> dict:
    """OLS slope of ``y`` on ``x`` with its 95% t-interval (NaN with fewer than three points or one x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.unique(x).size < 2:
        return {"slope": float("nan"), "lo": float("nan"), "hi": float("nan"), "stderr": float("nan"), "n": x.size}
    return fit_line(x, y)


def smoothness_checks(t: pd.DataFrame, variant: str) -> list[Check]:
    """(D2) at every (schedule, N, point); (D3)'s N-uniform bracket at ``α = c/(NL)``."""
    out, lab = [], _label(variant)
    for sched, g in t.groupby("schedule", sort=False):
        q = g.ratio / g.bound
        bad = int((q > 1 + FD_RTOL).sum())
        out.append(Check(
            f"{lab}, {sched}: ‖∇F_N(w) − ∇F_N(w′)‖/‖w − w′‖ ≤ L_N(w, w′) at every N and point (max ratio/bound)",
            D2, float(q.max()), 1.0, "upper", tol=FD_RTOL,
            context={"variant": variant, "schedule": sched,
                     "note": f"{len(q) - bad}/{len(q)} (N, point) pairs within, N = {g.N.min()}…{g.N.max()}; "
                             f"ratio/bound in [{q.min():.2g}, {q.max():.2g}]"}))
    for sched, g in t[_bool(t.fixed)].groupby("schedule", sort=False):
        top = g.groupby("N").ratio.max()
        f = _slope(top.index, np.log(top.values))
        aL = float(g.alpha_L.iloc[0])
        ref = g[_bool(g.reference) & g.saddle_norm.notna()]
        exact = (f"; at the saddle the exact slope is {_slope(ref.N, np.log(ref.saddle_norm))['slope']:.4g}, "
                 f"and its limit 2 log max_λ abs(1 − αλ) = {2 * math.log(float(ref.saddle_factor.iloc[0])):.4g}"
                 if len(ref) else "")
        out.append(Check(
            f"{lab}, {sched}: growth rate of log max-over-points ratio per inner step (OLS on N) beside the "
            f"2 log(1+αL) of (D2)'s q^{{2N}}", D2, f["slope"], 2 * math.log1p(aL), "report", lo=f["lo"], hi=f["hi"],
            context={"variant": variant, "schedule": sched, "bound_text": f"{2 * math.log1p(aL):.4g}",
                     "note": f"95% CI [{f['lo']:.4g}, {f['hi']:.4g}]; log(1+αL) = {math.log1p(aL):.4g}{exact}"}))
    cn = t[~_bool(t.fixed)]
    if len(cn):
        q = cn.ratio / cn.bound_uniform
        out.append(Check(
            f"{lab}, {CN}: ratio ≤ e^{{2c}}L + (ρ/L)e^{{2c}}(e^c − 1)E_i‖∇f_i‖, the same for every N (max ratio/bound)",
            D3, float(q.max()), 1.0, "upper", tol=FD_RTOL,
            context={"variant": variant, "schedule": CN,
                     "note": f"N = {cn.N.min()}…{cn.N.max()}, c = {cn.c.iloc[0]:.4g}; max ratio "
                             f"{cn.ratio.max():.4g} at N = {int(cn.N[cn.ratio.idxmax()])}"}))
    return out


def saddle_checks(t: pd.DataFrame, variant: str) -> list[Check]:
    """At the common saddle ``w°``: the exact ``‖∇²F_N(w°)‖`` (D0); the ``2N``
    exponent of (D2) needed (a ``q^N`` bound exceeded); the (D3) bracket at
    ``α = c/(NL)``; the growth rate at fixed α (reported)."""
    ref = t[_bool(t.reference) & t.saddle_norm.notna()]
    if ref.empty:
        return []
    lab, out = _label(variant), []
    err = (ref.hess_norm / ref.saddle_norm - 1).abs()
    out.append(Check(
        f"{lab}: the measured ‖∇²F_N(w°)‖ equals max_λ abs(1 − αλ)^{{2N}}·abs(λ) at every N and α (max relative error)",
        D0, float(err.max()), SADDLE_RTOL, "upper",
        context={"variant": variant, "note": f"{len(ref)} (schedule, N); central differences, h = {H_REL:g}"}))
    for sched, g in ref[_bool(ref.fixed)].groupby("schedule", sort=False):
        over = g.ratio / g.bound_qN
        n_over = int((over > 1).sum())
        out.append(Check(
            f"{lab}, {sched}: the exponent 2N of (D2) is needed: the ratio at w° exceeds the (1+αL)^N version "
            f"q^N L + (ρ/L)q^{{N−1}}(q^N − 1)E_i‖∇f_i‖ at some N (max ratio/that bound)",
            D2, float(over.max()), 1.0, "lower",
            context={"variant": variant, "schedule": sched,
                     "note": f"exceeded at {n_over} of {len(g)} N (first at N = "
                             f"{int(g.N[over > 1].min()) if n_over else '—'}); ratio/(D2 bound) at N = {g.N.max()}: "
                             f"{float(g.ratio.iloc[-1] / g.bound.iloc[-1]):.3g}"}))
    cn = ref[~_bool(ref.fixed)]
    if len(cn):
        c, lam = float(cn.c.iloc[0]), float(cn.saddle_Lambda.iloc[0])
        lo_b, hi_b = (1 - c) ** 2 * lam, math.exp(2 * c) * lam
        out.append(Check(
            f"{lab}, {CN}: ratio(w°) stays in [(1 − c)²Λ, e^{{2c}}Λ] for every N (range over N)",
            D3, float(cn.ratio.max()), hi_b, "within", lo=float(cn.ratio.min()), hi=float(cn.ratio.max()),
            bound_lo=lo_b, tol=FD_RTOL * hi_b,
            context={"variant": variant, "schedule": CN,
                     "measured_text": f"[{cn.ratio.min():.4g}, {cn.ratio.max():.4g}]",
                     "bound_text": f"[{lo_b:.4g}, {hi_b:.4g}]",
                     "note": f"N = {cn.N.min()}…{cn.N.max()}, max/min over N = {cn.ratio.max() / cn.ratio.min():.3g} "
                             f"(bracket allows {hi_b / lo_b:.3g}); Λ = max abs(λ(∇²f(w°))) = {lam:.3g}"}))
    return out


def moment_checks(t: pd.DataFrame, variant: str) -> list[Check]:
    """(D5), (D6) at every (schedule, N) on the upper end of the ``1 − δ``
    interval; the N-uniform (D6) at ``α = c/(NL)``; growth at fixed α reported."""
    out, lab = [], _label(variant)
    level = style.confidence_text(FALSE_ALARM)
    for col, bcol, what, eq in (("bias", "bias_bound", "‖E G^N − ∇F_N‖", D5),
                                ("second", "second_bound", "E‖G^N‖²", D6)):
        for sched, g in t.groupby("schedule", sort=False):
            r, r_hi, r_lo = g[col] / g[bcol], g[f"{col}_hi"] / g[bcol], g[f"{col}_lo"] / g[bcol]
            out.append(Check(f"{lab}, {sched}: {what} ≤ its bound at every N (max measured/bound)", eq,
                             float(r.max()), 1.0, "upper", lo=float(r_lo.max()), hi=float(r_hi.max()),
                             context={"variant": variant, "schedule": sched,
                                      "note": f"upper ends of the {level} per N; N = {g.N.min()}…{g.N.max()}; "
                                              f"measured/bound in [{r.min():.2g}, {r.max():.2g}]; "
                                              f"{int(g.draws.iloc[0])} draws per task"}))
    cn = t[~_bool(t.fixed)]
    if len(cn):
        r = cn.second / cn.second_bound_uniform
        out.append(Check(f"{lab}, {CN}: E‖G^N‖² ≤ the N-uniform form of (D6) at every N (max measured/bound)", D6,
                         float(r.max()), 1.0, "upper", lo=float((cn.second_lo / cn.second_bound_uniform).max()),
                         hi=float((cn.second_hi / cn.second_bound_uniform).max()),
                         context={"variant": variant, "schedule": CN,
                                  "note": f"bound {cn.second_bound_uniform.iloc[0]:.4g} for every N; measured "
                                          f"{cn.second.min():.4g}…{cn.second.max():.4g} over N = "
                                          f"{cn.N.min()}…{cn.N.max()}"}))
    for sched, g in t[_bool(t.fixed)].groupby("schedule", sort=False):
        f = _slope(g.N, np.log(g.second))
        k = float(np.log(g.kappa_h.iloc[0]))
        fb = _slope(g.N, np.log(g.bias))
        out.append(Check(f"{lab}, {sched}: growth rate of log E‖G^N‖² per inner step (OLS on N) beside log κ_h "
                         f"of (D6)", D6, f["slope"], k, "report", lo=f["lo"], hi=f["hi"],
                         context={"variant": variant, "schedule": sched,
                                  "note": f"95% CI [{f['lo']:.4g}, {f['hi']:.4g}]; bias: slope {fb['slope']:.4g} "
                                          f"[{fb['lo']:.4g}, {fb['hi']:.4g}] beside log(1+αL) = "
                                          f"{math.log1p(float(g.alpha_L.iloc[0])):.4g} ((D5): ~q^{{2N}})"}))
    return out


def _censored_k(g: pd.DataFrame) -> np.ndarray:
    """First hits per seed, a censored seed at ``budget + 1`` (a lower bound on its hit)."""
    return np.where(g.first_k.notna(), g.first_k, g.budget + 1).astype(float)


def iteration_slopes(t: pd.DataFrame) -> dict[str, dict]:
    """Per schedule: OLS slope of log(first hit per seed) on ``N`` over ``N ≥ N_FIT_MIN``.

    A seed not at ``ε`` within the budget counts at ``budget + 1``, below its true
    hit: censored runs at the larger ``N`` only pull the slope down (a lower
    bound, fine for a claim that it is positive), but censored runs at the
    smallest ``N`` leave nothing to compare with, so the interval is then
    unknown (NaN: inconclusive).  ``censored_low`` flags that case."""
    out = {}
    for sched, g in t.groupby("schedule", sort=False):
        g = g[g.N >= N_FIT_MIN]
        f = _slope(g.N, np.log(np.maximum(_censored_k(g), 1.0)))
        low = bool(len(g)) and bool(g[g.N == g.N.min()].first_k.isna().any())
        if low:
            f = {**f, "lo": float("nan"), "hi": float("nan"), "stderr": float("nan")}
        out[sched] = {**f, "censored": int(g.first_k.isna().sum()), "censored_low": low,
                      "fixed": bool(_bool(g.fixed).all()) if len(g) else None}
    return out


def _k_text(t: pd.DataFrame) -> str:
    parts = []
    for sched, g in t.groupby("schedule", sort=False):
        ks = ", ".join(f"N={N}: " + (f"{m:.0f}" if np.isfinite(m) else f">{int(gg.budget.iloc[0])}")
                       for N, gg in g.groupby("N") for m in [float(gg.mean_first_k.iloc[0])])
        parts.append(f"{sched}: {ks}")
    return "; ".join(parts)


def run_checks(t: pd.DataFrame, variant: str) -> list[Check]:
    """Iterations to ε: grow at fixed α (slope > 0); grow faster at fixed α than
    at ``α = c/(NL)``; the slope at ``α = c/(NL)`` reported beside 0."""
    if t.empty:
        return []
    lab, out = _label(variant), []
    sl = iteration_slopes(t)
    ks = _k_text(t)
    cn = sl.get(CN)
    for sched, f in sl.items():
        if not f["fixed"]:
            continue
        lq = math.log1p(float(t[t.schedule == sched].alpha_L.iloc[0]))
        note = (f"95% CI [{f['lo']:.3g}, {f['hi']:.3g}] over N ≥ {N_FIT_MIN}, {f['n']} seed runs, "
                f"{f['censored']} censored at the budget (counted at budget + 1); beside 2 log(1+αL) = {2 * lq:.3g} "
                f"and 3 log(1+αL) = {3 * lq:.3g} (the growth of (D2)'s ρ-term, in the step rule); "
                f"seed-average first hits: {ks}")
        out.append(Check(f"{lab}, {sched}: iterations of MAML (β_k = 1/(12 L̃_N)) to ‖∇F_N‖ ≤ ε grow with N "
                         f"(slope of log k on N)", MS, f["slope"], 0.0, "lower", lo=f["lo"], hi=f["hi"],
                         context={"variant": variant, "schedule": sched, "note": note}))
        if cn is not None:
            # a censored run at α = c/(NL) would bias its slope down, the difference up: no interval then
            diff = f["slope"] - cn["slope"]
            half = (stats.norm.ppf(0.5 + CI / 2) * math.hypot(f["stderr"], cn["stderr"]) if not cn["censored"]
                    else float("nan"))
            out.append(Check(f"{lab}: iterations grow faster in N at {sched} than at {CN} (difference of the slopes "
                             f"of log k on N)", MS, diff, 0.0, "lower", lo=diff - half, hi=diff + half,
                             context={"variant": variant,
                                      "note": f"95% CI [{diff - half:.3g}, {diff + half:.3g}] (normal, both "
                                              f"fits' standard errors); slopes {f['slope']:.3g} vs {cn['slope']:.3g}"}))
    if cn is not None:
        out.append(Check(f"{lab}, {CN}: slope of log k on N (N ≥ {N_FIT_MIN}), beside 0 (no growth)", MS,
                         cn["slope"], 0.0, "report", lo=cn["lo"], hi=cn["hi"],
                         context={"variant": variant, "schedule": CN,
                                  "note": f"95% CI [{cn['lo']:.3g}, {cn['hi']:.3g}], {cn['censored']} censored; "
                                          f"N = 1 uses the one-step rule 4L + 2ραE‖∇̃f‖ (slower); {ks}"}))
    return out


def claims(table: pd.DataFrame) -> list[Check]:
    """Per family: smoothness (D2), (D3) and, at the saddle, (D0) and the ``2N``
    exponent; bias (D5) and second moment (D6); iterations at fixed α against
    ``α = c/(NL)`` (MS2, MS5, MS7)."""
    checks = []
    for v in _variants(table):
        s = _part(table, "smoothness", v)
        checks += smoothness_checks(s, v) + saddle_checks(s, v)
        checks += moment_checks(_part(table, "moments", v), v)
        checks += run_checks(_part(table, "runs", v), v)
    return checks


# --- figures ------------------------------------------------------------------------------
def _colors(table: pd.DataFrame) -> dict:
    scheds = list(dict.fromkeys(table.schedule))
    return {s: style.ALT[j % len(style.ALT)] for j, s in enumerate(scheds)}


def _smooth_panel(ax, t: pd.DataFrame, colors: dict) -> None:
    for sched, g in t.groupby("schedule", sort=False):
        col = colors[sched]
        ref = g[_bool(g.reference)].sort_values("N")
        per = g.groupby("N").ratio
        style.measured_line(ax, ref.N, ref.ratio, per.min().values, per.max().values, color=col,
                            label=f"{sched}: ratio at the reference point (band: all points)")
        ax.plot(ref.N, ref.bound, ls="--", color=col, lw=1.4)
        if _bool(g.fixed).all():
            q = 1 + float(g.alpha_L.iloc[0])
            L = float(g.L.iloc[0])
            ax.plot(ref.N, q ** (2 * ref.N) * L, ls=":", color=col, lw=1.2, label=f"{sched}: (1+αL)^{{2N}}L")
            ax.plot(ref.N, q ** ref.N * L, ls="-.", color=col, lw=1.0, alpha=0.7, label=f"{sched}: (1+αL)^N L")
        else:
            ax.plot(ref.N, ref.bound_uniform, ls=":", color=col, lw=1.2, label=f"{sched}: N-uniform (D3)")
    ax.plot([], [], ls="--", color="0.3", label="L_N(w, w′) of (D2) at the reference point (dashed)")
    ax.set(yscale="log", xlabel="inner steps N", ylabel="‖∇F_N(w) − ∇F_N(w′)‖ / ‖w − w′‖")
    ax.legend(fontsize=6.5, loc="upper left")


def _moment_panel(ax, t: pd.DataFrame, col: str, colors: dict) -> None:
    for sched, g in t.groupby("schedule", sort=False):
        g = g.sort_values("N")
        c = colors[sched]
        style.measured_line(ax, g.N, g[col], color=c, label=f"{sched}: Monte Carlo estimate")
        ax.plot(g.N, g[f"{col}_hi"], ls="none", marker="^", ms=4, color=c, alpha=0.7,
                label=f"{sched}: upper end of the {style.confidence_text(FALSE_ALARM)} (checked)")
        ax.plot(g.N, g[f"{col}_bound"], ls="--", color=c, lw=1.4, label=f"{sched}: bound")
        if _bool(g.fixed).all():
            q, y0 = 1 + float(g.alpha_L.iloc[0]), float(g[col].iloc[0])
            for k, ls in ((1, "-."), (2, ":")):
                ax.plot(g.N, y0 * q ** (k * (g.N - g.N.iloc[0])), ls=ls, color=style.REFERENCE, lw=1.0,
                        label=f"{sched}: ∝ (1+αL)^{{{'' if k == 1 else '2'}N}} from the first N")
        if col == "second" and not _bool(g.fixed).all():
            ax.plot(g.N, g.second_bound_uniform, ls=":", color=c, lw=1.2, label=f"{sched}: N-uniform (D6)")
    ax.set(yscale="log", xlabel="inner steps N")
    ax.legend(fontsize=6.5, loc="upper left")


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Smoothness against N per family; bias and second moment against N; iterations to ε against N."""
    colors = _colors(table)
    variants = _variants(table)
    paths = []
    fig, axes = style.figure(len(variants), figsize=(6.0 * len(variants), 4.8), squeeze=False)
    for ax, v in zip(axes[0], variants):
        _smooth_panel(ax, _part(table, "smoothness", v), colors)
        t = _part(table, "smoothness", v)
        ax.set_title(f"{_label(v)}\nL = {t.L.iloc[0]:.3g}, ρ = {t.rho.iloc[0]:.3g}", fontsize=9)
    paths += style.save(fig, outdir, f"{NAME}_smoothness")

    fig, axes = style.figure(len(variants), 2, figsize=(6.0 * len(variants), 8.4), squeeze=False)
    for j, v in enumerate(variants):
        t = _part(table, "moments", v)
        _moment_panel(axes[0][j], t, "bias", colors)
        axes[0][j].set(ylabel="‖E G^N − ∇F_N‖ (bound: (D5))", title=_label(v))
        _moment_panel(axes[1][j], t, "second", colors)
        axes[1][j].set(ylabel="E‖G^N‖² (bound: (D6))")
    paths += style.save(fig, outdir, f"{NAME}_moments")

    runs = table[table.kind == "runs"]
    if len(runs):
        fig, ax = style.figure()
        for sched, g in runs.groupby("schedule", sort=False):
            k = g.assign(k=_censored_k(g)).groupby("N").k
            c = colors[sched]
            style.measured_line(ax, k.mean().index, k.mean().values, k.min().values, k.max().values, color=c,
                                label=f"{sched} (seed mean, min–max)")
            cens = g[g.first_k.isna()]
            if len(cens):
                ax.scatter(cens.N, cens.budget, marker="^", color=c, zorder=5,
                           label=f"{sched}: not reached within the budget")
        ax.set(yscale="log", xlabel="inner steps N", ylabel=f"iterations to ‖∇F_N‖ ≤ {runs.eps.iloc[0]:g}",
               title=f"MAML, β_k = 1/(12 L̃_N(w_k)), B = {BATCH['B']}, unit batches\n{_label(runs.variant.iloc[0])}")
        ax.legend(fontsize=7.5)
        paths += style.save(fig, outdir, f"{NAME}_iterations")
    return paths
