"""F is not globally smooth: measured local Lipschitz ratios against ``L(w)`` (THEORY.md §3).

The smoothness lemma (``α ≤ 1/L``) gives, for all ``w, u``,
``‖∇F(w) − ∇F(u)‖ ≤ (4L + 2ρα min{E_i‖∇f_i(w)‖, E_i‖∇f_i(u)‖})‖w − u‖`` and
``|F(u) − F(w) − ∇F(w)ᵀ(u − w)| ≤ (L(w)/2)‖u − w‖²`` with
``L(w) = 4L + 2ρα E_i‖∇f_i(w)‖`` (``theory.bounds.smooth_local_L``).  Measured
here at many points ``w`` (random points at log-uniform distances up to far
from the stationary point ``w*``, and iterates of adaptive MAML from far
starts), with ``u = w + h v``, ``h = 10⁻⁵·max(1, ‖w‖)``:

* first order: ``‖∇F(u) − ∇F(w)‖/h`` against ``min{L(w), L(u)}``;
* second order: ``|F(u) − F(w) − h∇F(w)ᵀv|/(½h²)`` against ``L(w)``;

for ``v`` the best of a few random unit directions and for ``v`` found by
power iteration on finite differences of ``∇F`` (close to the top
eigenvector of ``∇²F(w)``, so the ratio approaches the local Lipschitz
constant itself).  Everything is vectorised over the points.

Families: ``cosine-quadratic`` with ``ρ = γω³ = 10.8`` (task gradients grow
linearly, so ``E_i‖∇f_i‖`` spans decades and the ratio should follow the
``2ρα E_i‖∇f_i‖`` term), and ``robust-regression`` (bounded task gradients,
which vanish far away where the residuals are large: there ``L(w)`` varies
little, and the ratio rises with ``E_i‖∇f_i‖`` for another reason: far out
the loss flattens, so gradients and curvature shrink together).  ``α = 1/(6L)`` for both.

Finite differences: a ratio exceeds its bound "numerically" only beyond a
relative slack ``FD_RTOL`` (rounding in ``∇F(u) − ∇F(w)`` and in the
second difference of ``F``), stated in the claim.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F, grad_F, local_L, mean_task_grad_norm
from mamlcheck.problems import make_family
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck import literature as lit

from . import style
from .analysis import CI, fit_line, stationary_point
from .step_sizes import adaptive_trajectory, far_starts

__all__ = ["NAME", "TITLE", "cells", "compute", "plot", "claims", "local_ratios"]

NAME = "local_smoothness"
TITLE = "F is not globally smooth: local Lipschitz ratios against L(w) = 4L + 2ρα E_i‖∇f_i(w)‖"

FAMILIES = {
    "cosine-quadratic": {"params": {"gamma": 0.05, "omega": 6.0}, "radii": (1e-2, 1e3), "traj_radius": 100.0},
    "robust-regression": {"params": {}, "radii": (1e-2, 1e2), "traj_radius": 10.0},
}
ALPHA_L = lit.ALPHA_MAX_LD["maml"]
H_REL = 1e-5             # ‖u − w‖ = H_REL·max(1, ‖w‖)
N_RANDOM = 4             # random unit directions per point (the largest ratio is kept)
N_POWER = 12             # power iterations for the top direction of ∇²F(w)
FD_RTOL = 1e-4           # relative slack for finite-difference rounding in the verdicts
class Scale(NamedTuple):
    """The size of this experiment at one scale (random points, trajectory seeds, trajectory steps, points per trajectory)."""

    points: Any
    seeds: Any
    steps: Any
    per_trajectory: Any


SCALES = {
    "tiny": Scale(points=60, seeds=4, steps=40, per_trajectory=10),
    "quick": Scale(points=300, seeds=8, steps=200, per_trajectory=20),
    "default": Scale(points=1500, seeds=24, steps=800, per_trajectory=40),
    "full": Scale(points=10000, seeds=64, steps=3000, per_trajectory=100),
}


def cells(scale: str) -> list[dict]:
    """Per family: one cell of random points, one of adaptive-MAML trajectory points."""
    s = SCALES[scale]
    P, R, K, n_k = s.points, s.seeds, s.steps, s.per_trajectory
    out = []
    for fam, spec in FAMILIES.items():
        base = {"family": fam, "family_params": spec["params"], "alpha_L": ALPHA_L}
        out.append({**base, "source": "random", "points": P, "radii": list(spec["radii"]), "seed": 0})
        out.append({**base, "source": "trajectory", "seeds": R, "budget": K, "points_per_seed": n_k,
                    "radius": spec["traj_radius"]})
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def local_ratios(family, W: np.ndarray, alpha: float, rng: np.random.Generator) -> pd.DataFrame:
    """First- and second-order ratios at each row of ``W`` (``(P, d)``), for the
    best of ``N_RANDOM`` random unit directions and for the power-iterated one;
    one row per point × direction kind."""
    h = (H_REL * np.maximum(1.0, np.linalg.norm(W, axis=-1)))[:, None]
    g_w, F_w = grad_F(family, W, alpha), F(family, W, alpha)

    def ratios(V):
        U = W + h * V
        r1 = np.linalg.norm(grad_F(family, U, alpha) - g_w, axis=-1) / h[:, 0]
        r2 = np.abs(F(family, U, alpha) - F_w - h[:, 0] * np.sum(g_w * V, -1)) / (0.5 * h[:, 0] ** 2)
        return r1, r2, U

    trials = [ratios(_unit(rng.standard_normal(W.shape))) for _ in range(N_RANDOM)]
    j = np.argmax(np.stack([t[0] for t in trials]), axis=0)           # the largest first-order ratio
    pick = np.arange(W.shape[0])
    best = tuple(np.stack([t[m] for t in trials])[j, pick] for m in range(3))
    V = _unit(rng.standard_normal(W.shape))
    for _ in range(N_POWER):
        V = _unit(grad_F(family, W + h * V, alpha) - grad_F(family, W - h * V, alpha))
    power = ratios(V)
    L_w = local_L(family, W, alpha)
    g = mean_task_grad_norm(family, W)
    frames = []
    for kind, (r1, r2, U) in (("random", best), ("power", power)):
        frames.append(pd.DataFrame({
            "point": np.arange(W.shape[0]), "direction": kind, "h": h[:, 0],
            "w_norm": np.linalg.norm(W, axis=-1), "mean_task_grad_norm": g,
            "L_w": L_w, "L_u": local_L(family, U, alpha), "ratio1": r1, "ratio2": r2}))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(bound1=np.minimum(out.L_w, out.L_u), bound2=out.L_w)


def compute(params: dict) -> pd.DataFrame:
    """Sample the points of one cell and measure their ratios (see module)."""
    fam = make_family(params["family"], **params["family_params"])
    c = fam.constants().values()
    alpha = params["alpha_L"] / c["L"]
    w_star = stationary_point(fam, alpha)
    if params["source"] == "random":
        rng = np.random.default_rng(params["seed"])
        P = params["points"]
        lo, hi = np.log10(params["radii"])
        r = 10 ** rng.uniform(lo, hi, P)
        W = w_star + r[:, None] * _unit(rng.standard_normal((P, fam.d)))
        meta = {"radius": r, "k": np.full(P, np.nan), "seed": np.full(P, params["seed"])}
    else:
        hyper = Hyper("maml", alpha=alpha, B=lit.B_MIN, D_h=bounds.D_h_min(algorithm="maml", alpha=alpha, sigma_H=c["sigma_H"]))
        R, K = params["seeds"], params["budget"]
        W0 = far_starts(fam, params["radius"], R, centre=w_star)
        ks, Ws, _ = adaptive_trajectory(fam, hyper, W0, K, max(1, K // params["points_per_seed"]))
        W = Ws.reshape(-1, fam.d)
        rng = np.random.default_rng(1)
        meta = {"radius": np.linalg.norm(W - w_star, axis=-1), "k": np.repeat(ks, R),
                "seed": np.tile(np.arange(R), len(ks))}
    rows = local_ratios(fam, W, alpha, rng)
    idx = rows.point.values
    rows = rows.assign(**{k: np.asarray(v)[idx] for k, v in meta.items()})
    return rows.assign(family=fam.name, source=params["source"], **c, alpha=alpha, alpha_L=params["alpha_L"])


# --- analysis (from the table alone) ---------------------------------------------
def _spearman_ci(x, y, level: float = CI) -> tuple[float, float, float]:
    """Spearman's rank correlation with a Fisher-z interval (standard error
    ``√(1.06/(n − 3))``, Fieller, Hartley & Pearson 1957)."""
    rs = float(stats.spearmanr(x, y).statistic)
    n = len(x)
    if n < 5:
        return rs, float("nan"), float("nan")
    z, half = np.arctanh(np.clip(rs, -0.999999, 0.999999)), stats.norm.ppf(0.5 + level / 2) * np.sqrt(1.06 / (n - 3))
    return rs, float(np.tanh(z - half)), float(np.tanh(z + half))


_CHECKS = (("ratio1", "bound1", "‖∇F(u) − ∇F(w)‖/‖u − w‖ ≤ min{L(w), L(u)}"),
           ("ratio2", "bound2", "abs(F(u) − F(w) − ∇F(w)ᵀ(u − w))/(½‖u − w‖²) ≤ L(w)"))


SMOOTHNESS = "THEORY.md §3, smoothness lemma"


def ratio_check(fam: str, what: str, q: pd.Series) -> Check:
    """One inequality of the smoothness lemma (THEORY.md §3) at every sampled
    point and direction: an upper check of the largest ratio/bound against 1,
    with ``FD_RTOL`` allowed for finite-difference rounding."""
    n_over = int((q > 1 + FD_RTOL).sum())
    return Check(f"{fam}: {what} at every sampled point (smoothness lemma, §3): max ratio/bound", SMOOTHNESS,
                 float(q.max()), 1.0, "upper", tol=FD_RTOL,
                 context={"family": fam, "note": (f"within the bound at {len(q) - n_over}/{len(q)} point-directions, "
                                                  f"slack {FD_RTOL:g} for rounding; median ratio/bound "
                                                  f"{float(q.median()):.2f}")})


def trend_check(fam: str, p: pd.DataFrame) -> Check:
    """The first-order ratio grows with ``E_i‖∇f_i(w)‖``, as ``L(w)`` does
    (THEORY.md §3): a lower check, against 0, of Spearman's rank correlation
    along the power direction (its 95% CI)."""
    rs, lo, hi = _spearman_ci(p.mean_task_grad_norm, p.ratio1)
    return Check(f"{fam}: first-order ratio grows with E_i‖∇f_i(w)‖ (Spearman rank correlation, "
                 f"power direction)", SMOOTHNESS, rs, 0.0, "lower", lo=lo, hi=hi,
                 context={"family": fam, "note": f"95% CI [{lo:.3f}, {hi:.3f}], {len(p)} points"})


def slope_report(fam: str, p: pd.DataFrame) -> Check:
    """The OLS slope of the first-order ratio in ``E_i‖∇f_i(w)‖`` beside the
    bound's slope ``2ρα`` (THEORY.md §3), reported: the lemma bounds the ratio,
    not the slope of its fit."""
    f = fit_line(p.mean_task_grad_norm, p.ratio1)
    s, s_lo, s_hi = f["slope"], f["lo"], f["hi"]
    slope_bound = lit.SMOOTH_RHO_FACTOR * float(p.rho.iloc[0]) * float(p.alpha.iloc[0])
    note = f"95% CI [{s_lo:.3g}, {s_hi:.3g}]" + (f"; slope/2ρα = {s / slope_bound:.2f}" if slope_bound > 0 else "")
    return Check(f"{fam}: slope of the first-order ratio in E_i‖∇f_i(w)‖ (OLS) against the "
                 f"bound's slope 2ρα", SMOOTHNESS, s, slope_bound, "report", lo=s_lo, hi=s_hi,
                 context={"family": fam, "note": note})


def claims(table: pd.DataFrame) -> list[Check]:
    """Per family: every ratio within its bound (largest ratio/bound), and the
    growth of the power-direction ratio with ``E_i‖∇f_i(w)‖`` (Spearman's ρ
    with CI; OLS slope with CI against the bound's slope ``2ρα``)."""
    checks = []
    for fam, t in table.groupby("family", sort=False):
        checks += [ratio_check(fam, what, t[col] / t[bcol]) for col, bcol, what in _CHECKS]
        p = t[t.direction == "power"]
        checks += [trend_check(fam, p), slope_report(fam, p)]
    return checks


# --- figures ------------------------------------------------------------------
_SRC = {"random": ("random points", style.ALT[0]), "trajectory": ("adaptive-MAML iterates", style.ALT[1])}


def _panel(ax, t: pd.DataFrame, col: str, bound_label: str) -> None:
    g = t.mean_task_grad_norm
    rnd = t[t.direction == "random"]
    ax.scatter(rnd.mean_task_grad_norm, rnd[col], s=5, color="0.65", alpha=0.5, lw=0,
               label=f"best of {N_RANDOM} random directions")
    for src, (label, color) in _SRC.items():
        p = t[(t.direction == "power") & (t.source == src)]
        if len(p):
            ax.scatter(p.mean_task_grad_norm, p[col], s=7, color=color, alpha=0.7, lw=0,
                       label=f"{label}, power direction")
    xs = np.geomspace(max(g.min(), 1e-300), g.max(), 200)
    c0 = t.iloc[0]
    style.bound_line(ax, xs, bounds.smooth_local_L(L=c0.L, rho=c0.rho, alpha=c0.alpha, mean_grad_norm=xs), bound_label)
    ax.set(xscale="log", yscale="log", xlabel="E_i‖∇f_i(w)‖ (mean task-gradient norm)",
           title=f"{c0.family} (L = {c0.L:.3g}, ρ = {c0.rho:.3g}, αL = {c0.alpha_L:.3g})")
    ax.legend(fontsize=7.5, loc="best", markerscale=2)


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Scatter of each ratio against ``E_i‖∇f_i(w)‖`` with the lemma's ``L(w)``, one panel per family."""
    fams = list(dict.fromkeys(table.family))
    paths = []
    label = "L(w) = 4L + 2ρα E_i‖∇f_i(w)‖ (smoothness lemma, §3)"
    for col, name, ylabel in (("ratio1", "first_order", "‖∇F(u) − ∇F(w)‖ / ‖u − w‖"),
                              ("ratio2", "second_order", "|F(u) − F(w) − ∇F(w)ᵀ(u−w)| / (½‖u−w‖²)")):
        fig, axes = style.figure(len(fams), figsize=(6.0 * len(fams), 4.6), squeeze=False)
        for ax, fam in zip(axes[0], fams):
            _panel(ax, table[table.family == fam], col, label)
            ax.set_ylabel(ylabel)
        paths += style.save(fig, outdir, f"{NAME}_{name}")
    return paths
