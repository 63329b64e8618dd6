"""Fast samplers of the update direction, registered per (family, algorithm).

A fast sampler draws, for every seed at once, the same random quantities as
the generic construction from a family's oracles (``algorithms.steps``), *in
law*: fewer random numbers and fewer passes, other draws.  It lives here, not
in the family, because it is algorithm code (it knows MAML's, FO-MAML's and
HF-MAML's estimators); it is registered for a family class with
``@register_fast(FamilyClass)`` and says per instance and algorithm whether it
serves it (``supports``).  ``sampler(family, algorithm)`` returns the sampler
or ``None`` (then the generic path is used); a sampler is built once per
family instance, so its cached factors survive from step to step.

A sampler implements the three methods of ``FastSampler``; the contract each
must keep (equal in law to the generic path) is checked by
``mamlcheck.testing.check_family`` and ``tests/test_fast_paths.py``.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from mamlcheck.problems.base import oracles_replaced_below

__all__ = ["FastSampler", "register_fast", "sampler", "FAST", "L_TILDE"]

#: The name under which a sampler serves the norms of the step-size estimate
#: ``L̃`` (``grad_norms``), beside the algorithms whose directions it draws.
L_TILDE = "L_tilde"
#: family class -> sampler class
FAST: dict[type, type["FastSampler"]] = {}


class FastSampler:
    """The declared interface of a fast sampler (see the module docstring)."""

    #: algorithm names the sampler can serve (and ``L_TILDE`` if it has ``grad_norms``)
    ALGORITHMS: tuple[str, ...] = ()
    #: the numbers of inner steps whose directions it draws (``L_TILDE`` needs none)
    INNER_STEPS: tuple[int, ...] = (1,)

    def __init__(self, family):
        self.fam = family

    @classmethod
    def supports(cls, family, algorithm: str) -> bool:
        """Whether this sampler serves ``algorithm`` on this ``family`` instance."""
        return algorithm in cls.ALGORITHMS

    def direction(self, w, tasks, hyper, rng, delta=None) -> np.ndarray:
        """``(1/B) Σ_{i∈B_k} G_i(w)`` per seed, ``(R, d)``, for tasks ``(R, B)``."""
        raise NotImplementedError

    def step(self, w, hyper, rng, delta=None) -> tuple[np.ndarray, np.ndarray]:
        """The direction and the mean ``(1/B′) Σ_j ‖∇̃f_j(w, D_β)‖`` of the ``L̃``
        estimate on independent tasks and batches, drawn together."""
        raise NotImplementedError

    def grad_norms(self, w, tasks, n: int, rng) -> np.ndarray:
        """``‖∇̃f_j(w, D)‖`` per seed and task ``(R, B′)`` on fresh batches of ``n``."""
        raise NotImplementedError


def register_fast(family_type: type) -> Callable[[type[FastSampler]], type[FastSampler]]:
    """Class decorator: register a ``FastSampler`` for ``family_type`` (and its subclasses)."""
    def add(cls: type[FastSampler]) -> type[FastSampler]:
        if not issubclass(cls, FastSampler):
            raise TypeError(f"{cls.__name__} must subclass FastSampler")
        FAST[family_type] = cls
        _registered_for.cache_clear()
        return cls
    return add


def _registered(family) -> type[FastSampler] | None:
    """The sampler registered for the nearest class of ``family``'s MRO, unless a
    more derived class replaced one of the oracles it was written for (then
    the family's own oracles must be used: ``problems.base.oracles_replaced_below``).
    Looked up once per family class (the hot loop asks at every step)."""
    return _registered_for(type(family))


@lru_cache(maxsize=None)
def _registered_for(family_type: type) -> type[FastSampler] | None:
    for klass in family_type.__mro__:
        if klass in FAST:
            return None if oracles_replaced_below(family_type, klass) else FAST[klass]
    return None


def sampler(family, algorithm: str, inner_steps: int = 1) -> FastSampler | None:
    """The fast sampler serving ``algorithm`` with ``inner_steps`` inner steps
    on ``family``, or ``None``.  Built
    once per family (kept in the family's private ``_fast_sampler``: families
    are immutable once built, so what it caches stays valid)."""
    cls = _registered(family)
    if cls is None or not cls.supports(family, algorithm):
        return None
    if algorithm != L_TILDE and inner_steps not in cls.INNER_STEPS:
        return None
    built = family.__dict__.get("_fast_sampler")
    if type(built) is not cls:
        built = cls(family)
        family._fast_sampler = built
    return built
