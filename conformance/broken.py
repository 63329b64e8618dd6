"""Deliberately broken MAML implementations, each a bug reported in the issue
trackers of the MAML libraries, with the diagnosis ``check`` must give.

They are the tool's negative controls: the tests check that each one fails
and is named correctly, and ``docs/CONFORMANCE.md`` shows their rows so a
reader sees what a failing check looks like.

* second-order term dropped: the inner gradient detached while the
  implementation claims second-order MAML (MAML-Pytorch #32, #59; higher #90);
* ``copy_initial_weights=True`` with higher: the meta-gradient never reaches
  the initial weights (``adapters.higher``);
* inner step on the outer batch (query and support swapped in the inner loop);
* α applied twice: a step size passed to the library and multiplied into the
  loss as well (the inner step becomes ``α²∇f``).
"""
from __future__ import annotations

from .checker import Implementation
from .adapters import higher, torch_func

__all__ = ["BROKEN", "broken_implementations"]


def _torch_func(*, detach=False, inner_on_outer=False, alpha_twice=False):
    """``adapters.torch_func`` misused: first-order mode under a second-order
    claim, the outer batch passed as the inner one, or ``α²`` passed as ``α``."""
    meta_gradient = torch_func(first_order=detach)

    def broken(loss, w, inner, outer, alpha, steps):
        return meta_gradient(loss, w, outer if inner_on_outer else inner, outer,
                             alpha * alpha if alpha_twice else alpha, steps)

    return broken


#: (name, factory, keyword arguments, library, the diagnosis ``check`` must give)
BROKEN = [
    ("second-order term dropped (torch.func, inner gradient detached)", _torch_func, {"detach": True}, "torch",
     "matches FO-MAML, not MAML: second-order term missing"),
    ("higher, copy_initial_weights=True", higher, {"copy_initial_weights": True}, "higher",
     "meta-gradient does not reach the initial parameters (it is zero)"),
    ("inner step on the outer batch (torch.func)", _torch_func, {"inner_on_outer": True}, "torch",
     "inner step uses the outer batch"),
    ("α applied twice (torch.func)", _torch_func, {"alpha_twice": True}, "torch",
     "α applied twice: the inner step is α²∇f"),
]


def broken_implementations() -> list[tuple[Implementation, str]]:
    """``(implementation, expected diagnosis)`` for each broken variant whose library imports."""
    out = []
    for name, factory, kw, lib, diagnosis in BROKEN:
        try:
            fn = factory(**kw)
        except ImportError:
            continue
        out.append((Implementation(name, "torch", fn, library=lib), diagnosis))
    return out
