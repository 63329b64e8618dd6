"""MAML vs FO-MAML vs HF-MAML: where each stalls, and what a step costs (THEORY.md §4–§6).

FO-MAML drops the Hessian: at its fixed points ``∇F(w) = −α Σ_i p_i ∇²f_i(w)
∇f_i(w − α∇f_i(w))``, a floor of order ``αLσ`` that no batch size removes
(§5).  HF-MAML replaces the Hessian-vector product by a central difference
and should stall where MAML does (§6).  Measured here: the plateau of
``E‖∇F(w_k)‖`` (per seed, the time average over the second half of the run,
then averaged over seeds) against the task dissimilarity ``σ`` at fixed
``α`` and against ``α`` at fixed ``σ``, with the cost of one step
(gradient-oracle calls ``ORACLE_CALLS × B``, and wall time).

Family.  The dropped term ``α Σ p_i ∇²f_i ∇f_i(u_i)`` is ``α∇²f·Σ p_i ∇f_i(u_i)``
when all tasks share one Hessian, and so vanishes exactly at FO-MAML's fixed
points: ``cosine-quadratic`` (shared ``A`` and ripple) has no FO-MAML floor
beyond the noise, whatever ``σ``.  ``robust-regression`` has task-specific
Hessians ``(1/N)Σ_k φ''(r_k)x_kx_kᵀ`` and is used instead, with noiseless
labels and no outliers: at ``spread = 0`` every task is minimised by the same
``w̄*`` with zero residuals, so ``∇f_i(w*) = 0`` for all ``i`` and every
per-sample gradient vanishes there (no task or data noise at ``w*``), while
``spread > 0`` moves the task optima apart.  Its certified ``σ`` (A4) is a
supremum that does not depend on ``spread``; the x-axis is therefore the
dissimilarity at the stationary point ``w*`` of ``F``,
``σ(w*) = (Σ_i p_i ‖∇f_i(w*) − ∇f(w*)‖²)^½`` (exact), which scales with
``spread`` and is 0 at ``spread = 0``.

Runs start at ``w* + r₀·1/√d`` (``w*`` by BFGS on the exact (1)), so the
plateau is reached within a few relaxation times.  All three take MAML's
step ``β_k = 1/(12 L̃(w_k))``: the estimators are compared at equal steps.
The FO-MAML and HF-MAML theorems ask for ``c = 18`` and ``25``; a smaller
step lowers the noise part of a plateau (about ``∝ √β``) and slows the
transient, so with the theorems' own steps HF-MAML's plateau sits below
MAML's by about ``√(12/25)`` for that reason alone.  The table flags the
broken ``step_rule``.  ``D_h`` is each theorem's minimum.  Bounds:
``theory.bounds.noise_floor`` (§4–§6, with the certified constants) and
``fomaml_dropped_term`` (§5, evaluated at the final iterates).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import grad_F, inner_points
from mamlcheck.algorithms.runner import run
from mamlcheck.algorithms.steps import ORACLE_CALLS, outer_step
from mamlcheck.algorithms.streams import SeedStreams
from mamlcheck.problems import make_family
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck import literature as lit

from . import style
from .analysis import CI, conditions_note, fit_line, stationary_point

__all__ = ["NAME", "TITLE", "cells", "compute", "plot", "claims",
           "dissimilarity"]

NAME = "maml_variants"
TITLE = "MAML vs FO-MAML vs HF-MAML: floors against σ and α, and the cost of a step"

FAMILY = "robust-regression"
FAMILY_PARAMS = {"d": 2, "M": 2, "N": 50, "noise": 0.0, "outlier_frac": 0.0}
ALGORITHMS = ("maml", "fomaml", "hfmaml")
LABEL = {"maml": "MAML", "fomaml": "FO-MAML", "hfmaml": "HF-MAML"}
COLOR = {"maml": style.ALT[0], "fomaml": style.ALT[1], "hfmaml": style.ALT[2]}
ALPHA_L_SIGMA = lit.ALPHA_MAX_LD["fomaml"]     # the σ sweep at FO-MAML's largest α = 1/(10L)
SPREAD_ALPHA = 0.4                             # the α sweep at this spread
D_BATCH = 1                                    # D_in = D_o = 1 (D_h: the theorem's minimum)
STEP_C = lit.STEP_C["maml"]                    # one step rule for all three: β_k = 1/(12 L̃(w_k))
BAND = (0.1, 0.9)                              # seed band: quantiles of the per-seed plateaus
ZERO_FRACTION = 0.05                           # "→ 0": below this fraction of the floor at the largest σ
TIMING_STEPS = 20                              # outer steps timed alone for the cost table
class Scale(NamedTuple):
    """The size of this experiment at one scale (seeds, tasks per step B, steps K, start offset r₀, spreads, αL values)."""

    seeds: Any
    B: Any
    steps: Any
    r0: Any
    spreads: Any
    alpha_L: Any


SCALES = {
    "tiny": Scale(seeds=4, B=64, steps=200, r0=0.001, spreads=(0.0, 0.4), alpha_L=(ALPHA_L_SIGMA,)),
    "quick": Scale(seeds=6, B=128, steps=400, r0=0.02, spreads=(0.0, 0.2, 0.4), alpha_L=(0.05, ALPHA_L_SIGMA, 0.25)),
    "default": Scale(seeds=8, B=256, steps=800, r0=0.05, spreads=(0.0, 0.1, 0.2, 0.3, 0.4), alpha_L=(0.05, ALPHA_L_SIGMA, 1 / 6, 0.25)),
    "full": Scale(seeds=32, B=1024, steps=3000, r0=0.05, spreads=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5), alpha_L=(0.025, 0.05, ALPHA_L_SIGMA, 0.15, 1 / 6, 0.2, 0.25)),
}


def cells(scale: str) -> list[dict]:
    """One cell per (algorithm, spread, αL); ``sweeps`` names the sweeps the
    configuration belongs to (``sigma``: spreads at ``αL = 1/10``;
    ``alpha``: αL values at ``spread = 0.4``)."""
    s = SCALES[scale]
    R, n_b, K, r0, spreads, alphas = s.seeds, s.B, s.steps, s.r0, s.spreads, s.alpha_L
    configs: dict[tuple, list[str]] = {}
    for s in spreads:
        configs.setdefault((s, ALPHA_L_SIGMA), []).append("sigma")
    for aL in alphas:
        configs.setdefault((SPREAD_ALPHA, aL), []).append("alpha")
    return [{"family": FAMILY, "family_params": FAMILY_PARAMS, "algorithm": alg, "spread": s,
             "alpha_L": aL, "sweeps": ",".join(sw), "seeds": R, "K": K, "r0": r0, "B": n_b, "D": D_BATCH}
            for (s, aL), sw in configs.items() for alg in ALGORITHMS]


# --- helpers shared with step_sizes and local_smoothness ----------------------------
def dissimilarity(family, w) -> np.ndarray:
    """Task dissimilarity at ``w``: ``(Σ_i p_i ‖∇f_i(w) − ∇f(w)‖²)^½`` (A4's
    quantity before the supremum, THEORY.md §2), exact over the tasks."""
    g = family.grad(np.asarray(w, float)[..., None, :], np.arange(family.M))
    dev = g - np.einsum("m,...md->...d", family.p, g)[..., None, :]
    return np.sqrt(np.sum(dev ** 2, axis=-1) @ family.p)



def _step_ms(family, w, hyper, c: dict, steps: int) -> float:
    """Wall time of one outer step (direction and step size, all seeds), in ms."""
    streams = SeedStreams(w.shape[0], root=1)
    outer_step(family, w, hyper, c["L"], c["rho"], streams)           # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        outer_step(family, w, hyper, c["L"], c["rho"], streams)
    return 1e3 * (time.perf_counter() - t) / steps


def compute(params: dict) -> pd.DataFrame:
    """Run one (algorithm, spread, α) for all seeds.  Rows ``kind="plateau"``:
    per seed the mean of ``‖∇F(w_k)‖`` over ``k ≥ K/2``, ``E_i‖∇f_i(u_i)‖`` at
    the final iterate and the dropped-term bound there; ``kind="trace"``:
    ``‖∇F(w_k)‖`` per seed at about 60 iterations."""
    fam = make_family(params["family"], **params["family_params"], spread=params["spread"])
    c = fam.constants().values()
    alg, alpha = params["algorithm"], params["alpha_L"] / c["L"]
    n_b, D = params["B"], params["D"]
    hyper = Hyper(alg, alpha=alpha, B=n_b, D_in=D, D_o=D, D_h=bounds.D_h_min(algorithm=alg, alpha=alpha, sigma_H=c["sigma_H"]),
                  step_c=STEP_C)
    K = params["K"]
    w_star = stationary_point(fam, alpha)
    w0 = w_star + params["r0"] / np.sqrt(fam.d)
    t = time.perf_counter()
    res = run(fam, hyper, [1e-300], seeds=params["seeds"], budget=K, w0=w0,
              trace_stride=max(1, K // 200), stop_at_eps=False)
    run_ms = 1e3 * (time.perf_counter() - t) / max(res.iterations, 1)
    tr = res.trace[~res.trace.diverged]
    plateau = tr[tr.k >= K // 2].groupby("seed").grad_norm.mean()
    u = inner_points(fam, res.w, alpha)                                # (R, M, d)
    g_inner = np.linalg.norm(fam.grad(u, np.arange(fam.M)), axis=-1) @ fam.p
    seeds = res.trace.seed.unique()
    per_seed = pd.DataFrame({
        "kind": "plateau", "seed": seeds, "k": np.nan,
        "grad_norm": plateau.reindex(seeds).values,
        "inner_grad_norm": g_inner,
        "dropped_bound": bounds.fomaml_dropped_term(alpha=alpha, L=c["L"], sigma_tilde=c["sigma_tilde"], D_in=D, mean_inner_grad_norm=g_inner),
        "dropped_hessian_part": bounds.fomaml_dropped_term(alpha=alpha, L=c["L"], sigma_tilde=0.0, D_in=D, mean_inner_grad_norm=g_inner),
    })
    ks = np.sort(tr.k.unique())
    keep = tr[tr.k.isin(ks[::max(1, len(ks) // 60)]) | (tr.k == ks[-1])]
    trace = pd.DataFrame({"kind": "trace", "seed": keep.seed, "k": keep.k, "grad_norm": keep.grad_norm})
    config = {
        "family": fam.name, **params["family_params"], "spread": params["spread"], **c,
        "sigma_local": float(dissimilarity(fam, w_star)), "algorithm": alg, "alpha": alpha,
        "alpha_L": params["alpha_L"], "B": n_b, "D_in": D, "D_o": D, "D_h": hyper.D_h,
        "step_c": hyper.c, "budget": K, "window_start": K // 2, "r0": params["r0"],
        "sweeps": params["sweeps"], "seeds": params["seeds"],
        "grad_norm_start": float(np.linalg.norm(grad_F(fam, w0, alpha))),
        "floor_bound": bounds.noise_floor(algorithm=alg, L=c["L"], rho=c["rho"], sigma=c["sigma"], sigma_tilde=c["sigma_tilde"], alpha=alpha, B=n_b, D_in=D, D_o=D),
        "oracle_calls": ORACLE_CALLS[alg] * n_b,
        "wall_ms_step": _step_ms(fam, res.w, hyper.resolved(c), c, TIMING_STEPS),
        "wall_ms_iter_run": run_ms,
        "seeds_diverged": int(res.table.groupby("seed").diverged.first().sum()),
        **conditions_note(c, hyper.resolved(c)),
    }
    return pd.concat([per_seed, trace], ignore_index=True).assign(**config)


# --- analysis (from the table alone) ---------------------------------------------
def _floors(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (algorithm, spread, αL): seed-mean plateau, seed band, bounds, cost."""
    p = table[table.kind == "plateau"]
    keys = ["algorithm", "spread", "alpha_L"]
    g = p.groupby(keys)
    out = g.grad_norm.agg(floor="mean", n="count", lo=lambda s: s.quantile(BAND[0]),
                          hi=lambda s: s.quantile(BAND[1])).reset_index()
    means = g[["dropped_bound", "dropped_hessian_part", "inner_grad_norm"]].mean().reset_index()
    first = g[["sigma_local", "sigma", "floor_bound", "oracle_calls", "wall_ms_step", "wall_ms_iter_run",
               "sweeps", "broken", "alpha", "L", "B", "D_h", "seeds_diverged"]].first().reset_index()
    return out.merge(means, on=keys).merge(first, on=keys)


def _sweep(fl: pd.DataFrame, sweep: str, alg: str) -> pd.DataFrame:
    sub = fl[(fl.algorithm == alg) & fl.sweeps.str.split(",").apply(lambda s: sweep in s)]
    return sub.sort_values("sigma_local" if sweep == "sigma" else "alpha_L")


def _per_seed(table: pd.DataFrame, sweep: str, alg: str) -> pd.DataFrame:
    p = table[(table.kind == "plateau") & (table.algorithm == alg)]
    return p[p.sweeps.str.split(",").apply(lambda s: sweep in s)]


FO_FLOOR = "THEORY.md §5, FO-MAML's floor of order αLσ (the dropped Hessian term)"


def _slope_claim(table, sweep: str, alg: str, x: str, what: str, where: str, bound: float,
                 bound_text: str) -> Check:
    """The floor grows with ``x``: a lower check, against 0, of the fitted slope
    of the per-seed plateaus on ``x`` (its 95% CI); the bound column prints the
    scale ``bound`` of the dropped term (THEORY.md §5), with slope/``bound`` in the note."""
    p = _per_seed(table, sweep, alg)
    f = fit_line(p[x], p.grad_norm)
    s, lo, hi = f["slope"], f["lo"], f["hi"]
    note = (f"slope {s:.3g}: too few points for a CI" if np.isnan(lo) else
            f"95% CI [{lo:.3g}, {hi:.3g}], {len(p)} seed plateaus; slope/{bound_text} = {s / bound:.3g}")
    return Check(f"{LABEL[alg]} floor grows with {what} ({where}): fitted slope of plateau ‖∇F‖ vs {what}",
                 FO_FLOOR, s, 0.0, "lower", lo=lo, hi=hi,
                 context={"algorithm": alg, "sweep": sweep, "bound_text": f"{bound:.4g}", "note": note})


def _excess_claim(table, aL: float) -> list[Check]:
    """FO-MAML's excess over MAML grows with σ(w*): a lower check, against 0, of
    slope(FO-MAML) − slope(MAML) with its 95% CI (the two fits' standard errors
    added in quadrature, ``n₁ + n₂ − 4`` degrees of freedom); the bound column
    prints αL, the dropped term's scale (THEORY.md §5)."""
    p_fo, p_m = _per_seed(table, "sigma", "fomaml"), _per_seed(table, "sigma", "maml")
    if not len(p_m):
        return []
    f1, f2 = fit_line(p_fo.sigma_local, p_fo.grad_norm), fit_line(p_m.sigma_local, p_m.grad_norm)
    ds, se = f1["slope"] - f2["slope"], np.hypot(f1["stderr"], f2["stderr"])
    dof = len(p_fo) + len(p_m) - 4
    half = stats.t.ppf(0.5 + CI / 2, dof) * se if np.isfinite(se) and dof > 0 else np.nan
    note = (f"slope difference {ds:.3g}: too few points for a CI" if np.isnan(half) else
            f"95% CI [{ds - half:.3g}, {ds + half:.3g}]; slope/αL = {ds / aL:.3g}")
    return [Check(f"FO-MAML's excess over MAML (the dropped Hessian term) grows with σ(w*): "
                  f"slope(FO-MAML) − slope(MAML) at αL = {aL:g}", FO_FLOOR,
                  ds, 0.0, "lower", lo=ds - half, hi=ds + half, context={"bound_text": f"{aL:.4g}", "note": note})]


def _vanishing_claim(fo_sig: pd.DataFrame) -> list[Check]:
    """With σ = 0 FO-MAML's floor vanishes (THEORY.md §5): an upper check of the
    plateau at σ(w*) = 0 against ``ZERO_FRACTION`` of the plateau at the largest σ(w*)."""
    zero, top = fo_sig.iloc[0], fo_sig.iloc[-1]
    if not zero.sigma_local < 1e-9 * max(top.sigma_local, 1e-300):
        return []
    return [Check(f"FO-MAML floor → 0 at σ = 0: plateau at σ(w*) = 0 vs "
                  f"{ZERO_FRACTION:.0%} of the plateau at σ(w*) = {top.sigma_local:.3g}",
                  "THEORY.md §5, no floor with identical tasks", float(zero.floor), float(ZERO_FRACTION * top.floor),
                  "upper", context={"note": f"ratio to the largest-σ floor {zero.floor / top.floor:.2g}"})]


def _bound_claims(fl: pd.DataFrame) -> list[Check]:
    """FO-MAML's plateau within each of its bounds in every configuration
    (THEORY.md §5): an upper check of the largest plateau/bound against 1."""
    fo = fl[fl.algorithm == "fomaml"]
    if not len(fo):
        return []
    broken_fo = ", ".join(sorted({n for b in fo.broken for n in b.split(";")})) or "none"
    out = []
    for col, name, eq in (("floor_bound", "FO-MAML floor bound √(14(1+ρασ/L)S′) (§5)", "THEORY.md §5, FO-MAML floor"),
                          ("dropped_bound", "dropped-term bound αL·E_i‖∇f_i(u_i)‖ + αLσ̃/√D_in (§5)",
                           "THEORY.md §5, dropped term")):
        within = int((fo.floor <= fo[col]).sum())
        out.append(Check(f"FO-MAML plateau ≤ {name} in every configuration (max plateau/bound)", eq,
                         float((fo.floor / fo[col]).max()), 1.0, "upper",
                         context={"note": f"within the bound in {within}/{len(fo)} configurations; "
                                          f"broken conditions: {broken_fo}"}))
    return out


def _cost_claims(fl: pd.DataFrame) -> list[Check]:
    """The cost of a step, reported: wall time (measured) beside the
    gradient-oracle calls ``ORACLE_CALLS × B`` (THEORY.md §4–§6); no verdict."""
    out = []
    for alg in ALGORITHMS:
        sub = fl[fl.algorithm == alg]
        if len(sub):
            calls = int(sub.oracle_calls.iloc[0]) // int(sub.B.iloc[0])
            out.append(Check(f"cost per iteration of {LABEL[alg]}: wall time of one step in ms (measured, median "
                             f"over configurations, {int(sub.B.iloc[0])} tasks × seeds batched) beside its "
                             f"gradient-oracle calls per step, {calls} per task × B (bound column)",
                             "THEORY.md §4–§6, oracle calls per step", float(sub.wall_ms_step.median()),
                             int(sub.oracle_calls.iloc[0]), "report",
                             context={"algorithm": alg,
                                      "note": f"not a bound; D_h = {','.join(map(str, sorted(sub.D_h.unique())))}"}))
    return out


def claims(table: pd.DataFrame) -> list[Check]:
    """Shape claims (FO-MAML's floor grows with σ and α, vanishes at σ = 0; its
    excess over MAML grows with σ; HF-MAML tracks MAML), bound checks, and the
    cost of a step, all from the table."""
    fl = _floors(table)
    checks = []
    fo_sig = _sweep(fl, "sigma", "fomaml")
    aL = ALPHA_L_SIGMA
    if len(fo_sig) >= 2:
        checks.append(_slope_claim(table, "sigma", "fomaml", "sigma_local", "σ(w*)", f"αL = {aL:g}", aL, "αL"))
        checks += _excess_claim(table, aL) + _vanishing_claim(fo_sig)
    if len(_sweep(fl, "alpha", "fomaml")) >= 2:
        checks.append(_slope_claim(table, "alpha", "fomaml", "alpha_L", "αL", f"spread {SPREAD_ALPHA:g}",
                                   float(_sweep(fl, "alpha", "fomaml").sigma_local.iloc[0]), "σ(w*)"))
    return checks + _tracking_claim(fl) + _bound_claims(fl) + _cost_claims(fl)


def _tracking_claim(fl: pd.DataFrame) -> list[Check]:
    """HF-MAML tracks MAML (THEORY.md §6): in every configuration with σ(w*) > 0
    its plateau is closer to MAML's than FO-MAML's is, an upper check of the
    largest ratio of the two relative deviations against 1.  The measured and
    bound columns print the largest deviation of HF-MAML and of FO-MAML, in %."""
    keys = ["spread", "alpha_L"]
    piv = fl[fl.sigma_local > 0].pivot_table(index=keys, columns="algorithm", values="floor")
    if not {"maml", "hfmaml", "fomaml"} <= set(piv.columns) or piv.empty:
        return []
    hf = (piv.hfmaml / piv.maml - 1).abs() * 100
    fo = (piv.fomaml / piv.maml - 1).abs() * 100
    closer = int((hf < fo).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        worst = float(np.max((hf / fo).to_numpy()))          # NaN (0/0) propagates: inconclusive
    return [Check("HF-MAML's plateau departs from MAML's less than FO-MAML's does: largest "
                  "|plateau(HF)/plateau(MAML) − 1| in % over σ(w*) > 0, equal steps, the theorem's δ "
                  "(bound column: the same for FO-MAML)", "THEORY.md §6, HF-MAML",
                  worst, 1.0, "upper",
                  context={"measured_text": f"{hf.max():.4g}", "bound_text": f"{fo.max():.4g}",
                           "note": f"HF-MAML closer to MAML than FO-MAML in {closer}/{len(hf)} configurations; "
                                   f"median {hf.median():.0f}% vs {fo.median():.0f}%"})]


# --- figures ------------------------------------------------------------------
def _measured(ax, fl: pd.DataFrame, sweep: str, x: str) -> None:
    """The three plateaus of one sweep, with seed bands, on linear axes."""
    for alg in ALGORITHMS:
        sub = _sweep(fl, sweep, alg)
        if len(sub):
            style.measured_line(ax, sub[x], sub.floor, sub.lo, sub.hi, color=COLOR[alg],
                                label=f"{LABEL[alg]} plateau (10–90% of seeds)")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("plateau of ‖∇F(w_k)‖ (mean over seeds)")


def _fit_overlay(ax, table: pd.DataFrame, sweep: str, x: str) -> None:
    """FO-MAML's least-squares line through its per-seed plateaus, slope and CI in the legend."""
    p = _per_seed(table, sweep, "fomaml")
    if p[x].nunique() < 2:
        return
    f = fit_line(p[x], p.grad_norm)
    s, lo, hi = f["slope"], f["lo"], f["hi"]
    xs = np.sort(p[x].unique())
    icpt = p.grad_norm.mean() - s * p[x].mean()
    ci = f", 95% CI [{lo:.2g}, {hi:.2g}]" if np.isfinite(lo) else ""
    ax.plot(xs, icpt + s * xs, ls=":", color=COLOR["fomaml"], lw=1.4, label=f"FO-MAML fit: slope {s:.2g}{ci}")


def _bounds_panel(ax, fl: pd.DataFrame) -> None:
    """FO-MAML's plateau against the §5 bounds, log scale (σ sweep)."""
    fo = _sweep(fl, "sigma", "fomaml")
    style.measured_line(ax, fo.sigma_local, fo.floor, fo.lo, fo.hi, color=COLOR["fomaml"],
                        label="FO-MAML plateau (10–90% of seeds)")
    style.bound_line(ax, fo.sigma_local, fo.floor_bound, "floor bound √(14(1+ρασ/L)S′) (§5)")
    style.bound_line(ax, fo.sigma_local, fo.dropped_bound, "dropped-term bound with αLσ̃/√D_in (§5)", alpha=0.5)
    ax.plot(fo.sigma_local, fo.dropped_hessian_part, ls=":", color=style.BOUND, lw=1.6,
            label="its Hessian part αL·E_i‖∇f_i(u_i)‖ (§5)")
    ax.set(yscale="log", ylim=(0.3 * fo.floor.min(), None), xlabel="task dissimilarity at w*, σ(w*)",
           ylabel="‖∇F‖ (log scale)", title="FO-MAML against its bounds (σ sweep)")
    ax.legend(loc="lower right", fontsize=7.5)


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Floors against σ(w*) and αL, FO-MAML against its bounds; traces of
    ‖∇F(w_k)‖; cost per iteration."""
    fl = _floors(table)
    paths = []
    n_b = int(fl.B.iloc[0])
    panels = [s for s in ("sigma", "alpha") if _sweep(fl, s, "fomaml").shape[0] >= 2]
    if panels:
        n = len(panels) + ("sigma" in panels)
        fig, axes = style.figure(n, figsize=(5.4 * n, 4.6), squeeze=False)
        for ax, sweep in zip(axes[0], panels):
            x = "sigma_local" if sweep == "sigma" else "alpha_L"
            _measured(ax, fl, sweep, x)
            _fit_overlay(ax, table, sweep, x)
            if sweep == "sigma":
                ax.set(xlabel="task dissimilarity at the stationary point, σ(w*)",
                       title=f"floor vs σ (αL = {ALPHA_L_SIGMA:g}, B = {n_b}, all β_k = 1/(12 L̃))")
            else:
                ax.set(xlabel="inner step αL",
                       title=f"floor vs α (spread {SPREAD_ALPHA:g}, B = {n_b}, all β_k = 1/(12 L̃))")
            ax.legend(loc="upper left", fontsize=7.5)
        if "sigma" in panels:
            _bounds_panel(axes[0][-1], fl)
        paths += style.save(fig, outdir, f"{NAME}_floors")
    paths += _plot_traces(table, outdir)
    paths += _plot_cost(fl, outdir)
    return paths


def _plot_traces(table: pd.DataFrame, outdir: Path) -> list[Path]:
    tr = table[(table.kind == "trace") & table.sweeps.str.contains("sigma")]
    if tr.empty:
        return []
    spreads = sorted(tr.spread.unique())
    picks = [s for s in (spreads[0], spreads[-1])]
    fig, axes = style.figure(len(set(picks)), figsize=(5.6 * len(set(picks)), 4.2), squeeze=False)
    for ax, s in zip(axes[0], dict.fromkeys(picks)):
        for alg in ALGORITHMS:
            sub = tr[(tr.spread == s) & (tr.algorithm == alg)]
            if sub.empty:
                continue
            g = sub.groupby("k").grad_norm
            q = g.quantile([BAND[0], BAND[1]]).unstack()
            style.measured_line(ax, q.index, g.mean(), q[BAND[0]], q[BAND[1]], color=COLOR[alg], marker=None,
                                label=f"{LABEL[alg]} (K = {int(sub.budget.iloc[0])})")
            ax.axvline(sub.window_start.iloc[0], color="0.4", ls=":", lw=1)
        ax.set(yscale="log", xlabel="iterations k", ylabel="‖∇F(w_k)‖ (mean, 10–90% of seeds)",
               title=f"spread {s:g}, σ(w*) = {sub.sigma_local.iloc[0]:.3g}; dotted: plateau window starts")
        ax.legend()
    return style.save(fig, outdir, f"{NAME}_traces")


def _plot_cost(fl: pd.DataFrame, outdir: Path) -> list[Path]:
    cost = fl.groupby("algorithm")[["oracle_calls", "wall_ms_step", "wall_ms_iter_run"]].median()
    cost = cost.reindex([a for a in ALGORITHMS if a in cost.index])
    if cost.empty:
        return []
    fig, axes = style.figure(2, figsize=(9.0, 3.6))
    x = np.arange(len(cost))
    axes[0].bar(x, cost.oracle_calls, color=[COLOR[a] for a in cost.index])
    axes[0].set(ylabel="oracle calls per step", title="gradient-oracle calls per step (per task × B)")
    axes[1].bar(x - 0.2, cost.wall_ms_step, 0.4, color=[COLOR[a] for a in cost.index])
    axes[1].bar(x + 0.2, cost.wall_ms_iter_run, 0.4, color=[COLOR[a] for a in cost.index], alpha=0.45)
    axes[1].set(ylabel="ms per iteration (all seeds)",
                title="wall time, median (dark: outer step; light: runner\niteration incl. exact ‖∇F‖)")
    for ax in axes:
        ax.set_xticks(x, [LABEL[a] for a in cost.index])
        ax.grid(axis="x", visible=False)
    return style.save(fig, outdir, f"{NAME}_cost")
