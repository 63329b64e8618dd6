"""What the proof ledger measures at an iterate: moments of ``G_i`` for (7)-(8),
one step's conditional expectation for (10), the per-seed decrease for (11)-(13).

Every draw comes from a generator of its own (``_rng``: four-word spawn keys,
never met by the trajectory's per-seed streams under the same root), so each
measurement is reproducible on its own.  Intervals have confidence ``1 − δ``.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from mamlcheck.algorithms.estimators import algorithm
from mamlcheck.algorithms.objective import F, G_i, grad_F, inner_points, local_L
from mamlcheck.algorithms.steps import outer_step
from mamlcheck.theory import bounds


_KEY = 0x1ED6E5   # first word of the ledger's spawn keys


def _rng(root: int, tag: int, k: int, r: int = 0) -> np.random.Generator:
    """A deterministic generator for one replication block.  Its spawn key has
    four words, so it never meets the trajectory's per-seed streams (two words,
    ``algorithms.streams``) under the same root."""
    key = (_KEY, int(tag), int(k), int(r))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(root, spawn_key=key)))


def _across_seeds(x: np.ndarray, delta: float, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the seed axis (last) and the half-width of its ``1 − δ``
    Student-t interval: 0 for exact gradients (no randomness), inf with one seed."""
    R = x.shape[-1]
    mean = x.mean(-1)
    if exact:
        return mean, np.zeros(mean.shape)
    if R < 2:
        return mean, np.full(mean.shape, np.inf)
    return mean, stats.t.isf(delta / 2, R - 1) * x.std(-1, ddof=1) / np.sqrt(R)


def _task_meta_grads(family, w, alpha) -> np.ndarray:
    """Exact per-task meta-gradients ``(I − α∇²f_i(w))∇f_i(w − α∇f_i(w))``, ``(M, d)``:
    ``G_i`` with infinite batches (exact mode)."""
    i = np.arange(family.M)
    v = family.grad(inner_points(family, w, alpha), i)
    return v - alpha * family.hvp(family._w(w)[None, :], i, v)


# --- (7), (8) ---------------------------------------------------------------------------
def _moments(family, hyper, w, draws, rng, delta):
    """``‖E G_i(w)‖²`` and ``E‖G_i(w)‖²`` with ``1 − δ`` intervals.

    Draws are stratified by task (``draws`` per task, weights ``p``), so the
    task expectation is exact.  ``‖E G‖``: ``‖μ̂ − μ‖ ≤ √tr Σ + √(2λ_max(Σ)log(1/δ))``
    with probability ``1 − δ`` for Gaussian ``μ̂`` (concentration of the norm);
    ``E‖G‖²``: a normal interval.  Exact mode: the exact per-task meta-gradients.
    """
    p = family.p
    if algorithm(hyper.algorithm).exact:
        G = _task_meta_grads(family, w, hyper.alpha)
        m1 = float(np.sum((p @ G) ** 2))
        m2 = float(p @ np.sum(G ** 2, -1))
        return (m1, m1, m1), (m2, m2, m2)
    M, d = family.M, family.d
    wb = np.broadcast_to(w, (M, draws, d))
    i = np.broadcast_to(np.arange(M)[:, None], (M, draws))
    G = G_i(family, wb, i, hyper.alpha, hyper.D_in, hyper.D_o, hyper.D_h, rng)   # (M, n, d)
    mu_i = G.mean(1)
    mu = p @ mu_i
    C = G - mu_i[:, None, :]
    cov = np.einsum("m,mnj,mnk->jk", p ** 2, C, C) / ((draws - 1) * draws)
    r = math.sqrt(max(np.trace(cov), 0.0)) + math.sqrt(2 * max(np.linalg.eigvalsh(cov)[-1], 0.0)
                                                       * math.log(1 / delta))
    norm = float(np.linalg.norm(mu))
    m1 = (norm ** 2, max(norm - r, 0.0) ** 2, (norm + r) ** 2)
    sq = np.sum(G ** 2, -1)
    m2_hat = float(p @ sq.mean(1))
    se = math.sqrt(float(p ** 2 @ sq.var(1, ddof=1)) / draws)
    z = stats.norm.isf(delta / 2)
    return m1, (m2_hat, max(m2_hat - z * se, 0.0), m2_hat + z * se)


# --- (10) -------------------------------------------------------------------------------
def _conditional(family, hyper, w, L, rho, reps, rng, delta):
    """``E[F(w_{k+1})|F_k]`` from ``reps`` replicated steps at ``w``, the right
    side of (10) from the same replications, and the half-width of the
    ``1 − δ`` interval of their difference (delta method).

    With ``g = (1/B)ΣG_i`` of i.i.d. tasks, ``E‖G‖² = ‖E g‖² + B·tr Cov(g)``;
    exact mode has an infinite task batch (``E‖G‖²/B = 0``) and no noise.
    """
    alpha = hyper.alpha
    gF = grad_F(family, w, alpha)
    F0 = float(F(family, w, alpha))
    Lw = float(local_L(family, w, alpha, L, rho))
    exact = algorithm(hyper.algorithm).exact
    n = 1 if exact else reps
    out = outer_step(family, np.repeat(w[None, :], n, axis=0), hyper, L, rho, rng)
    Fp = F(family, w - out.beta[:, None] * out.g, alpha)
    b, g = out.beta, out.g
    g2 = np.sum(g ** 2, -1)
    mF, mb, mb2, mg, mg2 = Fp.mean(), b.mean(), (b ** 2).mean(), g.mean(0), g2.mean()
    B = hyper.B
    mean_G_sq = float(mg @ mg)
    G_sq = 0.0 if exact else mean_G_sq + B * max(float(mg2 - mean_G_sq), 0.0)
    rhs = bounds.conditional_rhs(F_w=F0, beta_mean=mb, beta_sq_mean=mb2, grad_dot_mean_G=float(gF @ mg), mean_G_sq=mean_G_sq, G_sq_mean=G_sq, B=1 if exact else B, L_w=Lw)
    lin = F0 - mb * float(gF @ mg)
    if exact:
        return float(mF), rhs, 0.0, lin, F0
    # influence of each replication on mean(F') − rhs, with rhs written as
    # F0 − mb·∇Fᵀmg + (L/2)·mb2·(mg2 + ‖mg‖²/B)
    quad = mg2 + mean_G_sq / B
    psi = ((Fp - mF) + (b - mb) * float(gF @ mg) + mb * ((g - mg) @ gF)
           - 0.5 * Lw * ((b ** 2 - mb2) * quad + mb2 * ((g2 - mg2) + 2 * ((g - mg) @ mg) / B)))
    half = stats.norm.isf(delta / 2) * float(psi.std(ddof=1)) / math.sqrt(n)
    return float(mF), rhs, half, lin, F0


def _cond_decrease(family, hyper, W, L, rho, reps, rng):
    """Per seed, ``F(w) − mean over reps of F(w − βg)``: an unbiased estimate of
    ``F(w_k) − E[F(w_{k+1})|F_k]`` (its mean over seeds estimates the decrease of
    ``E F``, with the step's own noise averaged out)."""
    R, d = W.shape
    Wr = np.repeat(W, reps, axis=0)
    out = outer_step(family, Wr, hyper, L, rho, rng)
    Fp = F(family, Wr - out.beta[:, None] * out.g, hyper.alpha).reshape(R, reps)
    return F(family, W, hyper.alpha) - Fp.mean(1)
