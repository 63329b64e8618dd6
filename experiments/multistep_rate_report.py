"""The claims and figures of ``multistep_rate`` (see that module's docstring),
computed from its table alone: iterations to ε against N beside the order
bound, (14) at N = 1 and the chain's lower bound, with their verdicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker
from scipy import stats

from mamlcheck import literature as lit
from mamlcheck.theory.checks import Check

from . import style
from .analysis import CI
from .multistep_rate import GROWTH_MAX, NAME, SERIES

__all__ = ["claims", "plot", "grouped_slope", "growth_check", "chain_checks"]


# --- analysis (from the table alone) ---------------------------------------------------
def _k(df: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(df.first_k, errors="coerce").astype(float).to_numpy()


def grouped_slope(x, y, groups, level: float = CI) -> dict:
    """Least squares ``y ≈ a_g + b·x`` with one intercept per group (the seeds and ε
    of a series, so that only the variation with N within a (seed, ε) pair
    enters) and a two-sided t-interval of ``b`` (``n − G − 1`` degrees of
    freedom; groups with one point are dropped; NaN interval without dof)."""
    df = pd.DataFrame({"x": np.asarray(x, float), "y": np.asarray(y, float), "g": list(groups)}).dropna()
    df = df[df.groupby("g").x.transform("size") >= 2]
    G, n = df.g.nunique(), len(df)
    xt = df.x - df.groupby("g").x.transform("mean")
    yt = df.y - df.groupby("g").y.transform("mean")
    sxx, dof = float(np.sum(xt ** 2)), n - G - 1
    b = float(np.sum(xt * yt) / sxx) if sxx > 0 else np.nan
    half = (float(stats.t.ppf(0.5 + level / 2, dof)) * float(np.sqrt(np.sum((yt - b * xt) ** 2) / dof / sxx))
            if dof > 0 and sxx > 0 else np.nan)
    return {"slope": b, "lo": b - half, "hi": b + half, "n": n, "groups": G}


def _avg(sub: pd.DataFrame) -> pd.DataFrame:
    a = sub[sub.kind == "seed average"]
    return a.assign(k=_k(a))


def _per_N(sub: pd.DataFrame, col: str = "k") -> str:
    return ", ".join(f"N={int(n)}: {v:.4g}" if np.isfinite(v) else f"N={int(n)}: not reached"
                     for n, v in zip(sub.N, sub[col].astype(float)))


def _fit_rows(sub: pd.DataFrame) -> pd.DataFrame:
    """A series' rows for its growth fit, with ``k`` and a ``group``: (seed, ε) on the
    benign families, the chain length on the chain; ``N ≥ 2`` for the adaptive rule."""
    chain = (sub.part == "chain").all()
    rows = sub[sub.kind == ("seed average" if chain else "seed")]
    rows = rows.assign(k=_k(rows), group=list(zip(rows["T"].astype(float), rows.series)) if chain
                       else list(zip(rows.seed.astype(float), rows.eps)))
    if (sub.rule == "theorem").all():
        rows = rows[rows.N >= 2]
    return rows


EQ_SHAPE = "THEORY.md §9, (D3): with α = c/(NL) the constants do not depend on N"


def growth_check(sub: pd.DataFrame, label: str, extra: str = "") -> Check:
    """Slope of log k on log N (``grouped_slope``, 95% CI) ≤ ``GROWTH_MAX`` (k ∝ N: 1)."""
    rows = _fit_rows(sub)
    missing, rows = int(rows.k.isna().sum()), rows[rows.k >= 1]
    fit = grouped_slope(np.log(rows.N.astype(float)), np.log(rows.k), rows.group)
    Ns = sorted(int(n) for n in rows.N.unique())
    avg = _avg(sub)
    at = (avg if (sub.part == "chain").all() else avg[avg.eps == avg.eps.min()]).sort_values("N")
    note = (f"95% CI [{fit['lo']:.3f}, {fit['hi']:.3f}]" if np.isfinite(fit["lo"]) else "too few points for a CI")
    note += f"; {fit['n']} first hits in {fit['groups']} groups, N ∈ {{{', '.join(map(str, Ns))}}}"
    if missing:
        note += f"; {missing} not reached within the budget (left out)"
    if len(at):
        note += f"; seed-average k at ε = {at.eps.min():.3g}: {_per_N(at)}"
    note += extra
    return Check(f"{label}: iterations to ‖∇F_N‖ ≤ ε do not grow with N at α = 1/(6NL): slope of log k on log N "
                 f"≤ {GROWTH_MAX:g} (N ≥ {min(Ns) if Ns else '?'})", EQ_SHAPE,
                 fit["slope"], GROWTH_MAX, "upper", lo=fit["lo"], hi=fit["hi"],
                 context={"series": label, "note": note})


def first_step_report(sub: pd.DataFrame, label: str) -> list[Check]:
    """The drop from N = 1 to N = 2 beside the ratio of the mean steps (module docstring)."""
    avg = _avg(sub)
    one, two = avg[avg.N == 1].set_index("eps"), avg[avg.N == 2].set_index("eps")
    both = one.index.intersection(two.index)
    if not len(both):
        return []
    rk = (one.k[both] / two.k[both]).to_numpy(float)
    rb = (two.beta_mean[both] / one.beta_mean[both]).to_numpy(float)
    if not np.isfinite(rk).any():
        return []
    return [Check(f"{label}: iterations at N = 1 over N = 2 (median over ε), beside the ratio of the mean steps "
                  f"β̄(N=2)/β̄(N=1) (bound column): the step rule divides by 4L + 2ραm at N = 1 and by (D2) for N > 1",
                  "THEORY.md §3 (one-step L(w)), §9 (D2)", float(np.nanmedian(rk)), float(np.nanmedian(rb)), "report",
                  context={"series": label, "note": "ratios per ε: iterations " + ", ".join(f"{x:.3g}" for x in rk)
                           + "; steps " + ", ".join(f"{x:.3g}" for x in rb)})]


def constant_report(sub: pd.DataFrame, label: str) -> Check:
    """``C = k·ε²/(Δ·L̄)``, largest over N and ε (seed average), reported beside (14)'s 1600."""
    avg = _avg(sub)
    per = avg.groupby("N").C_suff.max().reset_index()
    src = " / ".join(dict.fromkeys(avg.sort_values("N").L_bar_source))
    return Check(f"{label}: the constant that sufficed, k·ε²/(Δ·L̄) (largest over N and ε), against the one-step "
                 "theorem's 1600 of (14)", "THEORY.md §9 (order Δ·L̄/ε², constant not published); (14)",
                 float(per.C_suff.max()), lit.DECREASE_DEN, "report",
                 context={"series": label, "measured_text": f"{per.C_suff.max():.3g}",
                          "note": f"per N: {_per_N(per, 'C_suff')}; L̄ = {src}"})


def upper14_check(sub: pd.DataFrame, label: str) -> list[Check]:
    """At N = 1 where the first theorem applies: largest k/(14) ≤ 1 (an ε not
    reached within the budget gives ``[budget/(14), ∞)``)."""
    one = _avg(sub)
    one = one[(one.N == 1) & one.upper14.notna() & (one.conditions_broken == "none") & (one.eps >= one.floor14)]
    if one.empty:
        return []
    up, reached = one.upper14.to_numpy(float), np.isfinite(one.k.to_numpy())
    ratio = np.where(reached, one.k.to_numpy() / up, np.nan)
    lo, hi = np.where(reached, ratio, one.budget.to_numpy(float) / up), np.where(reached, ratio, np.inf)
    return [Check(f"{label}: at N = 1 the first k with seed-mean ‖∇F‖ ≤ ε is at most (14) at every ε "
                  "(largest ratio measured/(14))", "(14), THEORY.md §4",
                  float(np.nanmax(ratio)) if reached.any() else float("nan"), 1.0, "upper",
                  lo=float(np.max(lo)), hi=float(np.max(hi)),
                  context={"series": label, "bound_text": "ratio ≤ 1",
                           "note": f"(14) = {up.min():.3g} … {up.max():.3g} over ε; {int(reached.sum())}/{len(one)} ε reached"})]


def conditions_check(table: pd.DataFrame) -> Check:
    """Runs at the theorem's steps with a broken condition ≤ 0 (constant-step chain runs not counted)."""
    runs = table[table.rule == "theorem"].drop_duplicates(["series", "family", "N", "T"])
    bad = runs[runs.conditions_broken != "none"]
    names = "; ".join(f"{r.family} {r.series} N={r.N}: {r.conditions_broken}" for r in bad.itertuples())
    theorems = ", ".join(sorted(runs.theorem.unique()))
    return Check("every run at the theorem's step sizes meets every condition of its theorem "
                 "(α ≤ 1/(6NL), step rule, B ≥ 20, D_h, B′, D_β): runs with a broken condition",
                 "theory.conditions, THEORY.md §4 (N = 1) and §9 (N > 1)", len(bad), 0, "upper",
                 context={"note": (names or f"all {len(runs)} runs within their theorem") + f"; theorems: {theorems}"})


def chain_checks(table: pd.DataFrame) -> list[Check]:
    """The lower bound ⌊T(ε′)/(N+1)⌋ per run, the certificate ``β·L_N(w_k) ≤ 1``,
    growth with N and the sufficing constant."""
    ch = table[table.part == "chain"]
    out = []
    for r in ch.sort_values(["series", "T", "N"]).itertuples():
        reached = not pd.isna(r.first_k)
        k = float(r.first_k) if reached else float(r.budget)
        T, N = int(r.T), int(r.N)
        out.append(Check(f"hard chain T = {T}, N = {N} ({SERIES[r.series]}): first k with ‖∇F_N‖ ≤ ε "
                         f"≥ ⌊T(ε′)/(N+1)⌋", "theory.floors.chain_lower_bound_iterations; THEORY.md §7, §9",
                         k if reached else float("nan"), float(r.lower), "lower", lo=k,
                         hi=k if reached else float("inf"),
                         context={"series": r.series, "T": T, "N": N,
                                  "note": (f"measured/bound = {k / r.lower:.0f}" if reached and r.lower > 0 else
                                           "bound 0: no information" if r.lower == 0 else
                                           f"not reached within {r.budget} iterations")}))
    const = ch[ch.rule == "constant"]
    if len(const):
        out.append(Check("hard chain: the constant step β = 1/(2L) stays ≤ 1/L_N(w_k) along every run "
                         "(largest β·L_N(w_k), (D2) with ‖∇f‖ ≤ ‖∇F_N‖/(1 − αL)^{2N}, (D7))",
                         "THEORY.md §9 (D2), (D7)", float(const.beta_L_max.max()), 1.0, "upper",
                         context={"note": f"outside the theorem by design: {const.conditions_broken.iloc[0]}"}))
    for (series, T), sub in ch.groupby(["series", "T"], sort=True):
        sub = sub.sort_values("N")
        label = f"hard chain T = {int(T)} ({SERIES[series]})"
        lows = ", ".join(f"N={int(r.N)}: {int(r.lower)}" for r in sub.itertuples())
        out += [growth_check(sub, label, f"; lower bound ⌊T/(N+1)⌋: {lows}"), constant_report(sub, label)]
    return out


def claims(table: pd.DataFrame) -> list[Check]:
    """Conditions; per benign family and series: growth with N, the N = 1 drop, (14),
    the sufficing constant; then ``chain_checks``."""
    checks = [conditions_check(table)] if (table.rule == "theorem").any() else []
    for (fam, series), sub in table[table.part == "benign"].groupby(["family", "series"], sort=False):
        label = f"{fam}, {SERIES[series]}"
        checks += [growth_check(sub, label), *first_step_report(sub, label), *upper14_check(sub, label),
                   constant_report(sub, label)]
    return checks + chain_checks(table)


# --- figures ---------------------------------------------------------------------
def _n_axis(ax, Ns) -> None:
    """Log axes, x ticked at the grid's N, y with plain labels (mathtext is slow to draw)."""
    ax.set_xscale("log")
    ax.set_xticks(list(Ns), [str(int(n)) for n in Ns])
    ax.set_yscale("log")
    ax.minorticks_off()
    lo, hi = ax.get_ylim()
    decades = np.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0) if decades < 3 else (1.0,)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """``multistep_rate``: per benign family, iterations against N per ε (seed band)
    and the sufficing constant beside 1600; ``multistep_rate_chain``: the chain's
    iterations and ⌊T(ε′)/(N+1)⌋ against N, and their ratio."""
    ben, ch, paths = table[table.part == "benign"], table[table.part == "chain"], []
    fams = list(dict.fromkeys(ben.family))
    if fams:
        fig, axes = style.figure(len(fams), 3, figsize=(6.2 * len(fams), 13.0), squeeze=False)
        for j, fam in enumerate(fams):
            for i, series in enumerate(("exact", "maml")):
                ax, sub = axes[i][j], ben[(ben.family == fam) & (ben.series == series)]
                per = sub[sub.kind == "seed"].assign(k=lambda d: _k(d)).groupby(["eps", "N"]).k
                band, avg = pd.DataFrame({"lo": per.min(), "hi": per.max()}), _avg(sub)
                for c, eps in enumerate(sorted(avg.eps.unique(), reverse=True)):
                    a = avg[avg.eps == eps].sort_values("N")
                    b = band.loc[eps].reindex(a.N)
                    style.measured_line(ax, a.N, a.k, b.lo.to_numpy(), b.hi.to_numpy(), label=f"ε = {eps:.3g}",
                                        color=style.ALT[c % len(style.ALT)])
                ax.axvspan(0.92, 1.08, color="0.88", zorder=0, lw=0)
                _n_axis(ax, sorted(sub.N.unique()))
                ax.set(xlabel="inner steps N (α = 1/(6NL))", ylabel="iterations k")
                ax.set_title(f"{fam}: {SERIES[series]}\nfirst k with seed-mean ‖∇F_N‖ ≤ ε "
                             f"(band: min–max of {int(sub.seeds.iloc[0])} seeds)", fontsize=9.5)
                ax.legend(fontsize=7.5, title="grey: N = 1, β_k with the one-step L(w)", title_fontsize=7.5)
            ax = axes[2][j]
            for c, series in enumerate(("exact", "maml")):
                per = _avg(ben[(ben.family == fam) & (ben.series == series)]).groupby("N").C_suff.max()
                style.measured_line(ax, per.index, per.values, color=style.ALT[c],
                                    label=f"{SERIES[series]}: largest k·ε²/(Δ·L̄) over ε (seed average)")
            ax.axhline(lit.DECREASE_DEN, color=style.BOUND, ls="--", lw=1.4, label="1600, the constant of (14)")
            _n_axis(ax, sorted(ben[ben.family == fam].N.unique()))
            ax.set(xlabel="inner steps N", ylabel="k·ε²/(Δ·L̄)")
            ax.set_title(f"{fam}: the constant that sufficed, k·ε²/(Δ·L̄)\n"
                         "(L̄: the largest smoothness the step rule divided by before the hit)", fontsize=9.5)
            style.legend_below(ax, fontsize=7.5, gap=0.14)
        paths += style.save(fig, outdir, NAME)
    if len(ch):
        fig, (ax, ax_r) = style.figure(2, figsize=(13.0, 5.4))
        for c, ((series, T), sub) in enumerate(ch.groupby(["series", "T"], sort=True)):
            sub, T, color = sub.sort_values("N").assign(k=lambda d: _k(d)), int(T), style.ALT[c % len(style.ALT)]
            pos = sub[sub.lower > 0].assign(lower=lambda d: d.lower.astype(float))
            style.measured_line(ax, sub.N, sub.k, color=color, label=f"measured, T = {T}: {SERIES[series]}")
            style.bound_line(ax, pos.N, pos.lower, f"lower bound ⌊T(ε′)/(N+1)⌋, T = {T}", lower=True)
            ax.plot(sub.N, float(sub.lower.iloc[0]) * (sub.N.iloc[0] + 1.0) / (sub.N + 1.0), ls=":", lw=1.1,
                    color=style.REFERENCE, label=f"its first value × (N₀+1)/(N+1): the 1/(N+1) fall, T = {T}")
            ax_r.plot(pos.N, pos.k / pos.lower, color=color, marker="o", ms=4, label=f"measured / ⌊T(ε′)/(N+1)⌋, T = {T}")
        for a in (ax, ax_r):
            _n_axis(a, sorted(ch.N.unique()))
        ax.set(xlabel="inner steps N (α = 1/(6NL))", ylabel="iterations k")
        ax.set_title("Hard chain (Δ = 1, L = 1, one task; one chain per T for all N):\n"
                     "first k with ‖∇F_N‖ ≤ ε_N = (1−αL)^N ε′ and the zero-respecting bound", fontsize=9.5)
        ax_r.set(xlabel="inner steps N", ylabel="measured / lower bound")
        ax_r.set_title("Measured over the lower bound ⌊T(ε′)/(N+1)⌋\n(N with bound 0 omitted)", fontsize=9.5)
        for a in (ax, ax_r):
            style.legend_below(a, fontsize=7.5, gap=0.14)
        paths += style.save(fig, outdir, f"{NAME}_chain")
    return paths
