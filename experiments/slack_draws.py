"""The draws of the slack report and of the property tests: families,
points, constants and hyperparameters (``experiments.slack``).

The samplers are written against two primitive draws, ``integer`` and
``real`` (``Source``), so that a numpy generator (``NumpySource``, the slack
report) and hypothesis (``tests/strategies.py``, the property tests) drive the
same code and draw from one definition of the parameter ranges.  Nothing here
knows a family by name except ``FAMILY_SPECS``, the parameter ranges of each
registered family; points use the families' declared capabilities
(``problems.base.CAPABILITIES``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import minimize

from mamlcheck.algorithms.estimators import ALGORITHMS
from mamlcheck import literature as lit
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F, grad_F
from mamlcheck.problems import FAMILIES, make_family
from mamlcheck.problems.base import Constants, TaskFamily
from mamlcheck.theory import bounds
from mamlcheck.theory.conditions import THEOREM_B_MIN, broken as broken_names
from mamlcheck.theory.conditions import check_conditions

__all__ = [
    "Source", "NumpySource", "Rejected", "FAMILY_SPECS", "NOT_DRAWN", "family_names", "draw_family", "centre_and_length",
    "draw_point", "draw_pair", "draw_constants", "breakable", "draw_hyper", "Case", "draw_case", "BREAKABLE",
]


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
#: registered families the property tests do not draw, and why
NOT_DRAWN = {
    "sinusoid-mlp": "no exact laws of the stochastic steps (inner_mean, outer_second, hess_factor) and constants "
                    "certified on a ball only; tested by tests/test_sinusoid_mlp.py and check_family",
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


def centre_and_length(family: TaskFamily) -> tuple[np.ndarray, float]:
    """Where the tasks sit and their length scale, for drawing points: the
    family's own (capability ``centre_and_length``), else the origin and 1."""
    if family.offers("centre_and_length"):
        return family.centre_and_length()
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


def _local_search_reaches_minimisers(family: TaskFamily) -> bool:
    """Whether a local search from a drawn point may end at a stationary point
    of ``F``: not on a zero-respecting lower-bound chain (capability
    ``progress``), built so that gradient methods need ``∝ 1/ε²`` steps."""
    return not family.offers("progress")


def draw_point(src: Source, family: TaskFamily, alpha: float | None = None) -> np.ndarray:
    """A point ``w``: near the tasks (``10⁻³–1`` length scales away), far from
    them (``1–10³``, where ``L(w)`` is large for families with growing
    gradients), where the family's exact constants are attained (capability
    ``attaining_points``, indexed by ``k ∈ {−8..8}^d``; on cosine-quadratic the
    lattice ``w_j ∈ (π/2ω)ℤ`` of ``σ̃`` and ``σ_H``), and, given ``alpha``, a
    local minimiser of ``F`` (where ``∇F ≈ 0`` and the bias terms of (7) matter
    most; see ``_local_search_reaches_minimisers``)."""
    centre, length = centre_and_length(family)
    kinds = ["near", "far"] + (["attaining"] if family.offers("attaining_points") else [])
    if alpha is not None and _local_search_reaches_minimisers(family):
        kinds.append("stationary")
    kind = src.choice(kinds)
    if kind == "attaining":
        k = np.array([src.integer(-8, 8) for _ in range(family.d)], dtype=float)
        return family.attaining_points(k)
    r = length * (src.log_real(1e-3, 1.0) if kind in ("near", "stationary") else src.log_real(1.0, 1e3))
    w = centre + r * _unit(src.vector(family.d))
    return _stationary(family, w, alpha) if kind == "stationary" else w


def draw_pair(src: Source, family: TaskFamily, w: np.ndarray) -> np.ndarray:
    """A second point ``u`` at distance ``10⁻³–3`` times the length scale plus
    a hundredth of ``w``'s distance from the tasks (so that rounding in
    ``F(w)`` stays far below the smoothness lemma's quadratic term)."""
    centre, length = centre_and_length(family)
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
    b_min = THEOREM_B_MIN.get(algorithm, 1)
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
    if not ALGORITHMS[algorithm].exact:
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
