"""Multi-step MAML (Ji, Yang & Liang 2022): the exact N-step objective, its
gradient, and the stochastic N-step estimator, each against an independent
computation.

* ``∇F_N`` (backward Hessian-vector products through the inner loop) against a
  forward product of full Hessian matrices ``J_{j+1} = (I − α∇²f_i(u^j)) J_j``
  to 1e-10, and against central differences of ``F_N`` (the scheme's own
  tolerance), for N = 1…10 on every family; N = 1 is equation (5) bit for bit.
* The stochastic estimator draw by draw: with noise-free oracles it is the
  exact per-task term (MAML), ``∇f_i(u^N)`` (FO-MAML), and within the
  central-difference error of the exact term (HF-MAML).
* Its mean against its exact expectation where the family gives one: on
  quadratic tasks with additive noise (``cosine-quadratic`` with ``γ = 0``)
  the estimator is unbiased, so its sample mean must match the exact term.
"""
import numpy as np
import pytest
from scipy.stats import norm

from mamlcheck.algorithms.estimators import algorithm
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F, grad_F, grad_F_by_tasks
from mamlcheck.problems import make_family
from tests.conftest import TEST_ROOT
from tests.finite_differences import fd_jacobian, fd_tolerance

FAMILIES = {
    "cosine-quadratic": dict(d=4, M=3),
    "cosine-quadratic-dense": dict(d=4, M=3, dense=True),
    "robust-regression": dict(d=3, M=3, N=8),
    "hard-chain": dict(T=6),
}


def _family(key):
    return make_family(key.replace("-dense", ""), **FAMILIES[key])


def _point(fam, seed=0):
    w = np.random.default_rng(seed).standard_normal(fam.d)
    return w * fam.lam if fam.name == "hard-chain" else w


def _alpha(fam, N):
    """An inner step inside the theorem's range, ``α = 1/(8NL)``."""
    return 1.0 / (8 * N * fam.constants().L.value)


def forward_meta_grad(fam, w, alpha, N):
    """``Σ_i p_i J_iᵀ ∇f_i(u_i^N)`` with the Jacobian of the inner loop built
    forward from full Hessians, ``J_{j+1} = (I − α∇²f_i(u^j)) J_j`` (independent
    of the backward Hessian-vector products of ``grad_F``)."""
    out = np.zeros(fam.d)
    for i in range(fam.M):
        u, J = w.copy(), np.eye(fam.d)
        for _ in range(N):
            J = (np.eye(fam.d) - alpha * fam.hess(u, i)) @ J
            u = u - alpha * fam.grad(u, i)
        out += fam.p[i] * J.T @ fam.grad(u, i)
    return out


@pytest.mark.parametrize("key", FAMILIES)
@pytest.mark.parametrize("N", [1, 2, 3, 5, 10])
def test_the_N_step_gradient_is_the_forward_product_of_the_inner_jacobians(key, N):
    fam = _family(key)
    w, alpha = _point(fam), _alpha(fam, N)
    g = grad_F(fam, w, alpha, inner_steps=N)
    ref = forward_meta_grad(fam, w, alpha, N)
    assert np.abs(g - ref).max() <= 1e-10 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("key", FAMILIES)
@pytest.mark.parametrize("N", [2, 4, 10])
def test_the_N_step_gradient_matches_finite_differences_of_F_N(key, N):
    fam = _family(key)
    w, alpha = _point(fam, 1), _alpha(fam, N)
    h = 1e-5 * (fam.lam if fam.name == "hard-chain" else 1.0)
    fd = fd_jacobian(lambda x: F(fam, x, alpha, inner_steps=N), w, h=h)
    assert np.abs(grad_F(fam, w, alpha, inner_steps=N) - fd).max() <= fd_tolerance(fd, F(fam, w, alpha, N))


def test_the_forward_check_catches_a_product_in_the_wrong_order():
    """Negative control: on tasks whose Hessians vary along the inner path
    (robust-regression), the factors applied first-point-first give another
    vector; the 1e-10 comparison must see it."""
    fam = _family("robust-regression")
    w, alpha, N = _point(fam), 0.9 / fam.constants().L.value, 3
    i = np.arange(fam.M)
    u = fam.inner_trajectory(w, alpha, N)
    v = fam.grad(u[-1], i)
    for u_j in u[:-1]:                       # wrong order: u^0's factor first
        v = v - alpha * fam.hvp(u_j, i, v)
    wrong = fam.p @ v
    ref = forward_meta_grad(fam, w, alpha, N)
    assert np.abs(wrong - ref).max() > 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("key", FAMILIES)
def test_one_inner_step_is_equation_5_bit_for_bit(key):
    fam = _family(key)
    w, alpha = _point(fam, 2)[None], _alpha(fam, 1)
    we, i = w[:, None, :], np.arange(fam.M)
    v = fam.grad(we - alpha * fam.grad(we, i), i)
    eq5 = np.einsum("m,...md->...d", fam.p, v - alpha * fam.hvp(we, i, v))
    assert np.array_equal(grad_F_by_tasks(fam, w, alpha, 1), eq5)
    assert np.array_equal(grad_F(fam, w, alpha), grad_F(fam, w, alpha, inner_steps=1))
    assert np.array_equal(F(fam, w, alpha), F(fam, w, alpha, inner_steps=1))


def test_a_bad_number_of_inner_steps_is_refused_by_name():
    fam = _family("cosine-quadratic")
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="inner_steps"):
            grad_F(fam, np.zeros(fam.d), 0.1, inner_steps=bad)
        with pytest.raises(ValueError, match="inner_steps"):
            Hyper(inner_steps=bad)


# --- the stochastic estimator, draw by draw -------------------------------------------
def _noise_free(key):
    params = dict(FAMILIES[key])
    if key.startswith("cosine-quadratic"):
        params.update(noise_grad=0.0, noise_amp=0.0)
    return make_family(key.replace("-dense", ""), **params)


def _exact_terms(fam, w, alpha, N, tasks, first_order=False):
    """The exact per-task term of ``∇F_N`` (or ``∇f_i(u^N)``) for each task id."""
    out = []
    for i in tasks:
        u, J = w.copy(), np.eye(fam.d)
        for _ in range(N):
            J = (np.eye(fam.d) - alpha * fam.hess(u, i)) @ J
            u = u - alpha * fam.grad(u, i)
        out.append(fam.grad(u, i) if first_order else J.T @ fam.grad(u, i))
    return np.array(out)


@pytest.mark.parametrize("key", ["cosine-quadratic", "cosine-quadratic-dense"])
@pytest.mark.parametrize("N", [1, 3, 7])
def test_without_noise_each_estimator_is_its_exact_per_task_term(key, N):
    fam = _noise_free(key)
    w, alpha = _point(fam, 3), _alpha(fam, N)
    tasks = np.array([[0, 1, 2, 1]])
    rho = fam.constants().rho.value
    for name, first_order, tol in (("maml", False, 1e-12), ("fomaml", True, 1e-12), ("hfmaml", False, 1e-6)):
        hyper = Hyper(name, alpha=alpha, inner_steps=N, step_c=12.0, delta_cap=1e-4 if name == "hfmaml" else None)
        G = algorithm(name).task_directions(fam, w[None], tasks, hyper, rho, np.random.default_rng(0))
        ref = _exact_terms(fam, w, alpha, N, tasks[0], first_order)
        assert G.shape == (1, 4, fam.d)
        assert np.abs(G[0] - ref).max() <= tol * max(1.0, np.abs(ref).max()), name


def test_each_further_inner_step_costs_its_algorithms_calls():
    assert [algorithm(a).calls(N) for a in ("maml", "fomaml", "hfmaml", "exact") for N in (1, 4)] == \
        [3, 9, 2, 5, 4, 13, 0, 0]


# --- the estimator's mean against its exact expectation ----------------------------------
# On f_i(w) = ½(w − c_i)ᵀA(w − c_i) with additive gradient noise ξ (cosine-quadratic,
# γ = 0) the inner points are linear in the noise and the Hessian is A exactly, so
# E[G_i] = (I − αA)^N A(ū^N − c_i): the exact per-task term of ∇F_N.  Test: the sample
# mean of n draws, coordinate by coordinate, z = (mean − exact)/(s/√n), rejected when
# max_j |z_j| > z* with z* = Φ⁻¹(1 − 1e-6/(2d)) (two-sided, Bonferroni over the d
# coordinates): false-alarm rate ≤ 1e-6 (n = 40 000: the t and normal quantiles agree
# to < 1 %).  Power: against the alternatives below, whose means differ from the
# exact term by Δ_j ≥ 40 standard errors, P(max|z| ≤ z*) ≤ Φ(z* − 40) ≈ 0.
Z_STAR_D4 = norm.isf(1e-6 / (2 * 4))


def _mean_and_se(fam, w, hyper, task, n):
    rng = np.random.default_rng(7919 + TEST_ROOT)
    G = algorithm(hyper.algorithm).task_directions(fam, np.repeat(w[None], n // 100, 0),
                                                   np.full((n // 100, 100), task), hyper, 0.0, rng)
    G = G.reshape(-1, fam.d)
    return G.mean(0), G.std(0, ddof=1) / np.sqrt(G.shape[0])


@pytest.mark.parametrize("N", [2, 5])
def test_the_N_step_estimators_mean_is_its_exact_expectation_and_an_off_by_one_is_rejected(N):
    fam = make_family("cosine-quadratic", d=4, M=3, gamma=0.0, noise_grad=1.0)
    w, alpha, task, n = _point(fam, 4), 0.5 / (N * fam.constants().L.value), 1, 40_000
    mean, se = _mean_and_se(fam, w, Hyper("maml", alpha=alpha, inner_steps=N), task, n)
    exact = _exact_terms(fam, w, alpha, N, [task])[0]
    assert np.abs((mean - exact) / se).max() <= Z_STAR_D4
    # negative controls of the size of a plausible bug: one inner step too few, and
    # the Hessian factors dropped (FO-MAML's direction); each must be ≥ 40 SE away
    for wrong in (_exact_terms(fam, w, alpha, N - 1, [task])[0],
                  _exact_terms(fam, w, alpha, N, [task], first_order=True)[0]):
        assert np.abs((wrong - exact) / se).max() >= 40
        assert np.abs((mean - wrong) / se).max() > Z_STAR_D4


def test_the_proof_ledger_refuses_N_steps_by_name_before_any_work():
    """Its (7), (8), (11), (14) are the one-step proof's; for N > 1 their constants
    are not known (THEORY.md §9), so a ledger of an N-step run would be a wrong
    certificate."""
    from mamlcheck.experiments.ledger import evaluate
    with pytest.raises(ValueError, match="inner_steps must be 1"):
        evaluate(_family("cosine-quadratic"), Hyper("maml", alpha=0.01, inner_steps=2), eps=0.1)


def test_no_fast_sampler_serves_more_than_one_inner_step():
    from mamlcheck.algorithms.steps import has_fast_direction
    fam = _family("cosine-quadratic")
    assert has_fast_direction(fam, "maml") and has_fast_direction(fam, "maml", 1)
    assert not has_fast_direction(fam, "maml", 2)


def test_the_trace_of_an_N_step_run_records_F_N():
    from mamlcheck.algorithms.runner import run
    fam = _family("robust-regression")
    alpha = 0.9 / fam.constants().L.value
    res = run(fam, Hyper("exact", alpha=alpha, inner_steps=3), [1e-9], seeds=1, budget=2, trace_stride=1)
    first = res.trace[res.trace.k == 0].F.iloc[0]
    assert first == F(fam, np.zeros(fam.d), alpha, inner_steps=3) != F(fam, np.zeros(fam.d), alpha)
