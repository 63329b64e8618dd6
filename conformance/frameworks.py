"""The array frameworks a conformance check runs in: NumPy, PyTorch, JAX.

A ``Framework`` carries what the task losses and the tool need from a
framework, and nothing else:

* ``ops``: the array namespace a family's ``loss_on(ops, w, data)`` is written
  over (``TaskFamily.loss_on``): elementwise functions, ``where``,
  ``concatenate`` and ``log_ndtr``, with NumPy's names.  Arrays themselves
  support ``@``, indexing, ``.sum(-1)`` and ``.mean(-1)`` in all three, so a
  loss written once runs in each (one place for each family's loss);
* ``asarray`` / ``to_numpy``: float64 in, float64 out;
* ``grad(fn, w)``: ``∇fn(w)`` by the framework's reverse mode, so a loss
  written over ``ops`` is differentiated by the framework under test, not by
  this suite.

Float64 throughout: the comparisons are against exact NumPy quantities at
``1e-10``, which float32 cannot reach (PyTorch's default dtype and JAX's
default ``x64`` flag are switched for the duration of a check by ``float64()``).
The frameworks are imported on first use, so NumPy-only work never needs them.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
from types import SimpleNamespace
from typing import Any, Callable, NamedTuple

import numpy as np
from scipy import special

__all__ = ["Framework", "framework", "FRAMEWORKS", "available"]


class Framework(NamedTuple):
    """One array framework (see the module docstring)."""

    name: str
    version: str
    ops: Any
    asarray: Callable[[np.ndarray], Any]
    to_numpy: Callable[[Any], np.ndarray]
    grad: Callable[[Callable[[Any], Any], Any], Any]
    float64: Callable[[], contextlib.AbstractContextManager]


def _numpy() -> Framework:
    ops = SimpleNamespace(cos=np.cos, sin=np.sin, exp=np.exp, log1p=np.log1p, sqrt=np.sqrt, tanh=np.tanh,
                          where=np.where, log_ndtr=special.log_ndtr, abs=np.abs, sign=np.sign,
                          concatenate=lambda xs, axis=-1: np.concatenate(xs, axis=axis),
                          ones=lambda shape, like: np.ones(shape), zeros=lambda shape, like: np.zeros(shape))

    def no_grad(fn, w):
        raise TypeError("NumPy has no automatic differentiation: use the torch or jax framework")

    return Framework("numpy", np.__version__, ops, lambda a: np.asarray(a, dtype=float),
                     lambda a: np.asarray(a, dtype=float), no_grad, contextlib.nullcontext)


def _torch() -> Framework:
    torch = importlib.import_module("torch")
    ops = SimpleNamespace(cos=torch.cos, sin=torch.sin, exp=torch.exp, log1p=torch.log1p, sqrt=torch.sqrt,
                          tanh=torch.tanh, where=torch.where, log_ndtr=torch.special.log_ndtr, abs=torch.abs,
                          sign=torch.sign,
                          concatenate=lambda xs, axis=-1: torch.cat(list(xs), dim=axis),
                          ones=lambda shape, like: torch.ones(shape, dtype=like.dtype),
                          zeros=lambda shape, like: torch.zeros(shape, dtype=like.dtype))

    def asarray(a):
        return torch.as_tensor(np.asarray(a, dtype=float), dtype=torch.float64)

    def to_numpy(a):
        return a.detach().cpu().numpy().astype(float) if torch.is_tensor(a) else np.asarray(a, dtype=float)

    def grad(fn, w):
        w = w.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(w), w)
        return g

    @contextlib.contextmanager
    def float64():
        old = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            yield
        finally:
            torch.set_default_dtype(old)

    return Framework("torch", torch.__version__, ops, asarray, to_numpy, grad, float64)


def _jax() -> Framework:
    jax = importlib.import_module("jax")
    jax.config.update("jax_enable_x64", True)          # before any array is made
    jnp = importlib.import_module("jax.numpy")
    jsp = importlib.import_module("jax.scipy.special")
    ops = SimpleNamespace(cos=jnp.cos, sin=jnp.sin, exp=jnp.exp, log1p=jnp.log1p, sqrt=jnp.sqrt, tanh=jnp.tanh,
                          where=jnp.where, log_ndtr=jsp.log_ndtr, abs=jnp.abs, sign=jnp.sign,
                          concatenate=lambda xs, axis=-1: jnp.concatenate(list(xs), axis=axis),
                          ones=lambda shape, like: jnp.ones(shape, dtype=like.dtype),
                          zeros=lambda shape, like: jnp.zeros(shape, dtype=like.dtype))

    def asarray(a):
        return jnp.asarray(np.asarray(a, dtype=float), dtype=jnp.float64)

    @contextlib.contextmanager
    def float64():
        old = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
        try:
            yield
        finally:
            jax.config.update("jax_enable_x64", old)

    return Framework("jax", jax.__version__, ops, asarray, lambda a: np.asarray(a, dtype=float),
                     lambda fn, w: jax.grad(fn)(w), float64)


FRAMEWORKS = {"numpy": _numpy, "torch": _torch, "jax": _jax}
_CACHE: dict[str, Framework] = {}


def framework(name: str) -> Framework:
    """The framework ``name`` (``numpy``, ``torch`` or ``jax``); ``ImportError``
    naming the extra to install when it is missing."""
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}; known: {', '.join(FRAMEWORKS)}")
    if name not in _CACHE:
        try:
            _CACHE[name] = FRAMEWORKS[name]()
        except ImportError as e:
            raise ImportError(f"framework {name!r} is not installed ({e}); "
                              "install the extra: pip install 'mamlcheck[conformance]'") from None
    return _CACHE[name]


def available(name: str) -> bool:
    """Whether framework ``name`` imports here (without importing it)."""
    return name == "numpy" or importlib.util.find_spec(name) is not None


def version(distribution: str) -> str:
    """The installed version of a distribution, or ``"not installed"``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
