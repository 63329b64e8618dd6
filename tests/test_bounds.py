"""The bounds of ``theory.bounds`` against hand arithmetic, and their properties.

Two constant sets, with the arithmetic written out:
  A: L=2,  rho=3,   alpha=0.05, sigma=1, sigma_tilde=0.5, D_in=4, D_o=2, B=20, Delta=10, eps=0.1
  B: L=10, rho=0.5, alpha=0.01, sigma=2, sigma_tilde=3,   D_in=9, D_o=5, B=25, Delta=7,  eps=0.5
so alpha*L = 0.1 in both, rho*alpha = 0.15 (A) and 0.005 (B).
"""
import inspect
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.optimize import brentq

from mamlcheck.theory import bounds as bd
from mamlcheck import literature as lit

A = dict(L=2.0, rho=3.0, alpha=0.05, sigma=1.0, sigma_tilde=0.5, D_in=4, D_o=2, B=20, Delta=10.0, eps=0.1)
B = dict(L=10.0, rho=0.5, alpha=0.01, sigma=2.0, sigma_tilde=3.0, D_in=9, D_o=5, B=25, Delta=7.0, eps=0.5)


def _args(c, *names):
    return [c[n] for n in names]


def _by_name(fn, args) -> dict:
    """Positional values in the order of ``fn``'s symbols, as the keywords the bounds take."""
    params = [n for n in inspect.signature(fn).parameters if n not in ("constants", "hyper")]
    return dict(zip(params, args))


# --- hand values: (function, args, expected) for both sets ---------------------------
HAND = [
    # smoothness lemma: 4L + 2ρα·E‖∇f_i‖
    (bd.smooth_local_L, (2, 3, 0.05, 1.5), 8 + 2 * 3 * 0.05 * 1.5),            # 8.45
    (bd.smooth_local_L, (10, 0.5, 0.01, 4), 40 + 2 * 0.5 * 0.01 * 4),          # 40.04
    (bd.step_inv_mean_lower, (8.45,), 0.8 / 8.45),
    (bd.step_inv_mean_lower, (40.04,), 0.8 / 40.04),
    (bd.step_inv_sq_upper, (8.45,), 3.125 / 8.45 ** 2),
    (bd.step_inv_sq_upper, (40.04,), 3.125 / 40.04 ** 2),
    # B′ = ⌈½(ρασ/L)²⌉, D_β = ⌈(2ρασ̃/L)²⌉, with a large rho so they exceed 1
    (bd.B_prime_min, (3, 0.05, 1, 2), 1),                                      # ½·0.075² → 1
    (bd.B_prime_min, (100, 0.05, 1, 2), 4),                                    # ½·2.5² = 3.125 → 4
    (bd.B_prime_min, (2500, 0.01, 2, 10), 13),                                 # ½·5² = 12.5 → 13
    (bd.D_beta_min, (100, 0.05, 0.5, 2), 7),                                   # 2.5² = 6.25 → 7
    (bd.D_beta_min, (2500, 0.01, 3.1, 10), 241),                               # 15.5² = 240.25 → 241
    # D_h: ⌈2(ασ_H)²⌉ (MAML), ⌈36(ασ_H)²⌉ (HF-MAML)
    (bd.D_h_min, ("maml", 0.05, 4), 1),                                        # 2·0.04 = 0.08 → 1
    (bd.D_h_min, ("hfmaml", 0.05, 4), 2),                                      # 36·0.04 = 1.44 → 2
    (bd.D_h_min, ("maml", 0.01, 130), 4),                                      # 2·1.69 = 3.38 → 4
    (bd.D_h_min, ("hfmaml", 0.01, 130), 61),                                   # 36·1.69 = 60.84 → 61
    (bd.D_h_min, ("fomaml", 0.01, 130), 1),
    # bias lemma αLσ̃/√D_in and MAML bias (1 + αL)·that
    (bd.inner_bias, _args(A, "alpha", "L", "sigma_tilde", "D_in"), 0.05 * 2 * 0.5 / 2),     # 0.025
    (bd.inner_bias, _args(B, "alpha", "L", "sigma_tilde", "D_in"), 0.01 * 10 * 3 / 3),      # 0.1
    (bd.maml_bias, _args(A, "alpha", "L", "sigma_tilde", "D_in"), 1.1 * 0.025),
    (bd.maml_bias, _args(B, "alpha", "L", "sigma_tilde", "D_in"), 1.1 * 0.1),
    # second-moment lemma (1 + 1/φ)g² + (1 + φ)(αLσ̃)²/D_in + σ̃²/D_o
    (bd.second_moment_inner, (1.0, 0.05, 2, 0.5, 4, 2, 2.0), 1.5 * 1 + 3 * 0.05 ** 2 / 4 + 0.25 / 2),   # 1.626875
    (bd.second_moment_inner, (2.0, 0.01, 10, 3, 9, 5, 0.5), 3 * 4 + 1.5 * 0.3 ** 2 / 9 + 9 / 5),       # 13.815
    # (1 + αL)² + (ασ_H)²/D_h
    (bd.hessian_factor_sq, (0.05, 2, 4, 2), 1.1 ** 2 + 0.2 ** 2 / 2),          # 1.23
    (bd.hessian_factor_sq, (0.01, 10, 130, 4), 1.1 ** 2 + 1.3 ** 2 / 4),       # 1.6325
    # (7): 2‖∇F‖² + 0.08σ̃²/D_in
    (bd.first_moment_bound, (1.5, 0.5, 4), 2 * 2.25 + 0.08 * 0.25 / 4),        # 4.505
    (bd.first_moment_bound, (0.3, 3, 9), 2 * 0.09 + 0.08 * 9 / 9),             # 0.26
    # (8): 40‖∇F‖² + 14σ² + σ̃²(2/D_o + 1/(6D_in))
    (bd.second_moment_bound, (1.5, 1, 0.5, 4, 2), 40 * 2.25 + 14 + 0.25 * (2 / 2 + 1 / 24)),   # 104.2604
    (bd.second_moment_bound, (0.3, 2, 3, 9, 5), 40 * 0.09 + 14 * 4 + 9 * (2 / 5 + 1 / 54)),    # 63.3667
    # (9): F − β∇Fᵀg + (L_k/2)β²‖g‖²
    (bd.descent_rhs, (5, 0.01, 3, 4, 8.45), 5 - 0.03 + 0.5 * 8.45 * 1e-4 * 4),                # 4.97169
    (bd.descent_rhs, (-1, 0.002, -0.5, 10, 40.04), -1 + 0.001 + 0.5 * 40.04 * 4e-6 * 10),      # -0.9981992
    # (10): F − E[β]∇FᵀE[G] + (L_k/2)E[β²](‖E[G]‖² + E‖G‖²/B)
    (bd.conditional_rhs, (5, 0.01, 2e-4, 3, 4, 100, 20, 8.45), 5 - 0.03 + 0.5 * 8.45 * 2e-4 * (4 + 5)),
    (bd.conditional_rhs, (2, 0.002, 5e-6, 1, 0.5, 50, 25, 40), 2 - 0.002 + 0.5 * 40 * 5e-6 * (0.5 + 2)),
    # (11): ε²/(1600(L + ρα(σ + ε)))
    (bd.per_step_decrease, _args(A, "eps", "L", "rho", "alpha", "sigma"), 0.01 / (1600 * (2 + 0.15 * 1.1))),
    (bd.per_step_decrease, _args(B, "eps", "L", "rho", "alpha", "sigma"), 0.25 / (1600 * (10 + 0.005 * 2.5))),
    # (13): F(w_0) − T·(11)
    (bd.telescoped_rhs, (5, 1000, *_args(A, "eps", "L", "rho", "alpha", "sigma")), 5 - 1000 * 0.01 / 3464),
    (bd.telescoped_rhs, (7, 100, *_args(B, "eps", "L", "rho", "alpha", "sigma")), 7 - 100 * 0.25 / 16020),
    # (14): 1600Δ(L + ρα(σ + ε))/ε²
    (bd.iterations_upper, _args(A, "eps", "Delta", "L", "rho", "alpha", "sigma"), 1600 * 10 * 2.165 / 0.01),   # 3 464 000
    (bd.iterations_upper, _args(B, "eps", "Delta", "L", "rho", "alpha", "sigma"), 1600 * 7 * 10.0125 / 0.25),  # 448 560
    # S = σ²/B + σ̃²/(B·D_o) + σ̃²/D_in; S′ adds 20α²L²σ²
    (bd.noise_S, _args(A, "sigma", "sigma_tilde", "B", "D_in", "D_o"), 1 / 20 + 0.25 / 40 + 0.25 / 4),   # 0.11875
    (bd.noise_S, _args(B, "sigma", "sigma_tilde", "B", "D_in", "D_o"), 4 / 25 + 9 / 125 + 9 / 9),        # 1.232
    (bd.S_prime, _args(A, "sigma", "sigma_tilde", "B", "D_in", "D_o", "alpha", "L"), 0.11875 + 20 * 0.1 ** 2 * 1),
    (bd.S_prime, _args(B, "sigma", "sigma_tilde", "B", "D_in", "D_o", "alpha", "L"), 1.232 + 20 * 0.1 ** 2 * 4),
    # floors max{√(a(1 + ρασ/L)S), b(ρα/L)S, ε}
    (bd.noise_floor, ("maml", *_args(A, "L", "rho", "sigma", "sigma_tilde", "alpha", "B", "D_in", "D_o", "eps")),
     math.sqrt(61 * 1.075 * 0.11875)),                                        # 2.7905 (vs 0.5433, 0.1)
    (bd.noise_floor, ("maml", *_args(B, "L", "rho", "sigma", "sigma_tilde", "alpha", "B", "D_in", "D_o", "eps")),
     math.sqrt(61 * 1.001 * 1.232)),                                          # 8.6733
    (bd.noise_floor, ("maml", 2, 1000, 1, 0.5, 0.05, 20, 4, 2, 0.1), 61 * 25 * 0.11875),   # linear term 181.1 > √(61·26·S) = 13.7
    (bd.noise_floor, ("maml", 2, 3, 1, 0.5, 0.05, 20, 4, 2, 10.0), 10.0),                  # ε dominates
    (bd.noise_floor, ("fomaml", *_args(A, "L", "rho", "sigma", "sigma_tilde", "alpha", "B", "D_in", "D_o", "eps")),
     math.sqrt(14 * 1.075 * 0.31875)),                                        # 2.1902
    (bd.noise_floor, ("hfmaml", *_args(A, "L", "rho", "sigma", "sigma_tilde", "alpha", "B", "D_in", "D_o", "eps")),
     6 * math.sqrt(1.075 * 0.11875)),                                         # 2.1437
    (bd.noise_floor, ("hfmaml", *_args(B, "L", "rho", "sigma", "sigma_tilde", "alpha", "B", "D_in", "D_o", "eps")),
     6 * math.sqrt(1.001 * 1.232)),
    (bd.noise_floor, ("exact", *_args(A, "L", "rho", "sigma", "sigma_tilde", "alpha", "B", "D_in", "D_o", "eps")), 0.1),
    # FO-MAML bias αL·E‖∇f_i(u_i)‖ + αLσ̃/√D_in
    (bd.fomaml_dropped_term, (*_args(A, "alpha", "L", "sigma_tilde", "D_in"), 1.0), 0.1 * 1 + 0.025),
    (bd.fomaml_dropped_term, (*_args(B, "alpha", "L", "sigma_tilde", "D_in"), 2.0), 0.1 * 2 + 0.1),
    # HF-MAML: ρδ‖v‖²/2 and δ = min{1/(6ρα‖v‖), cap}
    (bd.hf_fd_error, (3, 0.1, 2), 3 * 0.1 * 4 / 2),                           # 0.6
    (bd.hf_fd_error, (0.5, 0.01, 3), 0.5 * 0.01 * 9 / 2),                     # 0.0225
    (bd.hf_delta, (3, 0.05, 2, 1.0), 1 / (6 * 3 * 0.05 * 2)),                 # 0.5556
    (bd.hf_delta, (3, 0.05, 2, 0.5), 0.5),                                    # capped
    (bd.hf_delta, (0.5, 0.01, 3, 1.0), 1.0),                                  # 1/0.09 = 11.1, capped
    (bd.hf_delta, (0.0, 0.01, 3, 0.25), 0.25),                                # ρ = 0: the cap
    (bd.hf_delta, (0.5, 0.01, 3, None), 1 / (6 * 0.5 * 0.01 * 3)),            # no cap: the theorem's 11.1
    (bd.hf_delta, (0.0, 0.01, 3, None), 1.0),                                 # ρ = 0, no cap: exact, δ = 1
    # hard chain: T = ⌊ΔL/(1824ε²)⌋, ε′ = ε/(1 − αL), lower bound ⌈(T(ε′) − 1)/2⌉
    (bd.chain_T, (0.01, 10, 2), 109),                                         # 20/0.1824 = 109.65
    (bd.chain_T, (0.02, 7, 10), 95),                                          # 70/0.7296 = 95.94
    (bd.chain_T, (0.5, 7, 10), 0),                                            # 70/456 = 0.15
    (bd.chain_eps_prime, (0.01, 0.05, 2), 0.01 / 0.9),
    (bd.chain_eps_prime, (0.02, 0.01, 10), 0.02 / 0.9),
    (bd.chain_lower_bound_iterations, (0.01, 10, 2, 0.05), 44),               # T = ⌊16.2/0.1824⌋ = 88 → ⌈87/2⌉
    (bd.chain_lower_bound_iterations, (0.02, 7, 10, 0.01), 38),               # T = ⌊56.7/0.7296⌋ = 77 → ⌈76/2⌉
]


@pytest.mark.parametrize("fn, args, expected", HAND, ids=[f"{h[0].__name__}-{i}" for i, h in enumerate(HAND)])
def test_hand_values(fn, args, expected):
    got = fn(**_by_name(fn, args))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert isinstance(got, (float, int))
    if isinstance(expected, int):
        assert isinstance(got, int)


def test_vectorised_over_arrays():
    g = np.array([0.0, 1.5, 3.0])
    np.testing.assert_allclose(bd.first_moment_bound(grad_F_norm=g, sigma_tilde=0.5, D_in=4), 2 * g ** 2 + 0.08 * 0.25 / 4)
    np.testing.assert_allclose(bd.smooth_local_L(L=2, rho=3, alpha=0.05, mean_grad_norm=g), 8 + 0.3 * g)
    np.testing.assert_array_equal(bd.chain_T(eps=np.array([0.01, 0.02]), Delta=7, L=10), [int(70 / 0.1824), 95])
    np.testing.assert_allclose(bd.noise_S(sigma=1, sigma_tilde=0.5, B=np.array([20, 40]), D_in=4, D_o=2), [0.11875, 1 / 40 + 0.25 / 80 + 0.0625])


def test_kinds_and_side_by_side():
    helpers = ("KIND", "HYPER_FIELDS", "CONSTANT_NAMES", "moment_check", "holds", "hf_delta_formula", "local_L_formula",
               "multistep_L_formula")
    public = [n for n in bd.__all__ if n not in helpers]
    assert set(public) == set(bd.KIND)
    assert bd.KIND["iterations_upper"] == "upper" and bd.chain_lower_bound_iterations.kind == "lower"
    assert bd.moment_check(1, 2.5) == (1.0, 2.5)
    assert bd.holds(1.0, 2.5, "upper") and not bd.holds(1.0, 2.5, "lower")
    assert bd.holds(2.6, 2.5, "upper", rtol=0.05) and not bd.holds(2.6, 2.5, "upper")
    np.testing.assert_array_equal(bd.holds([1, 3], 2, "upper"), [True, False])


# --- properties ----------------------------------------------------------------------------
pos = st.floats(1e-3, 1e3)
nonneg = st.floats(0.0, 1e3)
aL_ok = st.floats(0.0, lit.ALPHA_MAX_LD["maml"])          # αL ∈ [0, 1/6]
sizes = st.integers(1, 10_000)


@given(e1=pos, e2=pos, Delta=pos, L=pos, rho=nonneg, aL=aL_ok, sigma=nonneg)
def test_iterations_upper_decreases_in_eps(e1, e2, Delta, L, rho, aL, sigma):
    lo, hi = sorted((e1, e2))
    alpha = aL / L
    assert bd.iterations_upper(eps=lo, Delta=Delta, L=L, rho=rho, alpha=alpha, sigma=sigma) >= bd.iterations_upper(eps=hi, Delta=Delta, L=L, rho=rho, alpha=alpha, sigma=sigma)
    # (11) and (14) are one statement: T·decrease = Δ
    assert bd.iterations_upper(eps=lo, Delta=Delta, L=L, rho=rho, alpha=alpha, sigma=sigma) * bd.per_step_decrease(eps=lo, L=L, rho=rho, alpha=alpha, sigma=sigma) == pytest.approx(Delta, rel=1e-12)


@given(alg=st.sampled_from(["maml", "fomaml", "hfmaml", "exact"]), s1=nonneg, s2=nonneg, st_=nonneg,
       L=pos, rho=nonneg, aL=aL_ok, B=sizes, D_in=sizes, D_o=sizes)
def test_noise_floors_increase_with_sigma(alg, s1, s2, st_, L, rho, aL, B, D_in, D_o):
    lo, hi = sorted((s1, s2))
    f = lambda s: bd.noise_floor(algorithm=alg, L=L, rho=rho, sigma=s, sigma_tilde=st_, alpha=aL / L, B=B, D_in=D_in, D_o=D_o)
    assert f(lo) <= f(hi) * (1 + 1e-12)


def _coefficient_of_7(aL):
    """2·((1 + αL)αL)²: the σ̃²/D_in coefficient the derivation of (7) gives."""
    return 2 * bd.maml_bias(alpha=aL, L=1.0, sigma_tilde=1.0, D_in=1) ** 2


@given(aL=aL_ok)
def test_008_of_7_dominates_derived_coefficient(aL):
    assert _coefficient_of_7(aL) <= lit.M1_NOISE


def test_008_of_7_breaks_just_above_one_sixth():
    # 2((1 + x)x)² = 0.08  ⇔  x² + x − 0.2 = 0  ⇔  x = (√1.8 − 1)/2 ≈ 0.17082
    x_star = brentq(lambda x: _coefficient_of_7(x) - lit.M1_NOISE, 0.0, 1.0)
    assert x_star == pytest.approx((math.sqrt(1.8) - 1) / 2, rel=1e-9)
    assert 1 / 6 < x_star < 0.171
    assert _coefficient_of_7(1 / 6) == pytest.approx(2 * (7 / 36) ** 2)       # 0.0756
    assert _coefficient_of_7(x_star * 1.001) > lit.M1_NOISE


@given(g=nonneg, L=pos, aL=aL_ok, s=nonneg, D_in=sizes)
def test_7_dominates_the_triangle_inequality(g, L, aL, s, D_in):
    # ‖E G‖² ≤ (‖∇F‖ + bias)² ≤ 2‖∇F‖² + 2·bias² ≤ (7)
    tri = (g + bd.maml_bias(alpha=aL / L, L=L, sigma_tilde=s, D_in=D_in)) ** 2
    assert tri <= bd.first_moment_bound(grad_F_norm=g, sigma_tilde=s, D_in=D_in) * (1 + 1e-12)


@given(L=pos, aL=aL_ok, sigma_H=nonneg, extra=st.integers(0, 5), s=nonneg, D_in=sizes, D_o=sizes)
def test_constants_2_and_one_sixth_of_8(L, aL, sigma_H, extra, s, D_in, D_o):
    alpha = aL / L
    D_h = bd.D_h_min(algorithm="maml", alpha=alpha, sigma_H=sigma_H) + extra
    factor = bd.hessian_factor_sq(alpha=alpha, L=L, sigma_H=sigma_H, D_h=D_h)
    assert factor <= (7 / 6) ** 2 + 0.5 + 1e-12 <= 2
    # 2 × (noise part of the second-moment lemma at φ = 2) ≤ σ̃²(2/D_o + 1/(6D_in)) of (8)
    noise = bd.second_moment_inner(grad_norm_at_inner_point=0.0, alpha=alpha, L=L, sigma_tilde=s, D_in=D_in, D_o=D_o, phi=2.0)
    assert 2 * noise <= bd.second_moment_bound(grad_F_norm=0.0, sigma=0.0, sigma_tilde=s, D_in=D_in, D_o=D_o) * (1 + 1e-12)


@given(rho=pos, aL=st.floats(1e-4, lit.ALPHA_MAX_LD["hfmaml"]), L=pos, v=pos)
def test_hf_delta_makes_direction_error_a_twelfth(rho, aL, L, v):
    alpha = aL / L
    delta = bd.hf_delta(rho=rho, alpha=alpha, v_norm=v)
    assert alpha * bd.hf_fd_error(rho=rho, delta=delta, v_norm=v) == pytest.approx(v / 12, rel=1e-9)


@given(L=pos, s=nonneg, aL=st.floats(0.0, lit.ALPHA_MAX_LD["fomaml"]), rho=nonneg)
def test_fomaml_floor_stays_of_order_alpha_L_sigma(L, s, aL, rho):
    huge = 10 ** 12
    floor = bd.noise_floor(algorithm="fomaml", L=L, rho=rho, sigma=s, sigma_tilde=1.0, alpha=aL / L, B=huge, D_in=huge, D_o=huge)
    assert floor >= math.sqrt(lit.FLOOR["fomaml"][0] * lit.FOMAML_FLOOR_ALPHA) * aL * s * (1 - 1e-9)


def test_only_fomaml_keeps_a_floor_with_infinite_batches():
    huge = 10 ** 12                                 # set A: αLσ = 0.1
    kw = {n: A[n] for n in ("L", "rho", "sigma", "sigma_tilde", "alpha")} | dict(B=huge, D_in=huge, D_o=huge)
    assert bd.noise_floor(algorithm="maml", **kw) < 1e-4
    assert bd.noise_floor(algorithm="fomaml", **kw) == pytest.approx(math.sqrt(14 * 1.075 * 20 * 0.01), rel=1e-5)
    assert bd.noise_floor(algorithm="fomaml", **(kw | dict(sigma=0.0, sigma_tilde=0.5, alpha=0.05))) < 1e-4   # σ = 0


@given(T=st.integers(1, 2000), aL=st.floats(0.0, 1.0 / 6.0))
def test_chain_lower_bound_is_ceil_of_half_of_T_minus_one(T, aL):
    """§7: ⌈(T(ε′) − 1)/2⌉ outer steps, for the ε whose chain has T coordinates."""
    L, Delta = 1.0, 1.0
    eps_prime = math.sqrt(Delta * L / (1824 * (T + 0.5)))       # ⌊ΔL/(1824ε′²)⌋ = T
    eps = eps_prime * (1 - aL)
    assert bd.chain_T(eps=bd.chain_eps_prime(eps=eps, alpha=aL / L, L=L), Delta=Delta, L=L) == T
    assert bd.chain_lower_bound_iterations(eps=eps, Delta=Delta, L=L, alpha=aL / L) == math.ceil((T - 1) / 2)


@given(eps=st.floats(1e-3, 10), Delta=pos, L=pos, aL=aL_ok, rho=nonneg, sigma=nonneg)
def test_chain_lower_bound_below_upper_bound(eps, Delta, L, aL, rho, sigma):
    alpha = aL / L
    assert bd.chain_lower_bound_iterations(eps=eps, Delta=Delta, L=L, alpha=alpha) <= bd.iterations_upper(eps=eps, Delta=Delta, L=L, rho=rho, alpha=alpha, sigma=sigma)


@given(g=nonneg, aL=aL_ok, L=pos, s=nonneg, D_in=sizes)
def test_fomaml_bias_exceeds_inner_bias(g, aL, L, s, D_in):
    alpha = aL / L
    assert bd.fomaml_dropped_term(alpha=alpha, L=L, sigma_tilde=s, D_in=D_in, mean_inner_grad_norm=0.0) == pytest.approx(bd.inner_bias(alpha=alpha, L=L, sigma_tilde=s, D_in=D_in))
    assert bd.fomaml_dropped_term(alpha=alpha, L=L, sigma_tilde=s, D_in=D_in, mean_inner_grad_norm=g) >= bd.inner_bias(alpha=alpha, L=L, sigma_tilde=s, D_in=D_in)


# --- invalid input -------------------------------------------------------------------------
INVALID = [
    (bd.smooth_local_L, (-2, 3, 0.05, 1)),                   # L < 0
    (bd.smooth_local_L, (0, 3, 0.05, 1)),                    # L = 0
    (bd.smooth_local_L, (2, 3, 0.05, [1, -1])),              # a negative norm
    (bd.inner_bias, (0.05, 2, 0.5, 0)),                      # D_in < 1
    (bd.inner_bias, (0.05, 2, 0.5, 2.5)),                    # D_in not an integer
    (bd.inner_bias, (-0.05, 2, 0.5, 4)),                     # alpha < 0
    (bd.inner_bias, (0.05, 2, float("nan"), 4)),             # not finite
    (bd.inner_bias, (0.05, 2, "x", 4)),                      # not a number
    (bd.second_moment_inner, (1, 0.05, 2, 0.5, 4, 2, 0)),    # phi = 0
    (bd.first_moment_bound, (1, -0.5, 4)),                   # sigma_tilde < 0
    (bd.per_step_decrease, (0, 2, 3, 0.05, 1)),              # eps = 0
    (bd.iterations_upper, (-0.1, 10, 2, 3, 0.05, 1)),        # eps < 0
    (bd.iterations_upper, (0.1, -10, 2, 3, 0.05, 1)),        # Delta < 0
    (bd.telescoped_rhs, (5, -1, 0.1, 2, 3, 0.05, 1)),        # T < 0
    (bd.noise_S, (1, 0.5, 0, 4, 2)),                         # B < 1
    (bd.noise_floor, ("sgd", 2, 3, 1, 0.5, 0.05, 20, 4, 2)),  # unknown algorithm
    (bd.noise_floor, ("maml", 2, 3, 1, 0.5, 0.05, 20, 4, 2, -1)),  # eps < 0
    (bd.D_h_min, ("reptile", 0.05, 4)),
    (bd.descent_rhs, (5, 0, 3, 4, 8)),                       # beta = 0
    (bd.hf_delta, (3, 0.05, 2, 0)),                          # cap = 0
    (bd.chain_T, (0, 10, 2)),                                # eps = 0
    (bd.chain_eps_prime, (0.1, 0.5, 2)),                     # alpha*L = 1
    (bd.step_inv_mean_lower, (0,)),
    (bd.B_prime_min, (3, 0.05, 1, 0)),                       # L = 0
    (bd.holds, (1, 2, "value")),                             # a value is not checked
]


@pytest.mark.parametrize("fn, args", INVALID, ids=[f"{f.__name__}-{i}" for i, (f, _) in enumerate(INVALID)])
def test_invalid_input_raises(fn, args):
    with pytest.raises(ValueError):
        fn(**_by_name(fn, args))


@given(w=st.floats(-10, 10), v=st.floats(-5, 5), delta=st.floats(1e-3, 1.0),
       gamma=st.floats(0.1, 3), omega=st.floats(0.1, 3))
def test_hf_fd_error_bounds_a_real_central_difference(w, v, delta, gamma, omega):
    # f(x) = γ cos(ωx): f″ = −γω² cos(ωx) is ρ-Lipschitz with ρ = γω³
    grad = lambda x: -gamma * omega * math.sin(omega * x)
    hvp = -gamma * omega ** 2 * math.cos(omega * w) * v
    err = abs((grad(w + delta * v) - grad(w - delta * v)) / (2 * delta) - hvp)
    assert err <= bd.hf_fd_error(rho=gamma * omega ** 3, delta=delta, v_norm=abs(v)) + 1e-12


# --- the calling convention: symbols by name, constants and hyper records ----------------
@pytest.mark.parametrize("name", sorted(bd.KIND))
def test_every_bound_refuses_a_second_positional_argument(name):
    """Two positional floats could be swapped silently (``B_prime_min(rho, alpha,
    sigma, L)`` against ``smooth_local_L(L, rho, ...)``): only the first symbol
    may go by position."""
    fn = getattr(bd, name)
    with pytest.raises(TypeError, match="positional"):
        fn(1.0, 2.0)


@pytest.mark.parametrize("name", ["smooth_local_L", "noise_S", "noise_floor", "maml_bias", "hf_fd_error"])
def test_a_bound_whose_first_symbol_is_a_constant_takes_none_by_position(name):
    """``noise_S(2.0, constants=c)`` would otherwise let a positional σ silently
    override the record's: constants and hyperparameters go by name only."""
    with pytest.raises(TypeError, match="no positional argument"):
        getattr(bd, name)(1.0)


def test_constants_and_hyper_records_fill_in_the_symbols():
    class Hyp:                                   # any record with Hyper's fields
        algorithm, alpha, B, D_in, D_o, D_h = "maml", A["alpha"], A["B"], A["D_in"], A["D_o"], 1
    consts = {n: A[n] for n in ("L", "rho", "sigma", "sigma_tilde")} | {"sigma_H": 0.0}
    explicit = bd.iterations_upper(eps=A["eps"], Delta=A["Delta"], L=A["L"], rho=A["rho"],
                                   alpha=A["alpha"], sigma=A["sigma"])
    assert bd.iterations_upper(A["eps"], constants=consts, alpha=A["alpha"], Delta=A["Delta"]) == explicit
    assert bd.iterations_upper(A["eps"], constants=consts, hyper=Hyp, Delta=A["Delta"]) == explicit
    floor = bd.noise_floor(constants=consts, hyper=Hyp)
    assert floor == bd.noise_floor(algorithm="maml", L=2.0, rho=3.0, sigma=1.0, sigma_tilde=0.5, alpha=0.05, B=20, D_in=4, D_o=2)
    # an explicit keyword wins over the record
    assert bd.iterations_upper(A["eps"], constants=consts, hyper=Hyp, Delta=A["Delta"], L=4.0) > explicit


def test_missing_and_unknown_symbols_are_named():
    with pytest.raises(TypeError, match=r"missing \['Delta'\]"):
        bd.iterations_upper(0.1, L=1.0, rho=0.0, alpha=0.1, sigma=0.0)
    with pytest.raises(TypeError, match="constants=family.constants"):
        bd.iterations_upper(0.1, Delta=1.0, alpha=0.1)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['delta'\]"):
        bd.iterations_upper(0.1, delta=1.0, L=1.0, rho=0.0, alpha=0.1, sigma=0.0)
    with pytest.raises(TypeError, match="unknown names"):
        bd.iterations_upper(0.1, constants={"Lip": 1.0}, Delta=1.0, alpha=0.1)


@pytest.mark.parametrize("bad", ["eps", "L", "rho", "alpha", "sigma"])
def test_the_rate_bounds_name_the_argument_that_is_out_of_range(bad):
    """A negative symbol is refused with its own name in the message (the CLI
    passes the message on, so a wrong name would send the user to the wrong flag)."""
    args = dict(eps=0.1, L=2.0, rho=3.0, alpha=0.05, sigma=0.5)
    args[bad] = -1.0
    for fn in (bd.per_step_decrease, bd.iterations_upper):
        with pytest.raises(ValueError, match=rf"\b{bad}\b"):
            fn(**args, **({"Delta": 1.0} if fn is bd.iterations_upper else {}))
