"""How loose is each constant of the bounds? ``python -m mamlcheck slack``.

Every lemma and moment bound of THEORY.md §3–§6 is evaluated on many drawn
instances (family × parameters × point ``w`` × hyperparameters inside the MAML
theorem's conditions), with the left side computed *exactly* wherever the
family allows, and each constant of the right side is reported by its
*slack*: the stated constant over the smallest value that would still have
held on that draw (for a lower bound, the other way round), so 1 means the
bound is tight and below 1 means it is violated.  The property tests
(``tests/test_properties.py``) assert the same checks; ``tests/strategies.py``
wraps the samplers as hypothesis strategies, so tests and report draw from
one definition of the parameter ranges.

The parts, one module each (all their names are importable from here):

* ``slack_draws``: the samplers (``Source``, ``NumpySource``;
  ``draw_family``, ``draw_point``, ``draw_pair``, ``draw_constants``,
  ``draw_hyper``, ``breakable``, ``draw_case``), written against two
  primitive draws so that numpy (this report) and hypothesis (the tests)
  drive the same code.
* ``slack_moments``: the exact moments of the stochastic meta-gradient (6)
  (``inner_mean``, ``outer_second``, ``hess_factor``, ``moments``), from the
  laws the families declare (``problems.base.CAPABILITIES``).
* ``slack_checks``: the checks (``check_*``), each a ``theory.checks.Check``
  whose bound is split into its terms; the step-size lemma is the one Monte
  Carlo check, with an empirical-Bernstein interval at false-alarm rate
  ``MC_DELTA``.
* here, the report: ``compute`` (tidy table, one row per draw × constant),
  ``summary``, ``plot``, ``markdown`` (its section of ``figures/REPORT.md``, through
  the registered experiment ``slack_report``) and the CLI.
"""
from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import matplotlib.lines
import matplotlib.patches
import numpy as np
import pandas as pd

from . import style
from .inputs import check_int, check_output_folder
from .slack_checks import (MC_DELTA, MC_SAMPLES, PHIS, Check, all_checks, check_bias, check_first_moment,
                           check_fomaml_bias, check_hf_difference, check_maml_bias, check_second_moment,
                           check_second_moment_lemma, check_smoothness, check_step_size, fmt_const, passes)
from .slack_draws import (BREAKABLE, FAMILY_SPECS, Case, NumpySource, Rejected, Source, breakable, draw_case,
                          draw_constants, draw_family, draw_hyper, draw_pair, draw_point, family_names)
from .slack_moments import Moments, hess_factor, hessian_matrix, inner_mean, moments, outer_second

__all__ = [
    "Source", "NumpySource", "Rejected", "FAMILY_SPECS", "family_names", "draw_family", "draw_point",
    "draw_pair", "draw_constants", "breakable", "draw_hyper", "Case", "draw_case", "BREAKABLE",
    "inner_mean", "outer_second", "hess_factor", "hessian_matrix", "Moments", "moments", "Check", "passes",
    "check_first_moment", "check_second_moment", "check_bias", "check_maml_bias",
    "check_second_moment_lemma", "check_smoothness", "check_step_size", "check_fomaml_bias",
    "check_hf_difference", "all_checks", "draw_report_case", "compute", "summary", "plot", "PHIS",
    "MC_DELTA",
]

NAME = "slack"
TITLE = "Slack of the constants: how loose each bound is in practice"
ROOT_SEED = 20200826              # the report's draws: SeedSequence([ROOT_SEED, draw])
SCALE_EXAMPLES = {"tiny": 12, "quick": 80, "default": 1200, "full": 8000}


def draw_report_case(index: int, root: int = ROOT_SEED) -> Case:
    """Draw ``index`` of the report: a MAML-theorem case with a pair, from
    ``SeedSequence([root, index])`` (redrawn on rejection), so the first ``n``
    draws are the same whatever the total."""
    for attempt in itertools.count():
        src = NumpySource(np.random.SeedSequence([root, index, attempt]))
        try:
            return draw_case(src, "maml", pair=True)
        except Rejected:
            continue
    raise AssertionError("unreachable")


def compute(examples: int, root: int = ROOT_SEED, mc_samples: int = MC_SAMPLES, *, start: int = 0,
            progress: bool = False) -> pd.DataFrame:
    """The tidy slack table: one row per draw × constant for draws ``start``…
    ``examples − 1``, the instance's parameters in columns.  Each draw is
    seeded by its index alone, so blocks of draws concatenate to the whole
    table.  Deterministic in ``(examples, root, mc_samples, start)``."""
    rows = []
    t0 = time.monotonic()
    for k in range(start, examples):
        if progress and k > start and (k - start) % 50 == 0 and sys.stderr.isatty():
            el = time.monotonic() - t0
            sys.stderr.write(f"\r  slack: {k - start}/{examples - start} draws, {el:.0f}s elapsed, "
                             f"~{el / (k - start) * (examples - k):.0f}s left ")
            sys.stderr.flush()
        case = draw_report_case(k, root)
        desc = case.describe()
        for chk in all_checks(case, mc_seed=k, mc_samples=mc_samples):
            ctx = chk.context
            for r in chk.term_slack():
                rows.append({"draw": k, "property": ctx["property"], "reference": chk.equation, "kind": chk.kind,
                             **r, "measured": chk.measured, "bound": chk.bound, "holds": passes(chk),
                             "exact": chk.exact, "allowance": ctx["allowance"], "task": ctx["task"], **desc})
    return pd.DataFrame(rows)


# report order of the properties (the order of ``all_checks``)
PROPERTIES = ("(7)", "(8)", "bias lemma", "MAML bias", *(f"second-moment lemma, φ = {fmt_const(p)}" for p in PHIS),
              "FO-MAML bias", "HF-MAML difference", "step size E[1/L̃]", "step size E[1/L̃²]",
              "smoothness lemma", "smoothness lemma (Taylor form)", "(D2) N-step smoothness")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per constant, in report order: stated value, tightest ratio (with its
    draw and instance), median ratio, draws that informed it, and draws on
    which the bound was violated."""
    out = []
    for (prop, const), g in table.groupby(["property", "constant"], sort=False):
        t = g.loc[g["ratio"].idxmin()]
        fam_cols = [c for c in g.columns if c not in _NON_INSTANCE and pd.notna(t[c])]
        out.append({"property": prop, "constant": const, "term": int(t["term"]), "stated": g["stated"].iloc[0],
                    "reference": t["reference"], "tightest_ratio": float(t["ratio"]),
                    "median_ratio": float(g["ratio"].median()), "draws": int(g["draw"].nunique()),
                    "violations": int(g.loc[~g["holds"].astype(bool), "draw"].nunique()),
                    "exact": bool(g["exact"].all()), "tightest_draw": int(t["draw"]), "family": t["family"],
                    "instance": ", ".join(f"{c}={_short(t[c])}" for c in fam_cols if c != "family")})
    s = pd.DataFrame(out)
    rank = {p: k for k, p in enumerate(PROPERTIES)}
    s["_order"] = [rank.get(p, len(rank)) for p in s["property"]]
    return s.sort_values(["_order", "term"], kind="stable").drop(columns="_order").reset_index(drop=True)


_NON_INSTANCE = {"draw", "property", "reference", "kind", "constant", "term", "stated", "needed", "ratio",
                 "measured", "bound", "holds", "exact", "allowance", "task", "w"}


def _short(x) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{x:.4g}"
    return str(x)


def _ratio_text(r: float) -> str:
    if not np.isfinite(r):
        return "∞"
    return f"{r:.3f}" if r < 10 else f"{r:.3g}"


def plot(table: pd.DataFrame, outdir) -> list[Path]:
    """Horizontal bars: the tightest ratio right/left over all draws for each
    constant (log scale; 1 = tight, below 1 = violated), the median as a dot;
    hatched bars: the other terms sufficed on every draw (ratio ∞)."""
    s = summary(table).iloc[::-1].reset_index(drop=True)
    fig, ax = style.figure(figsize=(9.0, 0.3 * len(s) + 1.5))
    y = np.arange(len(s))
    tight, med = s["tightest_ratio"].to_numpy(), s["median_ratio"].to_numpy()
    finite = np.concatenate([tight[np.isfinite(tight)], med[np.isfinite(med)], [1.0]])
    cap = float(finite.max()) * 4
    whole = s["constant"].str.endswith("whole bound").to_numpy()
    for yi, r, wh in zip(y, tight, whole):
        inf = not np.isfinite(r)
        color = style.BOUND if r < 1 else (style.ALT[4] if wh else style.MEASURED)
        ax.barh(yi, cap if inf else r, color=color, alpha=0.35 if inf else 0.85, height=0.62,
                hatch="//" if inf else None, edgecolor=color, lw=0)
    ok = np.isfinite(med)
    ax.plot(med[ok], y[ok], "o", color=style.ALT[1], ms=4.5, zorder=3)
    ax.axvline(1.0, color=style.BOUND, ls="--", lw=1.4)
    ax.set_xscale("log")
    lo = float(min(0.5, np.nanmin(np.where(np.isfinite(tight), tight, np.inf)) * 0.7))
    ax.set_xlim(lo, cap * 1.5)
    ax.set_ylim(-0.7, len(s) - 0.3)
    ax.set_yticks(y)
    ax.set_yticklabels([c if (st == 1 or c.endswith("whole bound")) else f"{c}   [{fmt_const(st)}]"
                        for c, st in zip(s["constant"], s["stated"])], fontsize=7.5)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y)
    right.set_yticklabels([f"{_ratio_text(t)}  (median {_ratio_text(m)})" for t, m in zip(tight, med)],
                          fontsize=7.5)
    right.tick_params(length=0)
    right.grid(False)
    right.spines["right"].set_visible(False)
    ax.set_xlabel("ratio right/left = stated constant / constant that sufficed (log scale)")
    ax.set_title(f"Slack of each constant: tightest of {int(table['draw'].nunique())} draws "
                 "inside the MAML theorem's conditions", fontsize=10)
    handles = [
        matplotlib.patches.Patch(color=style.MEASURED, alpha=0.85, label="tightest draw, one constant"),
        matplotlib.patches.Patch(color=style.ALT[4], alpha=0.85, label="tightest draw, whole bound"),
        matplotlib.patches.Patch(facecolor=style.MEASURED, alpha=0.35, hatch="//",
                                 label="∞: other terms sufficed on every draw"),
        matplotlib.lines.Line2D([], [], color=style.ALT[1], marker="o", ls="", label="median over draws"),
        matplotlib.lines.Line2D([], [], color=style.BOUND, ls="--", label="ratio 1: bound tight (below: violated)"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.45, -0.6 / (0.3 * len(s) + 1.5) - 0.02),
              ncol=2, fontsize=7.5)
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.grid(False, axis="y")
    return style.save(fig, Path(outdir), NAME)


def markdown(table: pd.DataFrame, figures: list[Path], report_dir: Path) -> str:
    """The report section: the figure and one row per constant."""
    s = summary(table)
    out = [f"## {TITLE}", "",
           f"{int(table['draw'].nunique())} draws (family × parameters × point × hyperparameters inside the "
           "MAML theorem's conditions), `python -m mamlcheck slack`.  *ratio* = stated constant / the "
           "constant that would have sufficed with the other terms as stated (for the lower bound 0.8 the "
           "other way round): 1 = tight, below 1 = violated, ∞ = the other terms suffice on every draw.  "
           "Left sides are exact except the step-size lemma (Monte Carlo, "
           f"{MC_SAMPLES} draws of L̃, empirical-Bernstein allowance at false-alarm rate {MC_DELTA:g}).", ""]
    for f in figures:
        if Path(f).suffix == ".png":
            p = Path(f).resolve()
            rel = p.relative_to(report_dir.resolve()) if p.is_relative_to(report_dir.resolve()) else p
            out += [f"![{TITLE}]({rel})", ""]
    out += ["| constant | stated | tightest ratio | median ratio | draws violated | tightest on |",
            "|---|---|---|---|---|---|"]
    for _, r in s.iterrows():
        t = table[table["draw"] == r["tightest_draw"]].iloc[0]
        out.append(f"| {r['constant']} | {fmt_const(r['stated'])} | {_ratio_text(r['tightest_ratio'])} | "
                   f"{_ratio_text(r['median_ratio'])} | {r['violations']}/{r['draws']} | "
                   f"draw {r['tightest_draw']}: {r['family']}, d={int(t['d'])}, M={int(t['M'])}, "
                   f"αL={t['alpha_L']:.3g}, D_in={int(t['D_in'])} |")
    out.append("")
    return "\n".join(out)


def run(examples: int, results: Path, figures: Path, root: int = ROOT_SEED,
        progress: bool = False) -> tuple[pd.DataFrame, list[Path]]:
    table = compute(examples, root, progress=progress)
    results.mkdir(parents=True, exist_ok=True)
    table.to_csv(results / f"{NAME}.csv", index=False)
    return table, plot(table, figures)


def configure(p) -> None:
    p.add_argument("--examples", type=int, default=SCALE_EXAMPLES["default"], help="number of draws")
    p.add_argument("--out-dir", default="figures", help="folder for the figure")
    p.add_argument("--results", default="results", help="folder for slack.csv")


MAX_EXAMPLES = 100_000     # about 25 minutes on two cores; more belongs in a sweep (run-all --scale full)


def main(args) -> int:
    check_int("--examples", args.examples, 1, MAX_EXAMPLES)
    for flag, folder in (("--results", args.results), ("--out-dir", args.out_dir)):
        check_output_folder(flag, folder)
    t0 = time.monotonic()
    table, figs = run(args.examples, Path(args.results), Path(args.out_dir), progress=True)
    s = summary(table)
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(s[["constant", "stated", "tightest_ratio", "median_ratio", "violations", "draws", "family"]]
              .to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(f"wrote {Path(args.results) / (NAME + '.csv')} and {', '.join(map(str, figs))} "
          f"({time.monotonic() - t0:.1f}s)")
    return 0
