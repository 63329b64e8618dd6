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
from mamlcheck.theory.bounds import smooth_local_L

__all__ = ["F", "grad_F", "F_by_tasks", "grad_F_by_tasks", "inner_points", "G_i",
           "local_L", "mean_task_grad_norm"]


def _all_tasks(family: TaskFamily, w):
    w = family._w(w)
    return w[..., None, :], np.arange(family.M)


def inner_points(family: TaskFamily, w, alpha: float) -> np.ndarray:
    """``u_i = w − α∇f_i(w)`` for every task: shape ``(..., M, d)`` (inner step (2), exact)."""
    we, i = _all_tasks(family, w)
    return we - alpha * family.grad(we, i)


def F_by_tasks(family: TaskFamily, w, alpha: float) -> np.ndarray:
    """``F(w) = Σ_i p_i f_i(w − α∇f_i(w))``, equation (1), as the plain task sum."""
    return family.meta_loss_by_tasks(w, alpha)


def grad_F_by_tasks(family: TaskFamily, w, alpha: float) -> np.ndarray:
    """``∇F(w) = Σ_i p_i (I − α∇²f_i(w)) ∇f_i(w − α∇f_i(w))``, equation (5), as the plain task sum."""
    return family.meta_grad_by_tasks(w, alpha)


def F(family: TaskFamily, w, alpha: float) -> np.ndarray:
    """Exact MAML objective (1), shape ``w.shape[:-1]``."""
    alpha = check_positive("alpha", alpha, allow_zero=True)
    return family.meta_loss(w, alpha) if family.offers("meta_loss") else F_by_tasks(family, w, alpha)


def grad_F(family: TaskFamily, w, alpha: float) -> np.ndarray:
    """Exact meta-gradient (5), shape ``w.shape``."""
    alpha = check_positive("alpha", alpha, allow_zero=True)
    return family.meta_grad(w, alpha) if family.offers("meta_grad") else grad_F_by_tasks(family, w, alpha)


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


def local_L(family: TaskFamily, w, alpha: float, L: float | None = None, rho: float | None = None) -> np.ndarray:
    """Local smoothness of ``F``: ``L(w) = 4L + 2ρα E_i‖∇f_i(w)‖`` (THEORY.md §3,
    smoothness lemma, valid for ``α ≤ 1/L``).  ``L``, ``rho`` default to the
    family's certified constants."""
    if L is None or rho is None:
        c = family.constants()
        L = c.L.value if L is None else L
        rho = c.rho.value if rho is None else rho
    return smooth_local_L(L=L, rho=rho, alpha=alpha, mean_grad_norm=mean_task_grad_norm(family, w))
