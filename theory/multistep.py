"""The multi-step MAML bounds: N inner steps (THEORY.md §9).

Setting:   ``F_N(w) = Σ_i p_i f_i(u_i^N(w))``, ``u^{j+1} = u^j − α∇f_i(u^j)``,
           ``u^0 = w``; the resampled estimator
           ``G_i^N = Π_{j=0}^{N−1}(I − α∇̃²f_i(ũ^j, D_h)) ∇̃f_i(ũ^N, D_o)`` with a
           fresh inner batch ``D_in`` per inner step (``algorithms.estimators``).
           Assumptions A2 (``L``), A3 (``ρ``), A5 (``σ̃``, ``σ_H``) of §1.
Guarantee: each function below; ``q = 1 + αL``.
References: Ji, Yang & Liang, *Theoretical Convergence of Multi-Step
           Model-Agnostic Meta-Learning*, JMLR 23 (2022), arXiv 2002.07836 —
           the order of its results (bias, variance and smoothness carry factors
           exponential in ``N``; the inner step must be ``α ∝ 1/N``; complexity
           linear in ``N``).  The paper's body (its lemmas' constants) could not
           be retrieved, so every constant here is *derived* in THEORY.md §9,
           (D1)–(D7), and cited as such, never as the paper's; the slack report
           measures how much room each leaves.  At ``N = 1`` each reduces to
           the one-step bound it generalises (tested).
"""
from __future__ import annotations

import numpy as np

from mamlcheck import literature as lit
from mamlcheck.theory._calling import _kind, _nonneg, _out, _pos, _size

__all__ = ["MULTISTEP", "STEP_C_N", "multistep_smooth_L", "multistep_L_formula", "inner_drift", "multistep_bias",
           "multistep_second_moment", "multistep_task_grad_range", "multistep_alpha_max",
           "multistep_iterations_order"]


#: The multi-step theorem's name (``Hyper.theorem`` for MAML and exact gradients with ``N > 1``).
MULTISTEP = "multistep"
#: ``c`` of its step rule ``β_k = 1/(c·L̃_N(w_k))``: the one-step MAML theorem's 12,
#: reused (the paper's constant was not recovered; THEORY.md §9, "the theorem as the suite checks it").
STEP_C_N = lit.STEP_C["maml"]


def _q(alpha, L):
    return 1.0 + alpha * L


def multistep_L_formula(L, rho, alpha, N, mean_grad_norm):
    """``q^{2N}L + (ρ/L) q^{2N−1}(q^N − 1)·mean_grad_norm`` without validation (hot
    loops: the step rule's ``L̃_N``); see ``multistep_smooth_L``."""
    q, lq = _q(alpha, L), np.log1p(alpha * L)
    return q ** (2 * N) * L + (rho / L) * q ** (2 * N - 1) * np.expm1(N * lq) * mean_grad_norm   # q^N − 1, accurately


@_kind("upper")
def multistep_smooth_L(L, rho, alpha, N, mean_grad_norm):
    """Local smoothness of ``∇F_N`` (THEORY.md §9, (D2)).

    Guarantee: ``‖∇F_N(w) − ∇F_N(w′)‖ ≤ L_N(w)‖w − w′‖`` with
    ``L_N(w) = q^{2N}L + (ρ/L) q^{2N−1}(q^N − 1) E_i‖∇f_i(w)‖`` (also with ``w′``'s
    gradients: the smaller of the two serves).  At ``N = 1``:
    ``(1 + αL)²L + ρα(1 + αL)E_i‖∇f_i‖ ≤ 4L + 2ρα E_i‖∇f_i‖`` for ``α ≤ 1/L``
    (the one-step lemma of §3).  With ``α = c/(NL)``, ``q^N ≤ e^c``: bounded in ``N``
    (D3); at fixed ``α`` it grows like ``(1 + αL)^{2N}``.

    Args:
        L, rho, alpha: constants and inner step.
        N: inner steps (integer ``≥ 1``).
        mean_grad_norm: ``E_i‖∇f_i(w)‖`` (float or array).
    """
    L, rho, alpha, N = _pos("L", L), _nonneg("rho", rho), _nonneg("alpha", alpha), _size("N", N)
    return _out(multistep_L_formula(L, rho, alpha, N, _nonneg("mean_grad_norm", mean_grad_norm)))


def _drift(alpha, L, s, D_in, N):
    """``(α²σ̃²/D_in) Σ_{j<N} q^{2j} = (α²σ̃²/D_in)(q^{2N} − 1)/(q² − 1)``, the
    differences by ``expm1`` of ``log1p(αL)`` (accurate for small ``αL``; ``N`` at ``αL = 0``)."""
    lq2 = 2.0 * np.log1p(alpha * L)
    geo = np.where(lq2 > 0, np.expm1(N * lq2) / np.where(lq2 > 0, np.expm1(lq2), 1.0), N)
    return (alpha * s) ** 2 / D_in * geo


@_kind("upper")
def inner_drift(alpha, L, sigma_tilde, D_in, N):
    """Mean squared distance of the stochastic inner point from the exact one
    (THEORY.md §9, (D4)).

    Guarantee: ``E‖ũ^N − u^N‖² ≤ V_N = (α²σ̃²/D_in)(q^{2N} − 1)/(q² − 1)``
    (``= Nα²σ̃²/D_in`` at ``αL = 0``); ``N = 1``: ``α²σ̃²/D_in``, the square of
    ``inner_bias``'s ``ασ̃/√D_in`` scale (§3).

    Args:
        alpha, L, sigma_tilde: inner step and constants.
        D_in: inner batch per step; N: inner steps.
    """
    alpha, L, s = _nonneg("alpha", alpha), _pos("L", L), _nonneg("sigma_tilde", sigma_tilde)
    return _out(_drift(alpha, L, s, _size("D_in", D_in), _size("N", N)))


@_kind("upper")
def multistep_bias(alpha, L, rho, sigma_tilde, D_in, N, grad_norm_at_inner_point):
    """Bias of one task's N-step estimator (THEORY.md §9, (D5)).

    Guarantee: ``‖E[G_i^N(w)] − ∇F_{N,i}(w)‖ ≤ q^N L √V_N
    + αρ q^{N−1} ‖∇f_i(u_i^N)‖ Σ_{j=1}^{N−1} √V_j`` (``V_j`` of ``inner_drift``);
    independent of ``D_h`` and ``D_o``.  ``N = 1``: ``(1 + αL)αLσ̃/√D_in``, the
    one-step ``maml_bias`` (§4).

    Args:
        alpha, L, rho, sigma_tilde: inner step and constants.
        D_in: inner batch per step; N: inner steps.
        grad_norm_at_inner_point: ``‖∇f_i(u_i^N)‖`` (float or array).
    """
    alpha, L, rho = _nonneg("alpha", alpha), _pos("L", L), _nonneg("rho", rho)
    s, D_in, N = _nonneg("sigma_tilde", sigma_tilde), _size("D_in", D_in), int(_size("N", N))
    g = _nonneg("grad_norm_at_inner_point", grad_norm_at_inner_point)
    q = _q(alpha, L)
    inner = sum(np.sqrt(_drift(alpha, L, s, D_in, j)) for j in range(1, N))
    return _out(q ** N * L * np.sqrt(_drift(alpha, L, s, D_in, N)) + alpha * rho * q ** (N - 1) * g * inner)


@_kind("upper")
def multistep_second_moment(grad_norm_at_inner_point, alpha, L, sigma_tilde, sigma_H, D_in, D_o, D_h, N, phi):
    """Second moment of one task's N-step estimator (THEORY.md §9, (D6)).

    Guarantee: for any ``φ > 0``, ``E‖G_i^N(w)‖² ≤ κ_h^N [(1 + 1/φ)‖∇f_i(u_i^N)‖²
    + (1 + φ)L²V_N + σ̃²/D_o]`` with ``κ_h = (1 + αL)² + α²σ_H²/D_h`` (each Hessian
    factor applied to a vector independent of its batch: ``hessian_factor_sq``).
    ``N = 1``: ``hessian_factor_sq × second_moment_inner`` (§3, §4).

    Args:
        grad_norm_at_inner_point: ``‖∇f_i(u_i^N)‖`` (float or array).
        alpha, L, sigma_tilde, sigma_H: inner step and constants.
        D_in, D_o, D_h: batch sizes; N: inner steps; phi: Young's ``φ > 0``.
    """
    g = _nonneg("grad_norm_at_inner_point", grad_norm_at_inner_point)
    alpha, L = _nonneg("alpha", alpha), _pos("L", L)
    s, sH, phi = _nonneg("sigma_tilde", sigma_tilde), _nonneg("sigma_H", sigma_H), _pos("phi", phi)
    D_in, D_o, D_h, N = _size("D_in", D_in), _size("D_o", D_o), _size("D_h", D_h), _size("N", N)
    kappa = _q(alpha, L) ** 2 + (alpha * sH) ** 2 / D_h
    return _out(kappa ** N * ((1 + 1 / phi) * g ** 2 + (1 + phi) * L ** 2 * _drift(alpha, L, s, D_in, N)
                              + s ** 2 / D_o))


@_kind("value")
def multistep_task_grad_range(alpha, L, N) -> tuple[float, float]:
    """``[(1 − αL)^{2N}, (1 + αL)^{2N}]``, the range of ``‖∇F_{N,i}(w)‖/‖∇f_i(w)‖``
    for ``αL < 1`` (THEORY.md §9, (D1) twice, (D7)): the factor by which the
    inner loop can stretch or shrink a task's gradient."""
    alpha, L, N = _nonneg("alpha", alpha), _pos("L", L), _size("N", N)
    return float((1 - alpha * L) ** (2 * N)), float((1 + alpha * L) ** (2 * N))


@_kind("value")
def multistep_alpha_max(L, N) -> float:
    """The inner step of the multi-step conditions, ``α ≤ 1/(6NL)`` (THEORY.md §9):
    the paper's order ``α ∝ 1/N`` with the one-step theorem's ``1/(6L)`` at ``N = 1``
    (``lit.ALPHA_MAX_LD['maml']``); then ``q^N ≤ e^{1/6}`` for every ``N`` (D3)."""
    return float(lit.ALPHA_MAX_LD["maml"] / (_size("N", N) * _pos("L", L)))


@_kind("value")
def multistep_iterations_order(eps, Delta, L_bar) -> float:
    """``Δ·L̄/ε²``: the order of the iterations to ``E‖∇F_N‖ ≤ ε`` (THEORY.md §9,
    "the theorem as the suite checks it": Fallah et al.'s argument with (D2), (D5), (D6); ``L̄`` the smoothness
    constant along the run).  The paper states the order, not the constant: a
    run's ``iterations / (Δ·L̄/ε²)`` is the constant that sufficed (the slack
    report's measurement), to be compared with the one-step theorem's 1600."""
    eps, Delta, L_bar = _pos("eps", eps), _pos("Delta", Delta), _pos("L_bar", L_bar)
    return _out(Delta * L_bar / eps ** 2)
