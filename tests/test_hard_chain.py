"""The hard chain (THEORY.md §7): derivatives, the Carmon et al. properties,
zero-respecting MAML steps, certified constants, validation, registry."""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mamlcheck.algorithms.objective import F, grad_F
from mamlcheck.problems import family_parameters, make_family
from mamlcheck.problems.hard_chain import (HardChain, chain_derivative_bound, phi, psi, sup_abs_phi,
                                 sup_abs_psi)
from tests.finite_differences import H, fd_jacobian, fd_tolerance
from mamlcheck.literature import CHAIN_GRAD_LIP

UNIT = HardChain(eps=1.0, Delta=96.0, L=152.0)                 # λ = 1, f = f̄_8 exactly
SCALED = HardChain(eps=0.05, Delta=20.0, L=3.0)                # λ ≈ 2.53, T = 13
TILTED = HardChain(eps=0.05, Delta=20.0, L=3.0, M=4, tilt=0.7, p=[0.1, 0.2, 0.3, 0.4], seed=3)
FAMILIES = [UNIT, SCALED, TILTED]
IDS = ["unit", "scaled", "tilted"]

# Coordinates in units of λ: the chain's active range, the switch-on of Ψ at
# ±½ (and its flat start just above), and the far tails.
_COORD = st.one_of(
    st.floats(-3.0, 3.0),
    st.floats(0.45, 0.75).flatmap(lambda v: st.sampled_from([v, -v])),
    st.floats(-40.0, 40.0),
)


def _points(fam, last=None):
    """Points ``x = λy`` in ``R^T``; ``last`` overrides the strategy of ``y_T``."""
    head = st.lists(_COORD, min_size=fam.T - 1, max_size=fam.T - 1)
    return st.tuples(head, last if last is not None else _COORD).map(
        lambda hy: fam.lam * np.array(hy[0] + [hy[1]]))


def _fd(fun, x, lam):
    """Central differences with step ``H·λ``: set by the chain's length scale,
    not by ``|x|`` (far coordinates sit on flat tails), so large ``|x|`` does
    not inflate the truncation error ``h²|f'''|/6``."""
    return fd_jacobian(fun, x, h=H * lam / max(1.0, float(np.abs(x).max())))


def _fd_agrees(fun, derivative, x, lam) -> bool:
    J = _fd(fun, x, lam)
    return bool(np.abs(J - derivative).max() <= fd_tolerance(derivative, J))


# --- 1. derivatives of the family vs finite differences -------------------------
@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
@given(data=st.data())
def test_grad_hess_hvp_match_finite_differences(fam, data):
    x = data.draw(_points(fam))
    i = data.draw(st.integers(0, fam.M - 1))
    v = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=fam.T, max_size=fam.T)))
    assert _fd_agrees(lambda z: fam.loss(z, i), fam.grad(x, i), x, fam.lam)
    assert _fd_agrees(lambda z: fam.grad(z, i), fam.hess(x, i), x, fam.lam)
    np.testing.assert_allclose(fam.hvp(x, i, v), fam.hess(x, i) @ v, rtol=1e-12, atol=1e-14)


def test_finite_difference_check_catches_wrong_derivatives():
    """Negative controls: drop the Ψ′ term of ∇f̄, flip the sign of the Hessian's
    off-diagonal; the same check must reject both."""
    fam = SCALED
    x = fam.lam * np.r_[0.9, 1.2, -0.3, 0.8, np.zeros(fam.T - 4)]
    y = x / fam.lam
    a = np.r_[1.0, y[:-1]]
    no_psi_prime = (fam.L * fam.lam / CHAIN_GRAD_LIP) * (-psi(-a) * phi(-y, 1) - psi(a) * phi(y, 1))
    assert _fd_agrees(lambda z: fam.loss(z, 0), fam.grad(x, 0), x, fam.lam)
    assert not _fd_agrees(lambda z: fam.loss(z, 0), no_psi_prime, x, fam.lam)
    Hw = fam.hess(x, 0)
    flipped = 2 * np.diag(np.diag(Hw)) - Hw
    assert not _fd_agrees(lambda z: fam.grad(z, 0), flipped, x, fam.lam)


def test_oracles_broadcast_over_leading_axes():
    fam = TILTED
    rng = np.random.default_rng(0)
    w = fam.lam * rng.uniform(-2, 2, (3, 1, fam.T))
    i = np.arange(fam.M)
    v = rng.standard_normal((3, fam.M, fam.T))
    G, Hs = fam.grad(w, i), fam.hess(w, i)
    assert fam.loss(w, i).shape == (3, fam.M) and G.shape == (3, fam.M, fam.T)
    assert Hs.shape == (3, fam.M, fam.T, fam.T)
    for s in range(3):
        for k in range(fam.M):
            np.testing.assert_allclose(G[s, k], fam.grad(w[s, 0], k), rtol=0, atol=0)
    np.testing.assert_allclose(fam.hvp(w, i, v), np.einsum("...jk,...k->...j", Hs, v), rtol=1e-12, atol=1e-14)
    assert UNIT.loss(np.zeros((2, UNIT.T)), np.zeros((4, 1), int)).shape == (4, 2)


# --- 2. Ψ, Φ and their derivatives ---------------------------------------------------
@pytest.mark.parametrize("fun", [psi, phi], ids=["psi", "phi"])
@pytest.mark.parametrize("k", [0, 1, 2])
@given(xs=st.lists(st.one_of(st.floats(-5, 5), st.floats(0.5, 0.8)), min_size=1, max_size=8))
def test_psi_phi_derivatives_match_finite_differences(fun, k, xs):
    x = np.array(xs)
    J = np.diag(_fd(lambda z: fun(z, k), x, 1.0))      # Ψ, Φ vary on the unit scale
    exact = fun(x, k + 1)
    assert np.abs(J - exact).max() <= fd_tolerance(exact, J)


def test_psi_phi_values_limits_and_no_floating_point_trouble():
    x = np.r_[-1e3, -40.0, -1.0, -0.5, 0.0, 0.5, 0.5 + 1e-12, 0.52, 1.0, 40.0, 1e3]
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        vals = {(f.__name__, k): f(x, k) for f in (psi, phi) for k in range(4)}
    for k in range(4):
        assert np.all(vals["psi", k][x <= 0.5] == 0.0)                  # exactly 0 for x ≤ ½
        assert np.all(np.isfinite(vals["psi", k])) and np.all(np.isfinite(vals["phi", k]))
        if k:
            assert abs(vals["psi", k][-1]) < 1e-7 and vals["phi", k][0] == vals["phi", k][-1] == 0.0
    assert vals["psi", 0][8] == pytest.approx(1.0) and vals["psi", 0][-1] == pytest.approx(np.e, rel=1e-6)
    assert vals["phi", 0][0] == 0.0 and vals["phi", 0][-1] == pytest.approx(np.sqrt(2 * np.pi * np.e))
    assert vals["phi", 0][4] == pytest.approx(np.sqrt(np.pi * np.e / 2))
    assert vals["phi", 2][4] == 0.0                                       # Φ''(0) = 0: zero-respecting
    assert 0 < vals["psi", 0][7] < 1e-100                                 # switches on smoothly


def test_certified_sups_of_psi_phi_derivatives():
    """Closed-form sups vs a dense grid (they bound it and are attained), and
    Carmon et al.'s ``sup Ψ′ = √(54/e)``."""
    x = np.linspace(-8.0, 8.0, 400_001)
    for k in range(4):
        for fun, sup in ((psi, sup_abs_psi), (phi, sup_abs_phi)):
            grid_max = np.abs(fun(x, k)).max()
            assert grid_max <= sup(k) and (k == 0 or grid_max >= sup(k) * (1 - 1e-6))
    assert sup_abs_psi(1) == pytest.approx(np.sqrt(54 / np.e), rel=1e-11)
    assert [sup_abs_phi(k) for k in range(4)] == pytest.approx(
        [np.sqrt(2 * np.pi * np.e), np.sqrt(np.e), 1.0, np.sqrt(np.e)], rel=1e-11)


def test_chain_derivative_bounds():
    """The certificate reproduces the paper's 152 at order 2 (from below) and
    lies between the single-coordinate lower limit and Young's bound at order 3."""
    assert chain_derivative_bound(2) <= CHAIN_GRAD_LIP
    A = [sup_abs_psi(k) for k in range(4)]
    B = [sup_abs_phi(k) for k in range(4)]
    young = A[0] * B[3] + 3 * A[1] * B[2] + 3 * A[2] * B[1] + A[3] * B[0]
    single = A[3] * B[0] + A[0] * B[3]              # v = e_j: the scheme's floor
    assert single <= chain_derivative_bound(3) <= 1.01 * single < young


@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
def test_no_floating_point_trouble_at_large_x(fam):
    x = np.linspace(-1e3, 1e3, fam.T)
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = [fam.loss(x, 0), fam.grad(x, 0), fam.hess(x, 0), fam.hvp(x, 0, x)]
    assert all(np.all(np.isfinite(o)) for o in out)


# --- 3. the Carmon et al. properties ------------------------------------------------------
@pytest.mark.parametrize("fam", [UNIT, SCALED], ids=IDS[:2])
@given(data=st.data())
def test_gradient_large_until_the_chain_is_traversed(fam, data):
    """``|x_T| < λ ⇒ ‖∇f(x)‖ > ε`` (``‖∇f̄_T‖ > 1`` for ``|y_T| < 1``)."""
    x = data.draw(_points(fam, last=st.one_of(st.just(0.0), st.floats(-1.0, 1.0, exclude_min=True,
                                                                      exclude_max=True))))
    assert np.linalg.norm(fam.grad(x, 0)) > fam.eps


def test_gap_is_within_budget():
    for fam in FAMILIES:
        f0 = float(fam.p @ fam.loss(np.zeros(fam.T), np.arange(fam.M)))
        assert f0 - fam.inf_f_lower() <= fam.Delta
    for fam in (UNIT, SCALED):                  # our bound is tighter than the paper's 12T
        f0 = float(fam.loss(np.zeros(fam.T), 0))
        assert f0 - fam.gap_bound() <= fam.inf_f_lower() < f0
        assert fam.gap_bound() <= fam.Delta


@given(data=st.data())
def test_inf_lower_bound_holds_at_drawn_points(data):
    fam = TILTED
    x = data.draw(_points(fam))
    assert fam.p @ fam.loss(x, np.arange(fam.M)) >= fam.inf_f_lower()


# --- 4. zero-respecting -------------------------------------------------------------------
@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
@given(data=st.data())
def test_zero_respecting_gradient_and_maml_step(fam, data):
    k = data.draw(st.integers(0, fam.T - 2))
    w = np.zeros(fam.T)
    w[:k] = data.draw(_points(fam))[:k]
    for i in range(fam.M):
        g = fam.grad(w, i)
        assert np.all(g[k + 1:] == 0)
    alpha = 1.0 / (6.0 * fam.constants().L.value)
    beta = 1.0 / (12.0 * fam.constants().L.value)
    w1 = w - beta * grad_F(fam, w, alpha)
    assert np.all(w1[k + 2:] == 0)
    assert fam.progress(w1) <= k + 2


def test_chain_advances_by_exactly_one_coordinate_per_gradient():
    """The support bound is attained: a coordinate with ``y_k > ½`` switches on
    ``k + 1`` (``∂_{k+1} f̄ = −Ψ(y_k)Φ′(0) ≠ 0``)."""
    fam = SCALED
    w = np.zeros(fam.T)
    assert fam.progress(w - fam.grad(w, 0)) == 1
    w[:3] = fam.lam * np.r_[1.0, 1.0, 0.8]
    assert fam.progress(w) == 3 and fam.progress(w - fam.grad(w, 0)) == 4
    assert fam.progress(w, threshold=fam.lam * 0.9) == 2


# --- 5. certified constants ----------------------------------------------------------------
def _ratios(fam, w, u):
    """Per task: the ratios ``‖∇f_i(w) − ∇f_i(u)‖/‖w − u‖`` (A2) and
    ``‖∇²f_i(w) − ∇²f_i(u)‖₂/‖w − u‖`` (A3)."""
    i = np.arange(fam.M)
    dist = np.linalg.norm(w - u)
    dg = np.linalg.norm(fam.grad(w, i) - fam.grad(u, i), axis=-1) / dist
    dH = np.linalg.norm(fam.hess(w, i) - fam.hess(u, i), ord=2, axis=(-2, -1)) / dist
    return dg, dH


def _near_worst_pair(fam, k=3, t=1e-4):
    """``y_k`` at the maximiser of ``|Ψ'''|``, ``y_{k+1}`` far out (``Φ ≈ sup Φ``), the
    pair differing along ``e_k``: ``|∂³_k f̄| ≈ sup|Ψ'''| sup Φ``."""
    grid = np.linspace(0.5, 3.0, 200_001)
    y = np.zeros(fam.T)
    y[k - 1], y[k] = grid[np.argmax(np.abs(psi(grid, 3)))], 40.0
    w = fam.lam * y
    u = w.copy()
    u[k - 1] += t * fam.lam
    return w, u


# A pair closer than 1e-3·λ would let the rounding of the Hessian entries
# (relative 1e-15) inflate the ratio by more than 1e-12 of ρ; the 1e-9 relative
# slack below covers that rounding and nothing else.
_SLACK = 1e-9


@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
@given(data=st.data())
def test_certified_L_and_rho_hold(fam, data):
    w = data.draw(_points(fam))
    direction = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=fam.T, max_size=fam.T)))
    if np.linalg.norm(direction) < 1e-3:
        direction[0] = 1.0
    step = data.draw(st.floats(1e-3, 1.0)) * fam.lam
    u = w + step * direction / np.linalg.norm(direction)
    c = fam.constants()
    dg, dH = _ratios(fam, w, u)
    assert np.all(dg <= c.L_i * (1 + _SLACK)) and np.all(dH <= c.rho_i * (1 + _SLACK))
    assert np.all(c.L_i <= c.L.value) and np.all(c.rho_i <= c.rho.value)


@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
def test_rho_is_nearly_attained_and_an_understated_rho_is_caught(fam):
    c = fam.constants()
    _, dH = _ratios(fam, *_near_worst_pair(fam))
    assert np.all(dH <= c.rho_i * (1 + _SLACK)) and np.all(dH >= 0.99 * c.rho_i)
    assert np.any(dH > c.replace(rho=0.98 * c.rho.value).rho_i)


def test_sigma_is_exact_and_attained():
    fam = TILTED
    i = np.arange(fam.M)
    x = np.full(fam.T, fam.mu * np.pi / 2)
    G = fam.grad(x, i)
    spread = fam.p @ np.sum((G - fam.p @ G) ** 2, -1)
    sigma = fam.constants().sigma
    assert sigma.exact and sigma.value == pytest.approx(0.7 * fam.eps)
    assert spread == pytest.approx(sigma.value ** 2, rel=1e-12)
    # the task average is the untilted chain
    plain = HardChain(eps=0.05, Delta=20.0, L=3.0)
    y = fam.lam * np.linspace(-2, 2, fam.T)
    assert fam.p @ fam.loss(y, i) == pytest.approx(plain.loss(y, 0), rel=1e-12)
    np.testing.assert_allclose(fam.p @ fam.grad(y, i), plain.grad(y, 0), rtol=1e-12, atol=1e-15)
    for fam0 in (UNIT, SCALED):
        c = fam0.constants()
        assert c.sigma.value == c.sigma_tilde.value == c.sigma_H.value == 0.0


@given(data=st.data())
def test_sigma_bounds_the_dissimilarity_everywhere(data):
    fam = TILTED
    x = data.draw(_points(fam))
    G = fam.grad(x, np.arange(fam.M))
    assert fam.p @ np.sum((G - fam.p @ G) ** 2, -1) <= fam.constants().sigma.value ** 2 * (1 + 1e-12)


def test_deterministic_batches():
    fam = TILTED
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    batch = fam.draw_batch(np.array([0, 3]), 5, rng)
    assert rng.bit_generator.state == before
    w = fam.lam * np.linspace(-1, 1, fam.T)
    v = np.ones(fam.T)
    np.testing.assert_array_equal(fam.batch_grad(w, 2, batch), fam.grad(w, 2))
    np.testing.assert_array_equal(fam.batch_hess(w, 2, batch), fam.hess(w, 2))
    np.testing.assert_array_equal(fam.batch_hvp(w, 2, v, batch), fam.hvp(w, 2, v))
    np.testing.assert_array_equal(fam.sample_grad(w, 2, 3, rng), fam.grad(w, 2))


# --- 6. bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(eps=0.0, Delta=10.0, L=1.0), "eps must"),
    (dict(eps=-0.1, Delta=10.0, L=1.0), "eps must"),
    (dict(eps=0.1, Delta=10.0, L=float("nan")), "L must"),
    (dict(eps=0.1, Delta=float("inf"), L=1.0), "Delta must"),
    (dict(eps=0.1, Delta=1.0, L=1.0), "Delta too small: T = "),     # T = ⌊1/18.24⌋ = 0
    (dict(eps=0.1, Delta=1.0, L=1.0, T=0), "T must"),
    (dict(eps=0.1, Delta=1.0, L=1.0, T=2.5), "T must"),
    (dict(eps=0.1, Delta=100.0, L=1.0, M=2, p=[0.5, 0.6]), "p must sum to 1"),
    (dict(eps=0.1, Delta=100.0, L=1.0, tilt=-1.0), "tilt must"),
    (dict(eps=0.1, Delta=100.0, L=1.0, M=1, tilt=0.5), "tilt > 0 needs"),
    (dict(eps=0.1, Delta=100.0, L=1.0, M=2, p=[1.0, 0.0], tilt=0.5), "tilt > 0 needs"),
])
def test_bad_parameters_raise_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HardChain(**kwargs)


def test_bad_arguments_raise_naming_them():
    with pytest.raises(ValueError, match="w must have shape"):
        SCALED.grad(np.zeros(SCALED.T + 1), 0)
    with pytest.raises(ValueError, match="v must have shape"):
        SCALED.hvp(np.zeros(SCALED.T), 0, np.zeros(3))
    with pytest.raises(ValueError, match="task indices"):
        TILTED.loss(np.zeros(TILTED.T), 4)
    with pytest.raises(ValueError, match="batch size"):
        SCALED.draw_batch(0, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="order k"):
        psi(0.0, 4)


# --- 7. registry and the MAML objective ------------------------------------------------------------
def test_registry_builds_the_family():
    fam = make_family("hard-chain", eps=0.05, Delta=20.0, L=3.0)
    assert isinstance(fam, HardChain) and fam.T == int(20.0 * 3.0 / (1824 * 0.05 ** 2)) == 13
    assert fam.lam == pytest.approx(152 * 0.05 / 3.0)
    assert make_family("hard-chain", eps=0.05, Delta=20.0, L=3.0, T=5).T == 5
    assert {"eps", "Delta", "L", "T", "M", "tilt", "p", "seed"} <= set(family_parameters("hard-chain"))
    assert fam.describe()["T"] == 13 and fam.describe()["family"] == "hard-chain"


@pytest.mark.parametrize("fam", [SCALED, TILTED], ids=IDS[1:])
@given(data=st.data())
def test_maml_objective_gradient_matches_finite_differences(fam, data):
    x = data.draw(_points(fam))
    alpha = 1.0 / (6.0 * fam.constants().L.value)
    assert _fd_agrees(lambda z: F(fam, z, alpha), grad_F(fam, x, alpha), x, fam.lam)


@pytest.mark.parametrize("T, M, tilt", [(1, 1, 0.0), (2, 1, 0.0), (9, 3, 0.0), (9, 3, 0.5)])
def test_fast_meta_grad_equals_the_task_sum(T, M, tilt):
    """The O(T) exact ∇F (5) equals the plain task sum, across Ψ's switch-on near
    ±½, the chain and the far tails (1e-11 relative: rounding of two
    evaluation orders of the same products)."""
    from mamlcheck.algorithms.objective import grad_F_by_tasks
    fam = HardChain(eps=0.02, Delta=1.0, L=1.0, T=T, M=M, tilt=tilt)
    rng = np.random.default_rng(T)
    for scale in (0.3, 0.6, 1.5, 3.0, 40.0):
        w = fam.lam * scale * rng.uniform(-1, 1, (4, T))
        np.testing.assert_allclose(fam.meta_grad(w, 1 / 6), grad_F_by_tasks(fam, w, 1 / 6),
                                   rtol=1e-11, atol=1e-13 * fam.eps)
