"""``robust-regression``: linear regression under a bounded, nonconvex robust loss.

Setting:   task ``i`` owns a fixed dataset ``{(x_k, y_k)}_{k=1..N}`` with
           ``‖x_k‖ ≤ R`` and ``y_k = x_kᵀw*_i + noise`` (a fraction of gross
           outliers on top), ``w*_i = w̄* + spread·g_i``.  ``q_i`` is uniform on
           the data, so ``f_i(w) = (1/N) Σ_k φ(y_k − x_kᵀw)`` is an exact average
           and a batch is ``n`` data points drawn uniformly *with replacement*.
Loss:      ``φ(r) = log(1 + r²/2)`` (Cauchy / Lorentzian): smooth, nonconvex for
           ``|r| > √2``, ``φ ≥ 0``.  Per sample ``∇ℓ = −φ'(r)x``, ``∇²ℓ = φ''(r)xxᵀ``.

Derivatives of φ, with ``t = 1/(2 + r²)`` (forms that stay finite for large r):
* ``φ'(r) = 2r/(2 + r²) = 2rt``; ``sup|φ'| = 1/√2`` at ``r = ±√2``.
* ``φ''(r) = 2(2 − r²)/(2 + r²)² = 2t(4t − 1)``; ``φ'' ∈ [−1/8, 1]``: the max 1
  at ``r = 0``, the min −1/8 at ``r² = 6`` (where ``φ''' = 0``); so
  ``sup|φ''| = 1``.
* ``φ'''(r) = 4r(r² − 6)/(2 + r²)³ = 4(rt)t(1 − 8t)``.  ``(φ''')' ∝ r⁴ − 12r² + 4``
  vanishes at ``r² = 6 ∓ 4√2``, i.e. ``|r| = 2 ∓ √2``; there
  ``|φ'''| = (3√2 ± 4)/8``, so ``sup|φ'''| = (4 + 3√2)/8 ≈ 1.0303`` at
  ``|r| = 2 − √2`` (it decays like ``4/r³``).

Constants (proven upper bounds computed from the data; ``S_i = (1/N)Σ_k x_kx_kᵀ``,
``c_j = sup|φ^(j)|``).  Each is at most the data-free bound in brackets:
* A2  ``L_i = c₂ λ_max(S_i)``  [``≤ c₂R²``]: ``∇²f_i(w) = (1/N)Σ_k φ''(r_k)x_kx_kᵀ``
  with ``|φ''(r_k)| ≤ c₂`` gives ``−c₂S_i ⪯ ∇²f_i(w) ⪯ c₂S_i``.  Attained at a
  zero-residual ``w`` (noiseless data, ``w = w*_i``).
* A3  ``ρ_i = c₃ λ_max((1/N)Σ_k ‖x_k‖ x_kx_kᵀ)``  [``≤ c₃R³``]:
  ``|φ''(r_k(w)) − φ''(r_k(u))| ≤ c₃|x_kᵀ(w − u)| ≤ c₃‖x_k‖‖w − u‖``, and the same
  PSD sandwich as for ``L_i``.
* A5  ``σ̃² = c₁² max_i (1/N)Σ_k ‖x_ik‖²``  [``≤ R²/2``]: the variance of
  ``−φ'(r_k)x_k`` under ``q_i`` is at most its second moment
  ``(1/N)Σ_k φ'(r_k)²‖x_k‖²``.
* A5  ``σ_H² = c₂² max_i (1/N)Σ_k ‖x_ik‖⁴``  [``≤ R⁴``]: ``‖·‖₂ ≤ ‖·‖_F``, and the
  Frobenius variance of ``φ''(r_k)x_kx_kᵀ`` is at most its second moment
  ``(1/N)Σ_k φ''(r_k)²‖x_k‖⁴``.  It bounds the Frobenius variance, so the
  batch mean also obeys ``E‖∇̃²f_i(w, D) − ∇²f_i(w)‖₂² ≤ σ_H²/|D|`` (the 1/|D|
  law holds in the Frobenius norm, not in general in the spectral norm).
* A4  ``σ² = min(Σ_i p_i g_i², Σ_i p_i (ḡ + (1 − 2p_i)g_i)²)``, ``ḡ = Σ_j p_j g_j``
  [``≤ R²/2``], where ``g_i = c₁ min((1/N)Σ_k‖x_ik‖, λ_max(S_i)^½) ≥ sup_w ‖∇f_i(w)‖``:
  ``∇f_i(w) = −(1/N)X_iᵀa`` with ``|a_k| ≤ c₁``, so ``‖∇f_i‖ ≤ (c₁/N)Σ_k‖x_k‖``
  (triangle inequality) and ``‖∇f_i‖ ≤ (1/N)‖X_i‖₂‖a‖₂ ≤ c₁ λ_max(S_i)^½``.  The
  first term of the min: ``Σ p_i‖∇f_i − ∇f‖² = Σ p_i‖∇f_i‖² − ‖∇f‖²``; the second:
  ``‖∇f_i − ∇f‖ = ‖(1 − p_i)∇f_i − Σ_{j≠i} p_j∇f_j‖ ≤ ḡ + (1 − 2p_i)g_i``
  (it is 0 for a single task).
``inf_f_lower() = 0``: ``φ ≥ 0``, so every ``f_i ≥ 0`` and ``F ≥ 0``.

All oracles cost O(N·d) per point and task (the Hessian O(N·d²)); ``hvp`` is
``(1/N)Xᵀ(φ''(r) ⊙ Xv)`` and never forms the Hessian.
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np
from scipy.special import gammaln

from . import robust_regression_kernels as _kernels
from .base import (Constant, Constants, DataPools, TaskFamily, check_count, check_positive,
                   check_probabilities)

__all__ = ["RobustRegression", "phi", "dphi", "d2phi", "d3phi",
           "SUP_DPHI", "SUP_D2PHI", "MIN_D2PHI", "SUP_D3PHI", "multisets", "MAX_MULTISETS"]

SUP_DPHI = 1.0 / np.sqrt(2.0)              # at r = ±√2
SUP_D2PHI = 1.0                            # at r = 0
MIN_D2PHI = -1.0 / 8.0                     # at r = ±√6
SUP_D3PHI = (4.0 + 3.0 * np.sqrt(2.0)) / 8.0  # at r = ±(2 − √2)


def phi(r):
    """``φ(r) = log(1 + r²/2) ≥ 0``."""
    return np.log1p(0.5 * r * r)


def _t(r):
    return 1.0 / (2.0 + r * r)


def dphi(r):
    """``φ'(r) = 2r/(2 + r²)``."""
    return 2.0 * r * _t(r)


def d2phi(r):
    """``φ''(r) = 2(2 − r²)/(2 + r²)²``."""
    t = _t(r)
    return 2.0 * t * (4.0 * t - 1.0)


def d3phi(r):
    """``φ'''(r) = 4r(r² − 6)/(2 + r²)³``."""
    t = _t(r)
    return 4.0 * (r * t) * t * (1.0 - 8.0 * t)


# --- batch means of per-sample quantities over data of shape (..., n, d) -------------
def _residual(X, Y, w):
    """``r_k = y_k − x_kᵀw``: shape ``broadcast(X, w) + (n,)``."""
    return Y - (X @ w[..., None])[..., 0]


def _mean_Xt(a, X):
    """``(1/n) Σ_k a_k x_k`` for weights ``a`` of shape ``(..., n)``."""
    return (a[..., None, :] @ X)[..., 0, :] / X.shape[-2]


def _loss(X, Y, w):
    return phi(_residual(X, Y, w)).mean(-1)


def _grad(X, Y, w):
    return -_mean_Xt(dphi(_residual(X, Y, w)), X)


def _hess(X, Y, w):
    c = d2phi(_residual(X, Y, w))
    H = np.swapaxes(X * c[..., None], -1, -2) @ X / X.shape[-2]
    return 0.5 * (H + np.swapaxes(H, -1, -2))   # exactly symmetric despite BLAS rounding


def _hvp(X, Y, w, v):
    Xv = (X @ v[..., None])[..., 0]
    return _mean_Xt(d2phi(_residual(X, Y, w)) * Xv, X)


# --- batches drawn with replacement, enumerated (the exact laws below) -----------------
MAX_MULTISETS = 200_000           # the most batches an exact law enumerates


@lru_cache(maxsize=64)
def multisets(N: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every batch of ``n`` draws with replacement from ``N`` items, as a
    multiset: counts ``(K, N)``, ``K = C(N + n − 1, n)``, and the multinomial
    probability ``n!/(∏_j k_j!) N^{−n}`` of each.  Raises ``ValueError`` beyond
    ``MAX_MULTISETS`` batches."""
    K = math.comb(N + n - 1, n)
    if K > MAX_MULTISETS:
        raise ValueError(f"{K} batches of {n} from {N} points: too many to enumerate (limit {MAX_MULTISETS})")
    combos = np.array(list(itertools.combinations_with_replacement(range(N), n)), dtype=np.intp)
    counts = np.zeros((K, N))
    np.add.at(counts, (np.repeat(np.arange(K), n), combos.ravel()), 1.0)
    prob = np.exp(gammaln(n + 1) - gammaln(counts + 1).sum(1) - n * math.log(N))
    return counts, prob


class RobustRegression(DataPools, TaskFamily):
    """Per-task linear regression with the Cauchy loss on finite datasets (see module).

    Args:
        d, M, N: dimension, number of tasks, data points per task.
        R: feature radius; ``None`` means 1 for generated data and ``max‖x‖``
            for given ``X`` (given data must satisfy ``‖x‖ ≤ R``).
        spread: scale of the task optima around ``w̄*`` (task dissimilarity).
        noise: label noise standard deviation.
        outlier_frac: fraction of each task's labels (rounded to a count) that
            get an extra ``N(0, outlier_scale²)`` corruption.
        X, Y: explicit data of shapes ``(M, N, d)`` and ``(M, N)``; ``Y`` needs
            ``X``; with ``X`` alone the labels are generated from the model.
        p: task probabilities (uniform by default); seed: data seed.
    """

    name = "robust-regression"

    def __init__(self, d: int = 5, M: int = 10, N: int = 50, *, R: float | None = None,
                 spread: float = 1.0, noise: float = 0.1, outlier_frac: float = 0.1,
                 outlier_scale: float = 5.0, X=None, Y=None, p=None, seed: int = 0):
        self.d = check_count("d", d)
        self.M = check_count("M", M)
        self.N = check_count("N", N)
        self.spread = check_positive("spread", spread, allow_zero=True)
        self.noise = check_positive("noise", noise, allow_zero=True)
        self.outlier_frac = check_positive("outlier_frac", outlier_frac, allow_zero=True)
        if self.outlier_frac > 1:
            raise ValueError(f"outlier_frac must lie in [0, 1], got {outlier_frac!r}")
        self.outlier_scale = check_positive("outlier_scale", outlier_scale, allow_zero=True)
        self.p = check_probabilities(p, self.M)
        if R is not None:
            R = check_positive("R", R)
        if Y is not None and X is None:
            raise ValueError("Y requires X (explicit labels need explicit features)")
        shape = (self.M, self.N, self.d)
        rng = np.random.default_rng(seed)
        # every draw is made unconditionally, so that changing one parameter
        # (noise, outliers) leaves the other parts of the data unchanged
        z = rng.standard_normal(shape)
        u = rng.random(shape[:2] + (1,))
        w_bar = rng.standard_normal(self.d)
        g = rng.standard_normal((self.M, self.d))
        eps = rng.standard_normal(shape[:2])
        rank = np.argsort(np.argsort(rng.random(shape[:2]), axis=1), axis=1)
        eps_out = rng.standard_normal(shape[:2])

        self.data = "generated" if X is None else ("given X" if Y is None else "given X, Y")
        if X is None:
            self.R = 1.0 if R is None else R
            # uniform in the ball: uniform direction, radius R·U^{1/d}
            X = self.R * u ** (1.0 / self.d) * z / np.linalg.norm(z, axis=-1, keepdims=True)
        else:
            X = np.asarray(X, dtype=float)
            if X.shape != shape:
                raise ValueError(f"X must have shape (M, N, d) = {shape}, got {X.shape}")
            if not np.all(np.isfinite(X)):
                raise ValueError("X must be finite")
            norm_max = float(np.linalg.norm(X, axis=-1).max())
            if R is not None and norm_max > R * (1 + 1e-12):
                raise ValueError(f"X must lie in the ball of radius R = {R}: max ‖x‖ = {norm_max:.6g}")
            self.R = norm_max if R is None else R
        if Y is None:
            self.w_star = w_bar + self.spread * g
            self.outliers = rank < round(self.outlier_frac * self.N)
            Y = (np.einsum("mnd,md->mn", X, self.w_star) + self.noise * eps
                 + self.outlier_scale * eps_out * self.outliers)
        else:
            Y = np.asarray(Y, dtype=float)
            if Y.shape != shape[:2]:
                raise ValueError(f"Y must have shape (M, N) = {shape[:2]}, got {Y.shape}")
            if not np.all(np.isfinite(Y)):
                raise ValueError("Y must be finite")
            self.w_star = None
            self.outliers = None
        self.X, self.Y = X, Y
        self._constants = None

    # --- exact oracles (averages over all N points of task i) ------------------
    def loss(self, w, i):
        w, i = self._w(w), self._i(i)
        return _loss(self.X[i], self.Y[i], w)

    def grad(self, w, i):
        w, i = self._w(w), self._i(i)
        return _grad(self.X[i], self.Y[i], w)

    def hess(self, w, i):
        w, i = self._w(w), self._i(i)
        return _hess(self.X[i], self.Y[i], w)

    def hvp(self, w, i, v):
        w, i = self._w(w), self._i(i)
        return _hvp(self.X[i], self.Y[i], w, np.asarray(v, dtype=float))

    if _kernels.AVAILABLE:
        def meta_grad(self, w, alpha: float) -> np.ndarray:
            """Exact ``∇F(w)`` of (5) by the compiled kernel
            (``robust_regression_kernels``): the task sum of ``meta_grad_by_tasks``
            in one pass per point, equal to it to rounding; offered only when the
            kernels are compiled (``problems.jit``)."""
            return _kernels.meta_grad(*self._kernel_arrays(), self._w(w), alpha)

        def meta_loss(self, w, alpha: float) -> np.ndarray:
            """Exact ``F(w)`` of (1) by the compiled kernel, equal to the task sum
            ``meta_loss_by_tasks`` to rounding (offered with ``meta_grad``)."""
            return _kernels.meta_loss(*self._kernel_arrays(), self._w(w), alpha)

        def _kernel_arrays(self):
            """``X``, ``X`` transposed per task, ``Y``, ``p``, contiguous (built once)."""
            arrays = self.__dict__.get("_kernel_data")
            if arrays is None:
                arrays = (np.ascontiguousarray(self.X, dtype=float),
                          np.ascontiguousarray(np.swapaxes(self.X, 1, 2), dtype=float),
                          np.ascontiguousarray(self.Y, dtype=float), np.ascontiguousarray(self.p, dtype=float))
                self._kernel_data = arrays
            return arrays

    # --- stochastic oracles: draw_batch, _batch_data from DataPools (n points of task i) -----
    def batch_grad(self, w, i, batch):
        return _grad(*self._batch_data(i, batch), self._w(w))

    def batch_hess(self, w, i, batch):
        return _hess(*self._batch_data(i, batch), self._w(w))

    def batch_hvp(self, w, i, v, batch):
        return _hvp(*self._batch_data(i, batch), self._w(w), np.asarray(v, dtype=float))

    # --- certified constants (module docstring) ----------------------------------
    def _task_bounds(self):
        """Per task: λ_max(S_i), λ_max((1/N)Σ‖x‖xxᵀ), mean ‖x‖, mean ‖x‖², mean ‖x‖⁴."""
        norms = np.linalg.norm(self.X, axis=-1)
        S = np.einsum("mnj,mnk->mjk", self.X, self.X) / self.N
        T = np.einsum("mn,mnj,mnk->mjk", norms, self.X, self.X) / self.N
        return (np.linalg.eigvalsh(S)[:, -1], np.linalg.eigvalsh(T)[:, -1],
                norms.mean(-1), (norms ** 2).mean(-1), (norms ** 4).mean(-1))

    def constants(self) -> Constants:
        if self._constants is not None:
            return self._constants
        lam_S, lam_T, m1, m2, m4 = self._task_bounds()
        lam_S, lam_T = np.maximum(lam_S, 0.0), np.maximum(lam_T, 0.0)
        L_i = SUP_D2PHI * lam_S
        rho_i = SUP_D3PHI * lam_T
        g = SUP_DPHI * np.minimum(m1, np.sqrt(lam_S))
        g_bar = self.p @ g
        sigma2 = min(self.p @ g ** 2, self.p @ (g_bar + (1 - 2 * self.p) * g) ** 2)
        s_t = SUP_DPHI * np.sqrt(m2.max())
        s_H = SUP_D2PHI * np.sqrt(m4.max())
        self._constants = Constants(
            L=Constant(L_i.max(), False,
                       "A2: sup|φ''|·λ_max(S_i), S_i = (1/N)Σx_kx_kᵀ (−S_i ⪯ ∇²f_i ⪯ S_i); "
                       "the sup of φ'' is taken at zero residual, which noisy data need not reach (an upper "
                       "bound, approached as the residuals shrink)"),
            rho=Constant(rho_i.max(), False,
                         "A3: sup|φ'''|·λ_max((1/N)Σ‖x_k‖x_kx_kᵀ), sup|φ'''| = (4+3√2)/8"),
            sigma=Constant(np.sqrt(sigma2), False,
                           "A4: min(Σp_i g_i², Σp_i(ḡ+(1−2p_i)g_i)²)^½, "
                           "g_i = sup|φ'|·min(mean‖x‖, λ_max(S_i)^½) ≥ sup‖∇f_i‖"),
            sigma_tilde=Constant(s_t, False,
                                 "A5: sup|φ'|·(max_i mean_k‖x_ik‖²)^½ (variance ≤ second moment)"),
            sigma_H=Constant(s_H, False,
                             "A5: sup|φ''|·(max_i mean_k‖x_ik‖⁴)^½ (‖·‖₂ ≤ ‖·‖_F, variance ≤ second moment)"),
            L_i=L_i, rho_i=rho_i,
        )
        return self._constants

    def inf_f_lower(self) -> float:
        """``0``: ``φ ≥ 0``, so ``f_i ≥ 0`` for every task and ``F ≥ 0`` (A1)."""
        return 0.0

    # --- exact laws of the stochastic oracles (CAPABILITIES) --------------------
    # A batch of n points drawn with replacement from the N of task i is a
    # multiset with multinomial probability (``multisets``); every expectation
    # over the inner batch is the exact sum over all C(N + n − 1, n) of them,
    # and the outer batch enters through the exact variance of a
    # with-replacement mean.
    def centre_and_length(self) -> tuple[np.ndarray, float]:
        """``w̄ = Σ_i p_i w*_i`` and ``1 + ‖w̄‖``; with given labels (no ``w*``) the
        origin and 1."""
        if self.w_star is None:
            return np.zeros(self.d), 1.0
        centre = self.p @ self.w_star
        return centre, 1.0 + float(np.linalg.norm(centre))

    def _sample_grads(self, points: np.ndarray, i: int) -> np.ndarray:
        """Per-sample ``∇ℓ_i(x; θ_k)`` of every data point ``k``, ``(K, N, d)``, at
        points ``(K, d)``, from the batch oracle with one index per batch."""
        return self.batch_grad(points[:, None, :], np.asarray(i), {"idx": np.arange(self.N)[:, None]})

    def _sample_hessians(self, w: np.ndarray, i: int) -> np.ndarray:
        """Per-sample ``∇²ℓ_i(w; θ_k)`` of every data point, ``(N, d, d)``."""
        return self.batch_hess(w, np.asarray(i), {"idx": np.arange(self.N)[:, None]})

    def _hessian_columns(self, w: np.ndarray, i: int) -> np.ndarray:
        """``∇²f_i(w)`` assembled column by column from ``hvp`` (the product the
        MAML estimator (6) uses)."""
        return self.hvp(np.broadcast_to(w, (self.d, self.d)), np.asarray(i), np.eye(self.d)).T

    def _inner_points(self, w: np.ndarray, i: int, alpha: float, n: int):
        """The inner points ``w − α∇̃f_i(w, D)`` of every batch ``D`` of ``n`` and
        their probabilities."""
        g1 = self._sample_grads(w[None], i)[0]
        counts, prob = multisets(self.N, n)
        return w - alpha * (counts @ g1) / n, prob

    def grad_rounding_scale(self, x, i: int) -> float:
        """``mean_k ‖x_k‖(|φ'(r_k)| + |y_k| + ‖x_k‖‖x‖)``: the residual is rounded
        relative to ``|y_k| + |x_kᵀx|``, and ``|φ''| ≤ 1``."""
        x = np.asarray(x, dtype=float)
        X, Y = self.X[i], self.Y[i]
        nx = np.linalg.norm(X, axis=-1)
        g1 = np.linalg.norm(self._sample_grads(x[None], i)[0], axis=-1)
        return float(np.mean(g1 + nx * (np.abs(Y) + nx * np.linalg.norm(x))))

    def inner_mean(self, w, i: int, alpha: float, D_in: int) -> np.ndarray:
        """``E[∇f_i(w − α∇̃f_i(w, D_in))] = Σ_D P(D) ∇f_i(w − α∇̃f_i(w, D))``, exactly."""
        pts, prob = self._inner_points(np.asarray(w, dtype=float), i, alpha, D_in)
        return prob @ self.grad(pts, i)

    def outer_second(self, w, i: int, alpha: float, D_in: int, D_o: int) -> np.ndarray:
        """``E[v vᵀ]``, ``v = ∇̃f_i(x, D_o)`` at the inner point ``x`` of each batch:
        a with-replacement mean of ``D_o`` per-sample gradients has
        ``E[v vᵀ | x] = (1 − 1/D_o)∇f_i(x)∇f_i(x)ᵀ + E_θ[∇ℓ∇ℓᵀ]/D_o``."""
        pts, prob = self._inner_points(np.asarray(w, dtype=float), i, alpha, D_in)
        g = self.grad(pts, i)
        g1 = self._sample_grads(pts, i)
        second1 = np.einsum("knj,knl->kjl", g1, g1) / self.N           # E_θ[∇ℓ∇ℓᵀ] at each point
        per = (1 - 1 / D_o) * np.einsum("kj,kl->kjl", g, g) + second1 / D_o
        return np.einsum("k,kjl->jl", prob, per)

    def hess_factor(self, w, i: int, alpha: float, D_h: int) -> np.ndarray:
        """``E[(I − α∇̃²f_i)ᵀ(I − α∇̃²f_i)] = (I − α∇²f_i)ᵀ(I − α∇²f_i) + (α²/D_h)C``
        with ``C = E_θ[∇²ℓᵀ∇²ℓ] − ∇²f_iᵀ∇²f_i``, the per-sample second moment of
        the Hessian noise (a with-replacement mean of ``D_h`` divides it by ``D_h``)."""
        w = np.asarray(w, dtype=float)
        P = np.eye(self.d) - alpha * self._hessian_columns(w, i)
        out = P.T @ P
        H1 = self._sample_hessians(w, i)
        Hbar = H1.mean(0)
        cov = np.einsum("nij,nik->jk", H1, H1) / self.N - Hbar.T @ Hbar
        return out + (alpha ** 2 / D_h) * cov

    def describe(self):
        return {**super().describe(), "N": self.N, "R": self.R, "spread": self.spread,
                "noise": self.noise, "outlier_frac": self.outlier_frac,
                "outlier_scale": self.outlier_scale,
                "data": self.data}

    # --- the batch loss over an array namespace (CAPABILITIES "loss_on"; loss_data from DataPools)
    @staticmethod
    def loss_on(ops, w, data):
        """``(1/n) Σ_k φ(y_k − x_kᵀw)``, ``φ(r) = log(1 + r²/2)`` (the Cauchy loss
        of the module docstring, as ``_loss`` and ``phi`` compute it) over the
        rows of ``loss_data``: the batch loss, whose gradient is ``batch_grad``
        and Hessian ``batch_hess`` (``loss`` for all ``N`` rows).  Written over
        ``ops`` so that PyTorch's and JAX's autodiff can be checked against the
        exact oracles."""
        r = data["Y"] - data["X"] @ w
        return ops.log1p(0.5 * r * r).mean(-1)
