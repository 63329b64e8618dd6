"""Multi-step MAML, FO-MAML and HF-MAML: what an iteration costs against N (THEORY.md §9).

An N-step estimator evaluates per sampled task ``N`` inner gradients and one
outer gradient, and, to carry the outer gradient back through the inner loop,
``N`` Hessian-vector products (MAML), nothing (FO-MAML) or ``N`` central
differences of two gradients each (HF-MAML): ``Algorithm.calls(N) = 2N + 1``,
``N + 1`` and ``3N + 1`` oracle calls per task (a Hessian-vector product
counts as one call), ``calls(N)·B`` per iteration.  With ``α = c/(NL)`` the
iterations do not grow with ``N`` (``multistep_rate``), so the total cost
grows linearly in ``N`` (§9: the paper's abstract claims a complexity
linear in ``N``).  Measured here on ``robust-regression`` (no fast sampler, so
every draw goes through the family's stochastic oracles), ``α = 1/(6NL)``
and ``B = 20`` tasks per step for the three algorithms:

* **Oracle calls, counted.**  The family is wrapped (``CountingFamily``) so
  that every call of ``batch_grad`` and ``batch_hvp`` adds the number of
  (seed, task) pairs it evaluates, and calls made inside ``sample_grad`` (the
  step rule's ``L̃`` estimate on its own ``B′`` tasks) are tallied apart.  A
  run of ``count_steps`` iterations (``algorithms.runner.run``; its exact
  ``‖∇F_N‖`` goes through the exact oracles, not counted) gives the calls per
  iteration and seed, to match ``Algorithm.calls(N)·B`` exactly, and
  ``B′`` for the step size.
* **Wall time** of one outer step (``algorithms.steps.outer_step``: the
  direction and the step size, one seed, ``B`` tasks, the plain family): the
  median over ``repeats`` blocks of ``steps`` steps, per iteration, in ms.
  It measures this machine (the only column of the table that is not a
  deterministic function of the cell); a straight line in ``N`` is fitted to
  the medians and reported, not checked.

Step sizes.  MAML runs at its theorem's step ``β_k = 1/(12 L̃_N(w_k))`` with
``D_h`` from its conditions.  FO-MAML and HF-MAML with ``N > 1`` have no
theorem (THEORY.md §9 covers N-step MAML and exact gradients only), so no
rule fixes ``c``: they are given ``step_c = 12`` (MAML's) at every ``N``
(column ``step_note``; at ``N = 1`` their own theorems would ask ``c = 18`` and
``25``).  The step size does not change what an iteration costs.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mamlcheck import literature as lit
from mamlcheck.algorithms.estimators import ALGORITHMS as ESTIMATORS
from mamlcheck.algorithms.runner import run
from mamlcheck.algorithms.steps import outer_step
from mamlcheck.algorithms.streams import SeedStreams
from mamlcheck.problems import make_family
from mamlcheck.problems.robust_regression import RobustRegression
from mamlcheck.theory.checks import Check
from mamlcheck.theory.conditions import broken, check_conditions
from mamlcheck.theory.multistep import multistep_alpha_max

from . import style
from .analysis import fit_line
from .multistep_rate import theorem_hyper

__all__ = ["NAME", "TITLE", "Scale", "SCALES", "cells", "compute", "plot", "claims", "CountingFamily",
           "count_check", "step_count_check", "time_report"]

NAME = "multistep_cost"
TITLE = "Multi-step MAML, FO-MAML, HF-MAML: gradient-oracle calls and wall time per iteration against N"

FAMILY = "robust-regression"
FAMILY_PARAMS = {"d": 5, "M": 10, "N": 50}
ALGORITHMS = ("maml", "fomaml", "hfmaml")
LABEL = {"maml": "MAML", "fomaml": "FO-MAML", "hfmaml": "HF-MAML"}
COLOR = {"maml": style.ALT[0], "fomaml": style.ALT[1], "hfmaml": style.ALT[2]}
FORMULA = {"maml": "2N + 1", "fomaml": "N + 1", "hfmaml": "3N + 1"}
B_TASKS = lit.B_MIN
STEP_C_GIVEN = lit.STEP_C["maml"]        # the c given to FO-/HF-MAML (no theorem fixes one for N > 1)
TIMING_ROOT = 7                          # the timed steps' streams


class Scale(NamedTuple):
    """The size of this experiment at one scale: the N grid, the counted run
    (iterations, seeds) and the timing (blocks, steps per block)."""

    inner_steps: Any
    count_steps: Any
    count_seeds: Any
    repeats: Any
    steps: Any


SCALES = {
    "tiny": Scale(inner_steps=(1, 2, 3), count_steps=2, count_seeds=2, repeats=3, steps=3),
    "quick": Scale(inner_steps=(1, 2, 4), count_steps=4, count_seeds=2, repeats=5, steps=8),
    "default": Scale(inner_steps=(1, 2, 3, 5, 8), count_steps=5, count_seeds=2, repeats=7, steps=15),
    "full": Scale(inner_steps=(1, 2, 3, 4, 6, 8, 12, 16), count_steps=10, count_seeds=4, repeats=15, steps=30),
}


def cells(scale: str) -> list[dict]:
    """One cell per (algorithm, N)."""
    s = SCALES[scale]
    return [{"family": FAMILY, "family_params": FAMILY_PARAMS, "algorithm": alg, "N": int(N), "B": B_TASKS,
             "count_steps": s.count_steps, "count_seeds": s.count_seeds, "repeats": s.repeats, "steps": s.steps}
            for alg in ALGORITHMS for N in s.inner_steps]


class CountingFamily(RobustRegression):
    """``robust-regression`` whose stochastic oracles count their evaluations: each
    call of ``batch_grad`` or ``batch_hvp`` adds the number of (seed, task) pairs
    it evaluates (the broadcast of the task indices with the point's leading
    axes) to ``grad`` or ``hvp``; calls made inside ``sample_grad`` (the step
    rule's ``L̃`` estimate) go to ``step`` instead.  The oracles themselves are
    the parent's, unchanged."""

    def counts(self) -> Counter:
        return self.__dict__.setdefault("_counts", Counter())

    def reset_counts(self) -> None:
        self.counts().clear()

    def _tally(self, kind: str, w, i) -> None:
        n = int(np.prod(np.broadcast_shapes(np.shape(i), np.shape(w)[:-1])))
        self.counts()["step" if self.__dict__.get("_in_step", 0) else kind] += n

    def batch_grad(self, w, i, batch):
        self._tally("grad", w, i)
        return super().batch_grad(w, i, batch)

    def batch_hvp(self, w, i, v, batch):
        self._tally("hvp", w, i)
        return super().batch_hvp(w, i, v, batch)

    def sample_grad(self, w, i, n, rng):
        self._in_step = self.__dict__.get("_in_step", 0) + 1
        try:
            return super().sample_grad(w, i, n, rng)
        finally:
            self._in_step -= 1


def _hyper(consts, alg: str, alpha: float, N: int, B: int):
    """MAML: its theorem's hyperparameters; FO-/HF-MAML: the same with ``step_c = 12``."""
    return theorem_hyper(consts, alg, alpha, N, B, **({} if alg == "maml" else {"step_c": STEP_C_GIVEN}))


def _step_note(alg: str, hyper) -> str:
    if hyper.theorem is not None and hyper.step_c is None:
        return f"the {hyper.theorem} theorem's step rule, c = {hyper.c:g}"
    if hyper.theorem is None:
        return f"no theorem for N > 1: c = {hyper.c:g} given (step_c)"
    return f"c = {hyper.c:g} given (step_c); the {LABEL[alg]} theorem asks c = {lit.STEP_C[alg]:g}"


def _time_steps(family, hyper, w: np.ndarray, L: float, rho: float, repeats: int, steps: int) -> list[float]:
    """Wall time per outer step in ms, one value per block of ``steps`` steps."""
    streams = SeedStreams(w.shape[0], root=TIMING_ROOT)
    for _ in range(2):                                               # warm-up
        outer_step(family, w, hyper, L, rho, streams, fast=True)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            outer_step(family, w, hyper, L, rho, streams, fast=True)
        out.append(1e3 * (time.perf_counter() - t) / steps)
    return out


def compute(params: dict) -> pd.DataFrame:
    """One (algorithm, N): the counted oracle calls of a short run beside
    ``calls(N)·B``, and the timed blocks (one row per block)."""
    alg, N, B = params["algorithm"], params["N"], params["B"]
    fam = CountingFamily(**params["family_params"])
    consts = fam.constants()
    v = consts.values()
    alpha = multistep_alpha_max(L=v["L"], N=N)
    hyper = _hyper(consts, alg, alpha, N, B)
    R, K = params["count_seeds"], params["count_steps"]
    fam.reset_counts()
    res = run(fam, hyper, [1e-300], seeds=R, budget=K, stop_at_eps=False)
    if res.iterations != K:
        raise RuntimeError(f"the counted run took {res.iterations} iterations, expected {K}")
    counts = dict(fam.counts())
    hyper = res.hyper
    per = {k: counts.get(k, 0) / (R * K) for k in ("grad", "hvp", "step")}
    plain = make_family(params["family"], **params["family_params"])
    wall = _time_steps(plain, hyper, np.array(res.w[:1]), v["L"], v["rho"], params["repeats"], params["steps"])
    calls = ESTIMATORS[alg].calls(N)
    step_expected = hyper.B_prime if hyper.step == "adaptive" and v["rho"] * alpha != 0 else 0
    return pd.DataFrame({
        "family": params["family"], "family_params": json.dumps(params["family_params"], sort_keys=True),
        "algorithm": alg, "label": LABEL[alg], "N": N, "alpha": alpha, "alpha_NL": alpha * N * v["L"], "B": B,
        "D_in": hyper.D_in, "D_o": hyper.D_o, "D_h": hyper.D_h, "B_prime": hyper.B_prime, "D_beta": hyper.D_beta,
        "calls_per_task": calls, "calls_formula": FORMULA[alg], "calls_expected": calls * B,
        "calls_counted": per["grad"] + per["hvp"], "grad_counted": per["grad"], "hvp_counted": per["hvp"],
        "step_calls_counted": per["step"], "step_calls_expected": step_expected,
        "count_steps": K, "count_seeds": R,
        "theorem": hyper.theorem or "none", "step": f"adaptive, c = {hyper.c:g}", "step_note": _step_note(alg, hyper),
        "conditions_broken": ";".join(broken(check_conditions(consts, hyper))) or "none",
        "repeat": np.arange(len(wall)), "steps_per_repeat": params["steps"], "wall_ms": wall,
    })


# --- analysis (from the table alone) ---------------------------------------------
def _summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (algorithm, N): counts and configuration, wall-time median and quartiles."""
    keys = ["algorithm", "N"]
    g = table.groupby(keys, sort=False).wall_ms
    q = pd.DataFrame({"wall_median": g.median(), "wall_q25": g.quantile(0.25), "wall_q75": g.quantile(0.75)})
    first = table.groupby(keys, sort=False).first().drop(columns=["wall_ms", "repeat"])
    return first.join(q).reset_index().sort_values(keys, key=lambda s: s.map(
        {a: j for j, a in enumerate(ALGORITHMS)}) if s.name == "algorithm" else s)


EQ_COUNT = "THEORY.md §9, cost per task: 2N + 1 (MAML), N + 1 (FO-MAML), 3N + 1 (HF-MAML) oracle calls per task"


def count_check(sub: pd.DataFrame) -> Check:
    """Counted oracle calls per iteration equal ``Algorithm.calls(N)·B`` at every
    N: a ``match`` check of the largest absolute difference against 0 (exact)."""
    alg = sub.algorithm.iloc[0]
    diff = (sub.calls_counted - sub.calls_expected).abs()
    B = int(sub.B.iloc[0])
    Ns = ", ".join(str(int(n)) for n in sub.N)
    return Check(f"{LABEL[alg]}: gradient-oracle calls per iteration, counted in a run (batch_grad and batch_hvp, "
                 f"per seed), equal calls(N)·B = ({FORMULA[alg]})·{B} at N = {Ns}: largest absolute difference",
                 EQ_COUNT, float(diff.max()), 0.0, "match",
                 context={"algorithm": alg,
                          "measured_text": "per task " + ", ".join(f"{x / B:g}" for x in sub.calls_counted),
                          "bound_text": "calls(N) = " + ", ".join(str(int(x)) for x in sub.calls_per_task),
                          "note": f"largest difference {diff.max():g} calls per iteration; "
                                  f"{int((diff == 0).sum())}/{len(sub)} N exact"})


def step_count_check(summary: pd.DataFrame) -> Check:
    """The step size's ``L̃`` estimate costs ``B′`` calls per iteration, whatever N:
    a ``match`` check of the largest absolute difference against 0."""
    diff = (summary.step_calls_counted - summary.step_calls_expected).abs()
    Bp = ", ".join(str(int(x)) for x in sorted(summary.step_calls_expected.unique()))
    return Check("the adaptive step's L̃ estimate costs B′ gradient calls per iteration at every N and algorithm "
                 "(counted inside sample_grad): largest absolute difference", "THEORY.md §3, step-size lemma (B′ tasks)",
                 float(diff.max()), 0.0, "match",
                 context={"bound_text": f"B′ = {Bp}", "note": f"{int((diff == 0).sum())}/{len(summary)} configurations exact"})


def time_report(sub: pd.DataFrame) -> Check:
    """Wall time per iteration against N, reported: the slope of a straight line
    fitted to the medians (ms per inner step, 95% CI), beside the oracle calls each
    further inner step adds per task (bound column; no verdict: time measures the machine)."""
    alg = sub.algorithm.iloc[0]
    fit = fit_line(sub.N.astype(float), sub.wall_median)
    t_ratio = float(sub.wall_median.iloc[-1] / sub.wall_median.iloc[0])
    c_ratio = float(sub.calls_per_task.iloc[-1] / sub.calls_per_task.iloc[0])
    ci = f"95% CI [{fit['lo']:.3g}, {fit['hi']:.3g}]" if np.isfinite(fit["lo"]) else "too few N for a CI"
    return Check(f"{LABEL[alg]}: wall time per iteration (one seed, B = {int(sub.B.iloc[0])}; median of "
                 f"{int(sub.steps_per_repeat.iloc[0])}-step blocks) grows about linearly in N: fitted ms per inner step",
                 EQ_COUNT, fit["slope"], float(ESTIMATORS[alg].calls_per_inner_step), "report",
                 lo=fit["lo"] if np.isfinite(fit["lo"]) else None, hi=fit["hi"] if np.isfinite(fit["hi"]) else None,
                 context={"algorithm": alg, "measured_text": f"{fit['slope']:.3g} ms per inner step",
                          "bound_text": f"{ESTIMATORS[alg].calls_per_inner_step} calls per task per inner step",
                          "note": (f"{ci}; intercept {fit['intercept']:.3g} ms, R² = {fit['r2']:.3f}; median ms at "
                                   + ", ".join(f"N={int(n)}: {t:.3g}" for n, t in zip(sub.N, sub.wall_median))
                                   + f"; time ratio N={int(sub.N.iloc[-1])}/N={int(sub.N.iloc[0])} {t_ratio:.2f} vs "
                                     f"calls ratio {c_ratio:.2f}")})


def claims(table: pd.DataFrame) -> list[Check]:
    """Per algorithm: counted calls match ``calls(N)·B``; the step size's ``B′``;
    per algorithm the wall time's linear growth (report)."""
    s = _summary(table)
    out = [count_check(sub) for _, sub in s.groupby("algorithm", sort=False)]
    out.append(step_count_check(s))
    return out + [time_report(sub) for _, sub in s.groupby("algorithm", sort=False)]


# --- figure ---------------------------------------------------------------------------
def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Left: oracle calls per iteration against N, counted (markers) and
    ``calls(N)·B`` (lines).  Right: wall time per iteration, median with the
    quartiles, and the fitted straight lines."""
    s = _summary(table)
    fig, (ax, ax_t) = style.figure(2, figsize=(13.0, 5.2))
    for alg, sub in s.groupby("algorithm", sort=False):
        c = COLOR[alg]
        note = " (N > 1: no theorem, c = 12 given)" if alg != "maml" else " (theorem's step)"
        ax.plot(sub.N, sub.calls_expected, color=c, lw=1.4, ls="--", label=f"{LABEL[alg]}: calls(N)·B = ({FORMULA[alg]})·B")
        ax.plot(sub.N, sub.calls_counted, color=c, ls="none", marker="o", ms=6, mfc="none", mew=1.5,
                label=f"{LABEL[alg]}: counted in a run{note}")
        ax_t.errorbar(sub.N, sub.wall_median, yerr=[sub.wall_median - sub.wall_q25, sub.wall_q75 - sub.wall_median],
                      color=c, marker="o", ms=4, ls="none", capsize=3, label=f"{LABEL[alg]}: median (bars: quartiles)")
        fit = fit_line(sub.N.astype(float), sub.wall_median)
        xs = np.array([sub.N.min(), sub.N.max()], float)
        ax_t.plot(xs, fit["intercept"] + fit["slope"] * xs, color=c, lw=1.1, ls=":",
                  label=f"{LABEL[alg]}: fit {fit['intercept']:.2g} + {fit['slope']:.2g}·N ms")
    B = int(s.B.iloc[0])
    ax.set(xlabel="inner steps N (α = 1/(6NL))", ylabel=f"gradient-oracle calls per iteration (B = {B} tasks)",
           title="Oracle calls per iteration (a Hessian-vector product counts one)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7.5)
    ax_t.set(xlabel="inner steps N", ylabel="ms per iteration (one seed, direction + step size)",
             title="Wall time per iteration (this machine)")
    ax_t.set_ylim(bottom=0)
    ax_t.legend(fontsize=7.5)
    for a in (ax, ax_t):
        a.set_xticks(sorted(s.N.unique()))
    return style.save(fig, outdir, NAME)
