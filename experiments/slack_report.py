"""The slack report as a registered experiment: blocks of draws as cells.

``cells(scale)``: the scale's draws (``slack.SCALE_EXAMPLES``) in blocks of
``BLOCK``; each draw is seeded by its index alone, so the blocks concatenate
to ``slack.compute(examples)`` exactly.  ``plot`` and ``section`` are the
slack report's figure and table; ``claims``: per constant, the draws on
which its bound was violated (bound 0).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mamlcheck.theory.checks import Check

from . import slack
from .slack_checks import MC_SAMPLES, fmt_const

NAME = slack.NAME
TITLE = slack.TITLE
BLOCK = 100


def cells(scale: str) -> list[dict]:
    n = slack.SCALE_EXAMPLES[scale]
    return [{"start": s, "stop": min(s + BLOCK, n), "root": slack.ROOT_SEED, "mc_samples": MC_SAMPLES}
            for s in range(0, n, BLOCK)]


def compute(params: dict) -> pd.DataFrame:
    return slack.compute(params["stop"], params["root"], params["mc_samples"], start=params["start"])


def plot(table: pd.DataFrame, outdir) -> list[Path]:
    return slack.plot(table, outdir)


def claims(table: pd.DataFrame) -> list[Check]:
    """Per constant: the number of draws that violated its bound (must be 0)."""
    return [Check(f"{r.constant} (stated {fmt_const(r.stated)}) holds on every draw", r.reference,
                  float(r.violations), 0.0, "upper",
                  context={"note": f"tightest ratio {r.tightest_ratio:.4g} over {r.draws} draws"})
            for r in slack.summary(table).itertuples()]


def section(table: pd.DataFrame, figures: list[Path], report_dir: Path, results: Path) -> str:
    return slack.markdown(table, figures, Path(report_dir))
