"""One shape for every comparison of a measurement with a bound.

A ``Check`` holds what an inequality says (``statement``), where it comes from
(``equation``: an equation number of the seed explainer, or a lemma of
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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Check", "VERDICTS", "KINDS", "verdict", "slack"]

VERDICTS = ("holds", "violated", "inconclusive")
KINDS = ("upper", "lower")


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
        kind: ``upper`` or ``lower``.
        lo, hi: the ``1 − δ`` interval of the measured quantity (default: ``measured``).
        tol: absolute tolerance of the comparison (rounding), ``≥ 0``.
        context: anything else worth a column (configuration, iteration, seed).
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

    def __post_init__(self):
        _kind(self.kind)
        for name in ("lo", "hi"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, float(self.measured))
        if not (self.tol >= 0):
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        if self.lo > self.hi:
            raise ValueError(f"the interval must have lo <= hi, got [{self.lo}, {self.hi}]")

    @property
    def verdict(self) -> str:
        if any(math.isnan(float(x)) for x in (self.lo, self.hi, self.bound)):
            return "inconclusive"
        return verdict(self.lo, self.hi, self.bound, self.kind, self.tol)

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    @property
    def slack(self) -> float:
        """Room left at the conservative end of the interval (``≥ 1`` iff it holds, tol aside)."""
        end = self.hi if self.kind == "upper" else self.lo
        return slack(end, self.bound, self.kind)

    def row(self) -> dict[str, Any]:
        """The check as one table row (statement, equation, measured, bound, kind,
        lo, hi, verdict, slack, then the context)."""
        return {"statement": self.statement, "equation": self.equation, "measured": self.measured,
                "bound": self.bound, "kind": self.kind, "lo": self.lo, "hi": self.hi,
                "verdict": self.verdict, "slack": self.slack, **self.context}
