"""Hypothesis strategies for the property tests (DESIGN.md style note 7).

The samplers, and with them the parameter ranges, live in
``experiments.slack_draws`` (written against two primitive draws, ``integer``
and ``real``); this module runs them on hypothesis' draws, so the tests and the
slack report draw from one definition.  Profiles: ``tests/conftest.py``
(``ci`` by default, ``thorough`` for ``make test-thorough``).

Strategies:

* ``instances(names=None)``: ``(name, params, family)`` for every registered
  family (``problems.FAMILIES``) over its parameter ranges (dimension, number
  of tasks, task weights ``p``, noise levels, ...; small sizes).
* ``families(names=None)``: the ``TaskFamily`` alone.
* ``points(family, alpha=None)``: a point ``w``: near the tasks, far from them
  (where ``L(w)`` is large), where the family's exact constants are attained
  (capability ``attaining_points``: cosine-quadratic's lattice of ``σ̃``,
  ``σ_H``), or, given ``alpha``, a local minimiser of ``F``.
* ``pairs(family, alpha=None)``: ``(w, u)`` for the smoothness lemma.
* ``constants()``: abstract constants ``{L, rho, sigma, sigma_tilde, sigma_H}``.
* ``hypers(constants, algorithm="maml", broken=None)``: an
  ``algorithms.hyper.Hyper`` satisfying every condition of ``algorithm``'s
  theorem (``theory.conditions.check_conditions``), or breaking exactly the
  condition named ``broken`` (one of ``BREAKABLE``; examples where these
  constants do not allow it are rejected, see ``breakable``).
* ``cases(algorithm="maml", broken=None, names=None, pair=False)``: a
  ``Case`` (family, its name and parameters, ``w``, hyper, optional ``u``).

Also exported: ``BREAKABLE``, ``breakable(constants, algorithm)``, ``Case``,
``family_names()``.
"""
from __future__ import annotations

from hypothesis import reject, strategies as st

from mamlcheck.experiments.slack_draws import (BREAKABLE, Case, Source, breakable, draw_case, draw_constants,
                                              draw_family, draw_hyper, draw_pair, draw_point, family_names)

__all__ = ["instances", "families", "points", "pairs", "constants", "hypers", "cases",
           "BREAKABLE", "breakable", "Case", "family_names"]


class _Draws(Source):
    """The samplers' primitive draws, taken from hypothesis (so examples shrink)."""

    def __init__(self, draw):
        self._draw = draw

    def integer(self, lo, hi):
        return self._draw(st.integers(lo, hi))

    def real(self, lo, hi):
        return self._draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))

    def reject(self):
        reject()


def instances(names=None):
    """``(name, params, family)``; ``names`` restricts the registered families."""
    return st.composite(lambda draw: draw_family(_Draws(draw), names))()


def families(names=None):
    """A ``TaskFamily`` instance."""
    return instances(names).map(lambda t: t[2])


def points(family, alpha=None):
    """A point ``w`` of shape ``(family.d,)``."""
    return st.composite(lambda draw: draw_point(_Draws(draw), family, alpha))()


def pairs(family, alpha=None):
    """``(w, u)``: a point and a second one near it."""
    @st.composite
    def _pairs(draw):
        src = _Draws(draw)
        w = draw_point(src, family, alpha)
        return w, draw_pair(src, family, w)
    return _pairs()


def constants():
    """Abstract constants over ``10⁻²–10²`` (``ρ, σ, σ̃, σ_H`` sometimes 0)."""
    return st.composite(lambda draw: draw_constants(_Draws(draw)))()


def hypers(constants, algorithm="maml", broken=None):
    """``Hyper`` inside ``algorithm``'s theorem on ``constants`` (a
    ``Constants`` record or a mapping), or breaking exactly ``broken``."""
    return st.composite(lambda draw: draw_hyper(_Draws(draw), constants, algorithm, broken))()


def cases(algorithm="maml", broken=None, names=None, pair=False):
    """A ``Case``: family, hyperparameters as in ``hypers``, point(s)."""
    return st.composite(lambda draw: draw_case(_Draws(draw), algorithm, broken, names, pair))()
