"""The two rate experiments at tiny scale: the hard-chain measurement lies
between its bounds, the benign T(ε) is far below (14) and grows far slower
than 1/ε²."""
import numpy as np
import pytest

from tests.experiment_tables import tiny_table
from mamlcheck.experiments import rate_benign, rate_hard_chain
from mamlcheck.experiments.analysis import fit_line
from mamlcheck.experiments.rate_hard_chain import eps_for_length
from mamlcheck.problems.hard_chain import HardChain
from mamlcheck.theory import bounds

KEYS = {"claim", "measured", "bound", "verdict"}


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
    rows = [r for r in rate_hard_chain.claims(chain_table) if r["claim"].startswith("stochastic MAML")]
    assert rows and rows[0]["verdict"] == "equal"


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
    rows = module.claims(table)
    assert rows and all(set(r) == KEYS for r in rows)
    assert not any(r["verdict"] in ("violated", "differs") for r in rows)
