"""``python -m mamlcheck bench [--json] [--quick]``: seed-iterations per second.

Runs a fixed set of configurations through ``algorithms.runner.run`` (the
same hot loop every experiment uses, with the exact ``‖∇F(w_k)‖`` (5)
evaluated for every seed at every iteration) for a fixed number of outer steps
(``eps`` is tiny and ``stop_at_eps`` off, so every run spends its whole
budget), and reports ``R × iterations / seconds``.  Each configuration is run
once to warm up, then timed with ``time.perf_counter`` over a few repeats; the
*best* repeat is reported (the least disturbed by whatever else the machine
does), with the process CPU time of that repeat (``cpu_s``).  Where a
configuration is also run with ``R = 1`` the table shows the speed-up from
batching seeds.

Reference configuration: ``cosine-quadratic``, ``d = 20``, ``M = 50``,
diagonal ``A``, MAML with ``B = 10``, ``D_in = D_o = D_h = 1``, ``R = 64``
seeds, ``α`` the theorem's largest (``1/(6L)``; FO-MAML ``1/(10L)``),
adaptive step ``β_k = 1/(c·L̃(w_k))`` with the theorem's ``B′``, ``D_β``.
By default the seed streams refill their blocks in a background thread
(``algorithms.streams.PREFETCH``), which uses a second core when there is one;
the ``1 core`` row turns that off (same numbers drawn, one thread).

``--json`` prints one JSON object per line per configuration: its parameters
and ``seed_iterations_per_s``.  Speed is measured here and never asserted by
the tests.

Options are checked before anything is measured.  stderr names the
configuration being measured (one line per configuration when stderr is not a
terminal).  Ctrl-C stops at once with status 130: the configurations measured
in full are reported, the one interrupted is not (a cut-short run is no
measurement).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from mamlcheck.algorithms import streams
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import FAMILIES, make_family
from mamlcheck import literature as lit

from .inputs import check_int

__all__ = ["Config", "CONFIGS", "configs", "measure", "bench", "Interrupted", "configure", "main"]

TINY_EPS = 1e-300          # never reached: every run spends its whole budget
MAX_REPEATS = 100
MAX_BUDGET = 10**7


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``bench``: ``rows`` are the configurations measured in
    full, ``name`` the one cut short (not measured)."""

    def __init__(self, rows: list[dict[str, Any]], name: str):
        super().__init__(name)
        self.rows, self.name = rows, name


@dataclass(frozen=True)
class Config:
    """One benchmarked configuration: family and its parameters, the ``Hyper``
    fields that differ from the reference (MAML, ``B = 10``, ``D = 1``), seeds,
    budget; ``α`` is always the theorem's largest for the algorithm."""

    name: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    hyper: dict[str, Any] = field(default_factory=dict)
    R: int = 64
    budget: int = 1000
    pair: str | None = None      # name of the configuration this one is the R = 1 twin of
    prefetch: bool = True        # streams refilled by a background thread (False: one core only)


_REF = {"d": 20, "M": 50}
_D100 = {"d": 100, "M": 50}
CONFIGS: tuple[Config, ...] = (
    Config("reference", "cosine-quadratic", _REF, budget=2000),
    Config("reference R=1", "cosine-quadratic", _REF, R=1, budget=1000, pair="reference"),
    Config("reference 1 core", "cosine-quadratic", _REF, budget=1000, prefetch=False),
    Config("d=100 B=20", "cosine-quadratic", _D100, {"B": 20}, budget=200),
    Config("d=100 B=20 R=1", "cosine-quadratic", _D100, {"B": 20}, R=1, budget=300, pair="d=100 B=20"),
    Config("fomaml", "cosine-quadratic", _REF, {"algorithm": "fomaml"}, budget=1000),
    Config("hfmaml", "cosine-quadratic", _REF, {"algorithm": "hfmaml"}, budget=600),
    Config("exact", "cosine-quadratic", _REF, {"algorithm": "exact"}, budget=1000),
    Config("robust-regression", "robust-regression", {"d": 20, "M": 50, "N": 50}, budget=100),
    Config("hard-chain", "hard-chain", {"M": 10, "tilt": 1.0}, budget=150),
)


def configs(quick: bool = False, budget: int | None = None) -> list[Config]:
    """The configurations whose family is registered; ``quick`` divides each
    budget by 10, ``budget`` replaces them all."""
    out = []
    for c in CONFIGS:
        if c.family not in FAMILIES:
            continue                          # a family not registered here is not benchmarked
        b = budget if budget is not None else (max(10, c.budget // 10) if quick else c.budget)
        out.append(Config(**{**c.__dict__, "budget": b}))
    return out


def _setup(c: Config):
    fam = make_family(c.family, **c.params)
    kw = {"algorithm": "maml", "B": 10, "D_in": 1, "D_o": 1, "D_h": 1, **c.hyper}
    alpha = lit.ALPHA_MAX_LD.get(kw["algorithm"], lit.ALPHA_MAX_LD["maml"]) / fam.constants().L.value
    return fam, Hyper(alpha=alpha, **kw)


def _complete(res):
    """``res`` if its run spent its budget; a run that Ctrl-C cut short (the
    runner returns it flagged ``interrupted``) is no measurement: re-raise."""
    if res.interrupted:
        raise KeyboardInterrupt
    return res


def measure(c: Config, repeats: int = 3, warmup: int = 20) -> dict[str, Any]:
    """Time ``c`` (best of ``repeats`` after one warm-up run of ``warmup``
    steps) and return one row: its parameters and ``seed_iterations_per_s``.
    Ctrl-C raises ``KeyboardInterrupt`` (never a row from a cut-short run)."""
    fam, hyper = _setup(c)
    default = getattr(streams, "PREFETCH", None)
    if default is not None:
        streams.PREFETCH = c.prefetch
    prefetch = default is not None and c.prefetch and c.R >= streams.PREFETCH_MIN_SEEDS
    try:
        _complete(run(fam, hyper, [TINY_EPS], seeds=c.R, budget=min(warmup, c.budget), stop_at_eps=False))
        best, cpu, iterations = np.inf, np.inf, 0
        for _ in range(max(1, repeats)):
            t0, c0 = time.perf_counter(), time.process_time()
            res = _complete(run(fam, hyper, [TINY_EPS], seeds=c.R, budget=c.budget, stop_at_eps=False))
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if dt < best:
                best, cpu, iterations = dt, dc, res.iterations
    finally:
        if default is not None:
            streams.PREFETCH = default
    return {
        "name": c.name, "family": c.family, **{k: v for k, v in fam.describe().items() if k != "family"},
        **{k: getattr(hyper, k) for k in ("algorithm", "alpha", "B", "D_in", "D_o", "D_h")},
        "R": c.R, "prefetch": prefetch, "budget": c.budget, "iterations": iterations,
        "repeats": max(1, repeats), "best_s": best, "cpu_s": cpu,
        "seed_iterations_per_s": c.R * iterations / best if best > 0 else float("inf"),
        "batching_speedup": None,
    }


class _Progress:
    """Which configuration is being measured, on stderr: one line rewritten
    in place on a terminal, one line per configuration otherwise."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.width = 0

    def start(self, i: int, c: Config, repeats: int) -> None:
        if not self.enabled:
            return
        plural = "s" if repeats != 1 else ""
        line = f"bench: measuring {i}/{self.total} {c.name!r} ({c.budget} steps, R = {c.R}, {repeats} repeat{plural})"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(self.width))
            self.width = max(self.width, len(line))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def _pair_speedups(cs: list[Config], rows: list[dict[str, Any]]) -> None:
    """Fill ``batching_speedup`` (rate at ``R`` over the rate of its ``R = 1``
    twin) where both were measured."""
    by_name = {r["name"]: r for r in rows}
    for c in cs:
        if c.pair in by_name and c.name in by_name:
            many, one = by_name[c.pair], by_name[c.name]
            many["batching_speedup"] = many["seed_iterations_per_s"] / one["seed_iterations_per_s"]


def bench(cs: Iterable[Config], repeats: int = 3, progress: bool = False) -> list[dict[str, Any]]:
    """Measure every configuration; fill ``batching_speedup`` where a twin was
    measured.  Ctrl-C raises ``Interrupted`` carrying the rows measured in full."""
    cs = list(cs)
    bar = _Progress(len(cs), progress)
    rows: list[dict[str, Any]] = []
    try:
        for i, c in enumerate(cs, 1):
            bar.start(i, c, repeats)
            try:
                rows.append(measure(c, repeats))
            except KeyboardInterrupt:
                _pair_speedups(cs, rows)
                raise Interrupted(rows, c.name) from None
    finally:
        bar.close()
    _pair_speedups(cs, rows)
    return rows


def _table(rows: list[dict[str, Any]], repeats: int) -> str:
    head = f"{'configuration':20s} {'family':18s} {'d':>4s} {'algorithm':9s} {'B':>3s} {'R':>3s} " \
           f"{'prefetch':>8s} {'steps':>6s} {'seed-it/s':>11s} {'batching':>9s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        sp = f"{r['batching_speedup']:8.1f}x" if r["batching_speedup"] else ""
        lines.append(f"{r['name']:20s} {r['family']:18s} {r.get('d', ''):>4} {r['algorithm']:9s} "
                     f"{r['B']:>3d} {r['R']:>3d} {'yes' if r['prefetch'] else 'no':>8s} {r['iterations']:>6d} "
                     f"{r['seed_iterations_per_s']:>11,.0f} {sp:>9s}")
    lines.append(f"best of {repeats} timed repeats (wall clock) after one warm-up run; exact ‖∇F(w_k)‖ "
                 f"recorded every step; numpy {np.__version__}, {platform.machine()}, "
                 f"{os.cpu_count()} logical CPUs")
    busy = [r["name"] for r in rows if not r["prefetch"] and r["cpu_s"] < 0.9 * r["best_s"]]
    if busy:
        lines.append(f"note: the process had the CPU less than 90% of the time in {', '.join(busy)}: "
                     "the machine was busy and the rates understate the code's speed")
    return "\n".join(lines)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per line per configuration")
    p.add_argument("--quick", action="store_true", help="budgets divided by 10 (a few seconds in all)")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed repeats per configuration, in [1, {MAX_REPEATS}]; the best is reported "
                        "(default 3; 2 with --quick)")
    p.add_argument("--budget", type=int, default=None,
                   help=f"override every configuration's number of steps, in [1, {MAX_BUDGET}]")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="configurations to run, by name")
    p.add_argument("--no-progress", action="store_true", help="do not name each configuration on stderr")


def _chosen(args) -> tuple[int, list[Config]]:
    """Repeats and configurations from the options, each checked against its
    range before anything is measured (``ValueError`` naming the flag)."""
    repeats = check_int("--repeats", args.repeats if args.repeats is not None else (2 if args.quick else 3),
                        1, MAX_REPEATS)
    if args.budget is not None:
        check_int("--budget", args.budget, 1, MAX_BUDGET)
    cs = configs(args.quick, args.budget)
    if args.only:
        unknown = sorted(set(args.only) - {c.name for c in cs})
        if unknown:
            raise ValueError(f"--only must name known configurations; unknown configuration(s) {unknown}; "
                             f"known: {[c.name for c in cs]}")
        cs = [c for c in cs if c.name in args.only]
    return repeats, cs


def _report(rows: list[dict[str, Any]], repeats: int, as_json: bool) -> None:
    if as_json:
        for r in rows:
            print(json.dumps(r), flush=True)
    elif rows:
        print(_table(rows, repeats), flush=True)


def main(args) -> int:
    repeats, cs = _chosen(args)
    try:
        rows = bench(cs, repeats, progress=not getattr(args, "no_progress", False))
    except Interrupted as stop:
        _report(stop.rows, repeats, args.json)
        print(f"bench: interrupted while measuring {stop.name!r} (not reported); "
              f"{len(stop.rows)} of {len(cs)} configurations measured", file=sys.stderr)
        return 130
    _report(rows, repeats, args.json)
    return 0
