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
    exact: bool = False
    #: the convergence theorem whose constants (step rule ``c``, conditions)
    #: apply; ``None`` for an algorithm without one (give ``step_c`` then)
    theorem: str | None = None

    def task_directions(self, family: TaskFamily, w: np.ndarray, tasks: np.ndarray, hyper,
                        rho: float, rng) -> np.ndarray:
        """``G_i(w)`` for every seed and sampled task: shape ``(R, B, d)``."""
        raise NotImplementedError

    def delta_rule(self, hyper, rho: float):
        """A finite-difference rule ``δ(‖v‖)`` for the fast samplers, or ``None``."""
        return None

    @staticmethod
    def _inner_and_outer(family, w, tasks, hyper, rng):
        """``(w[:, None], v)`` with ``v = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)`` (inner step (2), fresh batches)."""
        we = w[:, None, :]
        g_in = family.batch_grad(we, tasks, family.draw_batch(tasks, hyper.D_in, rng))
        return we, family.batch_grad(we - hyper.alpha * g_in, tasks, family.draw_batch(tasks, hyper.D_o, rng))


class MAML(Algorithm):
    """Update (3) with ``G_i = (I − α∇̃²f_i(w, D_h)) ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)`` (6)."""

    name, oracle_calls, theorem = "maml", 3, "maml"

    def task_directions(self, family, w, tasks, hyper, rho, rng):
        we, v = self._inner_and_outer(family, w, tasks, hyper, rng)
        b_h = family.draw_batch(tasks, hyper.D_h, rng, need="hess")
        return v - hyper.alpha * family.batch_hvp(we, tasks, v, b_h)


class FOMAML(Algorithm):
    """First-order MAML (THEORY.md §5): ``G_i = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)``."""

    name, oracle_calls, theorem = "fomaml", 2, "fomaml"

    def task_directions(self, family, w, tasks, hyper, rho, rng):
        return self._inner_and_outer(family, w, tasks, hyper, rng)[1]


class HFMAML(Algorithm):
    """Hessian-free MAML (THEORY.md §6): ``G_i = v_i − α d_i`` with the central
    difference ``d_i = [∇̃f_i(w + δv_i, D_h) − ∇̃f_i(w − δv_i, D_h)]/(2δ)`` on one
    ``D_h`` batch for both points, the theorem's ``δ = 1/(6ρα‖v_i‖)`` (capped
    at ``delta_cap`` only if the user sets one)."""

    name, oracle_calls, theorem = "hfmaml", 4, "hfmaml"

    def delta_rule(self, hyper, rho):
        return lambda v_norm: hf_delta_formula(rho, hyper.alpha, v_norm, hyper.delta_cap)

    def task_directions(self, family, w, tasks, hyper, rho, rng):
        we, v = self._inner_and_outer(family, w, tasks, hyper, rng)
        b_h = family.draw_batch(tasks, hyper.D_h, rng)
        delta = self.delta_rule(hyper, rho)(np.linalg.norm(v, axis=-1))[..., None]
        d = (family.batch_grad(we + delta * v, tasks, b_h)
             - family.batch_grad(we - delta * v, tasks, b_h)) / (2.0 * delta)
        return v - hyper.alpha * d


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
