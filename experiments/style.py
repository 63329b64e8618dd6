"""One figure style for every experiment: measured values solid with a seed
band, bounds dashed and named by their equation, log axes where rates show."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MEASURED = "#1f4e79"      # measurements: solid, dark blue
BOUND = "#c0392b"         # upper bounds: dashed, red
LOWER = "#27ae60"         # lower bounds: dash-dot, green
ALT = ("#1f4e79", "#e67e22", "#8e44ad", "#16a085", "#7f8c8d")   # several measured series

RC = {
    "figure.figsize": (6.4, 4.2), "figure.dpi": 110, "savefig.dpi": 150,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "legend.frameon": False, "legend.fontsize": 8.5, "axes.titlesize": 11, "axes.labelsize": 10,
    "svg.hashsalt": "mamlcheck", "svg.fonttype": "none",
}


REFERENCE = "0.45"        # guide lines (a rate's slope): thin, grey


def figure(ncols: int = 1, nrows: int = 1, **kw):
    """A new figure with the suite's style (``nrows`` rows of ``ncols`` panels)."""
    plt.rcParams.update(RC)
    size = kw.pop("figsize", (6.4 * ncols if ncols > 1 else 6.4, 4.2 * nrows))
    return plt.subplots(nrows, ncols, figsize=size, **kw)


def legend_below(ax, ncol: int = 1, gap: float = 0.2, **kw):
    """The axes' legend under its x label, out of the data's way."""
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -gap), ncol=ncol, **kw)


def slope_guide(ax, x, x0: float, y0: float, slope: float, label: str, **kw):
    """A reference line ``y = y0·(x/x0)^slope`` over ``x`` (log-log): thin, grey, dashed."""
    x = np.asarray(x, float)
    return ax.plot(x, y0 * (x / x0) ** slope, ls="--", color=REFERENCE, lw=1.1, label=label, zorder=1, **kw)


def confidence_text(delta: float) -> str:
    """A confidence level as a reader says it: ``1 − δ = 0.999999`` becomes
    ``99.9999 % interval (false-alarm 1e-6)``, not a string of nines."""
    return f"{100 * (1 - delta):.10g} % interval (false-alarm {delta:.0e})".replace("e-0", "e-")


def bound_line(ax, x, y, label, lower: bool = False, **kw):
    """A bound: dashed red (upper) or dash-dot green (lower), labelled by its equation."""
    return ax.plot(x, y, ls="-." if lower else "--", color=LOWER if lower else BOUND, lw=1.6, label=label, **kw)


def measured_line(ax, x, y, lo=None, hi=None, label="measured", color=MEASURED, marker="o", **kw):
    """A measurement, with its seed spread [lo, hi] as a band when given."""
    line = ax.plot(x, y, color=color, marker=marker, ms=4, lw=1.6, label=label, **kw)
    if lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
    return line


def save(fig, outdir: Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.svg`` (no timestamps, so reruns are identical)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = [outdir / f"{name}.png", outdir / f"{name}.svg"]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths
