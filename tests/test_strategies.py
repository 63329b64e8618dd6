"""The strategies of ``tests/strategies.py`` give what they promise: every
registered family over its ranges, points near, far and stationary, and
hyperparameters that satisfy a theorem's conditions or break exactly one."""
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings, strategies as st

from mamlcheck.algorithms.hyper import ALGORITHMS, Hyper
from mamlcheck.algorithms.objective import grad_F, local_L
from mamlcheck.experiments import slack, slack_draws
from mamlcheck.problems import FAMILIES, family_parameters, make_family
from tests import strategies as S
from mamlcheck.theory.conditions import broken, check_conditions

FIND = settings(database=None, derandomize=True, max_examples=200, phases=[Phase.generate])  # first hit, unshrunk


def test_every_registered_family_has_a_sampler_or_a_reason_not_to():
    assert set(FAMILIES) <= set(slack_draws.FAMILY_SPECS) | set(slack_draws.NOT_DRAWN), \
        "add a parameter sampler to experiments/slack_draws.py (or a reason to NOT_DRAWN)"
    assert not set(slack_draws.FAMILY_SPECS) & set(slack_draws.NOT_DRAWN)
    assert all(len(reason) > 20 for reason in slack_draws.NOT_DRAWN.values())
    assert S.family_names() == [n for n in slack_draws.FAMILY_SPECS if n in FAMILIES]


@given(S.instances())
def test_instances_are_built_from_their_parameters(inst):
    name, params, fam = inst
    assert set(params) <= set(family_parameters(name))
    assert fam.name == name and fam.M == params["M"] and 1 <= fam.d <= 5 and fam.M <= 4
    assert fam.p.shape == (fam.M,) and np.isclose(fam.p.sum(), 1.0)
    if params["p"] is not None:
        np.testing.assert_allclose(fam.p, params["p"])
    c = fam.constants().values()
    assert c["L"] > 0 and all(np.isfinite(v) and v >= 0 for v in c.values())


@pytest.mark.parametrize("name", S.family_names())
def test_each_family_is_drawn_over_its_ranges(name):
    """Each family's sampler reaches its small and large settings (number of
    tasks, noise, non-uniform p)."""
    got = find(S.instances([name]), lambda t: not np.allclose(t[2].p, 1 / t[2].M), settings=FIND)
    assert got[0] == name and not np.allclose(got[2].p, 1 / got[2].M)
    if name != "hard-chain":
        noisy = find(S.families([name]), lambda f: f.constants().sigma_tilde.value > 1.0, settings=FIND)
        assert noisy.constants().sigma_tilde.value > 1.0


@given(st.data())
def test_points_have_the_family_dimension(data):
    fam = data.draw(S.families())
    w = data.draw(S.points(fam))
    assert w.shape == (fam.d,) and np.all(np.isfinite(w))
    w, u = data.draw(S.pairs(fam))
    assert u.shape == w.shape and 0 < np.linalg.norm(u - w) < np.inf


def test_points_reach_far_from_the_tasks_where_L_w_is_large():
    fam = make_family("cosine-quadratic", d=2, M=3, gamma=0.5, omega=2.0)
    L, alpha = fam.constants().L.value, 1 / (6 * fam.constants().L.value)
    w = find(S.points(fam), lambda w: local_L(fam, w, alpha) > 10 * 4 * L, settings=FIND)
    assert local_L(fam, w, alpha) > 40 * L


@pytest.mark.parametrize("name", ["cosine-quadratic", "robust-regression"])
def test_points_include_stationary_points_of_F(name):
    fam = find(S.families([name]), lambda f: f.M >= 2, settings=FIND)
    alpha = 1 / (6 * fam.constants().L.value)
    w = find(S.points(fam, alpha), lambda w: np.linalg.norm(grad_F(fam, w, alpha)) < 1e-9, settings=FIND)
    assert np.linalg.norm(grad_F(fam, w, alpha)) < 1e-9


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(data=st.data())
def test_hypers_satisfy_every_condition(algorithm, data):
    c = data.draw(S.constants())
    h = data.draw(S.hypers(c, algorithm))
    assert h.algorithm == algorithm
    assert broken(check_conditions(c, h)) == []


@given(S.cases("maml"))
def test_cases_satisfy_the_maml_theorem(case):
    assert broken(check_conditions(case.family.constants(), case.hyper)) == []
    assert case.w.shape == (case.family.d,) and case.name in repr(case)


_ONES = dict(L=1.0, rho=1.0, sigma=1.0, sigma_tilde=1.0, sigma_H=1.0)
COMBOS = [(alg, n) for alg in ALGORITHMS for n in slack_draws.BREAKABLE
          if n in {c.name for c in check_conditions(_ONES, Hyper(alg))}]


@pytest.mark.parametrize("algorithm,name", COMBOS)
@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_hypers_break_exactly_the_named_condition(algorithm, name, data):
    c = data.draw(S.constants().filter(lambda c: name in S.breakable(c, algorithm)))
    h = data.draw(S.hypers(c, algorithm, name))
    assert broken(check_conditions(c, h)) == [name]


def test_breakable_names_the_conditions_that_depend_on_alpha():
    c = dict(L=1.0, rho=0.0, sigma=1.0, sigma_tilde=1.0, sigma_H=1.0)
    assert set(S.breakable(c, "maml")) == {"alpha_range", "B_min", "step_rule"}      # D_h_min needs 2α²σ_H² > 1
    assert "D_h_min" in S.breakable(dict(c, sigma_H=100.0), "maml")
    assert "B_min" not in S.breakable(c, "fomaml")                                   # FO-MAML states no B ≥ 20
    with pytest.raises(ValueError, match="alpha_smoothness"):
        slack_draws.draw_hyper(slack_draws.NumpySource(0), c, "maml", "alpha_smoothness")
    with pytest.raises(slack_draws.Rejected):           # hypothesis rejects such an example
        slack_draws.draw_hyper(slack_draws.NumpySource(0), c, "maml", "D_h_min")


def test_numpy_draws_are_deterministic():
    a, b = slack.draw_report_case(7), slack.draw_report_case(7)
    assert repr(a) == repr(b) and np.array_equal(a.w, b.w) and a.hyper == b.hyper
