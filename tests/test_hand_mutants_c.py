"""One test per mutant of the third hand-written set that survived the suite
(mutation/hand_c/), each seen to fail on its mutant.  Identities, exact or to
rounding; draws (where any) from ``TEST_ROOT``, the identity holding draw for draw.

* 06: the hard chain's certified ``inf f`` is attained by a one-link chain
  (the first link's ``Ψ(1)``, then ``T − 1`` links at ``sup|Ψ|``);
* 14: the random streams depend on the root entropy (and are the documented
  ``SFC64(SeedSequence(root, spawn_key=(seed, stream)))``);
* 26: the ledger's (9) uses ``L(w_k)``, the smoothness at the step's start;
* 27: the ledger's (10) estimates ``E‖G_i‖²`` as ``‖E g‖² + B·tr Cov(g)`` for
  ``g`` the mean of ``B`` i.i.d. task directions;
* 28: local_smoothness' first-order bound is ``min{L(w), L(u)}``;
* 29: rate_benign's ``Δ`` is the seed mean of ``F(w_0) − inf_f_lower()``;
* 30: bias_din's A3 bound ``(1 + αL)ρα²σ̃²/(2D_in)`` is attained as ``D_in`` grows.
"""
import copy

import numpy as np
import pytest

import mamlcheck as mc
from mamlcheck.algorithms.objective import F, grad_F, local_L
from mamlcheck.algorithms.steps import outer_step
from mamlcheck.algorithms.streams import SeedStreams, seed_generator
from mamlcheck.experiments import bias_din, ledger, local_smoothness, rate_benign
from mamlcheck.experiments.ledger_measure import _conditional
from mamlcheck.problems import make_family
from mamlcheck.problems.hard_chain import HardChain
from mamlcheck.theory import bounds

from tests.conftest import TEST_ROOT


# --- 06. the chain's certified infimum, attained with one link ----------------------------------
def test_the_certified_infimum_of_a_one_link_chain_is_attained_far_along_it():
    """With ``T = 1`` the loss is ``c·(Ψ(−1)Φ(−y) − Ψ(1)Φ(y)) = −cΨ(1)Φ(y)``, which
    tends to ``−cΨ(1)·sup Φ`` as ``y → ∞``: the certified lower bound is exact
    there (an extra ``sup|Ψ|`` link would put it ``c·supΦ·sup|Ψ|`` lower)."""
    fam = HardChain(eps=0.05, Delta=20.0, L=1.0, T=1)
    far = fam.loss(np.array([40.0 * fam.lam]), 0)
    assert fam.inf_f_lower() == pytest.approx(float(far), rel=1e-13)
    assert fam.inf_f_lower() <= far


def test_each_further_link_lowers_the_certified_infimum_by_c_sup_phi_sup_psi():
    from mamlcheck.problems.hard_chain import sup_abs_phi, sup_abs_psi
    lows = [HardChain(eps=0.05, Delta=20.0, L=1.0, T=T).inf_f_lower() for T in (1, 2, 5)]
    c = HardChain(eps=0.05, Delta=20.0, L=1.0, T=1)._c
    step = c * sup_abs_phi(0) * sup_abs_psi(0)
    np.testing.assert_allclose(np.diff(lows), [-step, -3 * step], rtol=1e-12)


# --- 14. the streams depend on the root ---------------------------------------------------------
def test_the_streams_are_the_documented_generators_of_root_seed_and_stream():
    for root in (TEST_ROOT, TEST_ROOT + 1):
        want = np.random.Generator(np.random.SFC64(np.random.SeedSequence(root, spawn_key=(3, 1)))).random(5)
        np.testing.assert_array_equal(seed_generator(root, 3, 1).random(5), want)
    assert not np.array_equal(seed_generator(TEST_ROOT, 3, 0).random(5), seed_generator(TEST_ROOT + 1, 3, 0).random(5))


def test_two_roots_give_two_different_runs_and_one_root_the_same_run():
    fam = make_family("cosine-quadratic", d=3, M=4, noise_grad=0.5, noise_amp=0.1)
    h = mc.Hyper("maml", alpha=0.02, B=4)
    runs = [mc.run(fam, h, [1e-9], seeds=2, budget=5, w0=np.ones(3), root=r, stop_at_eps=False)
            for r in (TEST_ROOT, TEST_ROOT, TEST_ROOT + 1)]
    np.testing.assert_array_equal(runs[0].w, runs[1].w)
    assert not np.array_equal(runs[0].w, runs[2].w)


# --- 26. (9) with the local constant at the step's start ----------------------------------------
def test_the_descent_rows_use_the_smoothness_at_the_start_of_each_step():
    """Exact MAML is deterministic: walk the same iterates with the engine and
    rebuild (9)'s right side ``F(w_k) − β_k‖∇F(w_k)‖² + (L(w_k)/2)β_k²‖∇F(w_k)‖²``."""
    fam = make_family("cosine-quadratic", gamma=0.5, spread=0.5, noise_grad=0.05, noise_amp=0.05)
    c = fam.constants()
    L, rho = c.L.value, c.rho.value
    alpha = 1 / (6 * L)
    h = mc.Hyper("exact", alpha=alpha)
    w0 = np.full(fam.d, 2.0)
    led = ledger.evaluate(fam, h, eps=1e-9, seeds=1, budget=8, w0=w0, points=2, draws=20, reps=20, cond_reps=2,
                          root=TEST_ROOT)
    steps = list(mc.trajectory(fam, h, seeds=1, w0=w0, root=TEST_ROOT, budget=8))
    rows = led.rows[led.rows.step == "(9)"].sort_values("k")
    assert len(rows) == 8
    for k, right in zip(rows.k, rows.right):
        w, beta = steps[k].w, steps[k + 1].beta
        g = grad_F(fam, w, alpha)
        want = bounds.descent_rhs(F_w=F(fam, w, alpha), beta=beta, grad_dot_g=np.sum(g * g, -1),
                                  g_sq_norm=np.sum(g * g, -1), L_w=local_L(fam, w, alpha, L, rho))
        assert right == pytest.approx(float(want[0]), rel=1e-12), k
    L_next = local_L(fam, steps[1].w, alpha, L, rho)
    assert abs(L_next - local_L(fam, steps[0].w, alpha, L, rho)) > 1e-3 * L_next      # the control can fail


# --- 27. (10): E‖G_i‖² = ‖E g‖² + B tr Cov(g) --------------------------------------------------------
@pytest.mark.parametrize("B", [3, 10])
def test_the_conditional_descent_bound_is_the_plug_in_of_the_replicated_steps(B):
    """With ``E‖G_i‖² = ‖E g‖² + B tr Cov(g)`` estimated from replicated steps,
    (10)'s quadratic term ``‖E G‖² + E‖G‖²/B`` becomes ``mean‖g‖² + ‖mean g‖²/B``:
    the right side is, draw for draw, ``F(w) − mean β·∇Fᵀmean g +
    (L(w)/2)·mean β²·(mean‖g‖² + ‖mean g‖²/B)``."""
    fam = make_family("cosine-quadratic", d=3, M=5, noise_grad=0.5, noise_amp=0.2)
    c = fam.constants()
    L, rho = c.L.value, c.rho.value
    h = mc.Hyper("maml", alpha=0.02, B=B).resolved(c)
    w = np.array([0.7, -0.4, 1.1])
    rng = np.random.default_rng([TEST_ROOT, 27])
    _, rhs, _, _, F0 = _conditional(fam, h, w, L, rho, 200, copy.deepcopy(rng), 1e-6)
    out = outer_step(fam, np.repeat(w[None], 200, axis=0), h, L, rho, copy.deepcopy(rng))
    mb, mb2, mg, mg2 = out.beta.mean(), (out.beta ** 2).mean(), out.g.mean(0), np.sum(out.g ** 2, -1).mean()
    want = F0 - mb * float(grad_F(fam, w, h.alpha) @ mg) + 0.5 * float(local_L(fam, w, h.alpha, L, rho)) * mb2 * (
        mg2 + float(mg @ mg) / B)
    assert rhs == pytest.approx(want, rel=1e-12)


# --- 28. the first-order bound is min{L(w), L(u)} -------------------------------------------
def test_the_first_order_bound_is_the_smaller_of_the_two_local_constants():
    spec = local_smoothness.FAMILIES["cosine-quadratic"]
    fam = make_family("cosine-quadratic", **spec["params"])
    alpha = local_smoothness.ALPHA_L / fam.constants().L.value
    rng = np.random.default_rng(2828)
    W = rng.standard_normal((40, fam.d)) * np.geomspace(1e-1, 1e3, 40)[:, None]
    t = local_smoothness.local_ratios(fam, W, alpha, np.random.default_rng(28))
    np.testing.assert_array_equal(t.bound1.to_numpy(), np.minimum(t.L_w, t.L_u).to_numpy())
    np.testing.assert_array_equal(t.bound2.to_numpy(), t.L_w.to_numpy())
    # the control: u and w have different local constants, on both sides, at most rows
    assert (t.L_u < t.L_w).sum() >= 10 and (t.L_u > t.L_w).sum() >= 10


# --- 29. rate_benign's Delta is the seed mean of F(w_0) - inf_f_lower() --------------------
def test_the_benign_rate_takes_delta_at_the_seeds_starts():
    params = rate_benign.cells("tiny")[0]                      # cosine-quadratic, 2 seeds
    table = rate_benign.compute(params)
    fam = make_family(params["family"], **params["family_params"])
    c = fam.constants().values()
    alpha = params["alpha_L"] / c["L"]
    w0 = rate_benign._w0(fam.d, params["seeds"])
    want = float(np.mean(F(fam, w0, alpha))) - fam.inf_f_lower()
    assert table.Delta_bound.unique().tolist() == [pytest.approx(want, rel=1e-12)]
    at_origin = float(F(fam, np.zeros(fam.d), alpha)) - fam.inf_f_lower()
    assert abs(at_origin - want) > 0.2 * want                 # the control: another start, another Δ
    eps = np.sort(table.eps.unique())
    upper = table.drop_duplicates("eps").set_index("eps").upper.loc[eps].to_numpy()
    np.testing.assert_allclose(upper, bounds.iterations_upper(eps=eps, Delta=want, L=c["L"], rho=c["rho"],
                                                              alpha=alpha, sigma=c["sigma"]), rtol=1e-12)


# --- 30. the A3 bias bound is attained as D_in grows --------------------------------------
def test_the_A3_bias_bound_has_its_hand_value():
    assert bias_din.bias_bound_A3(0.1, 2.0, 3.0, 4.0, 5) == pytest.approx(1.2 * 3.0 * 0.01 * 16.0 / 10.0, rel=1e-15)


def test_the_A3_bias_bound_is_tight_for_a_one_task_ripple():
    """One task in d = 1, ripple noise off (σ̃ = s_ξ), a tiny curvature a: at w = 0
    (cos ωw = 1) with the centre placed so that sin(ωu) = 1 at u = αac, the exact
    bias γω(1 − e^{−ω²v/2})(1 − αa + αγω²), v = α²σ̃²/D_in, tends to the bound
    (1 + α(a + γω²))ρα²σ̃²/(2D_in) up to the factor (1 − αa + αγω²)/(1 + αa + αγω²)."""
    a, gamma, omega, s, alpha = 0.01, 0.5, 2.0, 1.0, 0.1
    c = np.pi / (2 * omega * alpha * a)
    fam = make_family("cosine-quadratic", d=1, M=1, gamma=gamma, omega=omega, a_min=a, a_max=a,
                      noise_grad=s, noise_amp=0.0, centres=[[c]])
    k = fam.constants().values()
    for D_in, lo in ((100, 0.99), (10_000, 0.995)):
        bias = abs(float(bias_din.exact_bias(fam, np.zeros(1), alpha, D_in)[0]))
        bound = bias_din.bias_bound_A3(alpha, k["L"], k["rho"], k["sigma_tilde"], D_in)
        assert lo <= bias / bound <= 1.0, (D_in, bias / bound)
