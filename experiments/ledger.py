"""The proof ledger: every inequality of the proof of (14), evaluated on a run.

Given a family, a ``Hyper`` (MAML or exact gradients), seeds, a budget and a
target ``ε``, ``evaluate`` takes the run from the trajectory engine
(``algorithms.engine``: the same iterates as ``run`` with these seeds) and puts
each step of the proof of THEORY.md §4 (explainer §4.2) beside its measured value:

* (7), (8): the moments of ``G_i`` (6) at sampled iterates, from many
  independent draws per task at that ``w_k`` (exact over the task
  distribution, as THEORY.md §1 says), with a ``1 − δ`` interval;
* (9): the descent lemma with the local constant ``L(w_k)`` (THEORY.md §3) at
  every step and seed — deterministic given ``β_k`` and the direction;
* (10): ``E[F(w_{k+1}) | F_k]`` at sampled iterates, from replicated steps,
  against its right side estimated from the same replications;
* (11): the per-step decrease of ``E F``, only where the seed-averaged
  ``‖∇F(w_k)‖`` exceeds ``max{ε, noise floor}`` (THEORY.md §4 caveat);
* (13): the telescoped decrease (12)–(13) up to the first such ``k``;
* (14): the first ``k`` with seed-averaged ``‖∇F(w_k)‖ ≤ ε`` against
  ``1600Δ(L + ρα(σ + ε))/ε²``, ``Δ ≤ F(w_0) − inf_f_lower()`` (A1).

Every row reads ``left ≤ right`` in the explainer's form.  ``left_lo``,
``left_hi`` bound the left side with confidence ``1 − δ`` (equal to ``left``
where it is exact); the verdict is ``holds`` if ``left_hi ≤ right``,
``violated`` if ``left_lo > right`` (both up to rounding, ``ROUND_TOL``) and
``inconclusive`` otherwise.  ``measured`` and ``bound`` are the two quantities
the inequality compares, at the conservative end of the interval: the moment
and its bound for (7), (8); the actual second-order remainder and the
quadratic term for (9), (10); the measured and the guaranteed decrease for
(11), (13); the iterations and their bound for (14).  ``slack`` is the room
left, ``bound/measured`` (``measured/bound`` for the decreases), ``≥ 1`` iff
the row holds.

The constants the run and the bounds use may be overridden (``constants=``),
e.g. an understated ``L`` as a negative control; the ledger then checks them
against the family's certified constants (rows ``A2_L`` ... of the conditions),
and a step that fails names the broken assumption or theorem condition
(``theory.conditions``).  A failure with every condition satisfied is marked
``VIOLATED_MARK``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F, grad_F, local_L
from mamlcheck.algorithms.engine import trajectory
from mamlcheck.algorithms.estimators import algorithm
from mamlcheck.problems.base import Constants, TaskFamily, check_count
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import slack, verdict
from mamlcheck.theory.conditions import Condition, broken, check_conditions
from mamlcheck.experiments.ledger_measure import _across_seeds, _cond_decrease, _conditional, _moments, _rng
from mamlcheck.theory.proof import (NAMES, ROUND_TOL, STATEMENTS, STEPS, VIOLATED_MARK, assumption_conditions,
                                    cause as _cause, floor_condition as _floor_condition)

__all__ = ["STEPS", "STATEMENTS", "VIOLATED_MARK", "ROUND_TOL", "Ledger", "evaluate",
           "assumption_conditions", "fmt", "summary_cells", "text_table", "format_summary"]

def _enc(x) -> str:
    """A value as tagged JSON text (the tag keeps CSV readers from taking ``null`` or a number for NaN/float)."""
    return "json:" + json.dumps(x)


def _dec(text: str):
    return json.loads(text[len("json:"):])


_ROW_COLUMNS = ("step", "name", "statement", "k", "seed", "left", "right", "left_lo", "left_hi", "measured",
                "bound", "verdict", "slack", "trajectory_left", "holds", "cause")


@dataclass
class Ledger:
    """The evaluated proof.

    ``rows``: one row per checked instance (step, iteration ``k``, seed, left,
    right, ``left_lo``/``left_hi``, measured, bound, verdict, holds, slack, cause).
    ``summary``: one row per step (rows, held, violated, inconclusive, fraction
    held, worst and median slack, cause).
    ``conditions``: assumptions A1–A5 for the constants used, the theorem's
    conditions, and ``ε`` against the noise floor.
    ``trajectory``: per iteration, seed-averaged ``‖∇F‖`` and ``F``, and the
    measured decrease of ``E F`` with its interval.
    ``constants``: per constant, the value used and the family's certified one.
    ``config``: the run and its derived quantities (Δ, floor, bounds).
    """

    rows: pd.DataFrame
    summary: pd.DataFrame
    conditions: list[Condition]
    trajectory: pd.DataFrame
    constants: pd.DataFrame
    config: dict = field(default_factory=dict)

    @property
    def broken(self) -> list[str]:
        return broken(self.conditions)

    def violated_under_conditions(self) -> pd.DataFrame:
        """Rows that fail although their conditions hold (``VIOLATED_MARK``)."""
        return self.rows[self.rows.cause.str.startswith("VIOLATED UNDER")]

    @property
    def all_held(self) -> bool:
        return bool(self.rows.holds.all())

    # --- one tidy table (a sweep cell, results/proof_ledger.csv) and back -------------
    def to_table(self) -> pd.DataFrame:
        """The ledger as one table: its ``rows`` first, then the trajectory, the
        constants, the conditions and the configuration, each tagged in the
        column ``part`` (conditions' required/given and the configuration's
        values as JSON, so every type survives a CSV round trip)."""
        conds = pd.DataFrame([{"name": c.name, "statement": c.statement, "required": _enc(c.required),
                               "given": _enc(c.given), "holds": bool(c.holds), "theorem": c.theorem}
                              for c in self.conditions])
        config = pd.DataFrame({"key": list(self.config), "value": [_enc(v) for v in self.config.values()]})
        parts = [("rows", self.rows), ("trajectory", self.trajectory), ("constants", self.constants),
                 ("conditions", conds), ("config", config)]
        return pd.concat([df.assign(part=name) for name, df in parts], ignore_index=True)

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> "Ledger":
        """Inverse of ``to_table`` (also for a table read back from CSV)."""
        def part(name, text=()):
            df = table[table.part == name].dropna(axis=1, how="all").drop(columns="part").reset_index(drop=True)
            for col in text:
                df[col] = df[col].fillna("").astype(str) if col in df else ""
            return df
        rows = part("rows", ("cause",))
        rows["seed"] = pd.array(rows["seed"], dtype="Int64") if "seed" in rows else pd.array([pd.NA] * len(rows), dtype="Int64")
        for col in ("k",):
            rows[col] = rows[col].astype(int)
        rows["holds"] = rows["holds"].astype(bool)
        traj = part("trajectory")
        traj["k"] = traj["k"].astype(int)
        traj["above_threshold"] = traj["above_threshold"].astype(bool)
        conditions = [Condition(r.name, r.statement, _dec(r.required), _dec(r.given), bool(r.holds),
                                r.theorem) for r in part("conditions").itertuples()]
        config = {r.key: _dec(r.value) for r in part("config").itertuples()}
        return cls(rows[[c for c in _ROW_COLUMNS if c in rows]], _summary(rows, broken(conditions)), conditions,
                   traj, part("constants"), config)


# --- small statistics helpers ----------------------------------------------------
def _verdict(lo, hi, right, tol) -> np.ndarray:
    """Every row reads ``left ≤ right``: an upper check of ``left`` (``theory.checks``)."""
    return np.asarray(verdict(lo, hi, right, "upper", tol))


def _ratio(num, den) -> np.ndarray:
    """``num/den``, and ``inf`` where ``den ≤ 0``: the slack of ``den ≤ num``."""
    return np.asarray(slack(den, num, "upper"))


# --- the trajectory ----------------------------------------------------------------
def _trajectory(family, hyper, used, eps, seeds, budget, w0, root):
    """The run the proof is walked on, from the trajectory engine (the same
    iterates as ``run`` with these seeds): until the seed-averaged
    ``‖∇F‖ ≤ ε``, the budget, or the first seed to diverge (the proof's
    inequalities are about the iterates the algorithm produces, not a frozen
    seed's).  Returns iterates ``W (K+1, R, d)``, ``β (K, R)``, ``g (K, R, d)``."""
    W, betas, gs = [], [], []
    stopped = "budget"
    for st in trajectory(family, hyper, seeds=seeds, w0=w0, root=root, constants=used, budget=budget):
        if not st.all_alive:
            stopped = f"diverged at k = {st.k}"
            break
        if st.g is not None:
            betas.append(st.beta)
            gs.append(st.g)
        W.append(st.w)
        if st.grad_norm.mean() <= eps:
            stopped = "reached ε"
            break
    R, d = W[0].shape
    return (np.stack(W), np.array(betas).reshape(-1, R), np.array(gs).reshape(-1, R, d), stopped)


def _describe_w0(w0) -> str:
    if w0 is None:
        return "0 in every coordinate"
    w0 = np.asarray(w0, dtype=float)
    if np.all(w0 == w0.flat[0]):
        return f"{w0.flat[0]:g} in every coordinate"
    return np.array2string(w0, precision=4, threshold=6)


# --- the ledger ----------------------------------------------------------------------------
def _resolve_constants(family, constants) -> Constants:
    cert = family.constants()
    if constants is None:
        return cert
    if isinstance(constants, Constants):
        return constants
    if isinstance(constants, Mapping):
        return cert.replace(**constants)
    raise ValueError(f"constants must be a Constants record or a mapping of values, got {type(constants).__name__}")


def check_args(hyper, eps, budget, points, draws, reps, cond_reps, delta):
    """The ledger's arguments, checked before any work (``evaluate`` and the CLI)."""
    if not isinstance(hyper, Hyper):
        raise ValueError(f"hyper must be an algorithms.hyper.Hyper, got {type(hyper).__name__}")
    if hyper.algorithm not in ("maml", "exact"):
        raise ValueError(f"the ledger walks the MAML proof (THEORY.md §4): algorithm must be "
                         f"'maml' or 'exact', got {hyper.algorithm!r}")
    if hyper.inner_steps != 1:
        raise ValueError(f"the ledger walks the one-step proof of (14) (THEORY.md §4), whose constants "
                         f"(7), (8), (11), (14) are not known for N > 1 inner steps (THEORY.md §9): "
                         f"inner_steps must be 1, got {hyper.inner_steps}; the N-step bounds are checked by "
                         f"the multistep experiments and the slack report")
    try:
        ok = math.isfinite(float(eps)) and float(eps) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    check_count("budget", budget)
    check_count("points", points)
    check_count("draws", draws, minimum=2)
    check_count("reps", reps, minimum=2)
    check_count("cond_reps", cond_reps)
    if not (0 < delta < 1):
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")


def evaluate(family: TaskFamily, hyper: Hyper, *, eps: float, seeds=8, budget: int = 2000, w0=None,
             root: int = 0, constants=None, points: int = 6, draws: int = 500, reps: int = 1000,
             cond_reps: int = 32, delta: float = 1e-6) -> Ledger:
    """Evaluate every step of the proof of (14) on a run.

    Args:
        family: the task family.
        hyper: ``Hyper`` with algorithm ``maml`` or ``exact``.
        eps: the target ``ε`` of (11)–(14).
        seeds: count or ids of the seeds (one stream each, ``SeedStreams``).
        budget: maximum outer steps (the run stops once the seed-averaged
            ``‖∇F‖ ≤ ε``).
        w0: start, ``(d,)`` or ``(R, d)``; zeros by default.
        root: root entropy of every stream.
        constants: ``Constants`` or a mapping of overrides (e.g. ``{"L": L/10}``)
            used by the step rule and every bound; default: the family's.
        points: sampled iterates for (7), (8), (10).
        draws: draws of ``G_i`` per task at each sampled iterate, (7)–(8).
        reps: replicated steps at each sampled iterate, (10).
        cond_reps: replicated steps per seed and iteration for (11), (13).
        delta: ``1 −`` the confidence of every interval (each row's false-alarm
            rate when the bound is attained exactly).

    Returns:
        The ``Ledger``.
    """
    check_args(hyper, eps, budget, points, draws, reps, cond_reps, delta)
    eps = float(eps)
    used = _resolve_constants(family, constants)
    v = used.values()
    L, rho, sigma, s_t, alpha = v["L"], v["rho"], v["sigma"], v["sigma_tilde"], hyper.alpha
    hyper = hyper.resolved(used)
    exact = algorithm(hyper.algorithm).exact

    W, beta, g, stopped = _trajectory(family, hyper, used, eps, seeds, budget, w0, root)
    K, R = beta.shape
    Fw = F(family, W, alpha)                                     # (K+1, R)
    gF = grad_F(family, W, alpha)                                # (K+1, R, d)
    gn_mean = np.linalg.norm(gF, axis=-1).mean(-1)
    F0 = float(Fw[0].mean())
    try:
        inf_f = float(family.inf_f_lower())
    except NotImplementedError:
        raise ValueError(f"family {family.name!r} certifies no lower bound on inf F (inf_f_lower): "
                         f"the rate (14) needs Δ (A1)") from None
    Delta = F0 - inf_f
    floor = float(bounds.noise_floor(algorithm=hyper.algorithm, L=L, rho=rho, sigma=sigma, sigma_tilde=s_t, alpha=alpha, B=hyper.B, D_in=hyper.D_in, D_o=hyper.D_o))
    thr = max(eps, floor)
    conds = (assumption_conditions(family, used, Delta) + check_conditions(used, hyper)
             + [_floor_condition(eps, floor)])
    bad = broken(conds)
    frames = []

    def frame(step, k, seed, left, right, lo, hi, measured, bound, *, upper=True, tol=0.0, slack=None, **extra):
        """Rows of one step; ``measured``/``bound``: the compared quantities
        (conservative end), slack ``bound/measured`` (upper) or ``measured/bound``."""
        verdict = _verdict(lo, hi, right, tol)
        if slack is None:
            slack = _ratio(bound, measured) if upper else _ratio(measured, bound)
        df = pd.DataFrame({"step": step, "k": k, "seed": pd.array(np.broadcast_to(
                               pd.NA if seed is None else seed, np.shape(left)), dtype="Int64"),
                           "left": left, "right": right, "left_lo": lo, "left_hi": hi,
                           "measured": measured, "bound": bound, "verdict": verdict, "slack": slack, **extra})
        df["holds"] = df.verdict == "holds"
        df["cause"] = [_cause(step, vd, bad) for vd in df.verdict]
        frames.append(df)

    # (7), (8), (10) at sampled iterates, seeds taken in turn
    ks = np.unique(np.round(np.linspace(0, K, min(points, K + 1))).astype(int))
    seeds_at = np.arange(ks.size) % R
    m_rows, c_rows = [], []
    for k, r in zip(ks, seeds_at):
        w, gnorm = W[k, r], float(np.linalg.norm(gF[k, r]))
        m1, m2 = _moments(family, hyper, w, draws, _rng(root, 7, k, r), delta)
        st = 0.0 if exact else s_t                   # exact mode: infinite batches
        b1 = bounds.first_moment_bound(grad_F_norm=gnorm, sigma_tilde=st, D_in=hyper.D_in)
        b2 = bounds.second_moment_bound(grad_F_norm=gnorm, sigma=sigma, sigma_tilde=st, D_in=hyper.D_in, D_o=hyper.D_o)
        m_rows.append((k, r, *m1, b1, *m2, b2))
        c_rows.append((k, r, *_conditional(family, hyper, w, L, rho, reps, _rng(root, 10, k, r), delta)))
    m = np.array(m_rows, dtype=float).reshape(-1, 10)
    mk, mr = m[:, 0].astype(int), m[:, 1].astype(int)
    for step, j in (("(7)", 2), ("(8)", 6)):
        left, lo, hi, right = m[:, j], m[:, j + 1], m[:, j + 2], m[:, j + 3]
        frame(step, mk, mr, left, right, lo, hi, hi, right, tol=ROUND_TOL * right)
    c = np.array(c_rows, dtype=float).reshape(-1, 7)
    cl, cr, ch, clin, cF0 = c[:, 2], c[:, 3], c[:, 4], c[:, 5], c[:, 6]
    frame("(10)", c[:, 0].astype(int), c[:, 1].astype(int), cl, cr, cl - ch, cl + ch, cl + ch - clin, cr - clin,
          tol=ROUND_TOL * np.maximum(1.0, np.abs(cF0)))

    # (9) at every step and seed
    if K:
        Lw = local_L(family, W[:-1], alpha, L, rho)
        dot = np.sum(gF[:-1] * g, -1)
        g2 = np.sum(g ** 2, -1)
        rhs = bounds.descent_rhs(F_w=Fw[:-1], beta=beta, grad_dot_g=dot, g_sq_norm=g2, L_w=Lw)
        lin = Fw[:-1] - beta * dot
        tol = ROUND_TOL * np.maximum(1.0, np.maximum(np.abs(Fw[:-1]), np.abs(Fw[1:])))
        remainder, quad = Fw[1:] - lin, rhs - lin
        slack = np.where(remainder <= tol, np.inf, _ratio(quad, remainder))   # rounding level: no curvature seen
        kk, rr = np.meshgrid(np.arange(K), np.arange(R), indexing="ij")
        frame("(9)", kk.ravel(), rr.ravel(), Fw[1:].ravel(), np.ravel(rhs), Fw[1:].ravel(), Fw[1:].ravel(),
              remainder.ravel(), quad.ravel(), tol=tol.ravel(), slack=slack.ravel())

    # (11), (13): while the seed-averaged ‖∇F(w_k)‖ exceeds max{ε, floor}
    c11 = bounds.per_step_decrease(eps=eps, L=L, rho=rho, alpha=alpha, sigma=sigma)
    above = gn_mean[:K] > thr
    T_star = int(np.argmin(above)) if not above.all() else K     # first k at or below the threshold
    h = np.zeros((T_star, R))
    for k in range(T_star):
        h[k] = (Fw[k] - Fw[k + 1]) if exact else _cond_decrease(family, hyper, W[k], L, rho, cond_reps,
                                                                  _rng(root, 11, k))
    traj = pd.DataFrame({"k": np.arange(K + 1), "mean_grad_norm": gn_mean, "mean_F": Fw.mean(-1)})
    if T_star:
        ks11 = np.arange(T_star)
        dec, half = _across_seeds(h, delta, exact)
        EFk = Fw[:T_star].mean(-1)
        frame("(11)", ks11, None, EFk - dec, EFk - c11, EFk - dec - half, EFk - dec + half, dec - half,
              np.full(T_star, c11), upper=False, tol=ROUND_TOL * np.maximum(1.0, np.abs(EFk)),
              trajectory_left=Fw[1:T_star + 1].mean(-1))
        tot, half_t = _across_seeds(np.cumsum(h, axis=0), delta, exact)
        Ts = np.arange(1, T_star + 1)
        frame("(13)", Ts, None, F0 - tot, bounds.telescoped_rhs(F_w0=F0, T=Ts, eps=eps, L=L, rho=rho, alpha=alpha, sigma=sigma),
              F0 - tot - half_t, F0 - tot + half_t, tot - half_t, Ts * c11, upper=False,
              tol=ROUND_TOL * max(1.0, abs(F0)), trajectory_left=Fw[1:T_star + 1].mean(-1))
        pad = np.full(K + 1 - T_star, np.nan)
        traj["decrease"] = np.append(dec, pad)
        traj["decrease_lo"] = np.append(dec - half, pad)
        traj["decrease_hi"] = np.append(dec + half, pad)
    traj["decrease_trajectory"] = np.append(Fw[:-1].mean(-1) - Fw[1:].mean(-1), np.nan)
    traj["above_threshold"] = gn_mean > thr

    # (14): the first k with seed-averaged ‖∇F(w_k)‖ ≤ ε; when not reached, T > K
    # (slack: bound over K + 1, an upper limit)
    T_bound = float(bounds.iterations_upper(eps=eps, Delta=Delta, L=L, rho=rho, alpha=alpha, sigma=sigma))
    hit = np.flatnonzero(gn_mean <= eps)
    T_meas, lo14, hi14 = (float(hit[0]),) * 3 if hit.size else (np.nan, float(K + 1), np.inf)
    frame("(14)", [hit[0] if hit.size else K], None, [T_meas], [T_bound], [lo14], [hi14], [lo14], [T_bound])

    rows = pd.concat(frames, ignore_index=True)
    rows.insert(1, "name", rows.step.map(NAMES))
    rows = rows[[c for c in _ROW_COLUMNS if c in rows]]
    rows.insert(2, "statement", rows.step.map(STATEMENTS))
    params = {k_: v_ for k_, v_ in family.describe().items() if k_ != "family"}
    config = {"family": family.name, "family_params": params, **hyper.as_dict(), "eps": eps, "seeds": R,
              "budget": budget, "iterations": K, "stopped": stopped, "root": root, "points": int(ks.size),
              "draws": draws, "reps": reps, "cond_reps": cond_reps, "delta": delta, "w0": _describe_w0(w0),
              **{f"{n}_used": x for n, x in v.items()}, "F_w0": F0, "inf_f_lower": inf_f,
              "Delta": Delta, "noise_floor": floor, "threshold": thr, "T_star": T_star,
              "per_step_decrease": float(c11), "T_bound": T_bound, "T_measured": T_meas}
    consts = pd.DataFrame([{"constant": r["constant"], "used": v[r["constant"]], "certified": r["value"],
                            "kind": r["kind"], "source": r["source"]} for r in family.constants().table()])
    return Ledger(rows, _summary(rows, bad), conds, traj, consts, config)


_NOT_APPLICABLE = {"(9)": "not applicable: no step taken (ε reached at w_0)",
                   "(11)": "not applicable: no iteration above max{ε, noise floor}",
                   "(13)": "not applicable: no iteration above max{ε, noise floor}"}


def _summary(rows: pd.DataFrame, bad: list[str]) -> pd.DataFrame:
    out = []
    for step in STEPS:
        r = rows[rows.step == step]
        n = len(r)
        causes = list(dict.fromkeys(c for c in r.cause if c))
        fin = r.slack[np.isfinite(r.slack)]
        out.append({
            "step": step, "name": NAMES[step], "rows": n, "held": int(r.holds.sum()),
            "violated": int((r.verdict == "violated").sum()),
            "inconclusive": int((r.verdict == "inconclusive").sum()),
            "fraction_held": float(r.holds.mean()) if n else np.nan,
            "worst_slack": float(r.slack.min()) if n else np.nan,
            "median_slack": float(fin.median()) if fin.size else (np.inf if n else np.nan),
            "cause": "; ".join(causes[:2]) if causes else ("" if n else _NOT_APPLICABLE.get(step, "")),
        })
    return pd.DataFrame(out)


# --- text --------------------------------------------------------------------------------
def fmt(x) -> str:
    """The one number format of the ledger's tables and walkthrough."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "NO"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def summary_cells(summary: pd.DataFrame) -> list[tuple[str, ...]]:
    """The summary as strings, one tuple per step (used by every rendering)."""
    return [(s.step, s.name, fmt(s.rows), fmt(s.held), fmt(s.violated), fmt(s.inconclusive),
             fmt(s.fraction_held), fmt(s.worst_slack), fmt(s.median_slack), s.cause or "—")
            for s in summary.itertuples()]


SUMMARY_HEADER = ("step", "inequality", "rows", "held", "violated", "inconclusive", "fraction held",
                  "worst slack", "median slack", "cause")


def text_table(header, rows) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(str(r[j])) for r in (header, *rows)) for j in range(len(header) - 1)]
    return "\n".join("  ".join(str(r[j]).ljust(w) for j, w in enumerate(widths)) + "  " + str(r[-1])
                     for r in (header, *rows))


def format_summary(ledger: Ledger) -> str:
    """The summary as a plain-text table, then one line per loud violation and a verdict."""
    lines = text_table(SUMMARY_HEADER, summary_cells(ledger.summary)).split("\n")
    loud = ledger.violated_under_conditions()
    for step, grp in loud.groupby("step", sort=False):
        lines.append(f"!!! {step}: {grp.cause.iloc[0]} at {len(grp)} of "
                     f"{int((ledger.rows.step == step).sum())} rows")
    s = ledger.summary
    if ledger.all_held:
        lines.append("every step held at every row"
                     + (f" (outside the theorem: the run breaks {', '.join(ledger.broken)})" if ledger.broken else ""))
    else:
        failing = ", ".join(s.step[s.held < s.rows])
        lines.append(f"steps not held everywhere: {failing}; "
                     + (f"the run breaks {', '.join(ledger.broken)}" if ledger.broken
                        else "every condition of the theorem holds"))
    return "\n".join(lines)
