"""robust-regression: derivatives, the MAML objective, certified constants,
data-sampling oracles, validation (THEORY.md §1–§2)."""
import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mamlcheck.algorithms.objective import F, grad_F
from mamlcheck.problems import family_parameters, make_family
from mamlcheck.problems import robust_regression as rr
from mamlcheck.problems.robust_regression import RobustRegression
from tests.finite_differences import fd_jacobian, fd_tolerance

# R ≤ 2 and ‖w‖ ≲ 10 keep the central-difference truncation error
# h²·sup|φ''''|·R⁴/6 (sup|φ''''| = 3) far below fd_tolerance
instances = st.builds(
    RobustRegression,
    d=st.integers(1, 4), M=st.integers(1, 3), N=st.integers(1, 8),
    R=st.floats(0.2, 2.0), spread=st.floats(0.0, 3.0), noise=st.floats(0.0, 1.0),
    outlier_frac=st.floats(0.0, 0.5), seed=st.integers(0, 2**16))
scales = st.sampled_from([0.0, 0.3, 1.0, 3.0, 8.0])   # near the fit ... far from it


def _point(fam, seed, scale, shape=()):
    """A point at ``scale`` (Gaussian) from the mean task optimum."""
    rng = np.random.default_rng(seed)
    return fam.w_star.mean(0) + scale * rng.standard_normal(shape + (fam.d,))


def _per_sample(fam, w):
    """Per-sample gradients ``(M, N, d)`` and Hessians ``(M, N, d, d)`` of every
    data point, straight from the formulas ``−φ'(r)x`` and ``φ''(r)xxᵀ``."""
    r = fam.Y - fam.X @ w
    g = -rr.dphi(r)[..., None] * fam.X
    H = rr.d2phi(r)[..., None, None] * fam.X[..., :, None] * fam.X[..., None, :]
    return g, H


# --- derivatives ---------------------------------------------------------------------
def _derivative_errors(fam, w):
    """Max errors of grad, hess (all tasks at once) against central differences,
    and of hvp against the dense Hessian, with tolerances."""
    i = np.arange(fam.M)
    g, H = fam.grad(w, i), fam.hess(w, i)
    g_fd = fd_jacobian(lambda x: fam.loss(x, i), w)
    H_fd = fd_jacobian(lambda x: fam.grad(x, i), w)
    v = np.linspace(-1, 1, fam.d)
    return [(np.abs(g - g_fd).max(), fd_tolerance(g, fam.loss(w, i))),
            (np.abs(H - H_fd).max(), fd_tolerance(H, g)),
            (np.abs(fam.hvp(w, i, v) - H @ v).max(), 1e-12 * (1 + np.abs(H).sum()))]


@given(instances, st.integers(0, 2**16), scales)
def test_derivatives_match_finite_differences(fam, seed, scale):
    for err, tol in _derivative_errors(fam, _point(fam, seed, scale)):
        assert err <= tol


def test_phi_derivatives_and_their_sups():
    """φ', φ'', φ''' against differences of φ, φ', φ''; the closed-form sups are
    attained where the module says and not exceeded on a fine grid."""
    r = np.linspace(-40, 40, 400_001)
    for f, df in ((rr.phi, rr.dphi), (rr.dphi, rr.d2phi), (rr.d2phi, rr.d3phi)):
        fd = fd_jacobian(lambda x: f(x[..., 0]), r[:, None])[:, 0]
        assert np.abs(fd - df(r)).max() <= fd_tolerance(df(r))
    for f, sup, at in ((rr.dphi, rr.SUP_DPHI, np.sqrt(2)), (rr.d2phi, rr.SUP_D2PHI, 0.0),
                       (rr.d3phi, rr.SUP_D3PHI, -(2 - np.sqrt(2)))):
        assert np.abs(f(r)).max() <= sup * (1 + 1e-14)
        assert abs(f(at)) == pytest.approx(sup, rel=1e-14)
    assert rr.d2phi(r).min() >= rr.MIN_D2PHI - 1e-15
    assert rr.d2phi(np.sqrt(6)) == pytest.approx(rr.MIN_D2PHI, rel=1e-14)
    assert rr.phi(r).min() >= 0.0


@pytest.mark.parametrize("which", ["d2phi", "dphi"])
def test_finite_difference_check_catches_a_wrong_derivative(monkeypatch, which):
    """Negative control: a sign-flipped φ'' (wrong Hessian) or a halved φ'
    (wrong gradient) must fail the same check by a wide margin."""
    fam = RobustRegression(d=3, M=2, N=6, seed=1)
    w = _point(fam, 2, 0.3)
    right = getattr(rr, which)
    monkeypatch.setattr(rr, which, (lambda r: -right(r)) if which == "d2phi" else (lambda r: 0.5 * right(r)))
    err, tol = _derivative_errors(fam, w)[1 if which == "d2phi" else 0]
    assert err > 100 * tol


def test_oracles_vectorise_over_points_and_tasks():
    """One call over (points × tasks) equals the per-(point, task) calls; the
    all-tasks layout ``w[..., None, :]``, ``arange(M)`` of ``objective`` works."""
    fam = RobustRegression(d=3, M=4, N=7, seed=3)
    w = _point(fam, 0, 1.0, (5,))
    i, v = np.arange(fam.M), np.array([0.5, -1.0, 2.0])
    out = [fam.loss(w[:, None], i), fam.grad(w[:, None], i), fam.hess(w[:, None], i),
           fam.hvp(w[:, None], i, v)]
    assert [o.shape for o in out] == [(5, 4), (5, 4, 3), (5, 4, 3, 3), (5, 4, 3)]
    for s in range(5):
        for m in range(fam.M):
            ref = [fam.loss(w[s], m), fam.grad(w[s], m), fam.hess(w[s], m), fam.hvp(w[s], m, v)]
            for o, r in zip(out, ref):
                np.testing.assert_allclose(o[s, m], r, rtol=1e-13, atol=1e-15)
    H = out[2]
    np.testing.assert_array_equal(H, np.swapaxes(H, -1, -2))


# --- the MAML objective --------------------------------------------------------------
@given(instances, st.floats(0.0, 2.0), st.integers(0, 2**16), scales)
def test_meta_gradient_matches_finite_differences_of_F(fam, alpha, seed, scale):
    w = _point(fam, seed, scale)
    G = grad_F(fam, w, alpha)
    G_fd = fd_jacobian(lambda x: F(fam, x, alpha), w)
    assert np.abs(G - G_fd).max() <= fd_tolerance(G, F(fam, w, alpha))


@given(instances, st.integers(0, 2**16))
def test_meta_gradient_at_alpha_zero_is_gradient_of_f(fam, seed):
    w = _point(fam, seed, 1.0, (3,))
    expected = np.einsum("m,smd->sd", fam.p, fam.grad(w[:, None], np.arange(fam.M)))
    np.testing.assert_allclose(grad_F(fam, w, 0.0), expected, rtol=1e-12, atol=1e-15)
    assert np.all(F(fam, w, 0.3) >= fam.inf_f_lower())


# --- certified constants -------------------------------------------------------------
# Rounding slack for the Lipschitz ratios: each gradient (Hessian entry) is an
# average of N ≤ 8 terms of size ≤ R³ ≤ 8, computed with error ≲ 1e-14; over a
# step ‖w − u‖ ≥ 1e-3 that is ≲ 1e-11, so 1e-9 relative + 1e-12 is ample and a
# real excess (a wrong constant is off by O(1)) is still caught.
SLACK_REL, SLACK_ABS = 1e-9, 1e-12


@given(instances, st.integers(0, 2**16), scales, st.floats(1e-3, 5.0))
def test_certified_L_and_rho_hold_on_drawn_pairs(fam, seed, scale, dist):
    c = fam.constants()
    rng = np.random.default_rng(seed)
    w = _point(fam, seed, scale, (32, 1))
    u = w + dist * rng.standard_normal(w.shape) / np.sqrt(fam.d)
    i = np.arange(fam.M)
    step = np.linalg.norm(w - u, axis=-1)
    ratio_L = np.linalg.norm(fam.grad(w, i) - fam.grad(u, i), axis=-1) / step
    ratio_rho = np.linalg.norm(fam.hess(w, i) - fam.hess(u, i), ord=2, axis=(-2, -1)) / step
    assert np.all(ratio_L <= c.L_i * (1 + SLACK_REL) + SLACK_ABS)
    assert np.all(ratio_rho <= c.rho_i * (1 + SLACK_REL) + SLACK_ABS)


@given(instances)
def test_constants_are_below_the_data_free_bounds(fam):
    c, R = fam.constants(), fam.R
    assert np.all(c.L_i <= R ** 2 * rr.SUP_D2PHI * (1 + 1e-12))
    assert np.all(c.rho_i <= R ** 3 * rr.SUP_D3PHI * (1 + 1e-12))
    for name, generic in (("sigma", R * rr.SUP_DPHI), ("sigma_tilde", R * rr.SUP_DPHI),
                          ("sigma_H", R ** 2 * rr.SUP_D2PHI)):
        assert 0 <= getattr(c, name).value <= generic * (1 + 1e-12)
    assert c.L.value == c.L_i.max() and c.rho.value == c.rho_i.max()
    assert not any(getattr(c, n).exact for n in c.NAMES)


@given(st.integers(0, 2**16))
def test_L_is_attained_at_a_zero_residual_point(seed):
    """Noiseless, outlier-free data: at ``w*_i`` every φ''(r_k) = 1, so
    ``∇²f_i(w*_i) = S_i`` and ``‖∇²f_i(w*_i)‖₂ = L_i`` exactly."""
    fam = RobustRegression(d=3, M=3, N=10, noise=0.0, outlier_frac=0.0, seed=seed)
    H = fam.hess(fam.w_star, np.arange(fam.M))
    np.testing.assert_allclose(np.linalg.norm(H, ord=2, axis=(-2, -1)), fam.constants().L_i, rtol=1e-12)


@given(instances, st.integers(0, 2**16), scales)
def test_certified_sigmas_bound_the_exact_variances(fam, seed, scale):
    """At drawn ``w``: task dissimilarity (A4), and the exact finite-population
    per-sample gradient and Hessian variances (A5), below the certified values."""
    c = fam.constants()
    for w in _point(fam, seed, scale, (8,)):
        G = fam.grad(w, np.arange(fam.M))
        assert fam.p @ ((G - fam.p @ G) ** 2).sum(-1) <= c.sigma.value ** 2 * (1 + SLACK_REL) + SLACK_ABS
        g, H = _per_sample(fam, w)
        var_g = ((g - g.mean(1, keepdims=True)) ** 2).sum(-1).mean(-1)
        var_H = (np.linalg.norm(H - H.mean(1, keepdims=True), ord=2, axis=(-2, -1)) ** 2).mean(-1)
        assert var_g.max() <= c.sigma_tilde.value ** 2 * (1 + SLACK_REL) + SLACK_ABS
        assert var_H.max() <= c.sigma_H.value ** 2 * (1 + SLACK_REL) + SLACK_ABS


def _at_residuals(fam, i, r):
    """Points ``w`` (shape ``r.shape[:-1] + (d,)``) where task ``i`` has residuals
    ``r``: with ``N ≤ d`` every residual vector is realisable, so sups over ``w``
    become sups over ``r ∈ R^N``."""
    X, Y = fam.X[i], fam.Y[i]
    w = np.linalg.lstsq(X, (Y - r).T, rcond=None)[0].T
    np.testing.assert_allclose(Y - w @ X.T, r, atol=1e-9)
    return w


def test_L_and_rho_are_attained_with_one_point_per_task():
    """N = 1: ``L_i = ‖x‖²`` at residual 0, and ``ρ_i = sup|φ'''|·‖x‖³`` is the
    limit of the ratio along ``x`` at residual ``2 − √2`` (central step δ; the
    ratio's error is O(δ²) relative)."""
    fam = RobustRegression(d=3, M=2, N=1, seed=7)
    c = fam.constants()
    for i in range(fam.M):
        H0 = fam.hess(_at_residuals(fam, i, np.zeros(1)), i)
        assert np.linalg.norm(H0, ord=2) == pytest.approx(c.L_i[i], rel=1e-12)
        x = fam.X[i, 0]
        step = 1e-4 * x / np.linalg.norm(x)
        w = _at_residuals(fam, i, np.array([2 - np.sqrt(2)]))
        ratio = np.linalg.norm(fam.hess(w + step, i) - fam.hess(w - step, i), ord=2) / 2e-4
        assert c.rho_i[i] * (1 - 1e-6) <= ratio <= c.rho_i[i] * (1 + SLACK_REL)


def _variances_at_residuals(fam, i, r):
    """Exact per-sample gradient variance and spectral Hessian variance of task
    ``i`` at the points with residual vectors ``r`` (P, N)."""
    w = _at_residuals(fam, i, r)
    x = fam.X[i]
    g = -rr.dphi(r)[..., None] * x
    H = rr.d2phi(r)[..., None, None] * x[:, :, None] * x[:, None, :]
    var_g = ((g - g.mean(-2, keepdims=True)) ** 2).sum(-1).mean(-1)
    var_H = (np.linalg.norm(H - H.mean(-3, keepdims=True), ord=2, axis=(-2, -1)) ** 2).mean(-1)
    np.testing.assert_allclose(fam.grad(w, i), g.mean(-2), rtol=1e-9, atol=1e-12)
    return var_g, var_H


def _vertex_sups(fam, i):
    """Sup over ``w`` of both variances of task ``i`` when ``N ≤ d``: each is a
    convex function of the weights (``φ'(r_k) ∈ [−1/√2, 1/√2]``, resp.
    ``φ''(r_k) ∈ [−1/8, 1]``), so it peaks at a vertex of the box: ``r_k = ±√2``,
    resp. ``r_k ∈ {0, √6}``; all vertices are enumerated."""
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=fam.N)))
    var_g, _ = _variances_at_residuals(fam, i, np.sqrt(2) * signs)
    _, var_H = _variances_at_residuals(fam, i, np.sqrt(6) * (signs + 1) / 2)
    return var_g.max(), var_H.max()


@given(st.integers(2, 4), st.integers(0, 2**16))
def test_sigma_tilde_and_sigma_H_hold_at_their_worst_residuals(N, seed):
    fam = RobustRegression(d=4, M=2, N=N, seed=seed)
    c = fam.constants()
    for i in range(fam.M):
        sup_g, sup_H = _vertex_sups(fam, i)
        assert sup_g <= c.sigma_tilde.value ** 2 * (1 + SLACK_REL)
        assert sup_H <= c.sigma_H.value ** 2 * (1 + SLACK_REL)


def test_sigma_tilde_is_nearly_attained():
    """Not vacuous: here the exact sup reaches > 90 % of σ̃² (the gap is
    ``sup|φ'|²·min_s‖(1/N)Σ_k s_k x_k‖²``, the subtracted mean); σ_H² is looser
    (about 45 %: the Frobenius norm and the mean)."""
    fam = RobustRegression(d=4, M=2, N=4, seed=0)
    c = fam.constants()
    sups = np.array([_vertex_sups(fam, i) for i in range(fam.M)]).max(0)
    assert sups[0] >= 0.9 * c.sigma_tilde.value ** 2
    assert sups[1] >= 0.4 * c.sigma_H.value ** 2


def test_sigma_is_zero_for_a_single_task():
    assert RobustRegression(d=3, M=1, N=5).constants().sigma.value == 0.0
    assert RobustRegression(d=3, M=3, N=5, p=[0, 1, 0]).constants().sigma.value == 0.0


# --- stochastic oracles --------------------------------------------------------------
DELTA = 1e-6   # false-alarm rate of each Bernstein check below


def _bernstein_halfwidth(var, bound, m, delta=DELTA):
    """``t`` with ``P(|mean of m i.i.d. − μ| ≥ t) ≤ δ`` when ``Var = var`` and
    ``|X − μ| ≤ bound`` (Bernstein: ``2exp(−mt²/(2var + 2bound·t/3)) = δ``)."""
    ell = np.log(2 / delta)
    a = 2 * ell * bound / 3
    return (a + np.sqrt(a ** 2 + 8 * m * ell * var)) / (2 * m)


def _oracle_check(per_sample, draws, n):
    """Are ``draws`` (K, M, q), each the mean of ``n`` with-replacement samples
    from the finite population ``per_sample`` (M, N, q), unbiased with
    ``E‖draw − μ‖² = tr Σ/n``?  Rigorous Bernstein bounds, false-alarm ``DELTA``
    per component and per task; returns ``(mean_ok, variance_ok)``."""
    K = draws.shape[0]
    mu = per_sample.mean(1)
    e = per_sample - mu[:, None]
    var = (e ** 2).mean(1)                                   # (M, q)
    t = _bernstein_halfwidth(var, np.abs(e).max(1), K * n)  # K·n i.i.d. samples
    mean_ok = bool(np.all(np.abs(draws.mean(0) - mu) <= t))
    # Z = ‖draw − μ‖² ∈ [0, B], B = max_k‖e_k‖²; E Z and Var Z exact:
    # E‖Σe_j‖⁴ = n·E‖e‖⁴ + n(n−1)((tr Σ)² + 2 tr Σ²)
    cov = np.einsum("mkq,mkr->mqr", e, e) / e.shape[1]
    tr, tr2 = np.trace(cov, axis1=1, axis2=2), np.einsum("mqr,mrq->m", cov, cov)
    m4 = ((e ** 2).sum(-1) ** 2).mean(1)
    EZ = tr / n
    VZ = (n * m4 + n * (n - 1) * (tr ** 2 + 2 * tr2)) / n ** 4 - EZ ** 2
    B = (e ** 2).sum(-1).max(1)
    Z = ((draws - mu) ** 2).sum(-1)
    var_ok = bool(np.all(np.abs(Z.mean(0) - EZ) <= _bernstein_halfwidth(VZ, np.maximum(B - EZ, EZ), K)))
    return mean_ok, var_ok


class _DropsLastPoint(RobustRegression):
    """Negative control: never samples data point N−1."""

    def draw_batch(self, i, n, rng, need="both"):
        u = rng.random(np.shape(i) + (n,))
        return {"idx": (u * (self.N - 1)).astype(np.intp)}


class _WithoutReplacement(RobustRegression):
    """Negative control: samples without replacement (unbiased, but variance
    ``(N − n)/(N − 1)`` times too small)."""

    def draw_batch(self, i, n, rng, need="both"):
        return {"idx": np.argsort(rng.random(np.shape(i) + (self.N,)), axis=-1)[..., :n]}


def _oracle_draws(cls, K=20_000, n=3, seed=5):
    """Gradient, Hessian and HVP draws of every task at one point, with the
    exact per-sample populations: ``[(per_sample, draws), ...]`` and ``n``."""
    fam = cls(d=3, M=3, N=5, seed=4)
    w = _point(fam, 0, 0.5)
    v = np.array([1.0, -0.5, 2.0])
    i = np.broadcast_to(np.arange(fam.M), (K, fam.M))
    batch = fam.draw_batch(i, n, np.random.default_rng(seed))
    g, H = _per_sample(fam, w)
    return [(g, fam.batch_grad(w, i, batch)),
            (H.reshape(fam.M, fam.N, -1), fam.batch_hess(w, i, batch).reshape(K, fam.M, -1)),
            (H @ v, fam.batch_hvp(w, i, v, batch))], n


def test_oracles_unbiased_with_variance_over_n():
    """Gradient, Hessian and HVP batch means: E = exact value, E‖·−μ‖² = σ_i(w)²/n
    with σ_i(w)² the exact finite-population variance (false alarm ≤ 1e-6 per check)."""
    checks, n = _oracle_draws(RobustRegression)
    for per_sample, draws in checks:
        assert _oracle_check(per_sample, draws, n) == (True, True)


def test_oracle_check_catches_wrong_samplers():
    """Negative controls: dropping a data point biases the mean; sampling
    without replacement keeps the mean but shrinks the variance: both caught."""
    for cls, expected in ((_DropsLastPoint, False), (_WithoutReplacement, (True, False))):
        checks, n = _oracle_draws(cls)
        result = _oracle_check(*checks[0], n)
        assert (result[0] if expected is False else result) == expected


def test_batch_oracles_are_means_over_the_drawn_points():
    fam = RobustRegression(d=3, M=3, N=6, seed=2)
    w, v = _point(fam, 1, 1.0), np.array([0.2, 1.0, -1.0])
    g, H = _per_sample(fam, w)
    i = np.array([[0, 2], [1, 1]])
    batch = fam.draw_batch(i, 4, np.random.default_rng(0))
    idx = batch["idx"]
    assert idx.shape == (2, 2, 4) and idx.min() >= 0 and idx.max() < fam.N
    np.testing.assert_allclose(fam.batch_grad(w, i, batch), g[i[..., None], idx].mean(-2), rtol=1e-12)
    np.testing.assert_allclose(fam.batch_hess(w, i, batch), H[i[..., None], idx].mean(-3), rtol=1e-12)
    np.testing.assert_allclose(fam.batch_hvp(w, i, v, batch), (H @ v)[i[..., None], idx].mean(-2),
                               rtol=1e-12)
    full = {"idx": np.broadcast_to(np.arange(fam.N), (fam.M, fam.N))}
    m = np.arange(fam.M)
    np.testing.assert_allclose(fam.batch_grad(w, m, full), fam.grad(w, m), rtol=1e-12)
    np.testing.assert_allclose(fam.batch_hvp(w, m, v, full), fam.hvp(w, m, v), rtol=1e-12)


def test_same_seed_same_draws_and_duck_typed_rng():
    fam = RobustRegression(d=3, M=4, N=9)
    w, i = np.ones(3), np.arange(4)
    a = fam.sample_grad(w, i, 5, np.random.default_rng(9))
    assert np.array_equal(a, fam.sample_grad(w, i, 5, np.random.default_rng(9)))
    assert not np.array_equal(a, fam.sample_grad(w, i, 5, np.random.default_rng(10)))

    class Streams:  # only .random(size), a leading seed axis of 2
        def random(self, size):
            assert size[0] == 2
            return np.random.default_rng(1).random(size)

    seeds_i = np.broadcast_to(i, (2, 4))
    assert fam.draw_batch(seeds_i, 3, Streams())["idx"].shape == (2, 4, 3)


# --- validation and registry ---------------------------------------------------------
@pytest.mark.parametrize("params, name", [
    ({"R": -1.0}, "R"), ({"N": 0}, "N"), ({"d": 0}, "d"), ({"M": 0}, "M"),
    ({"p": [0.5, 0.6]}, "p"), ({"noise": -0.1}, "noise"), ({"spread": np.nan}, "spread"),
    ({"outlier_frac": 1.5}, "outlier_frac"), ({"outlier_scale": -1.0}, "outlier_scale"),
    ({"X": np.zeros((2, 3, 3))}, "X"), ({"X": np.full((2, 3, 2), np.inf)}, "X"),
    ({"X": np.ones((2, 3, 2)), "R": 1.0}, "X"),
    ({"X": np.zeros((2, 3, 2)), "Y": np.zeros((2, 4))}, "Y"), ({"Y": np.zeros((2, 3))}, "Y"),
])
def test_bad_parameters_raise_naming_the_parameter(params, name):
    kw = {"d": 2, "M": 2, "N": 3, **params}
    with pytest.raises(ValueError, match=name):
        make_family("robust-regression", **kw)


def test_registry_and_explicit_data():
    fam = make_family("robust-regression", d=3, M=2, N=4)
    assert isinstance(fam, RobustRegression) and fam.name == "robust-regression"
    assert {"N", "R", "X", "Y", "outlier_frac"} <= set(family_parameters("robust-regression"))
    X = np.random.default_rng(0).standard_normal((2, 4, 3))
    Y = np.ones((2, 4))
    given = make_family("robust-regression", d=3, M=2, N=4, X=X, Y=Y)
    assert given.R == pytest.approx(np.linalg.norm(X, axis=-1).max())
    assert given.describe()["data"] == "given X, Y" and given.w_star is None
    labelled = make_family("robust-regression", d=3, M=2, N=4, X=X, noise=0.0, outlier_frac=0.0)
    np.testing.assert_allclose(labelled.Y, np.einsum("mnd,md->mn", X, labelled.w_star))
