"""``hard-chain``: the zero-respecting chain of Carmon, Duchi, Hinder & Sidford.

Setting (THEORY.md §7; Carmon et al., "Lower bounds for finding stationary
points II", Math. Programming 2019, §3):
* ``Ψ(x) = 0`` for ``x ≤ ½``, ``exp(1 − 1/(2x − 1)²)`` for ``x > ½``;
  ``Φ(x) = √e ∫_{−∞}^x e^{−t²/2} dt``.
* ``f̄_T(y) = Σ_{j=1}^T g(y_{j−1}, y_j)`` with the link
  ``g(a, b) = Ψ(−a)Φ(−b) − Ψ(a)Φ(b)`` and the constant ``y_0 = 1``
  (``Ψ(−1) = 0``, so the first link is the paper's ``−Ψ(1)Φ(y_1)``).
* ``f(x) = (Lλ²/152) f̄_T(x/λ)``, ``λ = 152ε/L``,
  ``T = ⌊ΔL/(1824ε²)⌋``: ``f`` is ``L``-smooth, ``‖∇f(x)‖ > ε`` whenever
  ``|x_T| < λ``, and ``f(0) − inf f ≤ 12T·152ε²/L ≤ Δ``.
* Zero-respecting: ``Ψ^(k)(0) = 0`` and ``Φ''(0) = 0``, so from ``x``
  supported on the first ``k`` coordinates ``∇f(x)`` reaches at most
  coordinate ``k + 1`` and the tridiagonal ``∇²f(x)`` has no off-diagonal
  entry beyond coordinate ``k + 1``: one exact MAML step (5) reaches ``k + 2``.

Tasks (``M`` of them, probabilities ``p``): ``f_i = f + τ_i`` with the tilt
``τ_i(x) = σμ Σ_j s_ij (1 − cos(x_j/μ))``, ``μ = λ``, ``σ = tilt·ε``, where the
directions ``s_i`` are Gaussian draws centred (``Σ_i p_i s_i = 0``, so the task
average is the chain itself) and scaled to ``Σ_i p_i ‖s_i‖² = 1``.
``∇τ_i = σ s_i ⊙ sin(x/μ)`` vanishes where ``x_j = 0`` (the chain stays
zero-respecting), and ``tilt`` is the task dissimilarity in units of ε:
``σ(A4) = tilt·ε`` exactly.  ``tilt = 0`` gives identical tasks.  The tilt
lowers the certified ``inf`` by at most ``2σμ√T``, which stays within the
slack ``(0.766T + 9.17)·Lλ²/152`` of the chain's budget for ``tilt ≤ 2.65``:
then ``f(0) − inf_f_lower() ≤ Δ`` still holds.
Oracles are deterministic: ``σ̃ = σ_H = 0``.

Constants:
* ``L_i = L + (σ/μ) max_j |s_ij|`` (upper bound): the chain's ``L`` is the
  paper's 152-Lipschitz gradient of ``f̄_T`` scaled by ``L/152``, the tilt's
  Hessian is ``(σ/μ) diag(s_i ⊙ cos(x/μ))``.
* ``ρ_i = ρ̄ L/(152λ) + (σ/μ²) max_j |s_ij|`` (upper bound), ``ρ̄`` certified
  by ``chain_derivative_bound(3)`` (≈ 1903; see there).
* ``σ = tilt·ε`` (exact): ``Σ_i p_i ‖∇f_i − ∇f‖² = σ² Σ_i p_i Σ_j s_ij² sin²(x_j/μ)``,
  attained at ``x_j = μπ/2`` for all ``j``.
* ``σ̃ = σ_H = 0`` (exact).
"""
from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np
from numpy.polynomial import polynomial as npoly
from scipy.special import log_ndtr

from mamlcheck.literature import CHAIN_GAP_PER_COORD, CHAIN_GRAD_LIP, CHAIN_T_DEN

from .base import (Constant, Constants, TaskFamily, check_count, check_need, check_positive,
                   check_probabilities)

__all__ = ["HardChain", "psi", "phi", "sup_abs_psi", "sup_abs_phi", "chain_derivative_bound"]

CITATION = ("Carmon, Duchi, Hinder & Sidford, 'Lower bounds for finding stationary points II: "
            "first-order methods', Math. Programming 2019, §3")

_SQRT_E = np.sqrt(np.e)
_LOG_PHI_SUP = 0.5 + 0.5 * np.log(2.0 * np.pi)    # log √(2πe) = log sup Φ
_LOG_TINY = -700.0                                 # exp(−700) ≈ 1e-304: still a normal float
_U_MIN = 1.0 / np.sqrt(-_LOG_TINY)                 # Ψ^(k) is set to 0 where 1/(2x−1)² ≥ 700
_X_MAX = np.sqrt(-2.0 * _LOG_TINY) - 0.05          # Φ^(k≥1) is set to 0 where x²/2 ≥ ~698
_ROUND = 1e-12                                     # relative slack for rounding of a critical value


def _psi_polys(n: int) -> tuple[np.ndarray, ...]:
    """``Ψ^(k)(x) = P_k(r) e^{1−r²}`` with ``r = 1/(2x − 1)``: since ``dr/dx = −2r²``,
    ``P_0 = 1`` and ``P_{k+1} = −2r²(P_k′ − 2r P_k)``."""
    P = [np.array([1.0])]
    for _ in range(n):
        P.append(npoly.polymul([0.0, 0.0, -2.0], npoly.polysub(npoly.polyder(P[-1]),
                                                             npoly.polymul([0.0, 2.0], P[-1]))))
    return tuple(P)


def _phi_polys(n: int) -> tuple[np.ndarray, ...]:
    """``Φ^(k+1)(x) = √e Q_k(x) e^{−x²/2}``: ``Q_0 = 1``, ``Q_{k+1} = Q_k′ − x Q_k``."""
    Q = [np.array([1.0])]
    for _ in range(n):
        Q.append(npoly.polysub(npoly.polyder(Q[-1]), npoly.polymul([0.0, 1.0], Q[-1])))
    return tuple(Q)


_MAX_ORDER = 3
_PSI_POLY = _psi_polys(_MAX_ORDER + 1)   # P_0..P_4 (P_4 locates the critical points of Ψ''')
_PHI_POLY = _phi_polys(_MAX_ORDER)       # Q_0..Q_3


def _order(k: int) -> int:
    if isinstance(k, bool) or k not in range(_MAX_ORDER + 1):
        raise ValueError(f"derivative order k must be one of 0..{_MAX_ORDER}, got {k!r}")
    return k


def psi(x, k: int = 0) -> np.ndarray:
    """``Ψ^(k)(x)``, exactly 0 for ``x ≤ ½``.  Where ``e^{1−r²}`` would underflow
    (``r² ≥ 700``, i.e. ``x < ½ + 0.019``) the value is below 1e-285 and is
    returned as 0, so no intermediate overflows or goes subnormal."""
    x = np.asarray(x, dtype=float)
    u = 2.0 * x - 1.0
    on = u > _U_MIN
    r = 1.0 / np.where(on, u, 1.0)
    return np.where(on, npoly.polyval(r, _PSI_POLY[_order(k)]) * np.exp(1.0 - r * r), 0.0)


def phi(x, k: int = 0) -> np.ndarray:
    """``Φ^(k)(x)``: ``Φ = √(2πe)·N(x)`` through ``log N`` (``scipy.special.log_ndtr``,
    no underflow or cancellation in either tail); ``Φ^(k) = √e Q_{k−1}(x) e^{−x²/2}``
    for ``k ≥ 1``, returned as 0 where the Gaussian factor would underflow."""
    x = np.asarray(x, dtype=float)
    if _order(k) == 0:
        z = _LOG_PHI_SUP + log_ndtr(x)
        return np.where(z > _LOG_TINY, np.exp(np.maximum(z, _LOG_TINY)), 0.0)
    on = np.abs(x) < _X_MAX
    xs = np.where(on, x, 0.0)
    return np.where(on, _SQRT_E * npoly.polyval(xs, _PHI_POLY[k - 1]) * np.exp(-0.5 * xs * xs), 0.0)


def _critical_max(values, poly: np.ndarray) -> float:
    """Max of ``|values|`` over 0 and the real parts of the roots of ``poly``
    (which hold the critical points), inflated by ``_ROUND``: at a critical
    point a root error δ moves the value by O(δ²)."""
    coef = np.trim_zeros(poly, "f")                     # roots at 0 are covered by the point 0
    roots = np.real(npoly.polyroots(coef)) if coef.size > 1 else np.zeros(0)
    return float(np.max(np.abs(values(np.concatenate([[0.0], roots]))))) * (1.0 + _ROUND)


@lru_cache(maxsize=None)
def sup_abs_psi(k: int) -> float:
    """Certified ``sup_x |Ψ^(k)(x)|`` in closed form (no grid).

    ``|P_k(r)| e^{1−r²}`` on ``r = 1/(2x−1) ∈ (0, ∞)`` tends to 0 as ``r → ∞``, so
    its sup is a critical value: at ``r → 0`` (``x → ∞``; ``e`` for ``k = 0``) or
    at a positive root of ``P_k′ − 2rP_k``, i.e. of ``P_{k+1}/r²``.
    Values: e, 4.4571, 32.387, 457.71 for ``k = 0..3``.
    """
    _order(k)

    def value(r):
        return np.where(r >= 0, npoly.polyval(r, _PSI_POLY[k]) * np.exp(1.0 - r * r), 0.0)
    return _critical_max(value, _PSI_POLY[k + 1])


@lru_cache(maxsize=None)
def sup_abs_phi(k: int) -> float:
    """Certified ``sup_x |Φ^(k)(x)|`` in closed form: ``√(2πe)`` for ``k = 0``
    (``Φ`` increases to it); for ``k ≥ 1`` the sup of ``√e|Q_{k−1}|e^{−x²/2}``
    is at a root of ``Q_{k−1}′ − xQ_{k−1} = Q_k`` (values √e, 1, √e)."""
    if _order(k) == 0:
        return float(np.exp(_LOG_PHI_SUP))
    return _critical_max(lambda x: _SQRT_E * npoly.polyval(x, _PHI_POLY[k - 1]) * np.exp(-0.5 * x * x),
                         _PHI_POLY[k])


@lru_cache(maxsize=None)
def chain_derivative_bound(n: int, grid: int = 200_001) -> float:
    """Certified bound ``ℓ̄_n ≥ sup_x ‖∇ⁿf̄_T(x)‖_op`` for every ``T`` (``n = 2, 3``).

    Derivation.
    ``∇ⁿf̄_T(y)[v,…,v] = Σ_j Σ_k C(n,k) ∂_a^k∂_b^{n−k} g · v_{j−1}^k v_j^{n−k}``
    (``v_0 = 0``: ``y_0`` is a constant), and ``∂_a^k∂_b^m g(a, b) =
    (−1)^{k+m}Ψ^(k)(−a)Φ^(m)(−b) − Ψ^(k)(a)Φ^(m)(b)`` has only one nonzero
    branch (``Ψ(a)``, ``Ψ(−a)`` are never both nonzero), so
    ``|∇ⁿf̄[v,…,v]| ≤ Σ_j P(|v_{j−1}|, |v_j|)`` with
    ``P(s, t) = Σ_k C(n,k) A_k B_{n−k} s^k t^{n−k}``, ``A_k = sup|Ψ^(k)|``,
    ``B_m = sup|Φ^(m)|`` (``sup_abs_psi``, ``sup_abs_phi``).  If
    ``P(cos φ, sin φ) ≤ a cos²φ + b sin²φ`` on ``[0, π/2]`` (``a, b ≥ 0``), then by
    homogeneity ``P(s, t) ≤ (s² + t²)^{(n−2)/2}(a s² + b t²)`` and, as
    ``v_{j−1}² + v_j² ≤ ‖v‖²``,
    ``Σ_j P ≤ ‖v‖^{n−2} Σ_j (a v_{j−1}² + b v_j²) ≤ (a + b)‖v‖ⁿ``.
    A symmetric n-linear form has operator norm ``sup_{‖v‖=1}|T[v,…,v]|``
    (Banach), so ``ℓ̄_n = a + b``; for ``n = 3`` the mean-value theorem makes it
    a Hessian-Lipschitz constant of ``f̄_T`` (A3).

    Certificate.  With ``t = sin²φ`` the constraint reads ``a + (b − a)t ≥ P``;
    any slope ``m = b − a`` with ``a = max_grid(P − m t)`` is feasible on the
    grid (and ``a ≥ P(1, 0)``, ``b = a + m ≥ P(0, 1)`` are positive); ``m`` is
    chosen to minimise ``a + b = 2a + m`` (convex in ``m``: ternary search on a
    coarse grid, ``a`` then taken on the fine grid).  Between grid points
    ``a cos²φ + b sin²φ − P`` changes by at most ``(|m| + n P(1,1))·δφ/2``
    (``|d/dφ(cos^k φ sin^{n−k} φ)| ≤ n``), which is added to both ``a`` and ``b``.
    Result: ``ℓ̄_2 ≈ 151.3`` (below the paper's 152: a cross-check) and
    ``ℓ̄_3 ≈ 1903``.  The true Hessian-Lipschitz constant of ``f̄_T`` is at least
    ``A_3B_0 ≈ 1892`` for ``T ≥ 2`` (``|∂³_j f̄|`` at ``y_j = argmax|Ψ'''|``, ``y_{j+1} → ∞``),
    so ``ℓ̄_3`` is within 0.6% of it; the simpler bounds ``P(1, 1) ≈ 2070``
    (Young's inequality) and ``2 max_φ P ≈ 3788`` are looser.
    """
    if n not in (2, 3):
        raise ValueError(f"n must be 2 or 3, got {n!r}")
    coef = np.array([comb(n, k) * sup_abs_psi(k) * sup_abs_phi(n - k) for k in range(n + 1)])

    def on_grid(points: int):
        ang = np.linspace(0.0, 0.5 * np.pi, points)
        c, s = np.cos(ang), np.sin(ang)
        return ang[1] - ang[0], s * s, sum(coef[k] * c ** k * s ** (n - k) for k in range(n + 1))

    _, t, P = on_grid(2001)                      # choose the slope on a coarse grid ...
    lo, hi = -2.0 * coef.sum(), 2.0 * coef.sum()
    for _ in range(100):
        m1, m2 = lo + (hi - lo) / 3.0, hi - (hi - lo) / 3.0
        if 2.0 * np.max(P - m1 * t) + m1 <= 2.0 * np.max(P - m2 * t) + m2:
            hi = m2
        else:
            lo = m1
    m = 0.5 * (lo + hi)
    step, t, P = on_grid(grid)                   # ... and certify it on a fine one
    a = float(np.max(P - m * t))
    margin = (abs(m) + n * coef.sum()) * step / 2.0
    return (2.0 * a + m + 2.0 * margin) * (1.0 + _ROUND)


def _link(a: np.ndarray, b: np.ndarray, k: int, m: int) -> np.ndarray:
    """``∂_a^k ∂_b^m g(a, b)`` for the link ``g(a, b) = Ψ(−a)Φ(−b) − Ψ(a)Φ(b)``."""
    return (-1.0) ** (k + m) * psi(-a, k) * phi(-b, m) - psi(a, k) * phi(b, m)


def _shift_left(z: np.ndarray) -> np.ndarray:
    """``(z_2, …, z_T, 0)``: the derivative of link ``j + 1`` in its first
    argument ``y_j`` lands on coordinate ``j``."""
    return np.concatenate([z[..., 1:], np.zeros(z.shape[:-1] + (1,))], axis=-1)


def _fused_terms(y: np.ndarray, hessian: bool):
    """The chain's gradient in ``y = x/λ`` units, and with ``hessian`` its
    Hessian's diagonal and superdiagonal, in one pass.

    With ``a = (1, y_1, …, y_{T−1})``, ``b = y`` and ``r = 1/(2|a| − 1)``,
    ``Ψ^(k)(±a) = P_k(r)e^{1−r²}`` on the side of the sign of ``a``
    (``P_0 = 1``, ``P_1 = 4r³``, ``P_2 = 16r⁶ − 24r⁴``), ``Φ′`` is even and
    ``Φ″(b) = −bΦ′(b)``: every link derivative the gradient and the tridiagonal
    Hessian need is a product of ``Q_k = P_k(r)e^{1−r²}``, ``Φ′(b)`` and
    ``Φ(sign(a)·b)`` (the same values as ``_link``, with Ψ cut off where
    ``_link`` cuts it off).
    """
    a = np.concatenate([np.ones(y.shape[:-1] + (1,)), y[..., :-1]], axis=-1)
    u = 2.0 * np.abs(a) - 1.0
    on = u > _U_MIN
    r = 1.0 / np.where(on, u, 1.0)
    r2 = r * r
    Q0 = np.where(on, np.exp(1.0 - r2), 0.0)
    Q1 = 4.0 * r2 * r * Q0
    sgn = np.sign(a)
    dphi = _SQRT_E * np.exp(-0.5 * y * y)
    phi_s = np.exp(_LOG_PHI_SUP + log_ndtr(sgn * y))
    g_b = -dphi * Q0                          # ∂_b of each link
    G = g_b.copy()
    G[..., :-1] -= (Q1 * phi_s)[..., 1:]      # ∂_a of the next link
    if not hessian:
        return G
    Q2 = (16.0 * r2 - 24.0) * r2 * r2 * Q0
    diag = -y * g_b                           # ∂_b² of each link
    diag[..., :-1] -= (sgn * Q2 * phi_s)[..., 1:]
    off = (-sgn * Q1 * dphi)[..., 1:]         # ∂_a∂_b of each link
    return G, diag, off


def _tridiagonal_product(diag: np.ndarray, off: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``H v`` for the symmetric tridiagonal ``H`` with ``diag`` and ``off``."""
    Hv = diag * v
    Hv[..., :-1] += off * v[..., 1:]
    Hv[..., 1:] += off * v[..., :-1]
    return Hv


class HardChain(TaskFamily):
    """The scaled Carmon et al. chain, optionally tilted per task (see module).

    Args:
        eps: ε, the accuracy the chain is built for (``λ = 152ε/L``).
        Delta: Δ, the budget ``f(0) − inf f`` that sizes ``T = ⌊ΔL/(1824ε²)⌋``.
        L: the smoothness of the chain (A2).
        T: explicit chain length; ``Delta`` is then validated but not used.
        M, p: number of tasks and their probabilities.
        tilt: ``σ/ε``, the task dissimilarity (A4) in units of ε; 0 for identical tasks.
        seed: seed of the tilt directions ``s_i``.
    """

    name = "hard-chain"
    citation = CITATION

    def __init__(self, eps: float = 0.05, Delta: float = 50.0, L: float = 1.0, *, T: int | None = None,
                 M: int = 1, tilt: float = 0.0, p=None, seed: int = 0):
        self.eps = check_positive("eps", eps)
        self.Delta = check_positive("Delta", Delta)
        self.L = check_positive("L", L)
        if T is None:
            T = int(np.floor(self.Delta * self.L / (CHAIN_T_DEN * self.eps ** 2)))
            if T < 1:
                raise ValueError(f"Delta too small: T = ⌊Delta·L/({CHAIN_T_DEN:g}·eps²)⌋ = {T} < 1; "
                                 f"need Delta ≥ {CHAIN_T_DEN * self.eps ** 2 / self.L:.6g} (or pass T)")
        self.T = self.d = check_count("T", T)
        self.M = check_count("M", M)
        self.p = check_probabilities(p, self.M)
        self.tilt = check_positive("tilt", tilt, allow_zero=True)
        self.seed = seed
        self.lam = CHAIN_GRAD_LIP * self.eps / self.L          # λ
        self.mu = self.lam                                     # tilt length scale μ
        self._c = self.L * self.lam ** 2 / CHAIN_GRAD_LIP      # f = c f̄_T(x/λ)
        self.sigma = self.tilt * self.eps
        self.s = np.zeros((self.M, self.T))
        if self.tilt > 0:
            s = np.random.default_rng(seed).standard_normal((self.M, self.T))
            s -= self.p @ s
            size = float(np.sqrt(self.p @ np.sum(s * s, -1)))
            if size == 0.0:
                raise ValueError("tilt > 0 needs at least two tasks with positive probability "
                                 f"(M = {self.M}, p = {self.p})")
            self.s = s / size

    # --- the chain on y = x/λ ----------------------------------------------
    def _links(self, w):
        y = self._w(w) / self.lam
        return np.concatenate([np.ones(y.shape[:-1] + (1,)), y[..., :-1]], axis=-1), y

    def _tridiagonal(self, w):
        """Diagonal ``(..., T)`` and superdiagonal ``(..., T−1)`` of ``∇²(chain)``."""
        a, b = self._links(w)
        scale = self._c / self.lam ** 2
        diag = _link(a, b, 0, 2) + _shift_left(_link(a, b, 2, 0))
        return scale * diag, scale * _link(a, b, 1, 1)[..., 1:]

    # --- exact oracles ------------------------------------------------------
    def loss(self, w, i):
        w, i = self._w(w), self._i(i)
        a, b = self._links(w)
        tau = 2.0 * np.sin(0.5 * w / self.mu) ** 2            # 1 − cos(x/μ), no cancellation
        return self._c * _link(a, b, 0, 0).sum(-1) + self.sigma * self.mu * np.sum(self.s[i] * tau, -1)

    def grad(self, w, i):
        w, i = self._w(w), self._i(i)
        chain = _fused_terms(w / self.lam, False)
        return (self._c / self.lam) * chain + self.sigma * self.s[i] * np.sin(w / self.mu)

    def _tilt_diag(self, w, i):
        """Diagonal of ``∇²τ_i = (σ/μ) diag(s_i ⊙ cos(x/μ))``."""
        return (self.sigma / self.mu) * self.s[i] * np.cos(w / self.mu)

    def hess(self, w, i):
        w, i = self._w(w), self._i(i)
        diag, off = self._tridiagonal(w)
        diag = diag + self._tilt_diag(w, i)
        shape = np.broadcast_shapes(w.shape[:-1], i.shape)
        H = np.zeros(shape + (self.d, self.d))
        idx = np.arange(self.d)
        H[..., idx, idx] = diag
        H[..., idx[:-1], idx[1:]] = off
        H[..., idx[1:], idx[:-1]] = off
        return H

    def hvp(self, w, i, v):
        """``∇²f_i(w) v`` as a tridiagonal product, O(T)."""
        w, i = self._w(w), self._i(i)
        v = np.asarray(v, dtype=float)
        if v.ndim == 0 or v.shape[-1] != self.d:
            raise ValueError(f"v must have shape (..., {self.d}), got {v.shape}")
        diag, off = self._tridiagonal(w)
        zero = np.zeros(np.broadcast_shapes(off.shape[:-1], v.shape[:-1]) + (1,))
        upper = np.concatenate([off * v[..., 1:], zero], axis=-1)     # H_{j,j+1} v_{j+1}
        lower = np.concatenate([zero, off * v[..., :-1]], axis=-1)    # H_{j,j−1} v_{j−1}
        return (diag + self._tilt_diag(w, i)) * v + upper + lower

    def meta_grad(self, w, alpha: float):
        """Exact ``∇F(w)`` of (5) in O(T) per point.

        Untilted tasks are identical, so ``∇F(w) = (I − α∇²f(w))∇f(w − α∇f(w))``
        with the chain's fused terms (``_fused_terms``).  Tilted tasks differ
        only by ``τ_i``, whose Hessian ``D_i = (σ/μ) diag(s_i ⊙ cos(w/μ))`` is
        diagonal, so with ``v_i = ∇f_i(u_i)`` at the inner points
        ``u_i = w − α(∇f(w) + σ s_i ⊙ sin(w/μ))``:
        ``∇F(w) = (I − α∇²f(w)) v̄ − α(σ/μ) cos(w/μ) ⊙ Σ_i p_i s_i ⊙ v_i``,
        ``v̄ = Σ_i p_i v_i``: one tridiagonal product instead of one per task
        (O(MT) for the ``v_i``, O(T) for the rest)."""
        w = self._w(w)
        G, diag, off = _fused_terms(w / self.lam, True)
        g = (self._c / self.lam) * G
        scale = alpha * self._c / self.lam ** 2
        if self.tilt == 0:
            v = (self._c / self.lam) * _fused_terms((w - alpha * g) / self.lam, False)
            return v - scale * _tridiagonal_product(diag, off, v)
        ws = w[..., None, :]
        u = ws - alpha * (g[..., None, :] + self.sigma * self.s * np.sin(ws / self.mu))
        v = (self._c / self.lam) * _fused_terms(u / self.lam, False) + self.sigma * self.s * np.sin(u / self.mu)
        v_bar = np.einsum("m,...md->...d", self.p, v)
        tilt = (self.sigma / self.mu) * np.cos(w / self.mu) * np.einsum("m,...md->...d", self.p, self.s * v)
        return v_bar - scale * _tridiagonal_product(diag, off, v_bar) - alpha * tilt

    # --- deterministic "stochastic" oracles (σ̃ = σ_H = 0) -----------------
    def draw_batch(self, i, n, rng, need: str = "both"):
        """No data: the oracles are exact.  Validates and consumes no randomness."""
        self._i(i)
        check_need(need)
        check_count("n (batch size)", n)
        return {}

    def batch_grad(self, w, i, batch):
        return self.grad(w, i)

    def batch_hess(self, w, i, batch):
        return self.hess(w, i)

    def batch_hvp(self, w, i, v, batch):
        return self.hvp(w, i, v)

    # --- chain progress -----------------------------------------------------
    def progress(self, w, threshold: float = 0.0) -> np.ndarray:
        """``prog(w) = max{j : |w_j| > threshold}`` (1-based, 0 if none): the
        coordinates the chain has reached.  ``‖∇f‖ > ε`` while ``|w_T| < λ``."""
        reached = np.abs(self._w(w)) > threshold
        return np.where(reached.any(-1), self.T - np.argmax(reached[..., ::-1], axis=-1), 0)

    # --- certified constants ------------------------------------------------
    def constants(self) -> Constants:
        s_max = np.abs(self.s).max(-1)
        rho_bar = chain_derivative_bound(3)
        rho_chain = rho_bar * self._c / self.lam ** 3
        L_i = self.L + (self.sigma / self.mu) * s_max
        rho_i = rho_chain + (self.sigma / self.mu ** 2) * s_max
        tilt_note = (" + (σ/μ) max_j|s_ij| (tilt Hessian)" if self.tilt > 0 else "")
        return Constants(
            L=Constant(float(L_i.max()), False,
                       f"∇²f = (L/152)∇²f̄_T(x/λ) and ∇f̄_T is {CHAIN_GRAD_LIP:g}-Lipschitz "
                       f"[{CITATION}]{tilt_note}"),
            rho=Constant(float(rho_i.max()), False,
                         f"ρ̄L/(152λ) with ρ̄ = {rho_bar:.6g} ≥ sup‖∇³f̄_T‖ "
                         "(chain_derivative_bound)"
                         + (" + (σ/μ²) max_j|s_ij|" if self.tilt > 0 else "")),
            sigma=Constant(self.sigma, True,
                           "tilt·ε: σ²Σ p_i Σ_j s_ij² sin²(x_j/μ), attained at x_j = μπ/2"
                           if self.tilt > 0 else "0: identical tasks"),
            sigma_tilde=Constant(0.0, True, "0: deterministic oracles"),
            sigma_H=Constant(0.0, True, "0: deterministic oracles"),
            L_i=L_i, rho_i=rho_i,
        )

    def inf_f_lower(self) -> float:
        """Certified lower bound on ``Σ p_i inf f_i``.

        ``0 ≤ Ψ < e``, ``0 < Φ < √(2πe)`` bound each link below by ``−e√(2πe)``
        and the first by ``−Ψ(1)√(2πe)``, so ``inf f̄_T ≥ −√(2πe)(Ψ(1) + (T−1)e)``;
        this is above the paper's ``f̄_T(0) − 12T`` for every ``T``.  The tilt adds
        ``inf τ_i = 2σμ Σ_j min(s_ij, 0)``, and ``Σ p_i inf f_i ≥ inf f + Σ p_i inf τ_i``.
        """
        chain = -sup_abs_phi(0) * (float(psi(1.0)) + (self.T - 1) * sup_abs_psi(0))
        tilt = 2.0 * self.sigma * self.mu * float(self.p @ np.minimum(self.s, 0.0).sum(-1))
        return self._c * chain + tilt

    def gap_bound(self) -> float:
        """The paper's ``f(0) − inf f ≤ 12T·Lλ²/152 = 12T·152ε²/L`` (``≤ Delta``)."""
        return CHAIN_GAP_PER_COORD * self.T * self._c

    def describe(self):
        return {**super().describe(), "eps": self.eps, "Delta": self.Delta, "L": self.L,
                "T": self.T, "lam": self.lam, "tilt": self.tilt, "seed": self.seed}

    # --- optional capabilities (CAPABILITIES) ---------------------------------
    def centre_and_length(self) -> tuple[np.ndarray, float]:
        """The origin, where the chain starts (``prog = 0``), and ``λ``: a
        coordinate counts as reached once it is of order ``λ``, and
        ``‖∇f‖ > ε`` while ``|x_T| < λ``.  (``progress`` is offered too; the
        oracles are exact, ``σ̃ = σ_H = 0``, so the laws of the stochastic
        steps are point masses and need no method of their own.)"""
        return np.zeros(self.d), float(self.lam)

    # --- the task loss over an array namespace (CAPABILITIES "loss_on") -----------
    def loss_data(self, i, batch=None) -> dict[str, np.ndarray]:
        """What defines ``f_i`` for ``loss_on``: the scale ``c = Lλ²/152``, ``λ``,
        the tilt's ``μ``, ``σ`` and direction ``s_i``.  The oracles are exact
        (``σ̃ = σ_H = 0``), so ``batch`` is ignored: every batch gives ``f_i``."""
        i = self._i(i)
        if i.ndim != 0:
            raise ValueError(f"loss_data takes one task index, got shape {i.shape}")
        return {"c": np.array(self._c), "lam": np.array(self.lam), "mu": np.array(self.mu),
                "sigma": np.array(self.sigma), "s": self.s[int(i)].copy()}

    @staticmethod
    def loss_on(ops, w, data):
        """``f_i(x) = c Σ_j g(a_j, b_j) + σμ Σ_j s_ij(1 − cos(x_j/μ))`` with ``y = x/λ``,
        ``a = (1, y_1, …, y_{T−1})``, ``b = y`` and the link
        ``g(a, b) = Ψ(−a)Φ(−b) − Ψ(a)Φ(b)`` [Carmon, Duchi, Hinder & Sidford 2019,
        §3; module docstring], as ``loss`` computes it: ``Ψ`` cut to 0 where
        ``2x − 1 ≤ _U_MIN`` (``psi``), ``Φ = exp(log √(2πe) + log_ndtr)``
        (``phi``; its cut-off below ``e^{−700}`` is not mirrored: it changes the
        loss by less than 1e-300), and ``1 − cos t = 2 sin²(t/2)``.

        ``Ψ`` uses the double ``where``: ``r = 1/where(on, u, 1)`` keeps the
        masked branch finite, so its (discarded) derivatives are finite too and
        autodiff returns exact zeros there, not ``0·∞ = NaN``."""
        def psi(x):
            u = 2.0 * x - 1.0
            on = u > _U_MIN
            r = 1.0 / ops.where(on, u, 1.0)
            return ops.where(on, ops.exp(1.0 - r * r), 0.0)

        def phi(x):
            return ops.exp(_LOG_PHI_SUP + ops.log_ndtr(x))

        y = w / data["lam"]
        a = ops.concatenate([ops.ones((1,), like=y), y[:-1]], axis=-1)
        link = psi(-a) * phi(-y) - psi(a) * phi(y)
        h = ops.sin(0.5 * w / data["mu"])
        return data["c"] * link.sum(-1) + data["sigma"] * data["mu"] * (data["s"] * (2.0 * (h * h))).sum(-1)
