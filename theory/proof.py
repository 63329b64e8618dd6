"""The proof of (14) as data: each inequality's statement, once, and what it rests on.

Pure functions of constants and conditions (no trajectories): the proof
ledger (``experiments.ledger``) evaluates these statements on a run, the
walkthrough and the slack report print them.  Equation numbers are those of
the explainer, N. Ashtekar, *Model-Agnostic Meta-Learning: Theory Explained*
(of Fallah, Mokhtari & Ozdaglar's proof; THEORY.md §4).
"""
from __future__ import annotations

import numpy as np

from mamlcheck import literature as lit
from mamlcheck.problems.base import Constants, TaskFamily
from mamlcheck.theory.conditions import Condition

__all__ = ["STEPS", "NAMES", "STATEMENTS", "VIOLATED_MARK", "ROUND_TOL", "DEPENDS", "cause",
           "assumption_conditions", "floor_condition"]

STEPS = ("(7)", "(8)", "(9)", "(10)", "(11)", "(13)", "(14)")
VIOLATED_MARK = "VIOLATED UNDER THE THEOREM'S CONDITIONS"
# F is a float64 sum of O(d) terms each of magnitude at most about max(1, |F|), so
# its rounding error is below ~d·1e-16 of that; 1e-9 leaves a margin of 10^4 or
# more for any d used here, and stays far below real violations (the negative
# control's are ~1e-3 relative).  Applied to deterministic comparisons of F values.
ROUND_TOL = 1e-9

NAMES = {"(7)": "first moment", "(8)": "second moment", "(9)": "descent lemma",
          "(10)": "conditional descent", "(11)": "per-step decrease", "(13)": "telescoped decrease",
          "(14)": "rate"}
_DEN = f"{lit.DECREASE_DEN:g}(L + ρα(σ + ε))"
STATEMENTS = {
    "(7)": f"‖E[G_i(w_k)]‖² ≤ {lit.M1_GRAD:g}‖∇F(w_k)‖² + {lit.M1_NOISE:g}σ̃²/D_in",
    "(8)": (f"E‖G_i(w_k)‖² ≤ {lit.M2_GRAD:g}‖∇F(w_k)‖² + {lit.M2_SIGMA:g}σ² "
            f"+ σ̃²({lit.M2_DO:g}/D_o + 1/({1 / lit.M2_DIN:g}D_in))"),
    "(9)": "F(w_{k+1}) ≤ F(w_k) − β_k∇F(w_k)ᵀg_k + (L(w_k)/2)β_k²‖g_k‖²",
    "(10)": ("E[F(w_{k+1})|F_k] ≤ F(w_k) − E[β_k]∇F(w_k)ᵀE[G_i] "
             "+ (L(w_k)/2)E[β_k²](‖E[G_i]‖² + E‖G_i‖²/B)"),
    "(11)": f"E F(w_{{k+1}}) ≤ E F(w_k) − ε²/({_DEN}) while E‖∇F(w_k)‖ > max{{ε, noise floor}}",
    "(13)": f"E F(w_T) ≤ F(w_0) − Tε²/({_DEN}) while E‖∇F(w_k)‖ > max{{ε, noise floor}} for all k < T",
    "(14)": f"first k with E‖∇F(w_k)‖ ≤ ε  ≤  {lit.DECREASE_DEN:g}Δ(L + ρα(σ + ε))/ε²",
}

# The assumptions and theorem conditions each step rests on (THEORY.md §2–§4);
# (11), (13), (14) rest on the whole theorem ((11), (13) are evaluated above the floor).
_ALPHA = {"alpha_range", "alpha_smoothness"}
_ASSUMED = {"L": ("A2", "A2_L"), "rho": ("A3", "A3_rho"), "sigma": ("A4", "A4_sigma"),
            "sigma_tilde": ("A5", "A5_sigma_tilde"), "sigma_H": ("A5", "A5_sigma_H")}
DEPENDS = {
    "(7)": {"A2_L", "A5_sigma_tilde"} | _ALPHA,
    "(8)": {"A2_L", "A4_sigma", "A5_sigma_tilde", "A5_sigma_H", "D_h_min"} | _ALPHA,
    "(9)": {"A2_L", "A3_rho", "alpha_smoothness"},
    "(10)": {"A2_L", "A3_rho", "alpha_smoothness"},
}


def assumption_conditions(family: TaskFamily, used: Constants, Delta: float) -> list[Condition]:
    """A1–A5 for the constants the run uses, against the family's certified ones.

    A constant at or above the certified value keeps the assumption (a larger
    Lipschitz or variance bound is still a bound).  Below an *exact* certified
    value the assumption fails (the supremum is attained); below a certified
    upper bound it is not certified, and the ledger treats it as broken.
    """
    theorem = "assumptions A1–A5 (THEORY.md §2)"
    cert = family.constants()
    out = [Condition("A1_Delta",
                     "A1: Δ = F(w_0) − inf F ≤ F(w_0) − inf_f_lower(), a certified lower bound on inf F",
                     "Δ < ∞", f"Δ ≤ {Delta:.6g}", bool(np.isfinite(Delta)), theorem)]
    for n, (a, name) in _ASSUMED.items():
        c, given = getattr(cert, n), float(getattr(used, n).value)
        ok = given >= c.value * (1 - 1e-12)
        kind = "exact supremum" if c.exact else "certified upper bound"
        verdict = "" if ok else ("; understated: the assumption fails" if c.exact else "; below it: not certified")
        out.append(Condition(name, f"{a}: {n} used ≥ the family's {kind}{verdict}",
                             f"≥ {c.value:.6g}", given, ok, theorem))
    return out


def floor_condition(eps: float, floor: float) -> Condition:
    return Condition("eps_above_floor",
                     "target ε ≥ noise floor max{√(a(1+ρασ/L)S), b(ρα/L)S} (THEORY.md §4): "
                     "below it the theorem guarantees only the floor",
                     f"≥ {floor:.6g}", eps, eps >= floor, "MAML theorem (THEORY.md §4)")


def cause(step: str, verdict: str, broken_names: list[str]) -> str:
    """Why a row does not hold: the broken conditions it rests on, or the mark."""
    if verdict == "holds":
        return ""
    deps = DEPENDS.get(step)
    own = [b for b in broken_names if deps is None or b in deps]
    other = [b for b in broken_names if b not in own]
    if verdict == "inconclusive":
        base = ("inconclusive: ε not reached within a budget below the bound" if step == "(14)"
                else "inconclusive: the 1−δ interval straddles the bound")
        return base + (f"; outside the theorem: {', '.join(broken_names)}" if broken_names else "")
    if own:
        return f"outside the theorem: {', '.join(own)} broken" + (f" (also {', '.join(other)})" if other else "")
    if other:
        return f"VIOLATED UNDER THIS STEP'S CONDITIONS (the run breaks only {', '.join(other)})"
    return VIOLATED_MARK


