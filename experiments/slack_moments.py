"""Exact moments of the stochastic meta-gradient (6) at one point (``experiments.slack``),
and Monte Carlo draws of the N-step estimator (``multistep_draws``).

The left sides of the slack report's checks are expectations over the task
draw and every batch of MAML's estimator ``G_i`` (THEORY.md §1, (6)).  Tasks
are finite, so expectations over them are exact weighted sums; the laws of
one task's batches come from the family (the capabilities ``inner_mean``,
``outer_second``, ``hess_factor`` of ``problems.base.CAPABILITIES``: Gaussian
closed forms on cosine-quadratic, enumerated batches on robust-regression).
A family that offers none of them but certifies exact oracles (``σ̃ = 0`` for
the gradient laws, ``σ_H = 0`` for the Hessian's, as hard-chain does) has
point-mass laws, computed here; any other family raises ``NotAvailable``.
Every Hessian is assembled from the family's ``hvp``, so a bug there shows in
the checks.

The N-step estimator's moments have no closed form here (its Hessians are
taken at the stochastic inner points): ``multistep_draws`` samples it with the
estimator's own code (``algorithms.estimators``), beside the exact inner points
and per-task terms, for the checks of THEORY.md §9 (D4)–(D6)
(``slack_checks.check_multistep_moments``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from mamlcheck.algorithms.estimators import ALGORITHMS
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import grad_F
from mamlcheck.problems.base import CAPABILITIES, NotAvailable, TaskFamily

from .slack_draws import centre_and_length

__all__ = ["ROUND", "hessian_matrix", "grad_rounding_scale", "inner_mean", "outer_second", "hess_factor",
           "Moments", "moments", "grad_tol", "MultistepDraws", "multistep_draws"]

ROUND = 1e-12                     # rounding allowance of the exact checks, relative to their scale


def hessian_matrix(family: TaskFamily, w: np.ndarray, i: int) -> np.ndarray:
    """``∇²f_i(w)``, assembled column by column from the family's ``hvp``."""
    d = family.d
    return family.hvp(np.broadcast_to(w, (d, d)), np.asarray(i), np.eye(d)).T


def grad_rounding_scale(family: TaskFamily, x, i: int) -> float:
    """Size of the intermediate terms of ``∇f_i(x)``: its rounding error is a
    few ulps of this, not of ``‖∇f_i(x)‖`` (which cancels to 0 at stationary
    points).  The family's own (capability ``grad_rounding_scale``), else
    ``‖∇f_i(x)‖ + L(length + ‖x‖)√d`` with the length of ``centre_and_length``."""
    if family.offers("grad_rounding_scale"):
        return family.grad_rounding_scale(x, i)
    x = np.asarray(x, dtype=float)
    _, length = centre_and_length(family)
    L = family.constants().L.value
    return float(np.linalg.norm(family.grad(x, i)) + L * (length + np.linalg.norm(x)) * math.sqrt(family.d))


def _point_mass(family: TaskFamily, capability: str, noise: str) -> None:
    """Check that the law ``capability`` may be taken as a point mass: the
    certified constant ``noise`` (``sigma_tilde`` or ``sigma_H``) is 0, so the
    oracle is exact (A5)."""
    if getattr(family.constants(), noise).value != 0:
        raise NotAvailable(f"no exact law for family {family.name!r}: it does not offer {capability} "
                           f"({CAPABILITIES[capability]}) and its oracles are noisy ({noise} > 0)")


def inner_mean(family: TaskFamily, w, i: int, alpha: float, D_in: int) -> np.ndarray:
    """``E[∇̃f_i(w − α∇̃f_i(w, D_in), D_o)] = E[∇f_i(w − α∇̃f_i(w, D_in))]`` (the
    outer batch is independent and unbiased), exactly."""
    if family.offers("inner_mean"):
        return family.inner_mean(w, i, alpha, D_in)
    _point_mass(family, "inner_mean", "sigma_tilde")
    return family.grad(w - alpha * family.grad(w, i), i)


def outer_second(family: TaskFamily, w, i: int, alpha: float, D_in: int, D_o: int) -> np.ndarray:
    """``E[v vᵀ]`` for ``v = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)``, exactly ``(d, d)``."""
    if family.offers("outer_second"):
        return family.outer_second(w, i, alpha, D_in, D_o)
    _point_mass(family, "outer_second", "sigma_tilde")
    v = family.grad(w - alpha * family.grad(w, i), i)
    return np.outer(v, v)


def hess_factor(family: TaskFamily, w, i: int, alpha: float, D_h: int, H: np.ndarray | None = None) -> np.ndarray:
    """``E[(I − α∇̃²f_i(w, D_h))ᵀ(I − α∇̃²f_i(w, D_h))]``, exactly ``(d, d)``; for
    ``v`` independent of ``D_h``, ``E‖(I − α∇̃²f_i)v‖² = E[vᵀ (this) v]``.  ``H``:
    ``∇²f_i(w)`` if already assembled (used for exact oracles only)."""
    if family.offers("hess_factor"):
        return family.hess_factor(w, i, alpha, D_h)
    _point_mass(family, "hess_factor", "sigma_H")
    H = hessian_matrix(family, w, i) if H is None else H
    P = np.eye(family.d) - alpha * H
    return P.T @ P


@dataclass
class Moments:
    """Exact moments of the MAML estimator at one ``(family, w, hyper)``
    (expectation over the task draw and every batch).  Per task ``i``: ``u``
    (exact inner point), ``grad_u = ∇f_i(u_i)``, ``H = ∇²f_i(w)``,
    ``Ev = E[∇̃f_i(x_i, D_o)]``, ``Evv = E[vvᵀ]``, ``Mh = hess_factor``,
    ``EGi = (I − αH)Ev``; and ``grad_F`` (5), ``EG = Σ p_i EGi``,
    ``EG2 = E‖G‖²``, ``EG_fo = Σ p_i Ev``."""

    family: TaskFamily
    w: np.ndarray
    hyper: Hyper
    c: dict
    u: np.ndarray
    grad_u: np.ndarray
    H: np.ndarray
    Ev: np.ndarray
    Evv: np.ndarray
    Mh: np.ndarray
    EGi: np.ndarray
    grad_F: np.ndarray
    EG: np.ndarray
    EG2: float
    EG_fo: np.ndarray
    tol: float = 0.0      # rounding allowance of a gradient-sized vector (ROUND × grad_rounding_scale)

    @property
    def tol2(self) -> float:
        """Rounding allowance of a second moment (``ROUND × scale²``: covariances
        are differences of terms of that size)."""
        return self.tol ** 2 / ROUND


def grad_tol(family: TaskFamily, w, alpha: float) -> float:
    """Rounding allowance of ``∇F(w)``, ``E[G]`` and the like: ``ROUND·(1 + αL)``
    times the largest summand scale of ``∇f_i`` at ``w`` and at ``u_i``."""
    L = family.constants().L.value
    u = w - alpha * family.grad(w[None, :], np.arange(family.M))
    return ROUND * (1 + alpha * L) * max(max(grad_rounding_scale(family, w, i),
                                             grad_rounding_scale(family, u[i], i)) for i in range(family.M))


def moments(family: TaskFamily, w, hyper: Hyper) -> Moments:
    """Exact ``Moments`` (see there): O(M·d²) with closed-form laws, O(M·K·N·d²)
    where the ``K`` inner batches of ``N`` data points are enumerated."""
    w = np.asarray(w, dtype=float)
    a = hyper.alpha
    M = family.M
    tasks = range(M)
    grad_w = family.grad(w[None, :], np.arange(M))
    u = w - a * grad_w
    grad_u = family.grad(u, np.arange(M))
    H = np.stack([hessian_matrix(family, w, i) for i in tasks])
    Ev = np.stack([inner_mean(family, w, i, a, hyper.D_in) for i in tasks])
    Evv = np.stack([outer_second(family, w, i, a, hyper.D_in, hyper.D_o) for i in tasks])
    Mh = np.stack([hess_factor(family, w, i, a, hyper.D_h, H[i]) for i in tasks])
    EGi = Ev - a * family.hvp(np.broadcast_to(w, (M, family.d)), np.arange(M), Ev)
    p = family.p
    c = family.constants().values()
    return Moments(family, w, hyper, c, u, grad_u, H, Ev, Evv, Mh, EGi,
                   np.asarray(grad_F(family, w, a), dtype=float), p @ EGi,
                   float(p @ np.einsum("mjk,mjk->m", Mh, Evv)), p @ Ev, grad_tol(family, w, a))


@dataclass
class MultistepDraws:
    """Draws of the N-step MAML estimator at one ``(family, w, hyper)``, per task
    ``i`` (THEORY.md §9, the estimator): ``drift[i]`` the ``n`` squared distances
    ``‖ũ_i^N − u_i^N‖²`` of its stochastic inner points from the exact ones,
    ``G[i]`` its ``n`` draws ``(n, d)``; the exact inner points ``uN[i]`` and
    per-task terms ``exact[i] = Π_j(I − α∇²f_i(u_i^j))∇f_i(u_i^N)`` (``∇F_N`` without
    the weights ``p_i``).  ``exact_oracles``: ``σ̃ = σ_H = 0``, one draw is the law."""

    N: int
    drift: np.ndarray
    G: np.ndarray
    uN: np.ndarray
    exact: np.ndarray
    exact_oracles: bool


def multistep_draws(family: TaskFamily, w, hyper: Hyper, N: int, n: int, seed) -> MultistepDraws:
    """``n`` draws per task of MAML's N-step estimator (``ALGORITHMS["maml"]``, fresh
    batches per inner step and point) at ``hyper.alpha`` and batch sizes, one draw
    if the family certifies exact oracles.  One stream feeds both calls:
    ``task_directions`` begins with the same ``_inner_and_outer`` draws, so the
    drift is that of the inner points the draws of ``G`` used."""
    w = np.asarray(w, dtype=float)
    c = family.constants()
    exact_oracles = c.sigma_tilde.value == 0 and c.sigma_H.value == 0
    n = 1 if exact_oracles else n
    h = replace(hyper, algorithm="maml", inner_steps=N)
    M, i = family.M, np.arange(family.M)
    tasks = np.repeat(i, n)[None]
    est = ALGORITHMS["maml"]
    u, _ = est._inner_and_outer(family, w[None], tasks, h, np.random.default_rng(seed))
    G = est.task_directions(family, w[None], tasks, h, 0.0, np.random.default_rng(seed))[0]
    traj = family.inner_trajectory(w, h.alpha, N)
    v = family.grad(traj[-1], i)
    for u_j in reversed(traj[:-1]):
        v = v - h.alpha * family.hvp(u_j, i, v)
    drift = np.sum((u[-1][0].reshape(M, n, -1) - traj[-1][:, None, :]) ** 2, -1)
    return MultistepDraws(N, drift, G.reshape(M, n, -1), traj[-1], v, exact_oracles)
