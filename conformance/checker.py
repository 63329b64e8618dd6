"""Check one MAML implementation against the exact meta-gradients, and say
what is wrong when it fails.

Setting: an implementation of one task's meta-gradient in PyTorch or JAX,

    fn(loss, w, inner, outer, alpha, steps) -> meta-gradient       (returns="meta_gradient")
    fn(loss, w, inner, alpha, steps)        -> adapted parameters   (returns="adapted")

where ``loss(w, batch)`` is the task's loss on a batch, written in the
implementation's framework (``TaskFamily.loss_on``), ``w`` the initial
parameters (float64, shape ``(d,)``), ``inner``/``outer`` opaque batches that
``loss`` takes, ``alpha`` the inner step and ``steps`` the number of inner
steps.  With ``returns="adapted"`` this tool differentiates the outer loss
through the returned parameters itself.

Guarantee: for each family (``FAMILIES``, certified families with an exact
``∇F``) and each ``N`` the implementation is checked on

* ``batches``: several tasks, points and batch draws, against ``G_i`` of
  ``oracle.meta_gradient`` on the *same* batches (draw for draw, so a correct
  implementation agrees to rounding: relative error ``≤ TOL = 1e-10``);
* ``exact task``: infinite batches (the task's exact loss), against the exact
  per-task term of ``∇F`` (5) (``∇F_N`` for ``N > 1``);
* ``∇F``: the ``p``-weighted average of the exact-batch outputs against
  ``grad_F`` (the family's closed form at ``N = 1``), first-order mode against
  ``Σ_i p_i ∇f_i(u_i^N)``.

When a check fails, the output is compared with every wrong variant of
``oracle.variants``; the one it matches on every failing case (to
``DIAGNOSIS_TOL``) names the bug.  Variants that coincide with the expected
quantity on a family (e.g. batch mix-ups on a family with deterministic
oracles) are listed as ``indistinguishable``: a pass there does not rule them
out.

References: Fallah, Mokhtari & Ozdaglar (AISTATS 2020), (5), (6) and §4.1
(FO-MAML); Ji, Yang & Liang (JMLR 2022) for ``N`` steps (THEORY.md §9).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from mamlcheck import literature as lit
from mamlcheck.algorithms.objective import grad_F
from mamlcheck.problems import make_family

from . import oracle
from .frameworks import framework

__all__ = ["Implementation", "check", "FAMILIES", "TOL", "DIAGNOSIS_TOL", "Report"]

#: a correct implementation agrees with the exact quantity to this relative error (float64 rounding
#: of a few dozen operations is ~1e-14; 1e-10 leaves room for the frameworks' own kernels)
TOL = 1e-10
#: an output that misses the expected quantity but matches a wrong variant to this is that bug
DIAGNOSIS_TOL = 1e-8

#: the certified families, small enough that a check takes seconds (name -> parameters)
FAMILIES = {
    "cosine-quadratic": {"d": 4, "M": 3, "dense": True, "seed": 1},
    "robust-regression": {"d": 3, "M": 3, "N": 12, "seed": 1},
    "hard-chain": {"eps": 0.05, "Delta": 20.0, "L": 1.0, "T": 6, "M": 3, "tilt": 0.5, "seed": 1},
    "sinusoid-mlp": {"M": 3, "width": 6, "n_pool": 12, "seed": 1},      # learn2learn's sinusoid example network
}
BATCH = {"D_in": 4, "D_o": 5}        # inner and outer batch sizes of the ``batches`` check


class Implementation(NamedTuple):
    """A MAML meta-gradient to check (see the module docstring for ``fn``).

    ``first_order``: the mode it claims (FO-MAML's direction is then expected);
    ``max_steps``: the most inner steps it supports (``None``: any);
    ``library``: the distribution whose version the report records.
    """

    name: str
    framework: str
    fn: Callable
    first_order: bool = False
    returns: str = "meta_gradient"
    max_steps: int | None = None
    library: str = ""


class Report(NamedTuple):
    """One row per (family, ``N``, check): ``cases``, ``max_rel_error`` against the
    expected quantity, ``verdict`` (pass / FAIL / error), ``diagnosis``,
    ``indistinguishable`` (variants equal to the expected quantity here)."""

    table: pd.DataFrame

    @property
    def passed(self) -> bool:
        return bool((self.table.verdict == "pass").all())

    def __str__(self) -> str:
        cols = ["family", "N", "check", "cases", "max_rel_error", "verdict", "diagnosis"]
        return self.table[cols].to_string(index=False)


def _points(fam, count: int, rng) -> np.ndarray:
    """Initial parameters around where the family's tasks sit, at its length scale."""
    centre, length = fam.centre_and_length() if fam.offers("centre_and_length") else (np.zeros(fam.d), 1.0)
    return centre + 1.5 * length * rng.standard_normal((count, fam.d))


def _cases(fam, points: int, draws: int, seed: int) -> dict[str, list[oracle.Case]]:
    rng = np.random.default_rng([seed, 17])
    W = _points(fam, points, rng)
    tasks = range(fam.M)
    batches = [oracle.Case(i, w, fam.draw_batch(i, BATCH["D_in"], rng), fam.draw_batch(i, BATCH["D_o"], rng))
               for w in W for i in tasks for _ in range(draws)]
    exact = [oracle.Case(i, w, None, None) for w in W for i in tasks]
    return {"batches": batches, "exact task": exact}


def _runner(impl: Implementation, fam) -> Callable[[oracle.Case, float, int], np.ndarray]:
    """``run(case, alpha, steps)``: the implementation's output on a case, as NumPy."""
    fw = framework(impl.framework)

    def data(batch):
        return {k: fw.asarray(v) for k, v in fam.loss_data(batch[0], batch[1]).items()}

    def loss(w, d):
        return fam.loss_on(fw.ops, w, d)

    def run(case: oracle.Case, alpha: float, steps: int) -> np.ndarray:
        inner, outer = data((case.i, case.inner)), data((case.i, case.outer))
        w = fw.asarray(case.w)
        with fw.float64():
            if impl.returns == "adapted":
                out = fw.grad(lambda v: loss(impl.fn(loss, v, inner, alpha, steps), outer), w)
            else:
                out = impl.fn(loss, w, inner, outer, alpha, steps)
        return np.asarray(fw.to_numpy(out), dtype=float).reshape(case.w.shape)

    return run


def _rel(x: np.ndarray, ref: np.ndarray, scale: float) -> float:
    return float(np.linalg.norm(x - ref) / max(scale, np.finfo(float).tiny))


def _diagnose(outputs, expected, values, variants, want) -> str:
    """The wrong variant that every failing output matches, or the closest one."""
    errs = {name: max(_rel(g, v, max(np.linalg.norm(v), np.linalg.norm(e)))
                      for g, v, e in zip(outputs, vals, expected))
            for name, vals in values.items() if name != want}
    best = min(errs, key=errs.get)
    if errs[best] <= DIAGNOSIS_TOL:
        return variants[best].diagnosis
    return f"matches no known variant (closest: {best}, rel. error {errs[best]:.2g})"


def _family_rows(impl: Implementation, name: str, params: dict, steps: Sequence[int], points: int, draws: int,
                 seed: int) -> list[dict]:
    fam = make_family(name, **params)
    if not fam.offers("loss_on"):
        raise ValueError(f"family {name!r} has no framework form (loss_on): it cannot be used for conformance")
    alpha = lit.ALPHA_MAX_LD["maml"] / fam.constants().L.value
    run = _runner(impl, fam)
    variants = oracle.variants(impl.first_order)
    want = oracle.expected_variant(impl.first_order)
    rows = []
    for N in steps:
        for check, cases in _cases(fam, points, draws, seed).items():
            vals = {k: [v.compute(fam, c, alpha, N) for c in cases] for k, v in variants.items()}
            expected = vals[want]
            row = {"family": name, "N": N, "check": check, "cases": len(cases), "alpha": alpha}
            try:
                outs = [run(c, alpha, N) for c in cases]
            except Exception as e:                       # the implementation's own failure, reported
                rows.append({**row, "max_rel_error": np.nan, "verdict": "error",
                             "diagnosis": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                             "indistinguishable": ""})
                continue
            same = [k for k, v in vals.items() if k != want and
                    max(_rel(a, b, np.linalg.norm(b)) for a, b in zip(v, expected)) <= TOL]
            rows.append({**row, **_verdict(outs, expected, vals, variants, want), "indistinguishable": ";".join(same)})
            if check == "exact task":
                rows.append({**row, "check": "∇F", "cases": points,
                             **_grad_F_row(fam, cases, outs, alpha, N, impl.first_order),
                             "indistinguishable": ""})
    return rows


def _verdict(outs, expected, vals, variants, want) -> dict:
    if not all(np.all(np.isfinite(o)) for o in outs):
        return {"max_rel_error": np.inf, "verdict": "FAIL", "diagnosis": "returns non-finite values"}
    errs = [_rel(o, e, np.linalg.norm(e)) for o, e in zip(outs, expected)]
    if max(errs) <= TOL:
        return {"max_rel_error": max(errs), "verdict": "pass", "diagnosis": ""}
    bad = [k for k, e in enumerate(errs) if e > TOL]
    diag = _diagnose([outs[k] for k in bad], [expected[k] for k in bad],
                     {n: [v[k] for k in bad] for n, v in vals.items()}, variants, want)
    return {"max_rel_error": max(errs), "verdict": "FAIL", "diagnosis": diag}


def _grad_F_row(fam, cases, outs, alpha, N, first_order) -> dict:
    """``Σ_i p_i`` of the exact-batch outputs at each point against ``∇F_N`` (or
    FO-MAML's ``Σ_i p_i ∇f_i(u_i^N)``), computed by the family's own code."""
    errs = []
    for w in np.unique(np.array([c.w for c in cases]), axis=0):
        got = sum(fam.p[c.i] * o for c, o in zip(cases, outs) if np.array_equal(c.w, w))
        if first_order:
            u = fam.inner_trajectory(w, alpha, N)[-1]
            ref = fam.p @ fam.grad(u, np.arange(fam.M))
        else:
            ref = grad_F(fam, w, alpha, N)
        errs.append(_rel(got, ref, np.linalg.norm(ref)))
    ok = np.isfinite(errs).all() and max(errs) <= TOL
    return {"max_rel_error": max(errs), "verdict": "pass" if ok else "FAIL",
            "diagnosis": "" if ok else "the task average misses ∇F (see the per-task rows)"}


def check(impl: Implementation, *, families: dict | None = None, steps: Sequence[int] = (1,), points: int = 2,
          draws: int = 2, seed: int = 0) -> Report:
    """Check ``impl`` on each family and inner-step count (module docstring).

    Args:
        impl: the implementation.
        families: name -> parameters (default ``FAMILIES``).
        steps: the inner-step counts ``N`` to check (those above ``impl.max_steps`` are skipped).
        points, draws: initial parameters per family, batch draws per task and point.
        seed: the seed of the points and batches.

    Returns:
        A ``Report``; ``report.passed`` is whether every row passed.
    """
    if impl.returns not in ("meta_gradient", "adapted"):
        raise ValueError(f"returns must be 'meta_gradient' or 'adapted', got {impl.returns!r}")
    steps = [int(n) for n in steps if impl.max_steps is None or n <= impl.max_steps]
    if not steps or min(steps) < 1:
        raise ValueError(f"steps must be inner-step counts ≥ 1 that the implementation supports, got {steps}")
    rows = []
    for name, params in (FAMILIES if families is None else families).items():
        rows += _family_rows(impl, name, params, steps, points, draws, seed)
    table = pd.DataFrame(rows)
    table.insert(0, "implementation", impl.name)
    table.insert(1, "framework", impl.framework)
    table.insert(2, "mode", "first-order" if impl.first_order else "second-order")
    return Report(table)
