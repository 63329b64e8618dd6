"""One test per mutant of the second hand-written set that survived the suite
(mutation/hand_b/SURVIVORS.md), each seen to fail on its mutant.

Every assertion is an identity, exact or to rounding; none is statistical.
Where draws are involved they come from ``TEST_ROOT`` and the identity holds
draw for draw.

* 06: the tilted chain's ``ρ`` adds ``σ·max_j|s_ij|/μ²`` (μ² from the tilt's
  third derivative ``(σ/μ²) s_ij cos(x_j/μ)``), checked with ``μ < 1`` too;
* 12: ``outer_step`` never takes a one-step fast sampler for ``N > 1``;
* 13: ``Hyper.resolved`` sizes ``B′`` from ``σ`` and ``D_β`` from ``σ̃``;
* 14: a NaN iterate is a diverged seed;
* 24: the proof's (8) rests on ``D_h_min`` (THEORY.md §4);
* 27: the exact ledger's (7), (8) bounds carry no batch noise;
* 28: multistep_alpha's bias standard error is that of the ``p``-weighted mean;
* 29: multistep_rate's ``L̄`` and mean ``β`` are over the steps ``k < K``.
"""
import numpy as np
import pandas as pd
import pytest

from mamlcheck import run
from mamlcheck.algorithms.estimators import algorithm
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import grad_F
from mamlcheck.algorithms.steps import outer_step
from mamlcheck.algorithms.streams import SeedStreams
from mamlcheck.experiments import ledger, multistep_alpha, multistep_rate
from mamlcheck.problems import make_family
from mamlcheck.problems.cosine_quadratic import CosineQuadratic
from mamlcheck.problems.hard_chain import HardChain, chain_derivative_bound
from mamlcheck.theory import proof

from tests.conftest import TEST_ROOT


# --- 06. the tilted chain's ρ: the tilt's third derivative is (σ/μ²) s_ij cos(x_j/μ) ----------
@pytest.mark.parametrize("eps, Delta", [(0.05, 20.0), (0.01, 0.2)], ids=["mu>1", "mu<1"])
def test_tilted_rho_is_the_chain_term_plus_sigma_s_max_over_mu_squared(eps, Delta):
    """The tilt's Hessian is diagonal, ``(σ/μ) s_ij cos(x_j/μ)``, so its third
    derivative is at most ``(σ/μ²)|s_ij|`` and ``ρ_i = ρ̄c/λ³ + (σ/μ²) max_j|s_ij|``.
    A ``σ/μ`` version understates ρ when ``μ < 1`` and overstates it when
    ``μ > 1``: both chains pin the tilt term to rounding."""
    c = HardChain(eps=eps, Delta=Delta, L=3.0, M=4, tilt=0.7, p=[0.1, 0.2, 0.3, 0.4], seed=3)
    assert (c.mu < 1) == (eps < 0.02)
    k = c.constants()
    s_max = np.abs(c.s).max(-1)
    tilt_term = k.rho_i - chain_derivative_bound(3) * c._c / c.lam ** 3
    np.testing.assert_allclose(tilt_term, c.sigma * s_max / c.mu ** 2, rtol=1e-12)


# --- 12. outer_step with N > 1 inner steps uses the generic N-step direction ----------------------
@pytest.mark.parametrize("N", [2, 3])
def test_outer_step_with_N_inner_steps_never_takes_the_one_step_fast_path(N):
    """One noise-free task: every estimator's direction is the exact ``∇F_N(w)``,
    so the direction of ``outer_step(fast=True)`` under the adaptive rule must be
    ``grad_F(w, α, N)`` to rounding (the one-step fast sampler would give
    ``∇F_1``, which differs here by far more than rounding)."""
    fam = CosineQuadratic(d=3, M=1, noise_grad=0.0, noise_amp=0.0, gamma=1.0, omega=2.0, seed=4)
    consts = fam.constants()
    L, rho = consts.L.value, consts.rho.value
    alpha = 0.02
    hyper = Hyper("maml", alpha=alpha, inner_steps=N, B=2).resolved(consts)
    w = np.random.default_rng([TEST_ROOT, 12]).standard_normal((2, fam.d))
    out = outer_step(fam, w, hyper, L, rho, SeedStreams(2, TEST_ROOT), fast=True)
    exact_N, exact_1 = grad_F(fam, w, alpha, N), grad_F(fam, w, alpha, 1)
    np.testing.assert_allclose(out.g, exact_N, rtol=1e-10, atol=1e-12)
    assert np.abs(exact_N - exact_1).max() > 1e-6


# --- 13. Hyper.resolved: B′ from σ, D_β from σ̃ ----------------------------------------------------
def test_resolved_takes_B_prime_from_sigma_and_D_beta_from_sigma_tilde():
    """``B′ = ⌈½(ρασ/L)²⌉`` and ``D_β = ⌈4(ρασ̃/L)²⌉`` (THEORY.md §3): at
    ``ρα/L = 5``, ``σ = 1``, ``σ̃ = 2`` that is ``B′ = ⌈12.5⌉ = 13`` and
    ``D_β = ⌈4·10²⌉ = 400``; swapping σ and σ̃ gives 50 and 100."""
    h = Hyper("maml", alpha=0.05).resolved({"L": 1.0, "rho": 100.0, "sigma": 1.0, "sigma_tilde": 2.0,
                                            "sigma_H": 0.0})
    assert (h.B_prime, h.D_beta) == (13, 400)


# --- 14. a NaN iterate is a diverged seed -----------------------------------------------------
def test_a_nan_iterate_counts_as_diverged():
    """Seed 1 starts at ``1e308``: ``ωw`` overflows, so ``∇F`` and ``w_1`` are
    NaN.  ``not ‖w‖ ≤ bound`` catches NaN where ``‖w‖ > bound`` does not: the
    seed must be diverged at step 1 and frozen at its (finite) start, and the
    seed average, over the live seed, must still reach ε."""
    fam = CosineQuadratic(d=3, M=4, noise_grad=0.0, noise_amp=0.0, seed=4)
    L = fam.constants().L.value
    hyper = Hyper("exact", alpha=0.02, step="constant", beta=1 / (2 * L))
    w0 = np.array([[0.5] * 3, [1e308] * 3])
    with np.errstate(all="ignore"):
        res = run(fam, hyper, [1e-3], seeds=2, w0=w0, budget=400, root=TEST_ROOT)
    t = res.table.set_index("seed")
    assert bool(t.loc[1, "diverged"]) and int(t.loc[1, "diverged_at"]) == 1
    assert not bool(t.loc[0, "diverged"])
    assert np.isfinite(res.w).all() and np.array_equal(res.w[1], w0[1])
    assert not pd.isna(res.mean_table.mean_first_k.iloc[0])


# --- 24. the proof's steps and the conditions they rest on (THEORY.md §4) ---------------------
_ALPHA = {"alpha_range", "alpha_smoothness"}     # α in the theorem's range, α small enough for (9)


def test_each_step_of_the_proof_names_the_conditions_it_rests_on():
    """(7) rests on A2, A5's σ̃ and the step ``α``; (8) also on A4's σ, A5's
    ``σ_H`` and the Hessian batch ``D_h ≥ ⌈2α²σ_H²⌉``; (9) and (10) on A2, A3
    and ``α`` small enough for the smoothness of F."""
    table = {
        "(7)": {"A2_L", "A5_sigma_tilde"} | _ALPHA,
        "(8)": {"A2_L", "A4_sigma", "A5_sigma_tilde", "A5_sigma_H", "D_h_min"} | _ALPHA,
        "(9)": {"A2_L", "A3_rho", "alpha_smoothness"},
        "(10)": {"A2_L", "A3_rho", "alpha_smoothness"},
    }
    for step, deps in table.items():
        assert proof.DEPENDS[step] == deps, step
    assert proof.cause("(8)", "violated", ["D_h_min"]) == "outside the theorem: D_h_min broken"
    assert proof.cause("(7)", "violated", ["D_h_min"]).startswith("VIOLATED UNDER THIS STEP'S CONDITIONS")


# --- 27. the exact ledger's (7), (8): infinite batches, no σ̃ terms ------------------------------
def test_exact_ledger_moment_bounds_carry_no_batch_noise():
    """In exact mode the batches are infinite, so (7)'s bound is ``2‖∇F(w_k)‖²``
    and (8)'s ``40‖∇F(w_k)‖² + 14σ²``, to rounding, on a family with σ̃ > 0 (the
    two seeds start alike and the run is deterministic, so the trajectory's
    seed-averaged ``‖∇F‖`` is each seed's)."""
    fam = make_family("cosine-quadratic", gamma=0.05, spread=0.05, noise_grad=0.05, noise_amp=0.05)
    k = fam.constants()
    assert k.sigma_tilde.value > 0
    alpha = 1 / (6 * k.L.value)
    led = ledger.evaluate(fam, Hyper("exact", alpha=alpha), eps=0.5, seeds=2, budget=400,
                          w0=np.ones(fam.d), points=3, draws=50, reps=50, cond_reps=4, root=TEST_ROOT)
    gn = led.trajectory.set_index("k")["mean_grad_norm"]
    r7 = led.rows[led.rows.step == "(7)"]
    r8 = led.rows[led.rows.step == "(8)"]
    assert len(r7) == len(r8) == 3
    g = gn.loc[r7.k.to_numpy()].to_numpy()
    np.testing.assert_allclose(r7.right.to_numpy(), 2 * g ** 2, rtol=1e-12)
    np.testing.assert_allclose(r8.right.to_numpy(), 40 * g ** 2 + 14 * k.sigma.value ** 2, rtol=1e-12)


# --- 28. multistep_alpha's bias standard error ---------------------------------------------------
def test_the_bias_standard_error_is_that_of_the_weighted_mean_of_task_means():
    """The bias estimate is ``Σ_i p_i Ḡ_i − ∇F_N`` with ``Ḡ_i`` the mean of ``n``
    independent draws of task ``i``: per coordinate its standard error is
    ``(Σ_i p_i² s_i²/n)^½`` (independent tasks), ``s_i²`` the sample variance.
    Recomputed from the cell's own draws (its seeded stream), to rounding."""
    variant = "robust"
    name, fparams = multistep_alpha.FAMILIES[variant]
    fam = make_family(name, **fparams)
    params = {"variant": variant, "family": name, "family_params": fparams, "fixed_alpha_L": [0.1],
              "N_fixed": [2], "N_cN": [1, 3], "draws": 40, "seed": TEST_ROOT % 10_000}
    c = fam.constants().values()
    table = multistep_alpha._moments(fam, params, c)
    w = multistep_alpha._start(fam, params["variant"], params["seed"])
    n, M = params["draws"], fam.M
    maml = algorithm("maml")
    for i, (j, _label, _fixed, N, alpha) in enumerate(multistep_alpha._schedules(params, c["L"])):
        hyper = Hyper("maml", alpha=alpha, inner_steps=N, **multistep_alpha.BATCH)
        G = maml.task_directions(fam, np.broadcast_to(w, (n, fam.d)), np.broadcast_to(np.arange(M), (n, M)),
                                 hyper, c["rho"], np.random.default_rng([params["seed"], 2, j, N]))
        se = np.sqrt(np.einsum("m,md->d", fam.p ** 2, G.var(axis=0, ddof=1)) / n)
        row = table.iloc[i]
        assert row.N == N and row.alpha == alpha
        assert row.bias_se == pytest.approx(float(np.linalg.norm(se)), rel=1e-12)


# --- 29. multistep_rate: L̄ and the mean β over the steps k < K ------------------------------------
def test_L_bar_and_beta_mean_are_over_the_steps_before_the_hit():
    """``_upto(a, K)`` keeps the rows ``k < K``; ``k = 0`` alone when ``K = 0``;
    every row when ``K`` is NA (ε not reached)."""
    a = np.arange(5)
    assert multistep_rate._upto(a, 3).tolist() == [0, 1, 2]
    assert multistep_rate._upto(a, 1).tolist() == [0]
    assert multistep_rate._upto(a, 0).tolist() == [0]
    assert multistep_rate._upto(a, pd.NA).tolist() == a.tolist()
