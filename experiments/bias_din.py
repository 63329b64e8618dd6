"""Bias of the MAML gradient estimate against the inner batch ``D_in`` (THEORY.md §3–§4).

``G_i`` of (6) is biased because the stochastic inner step sits inside
``∇f_i``.  The bias lemma bounds ``‖E[G_i(w)] − ∇F(w)‖ ≤ (1 + αL)αLσ̃/√D_in``
(``theory.bounds.maml_bias``; the expectation is over the task draw and all
batches).  On a family that declares the law of its inner step (capabilities
``inner_noise_var`` and ``inner_bias`` of ``problems.base.CAPABILITIES``;
``cosine-quadratic``, whose Gaussian noise gives it in closed form) the bias
is computed *exactly*:

* The inner point is ``u_i + Z`` with ``u_i = w − α∇f_i(w)`` and ``Z`` the
  inner step's noise, of coordinate variances ``v = inner_noise_var``.
* The outer batch ``D_o`` is independent and its noise has mean zero, so
  ``E[∇̃f_i(u_i + Z, D_o)] = E[∇f_i(u_i + Z)] = ∇f_i(u_i) + e_i`` with
  ``e_i = inner_bias`` (on cosine-quadratic ``γω(1 − exp(−ω²v/2)) ⊙ sin(ωu_i)``,
  by the Gaussian characteristic function; no quadrature).
* ``D_h`` is independent of both and ``E[∇̃²f_i(w, D_h)] = ∇²f_i(w)``, so
  ``E[G_i] − ∇F = Σ_i p_i (I − α∇²f_i(w)) e_i``.

For smooth losses the bias is ``O(1/D_in)``, not ``O(1/√D_in)``: the
first-order term ``∇²f_i(u_i) E[Z]`` vanishes and what is left is quadratic
in ``Z``.  With A3 (``ρ``-Lipschitz Hessians) this gives
``‖E[G_i] − ∇F‖ ≤ (1 + αL)ρα²σ̃²/(2D_in)`` (``bias_bound_A3``); the lemma's
``1/√D_in`` uses A2 only and is the right rate only for gradients with kinks.
The bias is evaluated at points along an exact-MAML trajectory from
``w_0 = 0`` and at its limit ``w*``, and the spread over points is shown.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import grad_F, inner_points
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import make_family
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck import literature as lit

from . import style
from .analysis import broken_names, loglog_slope, stationary_point

__all__ = ["NAME", "TITLE", "Scale", "cells", "compute", "plot", "claims", "inner_noise_var",
           "expected_G", "exact_bias", "bias_bound_A3"]

NAME = "bias_din"
TITLE = "Bias of the MAML gradient estimate against D_in"

FAMILY = "cosine-quadratic"
VARIANTS = ({}, {"spread": 0.1, "noise_grad": 3.0})   # the default family; noise_floor's (σ̃² ≫ σ²)


class Scale(NamedTuple):
    """The sweep at one scale: one cell per family variant × ``αL``, each
    evaluating the exact bias at every point × ``D_in``."""

    variants: tuple             # family parameters (keyword dicts for make_family)
    alpha_L: tuple              # step sizes α in units of 1/L
    D_in: Sequence[float]       # the inner-batch grid
    trajectory_k: tuple         # exact-MAML iterations k whose w_k are the points (and w*)


_SCALES = {
    "tiny": Scale(VARIANTS[:1], (lit.ALPHA_MAX_LD["maml"],), [1, 3, 10, 30, 100, 1000], (0, 10)),
    "quick": Scale(VARIANTS, (lit.ALPHA_MAX_LD["maml"],), np.unique(np.round(np.logspace(0, 3, 10))),
                   (0, 10, 100)),
    "default": Scale(VARIANTS, (lit.ALPHA_MAX_LD["maml"], 0.5),
                     np.unique(np.round(np.logspace(0, 4, 25))), (0, 10, 100, 1000)),
    "full": Scale(VARIANTS, (lit.ALPHA_MAX_LD["maml"], 0.5, 1.0),
                  np.unique(np.round(np.logspace(0, 5, 51))), (0, 3, 10, 30, 100, 300, 1000, 3000)),
}
RATE_TOL = 0.02     # a fitted slope "is" −1 or −1/2 if within this of its 95% interval


def cells(scale: str) -> list[dict]:
    """One cell per family variant × ``αL``; each computes every point × ``D_in``."""
    s = _SCALES[scale]
    return [{"family": FAMILY, "family_params": v, "alpha_L": float(a),
             "D_in": [int(n) for n in s.D_in], "trajectory_k": list(s.trajectory_k)}
            for v in s.variants for a in s.alpha_L]


# --- the exact bias -----------------------------------------------------------------
_LAW = ("inner_noise_var", "inner_bias")


def _check(family):
    """``family``, if it declares the law of its inner step (``_LAW``)."""
    missing = [c for c in _LAW if not family.offers(c)]
    if missing:
        raise ValueError(f"the closed-form bias needs a family offering {' and '.join(missing)}, "
                         f"got {family.name!r}")
    return family


def inner_noise_var(family, w, alpha: float, D_in) -> np.ndarray:
    """Coordinate variances ``v`` of the inner-step perturbation ``Z`` (module
    docstring), ``(..., d)``; ``D_in`` broadcasts with ``w.shape[:-1]``."""
    return _check(family).inner_noise_var(w, alpha, D_in)


def expected_G(family, w, alpha: float, D_in, var=None) -> np.ndarray:
    """``E[G_i(w)]`` over all three batches for every task ``i``: ``(..., M, d)``.

    ``var`` overrides the inner variances of ``inner_noise_var`` (a test's
    negative control passes a wrong one)."""
    fam = _check(family)
    w = fam._w(w)
    var = fam.inner_noise_var(w, alpha, D_in) if var is None else np.asarray(var, dtype=float)
    u, e = inner_points(fam, w, alpha), fam.inner_bias(w, alpha, var)
    tasks = np.arange(fam.M)
    mean_v = fam.grad(u, tasks) + e
    return mean_v - alpha * fam.hvp(w[..., None, :], tasks, mean_v)


def exact_bias(family, w, alpha: float, D_in) -> np.ndarray:
    """``E[G_i(w)] − ∇F(w) = Σ_i p_i (I − α∇²f_i(w)) e_i`` (task draw and all
    batches), computed without subtracting ``∇F`` so that it stays accurate
    when tiny: ``(..., d)``."""
    fam = _check(family)
    w = fam._w(w)
    e = fam.inner_bias(w, alpha, fam.inner_noise_var(w, alpha, D_in))
    tasks = np.arange(fam.M)
    b = e - alpha * fam.hvp(w[..., None, :], tasks, e)
    return np.einsum("m,...md->...d", fam.p, b)


def bias_bound_A3(alpha, L, rho, sigma_tilde, D_in):
    """Bias of ``G_i`` under A3: ``‖E[G_i(w)] − ∇F(w)‖ ≤ (1 + αL)ρα²σ̃²/(2D_in)``.

    Derivation: with ``Z = −α(∇̃f_i(w, D_in) − ∇f_i(w))``, ``E[Z] = 0`` and
    ``E‖Z‖² ≤ α²σ̃²/D_in`` (A5); ``∇f_i(u + Z) − ∇f_i(u) − ∇²f_i(u)Z =
    ∫₀¹(∇²f_i(u + tZ) − ∇²f_i(u))Z dt`` has norm ``≤ ρ‖Z‖²/2`` (A3), so the
    inner bias is ``≤ ρα²σ̃²/(2D_in)``; then ``‖I − α∇²f_i‖₂ ≤ 1 + αL`` as in
    ``theory.bounds.maml_bias``.  THEORY.md §3 (bias lemma with A3 in place of
    A2), not a bound of the paper; it is the ``O(1/D_in)`` rate of smooth losses.
    """
    return (1 + alpha * L) * rho * alpha ** 2 * sigma_tilde ** 2 / (2 * np.asarray(D_in, dtype=float))


# --- the cell ----------------------------------------------------------------------
def _points(fam, alpha: float, ks) -> tuple[list[str], np.ndarray]:
    """Iterates of exact MAML (step ``1/(12L(w_k))``) from ``w_0 = 0`` at ``ks``, and ``w*``."""
    hyper, w, k_prev, out = Hyper("exact", alpha=alpha), np.zeros(fam.d), 0, []
    for k in sorted(ks):
        if k > k_prev:
            w = run(fam, hyper, [1e-300], seeds=1, budget=k - k_prev, w0=w, stop_at_eps=False).w[0]
        out.append(w)
        k_prev = k
    return [f"k = {k}" for k in sorted(ks)] + ["w*"], np.array(out + [stationary_point(fam, alpha)])


def compute(params: dict) -> pd.DataFrame:
    """Exact bias and both bounds at every point × ``D_in``: one row each."""
    fam = make_family(params["family"], **params["family_params"])
    c = fam.constants().values()
    alpha = params["alpha_L"] / c["L"]
    labels, W = _points(fam, alpha, params["trajectory_k"])
    D = np.asarray(params["D_in"])
    bias = np.linalg.norm(exact_bias(fam, np.broadcast_to(W[:, None, :], (len(W), D.size, fam.d)),
                                     alpha, D[None, :]), axis=-1)
    bad = broken_names(c, Hyper("maml", alpha=alpha, D_h=bounds.D_h_min(algorithm="maml", alpha=alpha, sigma_H=c["sigma_H"])))
    P = len(labels)
    return pd.DataFrame({
        "point": np.repeat(labels, D.size),
        "k": pd.array(np.repeat([int(s.split()[-1]) if s != "w*" else None for s in labels], D.size),
                      dtype="Int64"),
        "grad_F_norm": np.repeat(np.linalg.norm(grad_F(fam, W, alpha), axis=-1), D.size),
        "D_in": np.tile(D, P), "bias": bias.ravel(),
        "bound": np.tile(bounds.maml_bias(alpha=alpha, L=c["L"], sigma_tilde=c["sigma_tilde"], D_in=D), P),
        "bound_A3": np.tile(bias_bound_A3(alpha, c["L"], c["rho"], c["sigma_tilde"], D), P),
    }).assign(**fam.describe(), family_params=json.dumps(params["family_params"], sort_keys=True),
              **c, alpha=alpha, alpha_L=params["alpha_L"], broken=bad)


# --- analysis -----------------------------------------------------------------------
def _groups(table: pd.DataFrame):
    """``(label, rows)`` per family variant × ``αL``."""
    for (fp, aL), g in table.groupby(["family_params", "alpha_L"], sort=False):
        params = json.loads(fp)
        fam = ", ".join(f"{k}={v:g}" for k, v in params.items()) or "defaults"
        yield f"{g.family.iloc[0]} ({fam}), αL = {aL:.3g}", g


def _slopes(g: pd.DataFrame) -> pd.DataFrame:
    """Fitted slope of log bias on log D_in, with its 95% interval, per point."""
    return pd.DataFrame([(p, *loglog_slope(s.D_in, s.bias)) for p, s in g.groupby("point", sort=False)],
                        columns=["point", "slope", "lo", "hi"])


def _rate_verdict(lo: float, hi: float) -> str:
    """The rate a slope interval is consistent with, up to ``RATE_TOL``: ``1/D_in``
    (smooth loss, THEORY.md §3 with A3), ``1/√D_in`` (the lemma's), or neither."""
    def near(r):
        return lo - RATE_TOL <= r <= hi + RATE_TOL
    if near(-1.0):
        return "rate 1/D_in (smooth loss): the bound's 1/√D_in is loose in rate"
    if near(-0.5):
        return "matches the bound's rate 1/√D_in"
    return "neither 1/D_in nor 1/√D_in"


_BOUNDS = (("bound", "(1+αL)αLσ̃/√D_in (bias lemma, §3–§4)", "THEORY.md §3–§4, bias lemma"),
           ("bound_A3", "(1+αL)ρα²σ̃²/(2D_in) (A3 refinement)",
            "THEORY.md §2, A3 (ρ-Lipschitz Hessians): refinement of the bias lemma"))


def bias_check(label: str, g: pd.DataFrame, col: str, name: str, equation: str) -> Check:
    """The exact bias within one bound at every ``D_in`` and point: an upper check
    of the largest bias/bound against 1."""
    r = g.bias / g[col]
    bad, n = int((r > 1).sum()), len(g)
    where = f"at all {n} (D_in, w) pairs" if not bad else f"exceeded at {bad} of {n} (D_in, w) pairs"
    return Check(f"bias ≤ {name} at every D_in and point, {label} [broken: {g.broken.iloc[0]}]: max bias/bound",
                 equation, float(r.max()), 1.0, "upper",
                 context={"group": label, "note": f"{where}; bias/bound in [{r.min():.2g}, {r.max():.2g}]"})


def rate_check(label: str, g: pd.DataFrame) -> Check:
    """The bias falls at least as fast as the lemma's ``1/√D_in`` (THEORY.md §3):
    an upper check of the slope of log bias on log D_in against −1/2, over the
    points' 95% intervals, up to ``RATE_TOL``; the note names the rate found."""
    sl = _slopes(g)
    lo, hi = sl.lo.min(), sl.hi.max()
    return Check(f"slope of log bias against log D_in ≤ −1/2 (the bias falls at least as fast as the lemma's "
                 f"1/√D_in), {label} (median over {len(sl)} points)",
                 "THEORY.md §3–§4, bias lemma", float(sl.slope.median()), -0.5, "upper", lo=lo, hi=hi,
                 tol=RATE_TOL, context={"group": label,
                                        "note": f"95% CI over points [{lo:.3f}, {hi:.3f}]: {_rate_verdict(lo, hi)}"})


def claims(table: pd.DataFrame) -> list[Check]:
    """Per family variant × ``αL``: bias ≤ lemma bound at every ``D_in`` and point;
    bias ≤ the A3 bound; the fitted slope (bound: −1/2)."""
    checks = []
    for label, g in _groups(table):
        checks += [bias_check(label, g, *b) for b in _BOUNDS]
        checks.append(rate_check(label, g))
    return checks


# --- figures ---------------------------------------------------------------------
def _spread(g: pd.DataFrame, col: str):
    """Median and min–max over points, per ``D_in``."""
    s = g.groupby("D_in")[col]
    return s.median(), s.min(), s.max()


def _local_slopes(g: pd.DataFrame) -> pd.DataFrame:
    """``Δ log bias / Δ log D_in`` between neighbouring grid values, per point,
    placed at the geometric midpoint of the two ``D_in``."""
    out = []
    for p, s in g.sort_values("D_in").groupby("point", sort=False):
        lD, lb = np.log(s.D_in.to_numpy(float)), np.log(s.bias.to_numpy())
        out.append(pd.DataFrame({"point": p, "D_in": np.exp((lD[1:] + lD[:-1]) / 2),
                                 "slope": np.diff(lb) / np.diff(lD)}))
    return pd.concat(out, ignore_index=True)


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Bias and bounds against ``D_in`` per cell; the local slope against ``D_in``."""
    groups = list(_groups(table))
    fig, axes = style.figure(len(groups), figsize=(4.6 * len(groups), 4.2), squeeze=False)
    for ax, (label, g) in zip(axes[0], groups):
        m, lo, hi = _spread(g, "bias")
        style.measured_line(ax, m.index, m.values, lo.values, hi.values,
                            label=f"exact bias (median, min–max over {g.point.nunique()} points w)")
        first = g[g.point == g.point.iloc[0]]
        style.bound_line(ax, first.D_in, first.bound, "bias lemma (1+αL)αLσ̃/√D_in (§3–§4)")
        ax.plot(first.D_in, first.bound_A3, ls=":", color=style.BOUND, lw=1.6,
                label="A3 refinement (1+αL)ρα²σ̃²/(2D_in)")
        ax.set(xscale="log", yscale="log", xlabel="inner batch D_in", ylabel="‖E[G_i(w)] − ∇F(w)‖",
               title=label.replace(", αL", "\nαL"))
    axes[0][0].legend(loc="lower left")
    paths = style.save(fig, outdir, NAME)

    fig, ax = style.figure()
    for j, (label, g) in enumerate(groups):
        per = _local_slopes(g).groupby("D_in").slope
        style.measured_line(ax, per.median().index, per.median().values, per.min().values, per.max().values,
                            color=style.ALT[j % len(style.ALT)], marker="osD^v"[j % 5], markevery=(j, 4),
                            label=label)
    xs = [table.D_in.min(), table.D_in.max()]
    style.bound_line(ax, xs, [-0.5, -0.5], "bias lemma (§3–§4): slope −1/2")
    ax.plot(xs, [-1, -1], ls=":", color=style.BOUND, lw=1.6, label="A3 refinement: slope −1")
    ax.set(xscale="log", ylim=(-1.15, -0.35), xlabel="inner batch D_in",
           ylabel="local slope d log bias / d log D_in", title="Rate of the bias: measured (solid, min–max over points) vs the bounds'")
    ax.legend(loc="center right", fontsize=7.5)
    return paths + style.save(fig, outdir, f"{NAME}_slope")
