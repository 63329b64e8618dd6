"""Building blocks of ``mamlcheck.testing``: table rows and the report, the
statistical tests, central differences with an order-set tolerance, and the
adversarial search for the supremum a constant bounds.

Every statistical helper takes its false-alarm rate ``alpha`` (``FALSE_ALARM =
1e-6`` by default) and spends it in the normal approximation to the
distribution of a mean of ``K`` i.i.d. draws (``K = 2·10⁴`` in
``check_family``); the tests of means correct the critical value for the
statistic's skewness by the first Cornish–Fisher term ``z + |γ|(z² − 1)/6``
(``γ`` estimated from the draws; the skewness of a mean of ``K`` draws is
``γ₁/√K``), which matters at ``z ≈ 5``.  No verdict depends on particular
draws beyond that rate; fixed seeds only make a run reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import optimize, stats

from mamlcheck.theory.checks import Check

__all__ = ["FALSE_ALARM", "ATTAIN", "EPS", "ROUNDING", "COLUMNS", "row", "skipped", "errored", "guard", "offers",
           "cornish_fisher", "mean_interval", "mean_z_ratio", "means_differ_ratio", "variances_differ_ratio",
           "central_differences", "fd_check", "maximise", "sup_over_tasks", "directions", "take_rows",
           "spectral_norm", "FamilyReport"]

#: False-alarm rate of every statistical check of ``check_family`` (each check, all
#: its coordinates together).
FALSE_ALARM = 1e-6
#: A constant marked ``exact`` must be approached to this fraction of its value.
ATTAIN = 0.9
EPS = float(np.finfo(float).eps)
#: Relative rounding allowance of two evaluations of the same quantity (≈ 2.2e-12).
ROUNDING = 1e4 * EPS

#: Columns of the report, one row per check.
COLUMNS = ("check", "statement", "source", "measured", "bound", "kind", "lo", "hi", "tol", "verdict", "note")


# --- rows -----------------------------------------------------------------------------
def row(check: str, statement: str, source: str, measured, bound, *, kind: str = "upper",
        lo=None, hi=None, tol: float = 0.0, note: str = "") -> dict:
    """One report row; its verdict is ``theory.checks.Check``'s (``holds``,
    ``violated``, ``inconclusive``), except that a NaN measurement is ``violated``
    (a family that returns NaN is broken, not undecided)."""
    measured = float(measured)
    lo = measured if lo is None else float(lo)
    hi = measured if hi is None else float(hi)
    if math.isnan(measured) or math.isnan(lo) or math.isnan(hi):
        verdict, note = "violated", (note + "; " if note else "") + "measured is NaN"
    else:
        verdict = Check(statement, source, measured, float(bound), kind, lo, hi, float(tol)).verdict
    return {"check": check, "statement": statement, "source": source, "measured": measured,
            "bound": float(bound), "kind": kind, "lo": lo, "hi": hi, "tol": float(tol),
            "verdict": verdict, "note": note}


def skipped(check: str, statement: str, source: str, note: str) -> dict:
    """A row for a check that does not apply (capability not offered, constant not exact)."""
    return {"check": check, "statement": statement, "source": source, "measured": np.nan,
            "bound": np.nan, "kind": "", "lo": np.nan, "hi": np.nan, "tol": np.nan,
            "verdict": "skipped", "note": note}


def errored(check: str, statement: str, source: str, exc: BaseException) -> dict:
    """A row for a check whose evaluation raised: a failure naming the exception."""
    return {**skipped(check, statement, source, f"{type(exc).__name__}: {exc}"), "verdict": "error"}


def guard(name: str, statement: str, fn: Callable[[], list[dict]], source: str = "contract") -> list[dict]:
    """``fn()``'s rows, or one ``error`` row naming the exception it raised."""
    try:
        return fn()
    except Exception as exc:     # noqa: BLE001 - a broken family is a finding, not a crash
        return [errored(name, statement, source, exc)]


def offers(family, capability: str) -> bool:
    """Whether ``family`` offers the optional ``capability`` (``TaskFamily.offers``)."""
    ask = getattr(family, "offers", None)
    return bool(ask(capability)) if ask is not None else False


# --- statistics ---------------------------------------------------------------------------
def cornish_fisher(z, skew):
    """One-sided critical value for a statistic of skewness ``skew`` whose
    normal-approximation critical value is ``z``: ``z + |skew|(z² − 1)/6``
    (the first Cornish–Fisher term, taken on the conservative side)."""
    return z + np.abs(skew) * (z * z - 1.0) / 6.0


def _moments(x: np.ndarray):
    """Mean, variance (ddof 1), and third and fourth central moments along axis 0."""
    m = x.mean(0)
    c = x - m
    c2 = c * c
    return m, c2.sum(0) / max(len(x) - 1, 1), (c2 * c).mean(0), (c2 * c2).mean(0)


def _skew_of_mean(var, m3, K):
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(var > 0, m3 / np.where(var > 0, var, 1.0) ** 1.5, 0.0)
    return g / np.sqrt(K)


def mean_interval(x: np.ndarray, alpha: float = FALSE_ALARM) -> tuple[float, float, float]:
    """``(mean, lo, hi)`` of the i.i.d. draws ``x`` (shape ``(K,)``): ``P(lo > μ) ≤ alpha``
    and ``P(hi < μ) ≤ alpha`` in the skewness-corrected normal approximation."""
    x = np.asarray(x, dtype=float)
    m, var, m3, _ = _moments(x)
    q = cornish_fisher(stats.norm.isf(alpha), _skew_of_mean(var, m3, len(x)))
    se = math.sqrt(var / len(x))
    return float(m), float(m - q * se), float(m + q * se)


def mean_z_ratio(x: np.ndarray, target: np.ndarray, rounding: float, alpha: float = FALSE_ALARM) -> float:
    """``max_j |x̄_j − target_j| / (q_j se_j)`` over the columns of the draws ``x``
    ``(K, m)``: above 1 iff the two-sided z-test rejects ``E x_j = target_j`` for
    some ``j``, at false-alarm ``alpha`` in all (Bonferroni over ``2m`` tails,
    ``q_j`` skewness-corrected).  ``rounding`` (absolute) is added in quadrature
    to ``se_j``, so that exact draws (zero variance) must match to rounding."""
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    target = np.asarray(target, dtype=float).reshape(-1)
    K, m = x.shape
    mean, var, m3, _ = _moments(x)
    q = cornish_fisher(stats.norm.isf(alpha / (2 * m)), _skew_of_mean(var, m3, K))
    se = np.sqrt(var / K + rounding ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(se > 0, np.abs(mean - target) / (q * np.where(se > 0, se, 1.0)),
                     np.where(mean == target, 0.0, np.inf))
    return float(np.max(r))


def means_differ_ratio(a: np.ndarray, b: np.ndarray, rounding: float, alpha: float = FALSE_ALARM) -> float:
    """Two independent samples ``(K, m)``: ``max_j |ā_j − b̄_j| / (q_j se_j)``, above 1
    iff the two-sided Welch z-test rejects equal means for some ``j`` at
    false-alarm ``alpha`` in all (Bonferroni over ``2m`` tails; ``q_j`` corrected
    for the skewness of ``ā_j − b̄_j``)."""
    ma, va, m3a, _ = _moments(a)
    mb, vb, m3b, _ = _moments(b)
    na, nb = len(a), len(b)
    se2 = va / na + vb / nb
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(se2 > 0, (m3a / na ** 2 - m3b / nb ** 2) / np.where(se2 > 0, se2, 1.0) ** 1.5, 0.0)
    q = cornish_fisher(stats.norm.isf(alpha / (2 * a.shape[1])), skew)
    return float(np.max(np.abs(ma - mb) / (q * np.sqrt(se2 + rounding ** 2))))


def variances_differ_ratio(a: np.ndarray, b: np.ndarray, rounding: float, alpha: float = FALSE_ALARM) -> float:
    """Two independent samples ``(K, m)``: ``max_j |s²_a,j − s²_b,j| / (z se_j)`` with
    ``se_j² = (m4_a − s_a⁴)/n_a + (m4_b − s_b⁴)/n_b`` (fourth central moments: valid
    without normality); above 1 iff the two-sided test rejects equal variances
    for some ``j``, false-alarm ``alpha`` in all in the normal approximation
    (Bonferroni over ``2m`` tails)."""
    _, va, _, m4a = _moments(a)
    _, vb, _, m4b = _moments(b)
    se = np.sqrt(np.maximum(m4a - va ** 2, 0) / len(a) + np.maximum(m4b - vb ** 2, 0) / len(b)
                 + rounding ** 2)
    z = stats.norm.isf(alpha / (2 * a.shape[1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(se > 0, np.abs(va - vb) / (z * np.where(se > 0, se, 1.0)), np.where(va == vb, 0.0, np.inf))
    return float(np.max(r))


# --- central differences -----------------------------------------------------------------
def central_differences(fun: Callable, x: np.ndarray, dirs: np.ndarray, h: float):
    """``(fun(x + h e) − fun(x − h e)) / 2h`` per row ``e`` of ``dirs`` (stacked on the
    last axis) and the largest ``|fun|`` on the stencil."""
    plus = [np.asarray(fun(x + h * e), dtype=float) for e in dirs]
    minus = [np.asarray(fun(x - h * e), dtype=float) for e in dirs]
    size = max(float(np.max(np.abs(v), initial=0.0)) for v in plus + minus)
    return (np.stack(plus, -1) - np.stack(minus, -1)) / (2.0 * h), size


def fd_check(fun: Callable, x: np.ndarray, derivative: np.ndarray, h: float, *,
             dirs: np.ndarray | None = None, scale: float = 0.0) -> tuple[float, float]:
    """``(error, tolerance)`` of ``derivative`` against central differences of ``fun``
    at ``x`` along the rows of ``dirs`` (default: the coordinate axes).

    The central difference ``D(h)`` has truncation error ``c h² + O(h⁴)`` (``c`` a
    third derivative of ``fun`` over 6) and rounding error ``~ε|fun|/h``.  The
    truncation term is measured, not assumed: ``D(2h) − D(h) ≈ 3c h²``, so the
    tolerance is ``10·max|D(2h) − D(h)|`` (a 30× margin on the truncation error),
    plus ``10³ ε S/h`` for rounding (``S``: the largest ``|fun|`` on the stencil or
    the caller's ``scale`` of intermediate terms, whichever is larger), plus
    ``ROUNDING·max|derivative|`` for the derivative's own rounding.  A wrong
    derivative (a dropped or sign-flipped term) is off by O(1) relative to
    itself, far above this.
    """
    x = np.asarray(x, dtype=float)
    dirs = np.eye(x.shape[-1]) if dirs is None else np.atleast_2d(dirs)
    D1, s1 = central_differences(fun, x, dirs, h)
    D2, s2 = central_differences(fun, x, dirs, 2.0 * h)
    if dirs.shape[0] == 1:
        D1, D2 = D1[..., 0], D2[..., 0]
    derivative = np.asarray(derivative, dtype=float)
    if derivative.shape != D1.shape:
        raise ValueError(f"derivative has shape {derivative.shape}, its differences {D1.shape}")
    size = max(s1, s2, float(scale))
    tol = (10.0 * float(np.max(np.abs(D2 - D1), initial=0.0)) + 1e3 * EPS * size / h
           + ROUNDING * float(np.max(np.abs(derivative), initial=0.0)))
    return float(np.max(np.abs(derivative - D1), initial=0.0)), tol


# --- adversarial search -----------------------------------------------------------------
def maximise(value: Callable[[np.ndarray], np.ndarray], starts: np.ndarray, *, step: float,
             maxiter: int = 40) -> tuple[float, np.ndarray]:
    """Largest ``value`` found by BFGS ascents from each of ``starts`` ``(S, k)``.

    ``value`` maps points ``(P, k)`` to ``(P,)`` in one vectorised call; the
    gradient the optimiser needs is a forward difference of step ``step``,
    evaluated in that same call (``k + 1`` points).  Non-finite values count as
    ``−inf``.  Returns the best value (re-evaluated at its point) and the point.
    """
    def safe(P):
        v = np.asarray(value(P), dtype=float)
        return np.where(np.isfinite(v), v, -np.inf)

    best_v, best_x = -np.inf, np.asarray(starts[0], dtype=float)
    for x0 in np.atleast_2d(starts):
        k = x0.size

        def negative(z):
            v = safe(np.vstack([z, z + step * np.eye(k)]))
            if not np.isfinite(v[0]):
                return 1e300, np.zeros(k)
            g = np.where(np.isfinite(v[1:]), (v[1:] - v[0]) / step, 0.0)
            return -v[0], -g

        try:
            res = optimize.minimize(negative, x0, jac=True, method="BFGS",
                                    options={"maxiter": maxiter})
            candidates = np.vstack([x0, res.x])
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            candidates = x0[None]
        v = safe(candidates)
        j = int(np.argmax(v))
        if v[j] > best_v:
            best_v, best_x = float(v[j]), candidates[j]
    return best_v, best_x


def spectral_norm(S: np.ndarray) -> np.ndarray:
    """``‖S‖₂`` of symmetric matrices ``(..., d, d)`` as the largest ``|eigenvalue|``
    of their symmetric part (the search's fast path; reported values use SVD)."""
    S = 0.5 * (S + np.swapaxes(S, -1, -2))
    return np.abs(np.linalg.eigvalsh(S)).max(-1)


def take_rows(batch: Mapping[str, np.ndarray], rows) -> dict:
    """The part of a drawn batch that belongs to task indices ``rows`` of the
    leading axis (batches are mappings of arrays whose leading axes are the
    task indices' shape)."""
    return {k: np.asarray(v)[rows] for k, v in batch.items()}


def directions(rng, n: int, d: int) -> np.ndarray:
    """``n`` directions uniform on the unit sphere of ``R^d``."""
    g = rng.standard_normal((n, d))
    return g / np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-300)


def sup_over_tasks(value, starts: np.ndarray, M: int, step: float, n_local: int = 3):
    """Per task, the largest ``value(points, task)`` over the starts (one call per
    task), then ascents from the ``n_local`` best (start, task) pairs overall.
    Returns per-task maxima, and the overall argmax ``(point, task)``."""
    vals = np.array([np.nan_to_num(value(starts, m), nan=-np.inf) for m in range(M)])   # (M, S)
    best = vals.max(1)
    order = np.argsort(-vals, axis=None)[:n_local]
    where = {}
    for flat in order:
        m, k = divmod(int(flat), starts.shape[0])
        v, x = maximise(lambda P: value(P, m), starts[k][None], step=step)
        if v >= best[m]:
            best[m], where[m] = v, x
    m = int(np.argmax(best))
    return best, (where.get(m, starts[int(np.argmax(vals[m]))]), m)


# --- the report ----------------------------------------------------------------------------
FAILED = ("violated", "error")


@dataclass(frozen=True)
class FamilyReport:
    """What ``check_family`` found: ``table`` (one row per check, columns
    ``_contract.COLUMNS``), whether every check ``passed``, the ``failures`` one
    line each, and the wall-clock ``seconds`` per group of checks."""

    family: str
    table: pd.DataFrame
    seconds: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.table.verdict.isin(FAILED).any()

    @property
    def failed(self) -> list[str]:
        """Names of the failed checks."""
        return list(self.table.check[self.table.verdict.isin(FAILED)])

    @property
    def failures(self) -> list[str]:
        """One line per failed check: its name, statement and numbers."""
        return [_line(r) for r in self.table[self.table.verdict.isin(FAILED)].to_dict("records")]

    def __str__(self) -> str:
        cols = ["check", "measured", "bound", "kind", "lo", "hi", "verdict"]
        with pd.option_context("display.width", 160, "display.max_rows", 200):
            return f"check_family({self.family}):\n{self.table[cols].to_string(index=False)}"


def _line(r: dict) -> str:
    if r["verdict"] == "error":
        return f"{r['check']}: {r['statement']}: raised {r['note']}"
    rel = ">" if r["kind"] == "upper" else "<"
    interval = "" if r["lo"] == r["hi"] else f" (interval [{r['lo']:.6g}, {r['hi']:.6g}])"
    note = f"; {r['note']}" if r["note"] else ""
    return (f"{r['check']}: {r['statement']}: measured {r['measured']:.6g}{interval} {rel} "
            f"bound {r['bound']:.6g} (tol {r['tol']:.3g}){note}")
