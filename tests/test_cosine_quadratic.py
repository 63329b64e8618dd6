"""cosine-quadratic: derivatives, the O(d) meta-objective, certified constants,
stochastic oracles, validation (THEORY.md §1–§2)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import optimize, stats

from mamlcheck.algorithms.objective import F_by_tasks, grad_F_by_tasks
from mamlcheck.problems import make_family
from mamlcheck.problems.cosine_quadratic import CosineQuadratic
from tests.finite_differences import fd_jacobian, fd_tolerance

instances = st.builds(
    CosineQuadratic,
    d=st.integers(1, 6), M=st.integers(1, 5),
    gamma=st.floats(0.0, 2.0), omega=st.floats(0.2, 3.0),
    a_min=st.floats(0.1, 1.0), a_max=st.floats(1.0, 5.0),
    spread=st.floats(0.0, 3.0), dense=st.booleans(), seed=st.integers(0, 2**16))


def _point(fam, seed, scale=3.0):
    return scale * np.random.default_rng(seed).standard_normal(fam.d)


def _derivative_errors(fam, w, i, grad=None):
    """Max errors of grad, hess, hvp against central differences, with tolerances."""
    grad = grad or fam.grad
    g = grad(w, i)
    g_fd = fd_jacobian(lambda x: fam.loss(x, i), w)
    H = fam.hess(w, i)
    H_fd = fd_jacobian(lambda x: grad(x, i), w)
    v = np.linspace(-1, 1, fam.d)
    return [(np.abs(g - g_fd).max(), fd_tolerance(g, fam.loss(w, i))),
            (np.abs(H - H_fd).max(), fd_tolerance(H, g)),
            (np.abs(fam.hvp(w, i, v) - H @ v).max(), 1e-12 * (1 + np.abs(H).sum()))]


@given(instances, st.integers(0, 2**16))
def test_derivatives_match_finite_differences(fam, seed):
    w = _point(fam, seed)
    for err, tol in _derivative_errors(fam, w, np.int64(seed % fam.M)):
        assert err <= tol


def test_finite_difference_check_catches_a_wrong_gradient():
    """Negative control: a gradient with the ripple's sign flipped must fail."""
    fam = CosineQuadratic(d=4, M=2, gamma=1.0, omega=2.0)
    wrong = lambda w, i: fam._Av(w - fam.c[i]) + fam.gamma * fam.omega * np.sin(fam.omega * w)
    err, tol = _derivative_errors(fam, _point(fam, 1), 0, grad=wrong)[0]
    assert err > 100 * tol


@given(instances, st.floats(0.0, 0.5), st.integers(0, 2**16))
def test_fast_meta_objective_equals_task_sum(fam, alpha, seed):
    """The O(d) angle-addition path equals the plain sums (1) and (5) to rounding."""
    w = 2.0 * np.random.default_rng(seed).standard_normal((3, fam.d))
    F_ref, G_ref = F_by_tasks(fam, w, alpha), grad_F_by_tasks(fam, w, alpha)
    # rounding: a few ulps of the largest summand, which is O(‖A‖(‖w‖+‖c‖)²)
    scale = 1.0 + np.abs(F_ref).max() + np.abs(G_ref).max() + fam.eig[-1] * (1 + np.abs(fam.c).max()) ** 2
    assert np.abs(fam.meta_loss(w, alpha) - F_ref).max() <= 1e-12 * scale
    assert np.abs(fam.meta_grad(w, alpha) - G_ref).max() <= 1e-12 * scale


def _max_hessian_eig(fam, starts=6):
    """Search for sup_w λ_max(∇²f(w)) by maximising it from random starts."""
    best = -np.inf
    for s in range(starts):
        res = optimize.minimize(lambda x: -np.linalg.eigvalsh(fam.hess(x, 0))[-1],
                                _point(fam, s), method="Nelder-Mead" if fam.d < 3 else "Powell")
        best = max(best, -res.fun)
    return best


@given(instances, st.integers(0, 2**16), st.floats(1e-3, 2.0))
def test_certified_L_and_rho_hold_on_drawn_pairs(fam, seed, dist):
    c = fam.constants()
    rng = np.random.default_rng(seed)
    w = 3 * rng.standard_normal((64, fam.d))
    u = w + dist * rng.standard_normal((64, fam.d))
    i = rng.integers(0, fam.M, 64)
    step = np.linalg.norm(w - u, axis=-1)
    ratio_L = np.linalg.norm(fam.grad(w, i) - fam.grad(u, i), axis=-1) / step
    ratio_rho = np.linalg.norm(fam.hess(w, i) - fam.hess(u, i), ord=2, axis=(-2, -1)) / step
    # 1e-9 relative slack covers rounding in differences of O(L‖w‖) quantities
    assert ratio_L.max() <= c.L.value * (1 + 1e-9) + 1e-9
    assert ratio_rho.max() <= c.rho.value * (1 + 1e-9) + 1e-9


@pytest.mark.parametrize("dense", [False, True])
def test_exact_L_and_rho_are_attained(dense):
    """Constants marked exact are not loose: a search comes within 3 % of them."""
    fam = CosineQuadratic(d=3, M=2, gamma=0.7, omega=1.5, dense=dense, seed=3)
    c = fam.constants()
    assert c.L.exact and c.rho.exact
    assert _max_hessian_eig(fam) >= 0.97 * c.L.value
    # ρ: along coordinate 0 at sin(ωw_0) = 1, a small step realises γω³
    w = np.zeros(3)
    w[0] = np.pi / (2 * fam.omega)
    u = w + np.array([1e-4, 0, 0])
    ratio = np.linalg.norm(fam.hess(w, 0) - fam.hess(u, 0), ord=2) / 1e-4
    assert 0.97 * c.rho.value <= ratio <= c.rho.value * (1 + 1e-9)


def test_sigma_is_exact_and_w_independent():
    fam = CosineQuadratic(d=4, M=6, p=np.arange(1, 7) / 21, seed=5)
    w = np.random.default_rng(0).standard_normal((5, 1, 4))
    i = np.arange(6)
    dev = fam.grad(w, i) - np.einsum("m,smd->sd", fam.p, fam.grad(w, i))[:, None]
    sig2 = np.einsum("m,sm->s", fam.p, (dev ** 2).sum(-1))
    np.testing.assert_allclose(sig2, fam.constants().sigma.value ** 2, rtol=1e-12)


# --- stochastic oracles ------------------------------------------------------------
Z_1E6 = stats.norm.isf(1e-6)  # one-sided false-alarm rate 1e-6 per check


def _noise_moments(fam, w, n, draws, seed, scale_bug=1.0):
    rng = np.random.default_rng(seed)
    i = np.zeros(draws, dtype=int)
    batch = fam.draw_batch(i, n, rng)
    batch = {k: scale_bug * v for k, v in batch.items()}
    e = fam.batch_grad(np.broadcast_to(w, (draws, fam.d)), i, batch) - fam.grad(w, 0)
    sq = (e ** 2).sum(-1)
    return e, sq


def _variance_matches(sq, target):
    """z-test of mean(‖e‖²) = target at false-alarm rate 2e-6 (two-sided)."""
    z = (sq.mean() - target) / (sq.std(ddof=1) / np.sqrt(sq.size))
    return abs(z) < Z_1E6


@pytest.mark.parametrize("n", [1, 7])
def test_gradient_oracle_unbiased_with_variance_sigma_tilde_sq_over_n(n):
    """At sin ωw_j = ±1 (where the sup in A5 is attained) the batch-mean
    gradient noise has E‖e‖² = σ̃²/n exactly; tested at false-alarm 2e-6."""
    fam = CosineQuadratic(d=3, M=2, noise_grad=0.8, noise_amp=0.6)
    w = np.full(3, np.pi / (2 * fam.omega))
    e, sq = _noise_moments(fam, w, n, 200_000, seed=11)
    se = e.std(axis=0, ddof=1) / np.sqrt(e.shape[0])
    assert np.all(np.abs(e.mean(0)) < Z_1E6 * se)          # unbiased
    assert _variance_matches(sq, fam.constants().sigma_tilde.value ** 2 / n)


def test_variance_check_catches_a_wrong_batch_scaling():
    """Negative control: noise scaled as 1/n instead of 1/√n must be caught."""
    fam = CosineQuadratic(d=3, M=2, noise_grad=0.8, noise_amp=0.6)
    w = np.full(3, np.pi / (2 * fam.omega))
    _, sq = _noise_moments(fam, w, 4, 200_000, seed=11, scale_bug=0.5)
    assert not _variance_matches(sq, fam.constants().sigma_tilde.value ** 2 / 4)


def test_hessian_oracle_variance_is_sigma_H_sq_over_n():
    """At w = 0 (where the sup is attained) E‖∇̃²f − ∇²f‖₂² = σ_H²/n."""
    fam = CosineQuadratic(d=3, M=2, noise_amp=0.6)
    n, draws = 3, 100_000
    i = np.zeros(draws, dtype=int)
    H = fam.batch_hess(np.zeros((draws, 3)), i, fam.draw_batch(i, n, np.random.default_rng(2)))
    sq = np.linalg.norm(H - fam.hess(np.zeros(3), 0), ord=2, axis=(-2, -1)) ** 2
    assert _variance_matches(sq, fam.constants().sigma_H.value ** 2 / n)
    v = np.array([1.0, -2.0, 0.5])
    b = fam.draw_batch(np.zeros(4, dtype=int), n, np.random.default_rng(3))
    np.testing.assert_allclose(fam.batch_hvp(np.ones((4, 3)), np.zeros(4, dtype=int), v, b),
                               fam.batch_hess(np.ones((4, 3)), np.zeros(4, dtype=int), b) @ v, rtol=1e-12)


def test_same_seed_same_draws():
    fam = CosineQuadratic(d=3, M=4)
    a = fam.sample_grad(np.ones(3), np.arange(4), 5, np.random.default_rng(9))
    b = fam.sample_grad(np.ones(3), np.arange(4), 5, np.random.default_rng(9))
    assert np.array_equal(a, b)


def test_inf_f_lower_is_below_every_found_minimum():
    fam = CosineQuadratic(d=3, M=3, gamma=1.0, omega=2.0, seed=4)
    lower = fam.inf_f_lower()
    starts = np.random.default_rng(0).normal(0, 1.5, (60, fam.d))
    found = [min(optimize.minimize(lambda x: fam.loss(x, i), fam.c[i] + s, method="BFGS").fun
                 for s in starts) for i in range(fam.M)]
    assert lower <= fam.p @ np.array(found)
    # not loose: the certified grid margin here is Σ_j (a r + γω)δ/2 ≈ 5e-3
    assert lower >= fam.p @ np.array(found) - 1e-2


@pytest.mark.parametrize("params, name", [
    ({"omega": -1.0}, "omega"), ({"gamma": -0.1}, "gamma"), ({"p": [0.5, 0.6]}, "p"),
    ({"A": np.array([[1.0, 2.0], [2.0, 1.0]])}, "A"), ({"A": np.array([1.0, -1.0])}, "A"),
    ({"centres": np.zeros((3, 2))}, "centres"), ({"d": 0}, "d"), ({"a_min": 2.0, "a_max": 1.0}, "a_max"),
])
def test_bad_parameters_raise_naming_the_parameter(params, name):
    kw = {"d": 2, "M": 2, **params}
    with pytest.raises(ValueError, match=name):
        make_family("cosine-quadratic", **kw)


def test_bad_shapes_and_unknown_names_raise():
    fam = make_family("cosine-quadratic", d=3, M=2)
    with pytest.raises(ValueError, match="w must have shape"):
        fam.grad(np.ones(4), 0)
    with pytest.raises(ValueError, match="task indices"):
        fam.grad(np.ones(3), 5)
    with pytest.raises(ValueError, match="unknown family"):
        make_family("no-such-family")
    with pytest.raises(ValueError, match="unknown parameter"):
        make_family("cosine-quadratic", dimension=3)
