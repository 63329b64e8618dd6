"""The lemmas of THEORY.md §3 (smoothness of F, step size, bias, second moments) as bounds.

Each is declared with ``_kind`` (``theory._calling``): keyword symbols,
``constants=`` / ``hyper=`` records, validation.  ``theory.bounds`` re-exports them.
"""
from __future__ import annotations

import math

import numpy as np

from mamlcheck import literature as lit
from mamlcheck.theory._calling import _algorithm, _kind, _nonneg, _out, _pos, _size


def _at_least_one(factor: float, num: float, L: float) -> int:
    """``max(1, ⌈factor·(num/L)²⌉)``; 1 when ``num = 0`` (nothing to estimate)."""
    if num == 0:
        return 1
    if L <= 0:
        raise ValueError("L must be > 0 to size the L̃ estimate when ρα·σ > 0")
    return max(1, math.ceil(factor * (num / L) ** 2))


def _default_B_prime(rho: float, alpha: float, sigma: float, L: float) -> int:
    """``B′ = ⌈½(ρασ/L)²⌉`` tasks for the ``L̃`` estimate (THEORY.md §3), at least 1."""
    return _at_least_one(lit.B_PRIME_FACTOR, rho * alpha * sigma, L)


def _default_D_beta(rho: float, alpha: float, sigma_tilde: float, L: float) -> int:
    """``D_β = ⌈(2ρασ̃/L)²⌉`` samples per task for the ``L̃`` estimate (THEORY.md §3), at least 1."""
    return _at_least_one(lit.D_BETA_FACTOR, rho * alpha * sigma_tilde, L)


# --- THEORY.md §3: lemmas -----------------------------------------------------
@_kind("upper")
def smooth_local_L(L, rho, alpha, mean_grad_norm):
    """Local smoothness constant of ``F``: ``L(w) = 4L + 2ρα E_i‖∇f_i(w)‖``.

    Setting: A2, A3, ``α ≤ 1/L``.
    Guarantee: ``‖∇F(w) − ∇F(u)‖ ≤ L(w)‖w − u‖`` and
    ``|F(u) − F(w) − ∇F(w)ᵀ(u − w)| ≤ (L(w)/2)‖u − w‖²``.
    Reference: THEORY.md §3, smoothness lemma of F.

    Args:
        L, rho, alpha: constants and inner step.
        mean_grad_norm: ``E_i‖∇f_i(w)‖`` (float or array).

    Returns:
        ``L(w)``.
    """
    L, rho, alpha = _pos("L", L), _nonneg("rho", rho), _nonneg("alpha", alpha)
    g = _nonneg("mean_grad_norm", mean_grad_norm)
    return _out(local_L_formula(L, rho, alpha, g))


def local_L_formula(L, rho, alpha, mean_grad_norm):
    """``4L + 2ρα·mean_grad_norm`` without validation, for hot loops: the one
    implementation of the smoothness lemma's ``L(w)`` and of the step-size
    lemma's estimate ``L̃(w)`` (the same formula with ``(1/B′)Σ_j‖∇̃f_j(w, D_β)‖``)."""
    return lit.SMOOTH_L_FACTOR * L + (lit.SMOOTH_RHO_FACTOR * rho * alpha) * mean_grad_norm


@_kind("lower")
def step_inv_mean_lower(L_w):
    """Lower bound ``E[1/L̃(w)] ≥ 0.8/L(w)`` of the step-size lemma.

    Setting: ``L̃`` estimated from ``B′ ≥ ⌈½(ρασ/L)²⌉`` tasks with
    ``D_β ≥ ⌈(2ρασ̃/L)²⌉`` samples each.
    Reference: THEORY.md §3, step-size lemma.

    Args:
        L_w: the local constant ``L(w)`` (``smooth_local_L``).

    Returns:
        ``0.8/L(w)``; ``E[β_k] ≥`` this ``/ c``.
    """
    return _out(lit.INV_LT_MEAN_LOWER / _pos("L_w", L_w))


@_kind("upper")
def step_inv_sq_upper(L_w):
    """Upper bound ``E[1/L̃(w)²] ≤ 3.125/L(w)²`` of the step-size lemma.

    Setting and Reference: as ``step_inv_mean_lower`` (THEORY.md §3).

    Args:
        L_w: the local constant ``L(w)``.

    Returns:
        ``3.125/L(w)²``; ``E[β_k²] ≤`` this ``/ c²``.
    """
    return _out(lit.INV_LT_SQ_UPPER / _pos("L_w", L_w) ** 2)


@_kind("value")
def B_prime_min(rho, alpha, sigma, L) -> int:
    """Tasks of the ``L̃`` estimate: ``B′ = ⌈½(ρασ/L)²⌉`` (at least 1), THEORY.md §3."""
    for name, x in (("rho", rho), ("alpha", alpha), ("sigma", sigma)):
        _nonneg(name, x)
    return _default_B_prime(float(rho), float(alpha), float(sigma), float(_nonneg("L", L)))


@_kind("value")
def D_beta_min(rho, alpha, sigma_tilde, L) -> int:
    """Samples per task of the ``L̃`` estimate: ``D_β = ⌈(2ρασ̃/L)²⌉`` (at least 1), THEORY.md §3."""
    for name, x in (("rho", rho), ("alpha", alpha), ("sigma_tilde", sigma_tilde)):
        _nonneg(name, x)
    return _default_D_beta(float(rho), float(alpha), float(sigma_tilde), float(_nonneg("L", L)))


@_kind("value")
def D_h_min(algorithm: str, alpha, sigma_H) -> int:
    """Hessian batch of the theorem (at least 1): ``⌈2α²σ_H²⌉`` for MAML (§4),
    ``⌈36(ασ_H)²⌉`` for HF-MAML (§6); FO-MAML and exact mode use no Hessian batch (1)."""
    alpha, sigma_H = float(_nonneg("alpha", alpha)), float(_nonneg("sigma_H", sigma_H))
    factor = lit.D_H_FACTOR.get(_algorithm(algorithm), 0.0)
    return max(1, math.ceil(factor * (alpha * sigma_H) ** 2))


@_kind("upper")
def inner_bias(alpha, L, sigma_tilde, D_in):
    """Bias of the inner stochastic step: ``αLσ̃/√D_in``.

    Guarantee: ``‖E[∇̃f_i(w − α∇̃f_i(w, D_in), D_o)] − ∇f_i(w − α∇f_i(w))‖ ≤ αLσ̃/√D_in``
    (A2: ``∇f_i`` is ``L``-Lipschitz; A5: ``E‖∇̃f_i − ∇f_i‖ ≤ σ̃/√D_in``).
    Reference: THEORY.md §3, bias lemma.

    Args:
        alpha, L, sigma_tilde: inner step and constants.
        D_in: inner batch size.

    Returns:
        The bias bound.
    """
    alpha, L, s = _nonneg("alpha", alpha), _pos("L", L), _nonneg("sigma_tilde", sigma_tilde)
    return _out(alpha * L * s / np.sqrt(_size("D_in", D_in)))


@_kind("upper")
def maml_bias(alpha, L, sigma_tilde, D_in):
    """Bias of the MAML estimator: ``‖E[G_i(w)] − ∇F(w)‖ ≤ (1 + αL)αLσ̃/√D_in``.

    Derivation: ``D_h`` is independent of the inner and outer batches, so
    ``E[G_i] = Σ p_i (I − α∇²f_i(w))(∇f_i(w − α∇f_i(w)) + e_i)`` with
    ``‖e_i‖ ≤ inner_bias``; subtract (5) and use ``‖I − α∇²f_i‖₂ ≤ 1 + αL``.
    Reference: THEORY.md §4, the derivation of (7)'s 0.08.

    Args:
        alpha, L, sigma_tilde, D_in: as ``inner_bias``.

    Returns:
        The bias bound.
    """
    return _out((1.0 + _nonneg("alpha", alpha) * _pos("L", L)) * inner_bias(alpha=alpha, L=L, sigma_tilde=sigma_tilde, D_in=D_in))


@_kind("upper")
def second_moment_inner(grad_norm_at_inner_point, alpha, L, sigma_tilde, D_in, D_o, phi):
    """Second moment of the stochastic outer gradient at the stochastic inner point.

    Guarantee: for any ``φ > 0``,
    ``E‖∇̃f_i(w − α∇̃f_i(w, D_in), D_o)‖² ≤ (1 + 1/φ)‖∇f_i(w − α∇f_i(w))‖²
    + (1 + φ)α²L²σ̃²/D_in + σ̃²/D_o``.
    Reference: THEORY.md §3, second-moment lemma.

    Args:
        grad_norm_at_inner_point: ``‖∇f_i(w − α∇f_i(w))‖`` (float or array).
        alpha, L, sigma_tilde, D_in, D_o: inner step, constants, batch sizes.
        phi: the free parameter ``φ > 0`` of Young's inequality.

    Returns:
        The bound.
    """
    g = _nonneg("grad_norm_at_inner_point", grad_norm_at_inner_point)
    phi = _pos("phi", phi)
    alpha, L, s = _nonneg("alpha", alpha), _pos("L", L), _nonneg("sigma_tilde", sigma_tilde)
    D_in, D_o = _size("D_in", D_in), _size("D_o", D_o)
    return _out((1 + 1 / phi) * g ** 2 + (1 + phi) * (alpha * L * s) ** 2 / D_in + s ** 2 / D_o)


@_kind("upper")
def hessian_factor_sq(alpha, L, sigma_H, D_h):
    """``E‖(I − α∇̃²f_i(w, D_h)) v‖² ≤ ((1 + αL)² + α²σ_H²/D_h)‖v‖²`` for ``v``
    independent of ``D_h`` (the cross term vanishes for a fixed vector).

    With ``αL ≤ 1/6`` and ``D_h ≥ ⌈2α²σ_H²⌉`` this is ``≤ (7/6)² + ½ ≤ 2``:
    the factor 2 of (8) (THEORY.md §4).

    Args:
        alpha, L, sigma_H: inner step and constants.
        D_h: Hessian batch size.

    Returns:
        The factor multiplying ``‖v‖²``.
    """
    alpha, L, s = _nonneg("alpha", alpha), _pos("L", L), _nonneg("sigma_H", sigma_H)
    return _out((1 + alpha * L) ** 2 + (alpha * s) ** 2 / _size("D_h", D_h))
