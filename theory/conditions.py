"""The conditions of each convergence theorem, checked for one run.

``check_conditions(constants, hyper)`` lists every condition of the theorem
of ``hyper.algorithm`` (MAML THEORY.md §4, FO-MAML §5, HF-MAML §6, exact
gradients: §4 with infinite batches) with what it requires, what the run
gives and whether it holds.  A run outside its theorem is still a valid
experiment (``Hyper`` allows it); this module says which guarantee is void.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from mamlcheck.problems.base import Constants, check_positive
from mamlcheck.theory import bounds
from mamlcheck.theory._calling import constants_mapping
from mamlcheck.theory.multistep import MULTISTEP, STEP_C_N, multistep_alpha_max
from mamlcheck import literature as lit

__all__ = ["Condition", "THEOREMS", "check_conditions", "conditions_table", "format_conditions", "broken"]

THEOREMS = {
    "maml": "MAML theorem (THEORY.md §4)",
    "fomaml": "FO-MAML theorem (THEORY.md §5)",
    "hfmaml": "HF-MAML theorem (THEORY.md §6)",
    "exact": "MAML theorem with exact gradients (THEORY.md §4, infinite batches)",
    "multistep": "multi-step MAML theorem (THEORY.md §9; Ji, Yang & Liang 2022, constants derived in §9)",
    "multistep-exact": "multi-step MAML theorem with exact gradients (THEORY.md §9, infinite batches)",
    "none": "no theorem (THEORY.md §9 covers N-step MAML and exact gradients only)",
}
_SECTION = {"maml": "§4", "fomaml": "§5", "hfmaml": "§6", "exact": "§4"}
_REL = 1e-12   # slack on α thresholds, so that α = 1/(6L) typed by hand counts as on the boundary


@dataclass(frozen=True)
class Condition:
    """One condition of a theorem: its name, what it says, the required and
    given values, whether it holds, and the theorem it belongs to."""

    name: str
    statement: str
    required: str | float
    given: str | float
    holds: bool
    theorem: str


def _values(constants) -> dict[str, float]:
    """Plain floats from a ``Constants`` record, a family (its certified constants)
    or a mapping, validated."""
    v = constants_mapping(constants)
    missing = set(Constants.NAMES) - set(v)
    if missing:
        raise ValueError(f"constants lack {sorted(missing)}")
    return {n: check_positive(n, v[n], allow_zero=n != "L") for n in Constants.NAMES}


# What differs between the theorems' statements, as data (THEORY.md §4, §5, §6):
#: whether the range of α excludes 0 (MAML §4 and FO-MAML §5 state α ∈ (0, c/L])
_ALPHA_OPEN_AT_ZERO = {"maml": True, "fomaml": True, "hfmaml": False, "exact": False}
#: what the adaptive step divides by
_L_TILDE = ("L̃(w_k)", "L̃ the estimate of the step-size lemma")
_STEP_ESTIMATE = {"exact": ("L(w_k)", "L(w_k) exact or estimated"), "maml": _L_TILDE, "fomaml": _L_TILDE,
                  "hfmaml": _L_TILDE}
#: the noise level of the floor and whether D_h is used
_NOISE_LEVEL_TEXT = {"fomaml": ("S′", "; D_h is not used"), "hfmaml": ("S", ""), "maml": ("S", ""), "exact": ("S", "")}
#: the least number of tasks per step a theorem requires (MAML §4: B ≥ 20)
THEOREM_B_MIN = {"maml": lit.B_MIN}


def _alpha_conditions(alg: str, alpha: float, L: float, theorem: str) -> list[Condition]:
    """The theorem's range of ``α`` and the smoothness lemma's ``α ≤ 1/L``."""
    c = lit.ALPHA_MAX_LD.get(alg, lit.ALPHA_MAX_LD["maml"])
    alpha_max = c / L
    open_at_zero = _ALPHA_OPEN_AT_ZERO[alg]
    within = alpha <= alpha_max * (1 + _REL) and (alpha > 0 or not open_at_zero)
    limit = f"1/({1 / c:g}L)"
    statement = f"inner step α ∈ (0, {limit}]" if open_at_zero else f"inner step α ≤ {limit}"
    return [
        Condition("alpha_range", f"{statement} (THEORY.md {_SECTION[alg]})",
                  f"{'(0' if open_at_zero else '[0'}, {alpha_max:.6g}]", alpha, within, theorem),
        Condition("alpha_smoothness",
                  "α ≤ 1/L, for the smoothness lemma of F and L(w) (THEORY.md §3); "
                  "implied by the range of α",
                  f"≤ {1 / L:.6g}", alpha, alpha <= (1 / L) * (1 + _REL), theorem),
    ]


def _step_condition(alg: str, v: dict, hyper, theorem: str) -> list[Condition]:
    c = lit.STEP_C.get(alg, lit.STEP_C["maml"])
    given = f"constant β = {hyper.beta:g}" if hyper.step == "constant" else f"adaptive, c = {hyper.c:g}"
    symbol, note = _STEP_ESTIMATE[alg]
    rule = f"β_k = 1/({c:g}·{symbol}), {note}"
    return [Condition("step_rule", f"{rule} (THEORY.md §3); a constant β or another c is outside",
                      f"adaptive, c = {c:g}", given, hyper.step == "adaptive" and hyper.c == c, theorem)]


def _estimate_conditions(alg: str, v: dict, hyper, theorem: str) -> list[Condition]:
    """``B′`` and ``D_β`` of the step-size lemma (``None`` in ``Hyper``: the minimum)."""
    out = []
    for name, need, given, statement in (
        ("B_prime_min", bounds.B_prime_min(rho=v["rho"], alpha=hyper.alpha, sigma=v["sigma"], L=v["L"]), hyper.B_prime,
         f"tasks of the L̃ estimate B′ ≥ ⌈{lit.B_PRIME_FACTOR:g}(ρασ/L)²⌉ (THEORY.md §3)"),
        ("D_beta_min", bounds.D_beta_min(rho=v["rho"], alpha=hyper.alpha, sigma_tilde=v["sigma_tilde"], L=v["L"]), hyper.D_beta,
         f"samples per task of the L̃ estimate D_β ≥ ⌈{lit.D_BETA_FACTOR:g}(ρασ̃/L)²⌉ (THEORY.md §3)"),
    ):
        given = need if given is None else given
        out.append(Condition(name, statement, need, given, given >= need, theorem))
    return out


def _D_h_condition(alg: str, v: dict, hyper, theorem: str) -> list[Condition]:
    need = bounds.D_h_min(algorithm=alg, alpha=hyper.alpha, sigma_H=v["sigma_H"])
    statement = f"Hessian batch D_h ≥ ⌈{lit.D_H_FACTOR[alg]:g}(ασ_H)²⌉ (THEORY.md {_SECTION[alg]})"
    return [Condition("D_h_min", statement, need, hyper.D_h, hyper.D_h >= need, theorem)]


def _no_batch_condition(alg: str, v: dict, hyper, theorem: str) -> list[Condition]:
    """Informational row: THEORY.md states no batch-size condition for this theorem."""
    section = _SECTION[alg]
    S, unused = _NOISE_LEVEL_TEXT[alg]
    return [Condition("batch_sizes",
                     f"THEORY.md {section} states no condition on B, D_in, D_o (they enter only the "
                     f"noise level {S} of the floor) and none is imposed here{unused}",
                     "none stated", f"B = {hyper.B}, D_in = {hyper.D_in}, D_o = {hyper.D_o}", True, theorem)]


def check_conditions(constants, hyper) -> list[Condition]:
    """Every condition of the theorem of ``hyper.algorithm``.

    Args:
        constants: a ``problems.base.Constants`` record, or a mapping with
            ``L, rho, sigma, sigma_tilde, sigma_H``.
        hyper: an ``algorithms.hyper.Hyper``.

    Returns:
        The conditions, in the order the theorem states them.
    """
    if not hasattr(hyper, "algorithm"):
        raise TypeError(f"check_conditions(constants, hyper): hyper must be a Hyper, got {type(hyper).__name__}")
    v = _values(constants)
    key = _theorem_key(hyper)
    if key not in CONDITIONS:
        raise ValueError(f"no theorem for algorithm {hyper.algorithm!r}; known: {', '.join(CONDITIONS)}")
    return [c for part in CONDITIONS[key] for c in part(hyper.algorithm, v, hyper, THEOREMS[key])]


def _theorem_key(hyper) -> str:
    """Which theorem's conditions apply: the algorithm's for one inner step, the
    multi-step theorem's (§9) for ``N > 1`` with MAML or exact gradients, none
    for FO- and HF-MAML with ``N > 1``."""
    if getattr(hyper, "inner_steps", 1) == 1:
        return hyper.algorithm
    if getattr(hyper, "theorem", None) != MULTISTEP:
        return "none"
    return "multistep-exact" if hyper.algorithm == "exact" else "multistep"


# --- the multi-step theorem (THEORY.md §9): the paper's order, constants derived there ---
def _alpha_multistep(alg, v, hyper, theorem):
    N, alpha_max = hyper.inner_steps, multistep_alpha_max(L=v["L"], N=hyper.inner_steps)
    return [Condition("alpha_range",
                      f"inner step α ≤ 1/(6NL) with N = {N}: the order α ∝ 1/N of Ji, Yang & Liang, "
                      "the one-step theorem's 1/(6L) at N = 1 (THEORY.md §9)",
                      f"(0, {alpha_max:.6g}]", hyper.alpha, 0 < hyper.alpha <= alpha_max * (1 + _REL), theorem)]


def _step_multistep(alg, v, hyper, theorem):
    symbol = "L_N(w_k)" if alg == "exact" else "L̃_N(w_k)"
    given = f"constant β = {hyper.beta:g}" if hyper.step == "constant" else f"adaptive, c = {hyper.c:g}"
    return [Condition("step_rule",
                      f"β_k = 1/({STEP_C_N:g}·{symbol}), the N-step smoothness (D2) at w_k (THEORY.md §9); "
                      "a constant β or another c is outside",
                      f"adaptive, c = {STEP_C_N:g}", given, hyper.step == "adaptive" and hyper.c == STEP_C_N, theorem)]


def _D_h_multistep(alg, v, hyper, theorem):
    N = hyper.inner_steps
    need = max(1, math.ceil(lit.D_H_FACTOR["maml"] * N * (hyper.alpha * v["sigma_H"]) ** 2))
    return [Condition("D_h_min", f"Hessian batch D_h ≥ ⌈{lit.D_H_FACTOR['maml']:g}N(ασ_H)²⌉, so that the N factors "
                      "of (D6) stay bounded: κ_h^N ≤ (1+αL)^{2N}·e^{1/2} (THEORY.md §9)",
                      need, hyper.D_h, hyper.D_h >= need, theorem)]


def _no_theorem(alg, v, hyper, theorem):
    return [Condition("theorem", f"{alg} with N = {hyper.inner_steps} inner steps: no convergence theorem "
                      "(THEORY.md §9 covers N-step MAML and exact gradients)",
                      "maml or exact", alg, False, theorem)]


def _alpha(alg, v, hyper, theorem):
    return _alpha_conditions(alg, hyper.alpha, v["L"], theorem)


def _B_min(alg, v, hyper, theorem):
    return [Condition("B_min", f"tasks per step B ≥ {lit.B_MIN} (THEORY.md §4)",
                      lit.B_MIN, hyper.B, hyper.B >= lit.B_MIN, theorem)]


def _delta_rule(alg, v, hyper, theorem):
    rule = f"1/({lit.HF_DELTA_DEN:g}ρα‖v_i‖)"
    given = "the theorem's δ" if hyper.delta_cap is None else f"capped at {hyper.delta_cap:g}"
    return [Condition("delta_rule",
                      f"finite-difference step δ = {rule} (THEORY.md §6); a cap (delta_cap) replaces it "
                      "wherever it binds, which the theorem does not cover",
                      f"δ = {rule}", given, hyper.delta_cap is None, theorem)]


#: Each theorem's conditions, in the order it states them (THEORY.md §4, §5, §6).
CONDITIONS = {
    "maml": (_alpha, _B_min, _D_h_condition, _step_condition, _estimate_conditions),
    "fomaml": (_alpha, _step_condition, _estimate_conditions, _no_batch_condition),
    "hfmaml": (_alpha, _D_h_condition, _step_condition, _estimate_conditions, _no_batch_condition, _delta_rule),
    "exact": (_alpha, _step_condition),
    "multistep": (_alpha_multistep, _B_min, _D_h_multistep, _step_multistep, _estimate_conditions),
    "multistep-exact": (_alpha_multistep, _step_multistep),
    "none": (_no_theorem,),
}


def ball_condition(radius: float, seeds, max_distance, left_at, theorem: str = "ball certificate") -> Condition:
    """The run stayed in the certificate's ball (a family whose constants hold
    only on ``‖w − w_c‖ ≤ R``, ``certificate_ball``): every bound built from
    those constants is guaranteed only while every iterate is inside.

    Args:
        radius: ``R``.
        seeds: the seed ids.
        max_distance: per seed, ``max_k ‖w_k − w_c‖`` over the run.
        left_at: per seed, the first ``k`` with ``‖w_k − w_c‖ > R`` (``< 0``: never).

    Returns:
        A ``Condition`` named ``ball``; when it fails, ``given`` names the seeds
        that left and when (the first few).
    """
    left_at = np.asarray(left_at)
    out = [(int(s), int(k)) for s, k in zip(np.asarray(seeds), left_at) if k >= 0]
    far = float(np.max(max_distance)) if np.size(max_distance) else 0.0
    given = (f"max ‖w_k − w_c‖ = {far:.4g}" if not out else
             f"{len(out)} seed(s) left: " + ", ".join(f"seed {s} at k = {k}" for s, k in out[:5])
             + (", …" if len(out) > 5 else "") + f" (max ‖w_k − w_c‖ = {far:.4g}); bounds not guaranteed")
    return Condition("ball", "every iterate in the certificate's ball ‖w_k − w_c‖ ≤ R", f"R = {radius:.4g}",
                     given, not out, theorem)


def broken(conditions: Sequence[Condition]) -> list[str]:
    """Names of the conditions that fail."""
    return [c.name for c in conditions if not c.holds]


def conditions_table(conditions: Sequence[Condition]) -> pd.DataFrame:
    """One row per condition: name, statement, required, given, holds, theorem."""
    cols = list(Condition.__dataclass_fields__)
    return pd.DataFrame([asdict(c) for c in conditions], columns=cols)


def _cell(x) -> str:
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def format_conditions(conditions: Sequence[Condition]) -> str:
    """A plain-text table for the CLI, ending with a one-line verdict:
    ``all conditions of the <theorem> hold`` or ``outside the theorem: <names>``."""
    if not conditions:
        raise ValueError("no conditions to format")
    header = ("condition", "required", "given", "holds", "statement")
    rows = [tuple(_cell(getattr(c, f)) for f in ("name", "required", "given", "holds", "statement"))
            for c in conditions]
    widths = [max(len(r[j]) for r in (header, *rows)) for j in range(len(header) - 1)]
    lines = ["  ".join(r[j].ljust(w) for j, w in enumerate(widths)) + "  " + r[-1]
             for r in (header, *rows)]
    theorem = conditions[0].theorem
    bad = broken(conditions)
    verdict = (f"all conditions of the {theorem.split(' (')[0]} hold" if not bad
               else f"outside the theorem: {', '.join(bad)}")
    return "\n".join([theorem, *lines, verdict])
