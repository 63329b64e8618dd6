"""The checks of the slack report: each lemma and moment bound of THEORY.md §3–§6 on one draw,
and the derived multi-step bounds (D2), (D4)–(D6) of docs/THEORY.md §9.

Each check is a ``theory.checks.Check``: the measured left side beside the
bound from ``theory.bounds``, with the bound split into its terms (``parts``)
so that the slack of each constant can be read off (``Check.term_slack``).
The statements of (7) and (8) are those of the proof (``theory.proof.
STATEMENTS``); the lemmas' are in ``LEMMAS``.  Left sides are exact
(``slack_moments``) except the step-size lemma's, the one Monte Carlo check
(``L̃`` of ``algorithms.steps.estimate_L_tilde``), whose interval
``[lo, hi]`` is an empirical-Bernstein half-width on each side at false-alarm
rate ``MC_DELTA``.  ``tol`` is the rounding allowance; ``context`` carries
the report's ``property`` label, the ``task`` (per-task checks), the whole
``allowance`` (rounding plus half-width) and a ``note``.

The multi-step checks take ``N = MULTISTEP_N`` inner steps at the draw's ``α``
(the bounds hold for any ``α``).  (D2) is exact and is a row of the report.
(D4)–(D6) (``check_multistep_moments``) are Monte Carlo means of the N-step
estimator (``slack_moments.multistep_draws``), whose draws are polynomials of
degree ``N + 1`` in the noise (heavy-tailed): their interval is a median of
means (``median_of_means``), which needs only a finite variance.  They are not
rows of the report (``all_checks``): at the report's few thousand draws per
task the bias (D5) is far below the noise (‖estimate − exact‖ then measures the
noise, not the bias), and (D4), which is tight at small ``αL``, would show
point estimates above the bound that the interval does not confirm; the
report's ratio is read at the point estimate.  ``tests/test_multistep_bounds.py``
runs them on drawn cases.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy.special import gammaln

from mamlcheck import literature as lit
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F, grad_F, local_L, mean_task_grad_norm
from mamlcheck.algorithms.steps import estimate_L_tilde
from mamlcheck.problems.base import TaskFamily
from mamlcheck.problems.robust_regression import MAX_MULTISETS, multisets
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check
from mamlcheck.theory.proof import STATEMENTS

from .slack_draws import Case
from .slack_moments import ROUND, Moments, grad_rounding_scale, grad_tol, moments, multistep_draws

__all__ = ["Check", "LEMMAS", "PHIS", "MC_DELTA", "MC_SAMPLES", "passes", "fmt_const", "check_first_moment",
           "check_second_moment", "check_bias", "check_maml_bias", "check_second_moment_lemma",
           "check_smoothness", "check_step_size", "check_fomaml_bias", "check_hf_difference", "all_checks",
           "MULTISTEP_N", "median_of_means", "check_multistep_smoothness", "check_multistep_moments"]

PHIS = (0.5, 1.0, 2.0)            # φ of the second-moment lemma (THEORY.md §3)
MC_DELTA = 1e-6                   # false-alarm rate of each Monte Carlo check (one-sided)
MC_SAMPLES = 20_000               # L̃ draws per step-size check
MULTISTEP_N = 3                   # inner steps of the multi-step rows
MOM_SIGMA_MARGIN = 1.2            # on the plug-in σ of ``median_of_means``

_SL, _SR = f"{lit.SMOOTH_L_FACTOR:g}", f"{lit.SMOOTH_RHO_FACTOR:g}"
LEMMAS = {     # the inequalities of THEORY.md §3–§6 that the proof's STATEMENTS do not hold
    "bias lemma": "‖E[∇̃f_i(w − α∇̃f_i(w, D_in), D_o)] − ∇f_i(w − α∇f_i(w))‖ ≤ αLσ̃/√D_in",
    "MAML bias": "‖E[G_i(w)] − ∇F(w)‖ ≤ (1 + αL)αLσ̃/√D_in",
    "second-moment lemma": ("E‖∇̃f_i(w − α∇̃f_i(w, D_in), D_o)‖² ≤ (1 + 1/φ)‖∇f_i(w − α∇f_i(w))‖² "
                            "+ (1 + φ)α²L²σ̃²/D_in + σ̃²/D_o"),
    "smoothness lemma": (f"‖∇F(w) − ∇F(u)‖ ≤ ({_SL}L + {_SR}ρα min{{E_i‖∇f_i(w)‖, E_i‖∇f_i(u)‖}})"
                         "‖w − u‖  (α ≤ 1/L)"),
    "smoothness lemma (Taylor form)": (f"|F(u) − F(w) − ∇F(w)ᵀ(u − w)| ≤ (L(w)/2)‖u − w‖², "
                                       f"L(w) = {_SL}L + {_SR}ρα E_i‖∇f_i(w)‖"),
    "step size E[1/L̃]": f"E[1/L̃] ≥ {lit.INV_LT_MEAN_LOWER:g}/L(w)",
    "step size E[1/L̃²]": f"E[1/L̃²] ≤ {lit.INV_LT_SQ_UPPER:g}/L(w)²",
    "FO-MAML bias": "‖E[G^FO(w)] − ∇F(w)‖ ≤ αL E_i‖∇f_i(w − α∇f_i(w))‖ + αLσ̃/√D_in",
    "HF-MAML difference": ("‖[∇f_i(w + δv) − ∇f_i(w − δv)]/(2δ) − ∇²f_i(w)v‖ ≤ ρδ‖v‖²/2, "
                           "v = ∇f_i(w − α∇f_i(w)), δ = min{1/(6ρα‖v‖), cap}"),
    # docs/THEORY.md §9, derived (not the paper's); q = 1 + αL, N inner steps
    "(D2) N-step smoothness": ("‖∇F_N(w) − ∇F_N(u)‖ ≤ (q^{2N}L + (ρ/L)q^{2N−1}(q^N − 1)"
                               "·min{E_i‖∇f_i(w)‖, E_i‖∇f_i(u)‖})‖w − u‖"),
    "(D4) N-step inner drift": "E‖ũ_i^N − u_i^N‖² ≤ V_N = (α²σ̃²/D_in)(q^{2N} − 1)/(q² − 1)",
    "(D5) N-step bias": ("‖E[G_i^N(w)] − ∇F_{N,i}(w)‖ ≤ q^N L√V_N "
                         "+ αρq^{N−1}‖∇f_i(u_i^N)‖Σ_{j=1}^{N−1}√V_j"),
    "(D6) N-step second moment": ("E‖G_i^N(w)‖² ≤ κ_h^N[(1 + 1/φ)‖∇f_i(u_i^N)‖² + (1 + φ)L²V_N + σ̃²/D_o], "
                                  "κ_h = q² + α²σ_H²/D_h, at the φ minimising it"),
}


def fmt_const(x: float) -> str:
    """A stated constant as printed: ``1/6``, ``1/12``, ``1/2`` or ``%g``."""
    for num, den in ((1, 6), (1, 12), (1, 2)):
        if abs(x - num / den) < 1e-12:
            return f"{num}/{den}"
    return f"{x:g}"


def _check(prop: str, statement: str, ref: str, kind: str, measured: float, bound: float, parts: tuple,
           tol: float, *, halfwidth: float = 0.0, task: int | None = None, note: str = "") -> Check:
    """A ``Check`` of the report's property ``prop``: ``measured ± halfwidth``
    (the ``1 − MC_DELTA`` ends; 0 for an exact value) against ``bound``, up to
    the rounding allowance ``tol``."""
    return Check(statement, ref, measured, bound, kind, lo=measured - halfwidth, hi=measured + halfwidth,
                 tol=tol, parts=parts,
                 context={"property": prop, "task": task, "allowance": halfwidth + tol, "note": note})


def passes(check: Check) -> bool:
    """Not refuted: an exact check holds; a Monte Carlo one is not violated
    (its ``1 − MC_DELTA`` interval may straddle the bound).  A NaN fails."""
    if check.exact or any(math.isnan(float(x)) for x in (check.lo, check.hi, check.bound)):
        return check.holds
    return check.verdict != "violated"


def _atol(scale: float) -> float:
    return ROUND * float(scale)


def _sq_atol(norm: float, tol: float) -> float:
    """Rounding allowance of a squared norm whose vector is off by ``tol``."""
    return 2.0 * float(norm) * tol + tol ** 2


def check_first_moment(m: Moments) -> list[Check]:
    """(7) (THEORY.md §4), terms ``2‖∇F‖²`` and ``0.08σ̃²/D_in``."""
    gF = float(np.linalg.norm(m.grad_F))
    s, D_in = m.c["sigma_tilde"], m.hyper.D_in
    parts = (("(7): 2‖∇F‖²", lit.M1_GRAD, bounds.first_moment_bound(grad_F_norm=gF, sigma_tilde=0.0, D_in=D_in)),
             ("(7): 0.08σ̃²/D_in", lit.M1_NOISE, bounds.first_moment_bound(grad_F_norm=0.0, sigma_tilde=s, D_in=D_in)))
    scale = float(m.family.p @ np.linalg.norm(m.EGi, axis=-1)) ** 2 + gF ** 2
    atol = _atol(scale) + _sq_atol(np.linalg.norm(m.EG) + gF, m.tol)
    return [_check("(7)", STATEMENTS["(7)"], "explainer (7), THEORY.md §4", "upper", float(m.EG @ m.EG),
                   bounds.first_moment_bound(grad_F_norm=gF, sigma_tilde=s, D_in=D_in), parts, atol)]


def check_second_moment(m: Moments) -> list[Check]:
    """(8) (THEORY.md §4), terms ``40‖∇F‖²``, ``14σ²``, ``2σ̃²/D_o``, ``σ̃²/(6D_in)``."""
    gF = float(np.linalg.norm(m.grad_F))
    sig, s, D_in, D_o = m.c["sigma"], m.c["sigma_tilde"], m.hyper.D_in, m.hyper.D_o
    parts = (("(8): 40‖∇F‖²", lit.M2_GRAD, lit.M2_GRAD * gF ** 2),
             ("(8): 14σ²", lit.M2_SIGMA, lit.M2_SIGMA * sig ** 2),
             ("(8): 2σ̃²/D_o", lit.M2_DO, lit.M2_DO * s ** 2 / D_o),
             ("(8): σ̃²/(6D_in)", lit.M2_DIN, lit.M2_DIN * s ** 2 / D_in))
    return [_check("(8)", STATEMENTS["(8)"], "explainer (8), THEORY.md §4", "upper", m.EG2,
                   bounds.second_moment_bound(grad_F_norm=gF, sigma=sig, sigma_tilde=s, D_in=D_in, D_o=D_o), parts,
                   _atol(m.EG2) + _sq_atol(math.sqrt(max(m.EG2, 0.0)), m.tol) + m.tol2)]


def check_bias(m: Moments) -> list[Check]:
    """Bias lemma (THEORY.md §3; A2 and A5 only), per task."""
    b = bounds.inner_bias(alpha=m.hyper.alpha, L=m.c["L"], sigma_tilde=m.c["sigma_tilde"], D_in=m.hyper.D_in)
    out = []
    for i in range(m.family.M):
        lhs = float(np.linalg.norm(m.Ev[i] - m.grad_u[i]))
        scale = np.linalg.norm(m.Ev[i]) + np.linalg.norm(m.grad_u[i])
        out.append(_check("bias lemma", LEMMAS["bias lemma"], "THEORY.md §3, bias of the inner stochastic step",
                          "upper", lhs, b, (("bias lemma: αLσ̃/√D_in", 1.0, b),), _atol(scale) + m.tol, task=i))
    return out


def check_maml_bias(m: Moments) -> list[Check]:
    """The bias of ``G_i`` behind (7)'s 0.08 (THEORY.md §4)."""
    b = bounds.maml_bias(alpha=m.hyper.alpha, L=m.c["L"], sigma_tilde=m.c["sigma_tilde"], D_in=m.hyper.D_in)
    scale = float(m.family.p @ np.linalg.norm(m.EGi, axis=-1)) + np.linalg.norm(m.grad_F)
    return [_check("MAML bias", LEMMAS["MAML bias"], "THEORY.md §4, derivation of (7)", "upper",
                   float(np.linalg.norm(m.EG - m.grad_F)), b,
                   (("MAML bias: (1+αL)αLσ̃/√D_in", 1.0, b),), _atol(scale) + 2 * m.tol)]


def check_second_moment_lemma(m: Moments, phi: float) -> list[Check]:
    """Second-moment lemma for one ``φ`` (THEORY.md §3), per task."""
    h, c = m.hyper, m.c
    label = f"second-moment lemma, φ = {fmt_const(phi)}"
    out = []
    for i in range(m.family.M):
        lhs = float(np.trace(m.Evv[i]))
        b = bounds.second_moment_inner(grad_norm_at_inner_point=float(np.linalg.norm(m.grad_u[i])), alpha=h.alpha,
                                       L=c["L"], sigma_tilde=c["sigma_tilde"], D_in=h.D_in, D_o=h.D_o, phi=phi)
        out.append(_check(label, f"{LEMMAS['second-moment lemma']}, φ = {fmt_const(phi)}",
                          "THEORY.md §3, second-moment lemma", "upper", lhs, b, ((label, 1.0, b),),
                          _atol(lhs) + _sq_atol(math.sqrt(max(lhs, 0.0)), m.tol) + m.tol2, task=i))
    return out


def check_smoothness(family: TaskFamily, w, u, alpha: float) -> list[Check]:
    """Smoothness lemma of ``F`` (THEORY.md §3, needs ``α ≤ 1/L``) in both
    forms, Lipschitz and Taylor, each split into its ``4L`` and ``2ρα`` terms."""
    w, u = np.asarray(w, dtype=float), np.asarray(u, dtype=float)
    c = family.constants().values()
    L, rho = c["L"], c["rho"]
    gw, gu = grad_F(family, w, alpha), grad_F(family, u, alpha)
    mw, mu = float(mean_task_grad_norm(family, w)), float(mean_task_grad_norm(family, u))
    dist = float(np.linalg.norm(u - w))
    m = min(mw, mu)
    lip = bounds.smooth_local_L(L=L, rho=rho, alpha=alpha, mean_grad_norm=m) * dist
    parts = (("smoothness: 4L", lit.SMOOTH_L_FACTOR, lit.SMOOTH_L_FACTOR * L * dist),
             ("smoothness: 2ρα·min E‖∇f_i‖", lit.SMOOTH_RHO_FACTOR, lit.SMOOTH_RHO_FACTOR * rho * alpha * m * dist))
    first = _check("smoothness lemma", LEMMAS["smoothness lemma"],
                   "THEORY.md §3, smoothness lemma of F (Lipschitz form)", "upper",
                   float(np.linalg.norm(gw - gu)), lip, parts,
                   _atol(np.linalg.norm(gw) + np.linalg.norm(gu)) + grad_tol(family, w, alpha)
                   + grad_tol(family, u, alpha))
    Fw, Fu = float(F(family, w, alpha)), float(F(family, u, alpha))
    lin = float(gw @ (u - w))
    Lw = float(local_L(family, w, alpha, L, rho))
    quad = 0.5 * Lw * dist ** 2
    parts = (("Taylor form: 4L", lit.SMOOTH_L_FACTOR, 0.5 * lit.SMOOTH_L_FACTOR * L * dist ** 2),
             ("Taylor form: 2ρα·E‖∇f_i(w)‖", lit.SMOOTH_RHO_FACTOR,
              0.5 * lit.SMOOTH_RHO_FACTOR * rho * alpha * mw * dist ** 2))
    second = _check("smoothness lemma (Taylor form)", LEMMAS["smoothness lemma (Taylor form)"],
                    "THEORY.md §3, smoothness lemma of F (quadratic form)", "upper", abs(Fu - Fw - lin), quad, parts,
                    _atol(abs(Fw) + abs(Fu) + abs(lin)) + grad_tol(family, w, alpha) * dist)
    return [first, second]


def _bernstein(x: np.ndarray, R: float, delta: float) -> float:
    """One-sided empirical-Bernstein half-width (Maurer & Pontil 2009, Thm 4)
    for i.i.d. ``x`` in an interval of length ``R``: the mean lies within it
    of the sample mean, on the side tested, with probability ``≥ 1 − delta``."""
    n = x.size
    lg = math.log(2.0 / delta)
    return math.sqrt(2.0 * float(np.var(x, ddof=1)) * lg / n) + 7.0 * R * lg / (3.0 * (n - 1))


def _L_tilde_exact(family: TaskFamily, w, hyper: Hyper, L: float, rho: float):
    """The law of ``L̃`` when the oracles are exact (``σ̃ = 0``): the only
    randomness is the multiset of ``B′`` tasks, enumerated with its
    multinomial probability.  ``None`` if there are too many."""
    if math.comb(family.M + hyper.B_prime - 1, hyper.B_prime) > MAX_MULTISETS:
        return None
    counts, _ = multisets(family.M, hyper.B_prime)
    logp = gammaln(hyper.B_prime + 1) - gammaln(counts + 1).sum(1) + counts @ np.log(family.p)
    norms = np.linalg.norm(family.grad(w[None, :], np.arange(family.M)), axis=-1)
    Lt = (lit.SMOOTH_L_FACTOR * L
          + lit.SMOOTH_RHO_FACTOR * rho * hyper.alpha * (counts @ norms) / hyper.B_prime)
    return Lt, np.exp(logp)


def check_step_size(family: TaskFamily, w, hyper: Hyper, n: int = MC_SAMPLES, seed: int = 0) -> list[Check]:
    """Step-size lemma (THEORY.md §3) with ``B′``, ``D_β`` at the theorem's
    minimum (``Hyper.resolved``): both moments of ``1/L̃`` (``LEMMAS``).

    With noisy oracles: ``n`` independent draws of
    ``algorithms.steps.estimate_L_tilde``; ``1/L̃ ∈ (0, 1/(4L)]``, so the
    empirical-Bernstein half-width is rigorous and each check false-alarms
    with probability at most ``MC_DELTA``.  With exact oracles (``σ̃ = 0``)
    the expectation over the ``B′`` tasks is an exact sum."""
    c = family.constants()
    v = c.values()
    h = replace(hyper, B_prime=None, D_beta=None).resolved(c)
    w = np.asarray(w, dtype=float)
    Lw = float(local_L(family, w, h.alpha, v["L"], v["rho"]))
    R = 1.0 / (lit.SMOOTH_L_FACTOR * v["L"])
    law = _L_tilde_exact(family, w, h, v["L"], v["rho"]) if v["sigma_tilde"] == 0 else None
    if law is not None:
        Lt, prob = law
        m1, m2, hw1, hw2 = float(prob @ (1 / Lt)), float(prob @ (1 / Lt ** 2)), 0.0, 0.0
        note = f"B′ = {h.B_prime}, exact sum over task batches"
    else:
        Lt = estimate_L_tilde(family, np.broadcast_to(w, (n, family.d)), h, v["L"], v["rho"],
                              np.random.default_rng(seed))
        inv, inv2 = 1.0 / Lt, 1.0 / Lt ** 2
        m1, m2 = float(inv.mean()), float(inv2.mean())
        exact = bool(np.all(Lt == Lt[0]))          # ρα = 0: L̃ = 4L, a constant
        hw1 = 0.0 if exact else _bernstein(inv, R, MC_DELTA)
        hw2 = 0.0 if exact else _bernstein(inv2, R ** 2, MC_DELTA)
        note = f"B′ = {h.B_prime}, D_β = {h.D_beta}, {n} draws"
    lo, hi = bounds.step_inv_mean_lower(L_w=Lw), bounds.step_inv_sq_upper(L_w=Lw)
    ref = "THEORY.md §3, step-size lemma"
    return [_check("step size E[1/L̃]", LEMMAS["step size E[1/L̃]"], ref, "lower", m1, lo,
                   (("step size: 0.8/L(w)", lit.INV_LT_MEAN_LOWER, lo),), _atol(R), halfwidth=hw1, note=note),
            _check("step size E[1/L̃²]", LEMMAS["step size E[1/L̃²]"], ref, "upper", m2, hi,
                   (("step size: 3.125/L(w)²", lit.INV_LT_SQ_UPPER, hi),), _atol(R ** 2), halfwidth=hw2, note=note)]


def check_fomaml_bias(m: Moments) -> list[Check]:
    """FO-MAML's dropped Hessian term (``theory.bounds.fomaml_dropped_term``,
    THEORY.md §5; needs A2 only)."""
    h = m.hyper
    g = float(m.family.p @ np.linalg.norm(m.grad_u, axis=-1))
    b = bounds.fomaml_dropped_term(alpha=h.alpha, L=m.c["L"], sigma_tilde=m.c["sigma_tilde"], D_in=h.D_in,
                                   mean_inner_grad_norm=g)
    scale = float(m.family.p @ np.linalg.norm(m.Ev, axis=-1)) + np.linalg.norm(m.grad_F)
    return [_check("FO-MAML bias", LEMMAS["FO-MAML bias"], "THEORY.md §5, dropped Hessian term", "upper",
                   float(np.linalg.norm(m.EG_fo - m.grad_F)), b,
                   (("FO-MAML bias: αL·E‖∇f_i(u_i)‖ + αLσ̃/√D_in", 1.0, b),), _atol(scale) + 2 * m.tol)]


def check_hf_difference(family: TaskFamily, w, hyper: Hyper) -> list[Check]:
    """HF-MAML, per task: the expected (exact) central difference against
    ``∇²f_i(w)v`` (THEORY.md §6, ``theory.bounds.hf_delta``, ``hf_fd_error``)."""
    w = np.asarray(w, dtype=float)
    c = family.constants().values()
    out = []
    for i in range(family.M):
        v = family.grad(w - hyper.alpha * family.grad(w, i), i)
        vn = float(np.linalg.norm(v))
        if vn == 0.0:
            continue
        delta = float(bounds.hf_delta(rho=c["rho"], alpha=hyper.alpha, v_norm=vn, cap=hyper.delta_cap))
        gp, gm = family.grad(w + delta * v, i), family.grad(w - delta * v, i)
        Hv = family.hvp(w, np.asarray(i), v)
        lhs = float(np.linalg.norm((gp - gm) / (2 * delta) - Hv))
        b = bounds.hf_fd_error(rho=c["rho"], delta=delta, v_norm=vn)
        scale = (grad_rounding_scale(family, w + delta * v, i) + grad_rounding_scale(family, w - delta * v, i)
                 ) / delta + np.linalg.norm(Hv)
        out.append(_check("HF-MAML difference", LEMMAS["HF-MAML difference"],
                          "THEORY.md §6, central-difference error", "upper", lhs, b,
                          (("HF-MAML difference error ρδ‖v‖²/2", 1.0, b),), _atol(scale), task=i))
    return out


# --- the multi-step bounds (docs/THEORY.md §9 (D2), (D4)–(D6)) -----------------------
def median_of_means(x: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(estimate, radius)`` of the mean of the draws ``x`` (``(n,)`` or ``(n, d)``), per
    coordinate: the median of ``k = ⌈8 ln(d/δ)⌉`` block means, and ``r = 2σ√(k/n)``.
    A block mean is more than ``r`` from the mean with probability ``≤ 1/4``
    (Chebyshev), and the median only if half the blocks are: ``≤ exp(−k/8)``
    (Hoeffding), so ``‖estimate − mean‖ ≤ ‖r‖`` with probability ``≥ 1 − δ`` given a
    finite variance.  ``σ``: the plug-in standard deviation times ``MOM_SIGMA_MARGIN``."""
    x = np.asarray(x, dtype=float)
    flat = x.reshape(x.shape[0], -1)
    k = math.ceil(8 * math.log(flat.shape[1] / delta))
    m = flat.shape[0] // k
    if m < 2:
        raise ValueError(f"median_of_means needs at least {2 * k} draws for δ = {delta:g}, got {flat.shape[0]}")
    est = np.median(flat[: k * m].reshape(k, m, -1).mean(1), axis=0)
    r = 2 * MOM_SIGMA_MARGIN * flat.std(0, ddof=1) / math.sqrt(m)
    return est.reshape(x.shape[1:]), r.reshape(x.shape[1:])


def check_multistep_smoothness(family: TaskFamily, w, u, alpha: float, N: int = MULTISTEP_N) -> list[Check]:
    """(D2), exact, split into its ``q^{2N}L`` and ``ρ`` terms."""
    w, u = np.asarray(w, dtype=float), np.asarray(u, dtype=float)
    c = family.constants().values()
    L, rho, q = c["L"], c["rho"], 1 + alpha * c["L"]
    gw, gu = grad_F(family, w, alpha, inner_steps=N), grad_F(family, u, alpha, inner_steps=N)
    m = min(float(mean_task_grad_norm(family, w)), float(mean_task_grad_norm(family, u)))
    dist = float(np.linalg.norm(u - w))
    lip = bounds.multistep_smooth_L(L=L, rho=rho, alpha=alpha, N=N, mean_grad_norm=m) * dist
    growth = q ** (2 * N) * L * dist
    parts = (("(D2): q^{2N}L", 1.0, growth), ("(D2): (ρ/L)q^{2N−1}(q^N − 1)·min E‖∇f_i‖", 1.0, lip - growth))
    tol = (N + 1) * q ** (2 * N) * (_atol(np.linalg.norm(gw) + np.linalg.norm(gu))
                                     + grad_tol(family, w, alpha) + grad_tol(family, u, alpha))
    return [_check("(D2) N-step smoothness", LEMMAS["(D2) N-step smoothness"], "THEORY.md §9 (D2)", "upper",
                   float(np.linalg.norm(gw - gu)), lip, parts, tol, note=f"N = {N}")]


def check_multistep_moments(family: TaskFamily, w, hyper: Hyper, n: int, seed, N: int = MULTISTEP_N,
                            delta: float = MC_DELTA) -> list[Check]:
    """(D4), (D5), (D6) per task, from ``n`` draws of the N-step estimator
    (``median_of_means`` at false-alarm rate ``delta`` per check; exact when the
    family's oracles are)."""
    c = family.constants().values()
    h, L, s = hyper, c["L"], c["sigma_tilde"]
    a, q = h.alpha, 1 + h.alpha * c["L"]
    dr = multistep_draws(family, w, h, N, n, seed)
    V = [float(bounds.inner_drift(alpha=a, L=L, sigma_tilde=s, D_in=h.D_in, N=j)) for j in range(1, N + 1)]
    kappa = float(bounds.hessian_factor_sq(alpha=a, L=L, sigma_H=c["sigma_H"], D_h=h.D_h)) ** N

    def mean(x):
        if dr.exact_oracles:
            return x[0], np.zeros_like(x[0])
        return median_of_means(x, delta)

    note = f"N = {N}, " + ("exact oracles: one draw" if dr.exact_oracles
                           else f"{dr.drift.shape[1]} draws, median of means")
    out = []
    for i in range(family.M):
        g = float(np.linalg.norm(family.grad(dr.uN[i], i)))
        scale = grad_rounding_scale(family, dr.uN[i], i)
        est, r = mean(dr.drift[i])
        out.append(_check("(D4) N-step inner drift", LEMMAS["(D4) N-step inner drift"], "THEORY.md §9 (D4)",
                          "upper", float(est), V[-1], (("(D4): V_N", 1.0, V[-1]),),
                          _atol(float(est) + float(dr.uN[i] @ dr.uN[i])), halfwidth=float(r), task=i, note=note))
        est, r = mean(dr.G[i])
        t1 = q ** N * L * math.sqrt(V[-1])
        t2 = a * c["rho"] * q ** (N - 1) * g * sum(math.sqrt(v) for v in V[:-1])
        b = bounds.multistep_bias(alpha=a, L=L, rho=c["rho"], sigma_tilde=s, D_in=h.D_in, N=N,
                                  grad_norm_at_inner_point=g)
        gtol = (N + 1) * q ** N * _atol(scale + np.linalg.norm(est) + np.linalg.norm(dr.exact[i]))
        out.append(_check("(D5) N-step bias", LEMMAS["(D5) N-step bias"], "THEORY.md §9 (D5)", "upper",
                          float(np.linalg.norm(est - dr.exact[i])), b,
                          (("(D5): q^N L√V_N", 1.0, t1), ("(D5): αρq^{N−1}‖∇f_i(u^N)‖Σ√V_j", 1.0, t2)),
                          gtol, halfwidth=float(np.linalg.norm(r)), task=i, note=note))
        est, r = mean(np.sum(dr.G[i] ** 2, -1))
        phi = g / (L * math.sqrt(V[-1])) if g > 0 and V[-1] > 0 else (1e12 if g > 0 else 1e-12)
        terms = (kappa * (1 + 1 / phi) * g ** 2, kappa * (1 + phi) * L ** 2 * V[-1], kappa * s ** 2 / h.D_o)
        b = bounds.multistep_second_moment(g, alpha=a, L=L, sigma_tilde=s, sigma_H=c["sigma_H"], D_in=h.D_in,
                                           D_o=h.D_o, D_h=h.D_h, N=N, phi=phi)
        out.append(_check("(D6) N-step second moment", LEMMAS["(D6) N-step second moment"],
                          "THEORY.md §9 (D6)", "upper", float(est), b,
                          tuple(zip(("(D6): κ_h^N(1 + 1/φ)‖∇f_i(u^N)‖²", "(D6): κ_h^N(1 + φ)L²V_N",
                                     "(D6): κ_h^N σ̃²/D_o"), (1.0,) * 3, terms)),
                          _atol(float(est)) + _sq_atol(math.sqrt(max(float(est), 0.0)), gtol),
                          halfwidth=float(r), task=i, note=note))
    return out


def all_checks(case: Case, mc_seed: int = 0, mc_samples: int = MC_SAMPLES) -> list[Check]:
    """The report's checks on one case (the smoothness lemmas need ``case.u``): every
    check of this module but ``check_multistep_moments`` (see the module docstring)."""
    m = moments(case.family, case.w, case.hyper)
    out = (check_first_moment(m) + check_second_moment(m) + check_bias(m) + check_maml_bias(m)
           + [c for phi in PHIS for c in check_second_moment_lemma(m, phi)]
           + check_fomaml_bias(m) + check_hf_difference(case.family, case.w, case.hyper)
           + check_step_size(case.family, case.w, case.hyper, mc_samples, mc_seed))
    if case.u is not None:
        out += check_smoothness(case.family, case.w, case.u, case.hyper.alpha)
        out += check_multistep_smoothness(case.family, case.w, case.u, case.hyper.alpha)
    return out
