"""The two multi-step experiments at tiny scale: iterations to ε do not grow
with N at α = 1/(6NL) and stay above the hard chain's ⌊T(ε′)/(N+1)⌋; the
oracle calls counted in a run are calls(N)·B; and every check can fail."""
import numpy as np
import pandas as pd
import pytest

from tests.experiment_tables import KEYS, claims_with, tiny_table
from mamlcheck.algorithms.estimators import ALGORITHMS
from mamlcheck.experiments import multistep_cost, multistep_rate, multistep_rate_report
from mamlcheck.experiments.run_all import claim_cells
from mamlcheck.problems import make_family
from mamlcheck.problems.hard_chain import HardChain
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import REPORTED, VERDICTS, Check
from mamlcheck.theory.multistep import multistep_alpha_max

@pytest.fixture(scope="module")
def rate_table():
    return tiny_table(multistep_rate)


@pytest.fixture(scope="module")
def cost_table():
    return tiny_table(multistep_cost)


# --- multistep_rate: the table --------------------------------------------------
def test_the_rate_table_has_a_row_per_seed_and_eps_and_one_per_eps_for_the_seed_average(rate_table):
    assert list(rate_table.columns) == multistep_rate._COLUMNS
    s = multistep_rate.SCALES["tiny"]
    ben = rate_table[rate_table.part == "benign"]
    for (fam, series, N), sub in ben.groupby(["family", "series", "N"]):
        n_eps = sub.eps.nunique()
        assert (sub.kind == "seed").sum() == s.seeds * n_eps and (sub.kind == "seed average").sum() == n_eps
    chain = rate_table[rate_table.part == "chain"]
    assert sorted(chain.N) == sorted(s.chain_inner_steps) and (chain.kind == "seed average").all()
    assert set(rate_table.N) == set(s.inner_steps) | set(s.chain_inner_steps)


def test_every_run_takes_the_inner_step_one_over_6NL_and_the_theorem_runs_meet_every_condition(rate_table):
    assert np.allclose(rate_table.alpha * rate_table.N * rate_table.L, 1 / 6)
    theorem = rate_table[rate_table.rule == "theorem"]
    assert len(theorem) and (theorem.conditions_broken == "none").all()
    assert set(theorem[theorem.N > 1].theorem) == {"multi-step MAML theorem",
                                                    "multi-step MAML theorem with exact gradients"}
    const = rate_table[rate_table.rule == "constant"]
    assert (const.conditions_broken == "step_rule").all() and (const.beta_L_max <= 1).all()


def test_every_benign_seed_reaches_every_eps_and_the_sufficing_constant_is_far_below_1600(rate_table):
    ben = rate_table[rate_table.part == "benign"]
    assert ben.first_k.notna().all()
    assert (ben.C_suff >= 0).all() and (ben.C_suff < 1600).all()
    # the order Δ·L̄/ε² is what C divides by
    assert np.allclose(ben.order, ben.Delta * ben.L_bar / ben.eps ** 2)


def test_the_chain_is_one_chain_for_every_N_and_its_bound_is_floor_T_over_N_plus_1(rate_table):
    chain = rate_table[rate_table.part == "chain"].sort_values("N")
    assert chain["T"].nunique() == 1 and chain.eps_prime.nunique() == 1
    T = int(chain["T"].iloc[0])
    for r in chain.itertuples():
        eps_prime = bounds.chain_eps_prime(eps=r.eps, alpha=r.alpha, L=r.L, N=r.N)
        assert bounds.chain_T(eps=eps_prime, Delta=1.0, L=r.L) == T
        assert r.lower == T // (r.N + 1)
        assert r.first_k >= r.lower
    assert chain.lower.is_monotonic_decreasing


@pytest.mark.parametrize("T, N", [(2, 1), (5, 3), (9, 8), (40, 16)])
def test_chain_eps_gives_the_chain_of_that_length_for_every_N(T, N):
    alpha = multistep_alpha_max(L=1.0, N=N)
    eps, eps_prime = multistep_rate.chain_eps(T, N, alpha)
    assert np.isclose(eps, (1 - alpha) ** N * eps_prime)
    assert HardChain(eps=bounds.chain_eps_prime(eps=eps, alpha=alpha, L=1.0, N=N), Delta=1.0, L=1.0).T == T


def test_a_cell_computed_twice_gives_the_same_table_bit_for_bit():
    cell = next(c for c in multistep_rate.cells("tiny") if c["series"] == "maml" and c["N"] == 2)
    pd.testing.assert_frame_equal(multistep_rate.compute(cell), multistep_rate.compute(cell))


# --- multistep_rate: claims and negative controls --------------------------------
def test_the_rate_plots_are_drawn_and_every_claim_has_a_verdict_none_violated(rate_table, tmp_path):
    paths = multistep_rate.plot(rate_table, tmp_path)
    assert sorted(p.name for p in paths) == ["multistep_rate.png", "multistep_rate.svg",
                                              "multistep_rate_chain.png", "multistep_rate_chain.svg"]
    assert all(p.stat().st_size > 0 for p in paths)
    checks = multistep_rate.claims(rate_table)
    assert all(isinstance(c, Check) and set(claim_cells(c)) == KEYS for c in checks)
    assert all(c.verdict in VERDICTS + (REPORTED,) for c in checks)
    assert not any(c.verdict == "violated" for c in checks)
    # what is deterministic holds: conditions, exact gradients, the chain, (14)
    for c in checks:
        if c.kind != "report" and "MAML (B = " not in c.statement:
            assert c.verdict == "holds", c.statement


def test_the_stochastic_growth_claims_hold_or_are_inconclusive_never_violated(rate_table):
    # the per-seed first hits of stochastic MAML vary with the draws: at 4 seeds
    # their slope's interval may reach past 0.25 for some stream roots
    for c in claims_with(multistep_rate.claims(rate_table), "MAML (B = 20), β_k = 1/(12 L̃_N(w_k)): iterations to"):
        assert c.verdict in ("holds", "inconclusive") and c.lo <= c.measured <= c.hi


def test_iterations_growing_like_N_violate_the_growth_claim(rate_table):
    t = rate_table.copy()
    grow = t.part.eq("chain") | t.series.eq("exact")
    t.loc[grow, "first_k"] = (t.loc[grow, "first_k"].astype(float) * t.loc[grow, "N"]).round().astype("Int64")
    checks = multistep_rate.claims(t)
    for text in ("cosine-quadratic, exact gradients", "robust-regression, exact gradients", "hard chain T = 2 ("):
        [c] = [c for c in claims_with(checks, text) if "do not grow with N" in c.statement]
        assert c.verdict == "violated" and c.lo > multistep_rate.GROWTH_MAX


def test_a_chain_run_below_its_lower_bound_violates_its_check(rate_table):
    t = rate_table.copy()
    at = (t.part == "chain") & (t.N == 1)
    assert int(t.loc[at, "lower"].iloc[0]) >= 1
    t.loc[at, "first_k"] = t.loc[at, "lower"] - 1
    [c] = claims_with(multistep_rate.claims(t), "hard chain T = 2, N = 1 ")
    assert c.kind == "lower" and c.verdict == "violated"


def test_a_chain_bound_without_the_N_plus_1_is_far_below_the_measurement_too(rate_table):
    # the zero-respecting count is loose by two to three orders of magnitude at
    # β = 1/(2L): even T(ε′) itself (N + 1 replaced by 1) stays below every
    # measurement, so the lower check is no test of the 1/(N+1) factor
    chain = rate_table[rate_table.part == "chain"]
    assert (chain.first_k.astype(float) > 100 * chain["T"].astype(float)).all()


def test_a_run_with_a_broken_condition_or_a_step_above_1_over_L_violates_its_claim(rate_table):
    t = rate_table.copy()
    t.loc[(t.rule == "theorem") & (t.N == 2), "conditions_broken"] = "alpha_range"
    [c] = claims_with(multistep_rate.claims(t), "meets every condition")
    assert c.verdict == "violated" and "alpha_range" in c.context["note"]
    t = rate_table.copy()
    t.loc[t.rule == "constant", "beta_L_max"] = 1.1
    [c] = claims_with(multistep_rate.claims(t), "stays ≤ 1/L_N(w_k)")
    assert c.verdict == "violated"


def test_14_pushed_below_the_measurement_at_N_1_violates_its_claim(rate_table):
    t = rate_table.copy()
    at = (t.kind == "seed average") & (t.series == "exact") & (t.N == 1) & (t.family == "robust-regression")
    t.loc[at, "upper14"] = 0.5 * t.loc[at, "first_k"].astype(float)
    [c] = claims_with(multistep_rate.claims(t), "robust-regression, exact gradients, β_k = 1/(12 L_N(w_k)): at N = 1")
    assert c.verdict == "violated"


def test_grouped_slope_recovers_a_common_slope_under_group_intercepts():
    x = np.tile(np.log([2.0, 4.0, 8.0]), 3)
    groups = np.repeat([0, 1, 2], 3)
    y = np.repeat([1.0, 5.0, -3.0], 3) + 0.7 * x + 1e-3 * np.sin(np.arange(9))
    fit = multistep_rate_report.grouped_slope(x, y, groups)
    assert fit["lo"] <= fit["slope"] <= fit["hi"] and abs(fit["slope"] - 0.7) < 0.01 and fit["groups"] == 3
    one = multistep_rate_report.grouped_slope([0.0, 1.0], [0.0, 2.0], [0, 0])       # no degree of freedom left
    assert one["slope"] == pytest.approx(2.0) and np.isnan(one["lo"])
    assert np.isnan(multistep_rate_report.grouped_slope([0.0, 1.0], [0.0, 2.0], [0, 1])["slope"])


# --- multistep_cost ---------------------------------------------------------------------
def test_the_cost_table_counts_calls_N_times_B_per_iteration_for_each_algorithm(cost_table):
    s = multistep_cost.SCALES["tiny"]
    assert len(cost_table) == len(multistep_cost.ALGORITHMS) * len(s.inner_steps) * s.repeats
    per_task = {"maml": lambda n: 2 * n + 1, "fomaml": lambda n: n + 1, "hfmaml": lambda n: 3 * n + 1}
    for r in cost_table.drop_duplicates(["algorithm", "N"]).itertuples():
        assert r.calls_per_task == per_task[r.algorithm](r.N) == ALGORITHMS[r.algorithm].calls(r.N)
        assert r.calls_counted == r.calls_expected == r.calls_per_task * r.B
        assert r.hvp_counted == (r.N * r.B if r.algorithm == "maml" else 0)
        assert r.step_calls_counted == r.step_calls_expected == r.B_prime
    assert (cost_table.wall_ms > 0).all()


def test_fo_and_hf_maml_with_several_inner_steps_say_they_have_no_theorem(cost_table):
    t = cost_table.drop_duplicates(["algorithm", "N"])
    other = t[(t.algorithm != "maml") & (t.N > 1)]
    assert (other.theorem == "none").all() and other.step_note.str.startswith("no theorem for N > 1").all()
    assert (other.conditions_broken == "theorem").all()
    maml = t[t.algorithm == "maml"]
    assert (maml.conditions_broken == "none").all()


def test_the_cost_plot_is_drawn_and_the_counts_match_and_wall_time_is_reported(cost_table, tmp_path):
    paths = multistep_cost.plot(cost_table, tmp_path)
    assert sorted(p.name for p in paths) == ["multistep_cost.png", "multistep_cost.svg"]
    checks = multistep_cost.claims(cost_table)
    assert all(set(claim_cells(c)) == KEYS for c in checks)
    matches = [c for c in checks if c.kind == "match"]
    assert len(matches) == len(multistep_cost.ALGORITHMS) + 1 and all(c.verdict == "holds" for c in matches)
    reports = [c for c in checks if c.kind == "report"]
    assert len(reports) == len(multistep_cost.ALGORITHMS) and all(c.verdict == REPORTED for c in reports)


def test_a_count_one_call_off_in_the_table_violates_the_match(cost_table):
    t = cost_table.copy()
    at = (t.algorithm == "hfmaml") & (t.N == t.N.max())
    t.loc[at, "calls_counted"] += 1
    [c] = claims_with(multistep_cost.claims(t), "HF-MAML: gradient-oracle calls")
    assert c.verdict == "violated"


def _cost_cells(algorithm: str) -> list[dict]:
    return [c for c in multistep_cost.cells("tiny") if c["algorithm"] == algorithm and c["N"] <= 2]


def test_a_call_count_off_by_one_per_inner_step_is_caught_by_the_match(monkeypatch):
    # Algorithm.calls claims 3 calls per further inner step instead of MAML's 2
    monkeypatch.setattr(ALGORITHMS["maml"], "calls_per_inner_step", 3)
    t = pd.concat([multistep_cost.compute(c) for c in _cost_cells("maml")], ignore_index=True)
    [c] = claims_with(multistep_cost.claims(t), "MAML: gradient-oracle calls")
    assert c.verdict == "violated" and c.measured == t.B.iloc[0]          # one call per task at N = 2


def test_an_estimator_with_an_extra_hessian_vector_product_per_inner_step_is_caught(monkeypatch):
    maml = ALGORITHMS["maml"]
    plain = maml.task_directions

    def extra(family, w, tasks, hyper, rho, rng):
        for _ in range(hyper.inner_steps - 1):          # one more product per further inner step
            family.batch_hvp(w[:, None, :], tasks, np.zeros(w.shape[:1] + (1, family.d)),
                             family.draw_batch(tasks, 1, rng, need="hess"))
        return plain(family, w, tasks, hyper, rho, rng)

    monkeypatch.setattr(maml, "task_directions", extra)
    t = pd.concat([multistep_cost.compute(c) for c in _cost_cells("maml")], ignore_index=True)
    assert not (t.calls_counted == t.calls_expected).all()
    assert claims_with(multistep_cost.claims(t), "MAML: gradient-oracle calls")[0].verdict == "violated"


def test_the_counting_family_counts_seed_task_pairs_and_leaves_the_oracles_unchanged():
    fam = multistep_cost.CountingFamily(**multistep_cost.FAMILY_PARAMS)
    plain = make_family(multistep_cost.FAMILY, **multistep_cost.FAMILY_PARAMS)
    rng = np.random.default_rng(0)
    tasks = rng.integers(0, fam.M, (3, 4))
    w = rng.standard_normal((3, 1, fam.d))
    batch = fam.draw_batch(tasks, 2, rng)
    np.testing.assert_array_equal(fam.batch_grad(w, tasks, batch), plain.batch_grad(w, tasks, batch))
    v = rng.standard_normal((3, 4, fam.d))
    np.testing.assert_array_equal(fam.batch_hvp(w, tasks, v, batch), plain.batch_hvp(w, tasks, v, batch))
    fam.sample_grad(w, tasks[:, :2], 3, rng)
    assert dict(fam.counts()) == {"grad": 12, "hvp": 12, "step": 6}
    fam.reset_counts()
    assert not fam.counts()


@pytest.mark.parametrize("module", [multistep_rate, multistep_cost])
def test_the_cells_of_every_scale_are_json_able_and_the_tiny_ones_are_few(module):
    import json
    for scale in ("tiny", "quick", "default", "full"):
        cells = module.cells(scale)
        assert cells and json.loads(json.dumps(cells)) == cells
    assert len(module.cells("tiny")) <= len(module.cells("default")) <= len(module.cells("full"))


def test_a_cost_cell_computed_twice_differs_in_its_wall_time_only():
    cell = next(c for c in multistep_cost.cells("tiny") if c["algorithm"] == "hfmaml" and c["N"] == 2)
    a, b = (multistep_cost.compute(cell).drop(columns="wall_ms") for _ in range(2))
    pd.testing.assert_frame_equal(a, b)
