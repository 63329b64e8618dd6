"""The rate on benign problems: ``T(ε)`` grows like ``log(1/ε)`` (THEORY.md §7).

On ``cosine-quadratic`` and ``robust-regression`` exact MAML (infinite
batches, so no noise floor; THEORY.md §4) with the theorem's step
``β_k = 1/(12 L(w_k))`` (exact ``L(w)``) and ``α = 1/(6L)`` converges linearly
near a local minimum: the first ``k`` with ``E‖∇F(w_k)‖ ≤ ε`` grows like
``log(1/ε)`` while the upper bound (14) ``1600Δ(L + ρα(σ + ε))/ε²``
(``theory.bounds.iterations_upper``) grows like ``1/ε²``.  Stochastic MAML
with the theorem's steps would stall at its noise floor, so exact mode is used;
the seeds differ by their initial point ``w_0 ~ N(0, I)``, so the expectation
of (14) is over ``w_0`` and ``Δ = E F(w_0) − inf F`` is bounded by the seed
mean of ``F(w_0)`` minus ``inf_f_lower()``.  Measured: the first ``k`` at which
the seed average of ``‖∇F(w_k)‖`` drops to ``ε`` (the theorem's quantity), and
each seed's own first ``k`` (the band).  Near a minimum ``‖∇F(w_k)‖`` is a
sum of geometric terms, so the iterations per decade of ``ε`` settle to the
slowest rate only past a transient: ``k ≈ a + b·log10(1/ε)`` is fitted on the
smaller half of the ``ε`` grid, the log-log slope on all of it.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import make_family
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck import literature as lit

from . import style
from .analysis import broken_names, fit_line

__all__ = ["NAME", "TITLE", "cells", "compute", "plot", "claims"]

NAME = "rate_benign"
TITLE = "The rate on benign problems: T(ε) grows like log(1/ε), far below (14)"

ALPHA_L = lit.ALPHA_MAX_LD["maml"]          # α = 1/(6L)
W0_ROOT = 20200                             # root of the per-seed initial points
_SMALL = {"cosine-quadratic": {"d": 4, "M": 5, "a_min": 1.0, "a_max": 2.0, "gamma": 0.1},
          "robust-regression": {"d": 3, "M": 4, "N": 20}}
class Scale(NamedTuple):
    """The size of this experiment at one scale (seeds, ε exponents lo..hi, number of ε, family parameters)."""

    seeds: Any
    eps_exponents: Any
    n_eps: Any
    families: Any


SCALES = {
    "tiny": Scale(seeds=2, eps_exponents=(-4, -2), n_eps=5, families=_SMALL),
    "quick": Scale(seeds=4, eps_exponents=(-6, -2), n_eps=9, families={"cosine-quadratic": {}, "robust-regression": {}}),
    "default": Scale(seeds=8, eps_exponents=(-10, -2), n_eps=17, families={"cosine-quadratic": {}, "robust-regression": {}}),
    "full": Scale(seeds=32, eps_exponents=(-11, -2), n_eps=19, families={"cosine-quadratic": {}, "robust-regression": {}}),
}
BUDGET = 200_000


def cells(scale: str) -> list[dict]:
    """One cell per family: every ε of the grid comes out of one seed-batched run."""
    s = SCALES[scale]
    R, (lo, hi), n, fams = s.seeds, s.eps_exponents, s.n_eps, s.families
    return [{"family": name, "family_params": params, "seeds": R, "eps_exp_lo": lo, "eps_exp_hi": hi,
             "n_eps": n, "alpha_L": ALPHA_L, "budget": BUDGET} for name, params in fams.items()]


def _w0(d: int, seeds: int) -> np.ndarray:
    return np.stack([np.random.default_rng((W0_ROOT, s)).standard_normal(d) for s in range(seeds)])


def compute(params: dict) -> pd.DataFrame:
    """One row per seed × ε (``kind = "seed"``) and per ε for the seed-averaged
    norm (``kind = "seed average"``), each beside (14)."""
    family = make_family(params["family"], **params["family_params"])
    consts = family.constants()
    v = consts.values()
    alpha = params["alpha_L"] / v["L"]
    hyper = Hyper("exact", alpha=alpha)
    eps = np.logspace(params["eps_exp_hi"], params["eps_exp_lo"], params["n_eps"])
    w0 = _w0(family.d, params["seeds"])
    res = run(family, hyper, eps, seeds=params["seeds"], budget=params["budget"], w0=w0)
    Delta = float(np.mean(F(family, w0, alpha))) - family.inf_f_lower()
    upper = dict(zip(eps, np.atleast_1d(bounds.iterations_upper(eps=eps, Delta=Delta, L=v["L"], rho=v["rho"], alpha=alpha, sigma=v["sigma"]))))
    seeds = res.table[["seed", "eps", "first_k"]].assign(kind="seed")
    mean = res.mean_table[["eps", "mean_first_k"]].rename(columns={"mean_first_k": "first_k"})
    out = pd.concat([seeds, mean.assign(kind="seed average", seed=pd.NA)], ignore_index=True)
    return out.assign(
        family=params["family"], family_params=json.dumps(params["family_params"], sort_keys=True),
        upper=out.eps.map(upper), Delta_bound=Delta, L=v["L"], rho=v["rho"], sigma=v["sigma"], alpha=alpha,
        seeds=params["seeds"], budget=params["budget"],
        conditions_broken=broken_names(consts, hyper),
    )[["family", "kind", "seed", "eps", "first_k", "upper", "Delta_bound", "L", "rho", "sigma", "alpha",
       "seeds", "budget", "conditions_broken", "family_params"]]


# --- summaries ----------------------------------------------------------------
def _curves(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per family and ε: the seed-average first k, the seed band, and (14)."""
    out = {}
    for fam, sub in table.groupby("family", sort=False):
        avg = sub[sub.kind == "seed average"].set_index("eps").first_k.astype(float)
        per = sub[sub.kind == "seed"].assign(first_k=lambda d: d.first_k.astype(float)).groupby("eps").first_k
        c = pd.DataFrame({"k": avg, "lo": per.min(), "hi": per.max(),
                          "upper": sub.groupby("eps").upper.first()}).sort_index()
        out[fam] = c[c.k > 0].reset_index()                 # log scales and log fits need k ≥ 1
    return out


def _tail(c: pd.DataFrame) -> pd.DataFrame:
    """The smaller half of the ε grid (in log scale): past the transient, where
    the slowest contraction rate sets the iterations per decade."""
    return c[np.log(c.eps) <= 0.5 * (np.log(c.eps.min()) + np.log(c.eps.max())) + 1e-9]


def _fits(c: pd.DataFrame) -> tuple[dict, dict]:
    """``k ≈ a + b·log10(1/ε)`` on the tail of the grid; ``log k ≈ c + s·log ε`` on all of it."""
    t = _tail(c)
    return fit_line(np.log10(1.0 / t.eps), t.k), fit_line(np.log(c.eps), np.log(c.k))


def _rel_rms(pred: np.ndarray, k: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred / k - 1.0) ** 2)))


# --- figures --------------------------------------------------------------------
def _spread_panel(ax, c: pd.DataFrame, seeds: int) -> None:
    """The seed spread, invisible on the decades of the panel above: each seed's
    first k relative to the measured (seed-mean) k, per cent, max and min over seeds."""
    lo, hi = 100 * (c.lo / c.k - 1), 100 * (c.hi / c.k - 1)
    i = int(np.argmax(c.hi / c.lo))
    ax.fill_between(c.eps, lo, hi, color=style.MEASURED, alpha=0.18, lw=0)
    ax.plot(c.eps, hi, color=style.MEASURED, marker="^", ms=3.5, lw=1.2, ls="-",
            label=f"seed spread ({seeds} seeds, w_0 ~ N(0, I)), lower panel: slowest seed's first k")
    ax.plot(c.eps, lo, color=style.MEASURED, marker="v", ms=3.5, lw=1.2, ls="--",
            label=f"fastest seed's first k; widest spread max/min − 1 = {c.hi.iloc[i] / c.lo.iloc[i] - 1:.0%} "
                  f"at ε = {c.eps.iloc[i]:.0e}")
    ax.axhline(0.0, color="0.3", lw=0.9)
    ax.set(xscale="log", xlabel="target ε", ylabel="per-seed first k\nvs measured (%)")
    ax.set_title("spread over seeds (too small to see on the log axis above)", fontsize=9)
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:+.0f}" if round(v) else "0"))


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """``rate_benign``: measured against (14), log-log.  ``rate_benign_log``:
    measured against log10(1/ε) on a linear iteration axis, with the fitted line."""
    curves = _curves(table)
    paths = []
    fig, axes = style.figure(len(curves), 2, figsize=(6.0 * len(curves), 7.4), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [3.0, 1.3]})
    for ax, ax_s, (fam, c) in zip(axes[0], axes[1], curves.items()):
        _, pw = _fits(c)
        style.bound_line(ax, c.eps, c.upper, "upper bound (14)")
        style.measured_line(ax, c.eps, c.k, label=(
            f"measured: first k with seed-mean ‖∇F(w_k)‖ ≤ ε (log-log slope {pw['slope']:.3f})\n"
            "  exact MAML, β_k = 1/(12L(w_k))"))
        for r, side, dx in ((c.iloc[0], "left", 6), (c.iloc[-1], "right", -6)):   # smallest, largest ε
            ax.annotate(f"(14)/measured\n= {r.upper / r.k:.1e}", (r.eps, np.sqrt(r.upper * r.k)),
                        textcoords="offset points", xytext=(dx, 0), ha=side, fontsize=7.5, color=style.BOUND)
        ax.set(xscale="log", yscale="log", ylabel="iterations k", title=f"{fam}: measured vs (14)")
        _spread_panel(ax_s, c, int(table[table.family == fam].seeds.iloc[0]))
        handles = ax.get_legend_handles_labels()
        extra = ax_s.get_legend_handles_labels()
        ax_s.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper center", bbox_to_anchor=(0.5, -0.32))
    paths += style.save(fig, outdir, NAME)
    fig, axes = style.figure(len(curves), figsize=(6.0 * len(curves), 4.4), squeeze=False)
    for j, (ax, (fam, c)) in enumerate(zip(axes[0], curves.items())):
        lin, _ = _fits(c)
        x, xt = np.log10(1.0 / c.eps), np.log10(1.0 / _tail(c).eps)
        style.measured_line(ax, x, c.k, c.lo, c.hi, label="measured (seed average; band: per-seed min–max)",
                            color=style.ALT[j])
        ax.plot(xt, lin["intercept"] + lin["slope"] * xt, ls=":", color="0.2", lw=2.0,
                label=f"fit a + b·log10(1/ε) for ε ≤ {10 ** -xt.min():.0e}:\n"
                      f"  b = {lin['slope']:.0f} [{lin['lo']:.0f}, {lin['hi']:.0f}] iterations per decade")
        ax.set(xlabel="log10(1/ε)", ylabel="iterations k to E‖∇F(w_k)‖ ≤ ε", ylim=(0, None),
               title=f"{fam}: linear in log(1/ε)")
        ax.legend(loc="lower right")
    paths += style.save(fig, outdir, f"{NAME}_log")
    return paths


# --- claims ---------------------------------------------------------------------
EQUATION = "(14), THEORY.md §4 and §7"


def _ratio_interval(table: pd.DataFrame, fam: str) -> tuple[float, float]:
    """Where the smallest ratio (14)/measured over the ε grid lies: a reached ε
    gives the exact ratio ``upper/k``; an ε not reached within the budget only
    ``T(ε) > budget``, so its ratio lies in ``[0, upper/budget]``."""
    avg = table[(table.family == fam) & (table.kind == "seed average")]
    k = avg.first_k.astype(float).to_numpy()
    upper, budget = avg.upper.to_numpy(float), avg.budget.to_numpy(float)
    with np.errstate(divide="ignore"):
        exact = upper / k
    reached = ~np.isnan(k)
    lo = np.where(reached, exact, 0.0)
    hi = np.where(reached, exact, upper / budget)
    return float(lo.min()), float(hi.min())


def ratio_check(table: pd.DataFrame, fam: str, c: pd.DataFrame) -> Check:
    """(14) is an upper bound on the first k with seed-mean ‖∇F‖ ≤ ε at every ε:
    a lower check of the smallest ratio (14)/measured against 1 (``c``: the
    family's reached ε from ``_curves``, for the printed ratios)."""
    n_eps = table[(table.family == fam) & (table.kind == "seed average")].eps.nunique()
    ratio = c.upper / c.k
    first, last = c.iloc[-1], c.iloc[0]                 # largest and smallest ε
    lo, hi = _ratio_interval(table, fam)
    return Check(f"{fam}: measured ≤ (14) at every ε; ratio (14)/measured per ε", EQUATION,
                 float(ratio.min()) if len(c) else float("nan"), 1.0, "lower", lo=lo, hi=hi,
                 context={"family": fam, "bound_text": "ratio ≥ 1", "measured_text": (
                     f"{ratio.iloc[-1]:.3g} at ε = {first.eps:.0e} … {ratio.iloc[0]:.3g} at ε = {last.eps:.0e} "
                     f"({len(c)}/{n_eps} ε reached)")})


def log_growth_check(fam: str, c: pd.DataFrame) -> Check:
    """T(ε) grows like log(1/ε) (linear convergence near a minimum, THEORY.md §7),
    not like (14)'s 1/ε²: on the tail of the grid, the relative RMS error of
    ``k ≈ a + b·log10(1/ε)`` must not exceed that of a power law fitted on the same ε."""
    lin, _ = _fits(c)
    t = _tail(c)
    pw_t = fit_line(np.log(t.eps), np.log(t.k))
    e_lin = _rel_rms(lin["intercept"] + lin["slope"] * np.log10(1.0 / t.eps.values), t.k.values)
    e_pow = _rel_rms(np.exp(pw_t["intercept"] + pw_t["slope"] * np.log(t.eps.values)), t.k.values)
    return Check(f"{fam}: T(ε) grows like log(1/ε): k ≈ a + b·log10(1/ε) for ε ≤ {t.eps.max():.0e} "
                 f"(b: iterations per decade of ε; both models fitted on the same ε)", EQUATION,
                 e_lin, e_pow, "upper",
                 context={"family": fam, "bound_text": "(14) grows like 1/ε²",
                          "measured_text": (f"b = {lin['slope']:.1f} [{lin['lo']:.1f}, {lin['hi']:.1f}] (95% CI), "
                                            f"R² = {lin['r2']:.4f}"),
                          "note": f"relative RMS error of log(1/ε) {e_lin:.4f} vs power law {e_pow:.4f}"})


SHALLOW = -1.0      # "far shallower than −2": the log-log slope's whole CI above −1


def slope_check(fam: str, c: pd.DataFrame) -> Check:
    """The log-log slope of measured T(ε) against ε, far shallower than (14)'s
    −2: a lower check of its 95% CI against ``SHALLOW`` = −1."""
    _, pw = _fits(c)
    return Check(f"{fam}: log-log slope of measured T(ε) against ε ≥ −1, far shallower than (14)'s −2", EQUATION,
                 pw["slope"], SHALLOW, "lower", lo=pw["lo"], hi=pw["hi"],
                 context={"family": fam, "note": f"95% CI [{pw['lo']:.3f}, {pw['hi']:.3f}]"})


def claims(table: pd.DataFrame) -> list[Check]:
    """Per family: (14) against the measurement at every ε and its looseness;
    growth like log(1/ε) (fit and model comparison); the log-log slope."""
    checks = []
    for fam, c in _curves(table).items():
        checks += [ratio_check(table, fam, c), log_growth_check(fam, c), slope_check(fam, c)]
    return checks
