"""The maml_variants, step_sizes and local_smoothness experiments at ``tiny``
scale: each table shows the shape its experiment exists to show, and plot()
and claims() work from the table alone."""
import numpy as np
import pytest
from scipy import stats

from tests.experiment_tables import claims_with, tiny_table
from mamlcheck.experiments import local_smoothness, maml_variants, step_sizes
from mamlcheck.experiments.run_all import claim_cells
from mamlcheck.theory.checks import Check

MODULES = (maml_variants, step_sizes, local_smoothness)


@pytest.fixture(scope="module")
def tables():
    return {m.NAME: tiny_table(m) for m in MODULES}


def _floor(t, alg, spread):
    p = t[(t.kind == "plateau") & (t.algorithm == alg) & (t.spread == spread)
          & (t.alpha_L == maml_variants.ALPHA_L_SIGMA)]
    assert len(p), (alg, spread)
    return p.grad_norm.mean()


def test_fomaml_floor_grows_with_sigma_and_vanishes_at_zero(tables):
    t = tables["maml_variants"]
    top = max(t.spread)
    assert _floor(t, "fomaml", top) > 10 * _floor(t, "fomaml", 0.0)
    assert _floor(t, "fomaml", 0.0) < maml_variants.ZERO_FRACTION * _floor(t, "fomaml", top)
    # (FO-MAML above MAML once tasks differ is the default-scale claim: at tiny
    # scale the two plateaus differ by less than their spread over 4 seeds)
    assert t[t.spread == 0].sigma_local.max() < 1e-8 < t[t.spread == top].sigma_local.min()


def test_hfmaml_tracks_maml(tables):
    t = tables["maml_variants"]
    top = max(t.spread)
    hf, m = _floor(t, "hfmaml", top), _floor(t, "maml", top)
    # HF-MAML's plateau is MAML's up to the seed noise: 4 seeds whose plateaus
    # vary by up to ~50 % give means within a factor 2 for every stream (the
    # closeness relative to FO-MAML is a default-scale claim)
    assert 0.5 < hf / m < 2.0


def test_cost_columns(tables):
    t = tables["maml_variants"]
    calls = t.groupby("algorithm").oracle_calls.first()
    assert calls["fomaml"] < calls["maml"] < calls["hfmaml"]
    assert (t.wall_ms_step > 0).all()


def test_adaptive_never_diverges_while_largest_constant_does(tables):
    t = tables["step_sizes"]
    runs = t[t.kind == "run"]
    assert not runs[runs.step == "adaptive"].diverged.astype(bool).any()
    const = runs[runs.step == "constant"]
    assert const[const.beta_L == const.beta_L.max()].diverged.astype(bool).any()
    assert not const[const.beta_L == const.beta_L.min()].diverged.astype(bool).any()
    traj = t[t.kind == "trajectory"]
    far = traj[traj.radius == traj.radius.max()]
    assert far[far.k == 0].L_w.median() > 2 * traj[traj.radius == traj.radius.min()].L_w.median()


def test_local_ratio_within_L_w_and_grows(tables):
    t = tables["local_smoothness"]
    tol = 1 + local_smoothness.FD_RTOL
    assert (t.ratio1 <= t.bound1 * tol).all()
    assert (t.ratio2 <= t.bound2 * tol).all()
    for fam, sub in t[t.direction == "power"].groupby("family"):
        assert stats.spearmanr(sub.mean_task_grad_norm, sub.ratio1).statistic > 0.5, fam


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.NAME)
def test_plot_and_claims(mod, tables, tmp_path):
    table = tables[mod.NAME]
    paths = mod.plot(table, tmp_path)
    assert {p.suffix for p in paths} == {".png", ".svg"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    checks = mod.claims(table)
    assert checks and all(isinstance(c, Check) for c in checks)
    for c in checks:
        assert set(claim_cells(c)) == {"claim", "measured", "bound", "verdict"}
        assert claim_cells(c)["verdict"].startswith(c.verdict)
    assert np.isfinite([float(c.measured) for c in checks]).any()
    # every bound holds at tiny scale too; the comparison of HF-MAML with FO-MAML
    # is a default-scale claim (at 4 seeds the plateaus differ by less than their spread)
    assert not any(c.verdict == "violated" for c in checks if "less than FO-MAML's does" not in c.statement)


def test_fomaml_bounds_pushed_below_its_plateau_are_violated(tables):
    t = tables["maml_variants"]
    shrunk = t.assign(floor_bound=t.floor_bound * 1e-6, dropped_bound=t.dropped_bound * 1e-6)
    claims = claims_with(maml_variants.claims(shrunk), "FO-MAML plateau ≤")
    assert len(claims) == 2 and all(c.verdict == "violated" for c in claims)


def test_a_fomaml_floor_that_stays_at_sigma_zero_violates_the_vanishing_claim(tables):
    t = tables["maml_variants"]
    top = t[(t.algorithm == "fomaml") & (t.kind == "plateau") & (t.spread == t.spread.max())].grad_norm.mean()
    at_zero = (t.algorithm == "fomaml") & (t.kind == "plateau") & (t.sigma_local < 1e-9)
    [claim] = claims_with(maml_variants.claims(t.assign(grad_norm=t.grad_norm.where(~at_zero, top))), "floor → 0")
    assert claim.verdict == "violated"


def test_the_cost_of_a_step_is_reported_without_a_verdict(tables):
    for c in claims_with(maml_variants.claims(tables["maml_variants"]), "cost per iteration"):
        assert c.kind == "report" and c.verdict == "measured"


def test_an_adaptive_run_that_diverged_violates_the_stability_claim(tables):
    t = tables["step_sizes"]
    adaptive = (t.kind == "run") & (t.step == "adaptive")
    one = t.assign(diverged=t.diverged.astype(bool) | (adaptive & (t.index == t[adaptive].index[0])))
    [claim] = claims_with(step_sizes.claims(one), "never diverged")
    assert claim.verdict == "violated" and claim.context["note"].startswith("1/")


def test_an_estimate_of_L_off_by_five_violates_the_step_size_lemma(tables):
    t = tables["step_sizes"]
    high, low = t.assign(L_tilde=t.L_tilde * 5.0), t.assign(L_tilde=t.L_tilde / 5.0)    # L/L̃ ≈ 0.2 and ≈ 5
    [first] = claims_with(step_sizes.claims(high), "E[L(w)/L̃(w)] ≥ 0.8")
    [second] = claims_with(step_sizes.claims(low), "E[(L(w)/L̃(w))²] ≤ 3.125")
    assert first.verdict == second.verdict == "violated"


def test_a_local_ratio_pushed_past_the_rounding_slack_violates_the_smoothness_lemma(tables):
    t = tables["local_smoothness"]
    fam = t.family.iloc[0]
    worst = (t.ratio1 / t.bound1)[t.family == fam].max()
    for factor, expected in ((1 + 2 * local_smoothness.FD_RTOL, "violated"), (1 + 0.5 * local_smoothness.FD_RTOL, "holds")):
        pushed = t.assign(ratio1=t.ratio1.where(t.family != fam, t.ratio1 * factor / worst))
        [claim] = claims_with(local_smoothness.claims(pushed), f"{fam}: ‖∇F(u) − ∇F(w)‖")
        assert claim.verdict == expected


def test_a_ratio_that_falls_with_the_task_gradients_violates_the_growth_claim(tables):
    t = tables["local_smoothness"]
    falling = t.assign(ratio1=1.0 / t.mean_task_grad_norm)
    assert all(c.verdict == "violated" for c in claims_with(local_smoothness.claims(falling), "first-order ratio grows"))


def test_cells_are_json_able_and_named():
    import json
    for mod in MODULES:
        for scale in ("tiny", "quick", "default", "full"):
            json.dumps(mod.cells(scale))
        assert mod.NAME in __import__("mamlcheck.experiments.registry", fromlist=["NAMES"]).NAMES
