"""Compiled kernels of ``robust-regression`` (``problems.jit``): the exact
meta-gradient of (5) per seed, ``O(M·N·d)`` per point, without temporaries.

The arithmetic is the family's (``φ'``, ``φ''`` in the ``t = 1/(2 + r²)``
forms, ``∇f_i = −(1/N)Σ_k φ'(r_k)x_k``, ``∇²f_i v = (1/N)Σ_k φ''(r_k)(x_kᵀv)x_k``),
summed in a fixed order per seed: a residual ``r = y − Σ_j x_j w_j`` over the
coordinates ``j`` in order (vectorised over the data points), a weighted sum
over the data points in order (vectorised over the coordinates), the task sum
in task order.  The NumPy oracles sum in BLAS's order instead, so the two
agree to rounding (``tests/test_kernels.py``), not bit for bit.
"""
from __future__ import annotations

import numpy as np

from .jit import AVAILABLE, THREADS, in_threads, njit

__all__ = ["AVAILABLE", "meta_grad", "meta_loss"]


@njit()
def _residual(Xt_m, y_m, u, out):
    """``out[n] = y_n − Σ_j x_nj u_j`` (``Xt_m`` is ``X_mᵀ``, ``(d, N)``)."""
    d, N = Xt_m.shape
    for n in range(N):
        out[n] = y_m[n]
    for j in range(d):
        uj = u[j]
        for n in range(N):
            out[n] -= Xt_m[j, n] * uj


@njit()
def _dots(Xt_m, v, out):
    """``out[n] = Σ_j x_nj v_j``."""
    d, N = Xt_m.shape
    for n in range(N):
        out[n] = 0.0
    for j in range(d):
        vj = v[j]
        for n in range(N):
            out[n] += Xt_m[j, n] * vj


@njit()
def _weighted_sum(a, X_m, out):
    """``out = Σ_n a_n x_n`` (data points in order)."""
    N, d = X_m.shape
    for j in range(d):
        out[j] = 0.0
    for n in range(N):
        an = a[n]
        for j in range(d):
            out[j] += an * X_m[n, j]


@njit()
def _task_term(X_m, Xt_m, y_m, p_m, w, alpha, out, r0, r1, a, u, g, v):
    """``out += p_m (I − α∇²f_m(w)) ∇f_m(w − α∇f_m(w))`` for one point ``w``
    (``r0, r1, a, u, g, v`` are scratch)."""
    N, d = X_m.shape
    _residual(Xt_m, y_m, w, r0)                             # r(w)
    for n in range(N):
        t = 1.0 / (2.0 + r0[n] * r0[n])
        a[n] = 2.0 * r0[n] * t                              # φ'(r)
    _weighted_sum(a, X_m, g)
    for j in range(d):
        u[j] = w[j] - alpha * (-(g[j] / N))                 # u = w − α∇f_m(w)
    _residual(Xt_m, y_m, u, r1)
    for n in range(N):
        t = 1.0 / (2.0 + r1[n] * r1[n])
        a[n] = 2.0 * r1[n] * t
    _weighted_sum(a, X_m, g)
    for j in range(d):
        v[j] = -(g[j] / N)                                  # v = ∇f_m(u)
    _dots(Xt_m, v, r1)                                      # x_nᵀv
    for n in range(N):
        t = 1.0 / (2.0 + r0[n] * r0[n])
        a[n] = 2.0 * t * (4.0 * t - 1.0) * r1[n]            # φ''(r(w)) x_nᵀv
    _weighted_sum(a, X_m, g)
    for j in range(d):
        out[j] += p_m * (v[j] - alpha * (g[j] / N))


@njit()
def _lanes_residual(X_m, y_m, U, out):
    """``out[n, s] = y_n − Σ_j x_nj U[j, s]`` (coordinates in order, columns in lanes)."""
    N, d = X_m.shape
    S = U.shape[1]
    for n in range(N):
        for s in range(S):
            out[n, s] = y_m[n]
        for j in range(d):
            x = X_m[n, j]
            for s in range(S):
                out[n, s] -= x * U[j, s]


@njit()
def _lanes_dots(X_m, V, out):
    """``out[n, s] = Σ_j x_nj V[j, s]``."""
    N, d = X_m.shape
    S = V.shape[1]
    for n in range(N):
        for s in range(S):
            out[n, s] = 0.0
        for j in range(d):
            x = X_m[n, j]
            for s in range(S):
                out[n, s] += x * V[j, s]


@njit()
def _lanes_weighted_sum(A, X_m, out):
    """``out[j, s] = Σ_n A[n, s] x_nj`` (data points in order)."""
    N, d = X_m.shape
    S = A.shape[1]
    out[:, :] = 0.0
    for n in range(N):
        for j in range(d):
            x = X_m[n, j]
            for s in range(S):
                out[j, s] += A[n, s] * x


@njit()
def _lanes_dphi(Rr, out):
    """``out = φ'(Rr) = 2r/(2 + r²)`` elementwise."""
    N, S = Rr.shape
    for n in range(N):
        for s in range(S):
            t = 1.0 / (2.0 + Rr[n, s] * Rr[n, s])
            out[n, s] = 2.0 * Rr[n, s] * t


@njit()
def _meta_grad_lanes(X, Y, p, Wt, alpha, out):
    """``∇F`` of the columns of ``Wt`` ``(d, S)`` into ``out`` ``(d, S)``, the points in
    the innermost loop (vector lanes): every column goes through the operations
    of ``_task_term`` in the same order (residual over coordinates in order, sums
    over data points in order, tasks in order), so a column's bits do not depend
    on the others; the data of a task are read once for all columns."""
    M, N, d = X.shape
    S = Wt.shape[1]
    r0 = np.empty((N, S))
    r1 = np.empty((N, S))
    a = np.empty((N, S))
    u = np.empty((d, S))
    g = np.empty((d, S))
    v = np.empty((d, S))
    out[:, :] = 0.0
    for m in range(M):
        Xm = X[m]
        _lanes_residual(Xm, Y[m], Wt, r0)                   # r(w)
        _lanes_dphi(r0, a)
        _lanes_weighted_sum(a, Xm, g)
        for j in range(d):
            for s in range(S):
                u[j, s] = Wt[j, s] - alpha * (-(g[j, s] / N))   # u = w − α∇f_m(w)
        _lanes_residual(Xm, Y[m], u, r1)                    # r(u)
        _lanes_dphi(r1, a)
        _lanes_weighted_sum(a, Xm, g)
        for j in range(d):
            for s in range(S):
                v[j, s] = -(g[j, s] / N)                    # v = ∇f_m(u)
        _lanes_dots(Xm, v, r1)                              # x_nᵀv
        for n in range(N):
            for s in range(S):
                t = 1.0 / (2.0 + r0[n, s] * r0[n, s])
                a[n, s] = 2.0 * t * (4.0 * t - 1.0) * r1[n, s]  # φ''(r(w)) x_nᵀv
        _lanes_weighted_sum(a, Xm, g)
        pm = p[m]
        for j in range(d):
            for s in range(S):
                out[j, s] += pm * (v[j, s] - alpha * (g[j, s] / N))


@njit()
def _meta_grad_serial(X, Xt, Y, p, W, alpha):
    """``_task_term`` for every row of ``W`` on one thread (few rows: the vector
    lanes of ``_meta_grad_lanes`` would be mostly empty)."""
    M, N, d = X.shape
    out = np.zeros(W.shape)
    r0 = np.empty(N)
    r1 = np.empty(N)
    a = np.empty(N)
    u = np.empty(d)
    g = np.empty(d)
    v = np.empty(d)
    for r in range(W.shape[0]):
        for m in range(M):
            _task_term(X[m], Xt[m], Y[m], p[m], W[r], alpha, out[r], r0, r1, a, u, g, v)
    return out


#: From this many points on, the kernel puts the points in vector lanes (and
#: blocks of at least this many on threads); below, one point at a time.
LANES_MIN_ROWS = 4


def meta_grad(X: np.ndarray, Xt: np.ndarray, Y: np.ndarray, p: np.ndarray, w: np.ndarray,
              alpha: float) -> np.ndarray:
    """``∇F`` at every point of ``w`` ``(..., d)``; ``Xt`` is ``X`` transposed per task
    ``(M, d, N)``, C-contiguous."""
    W = w.reshape(-1, w.shape[-1])
    if W.shape[0] < LANES_MIN_ROWS:
        return _meta_grad_serial(X, Xt, Y, p, np.ascontiguousarray(W, dtype=float), float(alpha)).reshape(w.shape)
    R = W.shape[0]
    blocks = min(THREADS, R // LANES_MIN_ROWS)
    cuts = [b * R // blocks for b in range(blocks + 1)]
    parts = [(np.ascontiguousarray(W[lo:hi].T, dtype=float), np.empty((W.shape[1], hi - lo)))
             for lo, hi in zip(cuts[:-1], cuts[1:])]
    in_threads(_meta_grad_lanes, [(X, Y, p, Wt, float(alpha), out) for Wt, out in parts])
    return np.concatenate([out.T for _, out in parts]).reshape(w.shape)


@njit()
def _meta_loss_rows(X, Xt, Y, p, W, alpha):
    """``F(w) = Σ_m p_m (1/N)Σ_n φ(y_n − x_nᵀ(w − α∇f_m(w)))`` for every row of ``W``
    (the operations of ``_task_term`` up to the inner point)."""
    M, N, d = X.shape
    out = np.zeros(W.shape[0])
    r = np.empty(N)
    a = np.empty(N)
    u = np.empty(d)
    g = np.empty(d)
    for k in range(W.shape[0]):
        w = W[k]
        for m in range(M):
            _residual(Xt[m], Y[m], w, r)
            for n in range(N):
                t = 1.0 / (2.0 + r[n] * r[n])
                a[n] = 2.0 * r[n] * t
            _weighted_sum(a, X[m], g)
            for j in range(d):
                u[j] = w[j] - alpha * (-(g[j] / N))
            _residual(Xt[m], Y[m], u, r)
            s = 0.0
            for n in range(N):
                s += np.log1p(0.5 * r[n] * r[n])
            out[k] += p[m] * (s / N)
    return out


def meta_loss(X: np.ndarray, Xt: np.ndarray, Y: np.ndarray, p: np.ndarray, w: np.ndarray,
              alpha: float) -> np.ndarray:
    """``F`` at every point of ``w`` ``(..., d)``, shape ``w.shape[:-1]`` (one thread:
    the runner asks for ``F`` only at its trace points)."""
    W = np.ascontiguousarray(w.reshape(-1, w.shape[-1]), dtype=float)
    return _meta_loss_rows(X, Xt, Y, p, W, float(alpha)).reshape(w.shape[:-1])
