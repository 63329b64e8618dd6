"""mamlcheck: the convergence theory of MAML (Fallah, Mokhtari & Ozdaglar,
AISTATS 2020), made runnable.

The public API, in the order a researcher meets it::

    import mamlcheck as mc
    fam = mc.family("cosine-quadratic", d=20, M=50)          # a task family with certified constants
    h = mc.Hyper("maml", alpha=0.02, B=20)                    # one run's hyperparameters
    res = mc.run(fam, h, eps=[1e-1, 1e-2], seeds=32)          # many seeds at once
    mc.bounds.iterations_upper(1e-2, constants=fam.constants(), alpha=0.02, Delta=res.Delta)
    mc.ledger(fam, h, eps=1.0, seeds=16).summary              # the proof of (14), step by step

Subpackages: ``problems`` (families), ``theory`` (bounds, conditions, checks,
the proof's statements), ``algorithms`` (estimators, fast samplers, the
trajectory engine, the runner), ``experiments`` (the experiments, the proof
ledger, the command line ``python -m mamlcheck``); ``literature`` holds every
constant taken from the papers; ``testing.check_family`` is the contract a
new family must pass.
"""
from __future__ import annotations

import importlib
from pathlib import Path as _Path

# Imported from a checkout's root with a non-editable install, this folder
# shadows the installed package: let it find its subpackages, which are the
# checkout's top-level folders.
_root = _Path(__file__).resolve().parent.parent
if (_root / "pyproject.toml").is_file() and (_root / "problems" / "__init__.py").is_file():
    __path__.append(str(_root))

# The API is loaded on first use (PEP 562), so that ``python -m mamlcheck``
# starts quickly and a Ctrl-C while it starts is handled by the command line.
_API = {
    "literature": ("mamlcheck.literature", None),
    "make_family": ("mamlcheck.problems", "make_family"), "FAMILIES": ("mamlcheck.problems", "FAMILIES"),
    "family_parameters": ("mamlcheck.problems", "family_parameters"),
    "TaskFamily": ("mamlcheck.problems.base", "TaskFamily"), "Constant": ("mamlcheck.problems.base", "Constant"),
    "Constants": ("mamlcheck.problems.base", "Constants"),
    "CAPABILITIES": ("mamlcheck.problems.base", "CAPABILITIES"),
    "NotAvailable": ("mamlcheck.problems.base", "NotAvailable"),
    "bounds": ("mamlcheck.theory.bounds", None), "conditions": ("mamlcheck.theory.conditions", None),
    "check_conditions": ("mamlcheck.theory.conditions", "check_conditions"),
    "Check": ("mamlcheck.theory.checks", "Check"),
    "ALGORITHMS": ("mamlcheck.algorithms.estimators", "ALGORITHMS"),
    "Algorithm": ("mamlcheck.algorithms.estimators", "Algorithm"),
    "Hyper": ("mamlcheck.algorithms.hyper", "Hyper"),
    "F": ("mamlcheck.algorithms.objective", "F"), "grad_F": ("mamlcheck.algorithms.objective", "grad_F"),
    "G_i": ("mamlcheck.algorithms.objective", "G_i"), "local_L": ("mamlcheck.algorithms.objective", "local_L"),
    "Step": ("mamlcheck.algorithms.engine", "Step"), "trajectory": ("mamlcheck.algorithms.engine", "trajectory"),
    "RunResult": ("mamlcheck.algorithms.runner", "RunResult"), "run": ("mamlcheck.algorithms.runner", "run"),
    "SeedStreams": ("mamlcheck.algorithms.streams", "SeedStreams"),
    "Ledger": ("mamlcheck.experiments.ledger", "Ledger"), "ledger": ("mamlcheck.experiments.ledger", "evaluate"),
}

__all__ = ["family", *_API, "__version__"]

__version__ = "0.2.0"


def family(name: str, **params):
    """The registered task family ``name`` built with ``params`` (``make_family``);
    unknown names and bad parameters raise ``ValueError`` naming them."""
    from mamlcheck.problems import make_family
    return make_family(name, **params)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'mamlcheck' has no attribute {name!r}")
    module, attr = _API[name]
    value = importlib.import_module(module)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_API})
