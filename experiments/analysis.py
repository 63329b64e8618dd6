"""Small analysis helpers shared by the experiments: fitted slopes with
confidence intervals, a stationary point of the exact objective, and the
run's standing against its theorem's conditions."""
from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.optimize import minimize

from mamlcheck.algorithms.objective import F, grad_F
from mamlcheck.theory.conditions import broken, check_conditions

__all__ = ["CI", "fit_line", "loglog_slope", "stationary_point", "broken_names", "conditions_note"]

CI = 0.95   # level of every fitted interval in the report


def fit_line(x, y, level: float = CI) -> dict:
    """Least squares ``y ≈ intercept + slope·x`` with a two-sided t-interval of
    the slope (``n − 2`` degrees of freedom; NaN interval below three points)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.size
    fit = stats.linregress(x, y)
    half = (stats.t.ppf(0.5 + level / 2, n - 2) * fit.stderr) if n >= 3 else np.nan
    return {"slope": float(fit.slope), "lo": float(fit.slope - half), "hi": float(fit.slope + half),
            "stderr": float(fit.stderr) if n >= 3 else np.nan, "intercept": float(fit.intercept),
            "r2": float(fit.rvalue ** 2), "n": n}


def loglog_slope(x, y, level: float = CI) -> tuple[float, float, float]:
    """Slope of ``log y`` on ``log x`` and its ``level`` interval: the exponent of a power law."""
    f = fit_line(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), level)
    return f["slope"], f["lo"], f["hi"]


def stationary_point(family, alpha: float, w0=None) -> np.ndarray:
    """A stationary point of the exact MAML objective (1), by BFGS on ``F`` with
    the exact ``∇F`` (5), from ``w0`` (zeros by default)."""
    w0 = np.zeros(family.d) if w0 is None else np.asarray(w0, float)
    res = minimize(lambda w: float(F(family, w, alpha)), w0, jac=lambda w: grad_F(family, w, alpha),
                   method="BFGS", options={"gtol": 1e-12, "maxiter": 10_000})
    return res.x


def broken_names(constants, hyper) -> str:
    """The broken conditions of the run's theorem, joined by ``;`` (``none`` if none)."""
    return ";".join(broken(check_conditions(constants, hyper))) or "none"


def conditions_note(constants, hyper) -> dict:
    """``conditions_hold`` and ``broken`` (``broken_names``) of the run's theorem."""
    names = broken_names(constants, hyper)
    return {"conditions_hold": names == "none", "broken": names}
