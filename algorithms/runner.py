"""Advance many seeds of one configuration at once and record what the theory talks about.

Per iteration and seed the runner evaluates the exact ``‖∇F(w_k)‖`` (5) and
records the first ``k`` at which it drops to each ``ε`` of a grid, and the
first ``k`` at which the *seed average* does (the theorem's guarantee (14) is
about ``E‖∇F(w_k)‖``).  ``F(w_k)`` and ``β_k`` go into a trace at a stride.
A seed whose iterate turns non-finite or leaves the ball ``‖w‖ ≤
divergence_bound`` is marked diverged at that iteration and frozen; the
others go on.  Ctrl-C ends the loop early and returns what was computed,
flagged ``interrupted``.  Steps go through the families' fast paths
(``outer_step(..., fast=True)``: same laws, fewer draws; see ``steps``).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from mamlcheck.problems.base import TaskFamily, check_count, check_positive
from mamlcheck.theory.conditions import ball_condition

from .hyper import Hyper
from .engine import DIVERGENCE_BOUND, trajectory
from .objective import F
from .streams import SeedStreams

__all__ = ["run", "RunResult", "interrupts_propagate"]

_PROPAGATE: contextvars.ContextVar[bool] = contextvars.ContextVar("mamlcheck_interrupts_propagate", default=False)


@contextlib.contextmanager
def interrupts_propagate():
    """Within this block ``run`` lets Ctrl-C propagate instead of returning the
    part computed so far: code that stores results as finished (a sweep's
    cells) must never see a partial run."""
    token = _PROPAGATE.set(True)
    try:
        yield
    finally:
        _PROPAGATE.reset(token)


@dataclass
class RunResult:
    """Outcome of ``run``: tidy tables and the raw per-iteration mean curve.

    ``table``: one row per seed × ε (first ``k`` with ``‖∇F(w_k)‖ ≤ ε``, or NA).
    ``mean_table``: one row per ε (first ``k`` with the seed-average ``≤ ε``).
    ``trace``: one row per seed × recorded iteration (``k``, ``grad_norm``,
    ``F``, ``beta``), or ``None`` without a stride.
    ``mean_grad_norm[k]``: seed-average ``‖∇F(w_k)‖`` over seeds not diverged
    (once a seed diverges, the average and ``mean_table`` are conditional on
    survival; ``mean_table.seeds_diverged`` says how many seeds it leaves out).
    ``Delta``: ``E F(w_0) − inf_f_lower()``, the certified ``Δ`` of A1 that the
    rate (14) takes (``theory.bounds.iterations_upper(..., Delta=res.Delta)``).
    """

    table: pd.DataFrame
    mean_table: pd.DataFrame
    trace: pd.DataFrame | None
    mean_grad_norm: np.ndarray
    w: np.ndarray
    iterations: int
    interrupted: bool
    hyper: Hyper
    config: dict = field(default_factory=dict)
    start: tuple | None = field(default=None, repr=False)      # (family, w_0): for Delta, on demand

    def ball_condition(self):
        """``theory.conditions.ball_condition`` of the run (``None`` when the
        family's constants are global): did every seed stay in the
        certificate's ball, and if not, which seeds left and when."""
        if "left_ball_at" not in self.table.columns:
            return None
        per_seed = self.table.drop_duplicates("seed")
        return ball_condition(float(per_seed.ball_radius.iloc[0]), per_seed.seed.to_numpy(),
                              per_seed.max_ball_distance.to_numpy(),
                              per_seed.left_ball_at.fillna(-1).to_numpy(int))

    @functools.cached_property
    def Delta(self) -> float:
        """``E F(w_0) − inf_f_lower()``: the certified ``Δ`` of A1 (NaN if the family
        certifies no lower bound); computed on first use (a family's ``inf_f_lower``
        may be costly)."""
        if self.start is None:
            return float("nan")
        family, w0 = self.start
        try:
            return float(F(family, w0, self.hyper.alpha, self.hyper.inner_steps).mean()) - float(family.inf_f_lower())
        except NotImplementedError:
            return float("nan")


class _Progress:
    """A one-line progress report on stderr for runs longer than a few seconds."""

    def __init__(self, enabled: bool, budget: int):
        self.enabled, self.budget = enabled, budget
        self.t0 = self.last = time.monotonic()

    def update(self, k: int, reached: int, R: int, mean_gn: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.t0 < 2.0 or now - self.last < 0.5:
            return
        self.last = now
        rate = k / (now - self.t0)
        left = (self.budget - k) / rate if rate > 0 else float("inf")
        sys.stderr.write(f"\r  k={k}/{self.budget}  seeds at smallest ε: {reached}/{R}  "
                         f"mean ‖∇F‖={mean_gn:.3e}  ≤{left:.0f}s left ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.last != self.t0:
            sys.stderr.write("\n")


def _first_hits(first: np.ndarray, values: np.ndarray, eps: np.ndarray, k: int) -> np.ndarray:
    """Set ``first[..., e] = k`` where ``values ≤ eps[e]`` for the first time."""
    return np.where((first < 0) & (values[..., None] <= eps), k, first)


def run(family: TaskFamily, hyper: Hyper, eps: Sequence[float], *, seeds: int | Sequence[int] = 8,
        budget: int = 10_000, w0=None, root: int = 0, trace_stride: int = 0,
        divergence_bound: float = DIVERGENCE_BOUND, stop_at_eps: bool = True, progress: bool = False) -> RunResult:
    """Run ``hyper.algorithm`` on ``family`` for every seed at once.

    Args:
        eps: the grid of target gradient norms.
        seeds: a count ``R`` (seeds ``0..R-1``) or explicit seed ids; seed ``r``
            follows the same trajectory whatever else runs.
        budget: maximum number of outer steps.
        w0: initial point ``(d,)`` shared by all seeds, or ``(R, d)``; zeros by default.
        root: root entropy of the per-seed streams.
        trace_stride: record ``F``, ``‖∇F‖``, ``β`` every this many steps (0: none).
        divergence_bound: a seed with ``‖w‖`` above this (or non-finite) is diverged.
        stop_at_eps: stop once every live seed and the seed average reached ``min(eps)``.
        progress: report progress on stderr.
    """
    if not isinstance(family, TaskFamily):
        raise TypeError(f"run(family, hyper, eps): family must be a TaskFamily "
                        f"(e.g. mamlcheck.family('cosine-quadratic')), got {type(family).__name__}")
    if not isinstance(hyper, Hyper):
        raise TypeError(f"run(family, hyper, eps): hyper must be a mamlcheck.Hyper "
                        f"(e.g. Hyper('maml', alpha=0.02)), got {type(hyper).__name__}")
    try:
        eps = np.sort(np.atleast_1d(np.asarray(eps, dtype=float)))[::-1]
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a nonempty list of positive numbers, got {eps!r}") from None
    if eps.size == 0 or not np.all(np.isfinite(eps)) or np.any(eps <= 0) or eps.ndim != 1:
        raise ValueError(f"eps must be a nonempty list of positive numbers, got {eps.tolist()}")
    if np.unique(eps).size != eps.size:
        raise ValueError(f"eps has repeated values: {eps.tolist()}")
    budget = check_count("budget", budget, minimum=0)
    trace_stride = check_count("trace_stride", trace_stride, minimum=0)
    check_positive("divergence_bound", divergence_bound)
    streams = SeedStreams(seeds, root)
    R = streams.R
    first = np.full((R, eps.size), -1)
    mean_first = np.full(eps.size, -1)
    mean_curve: list[float] = []
    trace_rows: list[tuple] = []
    pending = None                      # the trace row at k, waiting for β_k
    bar = _Progress(progress, budget)
    interrupted = False
    eps_max = eps[0]
    steps = trajectory(family, hyper, streams=streams, w0=w0, budget=budget, divergence_bound=divergence_bound)
    ball = _Ball(family, R)             # constants certified on a ball only: who leaves it, and when
    last = None                         # the last record fully processed (what an interrupt keeps)
    try:
        for st in steps:
            # (the hot loop: each branch below only skips work whose result is known)
            k, gn, alive = st.k, st.grad_norm, st.alive
            if k == 0:
                w_start = st.w
            if ball.on:
                ball.update(k, st.w)
            if pending is not None:
                trace_rows.append((*pending, st.beta))
                pending = None
            if st.all_alive:
                mean_gn = float(np.add.reduce(gn)) / R          # gn.mean(), bit for bit
                if np.fmin.reduce(gn) <= eps_max:               # some seed (not NaN) may hit an ε
                    first = _first_hits(first, gn, eps, k)
            else:
                mean_gn = float(gn[alive].mean()) if alive.any() else float("nan")
                first = _first_hits(first, np.where(alive, gn, np.inf), eps, k)
            mean_curve.append(mean_gn)
            if mean_gn <= eps_max:
                mean_first = _first_hits(mean_first, np.asarray(mean_gn), eps, k)
            done = k >= budget or (not st.all_alive and not alive.any()) or (
                stop_at_eps and mean_first[-1] >= 0 and np.all(first[alive, -1] >= 0))
            if done:
                if trace_stride:
                    trace_rows.append((k, st.w, gn, np.full(R, np.nan)))
                last = st
                break
            if trace_stride and k % trace_stride == 0:
                pending = (k, st.w, gn)
            if progress:
                bar.update(k, int(np.sum(first[alive, -1] >= 0)), R, mean_gn)
            last = st
    except KeyboardInterrupt:
        if _PROPAGATE.get():            # a sweep's cell: an interrupted run is no result
            raise
        interrupted = True
    steps.close()
    if last is None:                    # interrupted before w_0 was processed: nothing to return
        raise KeyboardInterrupt
    # an interrupt may land anywhere in the loop's body: keep exactly what the
    # records up to ``last`` produced, so k, ‖∇F‖, the hits and the curve agree
    gn, diverged_at, w, k, alive = last.grad_norm, last.diverged_at, last.w, last.k, last.alive
    mean_curve = mean_curve[:k + 1]
    first = np.where(first > k, -1, first)
    mean_first = np.where(mean_first > k, -1, mean_first)
    trace_rows = [r for r in trace_rows if r[0] <= k]
    hyper = hyper.resolved(family.constants())
    bar.close()
    config = {**family.describe(), **{k_: v for k_, v in hyper.as_dict().items()}}
    return RunResult(
        table=ball.columns(_seed_table(streams.seeds, eps, first, diverged_at, gn, config), eps.size),
        mean_table=_mean_table(eps, mean_first, alive, config),
        trace=_trace_table(family, hyper, streams.seeds, trace_rows, diverged_at) if trace_stride else None,
        mean_grad_norm=np.asarray(mean_curve), w=w, iterations=k, interrupted=interrupted,
        hyper=hyper, config=config, start=(family, w_start))


class _Ball:
    """Per seed, the largest ``‖w_k − w_c‖`` and the first ``k`` outside the
    family's ``certificate_ball`` (off, at no cost, for families whose constants
    are global)."""

    def __init__(self, family: TaskFamily, R: int):
        self.on = family.offers("certificate_ball")
        if self.on:
            self.centre, self.radius = family.certificate_ball()
            self.far, self.left_at = np.zeros(R), np.full(R, -1)

    def update(self, k: int, w: np.ndarray) -> None:
        dist = np.linalg.norm(w - self.centre, axis=-1)
        self.far = np.maximum(self.far, dist)
        self.left_at = np.where((self.left_at < 0) & (dist > self.radius), k, self.left_at)

    def columns(self, table: pd.DataFrame, E: int) -> pd.DataFrame:
        """The seed table with ``ball_radius``, ``max_ball_distance`` and
        ``left_ball_at`` (NA: stayed inside) when the ball is on."""
        if not self.on:
            return table
        left = pd.array(np.repeat(self.left_at, E), dtype="Int64")
        left[np.repeat(self.left_at, E) < 0] = pd.NA
        return table.assign(ball_radius=self.radius, max_ball_distance=np.repeat(self.far, E), left_ball_at=left)


def _with_config(df: pd.DataFrame, config: dict) -> pd.DataFrame:
    """The run's scalar configuration as constant columns; a family parameter
    whose name the table already uses (the hard chain's ``eps``, any family's
    ``seed``) is prefixed ``family_``."""
    cols = {(f"family_{k}" if k in df.columns else k): v for k, v in config.items()
            if np.isscalar(v) or v is None}
    return df.assign(**cols)


def _seed_table(seeds, eps, first, diverged_at, gn, config) -> pd.DataFrame:
    R, E = first.shape
    df = pd.DataFrame({
        "seed": np.repeat(seeds, E), "eps": np.tile(eps, R),
        "first_k": pd.array(np.where(first >= 0, first, -1).ravel(), dtype="Int64"),
        "diverged": np.repeat(diverged_at >= 0, E),
        "diverged_at": pd.array(np.repeat(diverged_at, E), dtype="Int64"),
        "final_grad_norm": np.repeat(gn, E),
    })
    df.loc[df.first_k < 0, "first_k"] = pd.NA
    df.loc[df.diverged_at < 0, "diverged_at"] = pd.NA
    return _with_config(df, config)


def _mean_table(eps, mean_first, alive, config) -> pd.DataFrame:
    df = pd.DataFrame({"eps": eps, "mean_first_k": pd.array(mean_first, dtype="Int64"),
                       "seeds_alive": int(alive.sum()), "seeds_diverged": int((~alive).sum())})
    df.loc[df.mean_first_k < 0, "mean_first_k"] = pd.NA
    return _with_config(df, config)


def _trace_table(family, hyper, seeds, rows, diverged_at) -> pd.DataFrame:
    """One row per seed × recorded iteration; ``F`` is evaluated here, off the hot loop."""
    ks = np.array([r[0] for r in rows])
    W = np.stack([r[1] for r in rows])                  # (K, R, d)
    R = W.shape[1]
    div = (diverged_at[None, :] >= 0) & (diverged_at[None, :] <= ks[:, None])
    return pd.DataFrame({
        "k": np.repeat(ks, R), "seed": np.tile(seeds, len(rows)),
        "grad_norm": np.concatenate([r[2] for r in rows]),
        "F": F(family, W, hyper.alpha, hyper.inner_steps).ravel(),
        "beta": np.concatenate([r[3] for r in rows]),
        "diverged": div.ravel(),
    })
