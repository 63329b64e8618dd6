"""Sinusoid regression with a small tanh network (Finn, Abbeel & Levine, ICML 2017,
§5.1): what the convergence theory says where no global constant exists.

``sinusoid-mlp`` certifies ``L``, ``ρ``, ``σ``, ``σ̃``, ``σ_H`` on a ball
``‖w − w_c‖ ≤ R`` around its initialisation only (``certificate_ball``; the
derivations are in ``problems/sinusoid_mlp.py``).  Every bound built from them
holds along a run only while the run stays in the ball, so each run reports:

* **the ball condition** (``theory.conditions.ball_condition``): which seeds
  left the ball and when; a run that leaves it has no guarantee;
* **the measured local constants** along the run beside the certified ones:
  ``max_i ‖∇²f_i(w_k)‖₂`` against ``L`` and the Hessian-change ratio
  ``max_i ‖∇²f_i(w_{k+s}) − ∇²f_i(w_k)‖₂ / ‖w_{k+s} − w_k‖`` against ``ρ``
  (both must stay below while inside the ball; the ratio says how loose a
  ball certificate is);
* **iterations to ``ε``** (the seed average of the exact ``‖∇F(w_k)‖``, the
  theorem's quantity) against (14), ``1600Δ(L + ρα(σ + ε))/ε²`` with the ball
  constants (THEORY.md §4).

Two configurations of MAML: the theorem's (``α = 1/(6L)`` with the ball's
``L``, the adaptive step ``β_k = 1/(12 L̃(w_k))``, ``B ≥ 20``) and the one people
use (Finn et al.'s ``α = 0.01``, a constant meta-step ``β``; Adam is out of
scope).  A third part runs MAML, FO-MAML and HF-MAML at the practical
configuration and reports the level where ``‖∇F‖`` settles (the noise floors of
THEORY.md §5, here measured only).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mamlcheck import literature as lit
from mamlcheck.algorithms.engine import trajectory
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F
from mamlcheck.problems import make_family
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck.theory.conditions import ball_condition, broken, check_conditions

from . import style

__all__ = ["NAME", "TITLE", "SCALES", "cells", "compute", "claims", "plot", "local_constants"]

NAME = "mlp_sinusoid"
TITLE = "Sinusoid regression with a tanh MLP: ball-certified constants, the ball condition, (14)"

FAMILY = "sinusoid-mlp"
FAMILY_PARAMS = {"M": 10, "width": 20, "n_pool": 50, "radius": 1.0, "seed": 0}
ALPHA_FINN = 0.01                        # Finn et al. (2017), §5.1: inner step 0.01
BETA_PRACTICE = 0.01                     # constant meta-step of the practical baseline
ALGORITHMS = {"maml": "MAML", "fomaml": "FO-MAML", "hfmaml": "HF-MAML"}


class Scale(NamedTuple):
    seeds: Any
    budget: Any
    stride: Any
    eps: Any


SCALES = {
    "tiny": Scale(seeds=2, budget=20, stride=5, eps=(3.0, 1.0)),
    "quick": Scale(seeds=3, budget=100, stride=10, eps=(3.0, 1.0, 0.3)),
    "default": Scale(seeds=4, budget=400, stride=20, eps=(3.0, 1.0, 0.5, 0.3)),
    "full": Scale(seeds=8, budget=2000, stride=50, eps=(3.0, 1.0, 0.5, 0.3, 0.1)),
}


def cells(scale: str) -> list[dict]:
    """The theorem's and the practical MAML run, and FO-MAML, HF-MAML at the practical configuration."""
    s = SCALES[scale]
    base = {"family": FAMILY, "family_params": FAMILY_PARAMS, "seeds": s.seeds, "budget": s.budget,
            "stride": s.stride, "eps": list(s.eps), "root": 0}
    out = [{**base, "part": "runs", "config": "theorem", "algorithm": "maml"},
           {**base, "part": "runs", "config": "practice", "algorithm": "maml"}]
    out += [{**base, "part": "variants", "config": "practice", "algorithm": a} for a in ALGORITHMS if a != "maml"]
    out.append({**base, "part": "ledger", "config": "theorem", "algorithm": "maml", "ledger_eps": 2.0})
    return out


def _hyper(config: str, algorithm: str, L: float) -> Hyper:
    if config == "theorem":
        return Hyper(algorithm, alpha=lit.ALPHA_MAX_LD["maml"] / L, B=lit.B_MIN)
    return Hyper(algorithm, alpha=ALPHA_FINN, B=lit.B_MIN, step="constant", beta=BETA_PRACTICE)


def local_constants(fam, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At points ``W`` ``(K, R, d)``: ``max_i ‖∇²f_i(w_k)‖₂`` ``(K, R)``, and the
    Hessian-change ratio between consecutive points ``(K − 1, R)``."""
    H = fam.hess(W[:, :, None, :], np.arange(fam.M))                    # (K, R, M, d, d)
    local_L = np.abs(np.linalg.eigvalsh(H)).max(axis=(-1, -2))
    dH = np.abs(np.linalg.eigvalsh(H[1:] - H[:-1])).max(axis=(-1, -2))
    step = np.linalg.norm(W[1:] - W[:-1], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(step > 0, dH / step, np.nan)
    return local_L, ratio


def _ledger(params: dict) -> pd.DataFrame:
    """The proof ledger (``experiments.ledger``) on the theorem's MAML run, one row per
    step of the proof, with the ball condition of the same iterates (the ledger
    walks the engine's trajectory with the same streams)."""
    from .ledger import evaluate
    fam = make_family(params["family"], **params["family_params"])
    centre, radius = fam.certificate_ball()
    hyper = _hyper("theorem", "maml", fam.constants().L.value)
    led = evaluate(fam, hyper, eps=params["ledger_eps"], seeds=params["seeds"], budget=params["budget"], w0=centre,
                   root=params["root"], points=3, draws=200, reps=200, cond_reps=8)
    K = int(led.config["iterations"])
    far, left = np.zeros(params["seeds"]), np.full(params["seeds"], -1)
    for st in trajectory(fam, hyper, seeds=params["seeds"], w0=centre, root=params["root"], budget=K):
        dist = np.linalg.norm(st.w - centre, axis=-1)
        far, left = np.maximum(far, dist), np.where((left < 0) & (dist > radius), st.k, left)
    ball = ball_condition(radius, np.arange(params["seeds"]), far, left)
    return led.summary.assign(part="ledger", config="theorem", algorithm="maml", label="MAML", iterations=K,
                              ball_holds=ball.holds, ball_given=ball.given, radius=radius,
                              broken_conditions=";".join(led.broken) or "none",
                              eps=params["ledger_eps"],
                              family_params=json.dumps(params["family_params"], sort_keys=True))


def compute(params: dict) -> pd.DataFrame:
    """One run (or, for ``part = "ledger"``, the proof ledger on one run): per seed and iteration the exact ``‖∇F(w_k)‖``, the distance to the
    ball's centre, and at every ``stride``-th iteration the local constants."""
    if params["part"] == "ledger":
        return _ledger(params)
    fam = make_family(params["family"], **params["family_params"])
    consts = fam.constants()
    v = consts.values()
    centre, radius = fam.certificate_ball()
    hyper = _hyper(params["config"], params["algorithm"], v["L"])
    R, K, s = params["seeds"], params["budget"], params["stride"]
    gn, dist, beta, W = [], [], [], []
    for st in trajectory(fam, hyper, seeds=R, w0=centre, root=params["root"], budget=K):
        gn.append(st.grad_norm)
        dist.append(np.linalg.norm(st.w - centre, axis=-1))
        beta.append(np.full(R, np.nan) if st.beta is None else st.beta)
        if st.k % s == 0:
            W.append(st.w)
    gn, dist, beta = np.array(gn), np.array(dist), np.array(beta)
    local_L, ratio = local_constants(fam, np.array(W))
    ks = np.arange(len(gn))
    strided = np.full(gn.shape, np.nan)
    strided[::s] = local_L
    rho_ratio = np.full(gn.shape, np.nan)
    rho_ratio[s::s][:len(ratio)] = ratio
    hyper = hyper.resolved(consts)
    Delta = float(F(fam, centre, hyper.alpha)) - fam.inf_f_lower()
    return pd.DataFrame({
        "part": params["part"], "config": params["config"], "algorithm": params["algorithm"],
        "label": ALGORITHMS[params["algorithm"]],
        "k": np.repeat(ks, R), "seed": np.tile(np.arange(R), len(ks)), "grad_norm": gn.ravel(),
        "distance": dist.ravel(), "beta": beta.ravel(), "local_L": strided.ravel(), "rho_ratio": rho_ratio.ravel(),
        "alpha": hyper.alpha, "step": hyper.step, "B": hyper.B, "radius": radius, "Delta": Delta,
        "L": v["L"], "rho": v["rho"], "sigma": v["sigma"], "sigma_tilde": v["sigma_tilde"], "sigma_H": v["sigma_H"],
        "conditions_broken": ";".join(broken(check_conditions(consts, hyper))) or "none",
        "eps_grid": json.dumps(params["eps"]), "family_params": json.dumps(params["family_params"], sort_keys=True),
    })


# --- analysis (from the table alone) -----------------------------------------------------
def _mean_curve(sub: pd.DataFrame) -> pd.Series:
    return sub.groupby("k").grad_norm.mean()


def _ball(sub: pd.DataFrame):
    per = sub.groupby("seed")
    left = [int(g.k[g.distance > g.radius.iloc[0]].min()) if (g.distance > g.radius.iloc[0]).any() else -1
            for _, g in per]
    return ball_condition(float(sub.radius.iloc[0]), list(per.groups), per.distance.max().to_numpy(), left,
                          "sinusoid-mlp ball certificate")


def _run_claims(sub: pd.DataFrame) -> list[Check]:
    cfg = sub.config.iloc[0]
    r = sub.iloc[0]
    ball = _ball(sub)
    inside = sub[sub.distance <= sub.radius]
    name = f"MAML, {'the theorem' if cfg == 'theorem' else 'practice'} (α = {r.alpha:.3g}, {r.step} step)"
    ctx = {"config": cfg, "algorithm": "maml"}
    src = "problems/sinusoid_mlp.py (ball certificate)"
    out = [Check(f"{name}: every iterate stays in the certificate's ball ‖w_k − w_c‖ ≤ R (max distance)",
                 src, float(sub.distance.max()), float(r.radius), "report",
                 context={**ctx, "note": ("holds: " if ball.holds else "BALL LEFT, bounds not guaranteed: ")
                          + ball.given})]
    loc_L = inside.local_L.dropna()
    if len(loc_L):
        out.append(Check(f"{name}: measured max_i ‖∇²f_i(w_k)‖₂ along the run, inside the ball ≤ certified L",
                         src + ", A2", float(loc_L.max()), float(r.L), "upper",
                         context={**ctx, "note": f"certified/measured = {r.L / loc_L.max():.3g}"}))
    ratio = inside.rho_ratio.dropna()
    if len(ratio):
        out.append(Check(f"{name}: measured Hessian-change ratio along the run, inside the ball ≤ certified ρ",
                         src + ", A3", float(ratio.max()), float(r.rho), "upper",
                         context={**ctx, "note": f"certified/measured = {r.rho / ratio.max():.3g}"}))
    curve = _mean_curve(sub)
    for eps in json.loads(r.eps_grid):
        hit = curve.index[curve <= eps]
        first = float(hit[0]) if len(hit) else float("nan")
        upper = float(bounds.iterations_upper(eps=eps, Delta=r.Delta, L=r.L, rho=r.rho, alpha=r.alpha,
                                              sigma=r.sigma))
        kind = "upper" if (ball.holds and cfg == "theorem" and np.isfinite(first)) else "report"
        note = ("within the theorem and the ball" if kind == "upper" else
                "not reached within the budget" if not np.isfinite(first) else
                "outside the theorem's conditions or the ball: reported, not guaranteed")
        out.append(Check(f"{name}: iterations until the seed-averaged ‖∇F(w_k)‖ ≤ {eps:g} against (14) with the "
                         "ball constants", "(14), THEORY.md §4", first, upper, kind,
                         context={**ctx, "eps": eps, "note": note}))
    return out


def _variant_claims(table: pd.DataFrame) -> list[Check]:
    """The level where ``‖∇F‖`` settles (seed mean over the last half of the run), per algorithm."""
    out = []
    for alg, sub in table.groupby("algorithm", sort=False):
        half = sub[sub.k >= sub.k.max() // 2]
        out.append(Check(f"{ALGORITHMS[alg]} at α = {ALPHA_FINN:g}, β = {BETA_PRACTICE:g}: seed-mean ‖∇F‖ over the "
                         "last half of the run (where it settles)", "THEORY.md §5 (noise floors), measured only",
                         float(half.grad_norm.mean()), float("nan"), "report",
                         context={"algorithm": alg, "note": f"ball {'held' if _ball(sub).holds else 'LEFT'}"}))
    return out


def _ledger_claims(led: pd.DataFrame) -> list[Check]:
    """Per step of the proof on the MLP run: no violated row (an ``upper`` check of
    the violated count against 0), with the worst slack and the ball's verdict."""
    out = []
    if led.empty:
        return out
    r = led.iloc[0]
    for _, s in led.iterrows():
        if not s.rows:
            continue
        out.append(Check(f"proof ledger on the theorem's MAML run (ε = {s.eps:g}, {int(s.iterations)} iterations): "
                         f"step {s.step}, violated rows out of {int(s.rows)}", "THEORY.md §4 (the proof of (14))",
                         float(s.violated), 0.0, "upper",
                         context={"step": s.step, "note": f"{int(s.held)} held, {int(s.inconclusive)} inconclusive, "
                                  f"worst slack {s.worst_slack:.3g}; ball {'held' if r.ball_holds else 'LEFT'}; "
                                  f"broken: {r.broken_conditions}"}))
    return out


def claims(table: pd.DataFrame) -> list[Check]:
    runs = table[table.part == "runs"]
    out = []
    for _, sub in runs.groupby("config", sort=False):
        out += _run_claims(sub)
    out += _variant_claims(table[(table.config == "practice") & (table.part != "ledger")])
    return out + _ledger_claims(table[table.part == "ledger"])


# --- figure ---------------------------------------------------------------------------------
def plot(table: pd.DataFrame, outdir: Path) -> list[Path]:
    """Left: seed-mean ‖∇F(w_k)‖.  Middle: distance to the ball's centre (each seed)
    with R.  Right: the local constant ``max_i‖∇²f_i‖`` along the runs against the
    certified ``L``."""
    fig, (ax, ax_d, ax_L) = style.figure(3, figsize=(16.0, 5.0))
    runs = table[table.part == "runs"]
    for j, (cfg, sub) in enumerate(runs.groupby("config", sort=False)):
        c = style.ALT[j]
        r = sub.iloc[0]
        label = f"MAML, {cfg}: α = {r.alpha:.3g}, {r.step} β"
        curve = _mean_curve(sub)
        ax.plot(curve.index, curve.values, color=c, label=label)
        for _, g in sub.groupby("seed"):
            ax_d.plot(g.k, g.distance, color=c, lw=0.8, alpha=0.7)
        loc = sub.dropna(subset=["local_L"]).groupby("k").local_L.max()
        ax_L.plot(loc.index, loc.values, color=c, marker="o", ms=3, label=f"measured, {cfg}")
    for j, (alg, sub) in enumerate(table[table.part == "variants"].groupby("algorithm", sort=False), start=1):
        curve = _mean_curve(sub)
        ax.plot(curve.index, curve.values, color=style.ALT[2 + j], lw=0.9, ls=":",
                label=f"{ALGORITHMS[alg]}, practice")
    r = runs.iloc[0]
    ax_d.axhline(r.radius, color=style.BOUND, ls="--", label=f"certificate's ball R = {r.radius:g}")
    ax_L.axhline(r.L, color=style.BOUND, ls="--", label=f"certified L on the ball = {r.L:.3g}")
    ax.set(xlabel="iteration k", ylabel="seed-mean ‖∇F(w_k)‖ (exact)", yscale="log",
           title="Exact meta-gradient norm")
    ax_d.set(xlabel="iteration k", ylabel="‖w_k − w_c‖ (each seed)", title="Distance to the ball's centre")
    ax_L.set(xlabel="iteration k", ylabel="max_i ‖∇²f_i(w_k)‖₂", yscale="log",
             title="Local smoothness along the run vs the ball's L")
    for a in (ax, ax_d, ax_L):
        a.legend(fontsize=7.5)
    return style.save(fig, outdir, NAME)
