"""How loose is each constant of the bounds? ``python -m mamlcheck slack``.

Every lemma and moment bound of THEORY.md §3–§6 is evaluated on many drawn
instances (family × parameters × point ``w`` × hyperparameters inside the MAML
theorem's conditions), with the left side computed *exactly* wherever the
family allows, and each constant of the right side is reported by its
*slack*: the stated constant over the smallest value that would still have
held on that draw (for a lower bound, the other way round), so 1 means the
bound is tight and below 1 means it is violated.  The property tests
(``tests/test_properties.py``) assert the same checks; ``tests/strategies.py``
wraps this module's samplers as hypothesis strategies, so tests and report
draw from one definition of the parameter ranges.

Parts of this module:

* **Samplers** (``Source``, ``NumpySource``; ``draw_family``, ``draw_point``,
  ``draw_pair``, ``draw_constants``, ``draw_hyper``, ``breakable``,
  ``draw_case``): written against two primitive draws, ``integer`` and
  ``real``, so that a numpy generator (this report) and hypothesis (the tests)
  drive the same code.
* **Exact laws** (``inner_mean``, ``outer_second``, ``hess_factor``): the
  moments of the stochastic meta-gradient (6) of one task.  Tasks are finite,
  so expectations over them are exact weighted sums.  ``cosine-quadratic``:
  its batch noise is Gaussian (``ξ̄ ~ N(0, s_ξ²/(dn) I)`` additive,
  ``η̄ ~ N(0, s_η²/n)`` on the cosine amplitude), so the inner point is
  ``x ~ N(u, Σ)`` and ``E sin(ωx_j) = sin(ωu_j) e^{−ω²Σ_jj/2}``,
  ``Cov(x_j, sin ωx_k) = Σ_jk ω E cos(ωx_k)`` (Stein) and
  ``E[sin ωx_j sin ωx_k] = ½[cos ω(u_j − u_k) e^{−ω²Var(x_j − x_k)/2}
  − cos ω(u_j + u_k) e^{−ω²Var(x_j + x_k)/2}]`` give every moment in closed
  form.  ``robust-regression``: a batch of ``n`` points drawn with replacement
  from ``N`` is a multiset with multinomial probability; all
  ``C(N + n − 1, n)`` of them are enumerated, and the outer batch enters
  through the exact variance of a with-replacement mean.  ``hard-chain``:
  deterministic oracles.  Every Hessian is assembled from the family's
  ``hvp``, so a bug there shows in the checks.
* **Checks** (``Moments``, ``Check``, ``check_*``): measured value beside the
  bound from ``theory.bounds``, split into the terms of the right side so that
  each constant's slack can be read off.  The step-size lemma is the one
  Monte Carlo check (``L̃`` of ``algorithms.steps.estimate_L_tilde``), with an
  empirical-Bernstein half-width at false-alarm rate ``MC_DELTA`` per check.
* **Report**: ``compute`` (tidy table, one row per draw × constant),
  ``summary``, ``plot``, ``reproduce`` (a section of ``figures/REPORT.md``)
  and the CLI.
"""
from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import matplotlib.lines
import matplotlib.patches
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F, grad_F, local_L, mean_task_grad_norm
from mamlcheck.algorithms.steps import estimate_L_tilde
from mamlcheck.problems import FAMILIES, make_family
from mamlcheck.problems.base import Constants, TaskFamily
from mamlcheck.theory import bounds
from mamlcheck import literature as lit
from mamlcheck.theory.conditions import broken as broken_names
from mamlcheck.theory.conditions import check_conditions

from . import style

__all__ = [
    "Source", "NumpySource", "Rejected", "FAMILY_SPECS", "family_names", "draw_family", "draw_point",
    "draw_pair", "draw_constants", "breakable", "draw_hyper", "Case", "draw_case", "BREAKABLE",
    "inner_mean", "outer_second", "hess_factor", "hessian_matrix", "Moments", "moments", "Check",
    "check_first_moment", "check_second_moment", "check_bias", "check_maml_bias",
    "check_second_moment_lemma", "check_smoothness", "check_step_size", "check_fomaml_bias",
    "check_hf_difference", "all_checks", "compute", "summary", "plot", "reproduce", "PHIS", "MC_DELTA",
]

NAME = "slack"
TITLE = "Slack of the constants: how loose each bound is in practice"
PHIS = (0.5, 1.0, 2.0)            # φ of the second-moment lemma (THEORY.md §3)
MC_DELTA = 1e-6                   # false-alarm rate of each Monte Carlo check (one-sided)
MC_SAMPLES = 20_000               # L̃ draws per step-size check
ROUND = 1e-12                     # rounding allowance of the exact checks, relative to their scale
ROOT_SEED = 20200826              # the report's draws: SeedSequence([ROOT_SEED, draw])
SCALE_EXAMPLES = {"tiny": 12, "quick": 80, "default": 1200, "full": 8000}
MAX_MULTISETS = 200_000           # robust-regression enumeration limit


# =============================================================================
# Samplers
# =============================================================================
class Rejected(Exception):
    """The draw cannot give what was asked (e.g. a condition that these
    constants do not let one break); hypothesis rejects the example, the
    numpy loop draws again."""


class Source:
    """Primitive draws that the samplers are written against.

    Subclasses implement ``integer(lo, hi)`` (inclusive) and ``real(lo, hi)``;
    ``tests/strategies.py`` implements them with hypothesis, ``NumpySource``
    with a numpy generator.
    """

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def real(self, lo: float, hi: float) -> float:
        raise NotImplementedError

    def reject(self):
        raise Rejected

    def log_real(self, lo: float, hi: float) -> float:
        """Log-uniform on ``[lo, hi]``."""
        return float(min(hi, max(lo, math.exp(self.real(math.log(lo), math.log(hi))))))

    def flag(self, p: float = 0.5) -> bool:
        return self.real(0.0, 1.0) < p

    def choice(self, options: Sequence):
        options = list(options)
        return options[self.integer(0, len(options) - 1)]

    def vector(self, n: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
        return np.array([self.real(lo, hi) for _ in range(n)], dtype=float)


class NumpySource(Source):
    """``Source`` from a numpy generator (``seed``: anything ``default_rng`` takes)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def integer(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def real(self, lo, hi):
        return float(lo + (hi - lo) * self.rng.random())


def _weights(src: Source, M: int):
    """Task probabilities: uniform (``None``) or drawn weights in [0.05, 1], normalised."""
    if M == 1 or src.flag(0.5):
        return None
    w = np.array([src.real(0.05, 1.0) for _ in range(M)])
    return [float(x) for x in w / w.sum()]


def _or_zero(src: Source, x: float, p: float = 0.15) -> float:
    return 0.0 if src.flag(p) else x


def _cosine_params(src: Source) -> dict:
    M = src.integer(1, 4)
    a_min = src.log_real(0.2, 2.0)
    return dict(d=src.integer(1, 4), M=M, gamma=_or_zero(src, src.real(0.05, 1.5), 0.1),
                omega=src.real(0.5, 3.0), a_min=a_min, a_max=a_min * src.real(1.0, 4.0),
                spread=_or_zero(src, src.real(0.05, 2.0)), noise_grad=_or_zero(src, src.real(0.05, 3.0)),
                noise_amp=_or_zero(src, src.real(0.05, 3.0)), dense=src.flag(0.3),
                p=_weights(src, M), seed=src.integer(0, 2 ** 16))


def _robust_params(src: Source) -> dict:
    M = src.integer(1, 3)
    return dict(d=src.integer(1, 3), M=M, N=src.integer(2, 6), R=src.log_real(0.5, 2.0),
                spread=src.real(0.0, 2.0), noise=src.real(0.0, 1.0),
                outlier_frac=_or_zero(src, src.real(0.1, 0.5), 0.4), outlier_scale=src.real(0.0, 5.0),
                p=_weights(src, M), seed=src.integer(0, 2 ** 16))


def _chain_params(src: Source) -> dict:
    M = src.integer(1, 3)
    return dict(T=src.integer(2, 5), eps=src.log_real(0.02, 0.2), L=src.log_real(0.5, 2.0), M=M,
                tilt=src.real(0.0, 2.65) if M > 1 else 0.0, p=_weights(src, M), seed=src.integer(0, 2 ** 16))


# family name -> sampler of its parameters (small sizes: d ≤ 5, M ≤ 4, N ≤ 6)
FAMILY_SPECS = {
    "cosine-quadratic": _cosine_params,
    "robust-regression": _robust_params,
    "hard-chain": _chain_params,
}


def family_names() -> list[str]:
    """Registered families (``problems.FAMILIES``) that have a parameter sampler."""
    return [n for n in FAMILY_SPECS if n in FAMILIES]


def draw_family(src: Source, names: Sequence[str] | None = None) -> tuple[str, dict, TaskFamily]:
    """A family instance: ``(name, params, make_family(name, **params))``."""
    names = family_names() if names is None else list(names)
    name = src.choice(names)
    params = FAMILY_SPECS[name](src)
    return name, params, make_family(name, **params)


def _centre_length(family: TaskFamily) -> tuple[np.ndarray, float]:
    """Where the tasks sit and their length scale, for drawing points."""
    if family.name == "cosine-quadratic":
        dev = family.c - family.c_bar
        return family.c_bar, 1.0 + float(np.sqrt(family.p @ np.sum(dev ** 2, -1)))
    if family.name == "robust-regression" and family.w_star is not None:
        centre = family.p @ family.w_star
        return centre, 1.0 + float(np.linalg.norm(centre))
    if family.name == "hard-chain":
        return np.zeros(family.d), float(family.lam)
    return np.zeros(family.d), 1.0


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if not np.isfinite(n) or n == 0.0:
        v = np.zeros_like(v)
        v[0] = 1.0
        return v
    return v / n


def _stationary(family: TaskFamily, w0: np.ndarray, alpha: float) -> np.ndarray:
    """A local minimiser of ``F`` (BFGS from ``w0``, deterministic)."""
    res = minimize(lambda x: float(F(family, x, alpha)), w0, jac=lambda x: np.asarray(grad_F(family, x, alpha)),
                   method="BFGS", options=dict(maxiter=100, gtol=1e-13))
    return res.x if np.all(np.isfinite(res.x)) else w0


def draw_point(src: Source, family: TaskFamily, alpha: float | None = None) -> np.ndarray:
    """A point ``w``: near the tasks (``10⁻³–1`` length scales away), far from
    them (``1–10³``, where ``L(w)`` is large for families with growing
    gradients), for cosine-quadratic on the lattice ``w_j ∈ (π/2ω)ℤ`` where
    ``σ̃`` and ``σ_H`` are attained, and, given ``alpha``, a local minimiser
    of ``F`` (where ``∇F ≈ 0`` and the bias terms of (7) matter most; not for
    hard-chain, built so that gradient methods need ``∝ 1/ε²`` steps)."""
    centre, length = _centre_length(family)
    kinds = ["near", "far"] + (["lattice"] if family.name == "cosine-quadratic" else [])
    if alpha is not None and family.name != "hard-chain":
        kinds.append("stationary")
    kind = src.choice(kinds)
    if kind == "lattice":
        k = np.array([src.integer(-8, 8) for _ in range(family.d)], dtype=float)
        return k * np.pi / (2.0 * family.omega)
    r = length * (src.log_real(1e-3, 1.0) if kind in ("near", "stationary") else src.log_real(1.0, 1e3))
    w = centre + r * _unit(src.vector(family.d))
    return _stationary(family, w, alpha) if kind == "stationary" else w


def draw_pair(src: Source, family: TaskFamily, w: np.ndarray) -> np.ndarray:
    """A second point ``u`` at distance ``10⁻³–3`` times the length scale plus
    a hundredth of ``w``'s distance from the tasks (so that rounding in
    ``F(w)`` stays far below the smoothness lemma's quadratic term)."""
    centre, length = _centre_length(family)
    t = src.log_real(1e-3, 3.0) * (length + 1e-2 * float(np.linalg.norm(w - centre)))
    return w + t * _unit(src.vector(family.d))


def draw_constants(src: Source) -> dict[str, float]:
    """Abstract constants ``L > 0`` and ``ρ, σ, σ̃, σ_H ≥ 0`` over ``10⁻²–10²``
    (zero with probability 0.15 each), for checking hyperparameter draws on
    constants no family has."""
    def opt():
        return _or_zero(src, src.log_real(1e-2, 1e2))
    return dict(L=src.log_real(1e-2, 1e2), rho=opt(), sigma=opt(), sigma_tilde=opt(), sigma_H=opt())


# conditions of theory.conditions that a hyperparameter draw can break alone;
# "alpha_smoothness" cannot (α > 1/L breaks the theorem's range of α too)
BREAKABLE = ("alpha_range", "B_min", "D_h_min", "step_rule", "B_prime_min", "D_beta_min")


def _values(constants) -> dict[str, float]:
    v = constants.values() if isinstance(constants, Constants) else dict(constants)
    return {n: float(v[n]) for n in Constants.NAMES}


def _alpha_max(algorithm: str, L: float) -> float:
    return lit.ALPHA_MAX_LD.get(algorithm, lit.ALPHA_MAX_LD["maml"]) / L


def _alpha_threshold(name: str, algorithm: str, v: dict) -> float:
    """Smallest ``α`` (exclusive) at which the minimum that ``name`` requires
    is at least 2, so that a smaller value breaks it; ``inf`` if never."""
    if name == "D_h_min":
        num, factor = v["sigma_H"], lit.D_H_FACTOR.get(algorithm, 0.0)
    elif name == "B_prime_min":
        num, factor = v["rho"] * v["sigma"] / v["L"], lit.B_PRIME_FACTOR
    elif name == "D_beta_min":
        num, factor = v["rho"] * v["sigma_tilde"] / v["L"], lit.D_BETA_FACTOR
    else:
        return 0.0
    return math.inf if num * factor == 0 else 1.0 / (num * math.sqrt(factor))


def breakable(constants, algorithm: str = "maml") -> tuple[str, ...]:
    """The conditions of ``algorithm``'s theorem that a hyperparameter draw can
    break alone, for these constants (``D_h_min``, ``B_prime_min``,
    ``D_beta_min`` only where some ``α`` of the theorem's range makes their
    minimum at least 2)."""
    v = _values(constants)
    names = {c.name for c in check_conditions(v, Hyper(algorithm, alpha=_alpha_max(algorithm, v["L"])))}
    amax = _alpha_max(algorithm, v["L"])
    return tuple(n for n in BREAKABLE if n in names and _alpha_threshold(n, algorithm, v) * (1 + 1e-6) < amax)


def draw_hyper(src: Source, constants, algorithm: str = "maml", broken: str | None = None) -> Hyper:
    """Hyperparameters for ``algorithm`` that satisfy every condition of its
    theorem (``theory.conditions.check_conditions``) on ``constants``, or that
    break exactly the one named ``broken`` (one of ``BREAKABLE``).

    ``α`` is a fraction of the theorem's ``c/L`` (exactly ``c/L``, the
    boundary, one draw in five); breaking ``alpha_range`` puts it in
    ``(c/L, 1/L)``, so the smoothness lemma still applies.  ``D_in, D_o`` are
    1–6, ``D_h``, ``B′``, ``D_β`` at their minimum or a little above
    (``None``: the minimum).  Rejects (``Source.reject``) when ``broken``
    cannot be broken on these constants (see ``breakable``).
    """
    v = _values(constants)
    if broken is not None:
        if broken not in BREAKABLE:
            raise ValueError(f"broken must be one of {BREAKABLE} (or None), got {broken!r}")
        if broken not in breakable(v, algorithm):
            src.reject()
    amax = _alpha_max(algorithm, v["L"])
    if broken == "alpha_range":
        alpha = amax * src.real(1.0 + 1e-6, (1.0 / (amax * v["L"])) * (1.0 - 1e-6))
    else:
        lo = 0.0
        if broken is not None:
            lo = min(amax, _alpha_threshold(broken, algorithm, v) * (1 + 1e-6))
        alpha = amax if src.flag(0.2) else lo + (amax - lo) * src.real(1e-3, 1.0)
    b_min = lit.B_MIN if algorithm == "maml" else 1
    B = src.integer(1, lit.B_MIN - 1) if broken == "B_min" else src.integer(b_min, 3 * lit.B_MIN)
    D_in, D_o = src.integer(1, 6), src.integer(1, 6)

    def at_least(name, need):
        if broken == name:
            if need < 2:
                src.reject()
            return src.integer(1, need - 1)
        return need + (src.integer(0, 3) if src.flag(0.5) else 0)

    D_h = at_least("D_h_min", bounds.D_h_min(algorithm=algorithm, alpha=alpha, sigma_H=v["sigma_H"]) if algorithm in lit.D_H_FACTOR else 1)
    extra = {}
    if algorithm != "exact":
        for name, need in (("B_prime", bounds.B_prime_min(rho=v["rho"], alpha=alpha, sigma=v["sigma"], L=v["L"])),
                           ("D_beta", bounds.D_beta_min(rho=v["rho"], alpha=alpha, sigma_tilde=v["sigma_tilde"], L=v["L"]))):
            if broken == f"{name}_min" or src.flag(0.5):
                extra[name] = at_least(f"{name}_min", need)
    step = {}
    if broken == "step_rule":
        c = lit.STEP_C.get(algorithm, lit.STEP_C["maml"])
        step = (dict(step="constant", beta=src.log_real(1e-3, 1.0)) if src.flag(0.5)
                else dict(step_c=c * src.real(0.2, 0.9)))
    hyper = Hyper(algorithm, alpha=alpha, B=B, D_in=D_in, D_o=D_o, D_h=D_h, **extra, **step)
    got = broken_names(check_conditions(v, hyper))
    if got != ([] if broken is None else [broken]):
        src.reject()    # a rounding edge (α exactly at a threshold); never silently mislabel
    return hyper


@dataclass(frozen=True, repr=False)
class Case:
    """One drawn instance: the family (with its name and parameters), a point
    ``w``, hyperparameters, and optionally a second point ``u``."""

    name: str
    params: dict
    family: TaskFamily
    w: np.ndarray
    hyper: Hyper
    u: np.ndarray | None = None

    def __repr__(self) -> str:
        u = "" if self.u is None else f", u={np.round(self.u, 6).tolist()}"
        return (f"Case({self.name}, {self.params}, w={np.round(self.w, 6).tolist()}{u}, "
                f"alpha={self.hyper.alpha:.6g}, D_in={self.hyper.D_in}, D_o={self.hyper.D_o}, "
                f"D_h={self.hyper.D_h})")

    def describe(self) -> dict:
        """The instance's parameters as flat columns (for tables)."""
        c = self.family.constants().values()
        out = {"family": self.name}
        out.update({k: (json.dumps(v) if isinstance(v, (list, tuple)) else v)
                    for k, v in self.params.items()})
        out.update({f"const_{k}": v for k, v in c.items()})
        h = self.hyper
        out.update(d=self.family.d, M=self.family.M, alpha=h.alpha, alpha_L=h.alpha * c["L"], D_in=h.D_in,
                   D_o=h.D_o, D_h=h.D_h, w=json.dumps(np.round(self.w, 8).tolist()),
                   w_norm=float(np.linalg.norm(self.w)))
        if self.u is not None:
            out["u_dist"] = float(np.linalg.norm(self.u - self.w))
        return out


def draw_case(src: Source, algorithm: str = "maml", broken: str | None = None,
              names: Sequence[str] | None = None, pair: bool = False) -> Case:
    """A family, hyperparameters inside ``algorithm``'s theorem (or breaking
    ``broken`` alone), a point (possibly a local minimiser of ``F`` for that
    ``α``) and, with ``pair``, a second point."""
    name, params, family = draw_family(src, names)
    hyper = draw_hyper(src, family.constants(), algorithm, broken)
    w = draw_point(src, family, hyper.alpha)
    u = draw_pair(src, family, w) if pair else None
    return Case(name, params, family, w, hyper, u)


# =============================================================================
# Exact laws of the stochastic meta-gradient of one task (THEORY.md §1, (6))
# =============================================================================
def hessian_matrix(family: TaskFamily, w: np.ndarray, i: int) -> np.ndarray:
    """``∇²f_i(w)``, assembled column by column from the family's ``hvp``."""
    d = family.d
    return family.hvp(np.broadcast_to(w, (d, d)), np.asarray(i), np.eye(d)).T


def grad_rounding_scale(family: TaskFamily, x, i: int) -> float:
    """Size of the intermediate terms of ``∇f_i(x)``: its rounding error is a
    few ulps of this, not of ``‖∇f_i(x)‖`` (which cancels to 0 at stationary
    points).  cosine-quadratic: ``‖|A|(|x| + |c_i|)‖ + γω(1 + ω|x|)·√d``
    (``x − c_i`` and ``ωx`` are rounded); robust-regression:
    ``mean_k ‖x_k‖(|φ'(r_k)| + |y_k| + ‖x_k‖‖x‖)`` (the residual is rounded
    relative to ``|y_k| + |x_kᵀx|``, and ``|φ''| ≤ 1``); otherwise
    ``‖∇f_i(x)‖ + L(length + ‖x‖)√d``."""
    x = np.asarray(x, dtype=float)
    if family.name == "cosine-quadratic":
        r = np.abs(x) + np.abs(family.c[i])
        Ar = np.abs(family.A) * r if family.diagonal else np.abs(family.A) @ r
        ripple = family.gamma * family.omega * (1.0 + family.omega * np.abs(x))
        return float(np.linalg.norm(Ar) + np.linalg.norm(ripple))
    if family.name == "robust-regression":
        X, Y = family.X[i], family.Y[i]
        nx = np.linalg.norm(X, axis=-1)
        g1 = np.linalg.norm(_rr_samples(family, x[None], i)[0], axis=-1)
        return float(np.mean(g1 + nx * (np.abs(Y) + nx * np.linalg.norm(x))))
    _, length = _centre_length(family)
    L = family.constants().L.value
    return float(np.linalg.norm(family.grad(x, i)) + L * (length + np.linalg.norm(x)) * math.sqrt(family.d))


def _law(family: TaskFamily) -> str:
    if family.name in ("cosine-quadratic", "robust-regression", "hard-chain"):
        return family.name
    raise NotImplementedError(f"no exact law for family {family.name!r}: add one to experiments/slack.py")


# --- cosine-quadratic: Gaussian closed forms ---------------------------------
def _cq_inner_cov(fam, w, alpha, n) -> np.ndarray:
    """``Σ = α² Cov(∇̃f_i(w, D))`` of the inner point ``x = u − αζ``:
    ``ζ = ξ̄ − η̄ γω sin(ωw)`` (the oracle's noise, module docstring)."""
    s = fam.gamma * fam.omega * np.sin(fam.omega * w)
    cov = (fam.noise_grad ** 2 / (fam.d * n)) * np.eye(fam.d) + (fam.noise_amp ** 2 / n) * np.outer(s, s)
    return alpha ** 2 * cov


def _cq_sin_moments(omega, u, Sigma):
    """For ``x ~ N(u, Σ)``, ``S = sin(ωx)``: ``E S``, ``Cov(x, S)``, ``E[S Sᵀ]``."""
    dg = np.diag(Sigma)
    damp = np.exp(-0.5 * omega ** 2 * dg)
    ES = np.sin(omega * u) * damp
    C_xS = Sigma * (omega * np.cos(omega * u) * damp)[None, :]
    a = dg[:, None] + dg[None, :]
    ESS = 0.5 * (np.cos(omega * (u[:, None] - u[None, :])) * np.exp(-0.5 * omega ** 2 * (a - 2 * Sigma))
                 - np.cos(omega * (u[:, None] + u[None, :])) * np.exp(-0.5 * omega ** 2 * (a + 2 * Sigma)))
    return ES, C_xS, ESS


def _cq_inner(fam, w, i, alpha, n):
    u = w - alpha * fam.grad(w, i)
    Sigma = _cq_inner_cov(fam, w, alpha, n)
    ES, C_xS, ESS = _cq_sin_moments(fam.omega, u, Sigma)
    # E∇f_i(x) = ∇f_i(u) + γω(sin ωu − E sin ωx): the quadratic part is linear
    mean = fam.grad(u, i) + fam.gamma * fam.omega * (np.sin(fam.omega * u) - ES)
    return u, Sigma, ES, C_xS, ESS, mean


# --- robust-regression: enumeration of with-replacement batches ----------------
@lru_cache(maxsize=64)
def _multisets(N: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts ``(K, N)`` of every multiset of ``n`` draws from ``N`` points and
    its probability ``n!/(∏k_j!) N^{−n}``."""
    K = math.comb(N + n - 1, n)
    if K > MAX_MULTISETS:
        raise ValueError(f"{K} batches of {n} from {N} points: too many to enumerate (limit {MAX_MULTISETS})")
    combos = np.array(list(itertools.combinations_with_replacement(range(N), n)), dtype=np.intp)
    counts = np.zeros((K, N))
    np.add.at(counts, (np.repeat(np.arange(K), n), combos.ravel()), 1.0)
    prob = np.exp(gammaln(n + 1) - gammaln(counts + 1).sum(1) - n * math.log(N))
    return counts, prob


def _rr_samples(fam, points: np.ndarray, i: int, what: str = "grad") -> np.ndarray:
    """Per-sample ``∇ℓ_i(x; θ_k)`` ``(K, N, d)`` at points ``(K, d)``, or the per-sample
    Hessians ``(N, d, d)`` at one point, from the batch oracles with one index each."""
    batch = {"idx": np.arange(fam.N)[:, None]}
    if what == "grad":
        return fam.batch_grad(points[:, None, :], np.asarray(i), batch)
    return fam.batch_hess(points, np.asarray(i), batch)


def _rr_inner(fam, w, i, alpha, n):
    """Inner points ``w − α∇̃f_i(w, D)`` of every batch ``D`` and their probabilities."""
    g1 = _rr_samples(fam, w[None], i)[0]
    counts, prob = _multisets(fam.N, n)
    return w - alpha * (counts @ g1) / n, prob


# --- the three moments ----------------------------------------------------------
def inner_mean(family: TaskFamily, w, i: int, alpha: float, D_in: int) -> np.ndarray:
    """``E[∇̃f_i(w − α∇̃f_i(w, D_in), D_o)] = E[∇f_i(w − α∇̃f_i(w, D_in))]`` (the
    outer batch is independent and unbiased), exactly."""
    law = _law(family)
    if law == "cosine-quadratic":
        return _cq_inner(family, w, i, alpha, D_in)[-1]
    if law == "robust-regression":
        pts, prob = _rr_inner(family, w, i, alpha, D_in)
        return prob @ family.grad(pts, i)
    return family.grad(w - alpha * family.grad(w, i), i)


def outer_second(family: TaskFamily, w, i: int, alpha: float, D_in: int, D_o: int) -> np.ndarray:
    """``E[v vᵀ]`` for ``v = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)``, exactly ``(d, d)``."""
    law = _law(family)
    if law == "cosine-quadratic":
        fam = family
        u, Sigma, ES, C_xS, ESS, mean = _cq_inner(fam, w, i, alpha, D_in)
        A, gw = fam._A_mat, fam.gamma * fam.omega
        C_SS = ESS - np.outer(ES, ES)
        cov = A @ Sigma @ A - gw * (A @ C_xS + C_xS.T @ A) + gw ** 2 * C_SS
        noise = (fam.noise_grad ** 2 / (fam.d * D_o)) * np.eye(fam.d) + (fam.noise_amp ** 2 * gw ** 2 / D_o) * ESS
        return cov + np.outer(mean, mean) + noise
    if law == "robust-regression":
        pts, prob = _rr_inner(family, w, i, alpha, D_in)
        g = family.grad(pts, i)
        g1 = _rr_samples(family, pts, i)
        second1 = np.einsum("knj,knl->kjl", g1, g1) / family.N           # E_θ[∇ℓ∇ℓᵀ] at each point
        per = (1 - 1 / D_o) * np.einsum("kj,kl->kjl", g, g) + second1 / D_o
        return np.einsum("k,kjl->jl", prob, per)
    v = family.grad(w - alpha * family.grad(w, i), i)
    return np.outer(v, v)


def hess_factor(family: TaskFamily, w, i: int, alpha: float, D_h: int, H: np.ndarray | None = None) -> np.ndarray:
    """``E[(I − α∇̃²f_i(w, D_h))ᵀ(I − α∇̃²f_i(w, D_h))]``, exactly ``(d, d)``; for
    ``v`` independent of ``D_h``, ``E‖(I − α∇̃²f_i)v‖² = E[vᵀ (this) v]``."""
    law = _law(family)
    H = hessian_matrix(family, w, i) if H is None else H
    P = np.eye(family.d) - alpha * H
    out = P.T @ P
    if law == "cosine-quadratic":
        fam = family
        c = fam.gamma * fam.omega ** 2 * np.cos(fam.omega * w)
        out = out + (alpha ** 2 * fam.noise_amp ** 2 / D_h) * np.diag(c ** 2)
    elif law == "robust-regression":
        H1 = _rr_samples(family, w, i, what="hess")
        Hbar = H1.mean(0)
        cov = np.einsum("nij,nik->jk", H1, H1) / family.N - Hbar.T @ Hbar
        out = out + (alpha ** 2 / D_h) * cov
    return out


# =============================================================================
# Checks
# =============================================================================
@dataclass
class Moments:
    """Exact moments of the MAML estimator at one ``(family, w, hyper)``
    (expectation over the task draw and every batch).  Per task ``i``: ``u``
    (exact inner point), ``grad_u = ∇f_i(u_i)``, ``H = ∇²f_i(w)``,
    ``Ev = E[∇̃f_i(x_i, D_o)]``, ``Evv = E[vvᵀ]``, ``Mh = hess_factor``,
    ``EGi = (I − αH)Ev``; and ``grad_F`` (5), ``EG = Σ p_i EGi``,
    ``EG2 = E‖G‖²``, ``EG_fo = Σ p_i Ev``."""

    family: TaskFamily
    w: np.ndarray
    hyper: Hyper
    c: dict
    u: np.ndarray
    grad_u: np.ndarray
    H: np.ndarray
    Ev: np.ndarray
    Evv: np.ndarray
    Mh: np.ndarray
    EGi: np.ndarray
    grad_F: np.ndarray
    EG: np.ndarray
    EG2: float
    EG_fo: np.ndarray
    tol: float = 0.0      # rounding allowance of a gradient-sized vector (ROUND × grad_rounding_scale)

    @property
    def tol2(self) -> float:
        """Rounding allowance of a second moment (``ROUND × scale²``: covariances
        are differences of terms of that size)."""
        return self.tol ** 2 / ROUND


def _grad_tol(family: TaskFamily, w, alpha: float) -> float:
    """Rounding allowance of ``∇F(w)``, ``E[G]`` and the like: ``ROUND·(1 + αL)``
    times the largest summand scale of ``∇f_i`` at ``w`` and at ``u_i``."""
    L = family.constants().L.value
    u = w - alpha * family.grad(w[None, :], np.arange(family.M))
    return ROUND * (1 + alpha * L) * max(max(grad_rounding_scale(family, w, i),
                                             grad_rounding_scale(family, u[i], i)) for i in range(family.M))


def moments(family: TaskFamily, w, hyper: Hyper) -> Moments:
    """Exact ``Moments`` (see there); O(M·d²) for cosine-quadratic, O(M·K·N·d²)
    for robust-regression with ``K`` the number of inner batches."""
    w = np.asarray(w, dtype=float)
    a = hyper.alpha
    M = family.M
    tasks = range(M)
    grad_w = family.grad(w[None, :], np.arange(M))
    u = w - a * grad_w
    grad_u = family.grad(u, np.arange(M))
    H = np.stack([hessian_matrix(family, w, i) for i in tasks])
    Ev = np.stack([inner_mean(family, w, i, a, hyper.D_in) for i in tasks])
    Evv = np.stack([outer_second(family, w, i, a, hyper.D_in, hyper.D_o) for i in tasks])
    Mh = np.stack([hess_factor(family, w, i, a, hyper.D_h, H[i]) for i in tasks])
    EGi = Ev - a * family.hvp(np.broadcast_to(w, (M, family.d)), np.arange(M), Ev)
    p = family.p
    c = family.constants().values()
    return Moments(family, w, hyper, c, u, grad_u, H, Ev, Evv, Mh, EGi,
                   np.asarray(grad_F(family, w, a), dtype=float), p @ EGi,
                   float(p @ np.einsum("mjk,mjk->m", Mh, Evv)), p @ Ev, _grad_tol(family, w, a))


def _fmt_const(x: float) -> str:
    for num, den in ((1, 6), (1, 12), (1, 2)):
        if abs(x - num / den) < 1e-12:
            return f"{num}/{den}"
    return f"{x:g}"


@dataclass(frozen=True)
class Check:
    """One inequality on one draw: the measured left side beside the bound.

    ``parts`` splits the bound into its terms ``(label, stated constant,
    value of the term)`` (their sum is the bound), for the slack of each
    constant.  ``atol`` is the allowance: rounding for exact checks, the
    Monte Carlo half-width (false-alarm rate ``MC_DELTA``) otherwise.
    """

    prop: str
    ref: str
    kind: str
    lhs: float
    bound: float
    parts: tuple
    atol: float = 0.0
    exact: bool = True
    task: int | None = None
    note: str = ""

    def __post_init__(self):
        total = sum(p[2] for p in self.parts)
        if not math.isclose(total, self.bound, rel_tol=1e-9, abs_tol=1e-300):
            raise AssertionError(f"{self.prop}: the terms sum to {total!r}, the bound is {self.bound!r}")

    @property
    def holds(self) -> bool:
        if self.kind == "upper":
            return self.lhs <= self.bound + self.atol
        return self.lhs >= self.bound - self.atol

    @property
    def ratio(self) -> float:
        """Right side over left side for an upper bound (left over right for a
        lower bound): ≥ 1 when the bound holds, 1 when it is tight."""
        num, den = (self.bound, self.lhs) if self.kind == "upper" else (self.lhs, self.bound)
        return math.inf if den <= 0 and num >= 0 else num / den

    def slack(self) -> list[dict]:
        """Per term: the constant that would have sufficed on this draw with
        the other terms as stated (``needed``), and ``stated/needed`` (upper)
        or ``needed/stated`` (lower).  Terms that vanish here are skipped; a
        bound of several terms adds a ``whole bound`` row.  A bound, or a
        term, within ten rounding allowances of 0 says nothing about its
        constant: no row."""
        floor = 10 * self.atol if self.exact else 0.0
        if self.kind == "upper" and self.bound <= floor:
            return []
        rows = []
        for term, (label, stated, value) in enumerate(self.parts):
            if stated == 0 or value <= floor:
                continue
            needed = (self.lhs - (self.bound - value)) / (value / stated)
            if self.kind == "upper":
                r = math.inf if needed <= 1e-9 * stated else stated / needed
            else:
                r = needed / stated
            rows.append(dict(constant=label, term=term, stated=stated, needed=needed, ratio=r))
        if len(self.parts) > 1:
            rows.append(dict(constant=f"{self.prop}: whole bound", term=len(self.parts), stated=1.0,
                             needed=1.0 / self.ratio if self.ratio not in (0.0, math.inf) else 0.0,
                             ratio=self.ratio))
        return rows

    def __repr__(self) -> str:
        verdict = "holds" if self.holds else "VIOLATED"
        task = "" if self.task is None else f" (task {self.task})"
        return (f"{self.prop}{task}: measured {self.lhs:.6g} vs bound {self.bound:.6g} "
                f"(allowance {self.atol:.3g}) {verdict}; {self.ref}")


def _atol(scale: float) -> float:
    return ROUND * float(scale)


def _sq_atol(norm: float, tol: float) -> float:
    """Rounding allowance of a squared norm whose vector is off by ``tol``."""
    return 2.0 * float(norm) * tol + tol ** 2


def check_first_moment(m: Moments) -> list[Check]:
    """(7): ``‖E[G_i(w)]‖² ≤ 2‖∇F(w)‖² + 0.08σ̃²/D_in`` (THEORY.md §4)."""
    gF = float(np.linalg.norm(m.grad_F))
    s, D_in = m.c["sigma_tilde"], m.hyper.D_in
    parts = (("(7): 2‖∇F‖²", lit.M1_GRAD, bounds.first_moment_bound(grad_F_norm=gF, sigma_tilde=0.0, D_in=D_in)),
             ("(7): 0.08σ̃²/D_in", lit.M1_NOISE, bounds.first_moment_bound(grad_F_norm=0.0, sigma_tilde=s, D_in=D_in)))
    scale = float(m.family.p @ np.linalg.norm(m.EGi, axis=-1)) ** 2 + gF ** 2
    atol = _atol(scale) + _sq_atol(np.linalg.norm(m.EG) + gF, m.tol)
    return [Check("(7)", "seed (7), THEORY.md §4", "upper", float(m.EG @ m.EG),
                  bounds.first_moment_bound(grad_F_norm=gF, sigma_tilde=s, D_in=D_in), parts, atol)]


def check_second_moment(m: Moments) -> list[Check]:
    """(8): ``E‖G_i(w)‖² ≤ 40‖∇F‖² + 14σ² + σ̃²(2/D_o + 1/(6D_in))`` (THEORY.md §4)."""
    gF = float(np.linalg.norm(m.grad_F))
    sig, s, D_in, D_o = m.c["sigma"], m.c["sigma_tilde"], m.hyper.D_in, m.hyper.D_o
    parts = (("(8): 40‖∇F‖²", lit.M2_GRAD, lit.M2_GRAD * gF ** 2),
             ("(8): 14σ²", lit.M2_SIGMA, lit.M2_SIGMA * sig ** 2),
             ("(8): 2σ̃²/D_o", lit.M2_DO, lit.M2_DO * s ** 2 / D_o),
             ("(8): σ̃²/(6D_in)", lit.M2_DIN, lit.M2_DIN * s ** 2 / D_in))
    return [Check("(8)", "seed (8), THEORY.md §4", "upper", m.EG2,
                  bounds.second_moment_bound(grad_F_norm=gF, sigma=sig, sigma_tilde=s, D_in=D_in, D_o=D_o), parts,
                  _atol(m.EG2) + _sq_atol(math.sqrt(max(m.EG2, 0.0)), m.tol) + m.tol2)]


def check_bias(m: Moments) -> list[Check]:
    """Bias lemma, per task: ``‖E[∇̃f_i(w − α∇̃f_i(w, D_in), D_o)] − ∇f_i(w − α∇f_i(w))‖
    ≤ αLσ̃/√D_in`` (THEORY.md §3)."""
    b = bounds.inner_bias(alpha=m.hyper.alpha, L=m.c["L"], sigma_tilde=m.c["sigma_tilde"], D_in=m.hyper.D_in)
    out = []
    for i in range(m.family.M):
        lhs = float(np.linalg.norm(m.Ev[i] - m.grad_u[i]))
        scale = np.linalg.norm(m.Ev[i]) + np.linalg.norm(m.grad_u[i])
        out.append(Check("bias lemma", "THEORY.md §3, bias of the inner stochastic step", "upper", lhs, b,
                         (("bias lemma: αLσ̃/√D_in", 1.0, b),), _atol(scale) + m.tol, task=i))
    return out


def check_maml_bias(m: Moments) -> list[Check]:
    """``‖E[G_i(w)] − ∇F(w)‖ ≤ (1 + αL)αLσ̃/√D_in``: the bias behind (7)'s 0.08 (THEORY.md §4)."""
    b = bounds.maml_bias(alpha=m.hyper.alpha, L=m.c["L"], sigma_tilde=m.c["sigma_tilde"], D_in=m.hyper.D_in)
    scale = float(m.family.p @ np.linalg.norm(m.EGi, axis=-1)) + np.linalg.norm(m.grad_F)
    return [Check("MAML bias", "THEORY.md §4, derivation of (7)", "upper",
                  float(np.linalg.norm(m.EG - m.grad_F)), b,
                  (("MAML bias: (1+αL)αLσ̃/√D_in", 1.0, b),), _atol(scale) + 2 * m.tol)]


def check_second_moment_lemma(m: Moments, phi: float) -> list[Check]:
    """Second-moment lemma, per task: ``E‖∇̃f_i(w − α∇̃f_i(w, D_in), D_o)‖² ≤
    (1 + 1/φ)‖∇f_i(u_i)‖² + (1 + φ)α²L²σ̃²/D_in + σ̃²/D_o`` (THEORY.md §3)."""
    h, c = m.hyper, m.c
    label = f"second-moment lemma, φ = {_fmt_const(phi)}"
    out = []
    for i in range(m.family.M):
        lhs = float(np.trace(m.Evv[i]))
        b = bounds.second_moment_inner(grad_norm_at_inner_point=float(np.linalg.norm(m.grad_u[i])), alpha=h.alpha, L=c["L"], sigma_tilde=c["sigma_tilde"], D_in=h.D_in, D_o=h.D_o, phi=phi)
        out.append(Check(label, "THEORY.md §3, second-moment lemma", "upper", lhs, b,
                         ((label, 1.0, b),), _atol(lhs) + _sq_atol(math.sqrt(max(lhs, 0.0)), m.tol) + m.tol2,
                         task=i))
    return out


def check_smoothness(family: TaskFamily, w, u, alpha: float) -> list[Check]:
    """Smoothness lemma of F (THEORY.md §3, needs ``α ≤ 1/L``), both forms:
    ``‖∇F(w) − ∇F(u)‖ ≤ (4L + 2ρα min{E_i‖∇f_i(w)‖, E_i‖∇f_i(u)‖})‖w − u‖`` and
    ``|F(u) − F(w) − ∇F(w)ᵀ(u − w)| ≤ (L(w)/2)‖u − w‖²``."""
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
    first = Check("smoothness lemma", "THEORY.md §3, smoothness lemma of F (Lipschitz form)", "upper",
                  float(np.linalg.norm(gw - gu)), lip, parts,
                  _atol(np.linalg.norm(gw) + np.linalg.norm(gu)) + _grad_tol(family, w, alpha)
                  + _grad_tol(family, u, alpha))
    Fw, Fu = float(F(family, w, alpha)), float(F(family, u, alpha))
    lin = float(gw @ (u - w))
    Lw = float(local_L(family, w, alpha, L, rho))
    quad = 0.5 * Lw * dist ** 2
    parts = (("Taylor form: 4L", lit.SMOOTH_L_FACTOR, 0.5 * lit.SMOOTH_L_FACTOR * L * dist ** 2),
             ("Taylor form: 2ρα·E‖∇f_i(w)‖", lit.SMOOTH_RHO_FACTOR,
              0.5 * lit.SMOOTH_RHO_FACTOR * rho * alpha * mw * dist ** 2))
    second = Check("smoothness lemma (Taylor form)", "THEORY.md §3, smoothness lemma of F (quadratic form)",
                   "upper", abs(Fu - Fw - lin), quad, parts,
                   _atol(abs(Fw) + abs(Fu) + abs(lin)) + _grad_tol(family, w, alpha) * dist)
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
    counts, _ = _multisets(family.M, hyper.B_prime)
    logp = gammaln(hyper.B_prime + 1) - gammaln(counts + 1).sum(1) + counts @ np.log(family.p)
    norms = np.linalg.norm(family.grad(w[None, :], np.arange(family.M)), axis=-1)
    Lt = (lit.SMOOTH_L_FACTOR * L
          + lit.SMOOTH_RHO_FACTOR * rho * hyper.alpha * (counts @ norms) / hyper.B_prime)
    return Lt, np.exp(logp)


def check_step_size(family: TaskFamily, w, hyper: Hyper, n: int = MC_SAMPLES, seed: int = 0) -> list[Check]:
    """Step-size lemma (THEORY.md §3) with ``B′``, ``D_β`` at the theorem's
    minimum (``Hyper.resolved``): ``E[1/L̃] ≥ 0.8/L(w)`` and
    ``E[1/L̃²] ≤ 3.125/L(w)²``.

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
        m1, m2, hw1, hw2, exact = float(prob @ (1 / Lt)), float(prob @ (1 / Lt ** 2)), 0.0, 0.0, True
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
    return [Check("step size E[1/L̃]", "THEORY.md §3, step-size lemma", "lower", m1, lo,
                  (("step size: 0.8/L(w)", lit.INV_LT_MEAN_LOWER, lo),), hw1 + _atol(R), exact=exact, note=note),
            Check("step size E[1/L̃²]", "THEORY.md §3, step-size lemma", "upper", m2, hi,
                  (("step size: 3.125/L(w)²", lit.INV_LT_SQ_UPPER, hi),), hw2 + _atol(R ** 2), exact=exact,
                  note=note)]


def check_fomaml_bias(m: Moments) -> list[Check]:
    """FO-MAML: ``‖E[G^FO(w)] − ∇F(w)‖ ≤ αL E_i‖∇f_i(u_i)‖ + αLσ̃/√D_in``
    (``theory.bounds.fomaml_dropped_term``, THEORY.md §5; needs A2 only)."""
    h = m.hyper
    g = float(m.family.p @ np.linalg.norm(m.grad_u, axis=-1))
    b = bounds.fomaml_dropped_term(alpha=h.alpha, L=m.c["L"], sigma_tilde=m.c["sigma_tilde"], D_in=h.D_in, mean_inner_grad_norm=g)
    scale = float(m.family.p @ np.linalg.norm(m.Ev, axis=-1)) + np.linalg.norm(m.grad_F)
    return [Check("FO-MAML bias", "THEORY.md §5, dropped Hessian term", "upper",
                  float(np.linalg.norm(m.EG_fo - m.grad_F)), b,
                  (("FO-MAML bias: αL·E‖∇f_i(u_i)‖ + αLσ̃/√D_in", 1.0, b),), _atol(scale) + 2 * m.tol)]


def check_hf_difference(family: TaskFamily, w, hyper: Hyper) -> list[Check]:
    """HF-MAML, per task: ``‖[∇f_i(w + δv) − ∇f_i(w − δv)]/(2δ) − ∇²f_i(w)v‖ ≤ ρδ‖v‖²/2``
    for the expected (exact) gradient difference, with ``v = ∇f_i(w − α∇f_i(w))``
    and ``δ = min{1/(6ρα‖v‖), cap}`` (THEORY.md §6, ``theory.bounds.hf_fd_error``)."""
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
        out.append(Check("HF-MAML difference", "THEORY.md §6, central-difference error", "upper", lhs, b,
                         (("HF-MAML difference error ρδ‖v‖²/2", 1.0, b),), _atol(scale), task=i))
    return out


def all_checks(case: Case, mc_seed: int = 0, mc_samples: int = MC_SAMPLES) -> list[Check]:
    """Every check of this module on one case (the smoothness lemma needs ``case.u``)."""
    m = moments(case.family, case.w, case.hyper)
    out = (check_first_moment(m) + check_second_moment(m) + check_bias(m) + check_maml_bias(m)
           + [c for phi in PHIS for c in check_second_moment_lemma(m, phi)]
           + check_fomaml_bias(m) + check_hf_difference(case.family, case.w, case.hyper)
           + check_step_size(case.family, case.w, case.hyper, mc_samples, mc_seed))
    if case.u is not None:
        out += check_smoothness(case.family, case.w, case.u, case.hyper.alpha)
    return out


# =============================================================================
# The report
# =============================================================================
def draw_report_case(index: int, root: int = ROOT_SEED) -> Case:
    """Draw ``index`` of the report: a MAML-theorem case with a pair, from
    ``SeedSequence([root, index])`` (redrawn on rejection), so the first ``n``
    draws are the same whatever the total."""
    for attempt in itertools.count():
        src = NumpySource(np.random.SeedSequence([root, index, attempt]))
        try:
            return draw_case(src, "maml", pair=True)
        except Rejected:
            continue
    raise AssertionError("unreachable")


def compute(examples: int, root: int = ROOT_SEED, mc_samples: int = MC_SAMPLES) -> pd.DataFrame:
    """The tidy slack table: one row per draw × constant, the instance's
    parameters in columns.  Deterministic in ``(examples, root, mc_samples)``."""
    rows = []
    for k in range(examples):
        case = draw_report_case(k, root)
        desc = case.describe()
        for chk in all_checks(case, mc_seed=k, mc_samples=mc_samples):
            for r in chk.slack():
                rows.append({"draw": k, "property": chk.prop, "reference": chk.ref, "kind": chk.kind,
                             **r, "measured": chk.lhs, "bound": chk.bound, "holds": chk.holds,
                             "exact": chk.exact, "allowance": chk.atol, "task": chk.task, **desc})
    return pd.DataFrame(rows)


# report order of the properties (the order of ``all_checks``)
PROPERTIES = ("(7)", "(8)", "bias lemma", "MAML bias", *(f"second-moment lemma, φ = {_fmt_const(p)}" for p in PHIS),
              "FO-MAML bias", "HF-MAML difference", "step size E[1/L̃]", "step size E[1/L̃²]",
              "smoothness lemma", "smoothness lemma (Taylor form)")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per constant, in report order: stated value, tightest ratio (with its
    draw and instance), median ratio, draws that informed it, and draws on
    which the bound was violated."""
    out = []
    for (prop, const), g in table.groupby(["property", "constant"], sort=False):
        t = g.loc[g["ratio"].idxmin()]
        fam_cols = [c for c in g.columns if c not in _NON_INSTANCE and pd.notna(t[c])]
        out.append({"property": prop, "constant": const, "term": int(t["term"]), "stated": g["stated"].iloc[0],
                    "reference": t["reference"], "tightest_ratio": float(t["ratio"]),
                    "median_ratio": float(g["ratio"].median()), "draws": int(g["draw"].nunique()),
                    "violations": int(g.loc[~g["holds"].astype(bool), "draw"].nunique()),
                    "exact": bool(g["exact"].all()), "tightest_draw": int(t["draw"]), "family": t["family"],
                    "instance": ", ".join(f"{c}={_short(t[c])}" for c in fam_cols if c != "family")})
    s = pd.DataFrame(out)
    rank = {p: k for k, p in enumerate(PROPERTIES)}
    s["_order"] = [rank.get(p, len(rank)) for p in s["property"]]
    return s.sort_values(["_order", "term"], kind="stable").drop(columns="_order").reset_index(drop=True)


_NON_INSTANCE = {"draw", "property", "reference", "kind", "constant", "term", "stated", "needed", "ratio",
                 "measured", "bound", "holds", "exact", "allowance", "task", "w"}


def _short(x) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{x:.4g}"
    return str(x)


def _ratio_text(r: float) -> str:
    if not np.isfinite(r):
        return "∞"
    return f"{r:.3f}" if r < 10 else f"{r:.3g}"


def plot(table: pd.DataFrame, outdir) -> list[Path]:
    """Horizontal bars: the tightest ratio right/left over all draws for each
    constant (log scale; 1 = tight, below 1 = violated), the median as a dot;
    hatched bars: the other terms sufficed on every draw (ratio ∞)."""
    s = summary(table).iloc[::-1].reset_index(drop=True)
    fig, ax = style.figure(figsize=(9.0, 0.3 * len(s) + 1.5))
    y = np.arange(len(s))
    tight, med = s["tightest_ratio"].to_numpy(), s["median_ratio"].to_numpy()
    finite = np.concatenate([tight[np.isfinite(tight)], med[np.isfinite(med)], [1.0]])
    cap = float(finite.max()) * 4
    whole = s["constant"].str.endswith("whole bound").to_numpy()
    for yi, r, wh in zip(y, tight, whole):
        inf = not np.isfinite(r)
        color = style.BOUND if r < 1 else (style.ALT[4] if wh else style.MEASURED)
        ax.barh(yi, cap if inf else r, color=color, alpha=0.35 if inf else 0.85, height=0.62,
                hatch="//" if inf else None, edgecolor=color, lw=0)
    ok = np.isfinite(med)
    ax.plot(med[ok], y[ok], "o", color=style.ALT[1], ms=4.5, zorder=3)
    ax.axvline(1.0, color=style.BOUND, ls="--", lw=1.4)
    ax.set_xscale("log")
    lo = float(min(0.5, np.nanmin(np.where(np.isfinite(tight), tight, np.inf)) * 0.7))
    ax.set_xlim(lo, cap * 1.5)
    ax.set_ylim(-0.7, len(s) - 0.3)
    ax.set_yticks(y)
    ax.set_yticklabels([c if (st == 1 or c.endswith("whole bound")) else f"{c}   [{_fmt_const(st)}]"
                        for c, st in zip(s["constant"], s["stated"])], fontsize=7.5)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y)
    right.set_yticklabels([f"{_ratio_text(t)}  (median {_ratio_text(m)})" for t, m in zip(tight, med)],
                          fontsize=7.5)
    right.tick_params(length=0)
    right.grid(False)
    right.spines["right"].set_visible(False)
    ax.set_xlabel("ratio right/left = stated constant / constant that sufficed (log scale)")
    ax.set_title(f"Slack of each constant: tightest of {int(table['draw'].nunique())} draws "
                 "inside the MAML theorem's conditions", fontsize=10)
    handles = [
        matplotlib.patches.Patch(color=style.MEASURED, alpha=0.85, label="tightest draw, one constant"),
        matplotlib.patches.Patch(color=style.ALT[4], alpha=0.85, label="tightest draw, whole bound"),
        matplotlib.patches.Patch(facecolor=style.MEASURED, alpha=0.35, hatch="//",
                                 label="∞: other terms sufficed on every draw"),
        matplotlib.lines.Line2D([], [], color=style.ALT[1], marker="o", ls="", label="median over draws"),
        matplotlib.lines.Line2D([], [], color=style.BOUND, ls="--", label="ratio 1: bound tight (below: violated)"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.45, -0.6 / (0.3 * len(s) + 1.5) - 0.02),
              ncol=2, fontsize=7.5)
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.grid(False, axis="y")
    return style.save(fig, Path(outdir), NAME)


def markdown(table: pd.DataFrame, figures: list[Path], report_dir: Path) -> str:
    """The report section: the figure and one row per constant."""
    s = summary(table)
    out = [f"## {TITLE}", "",
           f"{int(table['draw'].nunique())} draws (family × parameters × point × hyperparameters inside the "
           "MAML theorem's conditions), `python -m mamlcheck slack`.  *ratio* = stated constant / the "
           "constant that would have sufficed with the other terms as stated (for the lower bound 0.8 the "
           "other way round): 1 = tight, below 1 = violated, ∞ = the other terms suffice on every draw.  "
           "Left sides are exact except the step-size lemma (Monte Carlo, "
           f"{MC_SAMPLES} draws of L̃, empirical-Bernstein allowance at false-alarm rate {MC_DELTA:g}).", ""]
    for f in figures:
        if Path(f).suffix == ".png":
            p = Path(f).resolve()
            rel = p.relative_to(report_dir.resolve()) if p.is_relative_to(report_dir.resolve()) else p
            out += [f"![{TITLE}]({rel})", ""]
    out += ["| constant | stated | tightest ratio | median ratio | draws violated | tightest on |",
            "|---|---|---|---|---|---|"]
    for _, r in s.iterrows():
        t = table[table["draw"] == r["tightest_draw"]].iloc[0]
        out.append(f"| {r['constant']} | {_fmt_const(r['stated'])} | {_ratio_text(r['tightest_ratio'])} | "
                   f"{_ratio_text(r['median_ratio'])} | {r['violations']}/{r['draws']} | "
                   f"draw {r['tightest_draw']}: {r['family']}, d={int(t['d'])}, M={int(t['M'])}, "
                   f"αL={t['alpha_L']:.3g}, D_in={int(t['D_in'])} |")
    out.append("")
    return "\n".join(out)


def run(examples: int, results: Path, figures: Path, root: int = ROOT_SEED) -> tuple[pd.DataFrame, list[Path]]:
    table = compute(examples, root)
    results.mkdir(parents=True, exist_ok=True)
    table.to_csv(results / f"{NAME}.csv", index=False)
    return table, plot(table, figures)


def reproduce(scale: str = "default", results: Path = Path("results"), figures: Path = Path("figures")) -> str:
    """The slack section of ``figures/REPORT.md`` (``run-all`` calls this);
    writes ``results/slack.csv`` and ``figures/slack.png``/``.svg``."""
    if scale not in SCALE_EXAMPLES:
        raise ValueError(f"scale must be one of {tuple(SCALE_EXAMPLES)}, got {scale!r}")
    results, figures = Path(results), Path(figures)
    table, figs = run(SCALE_EXAMPLES[scale], results, figures)
    return markdown(table, figs, figures)


def configure(p) -> None:
    p.add_argument("--examples", type=int, default=SCALE_EXAMPLES["default"], help="number of draws")
    p.add_argument("--out-dir", default="figures", help="folder for the figure")
    p.add_argument("--results", default="results", help="folder for slack.csv")


def main(args) -> int:
    if args.examples < 1:
        raise ValueError(f"--examples must be >= 1, got {args.examples}")
    t0 = time.monotonic()
    table, figs = run(args.examples, Path(args.results), Path(args.out_dir))
    s = summary(table)
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(s[["constant", "stated", "tightest_ratio", "median_ratio", "violations", "draws", "family"]]
              .to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(f"wrote {Path(args.results) / (NAME + '.csv')} and {', '.join(map(str, figs))} "
          f"({time.monotonic() - t0:.1f}s)")
    return 0
