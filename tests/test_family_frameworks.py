"""One task loss, three frameworks: ``loss_data`` + ``loss_on`` (CAPABILITIES
``"loss_on"``) of every family.

Each family writes its task loss on a batch once, over an array namespace
(``conformance.frameworks``), and the same code then runs in NumPy, PyTorch and
JAX.  Here, for each family and framework:

* the loss equals the family's NumPy loss (``loss`` for ``batch=None``; for a
  drawn batch the batch loss, assembled independently of ``loss_on`` from the
  module's formulas) to ``1e-14``;
* the framework's reverse-mode gradient (``framework(name).grad``) equals the
  exact oracle ``grad`` / ``batch_grad`` to ``1e-12``, and its Hessian
  (``torch.autograd.functional.hessian``, ``jax.hessian``) equals ``hess`` /
  ``batch_hess`` to ``1e-10`` (norm-wise, relative);
* a deliberately wrong data dict (``η̄`` scaled by 1.1, ``ξ̄`` or the tilt
  dropped, labels misaligned) misses by far more than these tolerances, so the
  comparisons can catch a wrong loss.

The torch and jax cases are skipped when the framework is not installed; the
NumPy cases always run.  JAX runs ``loss``, ``grad`` and ``hessian`` inside one
``jax.jit`` per family, with the data as arguments: un-jitted, JAX compiles
every primitive separately on first use, which took ~25 s here, against ~1 s
per family for the jitted version.
"""
import functools

import numpy as np
import pytest

from mamlcheck.conformance.frameworks import framework
from mamlcheck.problems import make_family
from mamlcheck.problems.base import CAPABILITIES
from mamlcheck.problems.hard_chain import _U_MIN
from mamlcheck.problems.robust_regression import _loss

LOSS_TOL, GRAD_TOL, HESS_TOL = 1e-14, 1e-12, 1e-10
FRAMEWORKS = ("numpy", "torch", "jax")
AUTODIFF = ("torch", "jax")
BATCH = 5

FAMILIES = {
    "cosine-quadratic, diagonal A": make_family("cosine-quadratic", d=4, M=3, gamma=0.8, omega=2.0, seed=1),
    "cosine-quadratic, dense A": make_family("cosine-quadratic", d=4, M=3, gamma=0.8, omega=2.0, dense=True,
                                             seed=2),
    "robust-regression": make_family("robust-regression", d=3, M=2, N=5, noise=0.5, outlier_frac=0.25, seed=3),
    "hard-chain": make_family("hard-chain", T=5, M=3, tilt=1.0, seed=4),
}
_LAM = FAMILIES["hard-chain"].lam
# y = x/λ: Ψ is on where 2y − 1 > _U_MIN (y > 0.519), so at "Ψ active" three links
# see Ψ(a) and one Ψ(−a); at "Ψ partly off" y = 0.51 lies in the cut-off band
# (½ < y, Ψ set to 0), one coordinate is on and the tail is zero (zero-respecting)
POINTS = {
    "cosine-quadratic, diagonal A": {"": np.array([0.3, -1.2, 0.7, 2.1])},
    "cosine-quadratic, dense A": {"": np.array([0.3, -1.2, 0.7, 2.1])},
    "robust-regression": {"": np.array([0.5, -0.7, 1.1])},
    "hard-chain": {"Ψ active": _LAM * np.array([0.9, 1.3, 0.7, 0.2, -0.6]),
                   "Ψ partly off": _LAM * np.array([0.3, 0.51, 0.8, 0.0, 0.0])},
}
TASK = 1
# batch kinds: none (the exact task loss), a drawn batch, and for cosine-quadratic
# a Hessian-only batch (need="hess": no ξ̄, taken as 0)
KINDS = {"cosine-quadratic": ("no batch", "drawn batch", "Hessian-only batch"),
         "robust-regression": ("no batch", "drawn batch"),
         "hard-chain": ("no batch", "drawn batch")}
CASES = [(label, point, kind) for label, fam in FAMILIES.items() for point in POINTS[label]
         for kind in KINDS[fam.name]]
IDS = [", ".join(filter(None, c)) for c in CASES]


def _case(label, point, kind):
    """Family, point, task, batch (``None`` for the exact loss) and the batch
    with every key the NumPy oracles read (a Hessian-only batch's ``ξ̄`` is 0)."""
    fam, w = FAMILIES[label], POINTS[label][point]
    rng = np.random.default_rng(sum(map(ord, label + point)))
    batch = None if kind == "no batch" else fam.draw_batch(TASK, BATCH, rng,
                                                           "hess" if kind == "Hessian-only batch" else "both")
    full = batch
    if batch is not None and fam.name == "cosine-quadratic" and "xi" not in batch:
        full = {**batch, "xi": np.zeros(fam.d)}
    return fam, w, TASK, batch, full


def _reference_loss(fam, w, i, batch):
    """The NumPy loss on ``batch``, assembled without ``loss_on``."""
    if batch is None or fam.name == "hard-chain":                   # hard-chain: exact oracles
        return fam.loss(w, i)
    if fam.name == "cosine-quadratic":                               # f_i + η̄γΣcos(ωw) + ξ̄ᵀw
        return fam.loss(w, i) + fam.gamma * batch["eta"] * np.cos(fam.omega * w).sum() + batch["xi"] @ w
    return _loss(*fam._batch_data(np.asarray(i), batch), w)          # mean φ over the batch rows


def _framework(name):
    if name != "numpy":
        pytest.importorskip(name)
    return framework(name)


@functools.lru_cache(maxsize=None)
def _jax_oracles(loss_on):
    """``(loss, framework grad, jax.hessian)`` of ``loss_on`` as one jitted function
    of ``(w, data)``: compiled once per family and array shapes."""
    import jax
    fw = framework("jax")

    def oracles(w, data):
        def f(x):
            return loss_on(fw.ops, x, data)
        return f(w), fw.grad(f, w), jax.hessian(f)(w)
    return jax.jit(oracles)


def _evaluate(name, fam, w, data):
    """Loss, gradient and Hessian of ``fam.loss_on`` at ``w`` in framework
    ``name`` (gradient and Hessian ``None`` for NumPy), as NumPy arrays."""
    fw = _framework(name)
    with fw.float64():
        data = {k: fw.asarray(v) for k, v in data.items()}
        x = fw.asarray(w)
        if name == "numpy":
            return fw.to_numpy(fam.loss_on(fw.ops, x, data)), None, None
        if name == "jax":
            return tuple(fw.to_numpy(a) for a in _jax_oracles(type(fam).loss_on)(x, data))
        import torch

        def f(v):
            return fam.loss_on(fw.ops, v, data)
        return (fw.to_numpy(f(x)), fw.to_numpy(fw.grad(f, x)),
                fw.to_numpy(torch.autograd.functional.hessian(f, x)))


def _error(got, want) -> float:
    """Norm-wise relative error ``‖got − want‖/‖want‖``."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), np.finfo(float).tiny))


# --- the capability ------------------------------------------------------------------------
@pytest.mark.parametrize("label", FAMILIES)
def test_every_family_offers_loss_on(label):
    assert "loss_on" in CAPABILITIES
    assert FAMILIES[label].offers("loss_on")


@pytest.mark.parametrize("label", FAMILIES)
def test_loss_data_takes_one_task_index(label):
    with pytest.raises(ValueError, match="one task index"):
        FAMILIES[label].loss_data(np.array([0, 1]))


def test_the_hard_chain_points_reach_both_branches_of_psi_and_its_cut_off():
    on = 2.0 * POINTS["hard-chain"]["Ψ active"] / _LAM - 1.0 > _U_MIN
    assert on.sum() >= 3
    y = POINTS["hard-chain"]["Ψ partly off"] / _LAM
    assert np.any(y <= 0.5) and np.any((y > 0.5) & (2.0 * y - 1.0 <= _U_MIN)) and np.any(2.0 * y - 1.0 > _U_MIN)


# --- loss, gradient and Hessian in every framework ------------------------------------------
@pytest.mark.parametrize("name", FRAMEWORKS)
@pytest.mark.parametrize("label, point, kind", CASES, ids=IDS)
def test_loss_on_equals_the_numpy_loss_on_the_batch(label, point, kind, name):
    fam, w, i, batch, full = _case(label, point, kind)
    loss, _, _ = _evaluate(name, fam, w, fam.loss_data(i, batch))
    assert _error(loss, _reference_loss(fam, w, i, full)) <= LOSS_TOL


@pytest.mark.parametrize("label", FAMILIES)
def test_without_a_batch_loss_on_is_the_exact_loss_of_every_task(label):
    fam = FAMILIES[label]
    for point, w in POINTS[label].items():
        for i in range(fam.M):
            loss = fam.loss_on(framework("numpy").ops, w, fam.loss_data(i))
            assert _error(loss, fam.loss(w, i)) <= LOSS_TOL, (point, i)


@pytest.mark.parametrize("name", AUTODIFF)
@pytest.mark.parametrize("label, point, kind", CASES, ids=IDS)
def test_the_framework_gradient_equals_the_exact_gradient_oracle(label, point, kind, name):
    fam, w, i, batch, full = _case(label, point, kind)
    _, grad, _ = _evaluate(name, fam, w, fam.loss_data(i, batch))
    want = fam.grad(w, i) if batch is None else fam.batch_grad(w, i, full)
    assert _error(grad, want) <= GRAD_TOL


@pytest.mark.parametrize("name", AUTODIFF)
@pytest.mark.parametrize("label, point, kind", CASES, ids=IDS)
def test_the_framework_hessian_equals_the_exact_hessian_oracle(label, point, kind, name):
    fam, w, i, batch, full = _case(label, point, kind)
    _, _, hess = _evaluate(name, fam, w, fam.loss_data(i, batch))
    want = fam.hess(w, i) if batch is None else fam.batch_hess(w, i, full)
    assert _error(hess, want) <= HESS_TOL


# --- negative controls: the comparisons catch a wrong loss -------------------------------------
def _wrong_data(label, data):
    """A data dict with one plausible mistake in it."""
    if label == "cosine-quadratic, diagonal A":          # the noise amplitude off by 10%
        return {**data, "eta": 1.1 * data["eta"]}
    if label == "cosine-quadratic, dense A":             # the additive gradient noise forgotten
        return {**data, "xi": np.zeros_like(data["xi"])}
    if label == "robust-regression":                     # labels misaligned with their rows by one
        return {**data, "Y": np.concatenate([data["Y"][1:], data["Y"][:1]])}
    return {**data, "sigma": np.zeros(())}               # hard-chain: the task tilt dropped


@pytest.mark.parametrize("name", FRAMEWORKS)
@pytest.mark.parametrize("label", FAMILIES)
def test_a_wrong_loss_misses_the_oracles_by_far_more_than_the_tolerance(label, name):
    fam, w, i, batch, full = _case(label, next(iter(POINTS[label])), "drawn batch")
    loss, grad, hess = _evaluate(name, fam, w, _wrong_data(label, fam.loss_data(i, batch)))
    assert _error(loss, _reference_loss(fam, w, i, full)) > 1e6 * LOSS_TOL
    if name != "numpy":
        assert _error(grad, fam.batch_grad(w, i, full)) > 1e6 * GRAD_TOL
