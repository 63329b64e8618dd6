"""One outer step of MAML, FO-MAML, HF-MAML, or exact MAML, for all seeds at once.

Arrays carry a leading seed axis ``R``; the task batch adds an axis ``B``, so
one call evaluates ``R × B`` stochastic meta-gradients with no Python loop.

* MAML, update (3):  ``G_i = (I − α∇̃²f_i(w, D_h)) ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)`` (6).
* FO-MAML (THEORY.md §5): ``G_i = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)``.
* HF-MAML (THEORY.md §6): ``G_i = v_i − α d_i``,
  ``d_i = [∇̃f_i(w + δv_i, D_h) − ∇̃f_i(w − δv_i, D_h)]/(2δ)``, one ``D_h`` for
  both points, ``δ = 1/(6ρα‖v_i‖)`` (``delta_cap`` when that is undefined, and
  never above it).
* exact: the direction is ``∇F(w)`` of (5) (infinite batches).

Fast paths (``fast=True``, what the runner uses): a family may offer
``batched_direction`` / ``batched_step`` (cosine-quadratic with diagonal ``A``
does), drawing the same estimator in law with fewer random numbers; the
default, ``fast=False``, is the generic construction from the oracles that
the tests hold as the reference.

Step sizes: ``β_k = 1/(c·L̃(w_k))`` (THEORY.md §3) with
``L̃(w) = 4L + 2ρα (1/B′) Σ_{j∈B′} ‖∇̃f_j(w, D_β)‖`` on a batch independent of
the update's; exact mode uses the exact ``L(w)``.  Or a constant ``β``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mamlcheck.problems.base import TaskFamily
from mamlcheck import literature as lit

from .hyper import Hyper
from .objective import grad_F, local_L

__all__ = ["direction", "outer_step", "StepOut", "step_size", "estimate_L_tilde", "hf_delta", "ORACLE_CALLS"]


class StepOut(NamedTuple):
    """What one step produced for every seed: update direction and step size."""

    g: np.ndarray      # (R, d): (1/B) Σ_{i∈B_k} G_i(w_k)
    beta: np.ndarray   # (R,): β_k


def hf_delta(rho: float, alpha: float, v_norm: np.ndarray, cap: float) -> np.ndarray:
    """HF-MAML's finite-difference step ``δ = 1/(6ρα‖v‖)`` (THEORY.md §6), capped at ``cap``."""
    denom = lit.HF_DELTA_DEN * rho * alpha * v_norm
    with np.errstate(divide="ignore"):
        return np.minimum(cap, np.where(denom > 0, 1.0 / denom, np.inf))


def _task_directions(family: TaskFamily, w: np.ndarray, tasks: np.ndarray, hyper: Hyper,
                     rho: float, rng) -> np.ndarray:
    """``G_i(w)`` for every seed and sampled task: shape ``(R, B, d)``."""
    alpha = hyper.alpha
    we = w[:, None, :]
    g_in = family.batch_grad(we, tasks, family.draw_batch(tasks, hyper.D_in, rng))
    v = family.batch_grad(we - alpha * g_in, tasks, family.draw_batch(tasks, hyper.D_o, rng))
    if hyper.algorithm == "fomaml":
        return v
    if hyper.algorithm == "maml":
        b_h = family.draw_batch(tasks, hyper.D_h, rng, need="hess")
        return v - alpha * family.batch_hvp(we, tasks, v, b_h)
    # hfmaml: the same D_h batch at w ± δv (THEORY.md §6)
    b_h = family.draw_batch(tasks, hyper.D_h, rng)
    delta = hf_delta(rho, alpha, np.linalg.norm(v, axis=-1), hyper.delta_cap)[..., None]
    d = (family.batch_grad(we + delta * v, tasks, b_h)
         - family.batch_grad(we - delta * v, tasks, b_h)) / (2.0 * delta)
    return v - alpha * d


def _L_tilde(L: float, rho: float, alpha: float, mean_norm: np.ndarray) -> np.ndarray:
    """``4L + 2ρα·mean_norm``: the estimate of THEORY.md §3 from ``(1/B′) Σ_j ‖∇̃f_j‖``."""
    return lit.SMOOTH_L_FACTOR * L + (lit.SMOOTH_RHO_FACTOR * rho * alpha) * mean_norm


def estimate_L_tilde(family: TaskFamily, w: np.ndarray, hyper: Hyper, L: float, rho: float, rng, *,
                     fast: bool = False) -> np.ndarray:
    """``L̃(w) = 4L + 2ρα (1/B′) Σ_j ‖∇̃f_j(w, D_β)‖`` on an independent batch
    (THEORY.md §3, step-size lemma); no draws are consumed when ``ρα = 0``.
    ``fast=True`` takes the norms from the family's ``batched_grad_norm``
    where it has one (same law, other draws)."""
    if rho * hyper.alpha == 0:
        return np.full(w.shape[0], lit.SMOOTH_L_FACTOR * L)
    if hyper.B_prime is None or hyper.D_beta is None:
        raise ValueError("hyper must be resolved for the L̃ estimate: use hyper.resolved(constants) "
                         "to set B_prime and D_beta")
    tasks = family.draw_tasks((w.shape[0], hyper.B_prime), rng)
    norms = getattr(family, "batched_grad_norm", None) if fast else None
    if norms is not None:
        g_norm = norms(w, tasks, hyper.D_beta, rng)
    else:
        g_norm = np.linalg.norm(family.sample_grad(w[:, None, :], tasks, hyper.D_beta, rng), axis=-1)
    return _L_tilde(L, rho, hyper.alpha, g_norm.mean(axis=1))


def step_size(family: TaskFamily, w: np.ndarray, hyper: Hyper, L: float, rho: float, rng, *,
              fast: bool = False) -> np.ndarray:
    """``β_k`` per seed: constant, or ``1/(c·L̃(w_k))`` (exact ``L(w_k)`` in exact mode)."""
    if hyper.step == "constant":
        return np.full(w.shape[0], hyper.beta)
    if hyper.algorithm == "exact":
        return 1.0 / (hyper.c * local_L(family, w, hyper.alpha, L, rho))
    return 1.0 / (hyper.c * estimate_L_tilde(family, w, hyper, L, rho, rng, fast=fast))


def _has_fast_direction(family: TaskFamily, algorithm: str) -> bool:
    supports = getattr(family, "batched_direction_supports", None)
    return supports is not None and bool(supports(algorithm))


def _delta_rule(hyper: Hyper, rho: float):
    """HF-MAML's ``δ(‖v‖)`` for the fast paths (``None`` for the other algorithms)."""
    if hyper.algorithm != "hfmaml":
        return None
    return lambda v_norm: hf_delta(rho, hyper.alpha, v_norm, hyper.delta_cap)


def direction(family: TaskFamily, w: np.ndarray, hyper: Hyper, rho: float, rng, *,
              fast: bool = False, grad: np.ndarray | None = None) -> np.ndarray:
    """The update direction ``(1/B) Σ_{i∈B_k} G_i(w_k)`` of (3) per seed, ``(R, d)``.

    ``fast=True`` uses the family's ``batched_direction`` where it serves the
    algorithm: equal in law to the generic path (the family's docstring
    derives it; ``tests/test_fast_paths.py`` checks mean and variance) but on
    other draws, so not equal draw for draw.  The default is the generic
    path, built from the oracles draw by draw, which the tests treat as the
    reference.  ``grad``: ``∇F(w)`` if the caller has it (exact mode only).
    """
    if hyper.algorithm == "exact":
        return grad_F(family, w, hyper.alpha) if grad is None else grad
    tasks = family.draw_tasks((w.shape[0], hyper.B), rng)
    if fast and _has_fast_direction(family, hyper.algorithm):
        return family.batched_direction(w, tasks, hyper, rng, delta=_delta_rule(hyper, rho))
    return _task_directions(family, w, tasks, hyper, rho, rng).mean(axis=1)


def outer_step(family: TaskFamily, w: np.ndarray, hyper: Hyper, L: float, rho: float, rng, *,
               fast: bool = False, grad: np.ndarray | None = None) -> StepOut:
    """One outer step's direction and step size; ``w_{k+1} = w_k − β_k g``.  The
    step size is drawn first, on its own batch, so it is independent of ``g``.
    ``fast`` and ``grad`` as in ``direction``; with ``fast`` and the adaptive
    rule, a family with ``batched_step`` draws both at once (the ``L̃`` batch
    still its own, independent of the direction's)."""
    if (fast and hyper.step == "adaptive" and rho * hyper.alpha != 0 and hyper.B_prime is not None
            and hyper.D_beta is not None and _has_fast_direction(family, hyper.algorithm)
            and hasattr(family, "batched_step")):
        g, mean_norm = family.batched_step(w, hyper, rng, delta=_delta_rule(hyper, rho))
        return StepOut(g, 1.0 / (hyper.c * _L_tilde(L, rho, hyper.alpha, mean_norm)))
    beta = step_size(family, w, hyper, L, rho, rng, fast=fast)
    return StepOut(direction(family, w, hyper, rho, rng, fast=fast, grad=grad), beta)


# Gradient-oracle calls per sampled task and step, for cost tables: MAML's
# Hessian-vector product counts as one call (it costs about one gradient).
ORACLE_CALLS = {"maml": 3, "fomaml": 2, "hfmaml": 4, "exact": 0}
