"""One shape for every comparison of a measurement with a bound.

A ``Check`` holds what an inequality says (``statement``), where it comes from
(``equation``: an equation number of the explainer, or a lemma of
THEORY.md), the ``measured`` value beside the ``bound`` (PEPit's
``(measured, theoretical)`` pair), the bound's ``kind`` (``upper``: the
measured quantity must not exceed it; ``lower``: must not fall below it) and
the interval ``[lo, hi]`` that holds the measured quantity with confidence
``1 − δ`` (``lo = hi = measured`` where it is exact).  Its verdict is

* ``holds`` when the whole interval is on the right side of the bound,
* ``violated`` when the whole interval is on the wrong side,
* ``inconclusive`` otherwise,

each up to an absolute tolerance ``tol`` (rounding).  ``verdict`` is the one
implementation, vectorised, that the proof ledger, the slack report and the
experiments' claims use.

Three further kinds serve claims that are not a one-sided inequality:

* ``within``: a two-sided bound ``bound_lo ≤ measured ≤ bound`` (the measured
  iterations of the hard chain between the zero-respecting lower bound and
  (14)); holds when ``[lo, hi]`` lies inside ``[bound_lo, bound]``, violated
  when it lies wholly outside, inconclusive otherwise (``within_verdict``);
* ``match``: a fitted value that should *equal* ``bound`` (an exponent of the
  noise floor, the ``−2`` of the rate); holds when ``[lo − tol, hi + tol]``
  contains the bound, violated when it excludes it, inconclusive when the
  interval is not known (a NaN or infinite end: too few points for a CI)
  (``match_verdict``);
* ``report``: a measurement with no bound to meet (wall time, a threshold the
  theory does not predict); its verdict is ``"measured"`` (``REPORTED``).

A bound that is a sum of terms, each a stated constant times a measured
factor, may carry them as ``parts``; ``term_slack`` then says, per term, which
constant would have sufficed with the others as stated (the slack report).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Check", "VERDICTS", "KINDS", "CHECK_KINDS", "REPORTED", "verdict", "slack", "match_verdict",
           "within_verdict"]

VERDICTS = ("holds", "violated", "inconclusive")
KINDS = ("upper", "lower")                                  # the kinds of ``verdict`` and ``slack``
CHECK_KINDS = KINDS + ("within", "match", "report")         # the kinds a ``Check`` may have
REPORTED = "measured"                                       # the verdict of a ``report`` check


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def verdict(lo, hi, bound, kind: str = "upper", tol=0.0) -> np.ndarray | str:
    """``holds`` / ``violated`` / ``inconclusive`` for a measured quantity known
    to lie in ``[lo, hi]``, against ``bound`` of the given ``kind``, up to
    ``tol``; elementwise over arrays (a ``str`` for scalars).

    ``upper``: holds iff ``hi ≤ bound + tol``, violated iff ``lo > bound + tol``.
    ``lower``: holds iff ``lo ≥ bound − tol``, violated iff ``hi < bound − tol``.
    """
    lo, hi, bound, tol = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (lo, hi, bound, tol)))
    if _kind(kind) == "upper":
        out = np.where(hi <= bound + tol, "holds", np.where(lo > bound + tol, "violated", "inconclusive"))
    else:
        out = np.where(lo >= bound - tol, "holds", np.where(hi < bound - tol, "violated", "inconclusive"))
    return str(out) if out.ndim == 0 else out


def match_verdict(lo, hi, bound, tol=0.0) -> np.ndarray | str:
    """``holds`` / ``violated`` / ``inconclusive`` for a quantity that should
    equal ``bound``, known to lie in ``[lo, hi]``; elementwise over arrays.

    Holds iff ``lo − tol ≤ bound ≤ hi + tol``; inconclusive where ``lo`` or
    ``hi`` is not finite (no interval: nothing is excluded, nothing confirmed);
    violated otherwise.  An exact value (``lo = hi``) matches only within ``tol``.
    """
    lo, hi, bound, tol = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (lo, hi, bound, tol)))
    known = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(bound)
    inside = (lo - tol <= bound) & (bound <= hi + tol)
    out = np.where(~known, "inconclusive", np.where(inside, "holds", "violated"))
    return str(out) if out.ndim == 0 else out


def within_verdict(lo, hi, bound_lo, bound_hi, tol=0.0) -> np.ndarray | str:
    """``holds`` / ``violated`` / ``inconclusive`` for a quantity in ``[lo, hi]``
    against the two-sided bound ``bound_lo ≤ · ≤ bound_hi``, up to ``tol``;
    elementwise over arrays.

    Holds iff ``bound_lo − tol ≤ lo`` and ``hi ≤ bound_hi + tol``; violated iff
    ``hi < bound_lo − tol`` or ``lo > bound_hi + tol`` (the whole interval on one
    wrong side); inconclusive otherwise (and where any end is NaN).
    """
    lo, hi, b_lo, b_hi, tol = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (lo, hi, bound_lo, bound_hi, tol)))
    known = ~(np.isnan(lo) | np.isnan(hi) | np.isnan(b_lo) | np.isnan(b_hi))
    inside = (b_lo - tol <= lo) & (hi <= b_hi + tol)
    outside = (hi < b_lo - tol) | (lo > b_hi + tol)
    out = np.where(~known, "inconclusive", np.where(inside, "holds", np.where(outside, "violated", "inconclusive")))
    return str(out) if out.ndim == 0 else out


def slack(measured, bound, kind: str = "upper") -> np.ndarray | float:
    """Room left: ``bound/measured`` for an upper bound, ``measured/bound`` for a
    lower one, ``≥ 1`` iff the check holds (for positive quantities); ``inf``
    where the denominator is ``≤ 0`` (nothing to bound)."""
    num, den = (bound, measured) if _kind(kind) == "upper" else (measured, bound)
    num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class Check:
    """One measured quantity beside its bound (see the module docstring).

    Args:
        statement: the inequality, written once (e.g. ``"‖E[G_i]‖² ≤ 2‖∇F‖² + 0.08σ̃²/D_in"``).
        equation: its source (``"(7)"``, ``"THEORY.md §3, step-size lemma"``).
        measured: the measured value (the point estimate).
        bound: the theoretical value for the same constants.
        kind: ``upper`` or ``lower``; or ``within``, ``match``, ``report`` (see
            the module docstring).
        lo, hi: the ``1 − δ`` interval of the measured quantity (default: ``measured``).
        tol: absolute tolerance of the comparison (rounding), ``≥ 0``.
        context: anything else worth a column (configuration, iteration, seed);
            the experiments' report reads ``note`` (the explanation printed after
            the verdict) and ``measured_text``/``bound_text`` (how the two values
            are printed, where a number alone would not say it).
        parts: the bound's terms ``(label, stated constant, value of the term)``,
            summing to ``bound`` (optional; see ``term_slack``).
        bound_lo: the lower end of a ``within`` bound (``bound`` is its upper end);
            ``None`` for every other kind.
    """

    statement: str
    equation: str
    measured: float
    bound: float
    kind: str = "upper"
    lo: float | None = None
    hi: float | None = None
    tol: float = 0.0
    context: dict[str, Any] = field(default_factory=dict)
    parts: tuple = ()
    bound_lo: float | None = None

    def __post_init__(self):
        if self.kind not in CHECK_KINDS:
            raise ValueError(f"kind must be one of {CHECK_KINDS}, got {self.kind!r}")
        if (self.kind == "within") != (self.bound_lo is not None):
            raise ValueError(f"bound_lo is required for kind 'within' and only for it ({self.kind!r})")
        if self.kind == "within" and self.bound_lo > self.bound:
            raise ValueError(f"a within bound must have bound_lo <= bound, got [{self.bound_lo}, {self.bound}]")
        for name in ("lo", "hi"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, float(self.measured))
        if not (self.tol >= 0):
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        if self.lo > self.hi:
            raise ValueError(f"the interval must have lo <= hi, got [{self.lo}, {self.hi}]")
        if self.parts:
            total = sum(p[2] for p in self.parts)
            if not math.isclose(total, self.bound, rel_tol=1e-9, abs_tol=1e-300):
                raise ValueError(f"{self.statement}: the terms sum to {total!r}, the bound is {self.bound!r}")

    @property
    def verdict(self) -> str:
        if self.kind == "report":
            return REPORTED
        ends = (self.lo, self.hi, self.bound) + ((self.bound_lo,) if self.kind == "within" else ())
        if any(math.isnan(float(x)) for x in ends):
            return "inconclusive"
        if self.kind == "match":
            return match_verdict(self.lo, self.hi, self.bound, self.tol)
        if self.kind == "within":
            return within_verdict(self.lo, self.hi, self.bound_lo, self.bound, self.tol)
        return verdict(self.lo, self.hi, self.bound, self.kind, self.tol)

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    @property
    def slack(self) -> float:
        """Room left at the conservative end of the interval (``≥ 1`` iff it holds, tol aside).
        A ``within`` check: the smaller room of its two sides; ``match`` and
        ``report``: NaN (there is no room to measure)."""
        if self.kind in ("match", "report"):
            return math.nan
        if self.kind == "within":
            return min(slack(self.hi, self.bound, "upper"), slack(self.lo, self.bound_lo, "lower"))
        end = self.hi if self.kind == "upper" else self.lo
        return slack(end, self.bound, self.kind)

    @property
    def exact(self) -> bool:
        """Whether the measured value is exact (its interval is a single point)."""
        return self.lo == self.hi

    def term_slack(self) -> list[dict[str, Any]]:
        """Per term of ``parts``, at the measured value: the constant that would
        have sufficed with the other terms as stated (``needed``), and
        ``stated/needed`` (upper) or ``needed/stated`` (lower) as ``ratio``.

        Terms with a zero constant or that vanish here are skipped, and so is an
        upper bound within ten tolerances of 0 (for an exact value): they say
        nothing about their constant.  A bound of several terms adds a
        ``whole bound`` row (``ratio``: ``slack(measured, bound)``), labelled
        ``context["property"]`` (or the equation) ``+ ": whole bound"``.
        """
        if self.kind not in KINDS:
            return []
        floor = 10 * self.tol if self.exact else 0.0
        if self.kind == "upper" and self.bound <= floor:
            return []
        rows = []
        for term, (label, stated, value) in enumerate(self.parts):
            if stated == 0 or value <= floor:
                continue
            needed = (self.measured - (self.bound - value)) / (value / stated)
            if self.kind == "upper":
                r = math.inf if needed <= 1e-9 * stated else stated / needed
            else:
                r = needed / stated
            rows.append(dict(constant=label, term=term, stated=stated, needed=needed, ratio=r))
        if len(self.parts) > 1:
            whole = slack(self.measured, self.bound, self.kind)
            name = self.context.get("property", self.equation)
            rows.append(dict(constant=f"{name}: whole bound", term=len(self.parts), stated=1.0,
                             needed=1.0 / whole if whole not in (0.0, math.inf) else 0.0, ratio=whole))
        return rows

    def row(self) -> dict[str, Any]:
        """The check as one table row (statement, equation, measured, bound, kind,
        lo, hi, verdict, slack, then the context; ``bound_lo`` just before ``bound`` for
        a ``within`` check)."""
        lower_end = {"bound_lo": self.bound_lo} if self.kind == "within" else {}
        return {"statement": self.statement, "equation": self.equation, "measured": self.measured,
                **lower_end, "bound": self.bound, "kind": self.kind, "lo": self.lo, "hi": self.hi,
                "verdict": self.verdict, "slack": self.slack, **self.context}
