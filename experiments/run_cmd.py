"""``python -m mamlcheck run``: one configuration, many seeds, a summary.

Prints the theorem's conditions for the configuration (a run outside them is
allowed, and says so), then per ``ε`` the median and spread of the first
iteration with ``‖∇F(w_k)‖ ≤ ε`` over seeds, the first iteration of the seed
average, and how many seeds diverged.  ``--out`` writes the per-seed table.

Every option is checked before the run starts (its range, and that ``--out``
and ``--trace-out`` can be written), so a typo costs nothing.  Ctrl-C ends the
run early: the summary says so, the tables go to ``inputs.partial_path(out)``
with a first line ``# PARTIAL: ...`` (never to ``--out`` itself), and the
status is 130.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

from mamlcheck.algorithms.hyper import ALGORITHMS, STEP_C_BY_THEOREM, STEP_RULES, Hyper
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import FAMILIES, family_parameters, make_family
from mamlcheck import literature as lit

from .inputs import check_float, check_int, check_output_path, partial_path, write_csv

_SKIP = {"A", "centres", "X", "Y", "p"}
_RUN_FLAGS = {"eps", "seeds", "budget", "root", "alpha", "algorithm", "step", "beta", "out"}   # array parameters: not settable from the command line


def _family_options() -> dict[str, dict[str, object]]:
    """Scalar family parameters -> {family: default}, for one option each."""
    opts: dict[str, dict[str, object]] = {}
    for fam in FAMILIES:
        for k, v in family_parameters(fam).items():
            if k not in _SKIP and (v is None or isinstance(v, (bool, int, float, str))):
                opts.setdefault(k, {})[fam] = v
    return opts


def _boolean(s: str) -> bool:
    if s.lower() not in ("1", "0", "true", "false", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")
    return s.lower() in ("1", "true", "yes")


def _typed(default):
    if isinstance(default, bool):
        return _boolean
    if isinstance(default, int):
        return int
    return float


MAX_BATCH = 10**7   # a default batch size past this (D_h, B′, D_β grow like α²) is a typo, not a run
MAX_SEEDS = 100_000
MAX_INNER_STEPS = 1000   # each inner step is one more oracle call per task: past this, a typo
MAX_BUDGET = 10**8
_BATCH_FLAGS = {"B": "--B", "D_in": "--D-in", "D_o": "--D-o", "D_h": "--D-h",
                "B_prime": "--B-prime", "D_beta": "--D-beta"}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", default="cosine-quadratic", help=f"one of: {', '.join(sorted(FAMILIES))}")
    g = p.add_argument_group("family parameters (defaults per family; a name that a run "
                             "option also uses takes the prefix --family-)")
    for k, per in sorted(_family_options().items()):
        default = next(iter(per.values()))
        flag = k.replace("_", "-")
        flag = f"--family-{flag}" if flag in _RUN_FLAGS else f"--{flag}"
        g.add_argument(flag, dest=f"fam_{k}", type=_typed(default), default=None,
                       help="; ".join(f"{f}: {v}" for f, v in per.items()))
    h = p.add_argument_group("algorithm and hyperparameters")
    h.add_argument("--algorithm", default="maml", help=f"one of: {', '.join(ALGORITHMS)}")
    h.add_argument("--alpha", type=float, default=None,
                   help="inner step α; default: the theorem's largest (1/(6L), FO-MAML 1/(10L); over N for N inner steps)")
    h.add_argument("--B", type=int, default=Hyper.B, help="tasks per outer step")
    h.add_argument("--D-in", type=int, default=Hyper.D_in)
    h.add_argument("--D-o", type=int, default=Hyper.D_o)
    h.add_argument("--D-h", type=int, default=Hyper.D_h)
    h.add_argument("--inner-steps", type=int, default=Hyper.inner_steps,
                   help=f"N, gradient steps of the inner loop (1..{MAX_INNER_STEPS}; N > 1: multi-step MAML)")
    h.add_argument("--step", default="adaptive", help=f"one of: {', '.join(STEP_RULES)}")
    h.add_argument("--beta", type=float, default=None, help="constant step (with --step constant)")
    h.add_argument("--step-c", type=float, default=None,
                   help="c of the adaptive step β_k = 1/(c·L̃); default: the theorem's")
    h.add_argument("--B-prime", type=int, default=None, help="tasks of the L̃ estimate (default: theorem's)")
    h.add_argument("--D-beta", type=int, default=None, help="samples of the L̃ estimate (default: theorem's)")
    r = p.add_argument_group("run")
    r.add_argument("--eps", type=float, nargs="+", default=[1e-1, 1e-2], help="targets for ‖∇F‖")
    r.add_argument("--seeds", type=int, default=16, help="number of seeds R")
    r.add_argument("--budget", type=int, default=20_000, help="maximum outer steps")
    r.add_argument("--root", type=int, default=0, help="root entropy of the seed streams")
    r.add_argument("--w0", type=float, default=None, help="start every coordinate here (default 0)")
    r.add_argument("--divergence-bound", type=float, default=1e8)
    r.add_argument("--trace-stride", type=int, default=0, help="record F, ‖∇F‖, β every this many steps")
    r.add_argument("--out", default=None, help="CSV path for the per-seed table")
    r.add_argument("--trace-out", default=None, help="CSV path for the trace (needs --trace-stride)")
    r.add_argument("--no-progress", action="store_true", help="no progress report on stderr")


def check_run_options(args) -> None:
    """The run's own options, each against its range (``ValueError`` naming
    the flag); cheap, so it comes before the family is built."""
    if args.family not in FAMILIES:
        raise ValueError(f"--family must be one of {', '.join(sorted(FAMILIES))}; "
                         f"unknown family {args.family!r}")
    if args.algorithm not in ALGORITHMS:
        raise ValueError(f"--algorithm must be one of {', '.join(ALGORITHMS)}, got {args.algorithm!r}")
    if args.step not in STEP_RULES:
        raise ValueError(f"--step must be one of {', '.join(STEP_RULES)}, got {args.step!r}")
    check_int("--seeds", args.seeds, 1, MAX_SEEDS)
    check_int("--budget", args.budget, 0, MAX_BUDGET)
    check_int("--trace-stride", args.trace_stride, 0, MAX_BUDGET)
    check_int("--root", args.root, 0)
    check_int("--inner-steps", args.inner_steps, 1, MAX_INNER_STEPS)
    for name, flag in _BATCH_FLAGS.items():
        if getattr(args, name) is not None:
            check_int(flag, getattr(args, name), 1, MAX_BATCH)
    for e in args.eps:
        check_float("--eps", e, 0, lo_open=True)
    if args.alpha is not None:
        check_float("--alpha", args.alpha, 0)
    if args.beta is not None:
        check_float("--beta", args.beta, 0, lo_open=True)
    if (args.step == "constant") != (args.beta is not None):
        raise ValueError("--beta must be given exactly when --step constant is")
    if args.step_c is not None:
        check_float("--step-c", args.step_c, 0, lo_open=True)
    theorem = Hyper(args.algorithm, step="constant", beta=1.0, inner_steps=args.inner_steps).theorem
    if args.step == "adaptive" and args.step_c is None and theorem not in STEP_C_BY_THEOREM:
        raise ValueError(f"--algorithm {args.algorithm} with --inner-steps {args.inner_steps} has no theorem that "
                         "fixes c in β_k = 1/(c·L̃): give --step-c, or --step constant with --beta")
    if args.w0 is not None:
        check_float("--w0", args.w0)
    check_float("--divergence-bound", args.divergence_bound, 0, lo_open=True)
    if args.trace_out and not args.trace_stride:
        raise ValueError("--trace-out needs --trace-stride > 0 (nothing would be recorded)")


def build(args) -> tuple:
    """Family and Hyper from parsed arguments, after every check that can be
    made before the run (``ValueError`` on bad input; nothing is written)."""
    check_run_options(args)
    params = {k[4:]: v for k, v in vars(args).items() if k.startswith("fam_") and v is not None}
    family = make_family(args.family, **params)
    alpha = args.alpha
    if alpha is None:      # the theorem's largest, over N for N inner steps (THEORY.md §9)
        alpha = lit.ALPHA_MAX_LD.get(args.algorithm, lit.ALPHA_MAX_LD["maml"]) / (
            args.inner_steps * family.constants().L.value)
    hyper = Hyper(args.algorithm, alpha=alpha, B=args.B, D_in=args.D_in, D_o=args.D_o, D_h=args.D_h,
                  step=args.step, beta=args.beta, B_prime=args.B_prime, D_beta=args.D_beta,
                  inner_steps=args.inner_steps, step_c=args.step_c)
    hyper = hyper.resolved(family.constants())
    for name in _BATCH_FLAGS:
        if getattr(hyper, name) > MAX_BATCH:
            flag = _BATCH_FLAGS[name]
            raise ValueError(f"--alpha {alpha:g} makes the theorem's {flag} {getattr(hyper, name)}, which "
                             f"exceeds {MAX_BATCH} (it grows like alpha²); set {flag} in [1, {MAX_BATCH}] "
                             f"or a smaller --alpha")
    check_output_path("--out", args.out)
    check_output_path("--trace-out", args.trace_out)
    return family, hyper


def summarise(table: pd.DataFrame, mean_table: pd.DataFrame) -> pd.DataFrame:
    """Per ε: seeds reached, median and quartiles of the first k, first k of the mean."""
    rows = []
    for eps, g in table.groupby("eps", sort=False):
        k = g.first_k.dropna().astype(float)
        m = mean_table.loc[mean_table.eps == eps, "mean_first_k"].iloc[0]
        rows.append({"eps": eps, "reached": f"{k.size}/{len(g)}",
                     "median_k": np.median(k) if k.size else np.nan,
                     "q25_k": np.quantile(k, 0.25) if k.size else np.nan,
                     "q75_k": np.quantile(k, 0.75) if k.size else np.nan,
                     "k_of_mean": m, "diverged": int(g.diverged.sum())})
    return pd.DataFrame(rows)


def main(args) -> int:
    from mamlcheck.theory.conditions import check_conditions, format_conditions
    family, hyper = build(args)
    print(f"family {family.name}: " + ", ".join(f"{k}={v}" for k, v in family.describe().items() if k != "family"))
    print(pd.DataFrame(family.constants().table()).to_string(index=False))
    print()
    print(format_conditions(check_conditions(family.constants(), hyper)))
    print()
    w0 = None if args.w0 is None else np.full(family.d, args.w0)
    if w0 is None and family.offers("certificate_ball"):     # constants on a ball: start at its centre
        w0 = family.certificate_ball()[0]
    res = run(family, hyper, args.eps, seeds=args.seeds, budget=args.budget, w0=w0, root=args.root,
              trace_stride=args.trace_stride, divergence_bound=args.divergence_bound,
              progress=not args.no_progress and sys.stderr.isatty() or False)
    print(f"{res.iterations} iterations, {len(res.table.seed.unique())} seeds"
          + (" (interrupted: partial results below)" if res.interrupted else ""))
    print(summarise(res.table, res.mean_table).to_string(index=False))
    if res.ball_condition() is not None:
        print(format_conditions([res.ball_condition()]))
    outputs = [(args.out, res.table), (args.trace_out, res.trace)]
    if res.interrupted:
        save_partial(outputs, res.iterations, args.budget)
        return 130
    for path, table in outputs:
        if path and table is not None:
            write_csv(table, path)
            print(f"wrote {path}")
    return 0


def save_partial(outputs, k: int, budget: int) -> None:
    """An interrupted run's tables: each to ``partial_path(path)``, first line
    ``# PARTIAL: interrupted at k = ...``, one line on stderr per file; the
    paths asked for are left as they were, so nothing there looks finished.
    A device or pipe asked for gets nothing; a failed write is reported, and
    the status stays that of an interruption."""
    for path, table in outputs:
        if not path or table is None:
            continue
        if os.path.exists(path) and not os.path.isfile(path):
            print(f"interrupted at k = {k}: {path} not written", file=sys.stderr)
            continue
        partial = partial_path(path)
        try:
            write_csv(table, partial, comment=f"PARTIAL: interrupted at k = {k} of --budget {budget}; "
                                              f"not a finished run, {path} not written")
        except OSError as e:
            print(f"interrupted at k = {k}: {path} not written, nor {partial} ({e.strerror or e})",
                  file=sys.stderr)
            continue
        print(f"interrupted at k = {k}: partial table written to {partial} ({path} not written)",
              file=sys.stderr)
