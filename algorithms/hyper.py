"""Hyperparameters of one run, validated once (THEORY.md §1, §3–§6).

``Hyper`` is the single record of everything an outer step needs.  Invalid
values raise ``ValueError`` naming the parameter; values that are valid but
break a theorem's conditions are *allowed* (they are experiments too) and are
reported by ``theory.conditions``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from mamlcheck.problems.base import Constants, check_count, check_positive
from mamlcheck import literature as lit
from mamlcheck.theory.bounds import B_prime_min, D_beta_min
from mamlcheck.theory.multistep import MULTISTEP, STEP_C_N

from .estimators import ALGORITHMS as _ESTIMATORS

__all__ = ["Hyper", "ALGORITHMS", "STEP_RULES", "STEP_C_BY_THEOREM"]

ALGORITHMS = tuple(_ESTIMATORS)      # the registered algorithms' names
STEP_RULES = ("adaptive", "constant")
#: c of β_k = 1/(c·L̃) per theorem
STEP_C_BY_THEOREM = {**lit.STEP_C, MULTISTEP: STEP_C_N}


@dataclass(frozen=True)
class Hyper:
    """One run's hyperparameters.

    Args:
        algorithm: ``maml`` (update (3)), ``fomaml`` (§5), ``hfmaml`` (§6), or
            ``exact`` (steps along the exact ``∇F``: infinite batches).
        alpha: inner step size ``α ≥ 0``.
        B: tasks per outer step (drawn i.i.d. from ``p``).
        D_in, D_o, D_h: samples in the inner, outer and Hessian batches.
        step: ``adaptive`` (``β_k = 1/(c·L̃(w_k))``, ``c`` of the run's theorem:
            ``STEP_C_BY_THEOREM``, ``Hyper.theorem``) or ``constant`` (``β_k = beta``).
        beta: the constant step (``step="constant"`` only).
        B_prime, D_beta: tasks and samples of the independent ``L̃`` estimate;
            ``None`` means the theorem's minimum for the family (§3).
        step_c: override of ``c`` in the adaptive rule (``None``: the theorem's).
        delta_cap: an upper limit on HF-MAML's ``δ``; ``None`` (the default)
            uses the theorem's ``δ = 1/(6ρα‖v‖)`` (THEORY.md §6); a cap that
            binds leaves the theorem, and ``theory.conditions`` says so.
        inner_steps: ``N``, gradient steps of the inner loop (default 1: the
            one-step MAML of Fallah, Mokhtari & Ozdaglar; ``N > 1``: the
            multi-step MAML of Ji, Yang & Liang 2022, THEORY.md §9).
    """

    algorithm: str = "maml"
    alpha: float = 0.01
    B: int = 20
    D_in: int = 1
    D_o: int = 1
    D_h: int = 1
    step: str = "adaptive"
    beta: float | None = None
    B_prime: int | None = None
    D_beta: int | None = None
    step_c: float | None = None
    delta_cap: float | None = None
    inner_steps: int = 1

    def __post_init__(self):
        if self.algorithm not in _ESTIMATORS:              # the live registry: user algorithms count
            raise ValueError(f"algorithm must be one of {tuple(_ESTIMATORS)}, got {self.algorithm!r}")
        if self.step not in STEP_RULES:
            raise ValueError(f"step must be one of {STEP_RULES}, got {self.step!r}")
        object.__setattr__(self, "alpha", check_positive("alpha", self.alpha, allow_zero=True))
        for name in ("B", "D_in", "D_o", "D_h", "inner_steps"):
            object.__setattr__(self, name, check_count(name, getattr(self, name)))
        for name in ("B_prime", "D_beta"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_count(name, getattr(self, name)))
        if self.step == "constant":
            if self.beta is None:
                raise ValueError("beta is required with step='constant'")
            object.__setattr__(self, "beta", check_positive("beta", self.beta))
        elif self.beta is not None:
            raise ValueError("beta is only used with step='constant'; use step_c to scale the adaptive rule")
        if self.step_c is not None:
            object.__setattr__(self, "step_c", check_positive("step_c", self.step_c))
        if self.step == "adaptive":
            self.c                                          # a theorem fixes c, or step_c is given
        if self.delta_cap is not None:
            object.__setattr__(self, "delta_cap", check_positive("delta_cap", self.delta_cap))

    @property
    def theorem(self) -> str | None:
        """The convergence theorem whose conditions and step rule apply: the
        algorithm's for one inner step; for ``N > 1`` the multi-step one
        (THEORY.md §9) for MAML and exact gradients, none for FO- and HF-MAML."""
        theorem = _ESTIMATORS[self.algorithm].theorem
        if self.inner_steps == 1 or theorem is None:
            return theorem
        return MULTISTEP if theorem == "maml" else None

    @property
    def c(self) -> float:
        """The adaptive rule's ``c`` in ``β_k = 1/(c·L̃(w_k))``: the theorem's
        (exact mode uses MAML's), unless ``step_c`` is given."""
        if self.step_c is not None:
            return self.step_c
        if self.theorem not in STEP_C_BY_THEOREM:
            raise ValueError(f"algorithm {self.algorithm!r} with {self.inner_steps} inner step(s) has no theorem "
                             f"that fixes c in β_k = 1/(c·L̃): give step_c, or step='constant' with beta")
        return STEP_C_BY_THEOREM[self.theorem]

    def resolved(self, constants) -> "Hyper":
        """A copy with ``B_prime`` and ``D_beta`` set to the theorem's minimum
        for ``constants`` where they were left ``None``."""
        v = constants.values() if isinstance(constants, Constants) else dict(constants)
        return replace(
            self,
            B_prime=self.B_prime or B_prime_min(rho=v["rho"], alpha=self.alpha, sigma=v["sigma"], L=v["L"]),
            D_beta=self.D_beta or D_beta_min(rho=v["rho"], alpha=self.alpha, sigma_tilde=v["sigma_tilde"], L=v["L"]),
        )

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
