"""Property tests of the lemmas and moment bounds (THEORY.md §3–§6) on drawn
instances, with the left sides computed exactly (``experiments.slack_moments``:
finite tasks as weighted sums, the laws of the batches from the families'
capabilities: cosine-quadratic's Gaussian noise in closed form,
robust-regression's batches enumerated) and the bounds from
``theory/bounds.py``.  The step-size lemma is the one Monte Carlo check: its
allowance is an empirical-Bernstein half-width at false-alarm rate
``MC_DELTA = 1e-6`` per check, with fixed seeds.  Negative controls show that
the checks catch an understated ``σ̃``, a step ``α`` far outside the theorem,
and a sign error in the Hessian.
"""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import G_i
from mamlcheck.experiments import slack
from mamlcheck.experiments.slack_checks import (PHIS, check_bias, check_first_moment, check_fomaml_bias,
                                               check_hf_difference, check_maml_bias, check_second_moment,
                                               check_second_moment_lemma, check_smoothness, check_step_size, passes)
from mamlcheck.experiments.slack_moments import moments
from mamlcheck.problems.cosine_quadratic import CosineQuadratic
from mamlcheck.problems.robust_regression import RobustRegression
from tests import strategies as S
from mamlcheck.theory import bounds
from mamlcheck.theory.conditions import broken, check_conditions

# inside the MAML theorem, or with α up to 1/L (for the lemmas that need only α ≤ 1/L or nothing)
MAML = S.cases("maml")
UP_TO_ONE_OVER_L = st.one_of(S.cases("maml"), S.cases("maml", broken="alpha_range"))


def _assert_all_hold(checks):
    """Every check passes: an exact one holds, a Monte Carlo one is not violated."""
    bad = [c for c in checks if not passes(c)]
    assert not bad, bad


def _moments(case):
    return moments(case.family, case.w, case.hyper)


# --- the exact expectations agree with the families' own samplers ---------------------
Z = stats.norm.isf(1e-6 / 2)    # two-sided z-test, false-alarm rate 1e-6 per component
SAMPLER_CASES = {
    "cosine-quadratic, diagonal A": (CosineQuadratic(d=3, M=3, gamma=0.8, omega=2.0, noise_grad=1.5,
                                                     noise_amp=1.2, spread=1.0, p=[0.2, 0.3, 0.5], seed=3),
                                     [0.4, -1.1, 2.0]),
    "cosine-quadratic, dense A": (CosineQuadratic(d=2, M=2, gamma=1.0, omega=1.5, noise_grad=1.0, noise_amp=2.0,
                                                  dense=True, seed=5), [1.3, -0.2]),
    "robust-regression": (RobustRegression(d=2, M=2, N=5, noise=0.5, outlier_frac=0.2, seed=2), [0.5, -0.7]),
}


@pytest.mark.parametrize("label", SAMPLER_CASES)
def test_exact_moments_match_the_samplers(label):
    """``E[G_i]`` and ``E‖G_i‖²`` (exact) against 4·10⁵ draws of ``G_i`` (6) from
    ``algorithms.objective.G_i``, and ``E[v]``, ``tr E[vvᵀ]`` against draws of the
    outer gradient at the stochastic inner point."""
    fam, w = SAMPLER_CASES[label]
    w = np.asarray(w)
    h = Hyper("maml", alpha=0.6 / fam.constants().L.value, D_in=2, D_o=3, D_h=2)
    m = moments(fam, w, h)
    n = 400_000
    rng = np.random.default_rng(11)
    tasks = fam.draw_tasks((n,), rng)
    G = G_i(fam, np.broadcast_to(w, (n, fam.d)), tasks, h.alpha, h.D_in, h.D_o, h.D_h, rng)
    i = np.zeros(n, dtype=int)
    x = np.broadcast_to(w, (n, fam.d)) - h.alpha * fam.sample_grad(np.broadcast_to(w, (n, fam.d)), i, h.D_in, rng)
    v = fam.sample_grad(x, i, h.D_o, rng)
    for sample, exact in ((G, m.EG), (np.sum(G * G, 1), m.EG2), (v, m.Ev[0]), (np.sum(v * v, 1), np.trace(m.Evv[0]))):
        z = (sample.mean(0) - exact) / (sample.std(0) / np.sqrt(n))
        assert np.all(np.abs(z) < Z), (label, z)


def test_exact_moments_catch_a_wrong_batch_size():
    """Negative control of the test above: the exact ``E‖G_i‖²`` for ``D_o = 1``
    is rejected by draws made with ``D_o = 3``."""
    fam, w = SAMPLER_CASES["cosine-quadratic, diagonal A"]
    h = Hyper("maml", alpha=0.6 / fam.constants().L.value, D_in=2, D_o=3, D_h=2)
    wrong = moments(fam, np.asarray(w), Hyper("maml", alpha=h.alpha, D_in=2, D_o=1, D_h=2))
    n = 100_000
    rng = np.random.default_rng(12)
    G = G_i(fam, np.broadcast_to(w, (n, fam.d)), fam.draw_tasks((n,), rng), h.alpha, h.D_in, h.D_o, h.D_h, rng)
    s = np.sum(G * G, 1)
    assert abs(s.mean() - wrong.EG2) / (s.std() / np.sqrt(n)) > Z


# --- the moment bounds (7), (8) and the lemmas -------------------------------------------
@given(MAML)
def test_first_moment_bound_7(case):
    """(7): ``‖E[G_i(w)]‖² ≤ 2‖∇F(w)‖² + 0.08σ̃²/D_in`` (THEORY.md §4)."""
    _assert_all_hold(check_first_moment(_moments(case)))


@given(MAML)
def test_second_moment_bound_8(case):
    """(8): ``E‖G_i(w)‖² ≤ 40‖∇F‖² + 14σ² + σ̃²(2/D_o + 1/(6D_in))`` (THEORY.md §4)."""
    _assert_all_hold(check_second_moment(_moments(case)))


@given(UP_TO_ONE_OVER_L)
def test_bias_lemma(case):
    """Bias lemma: ``‖E[∇̃f_i(w − α∇̃f_i(w, D_in), D_o)] − ∇f_i(w − α∇f_i(w))‖ ≤ αLσ̃/√D_in``
    (THEORY.md §3; A2 and A5 only)."""
    _assert_all_hold(check_bias(_moments(case)))


@given(MAML)
def test_maml_bias_behind_the_0_08_of_7(case):
    """``‖E[G_i] − ∇F‖ ≤ (1 + αL)αLσ̃/√D_in``: the derivation of (7)'s 0.08 (THEORY.md §4)."""
    _assert_all_hold(check_maml_bias(_moments(case)))


@pytest.mark.parametrize("phi", PHIS)
@given(case=UP_TO_ONE_OVER_L)
def test_second_moment_lemma(phi, case):
    """Second-moment lemma for ``φ ∈ {½, 1, 2}``: ``E‖∇̃f_i(w − α∇̃f_i(w, D_in), D_o)‖²
    ≤ (1 + 1/φ)‖∇f_i(w − α∇f_i(w))‖² + (1 + φ)α²L²σ̃²/D_in + σ̃²/D_o`` (THEORY.md §3)."""
    _assert_all_hold(check_second_moment_lemma(_moments(case), phi))


@given(st.one_of(S.cases("maml", pair=True), S.cases("maml", broken="alpha_range", pair=True)))
def test_smoothness_lemma(case):
    """Smoothness lemma of F (THEORY.md §3, ``α ≤ 1/L``):
    ``‖∇F(w) − ∇F(u)‖ ≤ (4L + 2ρα min{E_i‖∇f_i(w)‖, E_i‖∇f_i(u)‖})‖w − u‖`` and
    ``|F(u) − F(w) − ∇F(w)ᵀ(u − w)| ≤ (L(w)/2)‖u − w‖²``."""
    assert "alpha_smoothness" not in broken(check_conditions(case.family.constants(), case.hyper))
    _assert_all_hold(check_smoothness(case.family, case.w, case.u, case.hyper.alpha))


@settings(max_examples=15)
@given(MAML)
def test_step_size_lemma(case):
    """Step-size lemma (THEORY.md §3), ``B′``, ``D_β`` at the theorem's minimum:
    ``E[1/L̃] ≥ 0.8/L(w)`` and ``E[1/L̃²] ≤ 3.125/L(w)²`` for ``L̃`` of
    ``algorithms.steps.estimate_L_tilde`` (Monte Carlo: false-alarm rate
    ``1e-6`` per check, exact for deterministic oracles)."""
    _assert_all_hold(check_step_size(case.family, case.w, case.hyper, seed=5))


@given(S.cases("fomaml"))
def test_fomaml_bias_within_the_dropped_term(case):
    """FO-MAML (THEORY.md §5): ``‖E[G^FO] − ∇F‖ ≤ αL E_i‖∇f_i(u_i)‖ + αLσ̃/√D_in``
    (``theory.bounds.fomaml_dropped_term``)."""
    _assert_all_hold(check_fomaml_bias(_moments(case)))


@given(S.cases("hfmaml"))
def test_hf_difference_error(case):
    """HF-MAML (THEORY.md §6): the exact (expected) central difference is within
    ``ρδ‖v‖²/2`` of ``∇²f_i(w)v`` (``theory.bounds.hf_fd_error``)."""
    _assert_all_hold(check_hf_difference(case.family, case.w, case.hyper))


# --- negative controls: the checks must catch these ---------------------------------------
# One task in 1-D, ripple noise only: f(w) = ⅜w² + ½cos 3w, ℓ = f + η·½cos 3w, s_η = 3.
RIPPLE = dict(d=1, M=1, gamma=0.5, omega=3.0, a_min=0.75, a_max=0.75, spread=0.0, noise_grad=0.0, noise_amp=3.0)
W_RIPPLE = np.array([-2.53])


class UnderstatedNoise(CosineQuadratic):
    """Certifies a tenth of its true ``σ̃`` (``Constants.replace``)."""

    def constants(self):
        c = super().constants()
        return c.replace(sigma_tilde=c.sigma_tilde.value / 10)


def test_understated_sigma_tilde_is_caught():
    """With ``σ̃`` understated tenfold, the bias lemma fails on the ripple
    instance at ``αL = 1/6``, where it holds with the true ``σ̃``.  (7) does not
    notice: its ``0.08σ̃²/D_in`` has slack in the thousands (slack report), and
    ``2‖∇F‖²`` covers ``‖E[G]‖²`` here."""
    L = CosineQuadratic(**RIPPLE).constants().L.value
    h = Hyper("maml", alpha=1 / (6 * L), D_in=1, D_o=1, D_h=1)
    honest = moments(CosineQuadratic(**RIPPLE), W_RIPPLE, h)
    _assert_all_hold(check_bias(honest) + check_first_moment(honest))
    lying = moments(UnderstatedNoise(**RIPPLE), W_RIPPLE, h)
    assert check_bias(lying)[0].verdict == "violated"


def test_alpha_far_outside_the_theorem_breaks_the_0_08_of_7():
    """(7) relies on ``αL ≤ 1/6`` (bias ``≤ (1 + αL)αLσ̃/√D_in`` and
    ``2·(7/36)² ≤ 0.08``, THEORY.md §4).  On the ripple instance at
    ``w = −2.53`` it holds at ``αL = 1/6`` with room (slack ≈ 6) and fails at
    ``αL = 0.9`` (slack ≈ 0.65; it fails from ``αL ≈ 0.6`` on)."""
    fam = CosineQuadratic(**RIPPLE)
    L = fam.constants().L.value
    inside = Hyper("maml", alpha=1 / (6 * L), D_in=1, D_o=1, D_h=1)
    D_h = bounds.D_h_min(algorithm="maml", alpha=0.9 / L, sigma_H=fam.constants().sigma_H.value)      # keep D_h inside
    outside = Hyper("maml", alpha=0.9 / L, D_in=1, D_o=1, D_h=D_h)
    assert broken(check_conditions(fam.constants(), outside)) == ["alpha_range"]
    ok = check_first_moment(moments(fam, W_RIPPLE, inside))[0]
    bad = check_first_moment(moments(fam, W_RIPPLE, outside))[0]
    assert ok.holds and ok.slack > 5
    assert bad.verdict == "violated" and bad.slack < 0.7


class FlippedHessian(RobustRegression):
    """A Hessian-vector product with the wrong sign (``grad_F`` builds (5) from it)."""

    def hvp(self, w, i, v):
        return -super().hvp(w, i, v)


class FlippedRipple(CosineQuadratic):
    """The same bug in cosine-quadratic: replacing an oracle switches off the
    inherited O(d) ``∇F`` (``offers``), so (5) is assembled from ``hvp``."""

    def hvp(self, w, i, v):
        return -super().hvp(w, i, v)


@pytest.mark.parametrize("bugged, good, w", [
    (FlippedHessian(d=2, M=2, N=4, seed=1), RobustRegression(d=2, M=2, N=4, seed=1), [0.3, -0.2]),
    (FlippedRipple(d=2, M=3, seed=4), CosineQuadratic(d=2, M=3, seed=4), [0.7, -1.2]),
])
def test_sign_flip_in_the_hessian_is_caught(bugged, good, w):
    """A negated ``hvp`` makes ``∇F`` inconsistent with ``F`` (which needs no
    Hessian): the smoothness lemma's quadratic form fails for nearby points,
    and so does the HF-MAML difference check.  The correct family passes both."""
    w = np.asarray(w)
    u = w + 1e-4 * np.array([1.0, 0.5])
    alpha = 1 / (6 * good.constants().L.value)
    h = Hyper("hfmaml", alpha=alpha, delta_cap=1.0)      # a small δ: the difference error bound is tight enough
    _assert_all_hold(check_smoothness(good, w, u, alpha) + check_hf_difference(good, w, h))
    assert check_smoothness(bugged, w, u, alpha)[1].verdict == "violated"
    assert any(c.verdict == "violated" for c in check_hf_difference(bugged, w, h))


# --- the slack report is deterministic -----------------------------------------------------
def test_slack_report_is_deterministic_and_complete(tmp_path):
    a = slack.compute(4)
    b = slack.compute(4)
    assert a.equals(b)
    s = slack.summary(a)
    assert {"(7): 0.08σ̃²/D_in", "(8): 40‖∇F‖²", "step size: 0.8/L(w)", "smoothness: 4L"} <= set(s["constant"])
    assert s["violations"].sum() == 0
    from mamlcheck.experiments import slack_report
    from mamlcheck.experiments.run_all import run_experiment
    _, _, text, _ = run_experiment(slack_report, "tiny", tmp_path / "results", tmp_path / "figures", workers=1,
                                progress=False)
    assert (tmp_path / "results" / "slack.csv").exists() and (tmp_path / "figures" / "slack.png").exists()
    assert "slack.png" in text and "| constant |" in text
    whole = slack.compute(slack.SCALE_EXAMPLES["tiny"])
    blocks = pd.concat([slack_report.compute(p) for p in slack_report.cells("tiny")], ignore_index=True)
    assert blocks.equals(whole)                          # the cells concatenate to the one-shot table
