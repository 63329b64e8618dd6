"""The sinusoid-MLP experiment: the ball condition it reports is the runner's,
its checks of the ball constants can fail, and (14) is checked only inside the
theorem and the ball."""
import json

import numpy as np
import pandas as pd

from mamlcheck import run
from mamlcheck.experiments import mlp_sinusoid as ex
from mamlcheck.problems import make_family

from tests.conftest import TEST_ROOT


def _cell(config="practice", radius=0.05, budget=15):
    c = next(c for c in ex.cells("tiny") if c["config"] == config and c["part"] == "runs")
    return {**c, "family_params": {**c["family_params"], "radius": radius}, "budget": budget,
            "root": TEST_ROOT % 2 ** 31}


def test_the_ball_verdict_is_the_runners_on_the_same_run():
    """A ball too small for the run: the experiment's exits per seed equal those
    of ``run(...).ball_condition()`` on the same configuration and streams."""
    cell = _cell()
    table = ex.compute(cell)
    fam = make_family(cell["family"], **cell["family_params"])
    centre, _ = fam.certificate_ball()
    res = run(fam, ex._hyper("practice", "maml", fam.constants().L.value), [1e-9], seeds=cell["seeds"], w0=centre,
              budget=cell["budget"], root=cell["root"], stop_at_eps=False)
    cond = res.ball_condition()
    assert not cond.holds
    mine = ex._ball(table)
    assert mine.holds == cond.holds and mine.given == cond.given
    claim = next(c for c in ex.claims(table) if "stays in the certificate's ball" in c.statement)
    assert "BALL LEFT" in claim.context["note"]


def test_the_local_constant_checks_fail_when_the_certificate_is_beaten():
    table = ex.compute(_cell(radius=1.0))
    ok = {c.statement: c for c in ex.claims(table)}
    doctored = table.assign(local_L=table.local_L * (1.01 * table.L / table.local_L.max()))
    bad = {c.statement: c for c in ex.claims(doctored)}
    key = next(s for s in ok if "≤ certified L" in s)
    assert ok[key].verdict == "holds" and bad[key].verdict == "violated"


def test_iterations_are_checked_against_14_only_inside_the_theorem_and_the_ball():
    table = pd.concat([ex.compute(_cell("theorem", radius=1.0, budget=10)), ex.compute(_cell("practice", radius=0.05))])
    for c in ex.claims(table):
        if "against (14)" in c.statement:
            assert (c.kind == "upper") == (c.context["config"] == "theorem" and np.isfinite(c.measured)), c.statement
    assert json.loads(table.eps_grid.iloc[0]) == list(ex.SCALES["tiny"].eps)


def test_the_ledger_part_reports_each_step_of_the_proof_and_the_ball():
    cell = next(c for c in ex.cells("tiny") if c["part"] == "ledger")
    led = ex.compute({**cell, "root": TEST_ROOT % 2 ** 31})
    assert {"(7)", "(8)", "(9)", "(10)", "(14)"} <= set(led.step)
    checks = ex.claims(led)
    assert checks and all("proof ledger" in c.statement for c in checks)
    assert all(("ball held" in c.context["note"]) == bool(led.ball_holds.iloc[0]) for c in checks)
    doctored = led.assign(violated=np.where(led.step == "(9)", 1, led.violated))
    assert [c.verdict for c in ex.claims(doctored) if c.context["step"] == "(9)"] == ["violated"]
