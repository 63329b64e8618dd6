"""The exact meta-gradients a MAML implementation is checked against, and the
wrong variants that name its bug.

Setting: one task ``i`` of a family, initial parameters ``w``, inner step
``α``, ``N`` inner steps, an inner batch ``D_in`` (used for every inner step,
as MAML libraries do, or one batch per step) and an outer batch ``D_o``;
``None`` for a batch means the task's exact loss ``f_i`` (an infinite batch).
With ``u⁰ = w`` and ``u^{j+1} = u^j − α∇̃f_i(u^j, D_in^j)``,

    G_i = Π_{j=0}^{N−1} (I − α∇̃²f_i(u^j, D_in^j)) ∇̃f_i(u^N, D_o),

the factor of ``u^{N−1}`` applied first.  At ``N = 1`` this is the stochastic
MAML estimate of Fallah, Mokhtari & Ozdaglar (AISTATS 2020), equation (6),
with the Hessian batch equal to the inner batch, as reverse-mode automatic
differentiation of the inner-step composed loss computes it; with exact
batches it is task ``i``'s term of ``∇F`` (5); for ``N > 1`` it is the N-step
meta-gradient of Ji, Yang & Liang (JMLR 2022), THEORY.md §9 (D0).  FO-MAML
(Finn, Abbeel & Levine, ICML 2017, §2.2; Fallah et al. §4.1) drops the
product: ``∇̃f_i(u^N, D_o)``.

Everything here is built from the family's NumPy oracles (``batch_grad``,
``batch_hvp``, or ``grad``/``hvp`` for exact batches), never from the
framework under test.  ``VARIANTS`` lists the ways an implementation goes
wrong, each as the quantity it computes instead, so that ``diagnose`` can say
which bug an output matches.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import numpy as np

__all__ = ["Case", "adapted_points", "meta_gradient", "Variant", "variants", "expected_variant"]

Batch = Mapping[str, np.ndarray] | None


class Case(NamedTuple):
    """One comparison: task ``i`` at ``w`` with these batches (``None``: exact)."""

    i: int
    w: np.ndarray
    inner: Batch
    outer: Batch


def _grad(fam, x, i, batch):
    return fam.grad(x, i) if batch is None else fam.batch_grad(x, i, batch)


def _hvp(fam, x, i, v, batch):
    return fam.hvp(x, i, v) if batch is None else fam.batch_hvp(x, i, v, batch)


def _per_step(inner, steps: int) -> list:
    """The inner batch of each step: one batch reused, or a sequence of ``steps``."""
    if isinstance(inner, (list, tuple)):
        if len(inner) != steps:
            raise ValueError(f"{len(inner)} inner batches for {steps} inner steps")
        return list(inner)
    return [inner] * steps


def adapted_points(fam, i: int, w, alpha: float, inner, steps: int, *, sign: float = 1.0) -> list[np.ndarray]:
    """``u⁰ = w, …, u^N`` with ``u^{j+1} = u^j − sign·α∇̃f_i(u^j, D_in^j)`` (inner step (2))."""
    u = [np.asarray(w, dtype=float)]
    for batch in _per_step(inner, steps):
        u.append(u[-1] - sign * alpha * _grad(fam, u[-1], i, batch))
    return u


def meta_gradient(fam, i: int, w, alpha: float, inner, outer, steps: int = 1, *, first_order: bool = False,
                  hess_alpha: float | None = None, hess_at_adapted: bool = False, sign: float = 1.0) -> np.ndarray:
    """``G_i`` of the module docstring (``first_order``: FO-MAML's ``∇̃f_i(u^N, D_o)``).

    The keywords build the wrong variants: ``hess_alpha`` replaces ``α`` in the
    factors ``I − α∇̃²f``; ``hess_at_adapted`` evaluates every factor at ``u^N``;
    ``sign = −1`` makes the inner step ascend.
    """
    inner_batches = _per_step(inner, steps)
    u = adapted_points(fam, i, w, alpha, inner_batches, steps, sign=sign)
    v = _grad(fam, u[-1], i, outer)
    if first_order:
        return v
    a = alpha if hess_alpha is None else hess_alpha
    for j in reversed(range(steps)):                  # the factor of u^{N−1} first
        x = u[-1] if hess_at_adapted else u[j]
        v = v - sign * a * _hvp(fam, x, i, v, inner_batches[j])
    return v


class Variant(NamedTuple):
    """A quantity an implementation may compute: ``compute(fam, case, alpha, steps)``;
    ``diagnosis``: what it means when an implementation matches it instead of the
    expected one."""

    name: str
    diagnosis: str
    compute: Callable[..., np.ndarray]


def _mg(*, inner_from: str = "inner", outer_from: str = "outer", extra_steps: int = 0, first_order: bool,
        hess_alpha: Callable[[float], float] | None = None, hess_at_adapted: bool = False, sign: float = 1.0):
    """A variant of ``meta_gradient`` on the case's batches (``inner_from``/
    ``outer_from`` pick which batch each loop uses)."""
    def compute(fam, case: Case, alpha, steps):
        batch = {"inner": case.inner, "outer": case.outer}
        return meta_gradient(fam, case.i, case.w, alpha, batch[inner_from], batch[outer_from], steps + extra_steps,
                             first_order=first_order, hess_alpha=None if hess_alpha is None else hess_alpha(alpha),
                             hess_at_adapted=hess_at_adapted, sign=sign)
    return compute


def _scaled(factor: Callable[[float], float], first_order: bool):
    def compute(fam, case: Case, alpha, steps):
        return factor(alpha) * meta_gradient(fam, case.i, case.w, alpha, case.inner, case.outer, steps,
                                             first_order=first_order)
    return compute


def _alpha_twice(first_order: bool):
    def compute(fam, case: Case, alpha, steps):
        return meta_gradient(fam, case.i, case.w, alpha * alpha, case.inner, case.outer, steps,
                             first_order=first_order)
    return compute


def variants(first_order: bool) -> dict[str, Variant]:
    """The expected quantity (``"maml"`` or ``"first_order"``, by the mode the
    implementation claims) and every wrong one, for an implementation run in
    that mode."""
    fo = first_order
    out = [
        Variant("maml", "computes second-order MAML although run in first-order mode", _mg(first_order=False)),
        Variant("first_order", "matches FO-MAML, not MAML: second-order term missing", _mg(first_order=True)),
        Variant("zero", "meta-gradient does not reach the initial parameters (it is zero)",
                _scaled(lambda a: 0.0, fo)),
        Variant("inner_on_outer", "inner step uses the outer batch", _mg(inner_from="outer", first_order=fo)),
        Variant("outer_on_inner", "outer loss uses the inner batch", _mg(outer_from="inner", first_order=fo)),
        Variant("alpha_twice", "α applied twice: the inner step is α²∇f", _alpha_twice(fo)),
        Variant("scaled_by_alpha", "off by the factor α: the meta-gradient is multiplied by α",
                _scaled(lambda a: a, fo)),
        Variant("hessian_without_alpha", "off by the factor α in the second-order term: (I − ∇²f) for (I − α∇²f)",
                _mg(hess_alpha=lambda a: 1.0, first_order=False)),
        Variant("ascent", "the inner step ascends: w + α∇f", _mg(sign=-1.0, first_order=fo)),
        Variant("hessian_at_adapted", "second-order term evaluated at the adapted parameters, not along the "
                "inner trajectory", _mg(hess_at_adapted=True, first_order=False)),
        Variant("steps_minus_one", "one inner step too few", _mg(extra_steps=-1, first_order=fo)),
        Variant("steps_plus_one", "one inner step too many", _mg(extra_steps=1, first_order=fo)),
    ]
    return {v.name: v for v in out}


def expected_variant(first_order: bool) -> str:
    """The name of the variant a correct implementation in this mode computes."""
    return "first_order" if first_order else "maml"
