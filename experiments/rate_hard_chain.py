"""The rate is tight: exact MAML on the hard chain of Carmon et al. (THEORY.md §7).

For each ``ε`` of a grid and a fixed budget ``Δ`` the chain is built for
``ε′ = ε/(1 − αL)`` (``theory.bounds.chain_eps_prime``), so it has
``T(ε′) = ⌊ΔL/(1824ε′²)⌋`` coordinates and ``‖∇F(w)‖ > ε`` while the inner
point has not reached the last one.  MAML runs from ``w_0 = 0`` with
``α = 1/(6L)`` and one task (identical tasks, ``σ = 0``).  The measured first
``k`` with ``‖∇F(w_k)‖ ≤ ε`` must lie between

* the lower bound ``⌊T(ε′)/2⌋`` (zero-respecting steps, §7,
  ``theory.bounds.chain_lower_bound_iterations``), and
* the upper bound (14) ``1600Δ(L + ρα(σ + ε))/ε²``
  (``theory.bounds.iterations_upper``) with ``Δ ≤ F(0) − inf_f_lower()`` and
  the family's certified ``L``, ``ρ``, ``σ``.

Both bounds scale like ``1/ε²``; so does the measurement once ``T`` is large
(the log-log slope of ``k`` against ``ε`` tends to −2).

Step sizes.  The theorem's ``β_k = 1/(12 L(w_k))`` (exact ``L(w)`` in exact
mode) needs 3000–6000 steps per chain coordinate, so it is run on the
shortest chains only (the whole grid would take hours at ``default``).  The whole grid uses a constant ``β = 1/(5L)``:
``L(w) = 4L + 2ρα‖∇f(w)‖`` (§3) and ``‖∇f(w)‖ ≤ ‖∇F(w)‖/(1 − αL)²`` (one
task, ``αL < 1``), so ``max_k β·L(w_k)`` is bounded from the measured
``‖∇F(w_k)‖`` of every run (column ``beta_L_max``, ≤ 1 means ``β ≤ 1/L(w_k)``
held throughout).  Stochastic MAML with ``B = 20`` identical tasks has
deterministic oracles on this family and must retrace exact MAML.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker

from mamlcheck.algorithms.estimators import ALGORITHMS
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F
from mamlcheck.algorithms.runner import run
from mamlcheck.problems.hard_chain import HardChain
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck import literature as lit

from . import style
from .analysis import broken_names, fit_line

__all__ = ["NAME", "TITLE", "cells", "compute", "plot", "claims", "eps_for_length"]

NAME = "rate_hard_chain"
TITLE = "The rate is tight: iterations to ‖∇F‖ ≤ ε on the hard chain, between the lower bound and (14)"

L_CHAIN = 1.0
DELTA = 1.0                                  # the fixed budget Δ of the chain (§7)
ALPHA_L = lit.ALPHA_MAX_LD["maml"]           # α = 1/(6L), the largest the theorem allows
BETA_L = 0.2                                 # constant step β = 1/(5L)
B_TASKS = lit.B_MIN                          # stochastic MAML: B = 20 tasks per step

# chain lengths T(ε′) per scale and series; ε follows from T (``eps_for_length``)
_SCALES = {
    "tiny": {"constant": (1, 2), "theorem": (), "maml": (1,)},
    "quick": {"constant": (1, 3, 9), "theorem": (), "maml": (1,)},
    "default": {"constant": (2, 5, 13, 32, 80, 200), "theorem": (2, 5), "maml": (2, 5)},
    "full": {"constant": (2, 4, 9, 18, 40, 90, 200, 450, 1000, 2000), "theorem": (2, 5, 13, 32),
             "maml": (2, 5, 13)},
}
_SERIES = {  # (algorithm, rule) -> label
    ("exact", "constant"): "exact MAML, β = 1/(5L)",
    ("exact", "theorem"): "exact MAML, β_k = 1/(12 L(w_k)) (theorem)",
    ("maml", "constant"): f"stochastic MAML (B = {B_TASKS}), β = 1/(5L)",
}
_LOWER_LABEL = "lower bound ⌊T(ε′)/2⌋ (§7)"
_UPPER_LABEL = "upper bound (14)"


# --- grid -------------------------------------------------------------------------
def eps_for_length(T: int, Delta: float = DELTA, L: float = L_CHAIN, alpha: float = ALPHA_L / L_CHAIN) -> float:
    """The ``ε`` whose chain (built for ``ε′ = ε/(1 − αL)``) has exactly ``T``
    coordinates: ``ΔL/(1824ε′²) = T + ½``, the middle of the floor's step."""
    eps_prime = np.sqrt(Delta * L / (lit.CHAIN_T_DEN * (T + 0.5)))
    eps = float(eps_prime * (1.0 - alpha * L))
    if bounds.chain_T(eps=bounds.chain_eps_prime(eps=eps, alpha=alpha, L=L), Delta=Delta, L=L) != T:
        raise ValueError(f"no ε found for chain length T = {T}")
    return eps


def cells(scale: str) -> list[dict]:
    """One cell per chain length and series (each a deterministic run)."""
    out = []
    for key, algorithm, rule in (("constant", "exact", "constant"), ("theorem", "exact", "theorem"),
                                 ("maml", "maml", "constant")):
        for T in _SCALES[scale][key]:
            out.append({"T": int(T), "algorithm": algorithm, "rule": rule, "Delta": DELTA, "L": L_CHAIN,
                        "alpha_L": ALPHA_L, "beta_L": BETA_L if rule == "constant" else None,
                        **({"B": 1, "seeds": 1} if ALGORITHMS[algorithm].exact else {"B": B_TASKS, "seeds": 2})})
    return out


def _hyper(p: dict, alpha: float) -> Hyper:
    step = {"step": "constant", "beta": p["beta_L"] / p["L"]} if p["rule"] == "constant" else {"step": "adaptive"}
    return Hyper(p["algorithm"], alpha=alpha, B=p["B"], **step)


def compute(params: dict) -> pd.DataFrame:
    """Run one chain length with one series; one row: the measured first ``k``
    beside both bounds, the step certificate and the broken conditions."""
    T, L, Delta = params["T"], params["L"], params["Delta"]
    alpha = params["alpha_L"] / L
    eps = eps_for_length(T, Delta, L, alpha)
    family = HardChain(eps=bounds.chain_eps_prime(eps=eps, alpha=alpha, L=L), Delta=Delta, L=L)
    consts = family.constants()
    v = consts.values()
    hyper = _hyper(params, alpha)
    # measured cost per chain coordinate: ≤ 6000 steps with the theorem's rule, ≤ 350 with β = 1/(5L)
    budget = (6000 if params["rule"] == "theorem" else 500) * (T + 2)
    res = run(family, hyper, [eps], seeds=params["seeds"], budget=budget)
    per_seed = res.table.first_k.astype("Float64")
    Delta_bound = float(F(family, np.zeros(family.d), alpha)) - family.inf_f_lower()
    # ‖∇f(w_k)‖ ≤ ‖∇F(w_k)‖/(1 − αL)² (one task; the seeds of this deterministic family coincide)
    grad_f_max = float(np.nanmax(res.mean_grad_norm)) / (1.0 - alpha * L) ** 2
    L_w_max = bounds.smooth_local_L(L=v["L"], rho=v["rho"], alpha=alpha, mean_grad_norm=grad_f_max)
    beta_L_max = hyper.beta * L_w_max if hyper.step == "constant" else 1.0 / hyper.c
    k = res.mean_table.mean_first_k.iloc[0]
    return pd.DataFrame([{
        "series": _SERIES[(params["algorithm"], params["rule"])], "algorithm": params["algorithm"],
        "rule": params["rule"], "T": family.T, "eps": eps, "eps_prime": family.eps, "Delta": Delta,
        "Delta_bound": Delta_bound, "L": v["L"], "rho": v["rho"], "sigma": v["sigma"], "alpha": alpha,
        "beta": hyper.beta if hyper.step == "constant" else np.nan, "step_c": hyper.c if hyper.step == "adaptive" else np.nan,
        "B": params["B"], "seeds": params["seeds"], "budget": budget,
        "first_k": pd.NA if pd.isna(k) else int(k),
        "first_k_seed_min": per_seed.min(), "first_k_seed_max": per_seed.max(),
        "lower": bounds.chain_lower_bound_iterations(eps=eps, Delta=Delta, L=L, alpha=alpha),
        "upper": bounds.iterations_upper(eps=eps, Delta=Delta_bound, L=v["L"], rho=v["rho"], alpha=alpha, sigma=v["sigma"]),
        "beta_L_max": beta_L_max,
        "conditions_broken": broken_names(consts, hyper),
    }]).astype({"first_k": "Int64"})


# --- fits -----------------------------------------------------------------------
def _reached(table: pd.DataFrame, series: str) -> pd.DataFrame:
    sub = table[(table.series == series) & table.first_k.notna()].sort_values("eps")
    return sub.assign(first_k=sub.first_k.astype(float))


def _side(lo: float, hi: float, target: float) -> str:
    """Which side of ``target`` an interval lies on, when it excludes it
    (``shallower``/``steeper`` for a log-log slope); ``""`` otherwise."""
    t = f"{target:g}".replace("-", "−")
    return f"shallower than {t}; " if lo > target else f"steeper than {t}; " if hi < target else ""


# --- figures ----------------------------------------------------------------------
def _eps_ticks(ax, eps) -> None:
    """Tick the ε axis at the grid's values (a decade holds no more than a few)."""
    ax.xaxis.set_major_locator(ticker.FixedLocator(list(eps)))
    ax.xaxis.set_major_formatter(ticker.FixedFormatter([f"{e:.3g}" for e in eps]))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.tick_params(axis="x", labelrotation=35, labelsize=7.5)


_LOWER_LEGEND = ("lower bound ⌊T(ε′)/2⌋ (§7); T(ε′) = coordinates of the chain built\n"
                 "  for ε′ = ε/(1 − αL) (T=… below); a step reaches ≤ 2 new ones")
_SLOPE_LABEL = "slope −2 (the rate of (14)), through the smallest-ε point"


def _slope_anchor(table: pd.DataFrame) -> tuple[float, float] | None:
    """The measured point at the smallest ε (exact MAML first): where the slope −2 guide passes."""
    reached = table[table.first_k.notna()].assign(stoch=lambda d: d.algorithm == "maml")
    if reached.empty:
        return None
    r = reached.sort_values(["eps", "stoch"]).iloc[0]
    return float(r.eps), float(r.first_k)


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Left: measured iterations against ε with the lower bound, (14) and a slope −2
    guide, log-log; right: each bound divided by the measurement."""
    fig, (ax, ax_r) = style.figure(2, figsize=(14.0, 6.6), gridspec_kw={"width_ratios": [1.3, 1.0]})
    grid = table.drop_duplicates("eps").sort_values("eps")
    pos = grid[grid.lower > 0]                       # ⌊T/2⌋ = 0 at T = 1 has no place on a log axis
    style.bound_line(ax, grid.eps, grid.upper, _UPPER_LABEL)
    style.bound_line(ax, pos.eps, pos.lower, _LOWER_LEGEND, lower=True)
    for _, r in grid.iterrows():
        ax.annotate(f"T={r['T']}", (r.eps, max(r.lower, 1)), textcoords="offset points", xytext=(0, -11),
                    ha="center", fontsize=7, color=style.LOWER)
    anchor = _slope_anchor(table)
    if anchor is not None:
        style.slope_guide(ax, grid.eps, *anchor, slope=-2.0, label=_SLOPE_LABEL)
    markers = iter("o^sD")
    for j, series in enumerate(table.series.unique()):
        sub = _reached(table, series)
        if sub.empty:
            continue
        stochastic = (sub.algorithm == "maml").all()
        label = series
        if len(sub) >= 3:
            fit = fit_line(np.log(sub.eps), np.log(sub.first_k))
            label += f"\n  log-log slope {fit['slope']:.2f}, 95% CI [{fit['lo']:.2f}, {fit['hi']:.2f}]"
        if stochastic:                               # open, on top: the exact points stay visible under it
            ax.plot(sub.eps, sub.first_k, ls="none", marker="D", ms=8, mfc="none", mew=1.4, alpha=0.85,
                    color=style.ALT[j], zorder=5, label=label + "\n  (open ◇ on top: same k as exact MAML)")
            continue                                 # it retraces exact MAML: no ratio of its own
        style.measured_line(ax, sub.eps, sub.first_k, label=label, color=style.ALT[j], zorder=3)
        m = next(markers)
        ax_r.plot(sub.eps, sub.upper / sub.first_k, color=style.BOUND, ls="--", marker=m, ms=4, lw=1.2,
                  label=f"(14) / measured — {series}")
        keep = sub.lower > 0
        ax_r.plot(sub.eps[keep], (sub.lower / sub.first_k)[keep], color=style.LOWER, ls="-.", marker=m, ms=4,
                  lw=1.2, label=f"lower bound ⌊T(ε′)/2⌋ / measured — {series}")
    ax.set(xscale="log", yscale="log", xlabel="target ε (first k with ‖∇F(w_k)‖ ≤ ε)",
           ylabel="iterations k", title=f"Hard chain (Δ = {grid.Delta.iloc[0]:g}, L = {grid.L.iloc[0]:g}, "
                                        "α = 1/(6L)): T(ε′) coordinates, ε′ = ε/(1−αL)")
    style.legend_below(ax, ncol=2, gap=0.17, fontsize=7.5)
    ax_r.axhline(1.0, color="0.3", lw=1.0)
    ax_r.set(xscale="log", yscale="log", xlabel="target ε", ylabel="bound / measured iterations",
             title="Each bound divided by the measurement (1 = tight)")
    style.legend_below(ax_r, ncol=1, gap=0.17, fontsize=7.5)
    for a in (ax, ax_r):
        _eps_ticks(a, grid.eps)
    return style.save(fig, outdir, NAME)


# --- claims -----------------------------------------------------------------------
def _local_slopes(sub: pd.DataFrame) -> np.ndarray:
    """Log-log slopes between consecutive ε, from the largest ε to the smallest."""
    s = sub.sort_values("eps", ascending=False)
    return np.diff(np.log(s.first_k.values)) / np.diff(np.log(s.eps.values))


RATE = "(14) and THEORY.md §7, zero-respecting lower bound ⌊T(ε′)/2⌋"
STEEPEN_ALLOWANCE = 0.05        # a local slope may pass −2 by this much and still count as approaching it
BAND_ALLOWANCE = 0.05           # relative allowance of the step-ratio band


def run_check(r) -> Check:
    """One run between its two bounds (THEORY.md §7): ``⌊T(ε′)/2⌋ ≤ first k ≤ (14)``,
    a ``within`` check.  A run that did not reach ε only says ``first k > budget``:
    its interval is ``[budget, ∞)`` (violated if the budget already exceeds (14))."""
    reached = not pd.isna(r.first_k)
    lo, hi = (float(r.first_k),) * 2 if reached else (float(r.budget), np.inf)
    return Check(f"lower bound ⌊T(ε′)/2⌋ ≤ measured ≤ (14) at ε = {r.eps:.4g} (T = {r['T']}; "
                 f"{r.series}; broken: {r.conditions_broken})", RATE,
                 int(r.first_k) if reached else float("nan"), float(r.upper), "within", lo=lo, hi=hi,
                 bound_lo=float(r.lower),
                 context={"series": r.series, "T": r["T"], "bound_text": f"[{int(r.lower)}, {r.upper:.4g}]",
                          **({} if reached else {"note": f"not reached within {r.budget} iterations"})})


def slope_check(sub: pd.DataFrame, series: str) -> Check:
    """The least-squares log-log slope of measured iterations against ε, which
    should match the −2 of both bounds (THEORY.md §7): a ``match`` check on its 95% CI."""
    fit = fit_line(np.log(sub.eps), np.log(sub.first_k))
    note = (f"slope {fit['slope']:.3f}: too few points for a CI" if np.isnan(fit["lo"]) else
            f"{_side(fit['lo'], fit['hi'], -2.0)}95% CI [{fit['lo']:.3f}, {fit['hi']:.3f}], {fit['n']} values of ε")
    return Check(f"log-log slope of measured iterations against ε ≈ −2, least squares "
                 f"over ε ∈ [{sub.eps.min():.3g}, {sub.eps.max():.3g}] ({series})", RATE,
                 fit["slope"], -2.0, "match", lo=fit["lo"], hi=fit["hi"], context={"series": series, "note": note})


def steepening_check(sub: pd.DataFrame, series: str) -> Check:
    """The local log-log slope between consecutive ε steepens toward −2 as ε
    shrinks (the 1/ε² rate is asymptotic): an upper check, against 0, of the
    number of consecutive pairs that do not steepen plus the slopes steeper than
    ``−2 − STEEPEN_ALLOWANCE``."""
    local = _local_slopes(sub)
    n_bad = int(np.sum(np.diff(local) >= 0) + np.sum(local < -2.0 - STEEPEN_ALLOWANCE))
    per_coord = np.diff(sub.first_k.values) / np.diff(sub["T"].values)
    return Check(f"local log-log slope between consecutive ε steepens toward −2 as ε shrinks "
                 f"(iterations per added chain coordinate: {per_coord[0]:.0f} at the smallest ε, "
                 f"{per_coord[-1]:.0f} at the largest; {series})", RATE, n_bad, 0, "upper",
                 context={"series": series, "measured_text": ", ".join(f"{x:.3f}" for x in local), "bound_text": "-2",
                          "note": (f"steps that do not steepen or pass −{2 + STEEPEN_ALLOWANCE:g}: {n_bad}; "
                                   f"last {local[-1]:.3f}")})


def bound_ratio_checks(sub: pd.DataFrame, series: str) -> list[Check]:
    """Each bound divided by the measurement, over ε: (14)/measured ≥ 1 (a lower
    check of the smallest) and ⌊T(ε′)/2⌋/measured ≤ 1 (an upper check of the largest)."""
    up, lo = sub.upper / sub.first_k, sub.lower / sub.first_k
    return [Check(f"upper bound (14) / measured, over ε ({series})", RATE, float(up.min()), 1.0, "lower",
                  context={"series": series, "measured_text": f"{up.min():.4g} – {up.max():.4g}", "bound_text": "≥ 1"}),
            Check(f"lower bound ⌊T(ε′)/2⌋ / measured, over ε ({series})", RATE, float(lo.max()), 1.0, "upper",
                  context={"series": series, "measured_text": f"{lo.min():.3g} – {lo.max():.3g}", "bound_text": "≤ 1"})]


def constant_step_check(const: pd.DataFrame) -> Check:
    """The constant step is certified along every run: ``β ≤ 1/L(w_k)``, the local
    constant of the smoothness lemma (THEORY.md §3), i.e. ``max_k β·L(w_k) ≤ 1``."""
    return Check("constant β ≤ 1/L(w_k) along every run (smoothness lemma, §3): max_k β·L(w_k)",
                 "THEORY.md §3, smoothness lemma", float(const.beta_L_max.max()), 1.0, "upper")


def _iterations(k) -> str:
    """A first k as printed: the integer, or ``not reached``."""
    return "not reached" if pd.isna(k) else str(int(k))


def retrace_check(both: pd.DataFrame) -> Check:
    """Stochastic MAML on identical tasks is exact MAML (no task noise on the
    chain): an upper check, against 0, of the chain lengths at which its first k
    (or its seeds' spread) differs from exact MAML's."""
    same = (both.first_k == both.first_k_exact) & (both.first_k_seed_min == both.first_k_seed_max)
    n_diff = int((~same.fillna(False).astype(bool)).sum())
    return Check(f"consistency check (one task, exact oracles, so it holds by construction): stochastic MAML "
                 f"(B = {B_TASKS}) retraces exact MAML: "
                 f"first k at T = {', '.join(map(str, both['T']))}", "THEORY.md §7, one task",
                 n_diff, 0, "upper",
                 context={"measured_text": ", ".join(map(_iterations, both.first_k)),
                          "bound_text": ", ".join(map(_iterations, both.first_k_exact)),
                          "note": f"differs at {n_diff} of {len(both)} chain lengths"})


def claims(table: pd.DataFrame) -> list[Check]:
    """Per run: lower ≤ measured ≤ (14).  Per series with three ε or more: the
    fitted log-log slope against −2 and the local slopes; per series: the
    bound/measurement ratios.  The constant-step certificate, stochastic MAML
    retracing exact MAML, and the theorem's step against β = 1/(5L)."""
    checks = [run_check(r) for _, r in table.sort_values(["series", "eps"], ascending=[True, False]).iterrows()]
    for series in table[table.algorithm == "exact"].series.unique():
        sub = _reached(table, series)
        if len(sub) >= 3:
            checks += [slope_check(sub, series), steepening_check(sub, series)]
        checks += bound_ratio_checks(sub, series)
    const = table[table.rule == "constant"]
    if len(const):
        checks.append(constant_step_check(const))
    exact = table[(table.algorithm == "exact") & (table.rule == "constant")]
    both = table[table.algorithm == "maml"].merge(exact, on=["T", "rule"], suffixes=("", "_exact"))
    if len(both):
        checks.append(retrace_check(both))
    return checks + _step_ratio_claim(table, exact)


def _step_ratio_claim(table: pd.DataFrame, exact: pd.DataFrame) -> list[Check]:
    """Small steps follow the gradient flow, so iterations scale like 1/β: the
    theorem's rule should cost β/β_k ∈ [12·4L, 12·max L(w_k)]·β more.  An upper
    check, against 0, of the chain lengths whose ratio falls outside that band
    widened by ``BAND_ALLOWANCE``."""
    theo = table[(table.algorithm == "exact") & (table.rule == "theorem")]
    both = theo.merge(exact, on="T", suffixes=("", "_c")).dropna(subset=["first_k", "first_k_c"])
    if both.empty:
        return []
    ratio = both.first_k.astype(float) / both.first_k_c.astype(float)
    beta = both.beta_c.iloc[0]
    lo = lit.STEP_C["maml"] * lit.SMOOTH_L_FACTOR * both.L.iloc[0] * beta
    hi = lit.STEP_C["maml"] * float(both.beta_L_max_c.max())
    outside = int(((ratio < lo * (1 - BAND_ALLOWANCE)) | (ratio > hi * (1 + BAND_ALLOWANCE))).sum())
    return [Check(f"the theorem's step β_k = 1/(12L(w_k)) costs ≈ β/β_k times the iterations of "
                  f"β = {beta:g} (gradient-flow scaling) at T = {', '.join(map(str, both['T']))}",
                  "THEORY.md §4, step rule β_k = 1/(12 L̃(w_k))", outside, 0, "upper",
                  context={"measured_text": ", ".join(f"{x:.2f}" for x in ratio),
                           "bound_text": f"[{lo:.2f}, {hi:.2f}] (±{BAND_ALLOWANCE:.0%})",
                           "note": f"outside the band at {outside} of {len(both)} chain lengths"})]
