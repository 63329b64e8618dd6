"""The noise-floor and bias experiments at tiny scale, and the closed-form bias
of cosine-quadratic against Monte Carlo on the family's own oracles."""
import numpy as np
import pytest
from scipy.stats import norm

from mamlcheck.algorithms.objective import G_i, grad_F
from tests.experiment_tables import tiny_table
from mamlcheck.experiments import analysis
from mamlcheck.experiments import bias_din, noise_floor
from mamlcheck.experiments.run_all import claim_cells
from mamlcheck.problems import make_family
from mamlcheck.theory.checks import Check

CLAIM_KEYS = {"claim", "measured", "bound", "verdict"}


@pytest.fixture(scope="module")
def floor_table():
    return tiny_table(noise_floor)


@pytest.fixture(scope="module")
def bias_table():
    return tiny_table(bias_din)


def _figures_and_claims(mod, table, tmp_path):
    paths = mod.plot(table, tmp_path)
    assert {p.suffix for p in paths} == {".png", ".svg"} and all(p.stat().st_size > 0 for p in paths)
    checks = mod.claims(table)
    assert checks and all(isinstance(c, Check) for c in checks)
    assert all(set(claim_cells(c)) == CLAIM_KEYS for c in checks)
    return checks


def _claim(checks, text: str) -> Check:
    """The one claim whose statement contains ``text``."""
    found = [c for c in checks if text in c.statement]
    assert len(found) == 1, [c.statement for c in checks]
    return found[0]


def test_noise_floor_plateau_falls_with_batches_and_stays_below_floor(floor_table):
    pl = floor_table[floor_table.kind == "plateau"].groupby("B").agg(
        plateau=("grad_norm", "mean"), floor=("floor", "first"), broken=("broken", "first"))
    assert len(pl) >= 3
    assert np.all(np.diff(pl.plateau.to_numpy()) < 0), pl      # larger B = D_in = D_o: lower plateau
    assert np.all(pl.plateau < pl.floor), pl
    assert all(("B_min" in b) == (B < 20) for B, b in pl.broken.items())


def test_noise_floor_plot_and_claims(floor_table, tmp_path):
    checks = _figures_and_claims(noise_floor, floor_table, tmp_path)
    assert all(c.verdict == "holds" for c in checks if "≤ floor" in c.statement)
    assert all(claim_cells(c)["verdict"].startswith("holds (floor/plateau = ") for c in checks if "≤ floor" in c.statement)


def _set_plateaus(table, B, values):
    """The table with the per-seed plateaus of configuration ``B`` (joint sweep) replaced."""
    t = table.copy()
    rows = (t.kind == "plateau") & (t.B == B)
    t.loc[rows, "grad_norm"] = np.resize(values, rows.sum())
    return t


def test_a_plateau_pushed_above_the_floor_makes_its_claim_violated(floor_table):
    B = floor_table.B.max()
    floor = floor_table[floor_table.B == B].floor.iloc[0]
    checks = noise_floor.claims(_set_plateaus(floor_table, B, [2.0 * floor, 2.1 * floor]))
    assert _claim(checks, f"at B={B},").verdict == "violated"
    assert all(c.verdict == "holds" for c in checks if "≤ floor" in c.statement and f"at B={B}," not in c.statement)


def test_a_plateau_whose_seed_interval_straddles_the_floor_is_inconclusive(floor_table):
    B = floor_table.B.max()
    floor = floor_table[floor_table.B == B].floor.iloc[0]
    checks = noise_floor.claims(_set_plateaus(floor_table, B, [0.5 * floor, 1.5 * floor]))
    assert _claim(checks, f"at B={B},").verdict == "inconclusive"


def test_a_plateau_linear_in_S_violates_the_square_root_shape(floor_table):
    S = floor_table.groupby("B").S.first()
    linear, root = floor_table.copy(), floor_table.copy()
    for (B, s), wobble in zip(S.items(), (1.0, 1.05, 0.97)):   # off the line, so the fit has an interval
        linear = _set_plateaus(linear, B, 1e-3 * s * wobble)
        root = _set_plateaus(root, B, 1e-3 * np.sqrt(s) * wobble)
    assert _claim(noise_floor.claims(linear), "fitted exponent").verdict == "violated"
    assert _claim(noise_floor.claims(root), "fitted exponent").verdict == "holds"


def test_bias_below_bound_and_decreasing(bias_table):
    assert np.all(bias_table.bias > 0) and np.all(bias_table.bias <= bias_table.bound)
    for _, g in bias_table.groupby(["alpha_L", "point"]):
        assert np.all(np.diff(g.sort_values("D_in").bias.to_numpy()) < 0)


def test_bias_plot_and_claims(bias_table, tmp_path):
    checks = _figures_and_claims(bias_din, bias_table, tmp_path)
    assert any("slope" in c.statement for c in checks)
    assert all(c.verdict == "holds" for c in checks)


def test_a_bias_pushed_above_the_lemma_bound_makes_its_claim_violated(bias_table):
    t = bias_table.copy()
    t.loc[t.index[0], "bias"] = 2.0 * t.bound.iloc[0]
    claim = _claim(bias_din.claims(t), "bias lemma")
    assert claim.verdict == "violated" and "exceeded at 1 of" in claim.context["note"]


def test_a_bias_falling_slower_than_the_bound_violates_its_rate(bias_table):
    slow = bias_table.assign(bias=bias_table.bound * 1e-3 * bias_table.D_in ** 0.25)    # ∝ D_in^(−1/4)
    assert _claim(bias_din.claims(slow), "slope of log bias").verdict == "violated"
    root = bias_table.assign(bias=bias_table.bound * 1e-3)                               # ∝ D_in^(−1/2)
    assert _claim(bias_din.claims(root), "slope of log bias").verdict == "holds"


def test_loglog_slope_recovers_power():
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    s, lo, hi = analysis.loglog_slope(x, 3 * x ** -0.5 * (1 + 0.01 * np.array([1, -1, 1, -1])))
    assert lo < -0.5 < hi and abs(s + 0.5) < 0.01


# --- closed form vs Monte Carlo ------------------------------------------------------
FALSE_ALARM = 1e-6
FAM = dict(d=3, M=4, noise_grad=3.0, noise_amp=1.0)   # noisy, so the bias is resolvable
ALPHA, W, TASK, N = 0.1, np.array([0.4, -0.7, 1.1]), 2, 400_000


def _max_z(D_in, var_scale, seed):
    """Largest |z| over coordinates of the Monte-Carlo mean of ``G_i`` (one task,
    D_o = D_h = 1, family oracles) against the closed form with the inner
    variance scaled by ``var_scale`` (1: the correct one)."""
    fam = make_family("cosine-quadratic", **FAM)
    G = G_i(fam, np.broadcast_to(W, (N, fam.d)), np.full(N, TASK), ALPHA, D_in, 1, 1,
            np.random.default_rng(seed))
    var = var_scale * bias_din.inner_noise_var(fam, W, ALPHA, D_in)
    z = (G.mean(0) - bias_din.expected_G(fam, W, ALPHA, D_in, var=var)[TASK]) / (G.std(0, ddof=1) / np.sqrt(N))
    return np.abs(z).max()


# Bonferroni over d coordinates and the two D_in cases: false-alarm rate FALSE_ALARM in all
Z_STAR = norm.isf(FALSE_ALARM / (2 * FAM["d"] * 2))


@pytest.mark.parametrize("D_in, seed", [(1, 11), (4, 12)])
def test_closed_form_matches_monte_carlo(D_in, seed):
    assert _max_z(D_in, 1.0, seed) < Z_STAR


@pytest.mark.parametrize("var_scale", [2.0, 0.0])   # doubled variance; no bias at all (E[G_i] = ∇F_i)
def test_monte_carlo_catches_wrong_variance(var_scale):
    # at D_in = 1 the bias is ~16 standard errors, so a wrong variance cannot pass
    assert _max_z(1, var_scale, 13) > Z_STAR


def test_exact_bias_is_expected_G_minus_grad_F_and_within_A3_bound():
    fam = make_family("cosine-quadratic", **FAM)
    c = fam.constants().values()
    for D_in in (1, 7, 1000):
        direct = bias_din.exact_bias(fam, W, ALPHA, D_in)
        via_G = fam.p @ bias_din.expected_G(fam, W, ALPHA, D_in) - grad_F(fam, W, ALPHA)
        assert np.allclose(via_G, direct, rtol=1e-8, atol=1e-13)
        assert np.linalg.norm(direct) <= bias_din.bias_bound_A3(ALPHA, c["L"], c["rho"], c["sigma_tilde"], D_in)
