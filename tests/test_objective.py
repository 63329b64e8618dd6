"""The exact objective (1), its gradient (5) and L(w), for every registered
family: ∇F against central differences of F, and α = 0 giving Σ p_i ∇f_i."""
import numpy as np
from hypothesis import given, settings, strategies as st

from mamlcheck.algorithms.objective import F, grad_F, local_L, mean_task_grad_norm
from tests.finite_differences import H, fd_jacobian, fd_tolerance
from tests.strategies import instances


@settings(max_examples=15)
@given(instances(), st.floats(0.0, 1.0 / 6.0), st.integers(0, 2**16))
def test_grad_F_matches_finite_differences_of_F(inst, alpha_L, seed):
    _, _, fam = inst
    alpha = alpha_L / fam.constants().L.value
    w = np.random.default_rng(seed).standard_normal(fam.d)
    if fam.name == "hard-chain":        # keep the step on the chain's own length scale
        w *= fam.lam
    g = grad_F(fam, w, alpha)
    g_fd = fd_jacobian(lambda x: F(fam, x, alpha), w, h=H * (fam.lam if fam.name == "hard-chain" else 1.0))
    assert np.abs(g - g_fd).max() <= fd_tolerance(g, F(fam, w, alpha))


def test_finite_difference_check_catches_a_wrong_meta_gradient():
    """Negative control: ∇F without the (I − α∇²f_i) factor is caught."""
    from mamlcheck.problems import make_family
    fam = make_family("robust-regression", d=3, M=3, N=6)
    alpha = 0.5 / fam.constants().L.value
    w = np.array([0.4, -1.0, 2.0])
    we, i = w[None, :], np.arange(fam.M)
    wrong = np.einsum("m,md->d", fam.p, fam.grad(we - alpha * fam.grad(we, i), i))
    g_fd = fd_jacobian(lambda x: F(fam, x, alpha), w)
    assert np.abs(wrong - g_fd).max() > 100 * fd_tolerance(g_fd, F(fam, w, alpha))


@settings(max_examples=10)
@given(instances(), st.integers(0, 2**16))
def test_alpha_zero_gives_the_average_gradient(inst, seed):
    _, _, fam = inst
    w = np.random.default_rng(seed).standard_normal((2, fam.d))
    avg = np.einsum("m,smd->sd", fam.p, fam.grad(w[:, None, :], np.arange(fam.M)))
    np.testing.assert_allclose(grad_F(fam, w, 0.0), avg, rtol=1e-12, atol=1e-12 * (1 + np.abs(avg).max()))


def test_local_L_is_4L_plus_2_rho_alpha_mean_grad_norm():
    """THEORY.md §3: L(w) = 4L + 2ρα E_i‖∇f_i(w)‖ (hand arithmetic on one point)."""
    from mamlcheck.problems import make_family
    fam = make_family("cosine-quadratic", d=3, M=4)
    c = fam.constants()
    w = np.array([1.0, 2.0, -1.0])
    expected = 4 * c.L.value + 2 * c.rho.value * 0.01 * mean_task_grad_norm(fam, w)
    assert np.isclose(local_L(fam, w, 0.01), expected, rtol=1e-14)
