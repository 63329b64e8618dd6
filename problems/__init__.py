"""Task families with certified constants, and the registry that names them.

``make_family(name, **params)`` builds a registered family; unknown names and
unknown or invalid parameters raise ``ValueError`` naming the culprit.
``family_parameters(name)`` lists a family's parameters with their defaults
(the CLI builds its options from it).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from .base import Constant, Constants, TaskFamily
from .cosine_quadratic import CosineQuadratic
from .hard_chain import HardChain
from .robust_regression import RobustRegression
from .sinusoid_mlp import SinusoidMLP

# Imported plainly: a broken family module raises its own error at import,
# never a misleading "unknown family".
FAMILIES: dict[str, Callable[..., TaskFamily]] = {
    "cosine-quadratic": CosineQuadratic,
    "hard-chain": HardChain,
    "robust-regression": RobustRegression,
    "sinusoid-mlp": SinusoidMLP,
}

__all__ = ["Constant", "Constants", "TaskFamily", "FAMILIES", "make_family", "family_parameters"]


def family_parameters(name: str) -> dict[str, Any]:
    """Parameter names of family ``name`` with their defaults."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    sig = inspect.signature(FAMILIES[name])
    return {k: v.default for k, v in sig.parameters.items()
            if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)}


def make_family(name: str, **params: Any) -> TaskFamily:
    """Build registered family ``name`` with validated ``params``."""
    allowed = family_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for family {name!r}; "
                         f"allowed: {sorted(allowed)}")
    return FAMILIES[name](**params)
