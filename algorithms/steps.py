"""One outer step of MAML, FO-MAML, HF-MAML, or exact MAML, for all seeds at once.

Arrays carry a leading seed axis ``R``; the task batch adds an axis ``B``, so
one call evaluates ``R × B`` stochastic meta-gradients with no Python loop.

* MAML, update (3):  ``G_i = (I − α∇̃²f_i(w, D_h)) ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)`` (6).
* FO-MAML (THEORY.md §5): ``G_i = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)``.
* HF-MAML (THEORY.md §6): ``G_i = v_i − α d_i``,
  ``d_i = [∇̃f_i(w + δv_i, D_h) − ∇̃f_i(w − δv_i, D_h)]/(2δ)``, one ``D_h`` for
  both points, ``δ = 1/(6ρα‖v_i‖)`` (1 where that is undefined; never above a
  ``delta_cap`` the user sets, which leaves the theorem).
* exact: the direction is ``∇F(w)`` of (5) (infinite batches).

The algorithms are objects (``ALGORITHMS``, by name): each builds its
per-task directions ``G_i`` from the family's oracles; nothing else branches
on an algorithm's name to compute a direction.

Fast paths (``fast=True``, what the trajectory engine uses): a sampler
registered in ``algorithms.fast`` for the (family, algorithm) pair
(cosine-quadratic with diagonal ``A`` has one) draws the same estimator in law
with fewer random numbers; the default, ``fast=False``, is the generic
construction from the oracles that the tests hold as the reference.

Step sizes: ``β_k = 1/(c·L̃(w_k))`` (THEORY.md §3) with
``L̃(w) = 4L + 2ρα (1/B′) Σ_{j∈B′} ‖∇̃f_j(w, D_β)‖`` on a batch independent of
the update's; exact mode uses the exact ``L(w)``.  Or a constant ``β``.  With
``N > 1`` inner steps the same rule with the N-step smoothness of THEORY.md §9
(``smoothness_formula``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mamlcheck.problems.base import TaskFamily
from mamlcheck.theory.bounds import local_L_formula, multistep_L_formula

from . import fast as _fast
from .estimators import ALGORITHMS, ORACLE_CALLS, Algorithm, algorithm
from .hyper import Hyper
from .objective import grad_F, local_L

__all__ = ["Algorithm", "ALGORITHMS", "algorithm", "direction", "outer_step", "StepOut", "step_size",
           "estimate_L_tilde", "smoothness_formula", "has_fast_direction", "ORACLE_CALLS"]


class StepOut(NamedTuple):
    """What one step produced for every seed: update direction and step size."""

    g: np.ndarray      # (R, d): (1/B) Σ_{i∈B_k} G_i(w_k)
    beta: np.ndarray   # (R,): β_k


def _task_directions(family: TaskFamily, w: np.ndarray, tasks: np.ndarray, hyper: Hyper,
                     rho: float, rng) -> np.ndarray:
    """``G_i(w)`` for every seed and sampled task: shape ``(R, B, d)`` (the generic path)."""
    return algorithm(hyper.algorithm).task_directions(family, w, tasks, hyper, rho, rng)


def smoothness_formula(hyper: Hyper, L: float, rho: float, mean_grad_norm):
    """The local smoothness the step rule divides by, from ``E_i‖∇f_i(w)‖`` (or its
    estimate): ``4L + 2ρα·m`` for one inner step (THEORY.md §3), the N-step
    ``q^{2N}L + (ρ/L)q^{2N−1}(q^N − 1)·m`` otherwise (§9, (D2))."""
    if hyper.inner_steps == 1:
        return local_L_formula(L, rho, hyper.alpha, mean_grad_norm)
    return multistep_L_formula(L, rho, hyper.alpha, hyper.inner_steps, mean_grad_norm)


def estimate_L_tilde(family: TaskFamily, w: np.ndarray, hyper: Hyper, L: float, rho: float, rng, *,
                     fast: bool = False) -> np.ndarray:
    """``L̃(w) = 4L + 2ρα (1/B′) Σ_j ‖∇̃f_j(w, D_β)‖`` on an independent batch
    (THEORY.md §3, step-size lemma); no draws are consumed when ``ρα = 0``.
    ``fast=True`` takes the norms from the fast sampler registered for the
    family where there is one (same law, other draws)."""
    if rho * hyper.alpha == 0:
        return np.full(w.shape[0], smoothness_formula(hyper, L, rho, 0.0))
    if hyper.B_prime is None or hyper.D_beta is None:
        raise ValueError("hyper must be resolved for the L̃ estimate: use hyper.resolved(constants) "
                         "to set B_prime and D_beta")
    tasks = family.draw_tasks((w.shape[0], hyper.B_prime), rng)
    fs = _fast.sampler(family, _fast.L_TILDE) if fast else None
    if fs is not None:
        g_norm = fs.grad_norms(w, tasks, hyper.D_beta, rng)
    else:
        g_norm = np.linalg.norm(family.sample_grad(w[:, None, :], tasks, hyper.D_beta, rng), axis=-1)
    return smoothness_formula(hyper, L, rho, g_norm.mean(axis=1))


def step_size(family: TaskFamily, w: np.ndarray, hyper: Hyper, L: float, rho: float, rng, *,
              fast: bool = False) -> np.ndarray:
    """``β_k`` per seed: constant, or ``1/(c·L̃(w_k))`` (exact ``L(w_k)`` for exact gradients)."""
    if hyper.step == "constant":
        return np.full(w.shape[0], hyper.beta)
    if algorithm(hyper.algorithm).exact:
        return 1.0 / (hyper.c * local_L(family, w, hyper.alpha, L, rho, hyper.inner_steps))
    return 1.0 / (hyper.c * estimate_L_tilde(family, w, hyper, L, rho, rng, fast=fast))


def has_fast_direction(family: TaskFamily, algorithm_name: str, inner_steps: int = 1) -> bool:
    """Whether a fast sampler registered in ``algorithms.fast`` serves this pair
    (with ``inner_steps`` inner steps)."""
    return _fast.sampler(family, algorithm_name, inner_steps) is not None


def direction(family: TaskFamily, w: np.ndarray, hyper: Hyper, rho: float, rng, *,
              fast: bool = False, grad: np.ndarray | None = None) -> np.ndarray:
    """The update direction ``(1/B) Σ_{i∈B_k} G_i(w_k)`` of (3) per seed, ``(R, d)``.

    ``fast=True`` uses the sampler registered for the (family, algorithm) pair
    where there is one: equal in law to the generic path (the sampler's
    docstring derives it; ``tests/test_fast_paths.py`` checks mean and
    variance) but on other draws, so not equal draw for draw.  The default is
    the generic path, built from the oracles draw by draw, which the tests
    treat as the reference.  ``grad``: ``∇F(w)`` if the caller has it (exact
    gradients only).
    """
    w = family._w(w)
    if w.ndim == 1:                     # a single point: one seed
        return direction(family, w[None], hyper, rho, rng, fast=fast,
                         grad=None if grad is None else np.asarray(grad)[None])[0]
    algo = algorithm(hyper.algorithm)
    if algo.exact:
        return grad_F(family, w, hyper.alpha, hyper.inner_steps) if grad is None else grad
    tasks = family.draw_tasks((w.shape[0], hyper.B), rng)
    fs = _fast.sampler(family, algo.name, hyper.inner_steps) if fast else None
    if fs is not None:
        return fs.direction(w, tasks, hyper, rng, delta=algo.delta_rule(hyper, rho))
    return algo.task_directions(family, w, tasks, hyper, rho, rng).mean(axis=1)


def outer_step(family: TaskFamily, w: np.ndarray, hyper: Hyper, L: float, rho: float, rng, *,
               fast: bool = False, grad: np.ndarray | None = None) -> StepOut:
    """One outer step's direction and step size; ``w_{k+1} = w_k − β_k g``.  The
    step size is drawn first, on its own batch, so it is independent of ``g``.
    ``w`` is ``(R, d)`` (one row per seed) or a single point ``(d,)``.
    ``fast`` and ``grad`` as in ``direction``; with ``fast`` and the adaptive
    rule, a registered sampler draws both at once (the ``L̃`` batch still its
    own, independent of the direction's)."""
    w = family._w(w)
    if w.ndim == 1:                     # a single point: one seed
        out = outer_step(family, w[None], hyper, L, rho, rng, fast=fast,
                         grad=None if grad is None else np.asarray(grad)[None])
        return StepOut(out.g[0], out.beta[0])
    algo = algorithm(hyper.algorithm)
    fs = _fast.sampler(family, algo.name, hyper.inner_steps) if fast else None
    if (fs is not None and hyper.step == "adaptive" and rho * hyper.alpha != 0 and hyper.B_prime is not None
            and hyper.D_beta is not None):
        g, mean_norm = fs.step(w, hyper, rng, delta=algo.delta_rule(hyper, rho))
        return StepOut(g, 1.0 / (hyper.c * smoothness_formula(hyper, L, rho, mean_norm)))
    beta = step_size(family, w, hyper, L, rho, rng, fast=fast)
    return StepOut(direction(family, w, hyper, rho, rng, fast=fast, grad=grad), beta)
