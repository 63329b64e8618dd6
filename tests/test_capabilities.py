"""The optional capabilities of the families (``problems.base.CAPABILITIES``).

Every law a family declares is compared with a Monte-Carlo estimate of the
same law drawn from the family's own stochastic oracles (``draw_batch`` and
``batch_grad`` / ``batch_hess``): a two-sided z-test per entry, Bonferroni over
the entries, so that each test false-alarms with probability at most
``FALSE_ALARM``; a negative control shows the comparison catches a wrong batch
size.  The other capabilities are checked by what they promise (points where
exact constants are attained, the gradient's rounding scale, where the tasks
sit), and a capability a family does not offer is reported so by ``offers``
and raises ``NotAvailable``.
"""
import numpy as np
import pytest
from scipy.stats import norm

from mamlcheck.problems.base import CAPABILITIES, NotAvailable
from mamlcheck.problems.cosine_quadratic import CosineQuadratic
from mamlcheck.problems.hard_chain import HardChain
from mamlcheck.problems.robust_regression import RobustRegression

FALSE_ALARM = 1e-6
N = 200_000                   # Monte-Carlo draws per law
D_IN, D_O, D_H = 2, 3, 2

# one instance of each family, noisy where the family has noise, with a point w and a task i
CASES = {
    "cosine-quadratic, diagonal A": (CosineQuadratic(d=3, M=3, gamma=0.8, omega=2.0, noise_grad=1.5, noise_amp=1.2,
                                                     spread=1.0, p=[0.2, 0.3, 0.5], seed=3), [0.4, -1.1, 2.0], 1),
    "cosine-quadratic, dense A": (CosineQuadratic(d=2, M=2, gamma=1.0, omega=1.5, noise_grad=1.0, noise_amp=2.0,
                                                  dense=True, seed=5), [1.3, -0.2], 0),
    "robust-regression": (RobustRegression(d=2, M=2, N=5, noise=0.5, outlier_frac=0.2, seed=2), [0.5, -0.7], 1),
    "hard-chain": (HardChain(T=4, M=2, tilt=1.0, seed=1), [0.3, 0.1, 0.0, 0.0], 0),
}

# the capabilities each family offers, among those the experiments use
OFFERED = {
    "cosine-quadratic": {"centre_and_length", "attaining_points", "inner_mean", "outer_second", "hess_factor",
                         "grad_rounding_scale", "inner_noise_var", "inner_bias"},
    "robust-regression": {"centre_and_length", "inner_mean", "outer_second", "hess_factor", "grad_rounding_scale"},
    "hard-chain": {"centre_and_length", "progress"},
}
USED = set().union(*OFFERED.values())


def _case(label):
    fam, w, i = CASES[label]
    return fam, np.asarray(w, dtype=float), i


def _offering(capability):
    return [label for label, (fam, _, _) in CASES.items() if fam.offers(capability)]


def _alpha(fam):
    return 0.6 / fam.constants().L.value


def _max_z(draws, exact):
    """Largest |z| over the entries of the sample mean of ``draws`` (first axis:
    draws) against ``exact``, and the critical value at ``FALSE_ALARM`` for all
    entries together.  An entry with no spread must equal ``exact`` up to rounding."""
    draws = np.asarray(draws, dtype=float).reshape(len(draws), -1)
    exact = np.asarray(exact, dtype=float).ravel()
    mean, sd = draws.mean(0), draws.std(0, ddof=1)
    flat = sd == 0
    assert np.allclose(mean[flat], exact[flat], rtol=1e-12, atol=1e-12), (mean[flat], exact[flat])
    z = np.abs(mean[~flat] - exact[~flat]) / (sd[~flat] / np.sqrt(len(draws)))
    return (z.max() if z.size else 0.0), norm.isf(FALSE_ALARM / (2 * exact.size))


def _inner_points(fam, w, i, rng, n=D_IN):
    """``N`` draws of the inner point ``w − α∇̃f_i(w, D_in)`` from the oracles."""
    iN = np.full(N, i)
    return w - _alpha(fam) * fam.batch_grad(w, iN, fam.draw_batch(iN, n, rng))


def _outer_products(fam, w, i, rng, D_o):
    iN = np.full(N, i)
    v = fam.batch_grad(_inner_points(fam, w, i, rng), iN, fam.draw_batch(iN, D_o, rng))
    return v[:, :, None] * v[:, None, :]


# --- which capabilities are offered -----------------------------------------------------------
@pytest.mark.parametrize("label", CASES)
def test_each_family_offers_exactly_its_declared_capabilities(label):
    fam, _, _ = _case(label)
    assert {c for c in USED if fam.offers(c)} == OFFERED[fam.name]


@pytest.mark.parametrize("label", CASES)
def test_a_capability_not_offered_raises_not_available(label):
    fam, w, i = _case(label)
    calls = {"centre_and_length": (), "attaining_points": (np.zeros(fam.d),), "inner_mean": (w, i, 0.1, 1),
             "outer_second": (w, i, 0.1, 1, 1), "hess_factor": (w, i, 0.1, 1), "grad_rounding_scale": (w, i),
             "inner_noise_var": (w, 0.1, 1), "inner_bias": (w, 0.1, np.ones(fam.d)), "progress": (w,)}
    missing = [c for c in calls if not fam.offers(c)]
    assert missing
    for c in missing:
        with pytest.raises(NotAvailable, match=c):
            getattr(fam, c)(*calls[c])


def test_offers_rejects_a_misspelt_capability():
    fam, _, _ = _case("robust-regression")
    assert set(USED) <= set(CAPABILITIES)
    with pytest.raises(ValueError, match="unknown capability"):
        fam.offers("inner_means")


# --- the laws agree with the oracles ------------------------------------------------------------
@pytest.mark.parametrize("label", _offering("inner_mean"))
def test_inner_mean_is_the_mean_gradient_at_the_stochastic_inner_point(label):
    fam, w, i = _case(label)
    x = _inner_points(fam, w, i, np.random.default_rng(1))
    z, crit = _max_z(fam.grad(x, np.full(N, i)), fam.inner_mean(w, i, _alpha(fam), D_IN))
    assert z < crit


@pytest.mark.parametrize("label", _offering("outer_second"))
def test_outer_second_is_the_second_moment_of_the_outer_gradient(label):
    fam, w, i = _case(label)
    z, crit = _max_z(_outer_products(fam, w, i, np.random.default_rng(2), D_O),
                     fam.outer_second(w, i, _alpha(fam), D_IN, D_O))
    assert z < crit


@pytest.mark.parametrize("label", _offering("outer_second"))
def test_a_wrong_outer_batch_size_is_caught(label):
    """Negative control: the law for ``D_o = 1`` against draws made with ``D_o = 3``."""
    fam, w, i = _case(label)
    z, crit = _max_z(_outer_products(fam, w, i, np.random.default_rng(3), D_O),
                     fam.outer_second(w, i, _alpha(fam), D_IN, 1))
    assert z > crit


@pytest.mark.parametrize("label", _offering("hess_factor"))
def test_hess_factor_is_the_second_moment_of_the_stochastic_hessian_factor(label):
    fam, w, i = _case(label)
    iN = np.full(N, i)
    P = np.eye(fam.d) - _alpha(fam) * fam.batch_hess(w, iN, fam.draw_batch(iN, D_H, np.random.default_rng(4)))
    z, crit = _max_z(np.einsum("nji,njl->nil", P, P), fam.hess_factor(w, i, _alpha(fam), D_H))
    assert z < crit


@pytest.mark.parametrize("label", _offering("inner_noise_var"))
def test_inner_noise_var_is_the_variance_of_the_inner_step(label):
    fam, w, i = _case(label)
    Z = _inner_points(fam, w, i, np.random.default_rng(5)) - (w - _alpha(fam) * fam.grad(w, i))
    z, crit = _max_z(Z ** 2, fam.inner_noise_var(w, _alpha(fam), D_IN))
    assert z < crit


@pytest.mark.parametrize("label", _offering("inner_bias"))
@pytest.mark.parametrize("D_in", [1, 4])
def test_inner_bias_is_the_mean_gradient_shift_at_the_stochastic_inner_point(label, D_in):
    fam, w, i = _case(label)
    a = _alpha(fam)
    u = w - a * fam.grad(w, i)
    x = _inner_points(fam, w, i, np.random.default_rng(6 + D_in), n=D_in)
    e = fam.inner_bias(w, a, fam.inner_noise_var(w, a, D_in))
    assert e.shape == (fam.M, fam.d)
    z, crit = _max_z(fam.grad(x, np.full(N, i)) - fam.grad(u, i), e[i])
    assert z < crit


@pytest.mark.parametrize("label", _offering("inner_bias"))
def test_inner_bias_with_a_wrong_noise_variance_is_caught(label):
    """Negative control: doubled inner variances against draws of the true law."""
    fam, w, i = _case(label)
    a = _alpha(fam)
    x = _inner_points(fam, w, i, np.random.default_rng(9), n=1)
    e = fam.inner_bias(w, a, 2.0 * fam.inner_noise_var(w, a, 1))
    z, crit = _max_z(fam.grad(x, np.full(N, i)) - fam.grad(w - a * fam.grad(w, i), i), e[i])
    assert z > crit


# --- the other capabilities do what they promise --------------------------------------------------
@pytest.mark.parametrize("label", _offering("attaining_points"))
def test_exact_constants_are_attained_at_the_attaining_points(label):
    """Odd ``k``: the one-sample gradient noise has second moment ``σ̃²``; even
    ``k``: the one-sample Hessian noise has ``E‖·‖₂² = σ_H²``; ``k ≡ 2 (mod 4)``:
    ``‖∇²f_i‖₂ = L``.  (The noise moments by Monte Carlo.)"""
    fam, _, i = _case(label)
    c = fam.constants()
    assert c.sigma_tilde.exact and c.sigma_H.exact and c.L.exact
    rng, iN = np.random.default_rng(10), np.full(N, i)
    odd = fam.attaining_points(np.array([1, -3, 5][:fam.d]))
    noise = fam.batch_grad(odd, iN, fam.draw_batch(iN, 1, rng)) - fam.grad(odd, i)
    z, crit = _max_z(np.sum(noise ** 2, -1)[:, None], [c.sigma_tilde.value ** 2])
    assert z < crit
    even = fam.attaining_points(np.array([0, 2, -4][:fam.d]))
    noise = fam.batch_hess(even, iN, fam.draw_batch(iN, 1, rng, need="hess")) - fam.hess(even, i)
    z, crit = _max_z((np.linalg.norm(noise, ord=2, axis=(-2, -1)) ** 2)[:, None], [c.sigma_H.value ** 2])
    assert z < crit
    top = fam.attaining_points(np.array([2, -2, 6][:fam.d]))
    assert np.linalg.norm(fam.hess(top, i), ord=2) == pytest.approx(c.L.value, rel=1e-12)


def _cq_grad_long(fam, x, i):
    """``∇f_i(x) = A(x − c_i) − γω sin(ωx)`` in long double, at the float64 point ``x``."""
    ld = np.longdouble
    x, c, A = x.astype(ld), fam.c[i].astype(ld), np.asarray(fam.A, dtype=ld)
    return (A * (x - c) if fam.diagonal else A @ (x - c)) - ld(fam.gamma) * ld(fam.omega) * np.sin(ld(fam.omega) * x)


def _rr_grad_long(fam, x, i):
    """``∇f_i(x) = −(1/N)Σ_k φ'(y_k − x_kᵀx)x_k`` in long double, at the float64 point ``x``."""
    ld = np.longdouble
    X, r = fam.X[i].astype(ld), fam.Y[i].astype(ld) - fam.X[i].astype(ld) @ x.astype(ld)
    return -((2 * r / (2 + r * r)) @ X) / fam.N


# points where the terms of ∇f_i are large and cancel: next to a far task centre
# (cosine-quadratic, |ωx| ~ 10³), at the optimum of a far task (noiseless regression)
_FAR_CQ = CosineQuadratic(d=3, M=2, omega=1.7, spread=1e3, seed=6)
_FAR_CQ_DENSE = CosineQuadratic(d=3, M=2, omega=2.3, spread=1e3, dense=True, seed=6)
_FAR_RR = RobustRegression(d=3, M=1, N=6, spread=100.0, noise=0.0, outlier_frac=0.0, seed=7)
ROUNDING_CASES = {
    "cosine-quadratic": (_FAR_CQ, _FAR_CQ.c[1] + 1e-3, 1, _cq_grad_long),
    "cosine-quadratic, dense A": (_FAR_CQ_DENSE, _FAR_CQ_DENSE.c[0] - 1e-3, 0, _cq_grad_long),
    "robust-regression": (_FAR_RR, _FAR_RR.w_star[0], 0, _rr_grad_long),
}


@pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(float).eps, reason="no long double on this machine")
@pytest.mark.parametrize("label", ROUNDING_CASES)
def test_the_gradient_rounds_within_its_rounding_scale(label):
    """``∇f_i(x)`` in float64 is within 64 ulps of the rounding scale of its
    long-double value, at points where its error exceeds an ulp of
    ``‖∇f_i(x)‖`` itself (the terms that cancel in it are far larger)."""
    fam, x, i, exact = ROUNDING_CASES[label]
    assert fam.offers("grad_rounding_scale")
    g, scale, eps = fam.grad(x, i), fam.grad_rounding_scale(x, i), np.finfo(float).eps
    err = np.abs(g - exact(fam, x, i)).max()
    assert err > eps * np.linalg.norm(g)
    assert np.linalg.norm(g) <= scale and err <= 64 * eps * scale


def test_the_centre_is_where_the_tasks_sit():
    """Without the ripple, cosine-quadratic's tasks average to a quadratic
    minimised at the centre; noiseless robust regression fits its one task at
    the centre exactly; the hard chain starts at its centre (no coordinate
    reached) and its length is ``λ``."""
    cq = CosineQuadratic(d=3, M=4, gamma=0.0, p=[0.1, 0.2, 0.3, 0.4], seed=2)
    centre, length = cq.centre_and_length()
    assert np.allclose(cq.p @ cq.grad(centre[None], np.arange(cq.M)), 0.0, atol=1e-12) and length >= 1.0
    rr = RobustRegression(d=3, M=1, N=8, noise=0.0, outlier_frac=0.0, seed=4)
    centre, length = rr.centre_and_length()
    assert np.allclose(rr.grad(centre, 0), 0.0, atol=1e-12) and length == 1.0 + np.linalg.norm(centre)
    hc = HardChain(T=5)
    centre, length = hc.centre_and_length()
    assert hc.progress(centre) == 0 and length == hc.lam
