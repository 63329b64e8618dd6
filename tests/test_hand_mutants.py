"""One test per hand-written mutant that survived the suite (mutation/hand/SURVIVORS.md).

Each test pins the number the mutant changes, exactly or to rounding; none is
statistical.  Where random draws are involved they are seeded from
``TEST_ROOT`` and the assertion holds for any draw (an identity checked draw
for draw, not a property of one particular sample).

* 10: the fast MAML sampler's aggregated outer noise, ``(Σ_i h_i²)^½ ⊙ ζ``;
* 11: exact mode's step uses the ``L``, ``ρ`` it was given;
* 25: the cell key changes with each of its parts (scale included);
* 26: the ledger's (11)/(13) rows cover exactly the iterations above the threshold;
* 27: the ledger's interval for ``‖E G_i‖²`` in (7) has the radius of the mean's covariance;
* 28: rate_hard_chain's ``beta_L_max`` is the certificate from the measured gradients;
* 29: the noise floor's plateau interval is the two-sided 95% t interval.
"""
import math
import sys
import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mamlcheck import literature as lit
from mamlcheck.algorithms.fast_cosine_quadratic import CosineQuadraticSampler
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import G_i, local_L
from mamlcheck.algorithms.steps import step_size
from mamlcheck.experiments import cells, ledger, noise_floor, proof_cmd, rate_hard_chain
from mamlcheck.experiments.ledger_measure import _moments
from mamlcheck.problems import make_family
from mamlcheck.problems.cosine_quadratic import CosineQuadratic
from mamlcheck.theory import bounds

from tests.conftest import TEST_ROOT


# --- 10. fast MAML: the aggregated outer-batch noise ----------------------------------------
class _FixedNormals:
    """A stand-in generator whose ``standard_normal`` returns a fixed block (no
    ``scaled_normal``: the sampler then scales the block by its column scales)."""

    def __init__(self, block):
        self.block = block

    def standard_normal(self, shape):
        assert shape == self.block.shape, (shape, self.block.shape)
        return self.block.copy()


def test_fast_maml_aggregated_outer_noise_matches_its_formula():
    """With oracle noise on, the fast MAML direction minus its noise-free part
    (the same normals with ``ζ`` set to 0) must be, draw for draw,
    ``(s_ξ/(B√(d·D_o)))·(Σ_i h_i²)^½ ⊙ ζ`` with
    ``h_i = 1 − αa + αγω²(1 + η_h,i)·cos ωw`` and ``η_h,i = (s_η/√D_h)·N_i``
    built from the same normals (column layout of the sampler's docstring:
    ``[ξ_in (Bd) | η_in (B) | η_o (B) | η_h (B) | ζ (d)]``).  An identity, so
    exact to rounding; a large ``αγω² = 0.72`` makes the cross term
    ``2 m0 m1 Σ η_h,i`` a large share of ``Σ h_i²``."""
    d, B, R = 3, 4, 50
    fam = CosineQuadratic(d=d, M=5, noise_grad=2.0, noise_amp=0.7, spread=0.3, gamma=1.0, omega=3.0, seed=2)
    hyper = Hyper("maml", alpha=0.08, B=B, D_in=2, D_o=5, D_h=3)
    rng = np.random.default_rng(1010 + TEST_ROOT)
    w = rng.standard_normal((R, d))
    tasks = fam.draw_tasks((R, B), rng)
    N = rng.standard_normal((R, B * d + 3 * B + d))
    N0 = N.copy()
    N0[:, -d:] = 0.0
    sampler = CosineQuadraticSampler(fam)
    noisy = sampler.direction(w, tasks, hyper, _FixedNormals(N))
    quiet = sampler.direction(w, tasks, hyper, _FixedNormals(N0))

    a = np.diag(fam.A) if np.ndim(fam.A) == 2 else np.asarray(fam.A)
    eta_h = fam.noise_amp / math.sqrt(hyper.D_h) * N[:, B * d + 2 * B:B * d + 3 * B]        # (R, B)
    h = (1.0 - hyper.alpha * a)[None, None, :] + (hyper.alpha * fam.gamma * fam.omega ** 2) \
        * (1.0 + eta_h)[:, :, None] * np.cos(fam.omega * w)[:, None, :]                  # (R, B, d)
    zeta = N[:, -d:]
    expected = fam.noise_grad / (B * math.sqrt(d * hyper.D_o)) * np.sqrt((h ** 2).sum(1)) * zeta
    np.testing.assert_allclose(noisy - quiet, expected, rtol=1e-10, atol=1e-12)
    # the check has teeth: without the factor 2 of the cross term the noise differs by far more
    h2_wrong = (h ** 2).sum(1) - ((1.0 - hyper.alpha * a + hyper.alpha * fam.gamma * fam.omega ** 2
                                   * np.cos(fam.omega * w)) * hyper.alpha * fam.gamma * fam.omega ** 2
                                  * np.cos(fam.omega * w)) * eta_h.sum(1)[:, None]
    wrong = fam.noise_grad / (B * math.sqrt(d * hyper.D_o)) * np.sqrt(np.maximum(h2_wrong, 0)) * zeta
    assert np.max(np.abs(wrong - expected)) > 1e-3 * np.max(np.abs(expected))


# --- 11. exact mode's step size ---------------------------------------------------------------
@pytest.mark.parametrize("inner_steps", [1, 2])
def test_exact_step_uses_the_constants_it_is_given(inner_steps):
    """``β = 1/(c·L(w))`` with the ``L(w)`` of the constants passed in (the
    ledger's negative control passes ``L/10``), not the family's certified
    ones: for one inner step ``L(w) = 4L′ + 2ρ′α E_i‖∇f_i(w)‖`` by hand."""
    fam = make_family("cosine-quadratic", gamma=0.05, spread=0.05, noise_grad=0.05, noise_amp=0.05)
    L, rho = fam.constants().L.value, fam.constants().rho.value
    alpha = lit.ALPHA_MAX_LD["maml"] / L / inner_steps
    hyper = Hyper("exact", alpha=alpha, inner_steps=inner_steps)
    w = 1.0 + 0.5 * np.random.default_rng(1100 + TEST_ROOT).standard_normal((6, fam.d))
    L_, rho_ = L / 10, rho / 3
    got = step_size(fam, w, hyper, L_, rho_, np.random.default_rng(0))
    np.testing.assert_allclose(got, 1.0 / (hyper.c * local_L(fam, w, alpha, L_, rho_, inner_steps)), rtol=1e-13)
    if inner_steps == 1:
        i = np.arange(fam.M)
        mean_norm = np.linalg.norm(fam.grad(w[:, None, :], i), axis=-1) @ fam.p
        np.testing.assert_allclose(got, 1.0 / (hyper.c * (4 * L_ + 2 * rho_ * alpha * mean_norm)), rtol=1e-12)
    certified = step_size(fam, w, hyper, L, rho, np.random.default_rng(0))
    assert np.all(got > 2 * certified)          # the understated constants take much longer steps


# --- 25. the cell key -------------------------------------------------------------------------
def test_the_cell_key_changes_with_each_of_its_parts(monkeypatch, tmp_path):
    """Experiment, scale and parameters each enter the key (and the cell's path);
    the same parts give the same key.  End to end: a run at one scale must not
    read the cells another scale wrote for the same parameters."""
    p = {"B": 20, "D_in": 1}
    base = cells.cell_key("noise_floor", "tiny", p)
    assert cells.cell_key("noise_floor", "tiny", dict(p)) == base
    variants = {cells.cell_key("noise_floor", "quick", p), cells.cell_key("bias_din", "tiny", p),
                cells.cell_key("noise_floor", "tiny", {**p, "B": 21})}
    assert base not in variants and len(variants) == 3
    assert cells.cell_path(tmp_path, "noise_floor", "tiny", p) != cells.cell_path(tmp_path, "noise_floor", "full", p)

    calls = []
    mod = types.ModuleType("hand_mutant_scale_probe")
    mod.NAME = "hand_mutant_scale_probe"
    mod.cells = lambda scale: [{"x": 1}, {"x": 2}]                    # the same cells at every scale
    mod.compute = lambda params: (calls.append(params), pd.DataFrame({"x": [params["x"]]}))[1]
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    first = cells.run_cells(mod, "tiny", tmp_path, backend=cells.InProcess(), progress=False)
    second = cells.run_cells(mod, "quick", tmp_path, backend=cells.InProcess(), progress=False)
    again = cells.run_cells(mod, "quick", tmp_path, backend=cells.InProcess(), progress=False)
    assert first["computed"] == first["total"] == 2
    assert second["computed"] == second["total"] == 2 and second["cached"] == 0
    assert again["computed"] == 0 and again["cached"] == 2
    assert len(calls) == 4


# --- 26. the ledger's (11)/(13) iterations ----------------------------------------------------
def _exact_ledger():
    fam = make_family("cosine-quadratic", gamma=0.05, spread=0.05, noise_grad=0.05, noise_amp=0.05)
    alpha = lit.ALPHA_MAX_LD["maml"] / fam.constants().L.value
    return ledger.evaluate(fam, Hyper("exact", alpha=alpha), eps=0.5, seeds=2, budget=400,
                           w0=np.ones(fam.d), points=2, root=TEST_ROOT)


def _stochastic_ledger():
    fam, hyper, w0, _ = proof_cmd.default_spec("cosine-quadratic", "tiny").build()
    # ε = 2.5: ‖∇F(w_0)‖ ≈ 4.6 falls to 2.5 near k = 75 (the oracle noise, 0.05, moves
    # that by a step or so), well inside the budget of 300
    return ledger.evaluate(fam, hyper, eps=2.5, seeds=2, budget=300, w0=w0, points=2, draws=20, reps=10,
                           cond_reps=2, root=TEST_ROOT)


@pytest.mark.parametrize("make", [_exact_ledger, _stochastic_ledger], ids=["exact", "stochastic"])
def test_decrease_rows_cover_exactly_the_iterations_above_the_threshold(make):
    """(11) and (13) are evaluated while the seed-averaged ``‖∇F(w_k)‖`` exceeds
    ``max{ε, floor}``: (11)'s rows are ``k = 0 … T*−1`` and (13)'s ``T = 1 … T*``,
    with ``T*`` the first ``k`` of the trajectory at or below the threshold."""
    led = make()
    tr, thr = led.trajectory, led.config["threshold"]
    g = tr.mean_grad_norm.to_numpy()
    K = led.config["iterations"]
    assert len(g) == K + 1
    below = np.flatnonzero(g <= thr)
    assert below.size and below[0] > 0          # the run crosses the threshold after some steps
    T_star = int(below[0])
    assert led.config["T_star"] == T_star
    assert (g[:T_star] > thr).all() and tr.above_threshold.to_numpy()[:T_star].all()
    assert not tr.above_threshold.iloc[T_star]
    rows = led.rows
    assert rows[rows.step == "(11)"].k.tolist() == list(range(T_star))
    assert rows[rows.step == "(13)"].k.tolist() == list(range(1, T_star + 1))
    assert tr.decrease.notna().sum() == T_star


# --- 27. the ledger's interval for ‖E G_i‖² in (7) --------------------------------------------
@pytest.mark.parametrize("draws", [40, 160])
def test_moment_interval_has_the_radius_of_the_covariance_of_the_mean(draws):
    """``_moments`` draws ``G_i`` stratified by task (``draws`` per task) and
    bounds ``‖μ̂ − μ‖ ≤ r = √tr Σ_μ̂ + √(2λ_max(Σ_μ̂)log(1/δ))`` with
    ``Σ_μ̂ = Σ_i p_i² Cov(G_i)/draws`` the covariance of the stratified *mean*;
    so ``√left_hi − √left = r``.  The same draws are regenerated (same seed,
    same call) and ``Σ_μ̂`` is computed independently (``np.cov`` per task):
    an identity, exact to rounding, for any draw."""
    fam, hyper, w0, _ = proof_cmd.default_spec("cosine-quadratic", "tiny").build()
    hyper = hyper.resolved(fam.constants())
    w = np.full(fam.d, w0)
    delta = 1e-6
    seed = 2700 + TEST_ROOT
    (left, lo, hi), _ = _moments(fam, hyper, w, draws, np.random.default_rng(seed), delta)
    M, d = fam.M, fam.d
    G = G_i(fam, np.broadcast_to(w, (M, draws, d)), np.broadcast_to(np.arange(M)[:, None], (M, draws)),
            hyper.alpha, hyper.D_in, hyper.D_o, hyper.D_h, np.random.default_rng(seed))
    mu = fam.p @ G.mean(1)
    cov_mean = sum(fam.p[i] ** 2 * np.cov(G[i], rowvar=False) for i in range(M)) / draws
    r = math.sqrt(np.trace(cov_mean)) + math.sqrt(2 * np.linalg.eigvalsh(cov_mean)[-1] * math.log(1 / delta))
    norm = float(np.linalg.norm(mu))
    assert left == pytest.approx(norm ** 2, rel=1e-12)
    assert norm > r                                  # the interval's lower end is not clipped at 0
    assert math.sqrt(hi) - math.sqrt(left) == pytest.approx(r, rel=1e-9)
    assert math.sqrt(left) - math.sqrt(lo) == pytest.approx(r, rel=1e-9)


# --- 28. rate_hard_chain's step certificate ---------------------------------------------------
def test_beta_L_max_is_the_certificate_from_the_measured_gradients(monkeypatch):
    """For the constant step ``β = 1/(5L)`` the column is
    ``β·L(w)`` with ``L(w) = 4L + 2ρα·max_k‖∇F(w_k)‖/(1 − αL)²``, the bound on
    ``‖∇f(w_k)‖`` of one task (module docstring), from the run's own
    ``‖∇F(w_k)‖`` (the chain is deterministic)."""
    runs = []
    real_run = rate_hard_chain.run

    def spy(*a, **kw):
        runs.append(real_run(*a, **kw))
        return runs[-1]

    monkeypatch.setattr(rate_hard_chain, "run", spy)
    params = next(p for p in rate_hard_chain.cells("tiny") if p["rule"] == "constant" and p["algorithm"] == "exact")
    row = rate_hard_chain.compute(params).iloc[0]
    [res] = runs
    L, rho, alpha, beta = row.L, row.rho, row.alpha, row.beta
    assert beta == pytest.approx(params["beta_L"] / params["L"])
    grad_f_max = float(np.nanmax(res.mean_grad_norm)) / (1.0 - alpha * L) ** 2
    expected = beta * (4 * L + 2 * rho * alpha * grad_f_max)
    assert row.beta_L_max == pytest.approx(expected, rel=1e-12)
    assert row.beta_L_max == pytest.approx(
        beta * bounds.smooth_local_L(L=L, rho=rho, alpha=alpha, mean_grad_norm=grad_f_max), rel=1e-12)


# --- 29. the plateau's seed interval ----------------------------------------------------------
def test_plateau_interval_is_the_two_sided_95_t_interval():
    """Plateaus ``[1, 2, 3, 4]`` of four seeds: mean 2.5, ``s = √(5/3)``, so the
    95% interval is ``2.5 ∓ t_{0.975, 3}·s/2 = 2.5 ∓ 2.0543`` (``t_{0.975,3} =
    3.18245``, tables); the one-sided ``t_{0.95, 3}`` would give ``∓1.5191``."""
    base = dict(kind="plateau", B=20, D_in=1, D_o=1, S=1.0, floor=10.0, sweeps="joint", broken="",
                rho=1.0, alpha=0.1, sigma=1.0, L=1.0)
    table = pd.DataFrame([{**base, "seed": s, "grad_norm": float(s + 1)} for s in range(4)])
    [row] = noise_floor._plateaus(table).to_dict("records")
    assert row["plateau"] == pytest.approx(2.5)
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert half == pytest.approx(2.0543, abs=1e-4)
    assert stats.t.ppf(0.975, 3) == pytest.approx(3.182446305284263, rel=1e-12)
    assert row["ci_lo"] == pytest.approx(2.5 - half, rel=1e-9)
    assert row["ci_hi"] == pytest.approx(2.5 + half, rel=1e-9)
