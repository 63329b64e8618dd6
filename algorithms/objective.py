"""The exact MAML objective, its gradient, and the stochastic estimator ``G_i``.

Every function takes ``w`` of shape ``(..., d)`` (a leading seed axis, say)
and sums *exactly* over the family's ``M`` tasks with weights ``p``: the task
distribution is finite, so no expectation over tasks is sampled here.
Families that offer a cheaper closed form (capabilities ``meta_loss`` /
``meta_grad``, e.g.
``cosine-quadratic`` in O(d)) are used through it; ``F_by_tasks`` and
``grad_F_by_tasks`` are the plain sums, kept public so that tests can check
every fast path against them.
"""
from __future__ import annotations

import numpy as np

from mamlcheck.problems.base import TaskFamily, check_count, check_positive
from mamlcheck.theory.bounds import multistep_smooth_L, smooth_local_L

__all__ = ["F", "grad_F", "F_by_tasks", "grad_F_by_tasks", "inner_points", "G_i",
           "local_L", "mean_task_grad_norm"]


def _all_tasks(family: TaskFamily, w):
    w = family._w(w)
    return w[..., None, :], np.arange(family.M)


def inner_points(family: TaskFamily, w, alpha: float) -> np.ndarray:
    """``u_i = w − α∇f_i(w)`` for every task: shape ``(..., M, d)`` (inner step (2), exact)."""
    we, i = _all_tasks(family, w)
    return we - alpha * family.grad(we, i)


def F_by_tasks(family: TaskFamily, w, alpha: float, inner_steps: int = 1) -> np.ndarray:
    """``F_N(w) = Σ_i p_i f_i(u_i^N(w))`` as the plain task sum (``N = 1``: equation (1))."""
    return family.meta_loss_by_tasks(w, alpha, inner_steps)


def grad_F_by_tasks(family: TaskFamily, w, alpha: float, inner_steps: int = 1) -> np.ndarray:
    """``∇F_N(w) = Σ_i p_i Π_j(I − α∇²f_i(u_i^j)) ∇f_i(u_i^N)`` as the plain task sum
    (``N = 1``: equation (5), ``Σ_i p_i (I − α∇²f_i(w)) ∇f_i(w − α∇f_i(w))``)."""
    return family.meta_grad_by_tasks(w, alpha, inner_steps)


def F(family: TaskFamily, w, alpha: float, inner_steps: int = 1) -> np.ndarray:
    """Exact MAML objective, shape ``w.shape[:-1]``: (1) for one inner step,
    ``F_N`` of ``N = inner_steps`` exact inner steps otherwise."""
    alpha = check_positive("alpha", alpha, allow_zero=True)
    if check_count("inner_steps", inner_steps) == 1 and family.offers("meta_loss"):
        return family.meta_loss(w, alpha)
    return F_by_tasks(family, w, alpha, inner_steps)


def grad_F(family: TaskFamily, w, alpha: float, inner_steps: int = 1) -> np.ndarray:
    """Exact meta-gradient, shape ``w.shape``: (5) for one inner step, ``∇F_N``
    of ``N = inner_steps`` exact inner steps otherwise (the closed forms the
    families offer are one-step; ``N > 1`` is the task sum)."""
    alpha = check_positive("alpha", alpha, allow_zero=True)
    if check_count("inner_steps", inner_steps) == 1 and family.offers("meta_grad"):
        return family.meta_grad(w, alpha)
    return grad_F_by_tasks(family, w, alpha, inner_steps)


def G_i(family: TaskFamily, w, i, alpha: float, D_in: int, D_o: int, D_h: int, rng) -> np.ndarray:
    """One draw of the stochastic meta-gradient of task ``i``, equation (6):
    ``G_i(w) = (I − α∇̃²f_i(w, D_h)) ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)``
    with three independent batches.  ``w`` is ``(..., d)``, ``i`` broadcastable
    with ``w.shape[:-1]``."""
    for name, n in (("D_in", D_in), ("D_o", D_o), ("D_h", D_h)):
        check_count(name, n)
    w = family._w(w)
    i = family._i(i)
    g_in = family.sample_grad(w, i, D_in, rng)
    v = family.sample_grad(w - alpha * g_in, i, D_o, rng)
    return v - alpha * family.sample_hvp(w, i, v, D_h, rng)


def mean_task_grad_norm(family: TaskFamily, w) -> np.ndarray:
    """``E_i ‖∇f_i(w)‖ = Σ_i p_i ‖∇f_i(w)‖`` (exact over tasks)."""
    we, i = _all_tasks(family, w)
    return np.linalg.norm(family.grad(we, i), axis=-1) @ family.p


def local_L(family: TaskFamily, w, alpha: float, L: float | None = None, rho: float | None = None,
            inner_steps: int = 1) -> np.ndarray:
    """Local smoothness of ``F``: ``L(w) = 4L + 2ρα E_i‖∇f_i(w)‖`` (THEORY.md §3,
    smoothness lemma, valid for ``α ≤ 1/L``); of ``F_N`` for ``N = inner_steps > 1``
    (THEORY.md §9, (D2)).  ``L``, ``rho`` default to the family's certified constants."""
    if L is None or rho is None:
        c = family.constants()
        L = c.L.value if L is None else L
        rho = c.rho.value if rho is None else rho
    m = mean_task_grad_norm(family, w)
    if check_count("inner_steps", inner_steps) == 1:
        return smooth_local_L(L=L, rho=rho, alpha=alpha, mean_grad_norm=m)
    return multistep_smooth_L(L=L, rho=rho, alpha=alpha, N=inner_steps, mean_grad_norm=m)
