"""The one trajectory engine: every trajectory of the suite is stepped here.

``trajectory(family, hyper, ...)`` is an iterator of immutable ``Step``
records, one per iterate ``w_k`` of every seed at once.  The runner, the
proof ledger, the step-size experiment and every other trajectory consume it,
so the same seeds give the same draws everywhere (``run`` and ``proof`` on one
configuration produce the same iterates) and one divergence rule holds:

* **Draws.**  Seed ``r`` draws from its own streams (``SeedStreams``), through
  the fast sampler registered for the (family, algorithm) pair where there is
  one (``algorithms.fast``: equal in law to the generic estimator) and the
  generic estimator otherwise (``algorithms.steps.outer_step``).
* **Divergence.**  A seed whose next iterate is non-finite or leaves the ball
  ``‖w‖ ≤ divergence_bound`` is frozen at its last iterate and marked
  diverged at that iteration; the others go on.  A frozen seed keeps drawing
  (its streams stay in step), its iterate no longer moves.

The consumer decides when to stop (it simply stops iterating); ``budget``
bounds the number of steps.  A record describes ``w_k`` and the step that led
to it (``g``, ``beta``: ``None`` at ``k = 0``).  Arrays in a record are never
written to afterwards (each step makes new ones), so a record can be kept.
Ctrl-C during a step leaves the last record consistent: a step is committed
only once it is complete.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np

from mamlcheck.problems.base import Constants, TaskFamily, check_count, check_positive

from .estimators import algorithm
from .hyper import Hyper
from .objective import grad_F
from .steps import outer_step
from .streams import SeedStreams

__all__ = ["Step", "trajectory", "start_points", "DIVERGENCE_BOUND"]

#: Default radius of the ball outside which a seed counts as diverged.
DIVERGENCE_BOUND = 1e8


class Step(NamedTuple):
    """One iterate of every seed (arrays with the seed axis first).

    ``k``: the iteration; ``w``: ``w_k`` ``(R, d)`` (a diverged seed's last
    finite iterate); ``grad``: ``∇F(w_k)`` ``(R, d)``; ``grad_norm``:
    ``‖∇F(w_k)‖`` ``(R,)``; ``alive``: seeds not diverged ``(R,)``;
    ``all_alive``: no seed has diverged; ``diverged_at``: the iteration at
    which each seed diverged, ``-1`` if it has not; ``g``, ``beta``: the
    direction and step size of the step from ``w_{k−1}`` (``None`` at ``k = 0``).
    """

    k: int
    w: np.ndarray
    grad: np.ndarray
    grad_norm: np.ndarray
    alive: np.ndarray
    all_alive: bool
    diverged_at: np.ndarray
    g: np.ndarray | None
    beta: np.ndarray | None


def _norm(x: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(x, axis=-1)`` for real ``x``, bit for bit (the same
    ``sqrt(add.reduce(x·x))``), without its dispatch overhead."""
    return np.sqrt(np.add.reduce(x * x, axis=-1))


def start_points(family: TaskFamily, w0, R: int) -> np.ndarray:
    """``w_0`` for ``R`` seeds: zeros by default, ``(d,)`` shared or ``(R, d)``."""
    if w0 is None:
        return np.zeros((R, family.d))
    w0 = family._w(w0)
    if w0.ndim > 2 or (w0.ndim == 2 and w0.shape[0] != R):
        raise ValueError(f"w0 must have shape ({family.d},) or ({R}, {family.d}), got {w0.shape}")
    return np.array(np.broadcast_to(w0, (R, family.d)))


def trajectory(family: TaskFamily, hyper: Hyper, *, seeds=None, w0=None, root: int = 0,
               constants: Constants | None = None, budget: int | None = None,
               divergence_bound: float = DIVERGENCE_BOUND, streams: SeedStreams | None = None,
               fast: bool = True) -> Iterator[Step]:
    """Step ``hyper.algorithm`` on ``family`` for every seed at once.

    Args:
        seeds: a count ``R`` (seeds ``0..R-1``) or explicit seed ids (default 8).
        w0: initial point ``(d,)`` shared by all seeds, or ``(R, d)``; zeros by default.
        root: root entropy of the per-seed streams.
        constants: the ``L``, ``ρ`` the step rule uses (default: the family's
            certified constants); ``hyper`` is resolved against them.
        budget: the last iteration yielded is at most ``budget`` (``None``: no limit).
        divergence_bound: see the module docstring.
        streams: the random streams to use instead of ``SeedStreams(seeds, root)``.
        fast: use the registered fast samplers (the default; ``False``: the
            generic estimator, draw by draw from the oracles).

    Yields:
        ``Step`` records for ``k = 0, 1, 2, ...``; their arrays are read-only.

    Every argument is checked here, before the first step is asked for.
    """
    if not isinstance(family, TaskFamily):
        raise TypeError(f"family must be a TaskFamily (e.g. mamlcheck.family('cosine-quadratic')), "
                        f"got {type(family).__name__}")
    if not isinstance(hyper, Hyper):
        raise TypeError(f"hyper must be a mamlcheck.Hyper (e.g. Hyper('maml', alpha=0.02)), got {type(hyper).__name__}")
    if budget is not None:
        budget = check_count("budget", budget, minimum=0)
    check_positive("divergence_bound", divergence_bound)
    if streams is not None and seeds is not None:
        raise ValueError("give either seeds or streams, not both")
    consts = family.constants() if constants is None else constants
    hyper = hyper.resolved(consts)
    streams = SeedStreams(8 if seeds is None else seeds, root) if streams is None else streams
    w = start_points(family, w0, streams.R)
    return _steps(family, hyper, consts, streams, w, budget, divergence_bound, fast)


def _frozen(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


def _steps(family, hyper, consts, streams, w, budget, divergence_bound, fast) -> Iterator[Step]:
    """The engine's loop (``trajectory`` has checked its arguments)."""
    L, rho = consts.L.value, consts.rho.value
    exact = algorithm(hyper.algorithm).exact
    R = streams.R
    alive = np.ones(R, dtype=bool)
    diverged_at = np.full(R, -1)
    all_alive = True                    # no seed has diverged: the masks below are no-ops
    g_F = grad_F(family, w, hyper.alpha, hyper.inner_steps)
    record = Step(0, w, g_F, _norm(g_F), alive, True, diverged_at, None, None)
    _frozen(w, g_F, record.grad_norm, alive, diverged_at)
    k = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            yield record
            if budget is not None and k >= budget:
                return
            out = outer_step(family, w, hyper, L, rho, streams, fast=fast, grad=g_F if exact else None)
            w_new = w - out.beta[:, None] * out.g
            bad = None
            if not np.maximum.reduce(_norm(w_new)) <= divergence_bound:      # some seed is out or NaN
                bad = ~(_norm(w_new) <= divergence_bound) & alive
            alive_next = alive if bad is None else alive & ~bad
            w_next = w_new if (bad is None and all_alive) else np.where(alive_next[:, None], w_new, w)
            g_next = grad_F(family, w_next, hyper.alpha, hyper.inner_steps)
            if bad is not None and bad.any():
                diverged_at = np.where(bad, k + 1, diverged_at)
                all_alive = False
            # commit the step at once: Ctrl-C never leaves w, k and ∇F out of step
            w, alive, k, g_F = w_next, alive_next, k + 1, g_next
            record = Step(k, w, g_F, _norm(g_F), alive, all_alive, diverged_at, out.g, out.beta)
            _frozen(w, g_F, record.grad_norm, alive, diverged_at, out.g, out.beta)
