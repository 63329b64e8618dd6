"""The claims and figures of ``multistep_alpha`` (see that module's docstring),
computed from its table alone: the measured smoothness, moments and iterations
beside the N-step bounds of THEORY.md §9, with their verdicts."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mamlcheck.theory.checks import Check

from . import style
from .analysis import CI, fit_line
from .multistep_alpha import BATCH, CN, FALSE_ALARM, FD_RTOL, H_REL, LABELS, NAME, N_FIT_MIN, SADDLE_RTOL

__all__ = ["claims", "plot"]


# --- analysis (from the table alone) ---------------------------------------------------
D2 = "THEORY.md §9 (D2)"
D3 = "THEORY.md §9 (D3)"
D5 = "THEORY.md §9 (D5)"
D6 = "THEORY.md §9 (D6)"
D0 = "THEORY.md §9 (D0) at a common stationary point"
MS = "THEORY.md §9, provenance and the theorem as the suite checks it (α ∝ 1/N; iterations flat in N at α = c/(NL))"


def _bool(s: pd.Series) -> pd.Series:
    """A boolean column, also after a round trip through CSV."""
    return s.astype(str).str.lower().isin(("true", "1"))


def _part(table: pd.DataFrame, kind: str, variant: str | None = None) -> pd.DataFrame:
    t = table[table.kind == kind]
    return t if variant is None else t[t.variant == variant]


def _variants(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table.variant))


def _label(variant: str) -> str:
    return LABELS.get(variant, variant)


def _slope(x, y) -> dict:
    """OLS slope of ``y`` on ``x`` with its 95% t-interval (NaN with fewer than three points or one x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.unique(x).size < 2:
        return {"slope": float("nan"), "lo": float("nan"), "hi": float("nan"), "stderr": float("nan"), "n": x.size}
    return fit_line(x, y)


def smoothness_checks(t: pd.DataFrame, variant: str) -> list[Check]:
    """(D2) at every (schedule, N, point); (D3)'s N-uniform bracket at ``α = c/(NL)``."""
    out, lab = [], _label(variant)
    for sched, g in t.groupby("schedule", sort=False):
        q = g.ratio / g.bound
        bad = int((q > 1 + FD_RTOL).sum())
        out.append(Check(
            f"{lab}, {sched}: ‖∇F_N(w) − ∇F_N(w′)‖/‖w − w′‖ ≤ L_N(w, w′) at every N and point (max ratio/bound)",
            D2, float(q.max()), 1.0, "upper", tol=FD_RTOL,
            context={"variant": variant, "schedule": sched,
                     "note": f"{len(q) - bad}/{len(q)} (N, point) pairs within, N = {g.N.min()}…{g.N.max()}; "
                             f"ratio/bound in [{q.min():.2g}, {q.max():.2g}]"}))
    for sched, g in t[_bool(t.fixed)].groupby("schedule", sort=False):
        top = g.groupby("N").ratio.max()
        f = _slope(top.index, np.log(top.values))
        aL = float(g.alpha_L.iloc[0])
        ref = g[_bool(g.reference) & g.saddle_norm.notna()]
        exact = (f"; at the saddle the exact slope is {_slope(ref.N, np.log(ref.saddle_norm))['slope']:.4g}, "
                 f"and its limit 2 log max_λ abs(1 − αλ) = {2 * math.log(float(ref.saddle_factor.iloc[0])):.4g}"
                 if len(ref) else "")
        out.append(Check(
            f"{lab}, {sched}: growth rate of log max-over-points ratio per inner step (OLS on N) beside the "
            f"2 log(1+αL) of (D2)'s q^{{2N}}", D2, f["slope"], 2 * math.log1p(aL), "report", lo=f["lo"], hi=f["hi"],
            context={"variant": variant, "schedule": sched, "bound_text": f"{2 * math.log1p(aL):.4g}",
                     "note": f"95% CI [{f['lo']:.4g}, {f['hi']:.4g}]; log(1+αL) = {math.log1p(aL):.4g}{exact}"}))
    cn = t[~_bool(t.fixed)]
    if len(cn):
        q = cn.ratio / cn.bound_uniform
        out.append(Check(
            f"{lab}, {CN}: ratio ≤ e^{{2c}}L + (ρ/L)e^{{2c}}(e^c − 1)E_i‖∇f_i‖, the same for every N (max ratio/bound)",
            D3, float(q.max()), 1.0, "upper", tol=FD_RTOL,
            context={"variant": variant, "schedule": CN,
                     "note": f"N = {cn.N.min()}…{cn.N.max()}, c = {cn.c.iloc[0]:.4g}; max ratio "
                             f"{cn.ratio.max():.4g} at N = {int(cn.N[cn.ratio.idxmax()])}"}))
    return out


def saddle_checks(t: pd.DataFrame, variant: str) -> list[Check]:
    """At the common saddle ``w°``: the exact ``‖∇²F_N(w°)‖`` (D0); the ``2N``
    exponent of (D2) needed (a ``q^N`` bound exceeded); the (D3) bracket at
    ``α = c/(NL)``; the growth rate at fixed α (reported)."""
    ref = t[_bool(t.reference) & t.saddle_norm.notna()]
    if ref.empty:
        return []
    lab, out = _label(variant), []
    err = (ref.hess_norm / ref.saddle_norm - 1).abs()
    out.append(Check(
        f"{lab}: the measured ‖∇²F_N(w°)‖ equals max_λ abs(1 − αλ)^{{2N}}·abs(λ) at every N and α (max relative error)",
        D0, float(err.max()), SADDLE_RTOL, "upper",
        context={"variant": variant, "note": f"{len(ref)} (schedule, N); central differences, h = {H_REL:g}"}))
    for sched, g in ref[_bool(ref.fixed)].groupby("schedule", sort=False):
        over = g.ratio / g.bound_qN
        n_over = int((over > 1).sum())
        out.append(Check(
            f"{lab}, {sched}: the exponent 2N of (D2) is needed: the ratio at w° exceeds the (1+αL)^N version "
            f"q^N L + (ρ/L)q^{{N−1}}(q^N − 1)E_i‖∇f_i‖ at some N (max ratio/that bound)",
            D2, float(over.max()), 1.0, "lower",
            context={"variant": variant, "schedule": sched,
                     "note": f"exceeded at {n_over} of {len(g)} N (first at N = "
                             f"{int(g.N[over > 1].min()) if n_over else '—'}); ratio/(D2 bound) at N = {g.N.max()}: "
                             f"{float(g.ratio.iloc[-1] / g.bound.iloc[-1]):.3g}"}))
    cn = ref[~_bool(ref.fixed)]
    if len(cn):
        c, lam = float(cn.c.iloc[0]), float(cn.saddle_Lambda.iloc[0])
        lo_b, hi_b = (1 - c) ** 2 * lam, math.exp(2 * c) * lam
        out.append(Check(
            f"{lab}, {CN}: ratio(w°) stays in [(1 − c)²Λ, e^{{2c}}Λ] for every N (range over N)",
            D3, float(cn.ratio.max()), hi_b, "within", lo=float(cn.ratio.min()), hi=float(cn.ratio.max()),
            bound_lo=lo_b, tol=FD_RTOL * hi_b,
            context={"variant": variant, "schedule": CN,
                     "measured_text": f"[{cn.ratio.min():.4g}, {cn.ratio.max():.4g}]",
                     "bound_text": f"[{lo_b:.4g}, {hi_b:.4g}]",
                     "note": f"N = {cn.N.min()}…{cn.N.max()}, max/min over N = {cn.ratio.max() / cn.ratio.min():.3g} "
                             f"(bracket allows {hi_b / lo_b:.3g}); Λ = max abs(λ(∇²f(w°))) = {lam:.3g}"}))
    return out


def moment_checks(t: pd.DataFrame, variant: str) -> list[Check]:
    """(D5), (D6) at every (schedule, N) on the upper end of the ``1 − δ``
    interval; the N-uniform (D6) at ``α = c/(NL)``; growth at fixed α reported."""
    out, lab = [], _label(variant)
    level = style.confidence_text(FALSE_ALARM)
    for col, bcol, what, eq in (("bias", "bias_bound", "‖E G^N − ∇F_N‖", D5),
                                ("second", "second_bound", "E‖G^N‖²", D6)):
        for sched, g in t.groupby("schedule", sort=False):
            r, r_hi, r_lo = g[col] / g[bcol], g[f"{col}_hi"] / g[bcol], g[f"{col}_lo"] / g[bcol]
            out.append(Check(f"{lab}, {sched}: {what} ≤ its bound at every N (max measured/bound)", eq,
                             float(r.max()), 1.0, "upper", lo=float(r_lo.max()), hi=float(r_hi.max()),
                             context={"variant": variant, "schedule": sched,
                                      "note": f"upper ends of the {level} per N; N = {g.N.min()}…{g.N.max()}; "
                                              f"measured/bound in [{r.min():.2g}, {r.max():.2g}]; "
                                              f"{int(g.draws.iloc[0])} draws per task"}))
    cn = t[~_bool(t.fixed)]
    if len(cn):
        r = cn.second / cn.second_bound_uniform
        out.append(Check(f"{lab}, {CN}: E‖G^N‖² ≤ the N-uniform form of (D6) at every N (max measured/bound)", D6,
                         float(r.max()), 1.0, "upper", lo=float((cn.second_lo / cn.second_bound_uniform).max()),
                         hi=float((cn.second_hi / cn.second_bound_uniform).max()),
                         context={"variant": variant, "schedule": CN,
                                  "note": f"bound {cn.second_bound_uniform.iloc[0]:.4g} for every N; measured "
                                          f"{cn.second.min():.4g}…{cn.second.max():.4g} over N = "
                                          f"{cn.N.min()}…{cn.N.max()}"}))
    for sched, g in t[_bool(t.fixed)].groupby("schedule", sort=False):
        f = _slope(g.N, np.log(g.second))
        k = float(np.log(g.kappa_h.iloc[0]))
        fb = _slope(g.N, np.log(g.bias))
        out.append(Check(f"{lab}, {sched}: growth rate of log E‖G^N‖² per inner step (OLS on N) beside log κ_h "
                         f"of (D6)", D6, f["slope"], k, "report", lo=f["lo"], hi=f["hi"],
                         context={"variant": variant, "schedule": sched,
                                  "note": f"95% CI [{f['lo']:.4g}, {f['hi']:.4g}]; bias: slope {fb['slope']:.4g} "
                                          f"[{fb['lo']:.4g}, {fb['hi']:.4g}] beside log(1+αL) = "
                                          f"{math.log1p(float(g.alpha_L.iloc[0])):.4g} ((D5): ~q^{{2N}})"}))
    return out


def _censored_k(g: pd.DataFrame) -> np.ndarray:
    """First hits per seed, a censored seed at ``budget + 1`` (a lower bound on its hit)."""
    return np.where(g.first_k.notna(), g.first_k, g.budget + 1).astype(float)


def iteration_slopes(t: pd.DataFrame) -> dict[str, dict]:
    """Per schedule: OLS slope of log(first hit per seed) on ``N`` over ``N ≥ N_FIT_MIN``.

    A seed not at ``ε`` within the budget counts at ``budget + 1``, below its true
    hit: censored runs at the larger ``N`` only pull the slope down (a lower
    bound, fine for a claim that it is positive), but censored runs at the
    smallest ``N`` leave nothing to compare with, so the interval is then
    unknown (NaN: inconclusive).  ``censored_low`` flags that case."""
    out = {}
    for sched, g in t.groupby("schedule", sort=False):
        g = g[g.N >= N_FIT_MIN]
        f = _slope(g.N, np.log(np.maximum(_censored_k(g), 1.0)))
        low = bool(len(g)) and bool(g[g.N == g.N.min()].first_k.isna().any())
        if low:
            f = {**f, "lo": float("nan"), "hi": float("nan"), "stderr": float("nan")}
        out[sched] = {**f, "censored": int(g.first_k.isna().sum()), "censored_low": low,
                      "fixed": bool(_bool(g.fixed).all()) if len(g) else None}
    return out


def _k_text(t: pd.DataFrame) -> str:
    parts = []
    for sched, g in t.groupby("schedule", sort=False):
        ks = ", ".join(f"N={N}: " + (f"{m:.0f}" if np.isfinite(m) else f">{int(gg.budget.iloc[0])}")
                       for N, gg in g.groupby("N") for m in [float(gg.mean_first_k.iloc[0])])
        parts.append(f"{sched}: {ks}")
    return "; ".join(parts)


def run_checks(t: pd.DataFrame, variant: str) -> list[Check]:
    """Iterations to ε: grow at fixed α (slope > 0); grow faster at fixed α than
    at ``α = c/(NL)``; the slope at ``α = c/(NL)`` reported beside 0."""
    if t.empty:
        return []
    lab, out = _label(variant), []
    sl = iteration_slopes(t)
    ks = _k_text(t)
    cn = sl.get(CN)
    for sched, f in sl.items():
        if not f["fixed"]:
            continue
        lq = math.log1p(float(t[t.schedule == sched].alpha_L.iloc[0]))
        note = (f"95% CI [{f['lo']:.3g}, {f['hi']:.3g}] over N ≥ {N_FIT_MIN}, {f['n']} seed runs, "
                f"{f['censored']} censored at the budget (counted at budget + 1); beside 2 log(1+αL) = {2 * lq:.3g} "
                f"and 3 log(1+αL) = {3 * lq:.3g} (the growth of (D2)'s ρ-term, in the step rule); "
                f"seed-average first hits: {ks}")
        out.append(Check(f"{lab}, {sched}: iterations of MAML (β_k = 1/(12 L̃_N)) to ‖∇F_N‖ ≤ ε grow with N "
                         f"(slope of log k on N)", MS, f["slope"], 0.0, "lower", lo=f["lo"], hi=f["hi"],
                         context={"variant": variant, "schedule": sched, "note": note}))
        if cn is not None:
            # a censored run at α = c/(NL) would bias its slope down, the difference up: no interval then
            diff = f["slope"] - cn["slope"]
            half = (stats.norm.ppf(0.5 + CI / 2) * math.hypot(f["stderr"], cn["stderr"]) if not cn["censored"]
                    else float("nan"))
            out.append(Check(f"{lab}: iterations grow faster in N at {sched} than at {CN} (difference of the slopes "
                             f"of log k on N)", MS, diff, 0.0, "lower", lo=diff - half, hi=diff + half,
                             context={"variant": variant,
                                      "note": f"95% CI [{diff - half:.3g}, {diff + half:.3g}] (normal, both "
                                              f"fits' standard errors); slopes {f['slope']:.3g} vs {cn['slope']:.3g}"}))
    if cn is not None:
        out.append(Check(f"{lab}, {CN}: slope of log k on N (N ≥ {N_FIT_MIN}), beside 0 (no growth)", MS,
                         cn["slope"], 0.0, "report", lo=cn["lo"], hi=cn["hi"],
                         context={"variant": variant, "schedule": CN,
                                  "note": f"95% CI [{cn['lo']:.3g}, {cn['hi']:.3g}], {cn['censored']} censored; "
                                          f"N = 1 uses the one-step rule 4L + 2ραE‖∇̃f‖ (slower); {ks}"}))
    return out


def claims(table: pd.DataFrame) -> list[Check]:
    """Per family: smoothness (D2), (D3) and, at the saddle, (D0) and the ``2N``
    exponent; bias (D5) and second moment (D6); iterations at fixed α against
    ``α = c/(NL)`` (THEORY.md §9)."""
    checks = []
    for v in _variants(table):
        s = _part(table, "smoothness", v)
        checks += smoothness_checks(s, v) + saddle_checks(s, v)
        checks += moment_checks(_part(table, "moments", v), v)
        checks += run_checks(_part(table, "runs", v), v)
    return checks


# --- figures ------------------------------------------------------------------------------
def _colors(table: pd.DataFrame) -> dict:
    scheds = list(dict.fromkeys(table.schedule))
    return {s: style.ALT[j % len(style.ALT)] for j, s in enumerate(scheds)}


def _smooth_panel(ax, t: pd.DataFrame, colors: dict) -> None:
    for sched, g in t.groupby("schedule", sort=False):
        col = colors[sched]
        ref = g[_bool(g.reference)].sort_values("N")
        per = g.groupby("N").ratio
        style.measured_line(ax, ref.N, ref.ratio, per.min().values, per.max().values, color=col,
                            label=f"{sched}: ratio at the reference point (band: all points)")
        ax.plot(ref.N, ref.bound, ls="--", color=col, lw=1.4)
        if _bool(g.fixed).all():
            q = 1 + float(g.alpha_L.iloc[0])
            L = float(g.L.iloc[0])
            ax.plot(ref.N, q ** (2 * ref.N) * L, ls=":", color=col, lw=1.2, label=f"{sched}: (1+αL)^{{2N}}L")
            ax.plot(ref.N, q ** ref.N * L, ls="-.", color=col, lw=1.0, alpha=0.7, label=f"{sched}: (1+αL)^N L")
        else:
            ax.plot(ref.N, ref.bound_uniform, ls=":", color=col, lw=1.2, label=f"{sched}: N-uniform (D3)")
    ax.plot([], [], ls="--", color="0.3", label="L_N(w, w′) of (D2) at the reference point (dashed)")
    ax.set(yscale="log", xlabel="inner steps N", ylabel="‖∇F_N(w) − ∇F_N(w′)‖ / ‖w − w′‖")
    ax.legend(fontsize=6.5, loc="upper left")


def _moment_panel(ax, t: pd.DataFrame, col: str, colors: dict) -> None:
    for sched, g in t.groupby("schedule", sort=False):
        g = g.sort_values("N")
        c = colors[sched]
        style.measured_line(ax, g.N, g[col], color=c, label=f"{sched}: Monte Carlo estimate")
        ax.plot(g.N, g[f"{col}_hi"], ls="none", marker="^", ms=4, color=c, alpha=0.7,
                label=f"{sched}: upper end of the {style.confidence_text(FALSE_ALARM)} (checked)")
        ax.plot(g.N, g[f"{col}_bound"], ls="--", color=c, lw=1.4, label=f"{sched}: bound")
        if _bool(g.fixed).all():
            q, y0 = 1 + float(g.alpha_L.iloc[0]), float(g[col].iloc[0])
            for k, ls in ((1, "-."), (2, ":")):
                ax.plot(g.N, y0 * q ** (k * (g.N - g.N.iloc[0])), ls=ls, color=style.REFERENCE, lw=1.0,
                        label=f"{sched}: ∝ (1+αL)^{{{'' if k == 1 else '2'}N}} from the first N")
        if col == "second" and not _bool(g.fixed).all():
            ax.plot(g.N, g.second_bound_uniform, ls=":", color=c, lw=1.2, label=f"{sched}: N-uniform (D6)")
    ax.set(yscale="log", xlabel="inner steps N")
    ax.legend(fontsize=6.5, loc="upper left")


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Smoothness against N per family; bias and second moment against N; iterations to ε against N."""
    colors = _colors(table)
    variants = _variants(table)
    paths = []
    fig, axes = style.figure(len(variants), figsize=(6.0 * len(variants), 4.8), squeeze=False)
    for ax, v in zip(axes[0], variants):
        _smooth_panel(ax, _part(table, "smoothness", v), colors)
        t = _part(table, "smoothness", v)
        ax.set_title(f"{_label(v)}\nL = {t.L.iloc[0]:.3g}, ρ = {t.rho.iloc[0]:.3g}", fontsize=9)
    paths += style.save(fig, outdir, f"{NAME}_smoothness")

    fig, axes = style.figure(len(variants), 2, figsize=(6.0 * len(variants), 8.4), squeeze=False)
    for j, v in enumerate(variants):
        t = _part(table, "moments", v)
        _moment_panel(axes[0][j], t, "bias", colors)
        axes[0][j].set(ylabel="‖E G^N − ∇F_N‖ (bound: (D5))", title=_label(v))
        _moment_panel(axes[1][j], t, "second", colors)
        axes[1][j].set(ylabel="E‖G^N‖² (bound: (D6))")
    paths += style.save(fig, outdir, f"{NAME}_moments")

    runs = table[table.kind == "runs"]
    if len(runs):
        fig, ax = style.figure()
        for sched, g in runs.groupby("schedule", sort=False):
            k = g.assign(k=_censored_k(g)).groupby("N").k
            c = colors[sched]
            style.measured_line(ax, k.mean().index, k.mean().values, k.min().values, k.max().values, color=c,
                                label=f"{sched} (seed mean, min–max)")
            cens = g[g.first_k.isna()]
            if len(cens):
                ax.scatter(cens.N, cens.budget, marker="^", color=c, zorder=5,
                           label=f"{sched}: not reached within the budget")
        ax.set(yscale="log", xlabel="inner steps N", ylabel=f"iterations to ‖∇F_N‖ ≤ {runs.eps.iloc[0]:g}",
               title=f"MAML, β_k = 1/(12 L̃_N(w_k)), B = {BATCH['B']}, unit batches\n{_label(runs.variant.iloc[0])}")
        ax.legend(fontsize=7.5)
        paths += style.save(fig, outdir, f"{NAME}_iterations")
    return paths
