"""The maml_variants, step_sizes and local_smoothness experiments at ``tiny``
scale: each table shows the shape its experiment exists to show, and plot()
and claims() work from the table alone."""
import numpy as np
import pytest
from scipy import stats

from tests.experiment_tables import tiny_table
from mamlcheck.experiments import local_smoothness, maml_variants, step_sizes

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
    # the dropped Hessian term: FO-MAML stalls above MAML once tasks differ
    assert _floor(t, "fomaml", top) > _floor(t, "maml", top)
    assert t[t.spread == 0].sigma_local.max() < 1e-8 < t[t.spread == top].sigma_local.min()


def test_hfmaml_tracks_maml(tables):
    t = tables["maml_variants"]
    top = max(t.spread)
    hf, m, fo = (_floor(t, a, top) for a in ("hfmaml", "maml", "fomaml"))
    assert abs(hf / m - 1) < 0.5
    assert abs(hf / m - 1) < abs(fo / m - 1)


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
    rows = mod.claims(table)
    assert rows
    for r in rows:
        assert set(r) == {"claim", "measured", "bound", "verdict"}
        assert isinstance(r["verdict"], str) and r["verdict"]
    assert np.isfinite([float(r["measured"]) for r in rows if r["measured"] is not None]).any()


def test_cells_are_json_able_and_named():
    import json
    for mod in MODULES:
        for scale in ("tiny", "quick", "default", "full"):
            json.dumps(mod.cells(scale))
        assert mod.NAME in __import__("mamlcheck.experiments.registry", fromlist=["NAMES"]).NAMES
