"""Central finite differences with a tolerance set by the scheme's order.

The central difference ``(f(x + h e) − f(x − h e)) / 2h`` has truncation error
``h² |f'''| / 6`` and rounding error about ``ε_mach |f| / h``; with
``h = ε_mach^{1/3} ≈ 6e-6`` both are ``O(ε_mach^{2/3}) ≈ 4e-11`` times the
size of the function and its third derivative.  ``fd_tolerance`` allows
``1e-6`` times that scale (four orders of magnitude of headroom for third
derivatives up to ~1e3 larger than the function), while a wrong derivative
(a dropped or sign-flipped term) is off by O(1) relative and is caught.
"""
from __future__ import annotations

import numpy as np

H = np.finfo(float).eps ** (1.0 / 3.0)


def fd_jacobian(fun, x: np.ndarray, h: float = H) -> np.ndarray:
    """Jacobian of ``fun: R^d -> R^m`` (or scalar) at ``x`` by central differences:
    shape ``fun(x).shape + (d,)``."""
    x = np.asarray(x, dtype=float)
    d = x.shape[-1]
    steps = h * max(1.0, float(np.abs(x).max()))
    cols = []
    for j in range(d):
        e = np.zeros(d)
        e[j] = steps
        cols.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2 * steps))
    return np.stack(cols, axis=-1)


def fd_tolerance(*scales: np.ndarray) -> float:
    """Absolute tolerance for a central-difference check (module docstring)."""
    s = max([1.0] + [float(np.max(np.abs(a))) for a in scales])
    return 1e-6 * s
