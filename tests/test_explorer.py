"""The interactive explorer of the proof (docs/explorer.py) runs headless: its
cells at the default configuration, inside the MAML theorem, and at one that
breaks a condition, which its conditions table must mark."""
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("marimo", reason="the explorer needs marimo (the `explore` extra: pip install -e '.[explore]')")

EXPLORER = Path(__file__).resolve().parents[1] / "docs" / "explorer.py"
SEVEN_STEPS = ["(7)", "(8)", "(9)", "(10)", "(11)", "(13)", "(14)"]
BROKEN = {"family": "cosine-quadratic", "alpha_L": 1.0, "step": "adaptive", "B": 20, "D_in": 10, "D_o": 10,
          "D_h": None, "eps": None}


@pytest.fixture(scope="module")
def explorer():
    """The notebook imported from its path (``docs`` is not a package)."""
    spec = importlib.util.spec_from_file_location("mamlcheck_explorer", EXPLORER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def default_run(explorer):
    return explorer.app.run()


@pytest.fixture(scope="module")
def broken_run(explorer):
    return explorer.app.run(defs={"settings": BROKEN})


def _holds(result) -> dict[str, bool]:
    return {n: bool(h) for n, h in zip(result.conditions.name, result.conditions.holds)}


def test_every_cell_runs_headless_at_the_default_configuration(default_run):
    outputs, defs = default_run
    assert defs["error"] is None
    assert any(o is not None for o in outputs)
    assert defs["result"].figure.axes


def test_the_default_configuration_is_inside_the_theorem(default_run):
    result = default_run[1]["result"]
    holds = _holds(result)
    assert {"alpha_range", "B_min", "D_h_min", "step_rule", "eps_above_floor"} <= set(holds)
    assert all(holds.values()), [n for n, ok in holds.items() if not ok]
    assert (result.summary.guarantee == "guaranteed").all()


def test_the_default_summary_has_the_seven_steps_each_with_rows_that_hold(default_run):
    s = default_run[1]["result"].summary
    assert s.step.tolist() == SEVEN_STEPS
    assert (s.rows > 0).all() and (s.held == s.rows).all()
    assert s.measured.notna().all() and s.bound.notna().all()


def test_each_step_carries_the_walkthroughs_explanation_and_numbers(default_run):
    steps = default_run[1]["result"].steps
    assert list(steps) == SEVEN_STEPS
    for step, text in steps.items():
        assert text["why"] and text["numbers"], step
    assert "biased" in steps["(7)"]["why"]


def test_alpha_of_one_over_L_runs_every_cell_and_the_table_marks_alpha_range(broken_run):
    outputs, defs = broken_run
    result = defs["result"]
    holds = _holds(result)
    assert holds["alpha_range"] is False
    assert holds["alpha_smoothness"] is True          # α = 1/L is on the smoothness lemma's boundary
    assert result.summary.step.tolist() == SEVEN_STEPS
    void = dict(zip(result.summary.step, result.summary.guarantee.str.contains("alpha_range")))
    # (9), (10) rest only on α ≤ 1/L (the smoothness lemma), which still holds
    assert void == {s: s not in ("(9)", "(10)") for s in SEVEN_STEPS}


def test_the_plain_function_answers_a_constant_step_with_the_broken_step_rule(explorer):
    result = explorer.explore(step="constant", beta_L=0.5)
    holds = _holds(result)
    assert holds["step_rule"] is False and holds["alpha_range"] is True
    assert result.summary.step.tolist() == SEVEN_STEPS
    assert "step=" in result.code and "constant" in result.code


def test_an_invalid_target_is_reported_in_the_app_not_raised(explorer):
    outputs, defs = explorer.app.run(defs={"settings": {**BROKEN, "alpha_L": 1 / 6, "eps": -1.0}})
    assert defs["result"] is None and "eps" in defs["error"]
