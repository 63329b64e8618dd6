"""``python -m mamlcheck proof``: walk the proof of (14) on a real run.

Runs the proof ledger (``experiments.ledger``) on one configuration, prints the
run, its constants and conditions, and the ledger's summary (one row per step
of explainer §4.2: rows checked, held, worst slack, and the cause of any failure),
and writes into ``--out-dir``: ``proof_walkthrough.md`` (each step stated,
then its numbers from the same table), its figure ``proof_ledger.png/.svg``
and the detailed rows ``proof_ledger.csv``.

Without options the run is chosen so that every step is non-vacuous and the
theorem's conditions hold: ``cosine-quadratic`` with small task spread and
noise (``PROOF_DEFAULTS``; the family's own defaults have ``σ ≈ 8.8``, whose
noise floor (THEORY.md §4) exceeds ``‖∇F(w_0)‖`` for any affordable batch), the
theorem's ``α = 1/(6L)``, ``B = 20`` and its minimal ``D_h``.
``--constant L=0.6`` feeds an understated constant to the step rule and every
bound (the run's ``α`` and ``D_h`` still come from the certified constants): a
negative control the ledger must catch.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import grad_F
from mamlcheck.problems import FAMILIES, family_parameters, make_family
from mamlcheck.problems.base import Constants
from mamlcheck.theory import bounds
from mamlcheck.experiments import ledger
from mamlcheck import literature as lit

from . import style
from .proof_walkthrough import report_text, walkthrough

__all__ = ["PROOF_DEFAULTS", "SIZES", "Spec", "configure", "main", "plot", "walkthrough"]

# Family parameters, start and target of the default proof run (see module docstring).
PROOF_DEFAULTS = {
    "cosine-quadratic": {"params": {"spread": 0.05, "noise_grad": 0.05, "noise_amp": 0.05},
                         "w0": 1.0, "eps": 1.0},
}
# Monte Carlo sizes per scale: seeds, sampled iterates, draws per task (7)-(8),
# replicated steps (10), replicated steps per seed and iteration (11)-(13).
SIZES = {
    "tiny": dict(seeds=4, points=3, draws=100, reps=200, cond_reps=2),
    "quick": dict(seeds=8, points=4, draws=300, reps=500, cond_reps=4),
    "default": dict(seeds=16, points=6, draws=1000, reps=2000, cond_reps=8),
    "full": dict(seeds=64, points=12, draws=5000, reps=10000, cond_reps=32),
}
FIGURE = "proof_ledger"
WALKTHROUGH = "proof_walkthrough.md"


@dataclass(frozen=True)
class Spec:
    """One proof run: family, hyperparameters, run length and Monte Carlo sizes."""

    family: str = "cosine-quadratic"
    params: dict = field(default_factory=dict)
    algorithm: str = "maml"
    alpha: float | None = None
    B: int = 20
    D_in: int = 10
    D_o: int = 10
    D_h: int | None = None
    seeds: int = 16
    budget: int = 2000
    eps: float | None = None
    w0: float | None = None
    root: int = 0
    constants: dict = field(default_factory=dict)
    points: int = 6
    draws: int = 1000
    reps: int = 2000
    cond_reps: int = 8
    delta: float = 1e-6

    def build(self):
        """The family, the ``Hyper``, ``w0`` and ``ε`` of this run (α and ``D_h``
        from the family's certified constants when not given)."""
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; known: {', '.join(sorted(FAMILIES))}")
        family = make_family(self.family, **self.params)
        cert = family.constants()
        unknown = sorted(set(self.constants) - set(Constants.NAMES))
        if unknown:
            raise ValueError(f"unknown constant(s) {unknown}; expected some of {Constants.NAMES}")
        alpha = lit.ALPHA_MAX_LD["maml"] / cert.L.value if self.alpha is None else self.alpha
        D_h = bounds.D_h_min(algorithm="maml", alpha=alpha, sigma_H=cert.sigma_H.value) if self.D_h is None else self.D_h
        hyper = Hyper(self.algorithm, alpha=alpha, B=self.B, D_in=self.D_in, D_o=self.D_o, D_h=D_h)
        w0 = None if self.w0 is None else np.full(family.d, float(self.w0))
        eps = self.eps
        if eps is None:   # half the initial gradient norm: a target the run can reach
            w = np.zeros(family.d) if w0 is None else w0
            eps = 0.5 * float(np.linalg.norm(grad_F(family, w, alpha)))
        return family, hyper, w0, eps

    def run(self) -> ledger.Ledger:
        family, hyper, w0, eps = self.build()
        return ledger.evaluate(family, hyper, eps=eps, seeds=self.seeds, budget=self.budget, w0=w0,
                               root=self.root, constants=self.constants or None, points=self.points,
                               draws=self.draws, reps=self.reps, cond_reps=self.cond_reps, delta=self.delta)

    def command(self) -> str:
        """The command line that reproduces this run."""
        parts = ["python -m mamlcheck proof", f"--family {self.family}"]
        parts += [f"--param {k}={v}" for k, v in self.params.items()]
        parts += [f"--constant {k}={v!r}" for k, v in self.constants.items()]
        for flag, value in (("--algorithm", self.algorithm), ("--alpha", self.alpha), ("--B", self.B),
                            ("--D-in", self.D_in), ("--D-o", self.D_o), ("--D-h", self.D_h),
                            ("--seeds", self.seeds), ("--budget", self.budget), ("--eps", self.eps),
                            ("--w0", self.w0), ("--root", self.root), ("--points", self.points),
                            ("--draws", self.draws), ("--reps", self.reps), ("--cond-reps", self.cond_reps),
                            ("--delta", self.delta)):
            if value is not None:
                parts.append(f"{flag} {value}")
        return " ".join(parts)


def default_spec(family: str = "cosine-quadratic", scale: str = "default") -> Spec:
    """The default proof run of ``family`` at a scale's Monte Carlo sizes."""
    d = PROOF_DEFAULTS.get(family, {})
    return Spec(family=family, params=dict(d.get("params", {})), w0=d.get("w0"), eps=d.get("eps"),
                **SIZES[scale])


# --- command line ------------------------------------------------------------------
def configure(p: argparse.ArgumentParser) -> None:
    s = default_spec()
    p.add_argument("--family", default=s.family, help=f"one of: {', '.join(sorted(FAMILIES))}")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a family parameter (repeatable); cosine-quadratic defaults to "
                        + ", ".join(f"{k}={v}" for k, v in PROOF_DEFAULTS["cosine-quadratic"]["params"].items()))
    p.add_argument("--constant", action="append", default=[], metavar="NAME=VALUE",
                   help=f"override a constant used by the step rule and the bounds (repeatable; "
                        f"{', '.join(Constants.NAMES)}), e.g. an understated L as a negative control")
    h = p.add_argument_group("algorithm and hyperparameters")
    h.add_argument("--algorithm", default=s.algorithm, choices=("maml", "exact"))
    h.add_argument("--alpha", type=float, default=None, help="inner step α; None: the theorem's 1/(6L)")
    h.add_argument("--B", type=int, default=s.B, help="tasks per outer step")
    h.add_argument("--D-in", type=int, default=s.D_in, help="inner batch")
    h.add_argument("--D-o", type=int, default=s.D_o, help="outer batch")
    h.add_argument("--D-h", type=int, default=None, help="Hessian batch; None: the theorem's ⌈2α²σ_H²⌉")
    r = p.add_argument_group("run")
    r.add_argument("--seeds", type=int, default=s.seeds, help="number of seeds R")
    r.add_argument("--budget", type=int, default=s.budget, help="maximum outer steps")
    r.add_argument("--eps", type=float, default=None,
                   help="target ε; None: the family's proof default, else ½‖∇F(w_0)‖")
    r.add_argument("--w0", type=float, default=None,
                   help="start every coordinate here; None: the family's proof default, else 0")
    r.add_argument("--root", type=int, default=s.root, help="root entropy of every stream")
    m = p.add_argument_group("Monte Carlo")
    m.add_argument("--points", type=int, default=s.points, help="sampled iterates for (7), (8), (10)")
    m.add_argument("--draws", type=int, default=s.draws, help="draws of G_i per task at each sampled iterate")
    m.add_argument("--reps", type=int, default=s.reps, help="replicated steps at each sampled iterate (10)")
    m.add_argument("--cond-reps", type=int, default=s.cond_reps,
                   help="replicated steps per seed and iteration (11), (13)")
    m.add_argument("--delta", type=float, default=s.delta, help="1 − confidence of every interval")
    p.add_argument("--out-dir", default="figures", help="folder for the walkthrough, figure and table")


def _assignments(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"--{what} takes NAME=VALUE, got {item!r}")
        out[name.strip().replace("-", "_")] = value.strip()
    return out


def _typed(value: str, default):
    """``value`` parsed like the parameter's default (bool, int, float or str)."""
    try:
        if isinstance(default, bool):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return value.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, str):
            return value
        return float(value)
    except ValueError:
        raise ValueError(f"cannot read {value!r} as {type(default).__name__}") from None


def build(args) -> Spec:
    """The ``Spec`` of parsed arguments (ValueError on bad input)."""
    if args.family not in FAMILIES:
        raise ValueError(f"unknown family {args.family!r}; known: {', '.join(sorted(FAMILIES))}")
    allowed = family_parameters(args.family)
    given = _assignments(args.param, "param")
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for family {args.family!r}; allowed: {sorted(allowed)}")
    base = default_spec(args.family)
    params = {**base.params, **{k: _typed(v, allowed[k]) for k, v in given.items()}}
    consts = {k: _typed(v, 0.0) for k, v in _assignments(args.constant, "constant").items()}
    for name, value, low in (("seeds", args.seeds, 1), ("budget", args.budget, 1), ("points", args.points, 1),
                             ("draws", args.draws, 2), ("reps", args.reps, 2), ("cond-reps", args.cond_reps, 1)):
        if value < low:
            raise ValueError(f"--{name} must be >= {low}, got {value}")
    return replace(base, params=params, constants=consts, algorithm=args.algorithm, alpha=args.alpha,
                   B=args.B, D_in=args.D_in, D_o=args.D_o, D_h=args.D_h, seeds=args.seeds, budget=args.budget,
                   eps=base.eps if args.eps is None else args.eps, w0=base.w0 if args.w0 is None else args.w0,
                   root=args.root, points=args.points, draws=args.draws, reps=args.reps,
                   cond_reps=args.cond_reps, delta=args.delta)


def main(args) -> int:
    spec = build(args)
    _, hyper, _, eps = spec.build()
    ledger.check_args(hyper, eps, spec.budget, spec.points, spec.draws, spec.reps, spec.cond_reps, spec.delta)
    if sys.stderr.isatty():
        print(f"walking the proof on {spec.family}, {spec.seeds} seeds, budget {spec.budget} "
              f"({spec.draws} draws per task, {spec.reps} replicated steps per point) ...", file=sys.stderr,
              flush=True)
    led = spec.run()
    print(report_text(led))
    paths = write(led, spec, Path(args.out_dir))
    for p in paths:
        print(f"wrote {p}")
    return 0


def write(led: ledger.Ledger, spec: Spec, out_dir: Path, table_dir: Path | None = None) -> list[Path]:
    """Walkthrough, figure and detailed table into ``out_dir`` (table: ``table_dir`` if given)."""
    out_dir = Path(out_dir)
    figs = plot(led, out_dir)
    md = out_dir / WALKTHROUGH
    md.write_text(walkthrough(led, spec.command(), [f for f in figs if f.suffix == ".png"], out_dir))
    table_dir = Path(table_dir) if table_dir is not None else out_dir
    table_dir.mkdir(parents=True, exist_ok=True)
    csv = table_dir / "proof_ledger.csv"
    led.rows.to_csv(csv, index=False)
    return [md, *figs, csv]


# --- figure ---------------------------------------------------------------------------------
def plot(led: ledger.Ledger, outdir: Path) -> list[Path]:
    """Left: the measured decrease of ``E F`` per step against (11); right: the
    slack of every row of every step (≥ 1: the bound held)."""
    fig, (ax, bx) = style.figure(2)
    t = led.trajectory
    c = led.config
    if "decrease" in t and t.decrease.notna().any():
        d = t[t.decrease.notna()]
        pos = d.decrease_trajectory > 0
        ax.plot(d.k[pos], d.decrease_trajectory[pos], ".", color=style.ALT[4], ms=2.5, alpha=0.6,
                label="F(w_k) − F(w_{k+1}), seed mean of the run")
        tiny = max(float(c["per_step_decrease"]) * 1e-2, 1e-300)
        style.measured_line(ax, d.k, d.decrease, np.maximum(d.decrease_lo, tiny), d.decrease_hi, marker=None,
                            label=f"E F(w_k) − E F(w_{{k+1}}), {style.confidence_text(led.config['delta'])}")
        style.bound_line(ax, d.k, np.full(len(d), c["per_step_decrease"]), "guaranteed decrease (11)", lower=True)
        ax.set_yscale("log")
        ax.set_title(f"(11) while mean ‖∇F(w_k)‖ > max{{ε, floor}} = {ledger.fmt(c['threshold'])}")
        ax.set_ylabel("decrease of E F(w) per step")
    else:                       # show why: the mean gradient norm never exceeded the threshold
        style.measured_line(ax, t.k, t.mean_grad_norm, marker=None, label="seed-averaged ‖∇F(w_k)‖")
        style.bound_line(ax, t.k, np.full(len(t), c["eps"]), "target ε")
        ax.plot(t.k, np.full(len(t), c["noise_floor"]), ":", color=style.ALT[1], lw=1.6,
                label="noise floor (THEORY.md §4)")
        ax.set_yscale("log")
        ax.set_ylabel("‖∇F(w_k)‖")
        ax.set_title("(11) not applicable: never above max{ε, floor}")
    ax.set_xlabel("iteration k")
    ax.legend(loc="best")

    rows = led.rows
    steps = [s for s in ledger.STEPS if (rows.step == s).any()]
    data = []
    jitter = np.random.default_rng(0)          # fixed: the figure is reproducible
    for j, s in enumerate(steps):
        r = rows[rows.step == s]
        sl = r.slack.to_numpy(float)
        fin = sl[np.isfinite(sl) & (sl > 0)]
        data.append(fin)
        x = j + 0.25 * jitter.uniform(-1, 1, fin.size)
        alpha = 0.12 if fin.size > 500 else 0.35 if fin.size > 50 else 0.9
        bx.plot(x, fin, ".", color=style.MEASURED, ms=2, alpha=alpha)
        shown = np.isfinite(r.slack) & (r.slack > 0)
        for verdict, marker, color in (("violated", "x", style.BOUND), ("inconclusive", "o", style.ALT[4])):
            sel = r[shown & (r.verdict == verdict)]
            bx.plot(np.full(len(sel), j), sel.slack, marker, color=color, ms=6, mfc="none")
        notes = [f"{n} {what}" for n, what in ((int((r.slack <= 0).sum()), "≤ 0"),
                                              (int(np.isinf(r.slack).sum()), "∞")) if n]
        if notes:   # rows off the log axis: nonpositive slack, or a nonpositive bounded term
            bx.annotate("\n".join(notes), (j, 1), textcoords="offset points", xytext=(0, 6), ha="center",
                        va="bottom", color=style.ALT[4], fontsize=8)
    bx.boxplot([d if d.size else [np.nan] for d in data], positions=range(len(steps)), widths=0.6,
               whis=(0, 100), showfliers=False, medianprops={"color": style.ALT[1]})
    bx.axhline(1.0, ls="--", color=style.BOUND, lw=1.4, label="slack 1: bound attained")
    bx.plot([], [], "x", color=style.BOUND, label="row violated")
    bx.plot([], [], "o", color=style.ALT[4], mfc="none", label="row inconclusive")
    bx.set_xticks(range(len(steps)), steps)
    bx.set_yscale("log")
    bx.set_xlabel("step of the proof (explainer §4.2)")
    bx.set_ylabel("slack (≥ 1: held)")
    bx.set_title("room left in each inequality")
    bx.legend(loc="upper left")
    fig.suptitle(f"proof ledger: {c['family']}, {c['algorithm']}, ε = {ledger.fmt(c['eps'])}, "
                 f"{c['seeds']} seeds", fontsize=11)
    return style.save(fig, outdir, FIGURE)
