"""An interactive explorer of the convergence proof of MAML, for teaching.

A marimo app: ``marimo edit docs/explorer.py`` (or ``marimo run`` for the
read-only app, ``make explore``).  The learner picks a task family, the inner
step ``α`` as a multiple of ``1/L``, the step rule, the batches ``B``,
``D_in``, ``D_o``, ``D_h`` and the target ``ε``, and sees which conditions of
the MAML theorem hold, every inequality (7)–(14) of the proof with its
measured value beside its bound (the proof ledger, ``mc.ledger``) and a short
explanation of each step, and the trajectory of the seed-averaged
``‖∇F(w_k)‖`` against ``ε`` and the noise floor.  Equation numbers are those
of N. Ashtekar, *Model-Agnostic Meta-Learning: Theory Explained*.

Everything is computed by the library; the app only arranges it.  The plain
function ``explore`` is what the cells call, and it can be imported and
called without the UI (the tests do).
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="MAML: the convergence proof, step by step")

with app.setup:
    from dataclasses import dataclass
    from pathlib import Path

    import marimo as mo
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

    import mamlcheck as mc
    from mamlcheck.experiments.ledger import fmt
    from mamlcheck.experiments.proof_walkthrough import walkthrough
    from mamlcheck.theory.proof import DEPENDS, NAMES, STATEMENTS, STEPS

    EXPLAINER = "N. Ashtekar, *Model-Agnostic Meta-Learning: Theory Explained*"

    # Small families, so that a change of setting is answered within a second
    # or two.  cosine-quadratic: small task spread and noise, as in the default
    # run of ``mamlcheck proof``, so that the noise floor lies below ‖∇F(w_0)‖
    # and every step of the proof has rows.  ``w0``: every coordinate's start
    # (None: 0); ``eps``: the default target (None: ½‖∇F(w_0)‖ at α = 1/(6L)).
    PRESETS = {
        "cosine-quadratic": {"params": {"d": 5, "M": 10, "spread": 0.05, "noise_grad": 0.05,
                                        "noise_amp": 0.05}, "w0": 1.0, "eps": 1.0},
        "robust-regression": {"params": {"d": 5, "M": 10}, "w0": None, "eps": None},
        "hard-chain": {"params": {}, "w0": None, "eps": None},
    }
    # What each family shows at its default setting (one sentence, for the learner).
    NOTES = {
        "cosine-quadratic": "every step of the proof is evaluated and every condition holds.",
        "robust-regression": ("the noise floor of the theorem lies above ‖∇F(w_0)‖ at these batch sizes, so "
                              "ε is below the floor (eps_above_floor) and (11), (13) have no rows: the theorem "
                              "then promises only the floor."),
        "hard-chain": ("the hard instance of Carmon et al.: under the theorem's step each coordinate of the "
                       "chain takes thousands of steps, so ε is not reached within the budget and (14) stays "
                       "inconclusive; a constant β = 2/L reaches it in a few hundred (outside the theorem: "
                       "step_rule)."),
    }
    # Monte Carlo sizes of the ledger.  Eight seeds rather than four: with four,
    # the Student-t interval of (11) at confidence 1 − 10⁻⁶ is wider than the
    # decrease it brackets, and most of its rows come out inconclusive.
    SIZES = {"seeds": 8, "points": 3, "draws": 100, "reps": 200, "cond_reps": 2}
    BUDGET = 500
    ALPHA_L = 1 / 6                 # the theorem's largest inner step, α = 1/(6L)
    BETA_L = 1 / 12                 # a constant step β = 1/(12L), when the rule is "constant"
    ALPHA_STEPS = [1 / 24, 1 / 12, 1 / 8, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 1.0, 1.5]
    BATCH_STEPS = [1, 2, 5, 10, 20, 50, 100]
    STEP_RULES = {"adaptive: β_k = 1/(12 L̃(w_k)), the theorem's rule": "adaptive",
                  "constant β (outside the theorem)": "constant"}

    @dataclass
    class Exploration:
        """One configuration, explored: what the cells show.

        ``conditions``: the MAML theorem's conditions (``mc.check_conditions``)
        followed by the ledger's assumptions A1–A5 and ``eps_above_floor``; one row
        each (name, required, given, holds, statement).  ``summary``: one row per
        step (7)–(14), the ledger's summary beside the numbers of its worst row.
        ``steps``: per step, the walkthrough's explanation and its numbers.
        ``figure``: the trajectory.  ``ledger``: the ``mc.Ledger`` itself.
        ``code``: the Python that reproduces the ledger.
        """

        conditions: pd.DataFrame
        summary: pd.DataFrame
        steps: dict
        figure: Figure
        ledger: object
        code: str


@app.function
def setup_run(family="cosine-quadratic", alpha_L=ALPHA_L, step="adaptive", B=20, D_in=10, D_o=10, D_h=None,
              beta_L=BETA_L):
    """The family, ``Hyper`` and start of one configuration.

    ``α = alpha_L/L`` and a constant ``β = beta_L/L`` with the family's
    certified ``L``; ``D_h=None`` takes the theorem's least Hessian batch
    ``bounds.D_h_min`` for this ``α``, so the default stays inside the theorem.
    """
    preset = PRESETS.get(family, {"params": {}, "w0": None, "eps": None})
    fam = mc.family(family, **preset["params"])
    v = fam.constants().values()
    alpha = float(alpha_L) / v["L"]
    if D_h is None:
        D_h = mc.bounds.D_h_min(algorithm="maml", alpha=alpha, sigma_H=v["sigma_H"])
    rule = {"beta": float(beta_L) / v["L"]} if step == "constant" else {}
    hyper = mc.Hyper("maml", alpha=alpha, B=int(B), D_in=int(D_in), D_o=int(D_o), D_h=int(D_h), step=step, **rule)
    w0 = None if preset["w0"] is None else np.full(fam.d, float(preset["w0"]))
    return fam, hyper, w0


@app.function
def default_eps(family="cosine-quadratic"):
    """The family's default target: its preset, else ½‖∇F(w_0)‖ at the
    theorem's ``α`` (a target the run can reach, as ``mamlcheck proof`` picks)."""
    preset = PRESETS.get(family, {"eps": None})
    if preset.get("eps") is not None:
        return float(preset["eps"])
    fam, hyper, w0 = setup_run(family)
    w = np.zeros(fam.d) if w0 is None else w0
    return float(0.5 * np.linalg.norm(mc.grad_F(fam, w, hyper.alpha)))


@app.function
def least_D_h(family="cosine-quadratic", alpha_L=ALPHA_L):
    """The theorem's least Hessian batch ``⌈2(ασ_H)²⌉`` for this family and ``α``."""
    fam, hyper, _ = setup_run(family, alpha_L)
    return mc.bounds.D_h_min(algorithm="maml", alpha=hyper.alpha, sigma_H=fam.constants().sigma_H.value)


@app.function
def reproduce_code(fam, hyper, w0, eps, budget=BUDGET):
    """Python that recomputes this ledger with the library (shown in the walkthrough)."""
    params = ", ".join(f"{k}={v!r}" for k, v in PRESETS.get(fam.name, {"params": {}})["params"].items())
    rule = f", step='constant', beta={hyper.beta!r}" if hyper.step == "constant" else ""
    start = "" if w0 is None else f", w0=np.full({fam.d}, {float(w0[0])!r})"
    sizes = ", ".join(f"{k}={v}" for k, v in SIZES.items())
    return "\n".join([
        "import numpy as np, mamlcheck as mc",
        f"fam = mc.family({fam.name!r}{', ' if params else ''}{params})",
        f"hyper = mc.Hyper('maml', alpha={hyper.alpha!r}, B={hyper.B}, D_in={hyper.D_in}, D_o={hyper.D_o}, "
        f"D_h={hyper.D_h}{rule})",
        f"led = mc.ledger(fam, hyper, eps={eps!r}{start}, {sizes}, budget={budget})"])


@app.function
def conditions_frame(fam, hyper, led):
    """The theorem's conditions (``mc.check_conditions``), then the ledger's own
    rows (assumptions A1–A5 for the constants used, ``ε`` against the floor)."""
    theorem = mc.check_conditions(fam.constants(), hyper)
    names = {c.name for c in theorem}
    rows = theorem + [c for c in led.conditions if c.name not in names]
    return pd.DataFrame([{"name": c.name, "required": c.required, "given": c.given, "holds": bool(c.holds),
                          "statement": c.statement} for c in rows])


@app.function
def worst_rows(led):
    """Per step, the row with the least slack (the one closest to breaking its bound)."""
    rows = led.rows.assign(slack=led.rows.slack.astype(float).fillna(np.inf))
    return {s: rows.loc[rows[rows.step == s].slack.idxmin()] for s in STEPS if (rows.step == s).any()}


@app.function
def resting_on(step, broken):
    """The broken conditions that step ``step`` rests on (``theory.proof.DEPENDS``;
    (11), (13), (14) rest on the whole theorem): its guarantee is void if any."""
    deps = DEPENDS.get(step)
    return [b for b in broken if deps is None or b in deps]


@app.function
def summary_frame(led):
    """The ledger's summary, one row per step, with the statement, the
    measured quantity and its bound at the step's worst row, and the broken
    conditions that void the step's guarantee."""
    worst = worst_rows(led)
    out = []
    for s in led.summary.itertuples():
        w = worst.get(s.step)
        void = resting_on(s.step, led.broken)
        out.append({"step": s.step, "inequality": s.name, "statement": STATEMENTS[s.step],
                    "measured": np.nan if w is None else float(w.measured),
                    "bound": np.nan if w is None else float(w.bound),
                    "worst_slack": s.worst_slack, "median_slack": s.median_slack,
                    "rows": s.rows, "held": s.held, "violated": s.violated, "inconclusive": s.inconclusive,
                    "verdict": "n/a" if w is None else w.verdict,
                    "guarantee": f"void: {', '.join(void)} broken" if void else "guaranteed", "cause": s.cause})
    return pd.DataFrame(out)


@app.function
def step_texts(led, code):
    """Per step, the explanation and the numbers of the proof walkthrough
    (``experiments.proof_walkthrough.walkthrough``), split at its headings:
    ``{step: {"title", "why", "numbers"}}``.  A step's section is the one that
    states it in bold."""
    text = walkthrough(led, code, [], Path("."))
    sections = ["## " + s for s in text.split("\n## ")[1:]]
    out = {}
    for step in STEPS:
        sec = next((s for s in sections if f"**{STATEMENTS[step]}**" in s), None)
        if sec is None:
            out[step] = {"title": f"{step} {NAMES[step]}", "why": "", "numbers": []}
            continue
        lines = [ln for ln in sec.split("\n")[1:] if ln.strip() and ln.strip() != f"**{STATEMENTS[step]}**"]
        out[step] = {"title": sec.split("\n")[0][3:],
                     "why": "\n".join(ln for ln in lines if not ln.startswith("* ")),
                     "numbers": [ln[2:] for ln in lines if ln.startswith("* ")]}
    return out


@app.function
def trajectory_figure(led):
    """The seed-averaged ‖∇F(w_k)‖ of the run against ε and the theorem's noise
    floor, with the first k below ε and the rate bound (14)."""
    c, t = led.config, led.trajectory
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(t.k, t.mean_grad_norm, color="C0", lw=1.6, label=f"‖∇F(w_k)‖, mean over {c['seeds']} seeds")
    ax.axhline(c["eps"], color="C2", ls="--", lw=1.2, label=f"ε = {fmt(c['eps'])}")
    if c["noise_floor"] > 0:
        ax.axhline(c["noise_floor"], color="C3", ls=":", lw=1.4,
                   label=f"noise floor of the theorem = {fmt(c['noise_floor'])}")
    else:                                  # exact oracles: nothing to draw on a log scale
        ax.plot([], [], color="C3", ls=":", label="noise floor of the theorem = 0")
    if np.isfinite(c["T_measured"]):
        ax.axvline(c["T_measured"], color="0.5", lw=0.8)
        ax.annotate(f"first k with mean ≤ ε: {fmt(c['T_measured'])} ", (c["T_measured"], c["eps"]),
                    color="0.3", fontsize=8, ha="right", va="bottom")
    ax.set_yscale("log")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("‖∇F(w_k)‖")
    reached = fmt(c["T_measured"]) if np.isfinite(c["T_measured"]) else f"not reached in {c['iterations']}"
    ax.set_title(f"rate (14): first k with E‖∇F(w_k)‖ ≤ ε  ≤  1600Δ(L + ρα(σ + ε))/ε² = {fmt(c['T_bound'])}"
                 f"\nmeasured: {reached}   (Δ ≤ {fmt(c['Delta'])}; the run stopped: {c['stopped']})", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, which="both", alpha=0.25)
    return fig


@app.function
def explore(family="cosine-quadratic", alpha_L=ALPHA_L, step="adaptive", B=20, D_in=10, D_o=10, D_h=None,
            eps=None, beta_L=BETA_L, budget=BUDGET):
    """Explore one configuration: run the proof ledger at small Monte Carlo
    sizes and return the conditions, the per-step summary, the walkthrough's
    explanations and the trajectory figure (an ``Exploration``).

    Args:
        family: a registered family, built at its small preset (``PRESETS``).
        alpha_L: the inner step as a multiple of ``1/L`` (the theorem: ≤ 1/6).
        step: ``"adaptive"`` (the theorem's ``β_k = 1/(12 L̃(w_k))``) or ``"constant"``.
        B, D_in, D_o: tasks per step and the inner and outer batches.
        D_h: the Hessian batch; ``None``: the theorem's least (``bounds.D_h_min``).
        eps: the target ``ε``; ``None``: the family's default (``default_eps``).
        beta_L: the constant step as a multiple of ``1/L`` (``step="constant"`` only).
        budget: the most outer steps of the run.
    """
    fam, hyper, w0 = setup_run(family, alpha_L, step, B, D_in, D_o, D_h, beta_L)
    eps = default_eps(family) if eps is None else float(eps)
    led = mc.ledger(fam, hyper, eps=eps, w0=w0, budget=int(budget), **SIZES)
    code = reproduce_code(fam, hyper, w0, eps, budget)
    return Exploration(conditions_frame(fam, hyper, led), summary_frame(led), step_texts(led, code),
                       trajectory_figure(led), led, code)


@app.function
def md_table(df, columns):
    """A DataFrame as a markdown table: numbers in the ledger's format, and a
    condition or row that fails in bold with a cross, so that it stands out."""
    def cell(x):
        if isinstance(x, (bool, np.bool_)):
            return "✓ yes" if x else "**✗ NO**"
        return (fmt(x) if isinstance(x, (int, float, np.integer, np.floating)) else str(x)).replace("|", "\\|")
    lines = ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |", "|" + "---|" * len(columns)]
    for r in df.itertuples():
        cells = [cell(getattr(r, c)) for c in columns]
        if not bool(getattr(r, "holds", True)) or getattr(r, "verdict", "holds") == "violated":
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@app.cell(hide_code=True)
def _():
    mo.md(f"""
    # The convergence proof of MAML, step by step

    Stochastic MAML reaches `E‖∇F(w)‖ ≤ ε` within `O(1/ε²)` iterations
    (Fallah, Mokhtari & Ozdaglar, AISTATS 2020) when its inner step, batches
    and step rule satisfy the theorem's conditions. The proof chains seven
    inequalities, numbered (7)–(14) as in {EXPLAINER}. Pick a family and the
    hyperparameters below: the app runs MAML on a few seeds, checks every
    condition, and evaluates every inequality on the run, its measured side
    beside its bound. Break a condition (α above 1/(6L), `B` below 20, a
    constant β, `ε` below the noise floor) and watch which steps lose their
    guarantee.
    """)
    return


@app.cell(hide_code=True)
def _():
    family_ui = mo.ui.dropdown(options=sorted(PRESETS), value="cosine-quadratic", label="family")
    return (family_ui,)


@app.cell(hide_code=True)
def _(family_ui):
    alpha_ui = mo.ui.slider(steps=ALPHA_STEPS, value=ALPHA_L, show_value=True,
                            label="α·L (inner step α as a multiple of 1/L; the theorem: ≤ 1/6 ≈ 0.1667)")
    step_ui = mo.ui.radio(options=STEP_RULES, value=next(iter(STEP_RULES)), label="step rule")
    beta_ui = mo.ui.number(start=0.001, stop=10.0, step=0.001, value=round(BETA_L, 4),
                           label="β·L (constant step only)")
    B_ui = mo.ui.slider(steps=BATCH_STEPS, value=20, show_value=True, label="B, tasks per step (the theorem: ≥ 20)")
    D_in_ui = mo.ui.slider(steps=BATCH_STEPS, value=10, show_value=True, label="D_in, inner batch")
    D_o_ui = mo.ui.slider(steps=BATCH_STEPS, value=10, show_value=True, label="D_o, outer batch")
    eps_ui = mo.ui.number(start=1e-4, stop=100.0, step=1e-4, value=round(default_eps(family_ui.value), 4),
                          label="ε, the target")
    return B_ui, D_in_ui, D_o_ui, alpha_ui, beta_ui, eps_ui, step_ui


@app.cell(hide_code=True)
def _(alpha_ui, family_ui):
    _need = least_D_h(family_ui.value, alpha_ui.value)
    D_h_ui = mo.ui.slider(steps=sorted({*BATCH_STEPS, _need}), value=_need, show_value=True,
                          label=f"D_h, Hessian batch (the theorem: ≥ ⌈2(ασ_H)²⌉ = {_need})")
    return (D_h_ui,)


@app.cell(hide_code=True)
def _(B_ui, D_h_ui, D_in_ui, D_o_ui, alpha_ui, beta_ui, eps_ui, family_ui, step_ui):
    mo.vstack([
        mo.hstack([family_ui, step_ui, beta_ui], justify="start", gap=2),
        mo.hstack([alpha_ui, eps_ui], justify="start", gap=2),
        mo.hstack([B_ui, D_in_ui], justify="start", gap=2),
        mo.hstack([D_o_ui, D_h_ui], justify="start", gap=2),
        mo.md(f"*{family_ui.value}*, at its default setting: {NOTES.get(family_ui.value, '')}"),
    ])
    return


@app.cell(hide_code=True)
def _(B_ui, D_h_ui, D_in_ui, D_o_ui, alpha_ui, beta_ui, eps_ui, family_ui, step_ui):
    # The configuration, in one place: ``app.run(defs={"settings": {...}})``
    # runs every cell below on another one.
    settings = {"family": family_ui.value, "alpha_L": alpha_ui.value, "step": step_ui.value,
                "beta_L": beta_ui.value, "B": B_ui.value, "D_in": D_in_ui.value, "D_o": D_o_ui.value,
                "D_h": D_h_ui.value, "eps": eps_ui.value}
    return (settings,)


@app.cell(hide_code=True)
def _(settings):
    try:
        result, error = explore(**settings), None
    except ValueError as exc:          # an invalid value (e.g. ε ≤ 0): say so, run nothing
        result, error = None, str(exc)
    return error, result


@app.cell(hide_code=True)
def _(error, result):
    mo.stop(result is None, mo.callout(mo.md(f"**Not run**: {error}"), kind="danger"))
    _bad = result.conditions.name[~result.conditions.holds].tolist()
    _verdict = (mo.callout(mo.md("**Inside the theorem**: every condition below holds, so every "
                                 "inequality of the proof applies to this run."), kind="success")
                if not _bad else
                mo.callout(mo.md(f"**Outside the theorem**: {', '.join(_bad)} broken. The steps that rest on "
                                 "them lose their guarantee (the ledger's *guarantee* column says which); they "
                                 "may still hold on this run, since the bounds are loose, and where a row "
                                 "fails the *cause* column names the broken condition."), kind="danger"))
    mo.vstack([mo.md("## Conditions of the MAML theorem"), _verdict,
               mo.md(md_table(result.conditions, ["name", "required", "given", "holds", "statement"]))])
    return


@app.cell(hide_code=True)
def _(result):
    mo.stop(result is None)
    _c = result.ledger.config
    mo.vstack([
        mo.md(f"""
    ## The proof ledger: each inequality, measured against its bound

    One row per step of the proof of (14). *measured* and *bound* are the two
    quantities the inequality compares at its worst row (the least slack);
    *slack* is the room left, at least 1 exactly when the row holds. Run:
    {_c['seeds']} seeds, {_c['iterations']} iterations ({_c['stopped']}),
    α = {fmt(_c['alpha'])}, noise floor {fmt(_c['noise_floor'])}, Δ ≤ {fmt(_c['Delta'])}.
    """),
        mo.md(md_table(result.summary, ["step", "inequality", "measured", "bound", "worst_slack", "held", "rows",
                                        "verdict", "guarantee", "cause", "statement"])),
    ])
    return


@app.cell(hide_code=True)
def _(result):
    mo.stop(result is None)
    mo.vstack([mo.md("## The trajectory"), result.figure,
               mo.md("The guarantee (14) is about the expectation, so the curve is the mean over seeds. "
                     "Below the noise floor the theorem promises nothing more than the floor; (11) and (13) are "
                     "evaluated only while the mean exceeds max{ε, floor}.")])
    return


@app.cell(hide_code=True)
def _(result):
    mo.stop(result is None)
    _cards = []
    for _step in STEPS:
        _s = result.steps[_step]
        _cards.append(mo.vstack([
            mo.md(f"### {_s['title']}\n\n**{STATEMENTS[_step]}**"),
            mo.hstack([mo.md(_s["why"]), mo.md("\n".join(f"* {n}" for n in _s["numbers"]))],
                      widths=[1, 1], gap=2, align="start"),
        ]))
    mo.vstack([mo.md(f"## Each step of the proof, explained beside its numbers\n\nEquation numbers of "
                     f"{EXPLAINER}. Reproduce these numbers with:\n\n```python\n{result.code}\n```"), *_cards])
    return


if __name__ == "__main__":
    app.run()
