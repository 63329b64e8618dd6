"""How a bound is called, validated and compared: the machinery behind ``theory.bounds``.

``_kind`` declares a bound (its kind ``upper`` / ``lower`` / ``value``) and
gives it the calling convention of the suite: symbols by name (only the first
by position), ``constants=`` and ``hyper=`` records filling in the rest, a
``TypeError`` naming any missing or unknown symbol.  ``_num`` and friends
validate the numbers; ``holds`` and ``moment_check`` compare a measured value
with a bound (through ``theory.checks.verdict``, the one verdict logic).
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable, Mapping

import numpy as np

from mamlcheck import literature as lit
from mamlcheck.theory.checks import verdict

__all__ = ["KIND", "HYPER_FIELDS", "CONSTANT_NAMES", "moment_check", "holds"]

KIND: dict[str, str] = {}
_KINDS = ("upper", "lower", "value")
#: Fields a hyperparameter record (``algorithms.Hyper``, or anything with these
#: attributes) fills in when passed as ``hyper=``.
HYPER_FIELDS = ("algorithm", "alpha", "B", "D_in", "D_o", "D_h")
CONSTANT_NAMES = ("L", "rho", "sigma", "sigma_tilde", "sigma_H")


def constants_mapping(constants) -> dict:
    """The constants by name from a ``Constants`` record, a family (its certified
    constants) or a mapping; anything else is a ``TypeError`` naming its type."""
    if callable(getattr(constants, "constants", None)):      # a family: its certified constants
        constants = constants.constants()
    if hasattr(constants, "NAMES"):
        return constants.values()
    if isinstance(constants, Mapping):
        return dict(constants)
    raise TypeError(f"constants must be a Constants record, a family or a mapping, got {type(constants).__name__}")


def _constant_values(constants) -> dict[str, float]:
    """``constants_mapping``, refusing names that are not constants of the theory."""
    values = constants_mapping(constants)
    unknown = sorted(set(values) - set(CONSTANT_NAMES))
    if unknown:
        raise TypeError(f"constants has unknown names {unknown}; expected some of {list(CONSTANT_NAMES)}")
    return values


def _kind(kind: str) -> Callable:
    """Declare a bound: register its kind (``KIND[name]``, ``fn.kind``) and make
    its symbols keyword arguments, so that no two can be swapped silently.

    The wrapped function takes every symbol by name, except that its first
    symbol may go by position when it is ``ε`` or the measured quantity the
    bound is about (never a constant or a hyperparameter, which a record
    could also supply).  ``constants=`` (a ``Constants`` record, a family, or a
    mapping) supplies ``L, rho, sigma, sigma_tilde, sigma_H`` and ``hyper=``
    the fields ``HYPER_FIELDS`` (and ``cap`` from ``delta_cap``, ``N`` from
    ``inner_steps``) that are not
    given explicitly; an explicit keyword wins.  A missing or unknown symbol
    is a ``TypeError`` naming it.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")

    def mark(fn):
        sig = inspect.signature(fn)
        names = list(sig.parameters)
        required = [n for n, p in sig.parameters.items() if p.default is inspect.Parameter.empty]
        positional = names[0] not in (*CONSTANT_NAMES, *HYPER_FIELDS, "Delta", "cap", "delta", "T", "N")

        @functools.wraps(fn)
        def bound(*args, constants=None, hyper=None, **kw):
            if len(args) > int(positional):
                first = f"at most one positional argument ({names[0]})" if positional else "no positional argument"
                raise TypeError(f"{fn.__name__}() takes {first}; pass the symbols by name: {', '.join(names)}")
            if args:
                if names[0] in kw:
                    raise TypeError(f"{fn.__name__}() got {names[0]} both by position and by name")
                kw[names[0]] = args[0]
            if hyper is not None:
                for n, field in (*((f, f) for f in HYPER_FIELDS), ("cap", "delta_cap"), ("N", "inner_steps")):
                    if n in names and n not in kw and hasattr(hyper, field):
                        kw[n] = getattr(hyper, field)
            if constants is not None:
                for n, v in _constant_values(constants).items():
                    if n in names and n not in kw:
                        kw[n] = v
            unknown = sorted(set(kw) - set(names))
            if unknown:
                raise TypeError(f"{fn.__name__}() got unknown argument(s) {unknown}; it takes {names}")
            missing = [n for n in required if n not in kw]
            if missing:
                hint = " (pass constants=family.constants() for L, rho, sigma, ...)" if set(missing) & set(
                    CONSTANT_NAMES) else ""
                raise TypeError(f"{fn.__name__}() is missing {missing}{hint}")
            return fn(**kw)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()]
        params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in ("constants", "hyper")]
        bound.__signature__ = sig.replace(parameters=params)
        bound.kind = kind
        KIND[fn.__name__] = kind
        return bound
    return mark


# --- validation ---------------------------------------------------------------
def _num(name: str, x, *, low: float = 0.0, strict: bool = False, integer: bool = False):
    """``x`` as a float array, finite and ``≥ low`` (``> low`` if ``strict``)."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {x!r}") from None
    rel = ">" if strict else ">="
    bad = (a <= low) if strict else (a < low)
    if not np.all(np.isfinite(a)) or np.any(bad):
        raise ValueError(f"{name} must be finite and {rel} {low:g}, got {x!r}")
    if integer and np.any(a != np.floor(a)):
        raise ValueError(f"{name} must be an integer, got {x!r}")
    return a


def _nonneg(name, x):
    return _num(name, x)


def _pos(name, x):
    return _num(name, x, strict=True)


def _size(name, x):
    """A batch size or count: an integer ``≥ 1``."""
    return _num(name, x, low=1.0, integer=True)


def _out(a):
    """A float for scalar results, the array otherwise."""
    a = np.asarray(a)
    return float(a) if a.ndim == 0 else a


# --- side-by-side checks (DESIGN.md style note 1) ------------------------------
def moment_check(measured, bound):
    """``(measured, bound)`` side by side, PEPit style (``wc_...`` returns
    ``(pepit_tau, theoretical_tau)``); the caller asserts by ``KIND``.

    Args:
        measured: the measured quantity (float or array).
        bound: the theoretical value for the same constants.

    Returns:
        ``(measured, bound)`` as floats (or arrays of a common shape).
    """
    m = np.asarray(measured, dtype=float)
    b = np.asarray(bound, dtype=float)
    m, b = np.broadcast_arrays(m, b)
    return _out(m), _out(b)


def holds(measured, bound, kind: str, rtol: float = 0.0):
    """Whether ``measured`` respects ``bound`` of the given kind, with a
    relative slack ``rtol`` (for Monte Carlo estimates).

    ``upper``: ``measured ≤ bound·(1 + rtol)``; ``lower``:
    ``measured ≥ bound·(1 − rtol)``.  A ``value`` is not a guarantee and
    cannot be checked this way.
    """
    if kind not in ("upper", "lower"):
        raise ValueError(f"kind must be 'upper' or 'lower' to be checked, got {kind!r}")
    rtol = float(_nonneg("rtol", rtol))
    m, b = moment_check(measured, bound)
    ok = np.asarray(verdict(m, m, b, kind, rtol * np.abs(b))) == "holds"
    return bool(ok) if np.ndim(ok) == 0 else ok


def _algorithm(algorithm: str) -> str:
    if algorithm not in (*lit.FLOOR, "exact"):
        raise ValueError(f"algorithm must be one of {(*lit.FLOOR, 'exact')}, got {algorithm!r}")
    return algorithm
