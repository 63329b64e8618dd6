"""The two rate experiments at tiny scale: the hard-chain measurement lies
between its bounds, the benign T(ε) is far below (14) and grows far slower
than 1/ε²."""
import numpy as np
import pandas as pd
import pytest

from tests.experiment_tables import KEYS, claims_with, tiny_table
from mamlcheck.experiments import rate_benign, rate_hard_chain
from mamlcheck.experiments.analysis import fit_line
from mamlcheck.experiments.rate_hard_chain import eps_for_length
from mamlcheck.experiments.run_all import claim_cells
from mamlcheck.problems.hard_chain import HardChain
from mamlcheck.theory import bounds
from mamlcheck.theory.checks import Check

@pytest.fixture(scope="module")
def chain_table():
    return tiny_table(rate_hard_chain)


@pytest.fixture(scope="module")
def benign_table():
    return tiny_table(rate_benign)


# --- hard chain -----------------------------------------------------------------
def test_hard_chain_measurement_between_bounds(chain_table):
    assert chain_table.first_k.notna().all()
    k = chain_table.first_k.astype(int)
    assert (chain_table.lower <= k).all() and (k <= chain_table.upper).all()
    assert (chain_table.beta_L_max <= 1.0).all()          # the constant step stayed ≤ 1/L(w_k)
    # longer chains (smaller ε) take more iterations
    exact = chain_table[chain_table.algorithm == "exact"].sort_values("eps")
    assert exact.first_k.is_monotonic_decreasing and exact.first_k.nunique() == len(exact)


def test_stochastic_maml_retraces_exact_on_the_chain(chain_table):
    [claim] = claims_with(rate_hard_chain.claims(chain_table), "retraces exact MAML")
    assert claim.verdict == "holds" and claim.measured == 0


def test_stochastic_maml_off_exact_by_one_iteration_does_not_retrace(chain_table):
    t = chain_table.copy()
    t.loc[t.algorithm == "maml", "first_k"] += 1
    [claim] = claims_with(rate_hard_chain.claims(t), "retraces exact MAML")
    assert claim.verdict == "violated"


def test_a_run_pushed_above_14_or_below_the_lower_bound_violates_its_claim(chain_table):
    above, below = chain_table.copy(), chain_table.copy()
    above.loc[0, "first_k"] = int(above.upper[0]) + 1
    below.loc[0, "lower"] = int(below.first_k[0]) + 1
    for t in (above, below):
        runs = claims_with(rate_hard_chain.claims(t), "≤ measured ≤ (14)")
        assert [c.verdict for c in runs] == ["violated", "holds", "holds"]


def test_a_run_not_reached_is_violated_only_once_its_budget_exceeds_14(chain_table):
    short, long = chain_table.copy(), chain_table.copy()
    short.loc[0, "first_k"] = long.loc[0, "first_k"] = pd.NA
    short.loc[0, "budget"] = int(short.upper[0]) - 1          # T(ε) > budget: (14) may still hold
    long.loc[0, "budget"] = int(long.upper[0]) + 1            # T(ε) > budget > (14)
    first = lambda t: claims_with(rate_hard_chain.claims(t), "≤ measured ≤ (14)")[0]
    assert first(short).verdict == "inconclusive" and first(long).verdict == "violated"
    assert "not reached within" in first(short).context["note"]


def test_a_constant_step_above_1_over_L_violates_its_certificate(chain_table):
    t = chain_table.assign(beta_L_max=chain_table.beta_L_max.where(chain_table.index > 0, 1.2))
    [claim] = claims_with(rate_hard_chain.claims(t), "constant β ≤ 1/L(w_k)")
    assert claim.verdict == "violated"


def _chain_series(k_of_eps) -> pd.DataFrame:
    """Five reached runs of one series with ``first_k = k_of_eps(ε)``."""
    eps = np.geomspace(1e-2, 1e-3, 5)
    return pd.DataFrame({"eps": eps, "first_k": k_of_eps(eps), "T": np.arange(1, 6) * 10})


def test_a_slope_of_minus_one_does_not_match_the_rate_and_minus_two_does():
    wobble = np.array([1.0, 1.03, 0.98, 1.02, 0.99])              # off the line, so the fit has an interval
    steep = rate_hard_chain.slope_check(_chain_series(lambda e: 1e-2 * e ** -2.0 * wobble), "s")
    flat = rate_hard_chain.slope_check(_chain_series(lambda e: 1e1 * e ** -1.0 * wobble), "s")
    assert steep.verdict == "holds"
    assert flat.verdict == "violated" and flat.context["note"].startswith("shallower than −2")


def test_local_slopes_that_flatten_do_not_steepen_toward_minus_two():
    toward = rate_hard_chain.steepening_check(_chain_series(lambda e: 1 / e + 1e-2 / e ** 2), "s")
    away = rate_hard_chain.steepening_check(_chain_series(lambda e: 1e-2 / e ** 2 + 1e-3 / e ** 3), "s")
    assert toward.verdict == "holds" and away.verdict == "violated"


@pytest.mark.parametrize("T", [1, 2, 7, 40])
def test_eps_for_length_gives_that_chain(T):
    eps = eps_for_length(T)
    alpha = rate_hard_chain.ALPHA_L / rate_hard_chain.L_CHAIN
    fam = HardChain(eps=bounds.chain_eps_prime(eps=eps, alpha=alpha, L=1.0), Delta=rate_hard_chain.DELTA, L=1.0)
    assert fam.T == T


def test_fit_line_recovers_a_slope_with_its_interval():
    x = np.linspace(0, 1, 8)
    fit = fit_line(x, 3.0 - 2.0 * x + 1e-3 * np.sin(40 * x))
    assert fit["lo"] <= fit["slope"] <= fit["hi"] and abs(fit["slope"] + 2.0) < 0.01
    assert np.isnan(fit_line([0.0, 1.0], [1.0, 2.0])["lo"])


# --- benign families -------------------------------------------------------------
def test_benign_rate_far_below_14_and_shallow(benign_table):
    avg = benign_table[benign_table.kind == "seed average"]
    assert avg.first_k.notna().all() and (avg.first_k > 0).all()
    assert (avg.first_k.astype(float) * 1e3 <= avg.upper).all()     # (14) is loose by > 1000×
    for fam, sub in avg.groupby("family"):
        fit = fit_line(np.log(sub.eps), np.log(sub.first_k.astype(float)))
        assert fit["slope"] > -1.0, fam
        assert sub.sort_values("eps").first_k.is_monotonic_decreasing


# --- plots and claims ------------------------------------------------------------
@pytest.mark.parametrize("module, fixture", [(rate_hard_chain, "chain_table"), (rate_benign, "benign_table")])
def test_plot_and_claims(module, fixture, request, tmp_path):
    table = request.getfixturevalue(fixture)
    paths = module.plot(table, tmp_path)
    assert {p.suffix for p in paths} == {".png", ".svg"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    checks = module.claims(table)
    assert checks and all(isinstance(c, Check) and set(claim_cells(c)) == KEYS for c in checks)
    assert not any(c.verdict == "violated" for c in checks)


def test_14_pushed_below_the_measurement_at_one_eps_violates_the_benign_claim(benign_table):
    t = benign_table.copy()
    at = (t.kind == "seed average") & (t.family == "cosine-quadratic") & (t.eps == t.eps.min())
    t.loc[at, "upper"] = 0.5 * t.loc[at, "first_k"].astype(float)
    [claim] = claims_with(rate_benign.claims(t), "cosine-quadratic: measured ≤ (14)")
    assert claim.verdict == "violated"


def test_an_eps_not_reached_is_violated_only_once_the_budget_exceeds_14(benign_table):
    t = benign_table.copy()
    at = (t.kind == "seed average") & (t.family == "cosine-quadratic") & (t.eps == t.eps.min())
    t.loc[at, "first_k"] = pd.NA
    text = "cosine-quadratic: measured ≤ (14)"
    assert claims_with(rate_benign.claims(t), text)[0].verdict == "inconclusive"      # budget ≪ (14)
    t.loc[at, "upper"] = 0.5 * t.loc[at, "budget"]
    assert claims_with(rate_benign.claims(t), text)[0].verdict == "violated"
