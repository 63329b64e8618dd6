"""Contract checks of what the algorithms compute from a family: its closed-form
``F`` and ``∇F`` against the task sums (1), (5), and a few steps of every
registered algorithm through the generic and the fast paths (the calls the
estimators make, e.g. ``draw_batch(..., need="hess")``, must work)."""
from __future__ import annotations

import numpy as np

from . import _contract as C

#: relative agreement of a closed form with the task sum: rounding of O(M·d) terms
OBJECTIVE_RTOL = 1e-10


def objective_rows(s) -> list[dict]:
    """``meta_loss`` / ``meta_grad`` (when offered) against the plain task sums
    at the test points, for α = 0 and α = 1/(4L): deterministic, tolerance
    ``OBJECTIVE_RTOL`` relative to the terms' size."""
    from mamlcheck.algorithms.objective import F_by_tasks, grad_F_by_tasks
    fam = s.family
    L = float(s.c.L.value)
    alphas = (0.0, 0.25 / L if L > 0 else 0.25)
    rows = []
    for cap, closed, summed, statement in (
            ("meta_loss", lambda w, a: fam.meta_loss(w, a), F_by_tasks, "closed-form F = Σ p_i f_i(w − α∇f_i(w)) (1)"),
            ("meta_grad", lambda w, a: fam.meta_grad(w, a), grad_F_by_tasks,
             "closed-form ∇F = Σ p_i (I − α∇²f_i)∇f_i(w − α∇f_i(w)) (5)")):
        if not C.offers(fam, cap):
            rows.append(C.skipped(cap, statement, "(1), (5)", "not offered: the task sum is used"))
            continue
        err, scale = 0.0, 1.0
        for a in alphas:
            ref = np.asarray(summed(fam, s.points, a))
            err = max(err, float(np.abs(np.asarray(closed(s.points, a)) - ref).max()))
            scale = max(scale, float(np.abs(ref).max()))
        rows.append(C.row(cap, statement, "(1), (5)", err, OBJECTIVE_RTOL * scale,
                          note=f"{len(s.points)} points, α ∈ {{0, 1/(4L)}}"))
    return rows


def step_rows(s, steps: int = 2) -> list[dict]:
    """``steps`` outer steps of every registered algorithm from the first test
    point, on 3 seeds, by the generic estimator and by the fast path: every
    iterate finite (a family whose oracles miss a call the estimators make
    fails here, not in a user's run)."""
    from mamlcheck.algorithms.engine import trajectory
    from mamlcheck.algorithms.estimators import ALGORITHMS
    from mamlcheck.algorithms.hyper import Hyper
    L = float(s.c.L.value)
    rows = []
    for name in ALGORITHMS:
        statement = f"{steps} steps of {name} (generic and fast paths) give finite iterates"

        def run(name=name):
            hyper = Hyper(name, alpha=0.1 / L if L > 0 else 0.1, B=2, step="constant", beta=0.1 / L if L > 0 else 0.1)
            bad = 0
            for fast in (False, True):
                for st in trajectory(s.family, hyper, seeds=3, w0=s.points[0], budget=steps, fast=fast):
                    bad += not (np.isfinite(st.w).all() and np.isfinite(st.grad).all())
            return [C.row(f"steps_{name}", statement, "(3)", bad, 0.0,
                          note="iterates not finite; constant β = 1/(10L), B = 2")]
        rows += C.guard(f"steps_{name}", statement, run, "(3)")
    return rows
