"""The compiled kernels (``problems.jit``): the numbers of the NumPy code, to
rounding, and the promise that a seed's bits do not depend on the others.

Bugs these catch: a kernel that sums over the wrong points (the batch size, a
task's weight ``p_m``, the Hessian at the inner point instead of ``w``), a
kernel whose lanes or thread blocks mix seeds, a fast sampler that draws in
another order than the generic path (its trajectory then leaves the generic
one at the first step), and a family that offers the kernel without numba.
"""
import ast
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mamlcheck import literature as lit
from mamlcheck.algorithms.engine import trajectory
from mamlcheck.algorithms.fast import sampler as fast_sampler
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F, F_by_tasks, grad_F, grad_F_by_tasks
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import jit
from mamlcheck.problems import robust_regression_kernels as kernels
from mamlcheck.problems.robust_regression import RobustRegression

from .conftest import TEST_ROOT

pytestmark = pytest.mark.skipif(not jit.AVAILABLE, reason="numba not installed (the kernels are not compiled)")


def _family(**kw):
    return RobustRegression(**{"d": 6, "M": 7, "N": 9, "seed": 3, **kw})


@pytest.mark.parametrize("p", [None, "skewed"])
def test_the_kernel_meta_gradient_is_the_task_sum_of_equation_5_to_rounding(p):
    """Against ``meta_grad_by_tasks`` (the NumPy task sum) at points where every
    term matters: α large enough that the inner step moves the residuals, a
    non-uniform ``p`` (a kernel weighting tasks uniformly is off by ~10 %)."""
    probs = None if p is None else np.arange(1.0, 8.0) / 28.0
    fam = _family(p=probs)
    rng = np.random.default_rng(TEST_ROOT)
    W = rng.standard_normal((11, fam.d)) * 2
    alpha = 0.5 / fam.constants().L.value
    assert fam.offers("meta_grad") and fam.offers("meta_loss")
    got, ref = grad_F(fam, W, alpha), grad_F_by_tasks(fam, W, alpha)
    assert np.max(np.abs(got - ref)) <= 1e-13 * np.max(np.abs(ref))
    assert np.allclose(F(fam, W, alpha), F_by_tasks(fam, W, alpha), rtol=1e-14, atol=0)
    # the Hessian factor is not negligible at these points: dropping it is seen
    fo = np.einsum("m,rmd->rd", fam.p, fam.grad(W[:, None, :] - alpha * fam.grad(W[:, None, :], np.arange(fam.M)),
                                                   np.arange(fam.M)))
    assert np.max(np.abs(fo - ref)) > 1e-3 * np.max(np.abs(ref))


def test_a_point_s_meta_gradient_has_the_same_bits_alone_in_blocks_and_on_any_thread_count():
    """Rows computed one by one (the one-thread kernel), in a batch below and above
    ``LANES_MIN_ROWS`` (vector lanes, thread blocks) and in uneven sub-batches."""
    fam = _family()
    W = np.random.default_rng(TEST_ROOT + 1).standard_normal((3 * kernels.LANES_MIN_ROWS + 3, fam.d))
    alpha = 0.3 / fam.constants().L.value
    together = fam.meta_grad(W, alpha)
    alone = np.stack([fam.meta_grad(W[r], alpha) for r in range(W.shape[0])])
    k = kernels.LANES_MIN_ROWS - 1
    split = np.concatenate([fam.meta_grad(W[:k], alpha), fam.meta_grad(W[k:k + 7], alpha), fam.meta_grad(W[k + 7:], alpha)])
    assert np.array_equal(together, alone) and np.array_equal(together, split)
    losses = fam.meta_loss(W, alpha)
    assert np.array_equal(losses, [fam.meta_loss(W[r], alpha) for r in range(W.shape[0])])
    assert fam.meta_grad(W.reshape(3, -1, fam.d), alpha).shape == (3, W.shape[0] // 3, fam.d)


ALGORITHMS = ["maml", "fomaml", "hfmaml"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_kernel_sampler_follows_the_generic_estimator_draw_for_draw(algorithm):
    """Same streams, ``fast=True`` (the kernels) against ``fast=False`` (the
    estimators of ``algorithms.estimators`` on the family's oracles): the same
    draws, so the same iterates and step sizes to rounding, over 25 steps with
    batches of several points (a kernel that divides by the wrong batch size or
    draws in another order is off by ≥ 1e-3 at the first step)."""
    fam = _family()
    L = fam.constants().L.value
    hyper = Hyper(algorithm, alpha=lit.ALPHA_MAX_LD[algorithm] / L, B=4, D_in=3, D_o=2, D_h=5)
    assert fast_sampler(fam, algorithm) is not None
    fast = list(trajectory(fam, hyper, seeds=3, root=TEST_ROOT, budget=25, w0=np.ones(fam.d), fast=True))
    slow = list(trajectory(fam, hyper, seeds=3, root=TEST_ROOT, budget=25, w0=np.ones(fam.d), fast=False))
    moved = np.max(np.abs(slow[-1].w - slow[0].w))
    assert moved > 1e-3
    for a, b in zip(fast[1:], slow[1:]):
        assert np.max(np.abs(a.w - b.w)) <= 1e-12 * moved
        assert np.max(np.abs(a.beta / b.beta - 1)) <= 1e-12


@pytest.mark.parametrize("algorithm", ALGORITHMS + ["exact"])
def test_robust_regression_seeds_run_alone_equal_the_batched_run_bit_for_bit(algorithm):
    """The runner's tables and iterates on the kernel paths, seed by seed, with
    enough seeds for the lanes and thread blocks of the ``∇F`` kernel."""
    fam = _family()
    hyper = Hyper(algorithm, alpha=0.1 / fam.constants().L.value, B=3, D_in=2, D_o=2, D_h=2)
    seeds = list(range(kernels.LANES_MIN_ROWS + 3))
    together = run(fam, hyper, [1e-1, 1e-3], seeds=seeds, budget=15, w0=np.ones(fam.d), trace_stride=5)
    for r in (0, seeds[-1]):
        alone = run(fam, hyper, [1e-1, 1e-3], seeds=[r], budget=15, w0=np.ones(fam.d), trace_stride=5)
        assert np.array_equal(together.w[r], alone.w[0])
        pd.testing.assert_frame_equal(together.trace[together.trace.seed == r].reset_index(drop=True),
                                      alone.trace.reset_index(drop=True), check_exact=True)


def test_without_numba_the_family_offers_no_kernel_and_runs_the_numpy_code():
    """``MAMLCHECK_NO_JIT=1``: no ``meta_grad`` capability, no registered sampler,
    and the run's iterates equal the kernel run's to rounding."""
    code = ("import numpy as np; from mamlcheck.problems.robust_regression import RobustRegression; "
            "from mamlcheck.algorithms.fast import sampler; from mamlcheck.algorithms.hyper import Hyper; "
            "from mamlcheck.algorithms.engine import trajectory; "
            "f = RobustRegression(d=6, M=7, N=9, seed=3); "
            "print(f.offers('meta_grad'), sampler(f, 'maml') is None); "
            "s = list(trajectory(f, Hyper('maml', alpha=0.1, B=4, D_in=3, D_o=2, D_h=5), seeds=2, budget=10, "
            "w0=np.ones(6)))[-1]; print(repr(s.w.tolist()))")
    env = {**os.environ, "MAMLCHECK_NO_JIT": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    first, second = out.splitlines()
    assert first == "False True"
    fam = _family()
    mine = list(trajectory(fam, Hyper("maml", alpha=0.1, B=4, D_in=3, D_o=2, D_h=5), seeds=2, budget=10,
                           w0=np.ones(6)))[-1].w
    assert np.max(np.abs(np.array(ast.literal_eval(second)) - mine)) <= 1e-13


def test_hf_maml_on_the_kernel_path_without_its_difference_rule_is_refused():
    """Without ``δ`` the HF-MAML direction would silently be MAML's."""
    fam = _family()
    hyper = Hyper("hfmaml", alpha=0.05, B=2).resolved(fam.constants())
    w = np.zeros((1, fam.d))
    with pytest.raises(ValueError, match="delta"):
        fast_sampler(fam, "hfmaml").direction(w, fam.draw_tasks((1, 2), np.random.default_rng(0)), hyper,
                                              np.random.default_rng(0))
