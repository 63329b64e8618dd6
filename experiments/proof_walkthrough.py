"""The proof walkthrough: each step of the proof of (14), its statement, why it
holds, and its numbers on the ledger's run (``figures/proof_walkthrough.md``)."""
from __future__ import annotations

import textwrap

from pathlib import Path

import numpy as np
import pandas as pd

from mamlcheck import literature as lit
from mamlcheck.experiments import ledger

from . import style
from mamlcheck.theory.conditions import conditions_table


def _md_table(header, rows) -> str:
    esc = lambda x: str(x).replace("|", "\\|")   # noqa: E731
    return "\n".join(["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(map(esc, r)) + " |" for r in rows)])


def _why(c: dict) -> dict[str, str]:
    """What each step says and why the proof needs it (one or two sentences each)."""
    a = lit.SMOOTH_L_FACTOR, lit.SMOOTH_RHO_FACTOR
    cst = lit.STEP_C["maml"]
    return {
        "(7)": ("G_i (6) is a *biased* estimate of ∇F: the inner stochastic gradient sits inside ∇f_i, so "
                "averaging does not remove its noise. (7) bounds how much the bias can inflate the mean "
                f"(the {lit.M1_NOISE:g} dominates 2((1 + αL)αL)² with αL ≤ 1/6); the proof needs it for the "
                "‖E[G_i]‖² term of (10)."),
        "(8)": ("The second moment of G_i is controlled by the gradient itself, the task dissimilarity σ (A4) "
                "and the data noise σ̃ (A5) shrinking with the batches; it bounds the E‖G_i‖²/B term of (10). "
                f"{lit.M2_GRAD:g} and {lit.M2_SIGMA:g} are the paper's loose constants, so the slack measures "
                "how loose they are."),
        "(9)": ("F is not globally smooth, but ∇F is L(w)-Lipschitz around w with "
                f"L(w) = {a[0]:g}L + {a[1]:g}ρα E_i‖∇f_i(w)‖ (THEORY.md §3), so one step "
                "w_{k+1} = w_k − β_k g_k cannot raise F by more than the quadratic term. Given the step it is "
                "deterministic: checked at every iteration and seed, up to rounding; slack is the quadratic "
                "term over the actual second-order remainder."),
        "(10)": ("Taking E[·|F_k] of (9), with β_k independent of the task batch (its own L̃ estimate), "
                 "turns the random terms into E[β_k], E[β_k²], ∇F(w_k)ᵀE[G_i] and the second moment of the "
                 "batch mean, at most ‖E[G_i]‖² + E‖G_i‖²/B. Measured by replicating the step "
                 f"{c['reps']} times from the same w_k; the right side comes from the same replications "
                 "and the interval covers the error of both sides (delta method)."),
        "(11)": ("Inserting (7), (8) and the step-size lemma "
                 f"(E[1/L̃] ≥ {lit.INV_LT_MEAN_LOWER:g}/L(w), E[1/L̃²] ≤ {lit.INV_LT_SQ_UPPER:g}/L(w)², "
                 f"β_k = 1/({cst:g}L̃)) into (10) leaves a fixed decrease of E F per step while "
                 "E‖∇F(w_k)‖ > ε. It cannot hold for ever (F would go to −∞): the full theorem also needs "
                 "E‖∇F(w_k)‖ above the noise floor (THEORY.md §4), so it is checked only where the "
                 "seed-averaged ‖∇F(w_k)‖ exceeds max{ε, floor}. The decrease of E F is the mean over seeds "
                 f"of F(w_k) − E[F(w_{{k+1}})|F_k], the latter from {c['cond_reps']} replicated steps per seed "
                 "(Student-t interval over seeds)."),
        "(13)": ("(12): summing (11) over k = 0..T−1 gives E F(w_0) − E F(w_T) ≥ Tε²/(1600(L + ρα(σ + ε))), "
                 "its left side telescoping to E F(w_T); that is (13) for "
                 "every T up to the first iteration at or below max{ε, floor}. The measured E F(w_T) is F(w_0) "
                 "minus the summed measured decreases of (11) (the same estimate, seed by seed)."),
        "(14)": ("Since F(w_T) ≥ inf F, (13) can hold only while T ≤ the bound, with Δ = F(w_0) − inf F (A1): "
                 "some k no later than that has E‖∇F(w_k)‖ ≤ ε. Compared with the first k at which the "
                 "seed-averaged ‖∇F(w_k)‖ ≤ ε; Δ is bounded above with the family's certified inf_f_lower(), "
                 "which only loosens the bound."),
    }


def _worst_row(rows: pd.DataFrame, step: str):
    r = rows[rows.step == step]
    if not len(r):
        return None
    return r.loc[r.slack.astype(float).idxmin()]


_COMPARED = {"(7)": "‖E[G_i]‖² (upper end) against its bound",
             "(8)": "E‖G_i‖² (upper end) against its bound",
             "(9)": "second-order remainder F(w_{k+1}) − F(w_k) + β_k∇Fᵀg_k against the quadratic term",
             "(10)": "conditional remainder (upper end) against the quadratic term",
             "(11)": "decrease of E F (lower end) against the guaranteed decrease",
             "(13)": "total decrease of E F (lower end) against T times the guaranteed decrease",
             "(14)": "iterations against the bound"}


def _row_text(r) -> str:
    where = f"k = {ledger.fmt(r.k)}" + ("" if pd.isna(r.seed) else f", seed {int(r.seed)}")
    exact = r.left_lo == r.left_hi or pd.isna(r.left)
    left = ledger.fmt(r.left) + ("" if exact else f" (interval [{ledger.fmt(r.left_lo)}, {ledger.fmt(r.left_hi)}])")
    return (f"Worst row ({where}): left {left}, right {ledger.fmt(r.right)}; compared, "
            f"{_COMPARED[r.step]}: {ledger.fmt(r.measured)} vs {ledger.fmt(r.bound)}; slack {ledger.fmt(r.slack)}, "
            f"{r.verdict}" + (f" — {r.cause}" if r.cause else ""))


def _step_numbers(led: ledger.Ledger, step: str) -> list[str]:
    s = led.summary.set_index("step").loc[step]
    c = led.config
    if not s.rows:
        return [f"*Not evaluated in this run*: {s.cause}."]
    lines = [f"Rows checked {ledger.fmt(s.rows)}: held {ledger.fmt(s.held)}, violated {ledger.fmt(s.violated)}, "
             f"inconclusive {ledger.fmt(s.inconclusive)} (fraction held {ledger.fmt(s.fraction_held)}); "
             f"worst slack {ledger.fmt(s.worst_slack)}, median {ledger.fmt(s.median_slack)}."]
    if step in ("(7)", "(8)", "(10)"):
        ks = led.rows[led.rows.step == step]
        lines.append(f"Sampled iterates k = {', '.join(ledger.fmt(k) for k in ks.k)} "
                     f"(seeds {', '.join(str(int(x)) for x in ks.seed)})"
                     + (f", {c['draws']} draws of G_i per task at each." if step != "(10)" else "."))
    if step in ("(11)", "(13)"):
        lines.append(f"Guaranteed decrease per step ε²/({lit.DECREASE_DEN:g}(L + ρα(σ + ε))) = "
                     f"{ledger.fmt(c['per_step_decrease'])}; evaluated for k < {ledger.fmt(c['T_star'])}, where the "
                     f"seed-averaged ‖∇F(w_k)‖ > max{{ε, floor}} = max{{{ledger.fmt(c['eps'])}, "
                     f"{ledger.fmt(c['noise_floor'])}}}.")
    if step == "(14)":
        meas = ledger.fmt(c["T_measured"]) if not np.isnan(c["T_measured"]) else f"not reached in {c['iterations']}"
        lines.append(f"Measured first k with seed-averaged ‖∇F(w_k)‖ ≤ ε = {ledger.fmt(c['eps'])}: {meas}; "
                     f"bound {ledger.fmt(c['T_bound'])} with Δ ≤ F(w_0) − inf_f_lower() = "
                     f"{ledger.fmt(c['F_w0'])} − ({ledger.fmt(c['inf_f_lower'])}) = {ledger.fmt(c['Delta'])}.")
    w = _worst_row(led.rows, step)
    if w is not None:
        lines.append(_row_text(w) + ".")
    if s.cause:
        lines.append(f"**Cause**: {s.cause}.")
    return lines


_TITLES = {"(7)": "(7) First moment of G_i", "(8)": "(8) Second moment of G_i",
           "(9)": "(9) Descent lemma with the local constant L(w_k)",
           "(10)": "(10) Conditional expectation of the descent lemma",
           "(11)": "(11) Per-step decrease", "(13)": "(12)/(13) Summing and telescoping",
           "(14)": "(14) The rate"}


def _constants_rows(led: ledger.Ledger) -> list[tuple[str, ...]]:
    return [(r.constant, ledger.fmt(r.used), ledger.fmt(r.certified), r.kind, r.source)
            for r in led.constants.itertuples()]


def walkthrough(led: ledger.Ledger, command: str, figures: list[Path], out_dir: Path) -> str:
    """The proof walkthrough as markdown (numbers from the same table ``main`` prints)."""
    c = led.config
    why = _why(c)
    conds = "all hold" if not led.broken else f"broken: {', '.join(led.broken)}"
    out = [
        "# The proof of (14), walked on a real run",
        "",
        "Each inequality of the convergence proof of MAML (explainer §4.2; THEORY.md §3–§4) with the numbers of "
        "one run beside it. Reproduce with:",
        "", "```", command, "```", "",
        "How to read the rows: every row reads *left ≤ right* in the explainer's form. Where the left side is "
        f"estimated, its {style.confidence_text(c['delta'])} is given; a row **holds** if the interval's upper end "
        "is at most the right side, is **violated** if its lower end exceeds it, and is **inconclusive** "
        "otherwise (rounding tolerance on exact comparisons). **Slack** is the room left, at least 1 exactly "
        "when the row holds: bound over measured for (7), (8), (14); the quadratic term over the actual "
        "second-order remainder for (9), (10); measured over guaranteed decrease for (11), (13). Where a row "
        "does not hold, the ledger names the assumption or condition the run breaks; a violation with every "
        f"condition satisfied is marked `{ledger.VIOLATED_MARK}`.",
        "",
        "## The run", "",
        _md_table(("setting", "value"), _config_rows(led)), "",
        "## Constants (A2–A5)", "",
        _md_table(("constant", "used by the run and bounds", "certified", "kind", "source"),
                  _constants_rows(led)), "",
        f"## Conditions ({conds})", "",
        _md_table(_COND_HEADER, _conditions_rows(led)), "",
        "## Summary (as printed by the command)", "",
        "```", ledger.format_summary(led), "```", "",
        "Worst row of each step (*measured* and *bound*: the two quantities its slack compares):", "",
        _md_table(_WORST_HEADER, _worst_rows(led)), "",
    ]
    for step in ledger.STEPS:
        out += [f"## {_TITLES[step]}", "", f"**{ledger.STATEMENTS[step]}**", "", why[step], "",
                *(f"* {line}" for line in _step_numbers(led, step)), ""]
    out += ["## Figure", ""]
    for f in figures:
        rel = Path(f).resolve().relative_to(Path(out_dir).resolve()) if Path(f).resolve().is_relative_to(
            Path(out_dir).resolve()) else f
        out.append(f"![proof ledger: decrease per step against (11), and the slack of every step]({rel})")
    out += ["", "Left: the measured decrease of E F per step (band: its interval) against the guarantee (11), "
            "on the iterations where (11) applies. Right: the slack of every row of every step (log scale); "
            "the dashed line is slack 1, where a bound is attained; crosses mark rows that do not hold.",
            "", "The detailed rows are in `proof_ledger.csv`."]
    return "\n".join(out) + "\n"


def _config_rows(led: ledger.Ledger) -> list[tuple[str, str]]:
    c = led.config
    rows = [("family", c["family"]),
            ("family parameters", ", ".join(f"{k}={ledger.fmt(v) if not isinstance(v, str) else v}"
                                            for k, v in c["family_params"].items()))]
    for k in ("algorithm", "step", "alpha", "B", "D_in", "D_o", "D_h", "B_prime", "D_beta", "c", "w0", "seeds",
              "budget", "iterations", "stopped", "eps", "noise_floor", "threshold", "F_w0", "inf_f_lower",
              "Delta", "delta", "points", "draws", "reps", "cond_reps", "root"):
        if k in c and c[k] is not None:
            rows.append((k, c[k] if isinstance(c[k], str) else ledger.fmt(c[k])))
    return rows


def _conditions_rows(led: ledger.Ledger) -> list[tuple[str, ...]]:
    t = conditions_table(led.conditions)
    return [(r.name, ledger.fmt(r.required) if not isinstance(r.required, str) else r.required,
             ledger.fmt(r.given) if not isinstance(r.given, str) else r.given,
             ledger.fmt(bool(r.holds)), r.statement) for r in t.itertuples()]


_COND_HEADER = ("condition", "required", "given", "holds", "statement")


_WORST_HEADER = ("step", "k", "seed", "left", "right", "measured", "bound", "slack", "verdict",
                 "measured vs bound")


def _worst_rows(led: ledger.Ledger) -> list[tuple[str, ...]]:
    out = []
    for step in ledger.STEPS:
        r = _worst_row(led.rows, step)
        if r is not None:
            out.append((step, ledger.fmt(r.k), "mean" if pd.isna(r.seed) else str(int(r.seed)),
                        *(ledger.fmt(getattr(r, f)) for f in ("left", "right", "measured", "bound", "slack")),
                        r.verdict, _COMPARED[step]))
    return out


def report_text(led: ledger.Ledger) -> str:
    """What ``main`` prints: run, conditions, the ledger summary and each step's worst row."""
    run = textwrap.fill(", ".join(f"{k}={v}" for k, v in _config_rows(led)), width=110,
                        initial_indent="run: ", subsequent_indent="     ")
    return "\n".join([
        run, "",
        ledger.text_table(_COND_HEADER, _conditions_rows(led)),
        "conditions: all hold" if not led.broken else f"conditions broken: {', '.join(led.broken)}", "",
        "proof ledger (rows read left ≤ right; slack ≥ 1 iff held):",
        ledger.format_summary(led), "",
        "worst row of each step (measured, bound: what the slack compares):",
        ledger.text_table(_WORST_HEADER, _worst_rows(led))])
