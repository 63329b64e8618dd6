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

from pathlib import Path as _Path

# Imported from a checkout's root with a non-editable install, this folder
# shadows the installed package: let it find its subpackages, which are the
# checkout's top-level folders.
_root = _Path(__file__).resolve().parent.parent
if (_root / "pyproject.toml").is_file() and (_root / "problems" / "__init__.py").is_file():
    __path__.append(str(_root))

from mamlcheck import literature
from mamlcheck.problems import FAMILIES, family_parameters, make_family
from mamlcheck.problems.base import CAPABILITIES, Constant, Constants, NotAvailable, TaskFamily
from mamlcheck.theory import bounds, conditions
from mamlcheck.theory.checks import Check
from mamlcheck.theory.conditions import check_conditions
from mamlcheck.algorithms.estimators import ALGORITHMS, Algorithm
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F, G_i, grad_F, local_L
from mamlcheck.algorithms.engine import Step, trajectory
from mamlcheck.algorithms.runner import RunResult, run
from mamlcheck.algorithms.streams import SeedStreams
from mamlcheck.experiments.ledger import Ledger
from mamlcheck.experiments.ledger import evaluate as ledger

__all__ = [
    "family", "make_family", "FAMILIES", "family_parameters", "TaskFamily", "Constant", "Constants",
    "CAPABILITIES", "NotAvailable", "bounds", "conditions", "check_conditions", "Check", "literature",
    "ALGORITHMS", "Algorithm", "Hyper", "F", "grad_F", "G_i", "local_L", "Step", "trajectory",
    "RunResult", "run", "SeedStreams", "Ledger", "ledger", "__version__",
]

__version__ = "0.2.0"


def family(name: str, **params) -> TaskFamily:
    """The registered task family ``name`` built with ``params`` (``make_family``);
    unknown names and bad parameters raise ``ValueError`` naming them."""
    return make_family(name, **params)
