"""Noise floor: where stochastic MAML stalls, against the theorem's floor (THEORY.md §4).

The full MAML theorem guarantees only
``E‖∇F(w)‖ ≤ max{√(61(1 + ρασ/L)S), 61(ρα/L)S}`` with
``S = σ²/B + σ̃²/(B·D_o) + σ̃²/D_in`` (``theory.bounds.noise_floor``,
``noise_S``).  Here stochastic MAML with the theorem's step
``β_k = 1/(12 L̃(w_k))`` and ``α = 1/(6L)`` runs on ``cosine-quadratic`` with
``B``, ``D_in``, ``D_o`` swept one at a time around a base configuration and
jointly (``B = D_in = D_o = n``); the plateau is the time average of
``‖∇F(w_k)‖`` over the second half of the run, per seed, then averaged over
seeds.  Two questions: is the plateau below the floor (per configuration),
and is its shape ``S^{1/2}`` (the slope of log plateau against log S, per
sweep, with a 95% confidence interval)?

Runs start at a local minimiser ``w*`` of the exact ``F`` (BFGS on (1) from
``w_0 = 0``), so that the stationary spread is reached within a few
relaxation times ``1/(β λ)`` instead of after the whole descent; the first
half of every run is burn-in.  The family has ``σ̃² ≫ σ²`` so that ``D_o``
moves ``S``.  ``B < 20`` breaks the theorem's ``B ≥ 20``: the table carries
the broken conditions of every configuration.

Why the sweeps may differ in shape: ``B`` and ``D_o`` enter the variance of
the update exactly as they enter ``S``, while ``D_in`` enters the update only
through a variance ``≈ (αL)²σ̃²/(B·D_in)`` and a bias of order ``1/D_in``
(see ``bias_din``); ``S`` charges it the full ``σ̃²/D_in``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from scipy import stats

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import make_family
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck import literature as lit

from . import style
from .analysis import CI, conditions_note, loglog_slope, stationary_point

__all__ = ["NAME", "TITLE", "cells", "compute", "plot", "claims"]

NAME = "noise_floor"
TITLE = "Noise floor: the plateau of E‖∇F(w_k)‖ against the theorem's floor"

FAMILY = "cosine-quadratic"
FAMILY_PARAMS = {"spread": 0.1, "noise_grad": 3.0}    # σ² ≈ 0.78, σ̃² ≈ 11.5
BASE = {"B": 20, "D_in": 1000, "D_o": 1}               # the one-at-a-time sweeps vary one of these
SWEEP_ORDER = ("B", "D_o", "D_in", "joint")
SWEEP_LABEL = {"B": "tasks per step B", "D_o": "outer batch D_o", "D_in": "inner batch D_in",
               "joint": "B = D_in = D_o = n"}
class Scale(NamedTuple):
    """The size of this experiment at one scale (seeds, outer steps, sweep values)."""

    seeds: Any
    steps: Any
    sweeps: Any


SCALES = {
    "tiny": Scale(seeds=4, steps=200, sweeps={"joint": [1, 4, 16]}),
    "quick": Scale(seeds=8, steps=400, sweeps={"B": [2, 20, 100], "D_o": [1, 30], "D_in": [1, 1000], "joint": [1, 5, 25]}),
    "default": Scale(seeds=16, steps=1000, sweeps={"B": [1, 2, 5, 10, 20, 50, 100], "D_o": [1, 3, 10, 30, 100], "D_in": [1, 3, 10, 100, 1000], "joint": [1, 2, 5, 10, 20, 50]}),
    "full": Scale(seeds=64, steps=4000, sweeps={"B": [1, 2, 5, 10, 20, 50, 100, 200], "D_o": [1, 2, 5, 10, 30, 100, 300], "D_in": [1, 2, 5, 10, 30, 100, 1000, 10000], "joint": [1, 2, 5, 10, 20, 50, 100]}),
}
TRACE_POINTS = 50        # iterations stored per seed for the trajectory figure
BAND = (0.1, 0.9)        # seed band: quantiles of the per-seed plateaus


def cells(scale: str) -> list[dict]:
    """One cell per configuration ``(B, D_in, D_o)``; ``sweeps`` lists the
    sweeps it belongs to (the base configuration is in all three one-at-a-time
    sweeps, computed once)."""
    s = SCALES[scale]
    R, K, sweeps = s.seeds, s.steps, s.sweeps
    configs: dict[tuple, list[str]] = {}
    for sweep in SWEEP_ORDER:
        for v in sweeps.get(sweep, []):
            cfg = {"B": v, "D_in": v, "D_o": v} if sweep == "joint" else {**BASE, sweep: v}
            configs.setdefault((cfg["B"], cfg["D_in"], cfg["D_o"]), []).append(sweep)
    return [{"family": FAMILY, "family_params": FAMILY_PARAMS, "alpha_L": lit.ALPHA_MAX_LD["maml"],
             "B": B, "D_in": D_in, "D_o": D_o, "sweeps": ",".join(sw), "seeds": R, "budget": K}
            for (B, D_in, D_o), sw in configs.items()]


def compute(params: dict) -> pd.DataFrame:
    """Run one configuration for all seeds; rows ``kind="trace"`` (``‖∇F(w_k)‖``
    per seed at ``TRACE_POINTS`` iterations) and ``kind="plateau"`` (per seed,
    the average of ``‖∇F(w_k)‖`` over every ``k ≥ window_start``)."""
    fam = make_family(params["family"], **params["family_params"])
    c = fam.constants().values()
    alpha = params["alpha_L"] / c["L"]
    B, D_in, D_o, K = params["B"], params["D_in"], params["D_o"], params["budget"]
    hyper = Hyper("maml", alpha=alpha, B=B, D_in=D_in, D_o=D_o,
                  D_h=bounds.D_h_min(algorithm="maml", alpha=alpha, sigma_H=c["sigma_H"]))
    res = run(fam, hyper, [1e-300], seeds=params["seeds"], budget=K, w0=stationary_point(fam, alpha),
              trace_stride=1, stop_at_eps=False)
    tr = res.trace[~res.trace.diverged]
    start = K // 2
    plateau = tr[tr.k >= start].groupby("seed").grad_norm.mean()
    keep = tr[(tr.k % max(1, K // TRACE_POINTS) == 0) | (tr.k == K)]
    rows = pd.concat([
        pd.DataFrame({"kind": "trace", "seed": keep.seed, "k": keep.k, "grad_norm": keep.grad_norm}),
        pd.DataFrame({"kind": "plateau", "seed": plateau.index, "k": np.nan, "grad_norm": plateau.values}),
    ], ignore_index=True)
    config = {
        "family": fam.name, **params["family_params"], **c, "alpha": alpha,
        "B": B, "D_in": D_in, "D_o": D_o, "D_h": hyper.D_h, "sweeps": params["sweeps"],
        "seeds": params["seeds"], "budget": K, "window_start": start,
        "S": bounds.noise_S(sigma=c["sigma"], sigma_tilde=c["sigma_tilde"], B=B, D_in=D_in, D_o=D_o),
        "floor": bounds.noise_floor(algorithm="maml", L=c["L"], rho=c["rho"], sigma=c["sigma"], sigma_tilde=c["sigma_tilde"], alpha=alpha, B=B, D_in=D_in, D_o=D_o),
        **conditions_note(c, hyper.resolved(c)),
        "seeds_diverged": int(res.table.groupby("seed").diverged.first().sum()),
    }
    return rows.assign(**config)


# --- analysis (from the table alone) ---------------------------------------------
def _plateaus(table: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: seed-mean plateau, its CI and seed band, S, floor."""
    p = table[table.kind == "plateau"]
    keys = ["B", "D_in", "D_o"]
    g = p.groupby(keys).grad_norm
    out = g.agg(plateau="mean", sd="std", n="count",
                lo=lambda s: s.quantile(BAND[0]), hi=lambda s: s.quantile(BAND[1])).reset_index()
    first = p.groupby(keys)[["S", "floor", "sweeps", "broken", "rho", "alpha", "sigma", "L"]].first().reset_index()
    out = out.merge(first, on=keys)
    half = stats.t.ppf(0.5 + CI / 2, np.maximum(out.n - 1, 1)) * out.sd.fillna(0) / np.sqrt(out.n)
    return out.assign(ci_lo=out.plateau - half, ci_hi=out.plateau + half).sort_values("S", ascending=False)


def _sweep(pl: pd.DataFrame, sweep: str) -> pd.DataFrame:
    """The configurations of one sweep, ordered by the swept value."""
    sub = pl[pl.sweeps.str.split(",").apply(lambda s: sweep in s)]
    x = sub.B if sweep == "joint" else sub[sweep]
    return sub.assign(x=x).sort_values("x")


FLOOR_STATEMENT = "plateau ≤ floor √(61(1+ρασ/L)S) (§4)"
FLOOR_EQUATION = "THEORY.md §4, noise floor of the MAML theorem"


def floor_check(r) -> Check:
    """One configuration's plateau against the floor (THEORY.md §4): an upper
    check of the seed-mean plateau whose 95% seed CI ``[ci_lo, ci_hi]`` must lie
    below ``√(61(1+ρασ/L)S)``.  ``r``: a row of ``_plateaus``."""
    return Check(f"{FLOOR_STATEMENT} at B={r.B}, D_in={r.D_in}, D_o={r.D_o} [broken: {r.broken}]",
                 FLOOR_EQUATION, float(r.plateau), float(r.floor), "upper", lo=float(r.ci_lo), hi=float(r.ci_hi),
                 context={"B": r.B, "D_in": r.D_in, "D_o": r.D_o, "broken": r.broken,
                          "note": f"floor/plateau = {r.floor / r.plateau:.0f}; 95% CI [{r.ci_lo:.3g}, {r.ci_hi:.3g}]"})


def exponent_check(sweep: str, S, plateau) -> Check:
    """The fitted exponent of plateau against ``S`` along one sweep, which the
    floor's shape ``S^{1/2}`` (THEORY.md §4) says should match 1/2: a ``match``
    check on the slope's 95% CI (inconclusive without one)."""
    s, lo, hi = loglog_slope(S, plateau)
    note = (f"slope {s:.3f}: too few points for a CI" if np.isnan(lo) else
            f"95% CI [{lo:.3f}, {hi:.3f}], {len(S)} configurations")
    return Check(f"plateau ∝ S^(1/2) along the {SWEEP_LABEL[sweep]} sweep: fitted exponent", FLOOR_EQUATION,
                 s, 0.5, "match", lo=lo, hi=hi, context={"sweep": sweep, "note": note})


def claims(table: pd.DataFrame) -> list[Check]:
    """Per configuration: plateau ≤ floor (the 95% upper seed CI against the
    floor); per sweep: the fitted exponent of plateau against S, vs 1/2."""
    pl = _plateaus(table)
    checks = [floor_check(r) for _, r in pl.sort_values(["B", "D_in", "D_o"]).iterrows()]
    for sweep in SWEEP_ORDER:
        sub = _sweep(pl, sweep)
        if len(sub) >= 2:
            checks.append(exponent_check(sweep, sub.S, sub.plateau))
    return checks


# --- figures ------------------------------------------------------------------
_FLOOR_LABEL = "noise floor √(61(1+ρασ/L)S) (§4)"


def _plot_sweeps(pl: pd.DataFrame, outdir: Path) -> list[Path]:
    sweeps = [s for s in SWEEP_ORDER if len(_sweep(pl, s))]
    fig, axes = style.figure(len(sweeps), figsize=(4.2 * len(sweeps), 4.0), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        sub = _sweep(pl, sweep)
        style.measured_line(ax, sub.x, sub.plateau, sub.lo, sub.hi, label="measured plateau (10–90% of seeds)")
        style.bound_line(ax, sub.x, sub.floor, _FLOOR_LABEL)
        c = np.exp(np.mean(np.log(sub.plateau) - 0.5 * np.log(sub.S)))
        ax.plot(sub.x, c * np.sqrt(sub.S), ls=":", color="0.35", lw=1.4, label="c·√S (floor's shape, c fitted)")
        ax.set(xscale="log", yscale="log", xlabel=SWEEP_LABEL[sweep], ylabel="plateau of ‖∇F(w_k)‖")
        fixed = "" if sweep == "joint" else ", ".join(f"{k}={v}" for k, v in BASE.items() if k != sweep)
        ax.set_title(f"{sweep} sweep" + (f" ({fixed})" if fixed else ""))
    axes[0][0].legend(loc="center left")
    return style.save(fig, outdir, f"{NAME}_sweeps")


def _plot_vs_S(pl: pd.DataFrame, outdir: Path) -> list[Path]:
    fig, ax = style.figure()
    for j, sweep in enumerate(s for s in SWEEP_ORDER if len(_sweep(pl, s))):
        sub = _sweep(pl, sweep).sort_values("S")
        s, lo, hi = loglog_slope(sub.S, sub.plateau) if len(sub) >= 2 else (np.nan,) * 3
        ci = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else ""
        style.measured_line(ax, sub.S, sub.plateau, sub.lo, sub.hi, color=style.ALT[j],
                            marker="osD^v"[j], label=f"{sweep} sweep: slope {s:.2f}{ci}")
    allS = pl.sort_values("S")
    style.bound_line(ax, allS.S, allS.floor, _FLOOR_LABEL)
    ax.set(xscale="log", yscale="log", xlabel="noise level S = σ²/B + σ̃²/(B·D_o) + σ̃²/D_in",
           ylabel="plateau of ‖∇F(w_k)‖ (seed mean)",
           title="Plateau against S: slope 1/2 is the floor's shape")
    ax.legend(loc="upper left", bbox_to_anchor=(0, 0.93))
    return style.save(fig, outdir, f"{NAME}_vs_S")


def _plot_trajectories(table: pd.DataFrame, pl: pd.DataFrame, outdir: Path) -> list[Path]:
    sweep = "joint" if len(_sweep(pl, "joint")) else SWEEP_ORDER[0]
    sub = _sweep(pl, sweep)
    tr = table[(table.kind == "trace") & (table.k > 0)]     # k = 0 is w*, where ‖∇F‖ ≈ 0
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.85, len(sub)))
    fig, ax = style.figure()
    for col, (_, r) in zip(colours, sub.iterrows()):
        t = tr[(tr.B == r.B) & (tr.D_in == r.D_in) & (tr.D_o == r.D_o)].groupby("k").grad_norm
        m = t.mean()
        label = f"n = {r.B}" if sweep == "joint" else f"{sweep} = {r.x}"
        style.measured_line(ax, m.index, m.values, t.quantile(BAND[0]).values, t.quantile(BAND[1]).values,
                            color=col, marker=None, label=label)
        ax.axhline(r.floor, ls="--", color=col, lw=1.2)
    start = table.window_start.iloc[0]
    ax.axvspan(start, table.budget.iloc[0], color="0.5", alpha=0.08, lw=0)
    ax.plot([], [], ls="--", color="0.3", label=f"{_FLOOR_LABEL}, same colour")
    ax.set(yscale="log", xlabel="iterations k (w_0 = w*, a stationary point of F)",
           ylabel="‖∇F(w_k)‖ (seed mean, 10–90% band)",
           title=f"Rise to the plateau ({SWEEP_LABEL[sweep]}); shaded: averaging window")
    ax.legend(loc="center right", ncol=2, bbox_to_anchor=(1, 0.6))
    return style.save(fig, outdir, f"{NAME}_trajectories")


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Plateau per sweep with the floor; plateau against S; trajectories."""
    pl = _plateaus(table)
    return _plot_sweeps(pl, outdir) + _plot_vs_S(pl, outdir) + _plot_trajectories(table, pl, outdir)
