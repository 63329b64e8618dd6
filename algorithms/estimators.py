"""The outer-step estimators as objects: MAML, FO-MAML, HF-MAML and exact gradients.

Each ``Algorithm`` builds the per-task directions ``G_i`` of its update from a
family's oracles, vectorised over seeds and tasks (arrays ``(R, B, d)``), and
declares what the rest of the code needs to know about it (``exact``,
``oracle_calls``, a finite-difference rule for the fast samplers).  Code that
needs an algorithm looks it up by name in ``ALGORITHMS`` (``algorithm(name)``)
instead of branching on the name.
"""
from __future__ import annotations

import numpy as np

from mamlcheck.problems.base import TaskFamily
from mamlcheck.theory.bounds import hf_delta_formula

__all__ = ["Algorithm", "MAML", "FOMAML", "HFMAML", "Exact", "ALGORITHMS", "ORACLE_CALLS", "algorithm"]


class Algorithm:
    """An outer-step estimator: its name, its cost, and its per-task directions.

    ``exact``: steps along the exact ``∇F`` (no sampling; the step size then
    uses the exact ``L(w)``).  ``oracle_calls``: gradient-oracle calls per
    sampled task and step, for cost tables (a Hessian-vector product counts as
    one call: it costs about one gradient).
    """

    name: str = ""
    oracle_calls: int = 0
    #: the oracle calls each further inner step adds (``calls``)
    calls_per_inner_step: int = 0
    exact: bool = False
    #: the convergence theorem whose constants (step rule ``c``, conditions)
    #: apply; ``None`` for an algorithm without one (give ``step_c`` then)
    theorem: str | None = None

    def task_directions(self, family: TaskFamily, w: np.ndarray, tasks: np.ndarray, hyper,
                        rho: float, rng) -> np.ndarray:
        """``G_i(w)`` for every seed and sampled task: shape ``(R, B, d)``."""
        raise NotImplementedError

    def calls(self, inner_steps: int = 1) -> int:
        """Gradient-oracle calls per sampled task and step with ``N = inner_steps``
        inner steps: ``oracle_calls`` at ``N = 1``, ``calls_per_inner_step`` more per
        further step (MAML ``2N + 1``, FO-MAML ``N + 1``, HF-MAML ``3N + 1``)."""
        return self.oracle_calls + self.calls_per_inner_step * (inner_steps - 1)

    def delta_rule(self, hyper, rho: float):
        """A finite-difference rule ``δ(‖v‖)`` for the fast samplers, or ``None``."""
        return None

    @staticmethod
    def _inner_and_outer(family, w, tasks, hyper, rng):
        """``(u, v)``: the stochastic inner points ``u = [u^0, …, u^N]``,
        ``u^0 = w[:, None]``, ``u^{j+1} = u^j − α∇̃f_i(u^j, D_in)`` with a fresh
        inner batch per step (inner step (2); Ji, Yang & Liang 2022, the
        resampled N-step estimator), and ``v = ∇̃f_i(u^N, D_o)`` on a fresh
        outer batch.  ``N = hyper.inner_steps``."""
        u = [w[:, None, :]]
        for _ in range(hyper.inner_steps):
            g_in = family.batch_grad(u[-1], tasks, family.draw_batch(tasks, hyper.D_in, rng))
            u.append(u[-1] - hyper.alpha * g_in)
        return u, family.batch_grad(u[-1], tasks, family.draw_batch(tasks, hyper.D_o, rng))


class MAML(Algorithm):
    """Update (3) with ``G_i = (I − α∇̃²f_i(w, D_h)) ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)`` (6);
    with ``N`` inner steps ``G_i = Π_{j=0}^{N−1}(I − α∇̃²f_i(u^j, D_h^j)) ∇̃f_i(u^N, D_o)``,
    a fresh Hessian batch per inner point, the factor of ``u^{N−1}`` applied first."""

    name, oracle_calls, calls_per_inner_step, theorem = "maml", 3, 2, "maml"

    def task_directions(self, family, w, tasks, hyper, rho, rng):
        u, v = self._inner_and_outer(family, w, tasks, hyper, rng)
        for u_j in reversed(u[:-1]):
            v = v - hyper.alpha * family.batch_hvp(u_j, tasks, v, family.draw_batch(tasks, hyper.D_h, rng, need="hess"))
        return v


class FOMAML(Algorithm):
    """First-order MAML (THEORY.md §5): ``G_i = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)``."""

    name, oracle_calls, calls_per_inner_step, theorem = "fomaml", 2, 1, "fomaml"

    def task_directions(self, family, w, tasks, hyper, rho, rng):
        """``∇̃f_i(u^N, D_o)``: the product of Hessian factors dropped."""
        return self._inner_and_outer(family, w, tasks, hyper, rng)[1]


class HFMAML(Algorithm):
    """Hessian-free MAML (THEORY.md §6): ``G_i = v_i − α d_i`` with the central
    difference ``d_i = [∇̃f_i(w + δv_i, D_h) − ∇̃f_i(w − δv_i, D_h)]/(2δ)`` on one
    ``D_h`` batch for both points, the theorem's ``δ = 1/(6ρα‖v_i‖)`` (capped
    at ``delta_cap`` only if the user sets one)."""

    name, oracle_calls, calls_per_inner_step, theorem = "hfmaml", 4, 3, "hfmaml"

    def delta_rule(self, hyper, rho):
        return lambda v_norm: hf_delta_formula(rho, hyper.alpha, v_norm, hyper.delta_cap)

    def task_directions(self, family, w, tasks, hyper, rho, rng):
        """Each Hessian factor by a central difference, ``N`` of them for ``N``
        inner steps (a fresh ``D_h`` batch and ``δ`` per inner point)."""
        u, v = self._inner_and_outer(family, w, tasks, hyper, rng)
        rule = self.delta_rule(hyper, rho)
        for u_j in reversed(u[:-1]):
            b_h = family.draw_batch(tasks, hyper.D_h, rng)
            delta = rule(np.linalg.norm(v, axis=-1))[..., None]
            d = (family.batch_grad(u_j + delta * v, tasks, b_h)
                 - family.batch_grad(u_j - delta * v, tasks, b_h)) / (2.0 * delta)
            v = v - hyper.alpha * d
        return v


class Exact(Algorithm):
    """Steps along the exact ``∇F`` of (5): infinite batches."""

    name, oracle_calls, exact, theorem = "exact", 0, True, "maml"     # the MAML theorem with infinite batches


#: The algorithms by name (``Hyper.algorithm`` names one of them).
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (MAML(), FOMAML(), HFMAML(), Exact())}
#: Gradient-oracle calls per sampled task and step, by algorithm name (cost tables).
ORACLE_CALLS = {name: a.oracle_calls for name, a in ALGORITHMS.items()}


def algorithm(name: str) -> Algorithm:
    """The registered algorithm called ``name``."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}") from None
