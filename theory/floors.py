"""Noise floors of the three theorems (THEORY.md §4-§6), HF-MAML's difference (§6), the hard chain (§7).

Declared with ``_kind`` (``theory._calling``); ``theory.bounds`` re-exports them.
"""
from __future__ import annotations


import numpy as np

from mamlcheck import literature as lit
from mamlcheck.theory._calling import _algorithm, _kind, _nonneg, _out, _pos, _size
from mamlcheck.theory.lemmas import inner_bias


# --- noise floors: THEORY.md §4-§6 ---------------------------------------------
@_kind("value")
def noise_S(sigma, sigma_tilde, B, D_in, D_o):
    """Noise level of the MAML and HF-MAML theorems:
    ``S = σ²/B + σ̃²/(B·D_o) + σ̃²/D_in`` (THEORY.md §4).

    Args:
        sigma, sigma_tilde: task dissimilarity and gradient noise.
        B, D_in, D_o: batch sizes (floats or arrays).

    Returns:
        ``S``.
    """
    sig, s = _nonneg("sigma", sigma), _nonneg("sigma_tilde", sigma_tilde)
    B, D_in, D_o = _size("B", B), _size("D_in", D_in), _size("D_o", D_o)
    return _out(sig ** 2 / B + s ** 2 / (B * D_o) + s ** 2 / D_in)


@_kind("value")
def S_prime(sigma, sigma_tilde, B, D_in, D_o, alpha, L):
    """Noise level of the FO-MAML theorem:
    ``S′ = σ²(1/B + 20α²L²) + σ̃²/(B·D_o) + σ̃²/D_in`` (THEORY.md §5).

    The ``20α²L²σ²`` term does not shrink with the batches: the dropped
    Hessian term (``fomaml_dropped_term``).

    Args:
        sigma, sigma_tilde, B, D_in, D_o: as ``noise_S``; alpha, L: inner step, constant.

    Returns:
        ``S′``.
    """
    aL = _nonneg("alpha", alpha) * _pos("L", L)
    return _out(noise_S(sigma=sigma, sigma_tilde=sigma_tilde, B=B, D_in=D_in, D_o=D_o)
                + lit.FOMAML_FLOOR_ALPHA * (aL * _nonneg("sigma", sigma)) ** 2)


def _S(**kw):
    return noise_S(**{k: kw[k] for k in ("sigma", "sigma_tilde", "B", "D_in", "D_o")})


#: The noise level each theorem's floor takes: ``S`` (MAML §4, HF-MAML §6),
#: ``S′`` (FO-MAML §5), none for exact gradients (infinite batches: the floor is ε).
_NOISE_LEVEL = {"maml": _S, "hfmaml": _S, "fomaml": lambda **kw: S_prime(**kw),
                "exact": lambda **kw: 0.0 * _S(**kw)}


@_kind("upper")
def noise_floor(algorithm, L, rho, sigma, sigma_tilde, alpha, B, D_in, D_o, eps=0.0):
    """Accuracy guaranteed by the full theorem:
    ``max{√(a(1 + ρασ/L)S), b(ρα/L)S, ε}``.

    Setting: ``(a, b) = literature.FLOOR[algorithm]``: (61, 61) MAML, (14, 14)
    FO-MAML with ``S′`` for ``S``, (36, 36) HF-MAML; ``exact`` has infinite
    batches, ``S = 0``.
    Guarantee: ``E‖∇F(w_ε)‖ ≤`` the floor.
    Reference: THEORY.md §4 (MAML), §5 (FO-MAML), §6 (HF-MAML).

    Args:
        algorithm: ``maml``, ``fomaml``, ``hfmaml`` or ``exact``.
        L, rho, sigma, sigma_tilde, alpha: constants and inner step.
        B, D_in, D_o: batch sizes (floats or arrays).
        eps: target ``ε ≥ 0``; 0 gives the floor alone.

    Returns:
        The guaranteed accuracy.
    """
    algorithm = _algorithm(algorithm)
    L, rho, alpha, sig = _pos("L", L), _nonneg("rho", rho), _nonneg("alpha", alpha), _nonneg("sigma", sigma)
    eps = _nonneg("eps", eps)
    S = _NOISE_LEVEL[algorithm](sigma=sigma, sigma_tilde=sigma_tilde, B=B, D_in=D_in, D_o=D_o, alpha=alpha, L=L)
    a, b = lit.FLOOR.get(algorithm, lit.FLOOR["maml"])
    return _out(np.maximum.reduce(np.broadcast_arrays(
        np.sqrt(a * (1 + rho * alpha * sig / L) * S), b * (rho * alpha / L) * S, eps)))


@_kind("upper")
def fomaml_dropped_term(alpha, L, sigma_tilde, D_in, mean_inner_grad_norm):
    """Bias of FO-MAML: ``‖E[G_i^FO(w)] − ∇F(w)‖ ≤ αL·E_i‖∇f_i(w − α∇f_i(w))‖ + αLσ̃/√D_in``.

    Derivation: with ``u_i = w − α∇f_i(w)``, ``E[G_i^FO] = Σ p_i (∇f_i(u_i) + e_i)``
    with ``‖e_i‖ ≤ inner_bias``, and (5) gives
    ``E[G^FO] − ∇F = α Σ p_i ∇²f_i(w)∇f_i(u_i) + Σ p_i e_i``; then
    ``‖∇²f_i‖₂ ≤ L`` (A2).  The first term is the dropped Hessian term: it does
    not shrink with the batches, and vanishes at stationary points when tasks
    are identical (``σ = 0``: ``∇F = 0`` forces ``∇f(u) = 0`` for ``αL < 1``).
    Without the inner gradients, ``E_i‖∇f_i(u_i)‖ ≤ E_i‖∇F_i(w)‖/(1 − αL)`` with
    ``∇F_i = (I − α∇²f_i)∇f_i(u_i)`` may be passed instead.
    Reference: THEORY.md §5.

    Args:
        alpha, L, sigma_tilde, D_in: as ``inner_bias``.
        mean_inner_grad_norm: ``E_i‖∇f_i(w − α∇f_i(w))‖`` (float or array).

    Returns:
        The bias bound.
    """
    g = _nonneg("mean_inner_grad_norm", mean_inner_grad_norm)
    return _out(_nonneg("alpha", alpha) * _pos("L", L) * g + inner_bias(alpha=alpha, L=L, sigma_tilde=sigma_tilde, D_in=D_in))


# --- THEORY.md §6: HF-MAML ---------------------------------------------------------
@_kind("upper")
def hf_fd_error(rho, delta, v_norm):
    """Error of HF-MAML's central difference: ``ρδ‖v‖²/2``.

    Guarantee: ``‖[∇f(w + δv) − ∇f(w − δv)]/(2δ) − ∇²f(w)v‖ ≤ ρδ‖v‖²/2``
    (write the difference as ``∫_{−δ}^{δ} ∇²f(w + tv)v dt`` and use A3).  For the
    batch difference it holds in expectation over ``D_h`` (the sample Hessians
    need not be ``ρ``-Lipschitz).  With ``δ = hf_delta`` the error of the
    direction ``v − αd`` is at most ``‖v‖/12``.
    Reference: THEORY.md §6.

    Args:
        rho: Hessian Lipschitz constant; delta: step ``δ ≥ 0``; v_norm: ``‖v‖``.

    Returns:
        The error bound.
    """
    return _out(0.5 * _nonneg("rho", rho) * _nonneg("delta", delta) * _nonneg("v_norm", v_norm) ** 2)


@_kind("value")
def hf_delta(rho, alpha, v_norm, cap=None):
    """HF-MAML's finite-difference step, THEORY.md §6: the theorem's
    ``δ = 1/(6ρα‖v‖)``; where ``ρα‖v‖ = 0`` the central difference is exact for
    every ``δ`` and ``DELTA_WHEN_EXACT`` is used.  ``cap`` (a user's
    ``Hyper.delta_cap``; ``None``: the theorem's δ) caps it, which leaves the
    theorem (``theory.conditions`` reports it).

    Args:
        rho, alpha: constants and inner step; v_norm: ``‖v_i‖`` (float or array);
        cap: the largest ``δ``, or ``None``.

    Returns:
        ``δ``.
    """
    rho, alpha, v_norm = _nonneg("rho", rho), _nonneg("alpha", alpha), _nonneg("v_norm", v_norm)
    return _out(hf_delta_formula(rho, alpha, v_norm, None if cap is None else float(_pos("cap", cap))))


#: δ where ``ρα‖v‖ = 0``: the difference is then exact, whatever δ (THEORY.md §6)
DELTA_WHEN_EXACT = 1.0


def hf_delta_formula(rho: float, alpha: float, v_norm: np.ndarray, cap: float | None) -> np.ndarray:
    """``hf_delta`` without validation, for the steps' hot loop: the one
    implementation of ``δ = 1/(6ρα‖v‖)`` (``DELTA_WHEN_EXACT`` where ``ρα‖v‖ = 0``),
    capped at ``cap`` unless it is ``None``."""
    r = rho * alpha * v_norm
    with np.errstate(divide="ignore", over="ignore"):
        delta = np.where(r > 0, 1.0 / (lit.HF_DELTA_DEN * np.where(r > 0, r, 1.0)), DELTA_WHEN_EXACT)
    return delta if cap is None else np.minimum(delta, cap)


# --- THEORY.md §7: the hard chain ------------------------------------------------------
@_kind("value")
def chain_T(eps, Delta, L):
    """Chain length for a budget: ``T(ε) = ⌊ΔL/(1824ε²)⌋`` (1824 = 12·152).

    The scaled chain ``(Lλ²/152) f̄_T(x/λ)``, ``λ = 152ε/L``, is ``L``-smooth, has
    ``Δ ≤ 1824Tε²/L`` and ``‖∇f‖ > ε`` while ``|x_T| < λ``.
    Reference: THEORY.md §7 (Carmon, Duchi, Hinder & Sidford 2019).

    Args:
        eps: ``ε > 0`` (float or array); Delta: budget ``Δ ≥ 0``; L: smoothness.

    Returns:
        ``T`` (an int for scalar ``eps``).
    """
    T = np.floor(_nonneg("Delta", Delta) * _pos("L", L) / (lit.CHAIN_T_DEN * _pos("eps", eps) ** 2))
    return int(T) if np.ndim(T) == 0 else T.astype(int)


@_kind("value")
def chain_eps_prime(eps, alpha, L, N=1):
    """Chain accuracy for MAML: ``ε′ = ε/(1 − αL)``, since
    ``‖∇F(w)‖ ≥ (1 − αL)‖∇f(w − α∇f(w))‖`` (THEORY.md §7; needs ``αL < 1``); with
    ``N`` inner steps ``ε′ = ε/(1 − αL)^N``, since ``‖∇F_N(w)‖ ≥ (1 − αL)^N‖∇f(u^N)‖``
    (THEORY.md §9, (D1))."""
    eps, alpha, L, N = _pos("eps", eps), _nonneg("alpha", alpha), _pos("L", L), _size("N", N)
    if np.any(alpha * L >= 1):
        raise ValueError(f"chain_eps_prime needs alpha*L < 1, got alpha*L = {alpha * L}")
    return _out(eps / (1 - alpha * L) ** N)


@_kind("lower")
def chain_lower_bound_iterations(eps, Delta, L, alpha, N=1):
    """Outer steps exact MAML from ``w_0 = 0`` needs on the chain built for
    ``ε′ = chain_eps_prime``: ``⌈(T(ε′) − 1)/2⌉ = ⌊T(ε′)/2⌋``; with ``N`` inner
    steps ``⌊T(ε′)/(N + 1)⌋``.  For identical tasks (``σ = 0``) only: the
    inequality ``‖∇F‖ ≥ (1 − αL)‖∇f(u)‖`` below is shown for one task
    (docs/THEORY.md, errata).

    Argument: the chain is zero-respecting, so if ``w_t`` is supported on the
    first ``k`` coordinates, the inner point ``u_t = w_t − α∇f(w_t)`` is
    supported on ``k + 1`` and ``(I − α∇²f(w_t))∇f(u_t)`` on ``k + 2``: by
    induction ``u_t`` is supported on ``2t + 1`` coordinates.  While
    ``2t + 1 ≤ T − 1`` the last coordinate of ``u_t`` is 0, so
    ``‖∇F(w_t)‖ ≥ (1 − αL)‖∇f(u_t)‖ > (1 − αL)ε′ = ε``.  Every
    ``t ≤ (T − 2)/2`` is therefore non-stationary and the first ε-stationary
    step is at least ``⌊(T − 2)/2⌋ + 1 = ⌈(T − 1)/2⌉`` (the ceiling of
    THEORY.md's "about (T(ε′) − 1)/2", exact for odd and even ``T``).  With
    ``N`` inner steps (THEORY.md §9): ``u_t^N`` is supported on ``k + N``,
    ``∇f(u_t^N)`` on ``k + N + 1``, and each Hessian factor (tridiagonal, zero
    past ``prog(u^j) + 1``) keeps that support, so ``w_t`` lives on ``t(N + 1)``
    coordinates and ``u_t^N`` on ``t(N + 1) + N``; while that is ``≤ T − 1``,
    ``‖∇F_N(w_t)‖ ≥ (1 − αL)^N‖∇f(u_t^N)‖ > ε``, so the first ε-stationary step
    is at least ``⌊(T − 1 − N)/(N + 1)⌋ + 1 = ⌊T/(N + 1)⌋``.  The budget ``Δ``
    bounds ``F(0) − inf F ≤ f(0) − inf f`` as well (``α ≤ 1/L``).
    Reference: THEORY.md §7, §9.

    Args:
        eps: ``ε > 0``; Delta: budget; L: smoothness; alpha: inner step (``αL < 1``);
        N: inner steps.

    Returns:
        The lower bound on iterations (an int for scalar ``eps``).
    """
    N = int(_size("N", N))
    T = np.asarray(chain_T(eps=chain_eps_prime(eps=eps, alpha=alpha, L=L, N=N), Delta=Delta, L=L))
    n = T // (N + 1)
    return int(n) if n.ndim == 0 else n
