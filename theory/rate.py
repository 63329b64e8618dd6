"""The moments (7), (8), the descent steps (9)-(11) and the rate (12)-(14) of the MAML proof (THEORY.md §4).

Declared with ``_kind`` (``theory._calling``); ``theory.bounds`` re-exports them.
"""
from __future__ import annotations


import numpy as np

from mamlcheck import literature as lit
from mamlcheck.theory._calling import _kind, _nonneg, _num, _out, _pos, _size


# --- THEORY.md §4: moments (7), (8), descent (9)-(10), rate (11)-(14) -------------
@_kind("upper")
def first_moment_bound(grad_F_norm, sigma_tilde, D_in):
    """First moment of ``G_i``, equation (7): ``2‖∇F(w)‖² + 0.08σ̃²/D_in``.

    Setting: MAML theorem conditions (``αL ≤ 1/6``).
    Guarantee: ``‖E[G_i(w)]‖² ≤`` the bound; 0.08 dominates ``2((1 + αL)αL)²``
    (``maml_bias`` squared, with ``(a + b)² ≤ 2a² + 2b²``).
    Reference: explainer (7), THEORY.md §4.

    Args:
        grad_F_norm: ``‖∇F(w)‖`` (float or array).
        sigma_tilde, D_in: gradient noise and inner batch.

    Returns:
        The bound on ``‖E[G_i(w)]‖²``.
    """
    g, s = _nonneg("grad_F_norm", grad_F_norm), _nonneg("sigma_tilde", sigma_tilde)
    return _out(lit.M1_GRAD * g ** 2 + lit.M1_NOISE * s ** 2 / _size("D_in", D_in))


@_kind("upper")
def second_moment_bound(grad_F_norm, sigma, sigma_tilde, D_in, D_o):
    """Second moment of ``G_i``, equation (8):
    ``40‖∇F(w)‖² + 14σ² + σ̃²(2/D_o + 1/(6D_in))``.

    Setting: MAML theorem conditions (``αL ≤ 1/6``, ``D_h ≥ ⌈2α²σ_H²⌉``).
    Guarantee: ``E‖G_i(w)‖² ≤`` the bound (task draw and all batches).
    Reference: explainer (8), THEORY.md §4 (the 2 and 1/6 from ``hessian_factor_sq ≤ 2``
    and ``second_moment_inner`` at ``φ = 2``; 40 and 14 are loose).

    Args:
        grad_F_norm: ``‖∇F(w)‖`` (float or array).
        sigma, sigma_tilde, D_in, D_o: constants and batch sizes.

    Returns:
        The bound on ``E‖G_i(w)‖²``.
    """
    g, sig, s = _nonneg("grad_F_norm", grad_F_norm), _nonneg("sigma", sigma), _nonneg("sigma_tilde", sigma_tilde)
    D_in, D_o = _size("D_in", D_in), _size("D_o", D_o)
    return _out(lit.M2_GRAD * g ** 2 + lit.M2_SIGMA * sig ** 2
                + s ** 2 * (lit.M2_DO / D_o + lit.M2_DIN / D_in))


@_kind("upper")
def descent_rhs(F_w, beta, grad_dot_g, g_sq_norm, L_w):
    """Descent lemma with the local constant, equation (9):
    ``F(w_k) − β∇F(w_k)ᵀg + (L(w_k)/2)β²‖g‖²``.

    Guarantee: ``F(w_k − βg) ≤`` the bound (smoothness lemma, ``α ≤ 1/L``,
    for steps within the lemma's reach).
    Reference: explainer (9), THEORY.md §3–§4.

    Args:
        F_w: ``F(w_k)``.
        beta: the step ``β_k > 0``.
        grad_dot_g: ``∇F(w_k)ᵀg`` for the update direction ``g``.
        g_sq_norm: ``‖g‖²``.
        L_w: ``L(w_k)`` (``smooth_local_L``).

    Returns:
        The bound on ``F(w_{k+1})``.
    """
    F_w, grad_dot_g = np.asarray(F_w, dtype=float), np.asarray(grad_dot_g, dtype=float)
    beta, g2, L_w = _pos("beta", beta), _nonneg("g_sq_norm", g_sq_norm), _pos("L_w", L_w)
    return _out(F_w - beta * grad_dot_g + 0.5 * L_w * beta ** 2 * g2)


@_kind("upper")
def conditional_rhs(F_w, beta_mean, beta_sq_mean, grad_dot_mean_G, mean_G_sq, G_sq_mean, B, L_w):
    """Conditional descent, equation (10):
    ``F(w_k) − E[β]∇FᵀE[G] + (L(w_k)/2)E[β²](‖E[G]‖² + E‖G‖²/B)``.

    Setting: ``β_k`` independent of the batch ``B_k`` (``L̃`` uses its own
    batches), ``B`` tasks drawn i.i.d. so that
    ``E‖(1/B)ΣG_i‖² ≤ ‖E[G]‖² + E‖G‖²/B``.
    Reference: explainer (10), THEORY.md §4.

    Args:
        F_w: ``F(w_k)``.
        beta_mean, beta_sq_mean: ``E[β_k]``, ``E[β_k²]`` given ``w_k``.
        grad_dot_mean_G: ``∇F(w_k)ᵀE[G_i(w_k)]``.
        mean_G_sq: ``‖E[G_i(w_k)]‖²``; G_sq_mean: ``E‖G_i(w_k)‖²``.
        B: tasks per step.
        L_w: ``L(w_k)``.

    Returns:
        The bound on ``E[F(w_{k+1}) | F_k]``.
    """
    F_w, gd = np.asarray(F_w, dtype=float), np.asarray(grad_dot_mean_G, dtype=float)
    b1, b2 = _nonneg("beta_mean", beta_mean), _nonneg("beta_sq_mean", beta_sq_mean)
    m1, m2 = _nonneg("mean_G_sq", mean_G_sq), _nonneg("G_sq_mean", G_sq_mean)
    B, L_w = _size("B", B), _pos("L_w", L_w)
    return _out(F_w - b1 * gd + 0.5 * L_w * b2 * (m1 + m2 / B))


def _rate_den(eps, L, rho, alpha, sigma):
    """``L + ρα(σ + ε)``, validated (the denominator of (11), numerator of (14))."""
    eps = _pos("eps", eps)
    return eps, _pos("L", L) + _nonneg("rho", rho) * _nonneg("alpha", alpha) * (_nonneg("sigma", sigma) + eps)


@_kind("lower")
def per_step_decrease(eps, L, rho, alpha, sigma):
    """Per-step decrease, equation (11): ``ε²/(1600(L + ρα(σ + ε)))``.

    Guarantee: ``E F(w_k) − E F(w_{k+1}) ≥`` this, but only while
    ``E‖∇F(w_k)‖`` exceeds ``max{ε, noise_floor}`` (it cannot hold for all ``k``).
    Reference: explainer (11), THEORY.md §4 (caveat).

    Args:
        eps: target ``ε > 0``; L, rho, alpha, sigma: constants and inner step.

    Returns:
        The guaranteed decrease of ``E F``.
    """
    eps, den = _rate_den(eps, L, rho, alpha, sigma)
    return _out(eps ** 2 / (lit.DECREASE_DEN * den))


@_kind("upper")
def telescoped_rhs(F_w0, T, eps, L, rho, alpha, sigma):
    """Telescoped decrease, equation (13): ``F(w_0) − T ε²/(1600(L + ρα(σ + ε)))``.

    Guarantee: ``E F(w_T) ≤`` this if ``E‖∇F(w_k)‖ > ε`` for all ``k < T``.
    Reference: explainer (12)–(13).

    Args:
        F_w0: ``F(w_0)``; T: steps (integer ``≥ 0``, float or array).
        eps, L, rho, alpha, sigma: as ``per_step_decrease``.

    Returns:
        The bound on ``E F(w_T)``.
    """
    T = _num("T", T, integer=True)
    return _out(float(F_w0) - T * per_step_decrease(eps=eps, L=L, rho=rho, alpha=alpha, sigma=sigma))


@_kind("upper")
def iterations_upper(eps, Delta, L, rho, alpha, sigma):
    """Iterations to an ε-stationary point in expectation, equation (14):
    ``1600Δ(L + ρα(σ + ε))/ε²``.

    Guarantee: the first ``k`` with ``E‖∇F(w_k)‖ ≤ ε`` (seed-averaged norm) comes
    no later than this, for ``ε`` above the noise floor.
    Reference: explainer (14), THEORY.md §4.

    Args:
        eps: target ``ε > 0`` (float or array).
        Delta: ``F(w_0) − inf F`` (A1).
        L, rho, alpha, sigma: constants and inner step.

    Returns:
        The iteration bound (not rounded).
    """
    Delta = _nonneg("Delta", Delta)
    eps, den = _rate_den(eps, L, rho, alpha, sigma)
    return _out(lit.DECREASE_DEN * Delta * den / eps ** 2)
