"""Step sizes: the adaptive rule ``β_k = 1/(12 L̃(w_k))`` against constant ``β`` (THEORY.md §3–§4).

``F`` is not globally smooth: its local constant ``L(w) = 4L + 2ρα E_i‖∇f_i(w)‖``
grows with the task gradients, so the MAML theorem takes
``β_k = 1/(12 L̃(w_k))`` with an independent estimate ``L̃`` (step-size
lemma).  Measured here, from starts at distance ``r`` from the mean task
centre (random direction per seed): the fraction of seeds that diverge
(the runner's mark: ``‖w‖ > 10⁸`` or non-finite) for each constant ``β``
and for the adaptive rule, the final ``‖∇F‖`` within the same budget, and
``L(w_k)`` along adaptive trajectories.

Family: ``cosine-quadratic`` with a large ``ρ = γω³`` (``γ = 0.05``,
``ω = 6``: ``ρ = 10.8``, ``L = 5.8``), the one family here whose task
gradients are unbounded, so that ``L(w)`` far from the optimum is many
times ``4L``; ``α = 1/(6L)``, ``B = 20``.  The other families have bounded
gradients (``robust-regression``: ``|φ'| ≤ 1/√2``; the hard chain), so
their ``L(w)`` stays within a constant factor of ``4L``.

What to expect: far from the optimum ``∇F(w) ≈ (I − αH(w))(I − αA)A(w − c̄)``
with ``H`` bounded, so ``∇F`` grows only linearly and a constant step is
stable or unstable at about the same ``β`` from every start; the large
``L(w)`` far out comes from the oscillating curvature term
``α∇³f_i[∇f_i(u_i)]``, which ``β`` sees only through the secant.  The table
tells whether the divergence threshold moves with ``r``.

``L(w_k)`` is evaluated exactly (``algorithms.objective.local_L``) on
iterates of the same configuration from the trajectory engine (``algorithms.engine``)
in a seed-batched loop (the runner's trace holds ``β_k``, not ``w_k``);
``1/(12β_k) = L̃(w_k)`` is recorded beside it as the rule's own estimate.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from pathlib import Path

import numpy as np
import pandas as pd

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import grad_F, local_L, mean_task_grad_norm
from mamlcheck.algorithms.runner import run
from mamlcheck.algorithms.engine import trajectory
from mamlcheck.problems import make_family
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck import literature as lit

from . import style
from .analysis import conditions_note

__all__ = ["NAME", "TITLE", "cells", "compute", "plot", "claims", "far_starts", "adaptive_trajectory"]

NAME = "step_sizes"
TITLE = "Step sizes: the adaptive β_k = 1/(12 L̃(w_k)) against constant β, from far starts"

FAMILY = "cosine-quadratic"
FAMILY_PARAMS = {"gamma": 0.05, "omega": 6.0}
ALPHA_L = lit.ALPHA_MAX_LD["maml"]
B = lit.B_MIN
class Scale(NamedTuple):
    """The size of this experiment at one scale (seeds, budget, start radii, constant β·L values, trajectory steps)."""

    seeds: Any
    budget: Any
    radii: Any
    beta_L: Any
    trajectory_steps: Any


SCALES = {
    "tiny": Scale(seeds=8, budget=60, radii=(1.0, 100.0), beta_L=(0.5, 6.0), trajectory_steps=60),
    "quick": Scale(seeds=16, budget=200, radii=(1.0, 10.0, 100.0), beta_L=(0.25, 1.0, 2.0, 3.0, 3.5, 4.0, 6.0), trajectory_steps=300),
    "default": Scale(seeds=32, budget=400, radii=(1.0, 10.0, 100.0), beta_L=(0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 3.5, 3.75, 4.0, 5.0, 8.0), trajectory_steps=1500),
    "full": Scale(seeds=128, budget=2000, radii=(1.0, 3.0, 10.0, 30.0, 100.0, 1000.0), beta_L=(0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5, 5.0, 8.0), trajectory_steps=5000),
}
TRACE_POINTS = 80
BAND = (0.1, 0.9)


def cells(scale: str) -> list[dict]:
    """Per start radius: one cell per step rule (adaptive, each constant β),
    and one trajectory cell (``L(w_k)`` along adaptive iterates)."""
    s = SCALES[scale]
    R, K, radii, betas, K_traj = s.seeds, s.budget, s.radii, s.beta_L, s.trajectory_steps
    base = {"family": FAMILY, "family_params": FAMILY_PARAMS, "alpha_L": ALPHA_L, "B": B, "seeds": R}
    out = []
    for r in radii:
        out.append({**base, "kind": "run", "radius": r, "step": "adaptive", "beta_L": None, "budget": K})
        out += [{**base, "kind": "run", "radius": r, "step": "constant", "beta_L": b, "budget": K} for b in betas]
        out.append({**base, "kind": "trajectory", "radius": r, "step": "adaptive", "beta_L": None,
                    "budget": K_traj})
    return out


def far_starts(family, radius: float, R: int, seed: int = 0, centre=None) -> np.ndarray:
    """``R`` starts ``centre + radius·u_r``, ``u_r`` uniform on the unit sphere
    (the same for every step rule at this radius); ``centre`` defaults to
    where the family's tasks sit (capability ``centre_and_length``), else 0."""
    rng = np.random.default_rng([seed, int(round(radius * 1000))])
    u = rng.standard_normal((R, family.d))
    if centre is None:
        centre = family.centre_and_length()[0] if family.offers("centre_and_length") else np.zeros(family.d)
    return centre + radius * u / np.linalg.norm(u, axis=1, keepdims=True)


def adaptive_trajectory(family, hyper: Hyper, w0: np.ndarray, steps: int, stride: int, root: int = 0):
    """Iterates of ``hyper`` from the trajectory engine (all seeds at once)
    every ``stride`` steps: ``(ks, W, betas)`` with ``W`` of shape
    ``(len(ks), R, d)`` and ``betas[j]`` the step taken at ``ks[j]``
    (NaN at the last point).  Diverged seeds are frozen (the engine's rule)."""
    ks, W, betas = [], [], []
    for st in trajectory(family, hyper, seeds=w0.shape[0], w0=w0, root=root, budget=steps):
        if st.beta is not None and ks and ks[-1] == st.k - 1:
            betas.append(st.beta)
        if st.k % stride == 0 or st.k == steps:
            ks.append(st.k)
            W.append(st.w)
    betas.append(np.full(w0.shape[0], np.nan))
    return np.array(ks), np.stack(W), np.stack(betas)


def _hyper(params: dict, c: dict) -> Hyper:
    alpha = params["alpha_L"] / c["L"]
    kw = dict(alpha=alpha, B=params["B"], D_h=bounds.D_h_min(algorithm="maml", alpha=alpha, sigma_H=c["sigma_H"]))
    if params["step"] == "constant":
        return Hyper("maml", step="constant", beta=params["beta_L"] / c["L"], **kw)
    return Hyper("maml", **kw)


def compute(params: dict) -> pd.DataFrame:
    """``kind="run"``: one row per seed (diverged, when, final ``‖∇F‖``, and for
    the adaptive rule the range of ``β_k``); ``kind="trajectory"``: one row per
    seed × recorded step (exact ``L(w_k)``, ``L̃ = 1/(12β_k)``, ``‖∇F(w_k)‖``)."""
    fam = make_family(params["family"], **params["family_params"])
    c = fam.constants().values()
    hyper = _hyper(params, c)
    W0 = far_starts(fam, params["radius"], params["seeds"])
    K = params["budget"]
    config = {"family": fam.name, **params["family_params"], **c, "alpha": hyper.alpha,
              "alpha_L": params["alpha_L"], "B": hyper.B, "D_h": hyper.D_h, "kind": params["kind"],
              "radius": params["radius"], "step": params["step"], "step_c": hyper.c,
              "beta_L": np.nan if params["beta_L"] is None else params["beta_L"],
              "beta": hyper.beta if hyper.beta is not None else np.nan, "budget": K,
              "L_start_median": float(np.median(local_L(fam, W0, hyper.alpha))),
              **conditions_note(c, hyper.resolved(c))}
    if params["kind"] == "trajectory":
        ks, W, betas = adaptive_trajectory(fam, hyper, W0, K, max(1, K // TRACE_POINTS))
        R = W0.shape[0]
        rows = pd.DataFrame({
            "seed": np.tile(np.arange(R), len(ks)), "k": np.repeat(ks, R),
            "L_w": local_L(fam, W, hyper.alpha).ravel(),
            "L_tilde": 1.0 / (hyper.c * betas.ravel()),
            "mean_task_grad_norm": mean_task_grad_norm(fam, W).ravel(),
            "grad_norm": np.linalg.norm(grad_F(fam, W, hyper.alpha), axis=-1).ravel(),
        })
        return rows.assign(**config)
    adaptive = params["step"] == "adaptive"
    res = run(fam, hyper, [1e-300], seeds=params["seeds"], budget=K, w0=W0, stop_at_eps=False,
              trace_stride=1 if adaptive else 0)
    per_seed = res.table.groupby("seed").first().reset_index()
    rows = pd.DataFrame({
        "seed": per_seed.seed, "diverged": per_seed.diverged.astype(bool),
        "diverged_at": per_seed.diverged_at.astype("Float64"),
        "final_grad_norm": per_seed.final_grad_norm,
        "start_grad_norm": np.linalg.norm(grad_F(fam, W0, hyper.alpha), axis=-1),
    })
    if adaptive:
        b = res.trace.dropna(subset=["beta"]).groupby("seed").beta
        rows = rows.assign(beta_min=b.min().reindex(rows.seed).values, beta_max=b.max().reindex(rows.seed).values)
    return rows.assign(**config)


# --- analysis (from the table alone) ---------------------------------------------
def _runs(table: pd.DataFrame) -> pd.DataFrame:
    return table[table.kind == "run"]


def _divergence(table: pd.DataFrame) -> pd.DataFrame:
    """Per radius and constant β·L: fraction of seeds diverged, final ‖∇F‖ of the others."""
    r = _runs(table)
    r = r[r.step == "constant"]
    g = r.groupby(["radius", "beta_L"])
    out = g.diverged.agg(frac="mean", n="count").reset_index()
    ok = r[~r.diverged.astype(bool)].groupby(["radius", "beta_L"]).final_grad_norm
    stats_ = ok.agg(final="median", lo=lambda s: s.quantile(BAND[0]), hi=lambda s: s.quantile(BAND[1]))
    return out.merge(stats_.reset_index(), on=["radius", "beta_L"], how="left")


def _threshold(div: pd.DataFrame) -> tuple[float, float]:
    """Smallest β·L with any diverged seed, and the fraction of seeds diverged
    over all β at or above it (NaN, 0 when none diverged)."""
    hit = div[div.frac > 0]
    if hit.empty:
        return float("nan"), 0.0
    x = float(hit.beta_L.min())
    above = div[div.beta_L >= x]
    return x, float((above.frac * above.n).sum() / above.n.sum())


STEP_LEMMA = "THEORY.md §3, step-size lemma"


def _adaptive_claim(ad: pd.DataFrame) -> Check:
    """The theorem's rule β_k = 1/(12 L̃(w_k)) (THEORY.md §4) is stable from
    every start: an upper check of the number of diverged seeds against 0."""
    n_div = int(ad.diverged.astype(bool).sum())
    return Check(f"adaptive rule β_k = 1/(12 L̃(w_k)) never diverged (starts at "
                 f"r = {', '.join(f'{r:g}' for r in sorted(ad.radius.unique()))})",
                 "THEORY.md §4, step rule β_k = 1/(12 L̃(w_k))", n_div, 0, "upper",
                 context={"note": f"{n_div}/{len(ad)} seeds diverged"})


def _threshold_claim(table: pd.DataFrame, r: float, sub: pd.DataFrame, x: float, y: float) -> Check:
    """From one start radius, the smallest diverging constant β·L (measured) and
    the largest below it (bound column), reported: the theory gives no
    threshold for a constant β far from the optimum."""
    safe = sub[sub.beta_L < x].beta_L.max() if np.isfinite(x) else sub.beta_L.max()
    L0 = _runs(table)[_runs(table).radius == r].L_start_median.iloc[0]
    note = (f"diverges: {100 * y:.0f}% of seeds at β·L ≥ {x:g}; none at β·L ≤ {safe:g} (bound column)"
            if np.isfinite(x) else f"no constant β up to β·L = {safe:g} diverged")
    return Check(f"from r = {r:g} (L(w_0) ≈ {L0:.3g}): the smallest constant β·L at which seeds diverged "
                 f"(measured) and the largest at which none did (bound column)",
                 "THEORY.md §3, smoothness lemma (F not globally smooth)",
                 x, float(safe) if np.isfinite(safe) else float("nan"), "report",
                 context={"radius": r, "note": note})


def _moves_claim(thresholds: dict) -> Check:
    """Whether the divergence threshold of a constant β moves with the start
    distance, reported (the module docstring says why it may not): the ratio of
    the largest to the smallest finite threshold."""
    finite = {r: x for r, x in thresholds.items() if np.isfinite(x)}
    same = len(set(finite.values())) == 1 and len(finite) == len(thresholds)
    note = ("no: the same threshold from every start (ratio largest/smallest = 1 on this β grid)" if same else
            "yes: " + ", ".join(f"r = {r:g}: β·L = {x:g}" for r, x in thresholds.items()))
    return Check("the divergence threshold of a constant β moves with the start distance r",
                 "THEORY.md §3, smoothness lemma (F not globally smooth)",
                 max(finite.values()) / min(finite.values()) if finite else float("nan"), 1.0, "report",
                 context={"note": note})


def _below_threshold_claim(ad: pd.DataFrame, threshold: float) -> Check:
    """The adaptive steps stay below the smallest diverging constant step: an
    upper check of the largest ``β_k·L`` against that ``β·L``."""
    bmax = float((ad.beta_max * ad.L).max())
    return Check("largest adaptive step β_k·L against the smallest diverging constant β·L",
                 "THEORY.md §4, step rule β_k = 1/(12 L̃(w_k))", bmax, threshold, "upper",
                 context={"note": f"the threshold is {threshold / bmax:.0f}× the largest adaptive step"})


def _lemma_claims(tr: pd.DataFrame) -> list[Check]:
    """The step-size lemma (THEORY.md §3) along the adaptive trajectories:
    ``E[L(w)/L̃(w)] ≥ 0.8`` (lower) and ``E[(L(w)/L̃(w))²] ≤ 3.125`` (upper), the
    sample means over every recorded iterate; and ``L(w)/4L`` at the farthest
    start, reported (how far ``F`` is from globally smooth)."""
    q = tr.L_w / tr.L_tilde
    draws = {"note": f"{len(q)} draws"}
    far = tr[tr.k == 0]
    return [Check("step-size lemma along adaptive trajectories: E[L(w)/L̃(w)] ≥ 0.8 (§3)", STEP_LEMMA,
                  float(q.mean()), bounds.step_inv_mean_lower(L_w=1.0), "lower", context=draws),
            Check("step-size lemma along adaptive trajectories: E[(L(w)/L̃(w))²] ≤ 3.125 (§3)", STEP_LEMMA,
                  float((q ** 2).mean()), bounds.step_inv_sq_upper(L_w=1.0), "upper", context=draws),
            Check("L(w) at the farthest start, in units of 4L (how far F is from globally smooth)",
                  "THEORY.md §3, smoothness lemma (F not globally smooth)",
                  float(far.L_w.max() / (lit.SMOOTH_L_FACTOR * far.L.iloc[0])), 1.0, "report",
                  context={"note": "L(w)/4L, exact"})]


def claims(table: pd.DataFrame) -> list[Check]:
    """Adaptive rule never diverged; per radius, the smallest diverging constant
    β and the share of seeds diverged at or above it; whether that threshold
    moves with the start; the step-size lemma's moments of ``1/L̃`` along the
    adaptive trajectories."""
    checks = []
    ad = _runs(table)[_runs(table).step == "adaptive"]
    if len(ad):
        checks.append(_adaptive_claim(ad))
    thresholds = {}
    for r, sub in _divergence(table).groupby("radius"):
        x, y = _threshold(sub)
        thresholds[r] = x
        checks.append(_threshold_claim(table, r, sub, x, y))
    finite = [x for x in thresholds.values() if np.isfinite(x)]
    if len(thresholds) >= 2:
        checks.append(_moves_claim(thresholds))
    if len(ad) and finite and "beta_max" in ad:
        checks.append(_below_threshold_claim(ad, min(finite)))
    tr = table[table.kind == "trajectory"].dropna(subset=["L_tilde"])
    if len(tr):
        checks += _lemma_claims(tr)
    return checks


# --- figures ------------------------------------------------------------------
_LS = ("-", "--", ":", "-.")


def _radius_styles(radii: list) -> dict:
    """Per start radius a colour, marker, line style and marker size: nested
    markers (large open → small filled) so that coinciding curves all show."""
    n = len(radii)
    sizes = np.linspace(10.0, 4.0, n) if n > 1 else np.array([5.0])
    return {r: {"color": style.ALT[j % len(style.ALT)], "marker": "osD^v<"[j % 6], "ls": _LS[j % len(_LS)],
                "ms": float(sizes[j]), "mfc": style.ALT[j % len(style.ALT)] if j == n - 1 else "none",
                "lw": 2.2 - 1.0 * j / max(n - 1, 1)}
            for j, r in enumerate(radii)}


def _coincide(div: pd.DataFrame, col: str) -> bool:
    """Whether every radius gives the same ``col`` at every β (curves on top of each other)."""
    wide = div.pivot(index="beta_L", columns="radius", values=col)
    return len(wide.columns) > 1 and bool(wide.nunique(axis=1, dropna=False).le(1).all())


def _divergence_figure(table: pd.DataFrame, div: pd.DataFrame, runs: pd.DataFrame, ad: pd.DataFrame,
                       radii: list, L: float, outdir: Path) -> list[Path]:
    """Left: share of seeds diverged per constant β and start radius; right: the
    survivors' final ‖∇F‖ beside the adaptive rule's; legends under the axes."""
    st = _radius_styles(radii)
    fig, axes = style.figure(2, figsize=(12.5, 6.0))
    for r in radii:
        sub = div[div.radius == r].sort_values("beta_L")
        s = st[r]
        axes[0].plot(sub.beta_L, 100 * sub.frac, color=s["color"], ls=s["ls"], lw=s["lw"], marker=s["marker"],
                     ms=s["ms"], mfc=s["mfc"], mew=1.3, label=f"constant β, start at distance r = {r:g}")
        ok = sub.dropna(subset=["final"])
        axes[1].errorbar(ok.beta_L, ok.final, yerr=[ok.final - ok.lo, ok.hi - ok.final], color=s["color"],
                         ls=s["ls"], lw=s["lw"], marker=s["marker"], ms=s["ms"], mfc=s["mfc"], mew=1.3,
                         capsize=3, elinewidth=1.0, label=f"constant β, r = {r:g}: median, bar 10–90% of seeds")
    for r in radii:
        a = ad[ad.radius == r]
        if len(a):
            axes[1].axhline(a.final_grad_norm.median(), color=st[r]["color"], ls="-.", lw=1.2,
                            label=f"adaptive β_k, r = {r:g} (median)")
    if len(ad) and "beta_max" in ad:
        axes[0].axvspan((ad.beta_min * L).min(), (ad.beta_max * L).max(), color="0.6", alpha=0.3,
                        label=f"range of the adaptive β_k·L ({int(ad.diverged.astype(bool).sum())} of "
                              f"{len(ad)} runs diverged)")
    cap = 1.0 / (lit.STEP_C["maml"] * lit.SMOOTH_L_FACTOR)
    for ax in axes:
        ax.axvline(cap, color=style.BOUND, ls="--", lw=1.4, label="β_k ≤ 1/(12·4L) (step-size rule, §3)")
        ax.set(xscale="log", xlabel="constant step size β·L (log scale)")
    if _coincide(div, "frac"):
        x, y = _threshold(div[div.radius == radii[0]])
        note = (f"the {len(radii)} start radii coincide:\n{100 * y:.0f}% of seeds diverge at β·L ≥ {x:g},\n"
                f"none below" if np.isfinite(x) else f"the {len(radii)} start radii coincide:\nno seed diverges")
        axes[0].text(0.45, 0.55, note, transform=axes[0].transAxes, fontsize=8.5, va="center", ha="left")
    axes[0].set(ylabel="seeds diverged (%)", ylim=(-3, 103),
                title=f"divergence within {int(runs.budget.iloc[0])} steps ({runs.seed.nunique()} seeds per β and r)")
    axes[1].set(yscale="log", ylabel="final ‖∇F(w_K)‖ of the seeds not diverged",
                title="where the seeds that did not diverge end")
    for ax in axes:                                  # constant β first, then adaptive, then the rule's cap
        h, lab = ax.get_legend_handles_labels()
        order = sorted(range(len(lab)), key=lambda i: (not lab[i].startswith("constant"), lab[i].startswith("β_k")))
        style.legend_below(ax, handles=[h[i] for i in order], labels=[lab[i] for i in order], ncol=2, gap=0.15,
                           fontsize=7.5)
    return style.save(fig, outdir, f"{NAME}_divergence")


def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Divergence and final ‖∇F‖ against constant β; L(w_k) along adaptive trajectories."""
    paths = []
    div = _divergence(table)
    runs = _runs(table)
    ad = runs[runs.step == "adaptive"]
    L = float(table.L.iloc[0])
    radii = sorted(table.radius.unique())
    color = {r: style.ALT[j % len(style.ALT)] for j, r in enumerate(radii)}
    if len(div):
        paths += _divergence_figure(table, div, runs, ad, radii, L, outdir)
    tr = table[table.kind == "trajectory"]
    if len(tr):
        fig, ax = style.figure()
        for r in radii:
            sub = tr[tr.radius == r]
            g = sub.groupby("k").L_w
            q = g.quantile([BAND[0], BAND[1]]).unstack()
            style.measured_line(ax, q.index, g.median(), q[BAND[0]], q[BAND[1]], color=color[r], marker=None,
                                label=f"L(w_k) exact, r = {r:g} (median, 10–90%)")
            est = sub.dropna(subset=["L_tilde"]).groupby("k").L_tilde.median()
            ax.plot(est.index, est.values, ls="none", marker=".", ms=3, color=color[r], alpha=0.6,
                    label=f"L̃(w_k) = 1/(12β_k), r = {r:g} (median)")
        k = np.sort(tr.k.unique())
        style.bound_line(ax, k, np.full(k.size, lit.SMOOTH_L_FACTOR * L), "4L: least value of L(w) (§3)")
        ax.set(yscale="log", xlabel="iterations k (adaptive rule)",
               ylabel="local smoothness L(w_k) = 4L + 2ρα E_i‖∇f_i(w_k)‖",
               title="L(w_k) along adaptive trajectories")
        ax.legend(fontsize=7)
        paths += style.save(fig, outdir, f"{NAME}_local_L")
    return paths
