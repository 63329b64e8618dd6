"""The MAML, FO-MAML and HF-MAML steps of ``robust-regression`` as compiled kernels.

Registered in ``algorithms.fast`` for ``RobustRegression`` when the kernels
are compiled (``problems.jit``).  Unlike the cosine-quadratic sampler, this one
draws *the same numbers in the same order* as the generic path
(``algorithms.steps``: the ``L̃`` tasks and their ``D_β`` batches, then the
direction's tasks, then its ``D_in``, ``D_o`` and ``D_h`` batches, each
``DataPools._draw_idx``), and computes the generic estimator (6) from them,
per seed and sampled task, in one kernel call instead of a dozen array passes:
its directions and step sizes equal the generic ones to rounding
(``tests/test_kernels.py``), so a run follows the generic run's trajectory.

Per data point ``k`` of task ``m``: ``∇ℓ = −φ'(y − xᵀu)x``,
``∇²ℓ v = φ''(y − xᵀw)(xᵀv)x`` (``problems/robust_regression.py``); a batch
mean divides the sum over its points, in draw order, by the batch size.
Seeds are the outer loop (a seed's numbers do not depend on the others).
"""
from __future__ import annotations

import numpy as np

from mamlcheck.problems.jit import AVAILABLE, njit
from mamlcheck.problems.robust_regression import RobustRegression

from .fast import L_TILDE, FastSampler, register_fast

__all__ = ["RobustRegressionSampler"]


@njit()
def _batch_grad(X, Y, m, idx, u, out):
    """``out = ∇̃f_m(u, D) = −(1/n)Σ_{k∈D} φ'(y_k − x_kᵀu) x_k`` (points in draw order)."""
    d = u.shape[0]
    n = idx.shape[0]
    for j in range(d):
        out[j] = 0.0
    for q in range(n):
        k = idx[q]
        r = Y[m, k]
        for j in range(d):
            r -= X[m, k, j] * u[j]
        t = 1.0 / (2.0 + r * r)
        a = 2.0 * r * t
        for j in range(d):
            out[j] += a * X[m, k, j]
    for j in range(d):
        out[j] = -(out[j] / n)


@njit()
def _batch_hvp(X, Y, m, idx, w, v, out):
    """``out = ∇̃²f_m(w, D) v = (1/n)Σ_{k∈D} φ''(y_k − x_kᵀw)(x_kᵀv) x_k``."""
    d = w.shape[0]
    n = idx.shape[0]
    for j in range(d):
        out[j] = 0.0
    for q in range(n):
        k = idx[q]
        r = Y[m, k]
        xv = 0.0
        for j in range(d):
            r -= X[m, k, j] * w[j]
            xv += X[m, k, j] * v[j]
        t = 1.0 / (2.0 + r * r)
        c = 2.0 * t * (4.0 * t - 1.0) * xv
        for j in range(d):
            out[j] += c * X[m, k, j]
    for j in range(d):
        out[j] = out[j] / n


@njit()
def _grad_norms(X, Y, W, tasks, idx):
    """``‖∇̃f_j(w, D_β)‖`` per seed and task, ``(R, B′)``."""
    R, Bp = tasks.shape
    d = W.shape[1]
    g = np.empty(d)
    out = np.empty((R, Bp))
    for r in range(R):
        for b in range(Bp):
            _batch_grad(X, Y, tasks[r, b], idx[r, b], W[r], g)
            s = 0.0
            for j in range(d):
                s += g[j] * g[j]
            out[r, b] = np.sqrt(s)
    return out


@njit()
def _outer_grads(X, Y, W, tasks, idx_in, idx_o, alpha):
    """``v = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)`` per seed and task, ``(R, B, d)``."""
    R, B = tasks.shape
    d = W.shape[1]
    g = np.empty(d)
    u = np.empty(d)
    V = np.empty((R, B, d))
    for r in range(R):
        for b in range(B):
            m = tasks[r, b]
            _batch_grad(X, Y, m, idx_in[r, b], W[r], g)
            for j in range(d):
                u[j] = W[r, j] - alpha * g[j]
            _batch_grad(X, Y, m, idx_o[r, b], u, V[r, b])
    return V


@njit()
def _maml_mean(X, Y, W, tasks, V, idx_h, alpha):
    """``(1/B)Σ_b (v_b − α∇̃²f_b(w, D_h)v_b)`` per seed, ``(R, d)`` (MAML's (6))."""
    R, B = tasks.shape
    d = W.shape[1]
    hv = np.empty(d)
    out = np.zeros((R, d))
    for r in range(R):
        for b in range(B):
            _batch_hvp(X, Y, tasks[r, b], idx_h[r, b], W[r], V[r, b], hv)
            for j in range(d):
                out[r, j] += V[r, b, j] - alpha * hv[j]
        for j in range(d):
            out[r, j] = out[r, j] / B
    return out


@njit()
def _hf_mean(X, Y, W, tasks, V, idx_h, delta, alpha):
    """``(1/B)Σ_b (v_b − α[∇̃f_b(w + δv_b, D_h) − ∇̃f_b(w − δv_b, D_h)]/(2δ_b))`` per seed."""
    R, B = tasks.shape
    d = W.shape[1]
    up = np.empty(d)
    gp = np.empty(d)
    gm = np.empty(d)
    out = np.zeros((R, d))
    for r in range(R):
        for b in range(B):
            db = delta[r, b]
            for j in range(d):
                up[j] = W[r, j] + db * V[r, b, j]
            _batch_grad(X, Y, tasks[r, b], idx_h[r, b], up, gp)
            for j in range(d):
                up[j] = W[r, j] - db * V[r, b, j]
            _batch_grad(X, Y, tasks[r, b], idx_h[r, b], up, gm)
            for j in range(d):
                out[r, j] += V[r, b, j] - alpha * ((gp[j] - gm[j]) / (2.0 * db))
        for j in range(d):
            out[r, j] = out[r, j] / B
    return out


@njit()
def _mean_over_tasks(V):
    """``(1/B)Σ_b v_b`` per seed (FO-MAML)."""
    R, B, d = V.shape
    out = np.zeros((R, d))
    for r in range(R):
        for b in range(B):
            for j in range(d):
                out[r, j] += V[r, b, j]
        for j in range(d):
            out[r, j] = out[r, j] / B
    return out


@register_fast(RobustRegression)
class RobustRegressionSampler(FastSampler):
    """The generic estimator of ``robust-regression`` on the generic path's draws,
    in compiled kernels (module docstring).  One inner step."""

    ALGORITHMS = ("maml", "fomaml", "hfmaml", L_TILDE)

    def __init__(self, family: RobustRegression):
        self.fam = family
        self.X = np.ascontiguousarray(family.X, dtype=float)
        self.Y = np.ascontiguousarray(family.Y, dtype=float)

    @classmethod
    def supports(cls, family, algorithm: str) -> bool:
        """Whether the kernels are compiled and serve ``algorithm``."""
        return AVAILABLE and algorithm in cls.ALGORITHMS

    def grad_norms(self, w, tasks, n, rng) -> np.ndarray:
        """``‖∇̃f_j(w, D)‖`` per seed and task on fresh batches of ``n``: the draws
        of ``family.sample_grad(w[:, None], tasks, n, rng)``."""
        idx = self.fam._draw_idx(tasks.shape, n, rng)
        return _grad_norms(self.X, self.Y, np.ascontiguousarray(w, dtype=float), tasks, idx)

    def direction(self, w, tasks, hyper, rng, delta=None) -> np.ndarray:
        """``(1/B)Σ_b G_b(w)`` per seed, ``(R, d)``, for tasks ``(R, B)``: the draws and
        the estimator of ``algorithms.estimators`` (MAML's (6), FO-MAML without the
        Hessian factor, HF-MAML's central difference with ``δ = delta(‖v‖)``)."""
        if hyper.algorithm == "hfmaml" and delta is None:
            raise ValueError("HF-MAML's kernel path needs delta, the rule δ(‖v‖) of THEORY.md §6")
        W = np.ascontiguousarray(w, dtype=float)
        draw = self.fam._draw_idx
        idx_in = draw(tasks.shape, hyper.D_in, rng)
        idx_o = draw(tasks.shape, hyper.D_o, rng)
        V = _outer_grads(self.X, self.Y, W, tasks, idx_in, idx_o, float(hyper.alpha))
        if hyper.algorithm == "fomaml":
            return _mean_over_tasks(V)
        idx_h = draw(tasks.shape, hyper.D_h, rng)
        if delta is not None:                       # HF-MAML: the central difference
            dl = np.asarray(delta(np.linalg.norm(V, axis=-1)), dtype=float)
            return _hf_mean(self.X, self.Y, W, tasks, V, idx_h, np.ascontiguousarray(dl), float(hyper.alpha))
        return _maml_mean(self.X, self.Y, W, tasks, V, idx_h, float(hyper.alpha))

    def step(self, w, hyper, rng, delta=None) -> tuple[np.ndarray, np.ndarray]:
        """The ``L̃`` norms' mean on ``B′`` tasks of ``D_β`` points, then the
        direction: in the generic path's order (``steps.step_size``, then
        ``steps.direction``)."""
        R = w.shape[0]
        tasks_b = self.fam.draw_tasks((R, hyper.B_prime), rng)
        mean_norm = self.grad_norms(w, tasks_b, hyper.D_beta, rng).mean(axis=1)
        tasks = self.fam.draw_tasks((R, hyper.B), rng)
        return self.direction(w, tasks, hyper, rng, delta=delta), mean_norm
