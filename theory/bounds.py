"""The bounds of Fallah, Mokhtari & Ozdaglar (and the hard chain's) as pure functions.

Each function takes the constants (``L, rho, sigma, sigma_tilde, sigma_H``,
``Delta``) and hyperparameters as plain numbers, returns a float (an array
where an argument such as ``grad_F_norm`` is an array), and cites its equation
of the seed (7)–(14) or its lemma of THEORY.md §3–§7.  Every literature
constant comes from ``theory.literature``.

Each bound has a *kind* (``KIND[name]``, also ``fn.kind``): ``upper`` (the
measured quantity must not exceed it), ``lower`` (must not fall below it) or
``value`` (a rule or definition, not a guarantee).  A check returns the
measured value and the bound side by side (``moment_check``) and the caller
asserts by the kind (``holds``).
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Callable

import numpy as np

from mamlcheck import literature as lit
from mamlcheck.theory.checks import verdict

__all__ = [
    "KIND", "HYPER_FIELDS", "CONSTANT_NAMES", "moment_check", "holds",
    "smooth_local_L", "step_inv_mean_lower", "step_inv_sq_upper", "B_prime_min", "D_beta_min",
    "D_h_min", "inner_bias", "maml_bias", "second_moment_inner", "hessian_factor_sq",
    "first_moment_bound", "second_moment_bound", "descent_rhs", "conditional_rhs",
    "per_step_decrease", "telescoped_rhs", "iterations_upper",
    "noise_S", "S_prime", "noise_floor", "fomaml_dropped_term",
    "hf_fd_error", "hf_delta", "hf_delta_formula", "local_L_formula", "chain_T", "chain_eps_prime", "chain_lower_bound_iterations",
]

KIND: dict[str, str] = {}
_KINDS = ("upper", "lower", "value")
#: Fields a hyperparameter record (``algorithms.Hyper``, or anything with these
#: attributes) fills in when passed as ``hyper=``.
HYPER_FIELDS = ("algorithm", "alpha", "B", "D_in", "D_o", "D_h")
CONSTANT_NAMES = ("L", "rho", "sigma", "sigma_tilde", "sigma_H")


def _constant_values(constants) -> dict[str, float]:
    """Plain floats from a ``Constants`` record (``.values()``) or a mapping."""
    values = constants.values() if hasattr(constants, "NAMES") else dict(constants)
    unknown = sorted(set(values) - set(CONSTANT_NAMES))
    if unknown:
        raise TypeError(f"constants has unknown names {unknown}; expected some of {list(CONSTANT_NAMES)}")
    return values


def _kind(kind: str) -> Callable:
    """Declare a bound: register its kind (``KIND[name]``, ``fn.kind``) and make
    its symbols keyword arguments, so that no two can be swapped silently.

    The wrapped function takes at most one positional argument (its first
    symbol: ``ε``, or the measured quantity it bounds) and every other symbol
    by name.  ``constants=`` (a ``Constants`` record or a mapping) supplies
    ``L, rho, sigma, sigma_tilde, sigma_H`` and ``hyper=`` the fields
    ``HYPER_FIELDS`` that are not given explicitly; an explicit keyword wins.
    A missing or unknown symbol is a ``TypeError`` naming it.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")

    def mark(fn):
        sig = inspect.signature(fn)
        names = list(sig.parameters)
        required = [n for n, p in sig.parameters.items() if p.default is inspect.Parameter.empty]

        @functools.wraps(fn)
        def bound(*args, constants=None, hyper=None, **kw):
            if len(args) > 1:
                raise TypeError(f"{fn.__name__}() takes at most one positional argument ({names[0]}); "
                                f"pass the others by name: {', '.join(names[1:])}")
            if args:
                if names[0] in kw:
                    raise TypeError(f"{fn.__name__}() got {names[0]} both by position and by name")
                kw[names[0]] = args[0]
            if hyper is not None:
                for n in HYPER_FIELDS:
                    if n in names and n not in kw:
                        kw[n] = getattr(hyper, n)
            if constants is not None:
                for n, v in _constant_values(constants).items():
                    if n in names and n not in kw:
                        kw[n] = v
            unknown = sorted(set(kw) - set(names))
            if unknown:
                raise TypeError(f"{fn.__name__}() got unknown argument(s) {unknown}; it takes {names}")
            missing = [n for n in required if n not in kw]
            if missing:
                hint = " (pass constants=family.constants() for L, rho, sigma, ...)" if set(missing) & set(
                    CONSTANT_NAMES) else ""
                raise TypeError(f"{fn.__name__}() is missing {missing}{hint}")
            return fn(**kw)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()]
        params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in ("constants", "hyper")]
        bound.__signature__ = sig.replace(parameters=params)
        bound.kind = kind
        KIND[fn.__name__] = kind
        return bound
    return mark


# --- validation ---------------------------------------------------------------
def _num(name: str, x, *, low: float = 0.0, strict: bool = False, integer: bool = False):
    """``x`` as a float array, finite and ``≥ low`` (``> low`` if ``strict``)."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {x!r}") from None
    rel = ">" if strict else ">="
    bad = (a <= low) if strict else (a < low)
    if not np.all(np.isfinite(a)) or np.any(bad):
        raise ValueError(f"{name} must be finite and {rel} {low:g}, got {x!r}")
    if integer and np.any(a != np.floor(a)):
        raise ValueError(f"{name} must be an integer, got {x!r}")
    return a


def _nonneg(name, x):
    return _num(name, x)


def _pos(name, x):
    return _num(name, x, strict=True)


def _size(name, x):
    """A batch size or count: an integer ``≥ 1``."""
    return _num(name, x, low=1.0, integer=True)


def _out(a):
    """A float for scalar results, the array otherwise."""
    a = np.asarray(a)
    return float(a) if a.ndim == 0 else a


# --- side-by-side checks (DESIGN.md style note 1) ------------------------------
def moment_check(measured, bound):
    """``(measured, bound)`` side by side, PEPit style (``wc_...`` returns
    ``(pepit_tau, theoretical_tau)``); the caller asserts by ``KIND``.

    Args:
        measured: the measured quantity (float or array).
        bound: the theoretical value for the same constants.

    Returns:
        ``(measured, bound)`` as floats (or arrays of a common shape).
    """
    m = np.asarray(measured, dtype=float)
    b = np.asarray(bound, dtype=float)
    m, b = np.broadcast_arrays(m, b)
    return _out(m), _out(b)


def holds(measured, bound, kind: str, rtol: float = 0.0):
    """Whether ``measured`` respects ``bound`` of the given kind, with a
    relative slack ``rtol`` (for Monte Carlo estimates).

    ``upper``: ``measured ≤ bound·(1 + rtol)``; ``lower``:
    ``measured ≥ bound·(1 − rtol)``.  A ``value`` is not a guarantee and
    cannot be checked this way.
    """
    if kind not in ("upper", "lower"):
        raise ValueError(f"kind must be 'upper' or 'lower' to be checked, got {kind!r}")
    rtol = float(_nonneg("rtol", rtol))
    m, b = moment_check(measured, bound)
    ok = np.asarray(verdict(m, m, b, kind, rtol * np.abs(b))) == "holds"
    return bool(ok) if np.ndim(ok) == 0 else ok


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


# --- THEORY.md §4: moments (7), (8), descent (9)-(10), rate (11)-(14) -------------
@_kind("upper")
def first_moment_bound(grad_F_norm, sigma_tilde, D_in):
    """First moment of ``G_i``, equation (7): ``2‖∇F(w)‖² + 0.08σ̃²/D_in``.

    Setting: MAML theorem conditions (``αL ≤ 1/6``).
    Guarantee: ``‖E[G_i(w)]‖² ≤`` the bound; 0.08 dominates ``2((1 + αL)αL)²``
    (``maml_bias`` squared, with ``(a + b)² ≤ 2a² + 2b²``).
    Reference: seed (7), THEORY.md §4.

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
    Reference: seed (8), THEORY.md §4 (the 2 and 1/6 from ``hessian_factor_sq ≤ 2``
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
    Reference: seed (9), THEORY.md §3–§4.

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
    Reference: seed (10), THEORY.md §4.

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
    Reference: seed (11), THEORY.md §4 (caveat).

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
    Reference: seed (12)–(13).

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
    Reference: seed (14), THEORY.md §4.

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


def _algorithm(algorithm: str) -> str:
    if algorithm not in (*lit.FLOOR, "exact"):
        raise ValueError(f"algorithm must be one of {(*lit.FLOOR, 'exact')}, got {algorithm!r}")
    return algorithm


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
def hf_delta(rho, alpha, v_norm, cap):
    """HF-MAML's finite-difference step ``δ = min{1/(6ρα‖v‖), cap}``; ``cap``
    when ``ρα‖v‖ = 0`` (the difference is then exact).  THEORY.md §6.

    Args:
        rho, alpha: constants and inner step; v_norm: ``‖v_i‖`` (float or array);
        cap: the largest ``δ`` (``Hyper.delta_cap``).

    Returns:
        ``δ``.
    """
    rho, alpha, v_norm = _nonneg("rho", rho), _nonneg("alpha", alpha), _nonneg("v_norm", v_norm)
    return _out(hf_delta_formula(rho, alpha, v_norm, float(_pos("cap", cap))))


def hf_delta_formula(rho: float, alpha: float, v_norm: np.ndarray, cap: float) -> np.ndarray:
    """``hf_delta`` without validation, for the steps' hot loop: the one
    implementation of ``δ = min{1/(6ρα‖v‖), cap}`` (``cap`` where ``ρα‖v‖ = 0``)."""
    r = rho * alpha * v_norm
    with np.errstate(divide="ignore", over="ignore"):
        delta = np.where(r > 0, 1.0 / (lit.HF_DELTA_DEN * np.where(r > 0, r, 1.0)), np.inf)
    return np.minimum(delta, cap)


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
def chain_eps_prime(eps, alpha, L):
    """Chain accuracy for MAML: ``ε′ = ε/(1 − αL)``, since
    ``‖∇F(w)‖ ≥ (1 − αL)‖∇f(w − α∇f(w))‖`` (THEORY.md §7; needs ``αL < 1``)."""
    eps, alpha, L = _pos("eps", eps), _nonneg("alpha", alpha), _pos("L", L)
    if np.any(alpha * L >= 1):
        raise ValueError(f"chain_eps_prime needs alpha*L < 1, got alpha*L = {alpha * L}")
    return _out(eps / (1 - alpha * L))


@_kind("lower")
def chain_lower_bound_iterations(eps, Delta, L, alpha):
    """Outer steps exact MAML from ``w_0 = 0`` needs on the chain built for
    ``ε′ = chain_eps_prime``: ``⌈(T(ε′) − 1)/2⌉ = ⌊T(ε′)/2⌋``.  For identical
    tasks (``σ = 0``) only: the inequality ``‖∇F‖ ≥ (1 − αL)‖∇f(u)‖`` below
    is shown for one task (docs/THEORY.md, errata).

    Argument: the chain is zero-respecting, so if ``w_t`` is supported on the
    first ``k`` coordinates, the inner point ``u_t = w_t − α∇f(w_t)`` is
    supported on ``k + 1`` and ``(I − α∇²f(w_t))∇f(u_t)`` on ``k + 2``: by
    induction ``u_t`` is supported on ``2t + 1`` coordinates.  While
    ``2t + 1 ≤ T − 1`` the last coordinate of ``u_t`` is 0, so
    ``‖∇F(w_t)‖ ≥ (1 − αL)‖∇f(u_t)‖ > (1 − αL)ε′ = ε``.  Every
    ``t ≤ (T − 2)/2`` is therefore non-stationary and the first ε-stationary
    step is at least ``⌊(T − 2)/2⌋ + 1 = ⌈(T − 1)/2⌉`` (the ceiling of
    THEORY.md's "about (T(ε′) − 1)/2", exact for odd and even ``T``).  The
    budget ``Δ`` bounds ``F(0) − inf F ≤ f(0) − inf f`` as well (``α ≤ 1/L``).
    Reference: THEORY.md §7.

    Args:
        eps: ``ε > 0``; Delta: budget; L: smoothness; alpha: inner step (``αL < 1``).

    Returns:
        The lower bound on iterations (an int for scalar ``eps``).
    """
    T = np.asarray(chain_T(eps=chain_eps_prime(eps=eps, alpha=alpha, L=L), Delta=Delta, L=L))
    n = T // 2
    return int(n) if n.ndim == 0 else n
