"""``python -m mamlcheck bench [--json] [--quick] [--jax]``: seed-iterations per second.

Runs a fixed set of configurations, the ones users run (``CONFIGS``), through
``algorithms.runner.run`` (the same hot loop every experiment uses, with the exact
``‖∇F(w_k)‖`` (5) evaluated for every seed at every iteration) for a fixed number of outer
steps (``eps`` is tiny and ``stop_at_eps`` off, so every run spends its whole budget), and
reports ``R × iterations / seconds``.  Each configuration is run once to warm up, then timed
with ``time.perf_counter`` over a few repeats; the *best* repeat is reported (the least
disturbed by whatever else the machine does), with the process CPU time of that repeat
(``cpu_s``).  Rows at ``R > 1`` whose ``R = 1`` twin is measured show the speed-up from
batching seeds; rows with a meaningful machine limit show their fraction of it
(``bench_limits``: the fast path's random numbers and sines on one core, robust-regression's
exact ``∇F`` multiply-adds at ``dgemm``'s rate).

Reference configuration: ``cosine-quadratic``, ``d = 20``, ``M = 50``, diagonal ``A``, MAML
with ``B = 10``, ``D_in = D_o = D_h = 1``, at ``R = 1, 4, 64, 1024`` seeds; ``α`` the
theorem's largest (``1/(6L)``; FO-MAML ``1/(10L)``), adaptive step ``β_k = 1/(c·L̃(w_k))``
with the theorem's ``B′``, ``D_β``.  Where ``algorithms.streams`` refills the seed streams in
a background thread (``PREFETCH``), the ``1 core`` row turns that off.

``--jax`` measures a JAX implementation of the same configuration beside each row that has one
(``bench_jax``: same family arrays and resolved hyperparameters, jit, vmap, ``lax.scan``,
float64), in a worker process, alternately with the numpy side (numpy repeat, JAX repeat, ...;
the best of each), and reports ``jax_seed_iterations_per_s`` and ``vs_jax`` (the numpy rate
over the JAX rate); JAX's compile time is excluded from its rate and reported.

``--json`` prints one JSON object per line per configuration: its parameters,
``seed_iterations_per_s`` and the columns above.  Speed is measured here and never asserted
by the tests.

Options are checked before anything is measured (``--jax`` without jax: status 2 and how to
install it).  stderr names the configuration being measured (one line per configuration when
stderr is not a terminal).  Ctrl-C stops at once with status 130: the configurations measured
in full are reported, the one interrupted is not (a cut-short run is no measurement).
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

from . import bench_jax
from .bench_limits import LIMIT_NOTE, limit
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
    budget; ``α`` is always the theorem's largest for the algorithm.  ``twin``:
    the ``R = 1`` configuration this one's batching speed-up divides by;
    ``jax``: measured beside its JAX implementation under ``--jax`` (the rows
    ``bench_jax.spec`` has one for, except the ``1 core`` twin of ``R = 64``)."""

    name: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    hyper: dict[str, Any] = field(default_factory=dict)
    R: int = 64
    budget: int = 1000
    twin: str | None = None
    prefetch: bool = True        # streams refilled by a background thread (False: one core only)
    jax: bool = True


_REF = {"d": 20, "M": 50}
_RR = {"d": 20, "M": 50, "N": 50}
_CHAIN = {"M": 10, "tilt": 1.0}
_CQ = "cosine-quadratic"


def _rr(algorithm: str, budget_1: int, budget_64: int) -> tuple[Config, Config]:
    one = f"rr {algorithm} R=1"
    return (Config(one, "robust-regression", _RR, {"algorithm": algorithm}, R=1, budget=budget_1),
            Config(f"rr {algorithm} R=64", "robust-regression", _RR, {"algorithm": algorithm}, budget=budget_64,
                   twin=one))


# budgets: about half a second per timed repeat on the 2-core machine, numpy and JAX alike
CONFIGS: tuple[Config, ...] = (
    Config("reference R=1", _CQ, _REF, R=1, budget=3000),
    Config("reference R=4", _CQ, _REF, R=4, budget=2000, twin="reference R=1"),
    Config("reference R=64", _CQ, _REF, budget=600, twin="reference R=1"),
    Config("reference R=1024", _CQ, _REF, R=1024, budget=60, twin="reference R=1"),
    Config("reference R=64 1 core", _CQ, _REF, budget=500, prefetch=False, jax=False),
    Config("cq fomaml R=64", _CQ, _REF, {"algorithm": "fomaml"}, budget=500, jax=False),
    Config("cq hfmaml R=64", _CQ, _REF, {"algorithm": "hfmaml"}, budget=400, jax=False),
    Config("cq exact R=64", _CQ, _REF, {"algorithm": "exact"}, budget=500, jax=False),
    Config("cq d=100 B=20 R=64", _CQ, {"d": 100, "M": 50}, {"B": 20}, budget=60),
    Config("cq dense R=64", _CQ, {**_REF, "dense": True}, budget=80),
    *_rr("maml", 800, 60), *_rr("fomaml", 800, 100), *_rr("hfmaml", 800, 60),
    Config("chain R=1", "hard-chain", _CHAIN, R=1, budget=500),
    Config("chain R=64", "hard-chain", _CHAIN, budget=100, twin="chain R=1"),
)


def configs(quick: bool = False, budget: int | None = None) -> list[Config]:
    """The configurations whose family is registered (and the ``1 core`` row
    only where the streams have a prefetch thread to turn off); ``quick``
    divides each budget by 10, ``budget`` replaces them all."""
    out = []
    for c in CONFIGS:
        if c.family not in FAMILIES or (not c.prefetch and getattr(streams, "PREFETCH", None) is None):
            continue
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


class _JaxSide:
    """The JAX run of one configuration in the worker: built (compiled) once, timed per repeat;
    a worker's error is kept in ``error`` and leaves the JAX columns empty."""

    EMPTY = {"jax_variant": None, "jax_seed_iterations_per_s": None, "vs_jax": None, "jax_compile_s": None,
             "jax_best_s": None, "jax_cpu_s": None, "jax_mean_grad_norm_last": None, "jax_error": None}

    def __init__(self, yard, c: Config, fam, hyper):
        consts = fam.constants()
        self.yard, self.name, self.error = yard, c.name, None
        self.spec = bench_jax.spec(fam, hyper.resolved(consts), consts.L.value, consts.rho.value, c.R, c.budget)
        self.compile_s = self.best = self.cpu = self.last = None
        if self.spec is not None:
            self._guard(lambda: setattr(self, "compile_s", yard.build(c.name, *self.spec)["compile_s"]))

    def _guard(self, fn) -> None:
        try:
            fn()
        except bench_jax.YardstickError as e:      # the numpy row stands; the JAX columns stay empty
            self.error = str(e)

    def time(self) -> None:
        if self.spec is None or self.error is not None:
            return

        def once():
            t = self.yard.time(self.name)
            if self.best is None or t["wall"] < self.best:
                self.best, self.cpu, self.last = t["wall"], t["cpu"], t["mean_last_norm"]
        self._guard(once)

    def close(self) -> None:
        if self.spec is not None and self.error is None:
            self._guard(lambda: self.yard.drop(self.name))

    def columns(self, R: int, K: int, rate: float) -> dict[str, Any]:
        ok = self.best is not None and self.error is None
        jrate = R * K / self.best if ok and self.best > 0 else None
        return {"jax_variant": self.spec[0] if self.spec else None, "jax_seed_iterations_per_s": jrate,
                "vs_jax": rate / jrate if jrate else None, "jax_compile_s": self.compile_s,
                "jax_best_s": self.best if ok else None, "jax_cpu_s": self.cpu if ok else None,
                "jax_mean_grad_norm_last": self.last if ok else None, "jax_error": self.error}


def measure(c: Config, repeats: int = 3, warmup: int = 20, jax=None) -> dict[str, Any]:
    """Time ``c`` (best of ``repeats`` after one warm-up run of ``warmup``
    steps) and return one row: its parameters and ``seed_iterations_per_s``.
    ``jax``: a ``bench_jax.Yardstick``; the configuration's JAX run is then
    compiled (and warmed up) first and timed after each numpy repeat.  Ctrl-C
    raises ``KeyboardInterrupt`` (never a row from a cut-short run)."""
    fam, hyper = _setup(c)
    default = getattr(streams, "PREFETCH", None)
    if default is not None:
        streams.PREFETCH = c.prefetch
    prefetch = default is not None and c.prefetch and c.R >= getattr(streams, "PREFETCH_MIN_SEEDS", 1)
    side = None
    try:
        if jax is not None and c.jax:
            side = _JaxSide(jax, c, fam, hyper)
        _complete(run(fam, hyper, [TINY_EPS], seeds=c.R, budget=min(warmup, c.budget), stop_at_eps=False))
        best, cpu, res_best = np.inf, np.inf, None
        for _ in range(max(1, repeats)):
            t0, c0 = time.perf_counter(), time.process_time()
            res = _complete(run(fam, hyper, [TINY_EPS], seeds=c.R, budget=c.budget, stop_at_eps=False))
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if dt < best:
                best, cpu, res_best = dt, dc, res
            if side is not None:
                side.time()
    finally:
        if default is not None:
            streams.PREFETCH = default
        if side is not None:
            side.close()
    iterations = res_best.iterations
    rate = c.R * iterations / best if best > 0 else float("inf")
    cap = limit(fam, res_best.hyper)
    row = {
        "name": c.name, "family": c.family, **{k: v for k, v in fam.describe().items() if k != "family"},
        **{k: getattr(hyper, k) for k in ("algorithm", "alpha", "B", "D_in", "D_o", "D_h")},
        "B_prime": res_best.hyper.B_prime, "D_beta": res_best.hyper.D_beta,
        "R": c.R, "prefetch": prefetch, "budget": c.budget, "iterations": iterations,
        "repeats": max(1, repeats), "best_s": best, "cpu_s": cpu, "seed_iterations_per_s": rate,
        "batching_speedup": None, "limit_seed_iterations_per_s": cap,
        "fraction_of_limit": rate / cap if cap else None,
        "mean_grad_norm_last": float(res_best.mean_grad_norm[max(iterations - 1, 0)]),
        "machine": _MACHINE,
    }
    if jax is not None:                                 # with --jax every row has the JAX columns
        row.update(side.columns(c.R, c.budget, rate) if side is not None else _JaxSide.EMPTY)
    return row


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_MACHINE = f"{platform.system()} {platform.machine()}, {_cpu_model()}, {os.cpu_count()} logical CPUs"


class _Progress:
    """Which configuration is being measured, on stderr: one line rewritten
    in place on a terminal, one line per configuration otherwise."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.width = 0

    def start(self, i: int, c: Config, repeats: int, jax: bool = False) -> None:
        if not self.enabled:
            return
        plural = "s" if repeats != 1 else ""
        line = (f"bench: measuring {i}/{self.total} {c.name!r} ({c.budget} steps, R = {c.R}, "
                f"{repeats} repeat{plural}{', beside JAX' if jax else ''})")
        self.say(line)

    def say(self, line: str, keep: bool = False) -> None:
        if self.tty:
            sys.stderr.write("\r" + line.ljust(self.width) + ("\n" if keep else ""))
            self.width = 0 if keep else max(self.width, len(line))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def _speedups(cs: list[Config], rows: list[dict[str, Any]]) -> None:
    """Fill ``batching_speedup`` (the rate at ``R`` over the rate of its ``R = 1``
    twin) where both were measured."""
    by_name = {r["name"]: r for r in rows}
    for c in cs:
        if c.twin in by_name and c.name in by_name:
            many, one = by_name[c.name], by_name[c.twin]
            many["batching_speedup"] = many["seed_iterations_per_s"] / one["seed_iterations_per_s"]


def bench(cs: Iterable[Config], repeats: int = 3, progress: bool = False, jax=None) -> list[dict[str, Any]]:
    """Measure every configuration (beside its JAX run where ``jax``, a
    ``bench_jax.Yardstick``, is given); fill ``batching_speedup`` where a twin
    was measured.  Ctrl-C raises ``Interrupted`` carrying the rows measured in full."""
    cs = list(cs)
    bar = _Progress(len(cs), progress)
    rows: list[dict[str, Any]] = []
    try:
        for i, c in enumerate(cs, 1):
            bar.start(i, c, repeats, jax is not None and c.jax)
            try:
                rows.append(measure(c, repeats) if jax is None else measure(c, repeats, jax=jax))
            except KeyboardInterrupt:
                _speedups(cs, rows)
                raise Interrupted(rows, c.name) from None
            if rows[-1].get("jax_error"):
                bar.say(f"bench: the JAX run of {c.name!r} failed: {rows[-1]['jax_error']}", keep=True)
    finally:
        bar.close()
    _speedups(cs, rows)
    return rows


def _fmt(x, spec: str, suffix: str = "") -> str:
    return "" if x is None else f"{x:{spec}}{suffix}"


def _table(rows: list[dict[str, Any]], repeats: int, jax_info: dict | None = None) -> str:
    jax = jax_info is not None
    head = (f"{'configuration':22s} {'family':17s} {'d':>3s} {'algorithm':9s} {'B':>2s} {'R':>4s} {'steps':>5s} "
            f"{'seed-it/s':>10s} {'batching':>8s} {'of limit':>8s}")
    if jax:
        head += f" {'JAX seed-it/s':>13s} {'vs JAX':>6s} {'compile':>7s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = (f"{r['name']:22s} {r['family']:17s} {r.get('d', ''):>3} {r['algorithm']:9s} {r['B']:>2d} {r['R']:>4d} "
                f"{r['iterations']:>5d} {r['seed_iterations_per_s']:>10,.0f} "
                f"{_fmt(r['batching_speedup'], '7.1f', 'x'):>8s} {_fmt(r.get('fraction_of_limit'), '8.2f'):>8s}")
        if jax:
            line += (f" {_fmt(r.get('jax_seed_iterations_per_s'), '13,.0f'):>13s} "
                     f"{_fmt(r.get('vs_jax'), '5.2f', 'x'):>6s} {_fmt(r.get('jax_compile_s'), '6.1f', 's'):>7s}")
        lines.append(line)
    order = "numpy and JAX alternately, " if jax else ""
    lines.append(f"best of {repeats} timed repeats (wall clock, {order}after one warm-up run); exact ‖∇F(w_k)‖ "
                 "recorded every step")
    lines.append(LIMIT_NOTE)
    if jax:
        lines.append(f"JAX {jax_info.get('jax')} ({jax_info.get('backend')}, float64): the same configuration in "
                     "bench_jax; compile: seconds to compile (or load from JAX's cache), excluded from its rate; "
                     "vs JAX: numpy rate / JAX rate")
    lines.append(f"machine: {_MACHINE}; {platform.platform()}; Python {platform.python_version()}, "
                 f"numpy {np.__version__}")
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
    p.add_argument("--jax", action="store_true",
                   help="measure a JAX implementation of each configuration beside it (needs the bench extra: "
                        "pip install -e '.[bench]')")
    p.add_argument("--no-progress", action="store_true", help="do not name each configuration on stderr")


def _chosen(args) -> tuple[int, list[Config]]:
    """Repeats and configurations from the options, each checked against its
    range before anything is measured (``ValueError`` naming the flag)."""
    repeats = check_int("--repeats", args.repeats if args.repeats is not None else (2 if args.quick else 3),
                        1, MAX_REPEATS)
    if args.budget is not None:
        check_int("--budget", args.budget, 1, MAX_BUDGET)
    if getattr(args, "jax", False) and not bench_jax.available():
        raise ValueError(bench_jax.MISSING)
    cs = configs(args.quick, args.budget)
    if args.only:
        unknown = sorted(set(args.only) - {c.name for c in cs})
        if unknown:
            raise ValueError(f"--only must name known configurations; unknown configuration(s) {unknown}; "
                             f"known: {[c.name for c in cs]}")
        cs = [c for c in cs if c.name in args.only]
    return repeats, cs


def _report(rows: list[dict[str, Any]], repeats: int, as_json: bool, jax_info: dict | None) -> None:
    if as_json:
        for r in rows:
            print(json.dumps(r), flush=True)
    elif rows:
        print(_table(rows, repeats, jax_info), flush=True)


def main(args) -> int:
    repeats, cs = _chosen(args)
    jax = None
    if getattr(args, "jax", False):
        try:
            jax = bench_jax.Yardstick()
        except bench_jax.YardstickError as e:
            raise ValueError(f"--jax: the JAX worker did not start ({e}); {bench_jax.MISSING}") from None
    info = jax.info if jax is not None else None
    try:
        rows = bench(cs, repeats, progress=not getattr(args, "no_progress", False), jax=jax)
    except Interrupted as stop:
        _report(stop.rows, repeats, args.json, info)
        print(f"bench: interrupted while measuring {stop.name!r} (not reported); "
              f"{len(stop.rows)} of {len(cs)} configurations measured", file=sys.stderr)
        return 130
    finally:
        if jax is not None:
            jax.close()
    _report(rows, repeats, args.json, info)
    return 1 if any(r.get("jax_error") for r in rows) else 0
