"""MAML as the users of each library write it, one short function each, in
the form ``check`` takes (``fn(loss, w, inner, outer, alpha, steps)``).

Each adapter is the library's documented way of computing one task's
meta-gradient, with nothing added but the plumbing to a parameter vector
``w`` and a task loss ``loss(w, batch)``:

* ``torch_func``: ``torch.func.grad`` of the inner-step composed loss, the way
  current PyTorch users write MAML (``functional_call`` on a module's
  parameter dict is the same transform; here the "module" is ``loss``);
* ``jax_grad``: ``jax.grad`` of the inner-step composed loss (the JAX MAML
  tutorial's form);
* ``learn2learn``: ``l2l.algorithms.MAML(model, lr=α, first_order=...)``,
  ``clone()``, ``adapt(loss)`` ``steps`` times, ``backward()`` of the outer
  loss (learn2learn's MAML example);
* ``higher``: ``higher.innerloop_ctx(model, SGD(lr=α), copy_initial_weights=...)``,
  ``diffopt.step(loss)`` ``steps`` times, ``backward()`` of the outer loss
  (higher's MAML example; ``copy_initial_weights=True``, its default, is the
  known pitfall: the meta-gradient never reaches the initial weights).

``implementations()`` lists them as ``check.Implementation`` for the
conformance table, with the first-order modes; libraries that do not install
are listed by ``missing()`` with the error.
"""
from __future__ import annotations

import importlib
import importlib.util

from .checker import Implementation
from .frameworks import version

__all__ = ["torch_func", "jax_grad", "learn2learn", "higher", "Parameter", "implementations"]


# --- torch.func --------------------------------------------------------------------------
def torch_func(first_order: bool = False):
    """MAML with ``torch.func.grad``: the adapted parameters are a function of
    ``w``, so the outer gradient flows through the inner steps; first-order
    mode detaches the inner gradient (FO-MAML)."""
    from torch.func import grad

    def meta_gradient(loss, w, inner, outer, alpha, steps):
        def adapt(w):
            for _ in range(steps):
                g = grad(loss)(w, inner)
                w = w - alpha * (g.detach() if first_order else g)
            return w
        return grad(lambda w: loss(adapt(w), outer))(w)

    return meta_gradient


# --- JAX ---------------------------------------------------------------------------------
def jax_grad(first_order: bool = False):
    """MAML with ``jax.grad`` of the composed loss, compiled with ``jax.jit`` as
    JAX users run it (``loss`` and ``steps`` static); first-order mode stops
    the gradient through the inner gradient (``lax.stop_gradient``)."""
    import jax

    def meta_gradient(loss, w, inner, outer, alpha, steps):
        def adapt(w):
            for _ in range(steps):
                g = jax.grad(loss)(w, inner)
                w = w - alpha * (jax.lax.stop_gradient(g) if first_order else g)
            return w
        return jax.grad(lambda w: loss(adapt(w), outer))(w)

    return jax.jit(meta_gradient, static_argnames=("loss", "steps"))


# --- a module for the torch libraries ---------------------------------------------------------
def Parameter(w):
    """A ``torch.nn.Module`` holding ``w`` as its one parameter, whose forward is
    ``loss(w, batch)``: the model the torch MAML libraries wrap."""
    import torch

    class TaskModel(torch.nn.Module):
        def __init__(self, w):
            super().__init__()
            self.w = torch.nn.Parameter(w.detach().clone())

        def forward(self, loss, batch):
            return loss(self.w, batch)

    return TaskModel(w)


# --- learn2learn ---------------------------------------------------------------------------
def _learn2learn_MAML():
    """``learn2learn.algorithms.MAML``.  learn2learn 0.2.0's ``__init__`` imports
    its vision, text and gym modules, hence torchvision, requests and gym, and
    no torchvision on PyPI loads beside the CPU build of torch 2.13 ("operator
    torchvision::nms does not exist"); MAML itself needs none of them.  When the
    plain import fails, the package is entered without running its
    ``__init__`` (its ``algorithms`` and ``utils`` modules are imported as they
    are)."""
    import sys
    import types
    try:
        import learn2learn as l2l
        return l2l.algorithms.MAML
    except ImportError:
        for k in [k for k in sys.modules if k == "learn2learn" or k.startswith("learn2learn.")]:
            del sys.modules[k]
        spec = importlib.util.find_spec("learn2learn")
        pkg = types.ModuleType("learn2learn")
        pkg.__path__, pkg.__spec__ = list(spec.submodule_search_locations), spec
        sys.modules["learn2learn"] = pkg
        return importlib.import_module("learn2learn.algorithms.maml").MAML


def learn2learn(first_order: bool = False):
    """``l2l.algorithms.MAML``: ``clone()`` the wrapped model, ``adapt`` it on the
    inner loss, ``backward()`` the outer loss into the original parameters."""
    MAML = _learn2learn_MAML()

    def meta_gradient(loss, w, inner, outer, alpha, steps):
        model = Parameter(w)
        maml = MAML(model, lr=alpha, first_order=first_order)
        learner = maml.clone()
        for _ in range(steps):
            learner.adapt(learner(loss, inner))
        learner(loss, outer).backward()
        return model.w.grad

    return meta_gradient


# --- higher ----------------------------------------------------------------------------------
def higher(copy_initial_weights: bool = False, first_order: bool = False):
    """``higher.innerloop_ctx`` with plain SGD: a functional copy of the model
    steps on the inner loss, and ``backward()`` of the outer loss reaches the
    model's parameters only with ``copy_initial_weights=False`` (with ``True``
    the initial fast weights are a detached copy: ``model.w.grad`` stays
    ``None``, returned here as zero, which is what a meta-optimizer would step
    with).  First-order mode detaches the inner gradients through
    ``diffopt.step``'s ``grad_callback``."""
    import torch
    import higher as hg

    detach = (lambda grads: [g.detach() for g in grads]) if first_order else None

    def meta_gradient(loss, w, inner, outer, alpha, steps):
        model = Parameter(w)
        opt = torch.optim.SGD(model.parameters(), lr=alpha)
        with hg.innerloop_ctx(model, opt, copy_initial_weights=copy_initial_weights) as (fmodel, diffopt):
            for _ in range(steps):
                diffopt.step(fmodel(loss, inner), grad_callback=detach)
            fmodel(loss, outer).backward()
        return model.w.grad if model.w.grad is not None else torch.zeros_like(model.w)

    return meta_gradient


# --- the table's rows ---------------------------------------------------------------------------
#: (name, framework, distribution, factory, keyword arguments, first_order)
LIBRARIES = [
    ("torch.func", "torch", "torch", torch_func, {}, False),
    ("torch.func", "torch", "torch", torch_func, {"first_order": True}, True),
    ("jax.grad", "jax", "jax", jax_grad, {}, False),
    ("jax.grad", "jax", "jax", jax_grad, {"first_order": True}, True),
    ("learn2learn MAML", "torch", "learn2learn", learn2learn, {}, False),
    ("learn2learn MAML", "torch", "learn2learn", learn2learn, {"first_order": True}, True),
    ("higher innerloop_ctx", "torch", "higher", higher, {}, False),
    ("higher innerloop_ctx", "torch", "higher", higher, {"first_order": True}, True),
]


def implementations() -> tuple[list[Implementation], list[tuple[str, str, str]]]:
    """The installed libraries' implementations, and ``(name, version, error)`` for
    those that do not import."""
    found, missing = [], []
    for name, fw, dist, factory, kw, fo in LIBRARIES:
        try:
            fn = factory(**kw)
        except Exception as e:               # a library that does not import is reported, not fatal
            missing.append((name, version(dist), f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
            continue
        found.append(Implementation(name, fw, fn, first_order=fo, library=dist))
    return found, missing
