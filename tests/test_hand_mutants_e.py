"""One test per mutant of the fifth hand-written set that survived the suite
(mutation/hand_e_results.md), each seen to fail on its mutant: 23 local_smoothness's
second-order ratio over ½h², 24 the ledger's seed interval with the standard error s/√R."""
import numpy as np
import pytest

from mamlcheck.experiments import ledger_measure, local_smoothness
from mamlcheck.problems import make_family

from .conftest import TEST_ROOT


# --- 23. the second-order ratio is |F(u) − F(w) − h∇F(w)ᵀv| / (½h²) ---------------------------
def test_the_second_order_ratio_is_the_curvature_along_the_direction_on_a_quadratic_F():
    """With ``γ = 0`` every task loss of cosine-quadratic is the quadratic ``½(w − c_i)ᵀA(w − c_i)``,
    so ``F`` is quadratic with Hessian ``H = (I − αA)A(I − αA)`` and, for the unit direction ``v``
    of a row, the second-order ratio is ``vᵀHv`` and the first-order ratio ``‖Hv‖`` (to finite-
    difference rounding, ≤ 1e-5 relative here). Whatever ``v`` is,
    ``‖Hv‖²/λ_max(H) ≤ vᵀHv ≤ ‖Hv‖`` (Cauchy–Schwarz in the ``H⁻¹`` and Euclidean inner
    products), so the ratio is pinned from both sides: divided by ``h²`` instead of ``½h²`` it
    is halved and falls below the lower end (which is at least ``λ_min/λ_max ≈ 0.33`` of
    ``‖Hv‖``), divided by ``¼h²`` it doubles and exceeds the upper end."""
    fam = make_family("cosine-quadratic", d=6, M=5, gamma=0.0)
    alpha = local_smoothness.ALPHA_L / fam.constants().L.value
    I = np.eye(fam.d)
    H = (I - alpha * fam._A_mat) @ fam._A_mat @ (I - alpha * fam._A_mat)
    lam_max = np.linalg.eigvalsh(H)[-1]
    rng = np.random.default_rng([TEST_ROOT, 23])
    W = rng.standard_normal((30, fam.d)) * np.geomspace(0.1, 100, 30)[:, None]
    t = local_smoothness.local_ratios(fam, W, alpha, rng)
    tol = local_smoothness.FD_RTOL
    r1, r2 = t.ratio1.to_numpy(), t.ratio2.to_numpy()
    assert np.all(r2 <= r1 * (1 + tol))
    assert np.all(r2 >= r1 ** 2 / lam_max * (1 - tol))
    # the power-iterated rows come close to the top of the spectrum, where both ends meet
    power = t.direction.to_numpy() == "power"
    assert np.median(r2[power]) > 0.8 * lam_max


# --- 24. the seed interval's half-width is t_{1−δ/2, R−1} · s / √R --------------------------
def test_the_seed_interval_half_width_is_the_student_t_quantile_times_the_standard_error():
    """Written out by hand: seeds ``1, 2, 3, 4`` (R = 4) have mean 2.5 and ``s² = 5/3``; at
    ``δ = 0.05`` the quantile ``t_{0.975, 3} = 3.182446305284263`` (tables), so the half-width is
    ``3.182446305284263·√(5/3)/2 = 2.0542732...``; with ``s/R`` instead of ``s/√R`` it would be
    half that, with ``ddof = 0`` 13 % less."""
    x = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    mean, half = ledger_measure._across_seeds(x, 0.05, exact=False)
    np.testing.assert_array_equal(mean, [2.5, 2.0])
    assert half[0] == pytest.approx(3.182446305284263 * np.sqrt(5 / 3) / 2, rel=1e-12)
    assert half[1] == 0.0
    # exact gradients: no width; one seed: no interval
    assert ledger_measure._across_seeds(x, 0.05, exact=True)[1].tolist() == [0.0, 0.0]
    assert np.isinf(ledger_measure._across_seeds(x[:, :1], 0.05, exact=False)[1]).all()
