"""The constants cosine-quadratic documents as exact equal their definitions
(THEORY.md §2) to rounding at the points where they are attained
(``attaining_points`` and the module docstring), not merely within a few
per cent: ``L`` is the spectral norm of the Hessian, ``ρ`` the limit of the
Hessian's difference quotient, ``σ²`` the task dissimilarity, ``σ̃²`` and
``σ_H²`` the one-sample noise moments.

The noise moments are computed from the oracles without sampling: the batch
noise is linear in independent Gaussians (``ξ̄`` coordinatewise and ``η̄``),
so ``E‖noise‖² = Σ_s ‖response to one standard deviation of s‖²``, and the
standard deviations are read off ``draw_batch`` with an ``rng`` whose normals
are all 1 (``draw_batch`` draws ``scale · standard_normal``; its laws are
checked by Monte Carlo in ``tests/test_cosine_quadratic.py``).  No test here
is statistical.
"""
import numpy as np
import pytest

from mamlcheck.problems.cosine_quadratic import CosineQuadratic

RTOL = 1e-12        # a handful of float64 operations on O(1) numbers
KW = dict(d=3, M=4, gamma=0.5, omega=2.0, noise_grad=1.3, noise_amp=0.7, seed=5)
TASK = 2


class _Ones:
    """An ``rng`` whose normals are all 1 (uniforms ½)."""

    def standard_normal(self, shape=None):
        return np.ones(shape)

    def random(self, shape=None):
        return np.full(shape, 0.5)


def _families():
    return [CosineQuadratic(**KW), CosineQuadratic(**KW, dense=True)]


def _gradient_noise_second_moment(fam, w, i=TASK):
    """``E‖∇ℓ_i(w; θ) − ∇f_i(w)‖²`` for one sample, from the oracle (module docstring)."""
    sd = fam.draw_batch(np.asarray(i), 1, _Ones())
    g = fam.grad(w, i)
    total = 0.0
    for j in range(fam.d):
        xi = np.zeros(fam.d)
        xi[j] = sd["xi"][j]
        total += np.sum((fam.batch_grad(w, i, {"xi": xi, "eta": np.asarray(0.0)}) - g) ** 2)
    return total + np.sum((fam.batch_grad(w, i, {"xi": np.zeros(fam.d), "eta": sd["eta"]}) - g) ** 2)


def _hessian_noise_second_moment(fam, w, i=TASK):
    """``E‖∇²ℓ_i(w; θ) − ∇²f_i(w)‖₂²`` for one sample: the Hessian noise is
    ``η`` times a fixed matrix, so it is ``‖response to sd(η)‖₂²``."""
    sd = fam.draw_batch(np.asarray(i), 1, _Ones(), need="hess")
    noise = fam.batch_hess(w, i, {"eta": sd["eta"]}) - fam.hess(w, i)
    return np.linalg.norm(noise, ord=2) ** 2


@pytest.mark.parametrize("fam", _families(), ids=["diagonal", "dense"])
def test_L_is_the_hessians_spectral_norm_where_every_cosine_is_minus_one(fam):
    c = fam.constants()
    assert c.L.exact
    top = fam.attaining_points(np.array([2, -2, 6]))          # k ≡ 2 (mod 4): cos ωw_j = −1
    assert np.linalg.norm(fam.hess(top, TASK), ord=2) == pytest.approx(c.L.value, rel=RTOL)
    assert np.allclose(c.L_i, c.L.value, rtol=0, atol=0)
    elsewhere = np.linalg.norm(fam.hess(np.array([0.3, -0.2, 1.0]), TASK), ord=2)
    assert elsewhere < c.L.value * (1 - 1e-3)                 # attained there, not everywhere


@pytest.mark.parametrize("fam", _families(), ids=["diagonal", "dense"])
def test_rho_is_the_limit_of_the_hessians_difference_quotient_where_a_sine_is_one(fam):
    """At ``sin ωw_j = ±1`` (odd ``k``) and ``u = w + t e_j``, the Hessians differ
    by ``γω²(cos ωw_j − cos ωu_j)`` in entry ``jj`` only, which is exactly
    ``∓γω² sin(ωt)`` since ``cos ωw_j = 0``: the quotient is
    ``ρ · sin(ωt)/(ωt)``, ``→ ρ`` as ``t → 0``.  Rounding: the difference of
    O(5) entries, ~1e-3 in size, is good to ~1e-12 relative."""
    c = fam.constants()
    assert c.rho.exact
    w = fam.attaining_points(np.array([1, -3, 5]))
    for j in range(fam.d):
        for t in (1e-1, 1e-2, 1e-3):
            u = w.copy()
            u[j] += t
            q = np.linalg.norm(fam.hess(u, TASK) - fam.hess(w, TASK), ord=2) / t
            assert q == pytest.approx(c.rho.value * np.sin(fam.omega * t) / (fam.omega * t), rel=1e-9)
            assert q <= c.rho.value


@pytest.mark.parametrize("fam", _families(), ids=["diagonal", "dense"])
def test_sigma_is_the_task_dissimilarity_at_every_point(fam):
    c = fam.constants()
    assert c.sigma.exact
    tasks = np.arange(fam.M)
    for w in (np.zeros(fam.d), np.array([0.3, -1.2, 2.0]), fam.attaining_points(np.array([1, 2, 3]))):
        g = fam.grad(w, tasks)
        dis = fam.p @ np.sum((g - fam.p @ g) ** 2, -1)
        assert dis == pytest.approx(c.sigma.value ** 2, rel=RTOL)


@pytest.mark.parametrize("fam", _families(), ids=["diagonal", "dense"])
def test_sigma_tilde_is_the_gradient_noise_where_every_sine_is_plus_or_minus_one(fam):
    c = fam.constants()
    assert c.sigma_tilde.exact
    odd = fam.attaining_points(np.array([1, -3, 5]))
    assert _gradient_noise_second_moment(fam, odd) == pytest.approx(c.sigma_tilde.value ** 2, rel=RTOL)
    assert _gradient_noise_second_moment(fam, np.array([0.3, -0.2, 1.0])) < c.sigma_tilde.value ** 2 * (1 - 1e-3)


@pytest.mark.parametrize("fam", _families(), ids=["diagonal", "dense"])
def test_sigma_H_is_the_hessian_noise_where_every_cosine_is_plus_or_minus_one(fam):
    c = fam.constants()
    assert c.sigma_H.exact
    for k in ([0, 2, -4], [0, 0, 0], [4, 2, 2]):
        even = fam.attaining_points(np.array(k))
        assert _hessian_noise_second_moment(fam, even) == pytest.approx(c.sigma_H.value ** 2, rel=RTOL)
    assert _hessian_noise_second_moment(fam, fam.attaining_points(np.array([1, 1, 1]))) < 1e-20 * c.sigma_H.value ** 2


def test_the_noise_moments_scale_as_one_over_the_batch():
    """The same computation for a batch of ``n``: ``σ̃²/n`` and ``σ_H²/n`` exactly."""
    fam = CosineQuadratic(**KW)
    c = fam.constants()
    odd, even = fam.attaining_points(np.array([1, -3, 5])), fam.attaining_points(np.array([0, 2, -4]))
    for n in (2, 7, 30):
        sd = fam.draw_batch(np.asarray(TASK), n, _Ones())
        g = fam.grad(odd, TASK)
        m2 = sum(np.sum((fam.batch_grad(odd, TASK, {"xi": np.eye(fam.d)[j] * sd["xi"][j], "eta": np.asarray(0.0)})
                         - g) ** 2) for j in range(fam.d))
        m2 += np.sum((fam.batch_grad(odd, TASK, {"xi": np.zeros(fam.d), "eta": sd["eta"]}) - g) ** 2)
        assert m2 == pytest.approx(c.sigma_tilde.value ** 2 / n, rel=RTOL)
        h = fam.batch_hess(even, TASK, {"eta": sd["eta"]}) - fam.hess(even, TASK)
        assert np.linalg.norm(h, ord=2) ** 2 == pytest.approx(c.sigma_H.value ** 2 / n, rel=RTOL)
