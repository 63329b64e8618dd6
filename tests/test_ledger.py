"""The proof ledger: an exact run inside the theorem holds at every step, an
understated L breaks (9) and is named as the cause, the walkthrough carries
the printed numbers, and the moment bounds (7), (8) hold on a stochastic run.

False-alarm rate: every interval is at confidence 1 − δ, δ = 1e-6; the
stochastic test below makes 2 × 3 interval decisions, so it fails by chance
with probability below 1e-5 (and its draws are seeded, so it is deterministic).
"""
import re

import numpy as np
import pandas as pd
import pytest

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import F
from mamlcheck.experiments import cli, proof_cmd
from mamlcheck.problems import make_family
from mamlcheck.experiments import ledger
from mamlcheck import literature as lit

# Weak ripple (γ = 0.05): F's curvature along the gradient is then close to that
# of A, so a local constant built from L/10 is too small early in the run.
PARAMS = dict(gamma=0.05, spread=0.05, noise_grad=0.05, noise_amp=0.05)


@pytest.fixture(scope="module")
def family():
    return make_family("cosine-quadratic", **PARAMS)


def _exact(family, alpha=None, **kw):
    alpha = alpha or lit.ALPHA_MAX_LD["maml"] / family.constants().L.value
    return ledger.evaluate(family, Hyper("exact", alpha=alpha), eps=0.5, seeds=2, budget=400,
                           w0=np.ones(family.d), points=3, **kw)


@pytest.fixture(scope="module")
def exact_ledger(family):
    return _exact(family)


def test_exact_run_holds_everywhere(exact_ledger):
    led = exact_ledger
    assert led.broken == []
    nine = led.rows[led.rows.step == "(9)"]
    assert len(nine) == 2 * led.config["iterations"] > 0
    # (9) is a theorem, not a statistic: F(w_{k+1}) ≤ rhs exactly, up to the rounding
    # of F in float64 (a sum of O(d) terms of size ≲ max(1, |F|), error ~ d·1e-16 of
    # that; 1e-9 is a margin of 10^5 over it and far below the 1e-3 violations of
    # the negative control).
    scale = np.maximum(1.0, np.abs(nine.left.to_numpy()))
    assert np.all(nine.left - nine.right <= 1e-9 * scale)
    assert nine.holds.all()
    assert led.all_held
    s = led.summary.set_index("step")
    assert (s.rows > 0).all() and (s.fraction_held == 1).all() and (s.worst_slack >= 1).all()
    assert "every step held at every row" in ledger.format_summary(led)


def test_understated_L_breaks_the_descent_lemma_and_names_A2(family):
    L = family.constants().L.value
    led = _exact(family, constants={"L": L / 10})
    assert led.broken == ["A2_L"]
    nine = led.rows[led.rows.step == "(9)"]
    bad = nine[nine.verdict == "violated"]
    assert len(bad) > 0 and (bad.slack < 1).all()
    assert bad.cause.str.contains("A2_L").all()
    assert not led.rows.cause.str.contains(ledger.VIOLATED_MARK, regex=False).any()
    text = ledger.format_summary(led)
    assert "A2_L" in text and "!!!" not in text


def test_a_wrong_certificate_is_reported_loudly(family, monkeypatch):
    """If the family itself certified the understated L, every condition would
    hold and the failure of (9) must carry the mark."""
    L = family.constants().L.value
    wrong = family.constants().replace(L=L / 10)
    certifies_wrongly = type("CertifiesWrongly", (type(family),), {"constants": lambda self: wrong})
    family = certifies_wrongly(**PARAMS)
    led = _exact(family, alpha=lit.ALPHA_MAX_LD["maml"] / L)    # the same run as above
    assert led.broken == []
    assert len(led.violated_under_conditions()) > 0
    assert (led.violated_under_conditions().cause == ledger.VIOLATED_MARK).all()
    assert "!!! (9): " + ledger.VIOLATED_MARK in ledger.format_summary(led)


def test_moment_bounds_hold_on_a_stochastic_run():
    spec = proof_cmd.default_spec("cosine-quadratic", "tiny")
    fam, hyper, w0, eps = spec.build()
    led = ledger.evaluate(fam, hyper, eps=eps, seeds=4, budget=60, w0=w0, points=3, draws=300,
                          reps=100, cond_reps=2)
    assert led.broken == []
    moments = led.rows[led.rows.step.isin(["(7)", "(8)"])]
    assert len(moments) == 6
    assert moments.holds.all(), moments[["step", "k", "left_hi", "right"]]
    # the interval is a real one: it has width, and the estimate lies inside it
    assert (moments.left_hi > moments.left_lo).all()
    assert ((moments.left_lo <= moments.left) & (moments.left <= moments.left_hi)).all()


_NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[+-]\d+)?$|^inf$")


def test_walkthrough_carries_the_printed_numbers(tmp_path, capsys):
    args = ["proof", "--seeds", "2", "--budget", "40", "--points", "2", "--draws", "50", "--reps", "50",
            "--cond-reps", "2", "--out-dir", str(tmp_path)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    md = (tmp_path / "proof_walkthrough.md").read_text()
    assert (tmp_path / "proof_ledger.png").exists() and "(proof_ledger.png)" in md
    for step in ("(7)", "(8)", "(9)", "(10)", "(11)", "(12)/(13)", "(14)"):
        assert f"## {step}" in md
    assert not re.search(r"\bnan\b|\bNone\b|\{[A-Za-z_]+\}|TODO|XXX", md)   # no unformatted fields
    summary, worst_rows = printed.split("worst row of each step")
    header = next(line for line in summary.splitlines() if line.startswith("step "))
    col = header.index("worst slack")
    rows = lambda text: [line for line in text.splitlines() if re.match(r"\(\d+\)\s", line)]  # noqa: E731
    assert len(rows(summary)) == len(rows(worst_rows)) == len(ledger.STEPS)
    for line in rows(summary):
        step = line.split()[0]
        section = md.split(f"## {step}" if step != "(13)" else "## (12)/(13)")[1].split("\n## ")[0]
        worst = line[col:].split()[0]
        assert f"worst slack {worst}," in section, (step, worst)
    for line in rows(summary) + rows(worst_rows):
        numbers = [tok for tok in line.split() if _NUMBER.match(tok)]
        assert numbers, line
        for tok in numbers:
            assert tok in md, (line, tok)
    # the run itself is rebuilt from its command line, with the same numbers
    command = md.split("```\n")[1].splitlines()[0]
    assert command.startswith("python -m mamlcheck proof") and "--seeds 2" in command


@pytest.mark.parametrize("argv", [["--eps", "-1"], ["--param", "nonsense=1"], ["--param", "spread"],
                                  ["--constant", "kappa=1"], ["--seeds", "0"], ["--draws", "1"]])
def test_bad_input_exits_2(argv, tmp_path, capsys):
    assert cli.main(["proof", *argv, "--budget", "2", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err


def test_the_registered_proof_experiment_writes_the_walkthrough_and_links_it(tmp_path, monkeypatch):
    from mamlcheck.experiments import proof_ledger
    from mamlcheck.experiments.run_all import run_experiment
    monkeypatch.setitem(proof_cmd.SIZES, "tiny", dict(seeds=2, points=2, draws=50, reps=50, cond_reps=1))
    _, figs, section, _ = run_experiment(proof_ledger, "tiny", tmp_path / "results", tmp_path / "figures", workers=1,
                                      progress=False)
    assert (tmp_path / "figures" / "proof_walkthrough.md").exists()
    assert (tmp_path / "results" / "proof_ledger.csv").exists()
    assert "(proof_walkthrough.md)" in section and "(proof_ledger.png)" in section
    assert "`../results/proof_ledger.csv`" in section and "(../results/" not in section   # named, not linked: not committed


def test_the_ledger_survives_its_table_and_a_csv_round_trip(exact_ledger):
    """The proof experiment's cell is ``Ledger.to_table``; the walkthrough and the
    summary must read the same from the table written to CSV and read back."""
    import io
    back = ledger.Ledger.from_table(pd.read_csv(io.StringIO(exact_ledger.to_table().to_csv(index=False))))
    assert back.rows.equals(exact_ledger.rows) and back.summary.equals(exact_ledger.summary)
    assert back.config == exact_ledger.config and back.conditions == exact_ledger.conditions
    assert proof_cmd.report_text(back) == proof_cmd.report_text(exact_ledger)


def test_F_of_the_trajectory_start_matches_the_ledger(exact_ledger, family):
    alpha = exact_ledger.config["alpha"]
    assert exact_ledger.config["F_w0"] == pytest.approx(float(F(family, np.ones(family.d), alpha)))
    assert exact_ledger.config["Delta"] == pytest.approx(exact_ledger.config["F_w0"] - family.inf_f_lower())
