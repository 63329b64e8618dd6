"""The step's entry points as callers use them (mutation/results.md listed their mutants as
survivors): ``step_size`` is ``1/(c·L̃(w))`` with the ``L̃`` estimate of the path asked for,
and ``direction`` at a single point is the batched direction of that one seed."""
import copy

import numpy as np
import pytest

from mamlcheck import literature as lit
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import grad_F
from mamlcheck.algorithms.steps import direction, estimate_L_tilde, step_size
from mamlcheck.problems import make_family

from .conftest import TEST_ROOT


def _setup(algorithm="maml"):
    fam = make_family("cosine-quadratic", d=4, M=6, gamma=0.3, noise_grad=0.4, noise_amp=0.3)
    c = fam.constants()
    hyper = Hyper(algorithm, alpha=lit.ALPHA_MAX_LD["maml"] / c.L.value, B=3).resolved(c)
    w = np.random.default_rng([TEST_ROOT, 90]).standard_normal((5, fam.d))
    return fam, hyper, c.L.value, c.rho.value, w


@pytest.mark.parametrize("fast", [False, True])
def test_the_adaptive_step_is_one_over_c_times_the_L_tilde_estimate_of_the_path_asked_for(fast):
    """``β = 1/(c·L̃)`` (step-size lemma, THEORY.md §3) with ``L̃`` drawn on the same stream by
    the same path: the fast sampler's norms are other draws than the generic oracle's, so a
    step that ignored ``fast`` (or defaulted to the other path) gives other numbers, and a
    ``2/(c·L̃)`` gives twice these."""
    fam, hyper, L, rho, w = _setup()
    rng = np.random.default_rng([TEST_ROOT, 91])
    want = 1.0 / (hyper.c * estimate_L_tilde(fam, w, hyper, L, rho, copy.deepcopy(rng), fast=fast))
    other = 1.0 / (hyper.c * estimate_L_tilde(fam, w, hyper, L, rho, copy.deepcopy(rng), fast=not fast))
    got = step_size(fam, w, hyper, L, rho, copy.deepcopy(rng), **({"fast": True} if fast else {}))
    np.testing.assert_array_equal(got, want)
    assert np.all(got != other)                  # the control: the two paths draw differently


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("algorithm", ["maml", "fomaml"])
def test_the_direction_at_a_single_point_is_the_one_seed_batched_direction(algorithm, fast):
    fam, hyper, _, rho, w = _setup(algorithm)
    rng = np.random.default_rng([TEST_ROOT, 92])
    one = direction(fam, w[0], hyper, rho, copy.deepcopy(rng), fast=fast)
    batched = direction(fam, w[:1], hyper, rho, copy.deepcopy(rng), fast=fast)
    assert one.shape == (fam.d,)
    np.testing.assert_array_equal(one, batched[0])
    other = direction(fam, w[:1], hyper, rho, copy.deepcopy(rng), fast=not fast)
    assert np.all(one != other[0])               # the control: the fast path draws differently


def test_exact_mode_at_a_single_point_steps_along_the_gradient_it_is_given():
    """Exact mode takes ``∇F(w)`` from the caller when given (it has it from the stop rule):
    a single point passes it on, and without it the direction is ``∇F(w)`` itself."""
    fam, _, _, rho, w = _setup()
    hyper = Hyper("exact", alpha=0.01)
    given = np.arange(1.0, fam.d + 1)
    np.testing.assert_array_equal(direction(fam, w[0], hyper, rho, None, grad=given), given)
    np.testing.assert_array_equal(direction(fam, w[0], hyper, rho, None), grad_F(fam, w[0], 0.01))
