"""The proof ledger as a registered experiment: one cell, the default proof run.

``cells(scale)``: the default run (``proof_cmd.default_spec``) at the scale's
Monte Carlo sizes; ``compute``: the ``Ledger`` as one table
(``Ledger.to_table``: the checked rows first, then the trajectory, constants,
conditions and configuration); ``plot`` draws the figure and writes the
walkthrough from that table alone, so ``mamlcheck plot proof_ledger``
redraws both; ``section`` is the report's section; ``claims``: one ``Check``
per step of the proof (no row violated).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from mamlcheck.theory.checks import Check
from mamlcheck.theory.proof import STATEMENTS, STEPS

from . import ledger
from .proof_cmd import FIGURE, WALKTHROUGH, Spec, default_spec
from .proof_cmd import plot as plot_ledger
from .proof_walkthrough import _md_table, walkthrough

NAME = "proof_ledger"
TITLE = "The proof, step by step (proof ledger)"


def cells(scale: str) -> list[dict]:
    return [dataclasses.asdict(default_spec(scale=scale))]


def compute(params: dict) -> pd.DataFrame:
    spec = Spec(**params)
    led = spec.run()
    led.config["command"] = spec.command()
    return led.to_table()


def _ledger(table: pd.DataFrame) -> ledger.Ledger:
    return ledger.Ledger.from_table(table)


def plot(table: pd.DataFrame, outdir) -> list[Path]:
    """The figure and the walkthrough (which links it), from the table."""
    led, outdir = _ledger(table), Path(outdir)
    figs = plot_ledger(led, outdir)
    md = outdir / WALKTHROUGH
    md.write_text(walkthrough(led, led.config.get("command", ""), [f for f in figs if f.suffix == ".png"], outdir))
    return [md, *figs]


def claims(table: pd.DataFrame) -> list[Check]:
    """Per step of the proof: the rows violated (bound 0)."""
    led = _ledger(table)
    out = []
    for s in led.summary.itertuples():
        if s.step in STEPS and s.rows:
            out.append(Check(STATEMENTS[s.step], s.step, float(s.violated), 0.0, "upper",
                             context={"note": f"{s.held}/{s.rows} rows held; worst slack {ledger.fmt(s.worst_slack)}"}))
    return out


def section(table: pd.DataFrame, figures: list[Path], report_dir: Path, results: Path) -> str:
    """The report's section: the run, the walkthrough link and one row per step."""
    led = _ledger(table)
    report_dir = Path(report_dir)
    csv = os.path.relpath(Path(results) / f"{NAME}.csv", report_dir)
    rows = [(r[0], r[1], r[2], r[6], r[7], r[9]) for r in ledger.summary_cells(led.summary)]
    c = led.config
    return "\n".join([
        f"## {TITLE}", "",
        f"Every inequality of the proof of (14) on one run ({c['family']}, {c['algorithm']}, "
        f"ε = {ledger.fmt(c['eps'])}, {c['seeds']} seeds; conditions "
        f"{'all hold' if not led.broken else 'broken: ' + ', '.join(led.broken)}). "
        f"Walkthrough: [{WALKTHROUGH}]({WALKTHROUGH}); every checked row: `{csv}` (written by `make "
        f"reproduce`, not committed).", "",
        f"![proof ledger]({FIGURE}.png)", "",
        _md_table(("step", "inequality", "rows", "fraction held", "worst slack", "cause"), rows), "",
    ])
