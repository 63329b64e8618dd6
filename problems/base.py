"""The task-family interface and certified constants (THEORY.md §1–§2).

A family holds finitely many tasks ``i = 0..M-1`` with probabilities ``p``.
Every method is vectorised over leading axes: ``w`` has shape ``(..., d)`` and
task indices ``i`` have a shape broadcastable with ``w.shape[:-1]``.

Stochastic oracles are split in two so that one sampled batch can be reused at
several points (HF-MAML evaluates the same ``D_h`` at ``w ± δv``, THEORY.md §6):
``draw_batch(i, n, rng)`` samples a batch of ``n`` i.i.d. data points per task
index (its sufficient statistic), and ``batch_grad`` / ``batch_hess`` /
``batch_hvp`` evaluate the batch mean of the per-sample derivatives.  ``rng``
is anything with numpy's ``standard_normal(size)`` and ``random(size)``: a
``numpy.random.Generator``, or the runner's per-seed streams (whose leading
axis is the seed axis).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

__all__ = ["Constant", "Constants", "TaskFamily", "DataPools", "NotAvailable", "CAPABILITIES", "check_positive",
           "check_probabilities"]


@dataclass(frozen=True)
class Constant:
    """One assumption constant: its value, whether it is exact (the supremum
    itself) or a proven upper bound, and where the value comes from."""

    value: float
    exact: bool
    source: str

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class Constants:
    """The constants of assumptions A2–A5 (THEORY.md §2) for one family.

    ``L_i`` and ``rho_i`` are per task (A2, A3); ``L = max L_i`` and
    ``rho = max rho_i``.  ``sigma`` is the task dissimilarity (A4),
    ``sigma_tilde`` and ``sigma_H`` the one-sample gradient and Hessian noise
    (A5).
    """

    L: Constant
    rho: Constant
    sigma: Constant
    sigma_tilde: Constant
    sigma_H: Constant
    L_i: np.ndarray = field(repr=False)
    rho_i: np.ndarray = field(repr=False)

    NAMES = ("L", "rho", "sigma", "sigma_tilde", "sigma_H")

    def values(self) -> dict[str, float]:
        """Plain floats by name, for the bound functions of ``theory``."""
        return {n: float(getattr(self, n).value) for n in self.NAMES}

    def table(self) -> list[dict[str, Any]]:
        """One row per constant: name, value, exact or upper bound, source."""
        return [
            {"constant": n, "value": float(getattr(self, n).value),
             "kind": "exact" if getattr(self, n).exact else "upper bound",
             "source": getattr(self, n).source}
            for n in self.NAMES
        ]

    def replace(self, **values: float) -> "Constants":
        """A copy with some values overridden (marked as upper bounds), e.g. to
        feed a deliberately understated ``L`` to a negative control."""
        kw = {n: getattr(self, n) for n in self.NAMES}
        for n, v in values.items():
            if n not in self.NAMES:
                raise ValueError(f"unknown constant {n!r}; expected one of {self.NAMES}")
            kw[n] = Constant(float(v), False, f"overridden by caller (was {float(kw[n].value):.6g})")
        L_i = np.minimum(self.L_i, kw["L"].value)
        rho_i = np.minimum(self.rho_i, kw["rho"].value)
        return Constants(L_i=L_i, rho_i=rho_i, **kw)


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Validate a scalar hyperparameter; the error names the parameter."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return v


def check_count(name: str, value: int, *, minimum: int = 1) -> int:
    """Validate an integer size (dimension, number of tasks, batch size)."""
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and value >= minimum
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


NEEDS = ("both", "grad", "hess")


def check_need(need: str) -> str:
    """Which parts of a batch to draw: ``both``, ``grad`` or ``hess``."""
    if need not in NEEDS:
        raise ValueError(f"need must be one of {NEEDS}, got {need!r}")
    return need


def check_probabilities(p: Any, M: int) -> np.ndarray:
    """Task probabilities: shape ``(M,)``, nonnegative, summing to 1."""
    if p is None:
        return np.full(M, 1.0 / M)
    p = np.asarray(p, dtype=float)
    if p.shape != (M,):
        raise ValueError(f"p must have shape ({M},) (one probability per task), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("p must be finite and nonnegative")
    if abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(f"p must sum to 1, sums to {p.sum():.12g}")
    return p / p.sum()


class NotAvailable(NotImplementedError):
    """An optional capability (``CAPABILITIES``) that this family does not offer."""


#: The optional capabilities a family may declare by overriding the method of
#: that name; ``family.offers(name)`` says whether it does.  Callers ask
#: ``offers`` instead of probing attributes, so a misspelt name is an error,
#: not a silent fall-back to the slow path.
CAPABILITIES = {
    "meta_loss": "F(w) = Σ p_i f_i(w − α∇f_i(w)) in closed form, cheaper than the task sum",
    "meta_grad": "∇F(w) of (5) in closed form, cheaper than the task sum",
    "centre_and_length": "where the tasks sit and their length scale (to draw test points)",
    "attaining_points": "points where the exact constants are attained (to test exactness)",
    "inner_mean": "exact E[∇f_i(w − α∇̃f_i(w, D_in))] (the law of the inner step)",
    "outer_second": "exact E[v vᵀ] of v = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)",
    "hess_factor": "exact E[(I − α∇̃²f_i(w, D_h))ᵀ(I − α∇̃²f_i(w, D_h))]",
    "grad_rounding_scale": "size of the intermediate terms of ∇f_i(x), for rounding tolerances",
    "inner_noise_var": "coordinate variances of the inner step's noise α(∇̃f_i(w, D_in) − ∇f_i(w)), every task alike",
    "inner_bias": "exact E[∇f_i(u_i + Z)] − ∇f_i(u_i), u_i = w − α∇f_i(w), for inner noise Z of given variances",
    "progress": "prog(w): the coordinates of a zero-respecting lower-bound chain that w has reached",
    "certificate_ball": "(centre, radius): the constants are certified only on the ball ‖w − centre‖ ≤ radius",
    "loss_on": "the task loss on a batch written over an array namespace (NumPy, PyTorch, JAX): loss_data + loss_on",
}


#: The oracles every family defines; capabilities and fast samplers are written for them.
ORACLES = ("loss", "grad", "hess", "hvp", "draw_batch", "batch_grad", "batch_hess", "batch_hvp")


def defining_class(cls: type, name: str) -> type | None:
    """The class of ``cls``'s MRO whose body defines ``name``."""
    return next((k for k in cls.__mro__ if name in vars(k)), None)


def oracles_replaced_below(cls: type, owner: type) -> bool:
    """Whether a class more derived than ``owner`` redefines one of the ``ORACLES``
    (then what ``owner`` wrote for its oracles may not hold for ``cls``)."""
    mro = cls.__mro__
    return any(mro.index(defining_class(cls, o)) < mro.index(owner) for o in ORACLES)


@functools.lru_cache(maxsize=None)
def _class_offers(cls: type, capability: str) -> bool:
    """``TaskFamily.offers`` for a class (asked at every step of the hot loop; a
    class's methods do not change once it is built)."""
    if getattr(cls, capability) is getattr(TaskFamily, capability):
        return False
    return not oracles_replaced_below(cls, defining_class(cls, capability))


class TaskFamily:
    """Base class of the task families; see the module docstring.

    Subclasses set ``name``, ``d``, ``M``, ``p`` and implement ``loss``,
    ``grad``, ``hess``, ``draw_batch``, ``batch_grad``, ``batch_hess`` and
    ``constants``.  ``hvp`` and ``batch_hvp`` default to contracting the
    Hessian; families override them when a cheaper product exists.
    """

    name: str = "family"
    d: int
    M: int
    p: np.ndarray
    citation: str = ""

    # --- immutable once built ----------------------------------------------------
    # Closed forms, fast samplers and the runner cache what they derive from a
    # family's parameters; a parameter changed afterwards would leave them
    # stale.  So the public attributes are set in ``__init__`` only (private
    # ones, ``_memo``, stay writable for caches): build a new family instead.
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            init = cls.__init__

            @functools.wraps(init)
            def building(self, *args, **kw):
                depth = self.__dict__.get("_building", 0)
                object.__setattr__(self, "_building", depth + 1)
                try:
                    init(self, *args, **kw)
                finally:
                    object.__setattr__(self, "_building", depth)
            cls.__init__ = building

    def __setattr__(self, name: str, value) -> None:
        if not name.startswith("_") and not self.__dict__.get("_building", 0):
            raise AttributeError(f"{type(self).__name__}.{name} cannot be changed after the family is built "
                                 f"(derived quantities are cached): build a new family")
        object.__setattr__(self, name, value)

    # --- shape handling -------------------------------------------------
    def _w(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        if w.ndim == 0 or w.shape[-1] != self.d:
            raise ValueError(f"w must have shape (..., {self.d}), got {w.shape}")
        return w

    def _i(self, i: Any) -> np.ndarray:
        i = np.asarray(i)
        if not np.issubdtype(i.dtype, np.integer):
            raise ValueError(f"task indices must be integers, got dtype {i.dtype}")
        if i.size and (i.min() < 0 or i.max() >= self.M):
            raise ValueError(f"task indices must lie in [0, {self.M}), got range [{i.min()}, {i.max()}]")
        return i

    # --- exact oracles ----------------------------------------------------
    def loss(self, w, i) -> np.ndarray:
        raise NotImplementedError

    def grad(self, w, i) -> np.ndarray:
        raise NotImplementedError

    def hess(self, w, i) -> np.ndarray:
        raise NotImplementedError

    def hvp(self, w, i, v) -> np.ndarray:
        """Hessian-vector product ``∇²f_i(w) v``."""
        return np.einsum("...jk,...k->...j", self.hess(w, i), np.asarray(v, dtype=float))

    # --- stochastic oracles ----------------------------------------------
    def draw_batch(self, i, n: int, rng, need: str = "both") -> Mapping[str, np.ndarray]:
        """A batch of ``n`` samples per task index; ``need`` (``both``, ``grad`` or
        ``hess``) says which parts the caller will evaluate (MAML's Hessian batch
        asks for ``hess`` only)."""
        raise NotImplementedError

    def batch_grad(self, w, i, batch) -> np.ndarray:
        raise NotImplementedError

    def batch_hess(self, w, i, batch) -> np.ndarray:
        raise NotImplementedError

    def batch_hvp(self, w, i, v, batch) -> np.ndarray:
        """``∇̃²f_i(w, D) v`` for a drawn batch ``D``."""
        return np.einsum("...jk,...k->...j", self.batch_hess(w, i, batch), np.asarray(v, dtype=float))

    def sample_grad(self, w, i, n: int, rng) -> np.ndarray:
        """``∇̃f_i(w, D)``: mean gradient over a fresh batch of ``n`` samples."""
        return self.batch_grad(w, i, self.draw_batch(i, n, rng))

    def sample_hess(self, w, i, n: int, rng) -> np.ndarray:
        """``∇̃²f_i(w, D)``: mean Hessian over a fresh batch of ``n`` samples."""
        return self.batch_hess(w, i, self.draw_batch(i, n, rng))

    def sample_hvp(self, w, i, v, n: int, rng) -> np.ndarray:
        """``∇̃²f_i(w, D) v`` over a fresh batch of ``n`` samples."""
        return self.batch_hvp(w, i, v, self.draw_batch(i, n, rng))

    # --- certified quantities ---------------------------------------------
    def constants(self) -> Constants:
        raise NotImplementedError

    def inf_f_lower(self) -> float:
        """A certified lower bound on ``Σ_i p_i inf_w f_i(w)``, hence on
        ``inf_w F(w)`` (since ``F(w) = Σ p_i f_i(·) ≥ Σ p_i inf f_i``); used for
        an upper bound on ``Δ`` (A1)."""
        raise NotImplementedError

    def draw_tasks(self, shape, rng) -> np.ndarray:
        """Task indices drawn i.i.d. from ``p`` (inverse CDF of uniforms)."""
        u = rng.random(shape)
        return np.minimum(np.searchsorted(self._cdf, u, side="right"), self.M - 1)

    @property
    def _cdf(self) -> np.ndarray:
        cdf = getattr(self, "_cdf_cache", None)
        if cdf is None:
            cdf = np.cumsum(self.p)
            cdf[-1] = 1.0
            object.__setattr__(self, "_cdf_cache", cdf)
        return cdf

    # --- the MAML objective as plain task sums (equations (1), (5)) ----------------
    def inner_trajectory(self, w, alpha: float, inner_steps: int = 1) -> list[np.ndarray]:
        """The exact inner points ``u_i^0 = w, u_i^1, …, u_i^N`` of every task:
        ``u^{j+1} = u^j − α∇f_i(u^j)``, inner step (2) taken ``N = inner_steps``
        times (Ji, Yang & Liang 2022, §2).  ``u^0`` is ``w[..., None, :]``
        (the same for every task), the others ``(..., M, d)``."""
        u = [self._w(w)[..., None, :]]
        i = np.arange(self.M)
        for _ in range(check_count("inner_steps", inner_steps)):
            u.append(u[-1] - alpha * self.grad(u[-1], i))
        return u

    def meta_loss_by_tasks(self, w, alpha: float, inner_steps: int = 1) -> np.ndarray:
        """``F_N(w) = Σ_i p_i f_i(u_i^N(w))`` as the plain task sum; ``N = 1`` is
        ``F(w) = Σ_i p_i f_i(w − α∇f_i(w))``, equation (1)."""
        return self.loss(self.inner_trajectory(w, alpha, inner_steps)[-1], np.arange(self.M)) @ self.p

    def meta_grad_by_tasks(self, w, alpha: float, inner_steps: int = 1) -> np.ndarray:
        """``∇F_N(w) = Σ_i p_i Π_{j=0}^{N−1}(I − α∇²f_i(u_i^j)) ∇f_i(u_i^N)`` as the
        plain task sum: the chain rule through the inner loop (Ji, Yang & Liang
        2022, the N-step meta-gradient), the factor of ``u^{N−1}`` applied first,
        one Hessian-vector product per inner point.  ``N = 1`` is equation (5),
        ``Σ_i p_i (I − α∇²f_i(w)) ∇f_i(w − α∇f_i(w))``."""
        i = np.arange(self.M)
        u = self.inner_trajectory(w, alpha, inner_steps)
        v = self.grad(u[-1], i)
        for u_j in reversed(u[:-1]):
            v = v - alpha * self.hvp(u_j, i, v)
        return np.einsum("m,...md->...d", self.p, v)

    # --- optional capabilities (CAPABILITIES) ---------------------------------
    def offers(self, capability: str) -> bool:
        """Whether this family implements the optional ``capability``.

        A closed form is trusted only for the oracles it was written with: when a
        subclass replaces an oracle (``ORACLES``) below the class that defined
        the capability, the inherited closed form may no longer agree with it,
        so it is not offered (the generic path is used instead).
        """
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
        return _class_offers(type(self), capability)

    def _not_available(self, capability: str):
        raise NotAvailable(f"family {self.name!r} does not offer {capability}: {CAPABILITIES[capability]}")

    def meta_loss(self, w, alpha: float) -> np.ndarray:
        """Closed-form ``F(w)`` (optional; ``algorithms.objective.F`` sums tasks otherwise)."""
        self._not_available("meta_loss")

    def meta_grad(self, w, alpha: float) -> np.ndarray:
        """Closed-form ``∇F(w)`` (optional; ``algorithms.objective.grad_F`` sums tasks otherwise)."""
        self._not_available("meta_grad")

    def centre_and_length(self) -> tuple[np.ndarray, float]:
        """``(centre, length)``: where the tasks sit and their length scale (optional)."""
        self._not_available("centre_and_length")

    def attaining_points(self, k: np.ndarray) -> np.ndarray:
        """Points indexed by the integer vectors ``k`` at which exact constants are attained (optional)."""
        self._not_available("attaining_points")

    def inner_mean(self, w, i: int, alpha: float, D_in: int) -> np.ndarray:
        """Exact ``E[∇f_i(w − α∇̃f_i(w, D_in))]``, shape ``(d,)`` (optional)."""
        self._not_available("inner_mean")

    def outer_second(self, w, i: int, alpha: float, D_in: int, D_o: int) -> np.ndarray:
        """Exact ``E[v vᵀ]``, ``v = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)``, shape ``(d, d)`` (optional)."""
        self._not_available("outer_second")

    def hess_factor(self, w, i: int, alpha: float, D_h: int) -> np.ndarray:
        """Exact ``E[(I − α∇̃²f_i(w, D_h))ᵀ(I − α∇̃²f_i(w, D_h))]``, ``(d, d)`` (optional)."""
        self._not_available("hess_factor")

    def grad_rounding_scale(self, x, i: int) -> float:
        """Size of the intermediate terms of ``∇f_i(x)``: its rounding error is a
        few ulps of this (optional)."""
        self._not_available("grad_rounding_scale")

    def inner_noise_var(self, w, alpha: float, D_in) -> np.ndarray:
        """Coordinate variances ``(..., d)`` of the inner step's perturbation
        ``Z = −α(∇̃f_i(w, D_in) − ∇f_i(w))``, the same for every task; ``D_in``
        broadcasts with ``w.shape[:-1]`` (optional)."""
        self._not_available("inner_noise_var")

    def inner_bias(self, w, alpha: float, var) -> np.ndarray:
        """``E[∇f_i(u_i + Z)] − ∇f_i(u_i)`` for every task, ``(..., M, d)``, with
        ``u_i = w − α∇f_i(w)`` and ``Z`` the inner perturbation with coordinate
        variances ``var`` (``inner_noise_var``, or another value for a negative
        control): the bias of the stochastic inner step (THEORY.md §3) (optional)."""
        self._not_available("inner_bias")

    def progress(self, w, threshold: float = 0.0) -> np.ndarray:
        """``prog(w) = max{j : |w_j| > threshold}``: how far along a zero-respecting
        chain ``w`` has got (THEORY.md §7); offered by lower-bound constructions,
        on which gradient methods need ``∝ 1/ε²`` steps (optional)."""
        self._not_available("progress")

    def certificate_ball(self) -> tuple[np.ndarray, float]:
        """``(w_c, R)``: the certified constants hold on the ball ``‖w − w_c‖ ≤ R``
        only (a family without global constants, e.g. a neural network); runs
        report whether every iterate stayed inside (optional; without it the
        constants are global)."""
        self._not_available("certificate_ball")

    def loss_data(self, i: int, batch: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The arrays that define task ``i``'s loss on ``batch`` (``None``: the
        exact task loss ``f_i``), for ``loss_on`` (optional, with ``loss_on``).
        ``loss_on(np, w, loss_data(i, batch))`` has gradient
        ``batch_grad(w, i, batch)`` and Hessian ``batch_hess(w, i, batch)``."""
        self._not_available("loss_on")

    @staticmethod
    def loss_on(ops, w, data: Mapping[str, Any]):
        """Task loss at ``w`` (shape ``(d,)``) from ``loss_data``, written over the
        array namespace ``ops`` (``conformance.frameworks``: NumPy, PyTorch or
        JAX), so that a framework's automatic differentiation can be checked
        against the exact oracles (optional; ``mamlcheck.conformance``)."""
        raise NotAvailable("this family does not offer loss_on: " + CAPABILITIES["loss_on"])

    def describe(self) -> dict[str, Any]:
        """The family's parameters, for tables and reports."""
        return {"family": self.name, "d": self.d, "M": self.M}


class DataPools:
    """Stochastic oracles of a family whose task ``i`` owns a fixed dataset: rows
    ``X[i]`` and labels ``Y[i]``, pools of equal size along axis 1, ``f_i`` the
    average over the pool.  A batch of ``n`` is ``n`` pool indices drawn
    uniformly *with replacement* (from ``rng.random``), the same points serving
    the gradient and the Hessian (``need`` changes nothing).  Mixed in before
    ``TaskFamily`` (``robust-regression``, ``sinusoid-mlp``)."""

    def draw_batch(self, i, n, rng, need: str = "both"):
        """Pool indices ``idx`` of shape ``i.shape + (n,)``, i.i.d. uniform on ``0..pool − 1``."""
        check_need(need)
        i = self._i(i)
        return {"idx": self._draw_idx(i.shape, check_count("n (batch size)", n), rng)}

    def _draw_idx(self, shape, n: int, rng) -> np.ndarray:
        """Pool indices ``shape + (n,)`` from ``rng.random`` (arguments already checked)."""
        pool = self.X.shape[1]
        u = np.asarray(rng.random(tuple(shape) + (n,)))
        return np.minimum((u * pool).astype(np.intp), pool - 1)

    def _batch_data(self, i, batch):
        i, idx = self._i(i), batch["idx"]
        return self.X[i[..., None], idx], self.Y[i[..., None], idx]

    def loss_data(self, i, batch=None) -> dict[str, np.ndarray]:
        """The rows ``X`` and labels ``Y`` of task ``i`` that ``batch`` picks (repeated
        indices repeat a row, as a with-replacement draw does), or the whole pool
        for ``batch=None`` (the exact ``f_i``), for ``loss_on``.  ``i`` is one task
        index and ``batch`` one drawn for it (``draw_batch(i, n, rng)``)."""
        i = self._i(i)
        if i.ndim != 0:
            raise ValueError(f"loss_data takes one task index, got shape {i.shape}")
        if batch is None:
            X, Y = self.X[int(i)], self.Y[int(i)]
        else:
            if np.ndim(batch["idx"]) != 1:
                raise ValueError(f"batch must be drawn for one task index: idx of shape (n,), "
                                 f"got {np.shape(batch['idx'])}")
            X, Y = self._batch_data(i, batch)
        return {"X": np.array(X, dtype=float), "Y": np.array(Y, dtype=float)}
