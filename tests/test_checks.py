"""The one ``Check`` shape: each kind's verdict at the edges of its interval, and
how the report prints a check (verdict word, then the experiment's note)."""
import math

import numpy as np
import pytest

from mamlcheck.experiments.run_all import claim_cells, claims_markdown
from mamlcheck.theory.checks import (CHECK_KINDS, KINDS, REPORTED, Check, match_verdict, slack, verdict,
                                     within_verdict)


def _check(kind="upper", measured=1.0, bound=2.0, **kw):
    return Check("x ≤ b", "(0)", measured, bound, kind, **kw)


# --- upper and lower ------------------------------------------------------------
def test_an_upper_check_whose_interval_lies_below_the_bound_holds():
    assert _check(lo=0.5, hi=2.0).verdict == "holds"


def test_an_upper_check_with_lo_at_most_the_bound_below_hi_is_inconclusive():
    assert _check(measured=1.9, lo=1.5, hi=2.5).verdict == "inconclusive"
    assert _check(measured=2.0, lo=2.0, hi=2.5).verdict == "inconclusive"     # lo = bound < hi


def test_an_upper_check_whose_whole_interval_exceeds_the_bound_is_violated():
    assert _check(measured=3.0, lo=2.5, hi=3.5).verdict == "violated"
    assert _check(measured=3.0).verdict == "violated"                         # exact value


def test_a_lower_check_holds_above_its_bound_and_is_violated_below_it():
    assert _check("lower", measured=3.0, lo=2.5, hi=3.5).verdict == "holds"
    assert _check("lower", measured=1.0, lo=0.5, hi=1.5).verdict == "violated"
    assert _check("lower", measured=2.0, lo=1.5, hi=2.5).verdict == "inconclusive"


def test_the_tolerance_absorbs_rounding_on_either_side():
    assert _check(measured=2.0 + 1e-9, tol=1e-8).verdict == "holds"
    assert _check("lower", measured=2.0 - 1e-9, tol=1e-8).verdict == "holds"
    assert _check(measured=2.0 + 1e-7, tol=1e-8).verdict == "violated"


def test_a_nan_end_makes_any_inequality_inconclusive():
    assert _check(measured=math.nan).verdict == "inconclusive"
    assert _check("lower", bound=math.nan).verdict == "inconclusive"


def test_upper_and_lower_keep_their_slack():
    assert _check(measured=1.0, hi=1.0).slack == pytest.approx(2.0)
    assert _check("lower", measured=4.0).slack == pytest.approx(2.0)


# --- match ------------------------------------------------------------------------
def test_a_match_holds_when_its_interval_contains_the_bound():
    assert _check("match", measured=0.48, bound=0.5, lo=0.45, hi=0.51).verdict == "holds"


def test_a_match_whose_interval_excludes_the_bound_is_violated():
    assert _check("match", measured=0.67, bound=0.5, lo=0.63, hi=0.71).verdict == "violated"
    assert _check("match", measured=0.0, bound=0.5, lo=-0.01, hi=0.01).verdict == "violated"


def test_a_match_without_an_interval_is_inconclusive():
    assert _check("match", measured=0.5, bound=0.5, lo=math.nan, hi=math.nan).verdict == "inconclusive"
    assert _check("match", measured=0.5, bound=0.5, lo=-math.inf, hi=math.inf).verdict == "inconclusive"


def test_an_exact_match_holds_only_within_its_tolerance():
    assert _check("match", measured=0.5, bound=0.5).verdict == "holds"
    assert _check("match", measured=0.51, bound=0.5).verdict == "violated"
    assert _check("match", measured=0.51, bound=0.5, tol=0.02).verdict == "holds"


def test_match_verdict_is_elementwise():
    out = match_verdict([0.4, 0.6, np.nan], [0.6, 0.7, 1.0], 0.5)
    assert list(out) == ["holds", "violated", "inconclusive"]


# --- within -----------------------------------------------------------------------
def test_a_within_check_holds_between_its_two_bounds():
    assert _check("within", measured=5, bound=10.0, bound_lo=1.0).verdict == "holds"


def test_a_within_check_is_violated_on_either_side():
    assert _check("within", measured=11, bound=10.0, bound_lo=1.0).verdict == "violated"
    assert _check("within", measured=0, bound=10.0, bound_lo=1.0).verdict == "violated"


def test_a_within_check_straddling_an_end_is_inconclusive():
    c = _check("within", measured=math.nan, bound=10.0, bound_lo=1.0, lo=8.0, hi=math.inf)
    assert c.verdict == "inconclusive"                       # not reached within a budget below the bound
    assert _check("within", measured=math.nan, bound=10.0, bound_lo=1.0, lo=12.0, hi=math.inf).verdict == "violated"


def test_a_within_check_has_the_smaller_room_of_its_two_sides():
    assert _check("within", measured=4.0, bound=10.0, bound_lo=1.0).slack == pytest.approx(2.5)
    assert within_verdict(4.0, 4.0, 1.0, 10.0) == "holds"


def test_bound_lo_belongs_to_within_checks_only():
    with pytest.raises(ValueError):
        _check("within")
    with pytest.raises(ValueError):
        _check("upper", bound_lo=0.0)
    with pytest.raises(ValueError):
        _check("within", bound=1.0, bound_lo=2.0)


# --- report -------------------------------------------------------------------------
def test_a_report_has_no_verdict_only_measured():
    c = _check("report", measured=0.7, bound=768)
    assert c.verdict == REPORTED == "measured" and not c.holds
    assert _check("report", measured=math.nan, bound=math.nan).verdict == "measured"


def test_match_and_report_checks_have_no_slack_nor_term_slack():
    for kind in ("match", "report"):
        c = _check(kind, parts=(("a", 1.0, 2.0),))
        assert math.isnan(c.slack) and c.term_slack() == []


# --- the kinds ------------------------------------------------------------------------
def test_an_unknown_kind_is_rejected():
    with pytest.raises(ValueError):
        _check("roughly")


def test_the_vectorised_functions_keep_their_two_kinds():
    assert KINDS == ("upper", "lower") and set(KINDS) < set(CHECK_KINDS)
    for fn in (lambda k: verdict(1.0, 1.0, 2.0, k), lambda k: slack(1.0, 2.0, k)):
        with pytest.raises(ValueError):
            fn("match")


def test_a_row_carries_bound_lo_only_for_a_within_check():
    assert "bound_lo" not in _check().row()
    row = _check("within", measured=5, bound=10.0, bound_lo=1.0, context={"note": "n"}).row()
    assert row["bound_lo"] == 1.0 and row["verdict"] == "holds" and row["note"] == "n"


# --- how the report prints a check -------------------------------------------------------
def test_the_verdict_cell_is_the_verdict_word_then_the_note():
    c = _check(measured=3.0, context={"note": "floor/plateau = 1"})
    assert claim_cells(c) == {"claim": "x ≤ b", "measured": "3", "bound": "2", "verdict": "violated (floor/plateau = 1)"}
    assert claim_cells(_check())["verdict"] == "holds"


def test_printed_texts_replace_the_numbers_where_given():
    c = _check("lower", measured=3.0, bound=1.0, context={"measured_text": "3 – 9", "bound_text": "≥ 1"})
    assert claim_cells(c)["measured"] == "3 – 9" and claim_cells(c)["bound"] == "≥ 1"


def test_claims_markdown_prints_one_row_per_check(tmp_path):
    md = claims_markdown("T", [], [_check(), _check("report", measured=0.5)], tmp_path)
    rows = [line for line in md.splitlines() if line.startswith("| x")]
    assert rows == ["| x ≤ b | 1 | 2 | holds |", "| x ≤ b | 0.5 | 2 | measured |"]


def test_the_report_summary_counts_verdicts_and_names_every_violated_claim():
    from mamlcheck.experiments.run_all import _anchor, summary_markdown
    checks = [Check("a ≤ 1", "(7)", 0.5, 1.0), Check("b ≤ 1", "(8)", 2.0, 1.0),
              Check("c", "§3", 1.0, 2.0, "report"), Check("d ≤ 1", "(9)", 0.9, 1.0, lo=0.5, hi=1.5)]
    text = summary_markdown([("The rate is tight: iterations (14)", checks)])
    row = next(line for line in text.splitlines() if line.startswith("| [The rate"))
    assert row.endswith("| 4 | 1 | 1 | 1 | 1 |")
    assert _anchor("The rate is tight: iterations (14)") == "the-rate-is-tight-iterations-14"
    assert "(#the-rate-is-tight-iterations-14)" in row
    assert "* b ≤ 1 (The rate is tight: iterations (14)): violated" in text
    assert "a ≤ 1 (" not in text


# --- the per-term slack of the slack report (a gap found by mutation testing) -------------
def test_term_slack_of_an_upper_bound_is_stated_over_needed_per_term():
    """(7)'s shape: bound = 2·g + 0.08·s with g = s = 1 and measured 1.5.  The
    factor 2 would have sufficed down to (1.5 − 0.08)/1 = 1.42 (ratio 2/1.42);
    the 0.08 term is not needed at all (the other term covers 1.5: ratio ∞);
    the whole bound has slack 2.08/1.5."""
    c = Check("(7)", "(7)", 1.5, 2.08, "upper", parts=(("2‖∇F‖²", 2.0, 2.0), ("0.08σ̃²/D_in", 0.08, 0.08)))
    rows = c.term_slack()
    assert [r["constant"] for r in rows] == ["2‖∇F‖²", "0.08σ̃²/D_in", "(7): whole bound"]
    assert rows[0]["needed"] == pytest.approx(1.42, rel=1e-12) and rows[0]["ratio"] == pytest.approx(2 / 1.42)
    assert rows[1]["ratio"] == float("inf")
    assert rows[2]["ratio"] == pytest.approx(2.08 / 1.5, rel=1e-12)
    assert [r["term"] for r in rows] == [0, 1, 2]


def test_term_slack_of_a_lower_bound_is_needed_over_stated():
    """The step-size lemma's shape: E[1/L̃] ≥ 0.8/L(w) with L(w) = 2 and measured
    0.5: the factor that would have sufficed is 0.5·2 = 1.0, ratio 1.0/0.8."""
    c = Check("E[1/L̃]", "§3", 0.5, 0.4, "lower", parts=(("0.8/L(w)", 0.8, 0.4),))
    (row,) = c.term_slack()
    assert row["needed"] == pytest.approx(1.0, rel=1e-12) and row["ratio"] == pytest.approx(1.25, rel=1e-12)


def test_terms_that_vanish_or_have_no_constant_give_no_row():
    c = Check("x", "(8)", 1.0, 3.0, "upper", parts=(("a", 0.0, 0.0), ("b", 2.0, 3.0), ("c", 1.0, 0.0)))
    assert [r["constant"] for r in c.term_slack()] == ["b", "(8): whole bound"]     # labelled by the equation


def test_slack_defaults_to_an_upper_bound_and_is_infinite_for_nothing_to_bound():
    from mamlcheck.theory.checks import slack
    assert slack(1.0, 2.0) == 2.0 and isinstance(slack(1.0, 2.0), float)     # bound/measured
    assert slack(1.0, 2.0, "lower") == 0.5
    assert slack(0.0, 1.0) == float("inf")                                     # measured 0: nothing to bound
    np.testing.assert_array_equal(slack(np.array([1.0, 4.0]), 2.0), [2.0, 0.5])


# --- edges that a mutation of the comparisons would move ----------------------------
def test_a_within_interval_touching_either_end_holds_and_just_outside_is_violated():
    # tol defaults to 0: an interval touching bound_lo or bound_hi exactly holds
    assert within_verdict(1.0, 2.0, 1.0, 2.0) == "holds"
    assert within_verdict(0.5, 0.9, 1.0, 2.0) == "violated"                   # hi < bound_lo
    assert within_verdict(2.1, 2.5, 1.0, 2.0) == "violated"                   # lo > bound_hi
    assert within_verdict(0.5, 1.0, 1.0, 2.0) == "inconclusive"               # hi = bound_lo, lo below
    assert within_verdict(2.0, 2.5, 1.0, 2.0) == "inconclusive"               # lo = bound_hi, hi above
    assert within_verdict(0.9, 1.5, 1.0, 2.0) == "inconclusive"               # straddles bound_lo
    assert within_verdict(1.5, 2.1, 1.0, 2.0) == "inconclusive"               # straddles bound_hi
    assert within_verdict(0.95, 2.05, 1.0, 2.0, tol=0.05) == "holds"
    assert within_verdict(0.5, 0.94, 1.0, 2.0, tol=0.05) == "violated"


@pytest.mark.parametrize("nan_at", range(4))
def test_a_nan_in_any_one_end_of_a_within_verdict_is_inconclusive(nan_at):
    clean = [1.2, 1.8, 1.0, 2.0]
    ends = list(clean)
    ends[nan_at] = math.nan
    assert within_verdict(*ends) == "inconclusive"
    # elementwise: only the entry with the NaN is inconclusive
    assert within_verdict(*[np.array([e, c]) for e, c in zip(ends, clean)]).tolist() == ["inconclusive", "holds"]


def test_verdicts_of_scalars_are_plain_strings():
    for v in (match_verdict(1.0, 1.0, 1.0), within_verdict(1.0, 1.0, 0.0, 2.0), verdict(1.0, 1.0, 2.0)):
        assert type(v) is str and v == "holds"


def test_a_row_lists_its_columns_in_the_documented_order():
    row = _check(measured=1.0, bound=2.0, lo=0.5, hi=1.5, context={"seed": 3}).row()
    assert list(row) == ["statement", "equation", "measured", "bound", "kind", "lo", "hi",
                         "verdict", "slack", "seed"]
    assert list(row.values()) == ["x ≤ b", "(0)", 1.0, 2.0, "upper", 0.5, 1.5, "holds", 2.0 / 1.5, 3]
    within = Check("a ≤ x ≤ b", "(1)", 1.5, 2.0, "within", bound_lo=1.0).row()
    assert list(within)[:5] == ["statement", "equation", "measured", "bound_lo", "bound"]
    assert within["bound_lo"] == 1.0 and within["bound"] == 2.0


def test_term_slack_rows_carry_every_field_and_the_whole_bound_row_its_inverse_slack():
    """All fields by value (a renamed, dropped or constant field fails): the
    whole-bound row is stated 1, needed 1/slack, labelled by context['property']."""
    c = Check("(7)", "(7)", 1.5, 2.08, "upper", context={"property": "moment (7)"},
              parts=(("2‖∇F‖²", 2.0, 2.0), ("0.08σ̃²/D_in", 0.08, 0.08)))
    rows = c.term_slack()
    assert rows[0] == dict(constant="2‖∇F‖²", term=0, stated=2.0, needed=pytest.approx(1.42, rel=1e-12),
                           ratio=pytest.approx(2 / 1.42, rel=1e-12))
    assert rows[2] == dict(constant="moment (7): whole bound", term=2, stated=1.0,
                           needed=pytest.approx(1.5 / 2.08, rel=1e-12), ratio=pytest.approx(2.08 / 1.5, rel=1e-12))


def test_the_whole_bound_row_of_a_lower_check_uses_the_lower_slack():
    c = Check("x", "(11)", 3.0, 2.0, "lower", parts=(("a", 1.0, 1.0), ("b", 1.0, 1.0)))
    whole = c.term_slack()[-1]
    assert whole["ratio"] == pytest.approx(1.5, rel=1e-12) and whole["needed"] == pytest.approx(2 / 3, rel=1e-12)


def test_a_whole_bound_with_infinite_room_needs_nothing():
    c = Check("x", "(8)", 0.0, 2.0, "upper", parts=(("a", 1.0, 1.0), ("b", 1.0, 1.0)))
    assert c.term_slack()[-1]["ratio"] == math.inf and c.term_slack()[-1]["needed"] == 0.0


def test_a_term_with_constant_one_and_a_small_term_of_a_random_check_have_rows():
    """Only a zero constant or a vanishing term is skipped; the rounding floor
    (ten tolerances) applies to exact values only."""
    c = Check("x", "(8)", 1.0, 1.5, "upper", lo=0.9, hi=1.1, tol=1.0,
              parts=(("one", 1.0, 1.0), ("small", 0.5, 0.5)))
    assert [r["constant"] for r in c.term_slack()] == ["one", "small", "(8): whole bound"]


def test_the_rounding_floor_is_ten_tolerances_of_an_exact_upper_bound_only():
    two = (("a", 1.0, 0.5), ("b", 1.0, 0.5))
    assert Check("x", "(8)", 0.5, 1.0, "upper", tol=0.1, parts=two).term_slack() == []  # bound = 10 tol
    assert Check("x", "(8)", 0.5, 1.06, "upper", tol=0.1, parts=(("a", 1.0, 1.06),)).term_slack() != []  # > 10, < 11 tol
    lower = Check("x", "(8)", 2.0, 1.0, "lower", tol=0.1, parts=two)                   # lower: the bound has no floor
    assert [r["constant"] for r in lower.term_slack()] == ["(8): whole bound"]       # (its terms are below it)


def test_a_term_needed_up_to_a_billionth_of_its_constant_has_infinite_room():
    # needed = (measured − (bound − value))/(value/stated) = 1e-9 exactly: ≤ 1e-9·stated
    one = Check("x", "(8)", 1e-9, 1.0, "upper", parts=(("a", 1.0, 1.0),)).term_slack()
    assert one[0]["needed"] == 1e-9 and one[0]["ratio"] == math.inf
    two = Check("x", "(8)", 1e-9, 2.0, "upper", parts=(("a", 2.0, 2.0),)).term_slack()
    assert two[0]["needed"] == 1e-9 and two[0]["ratio"] == math.inf                  # 1e-9 ≤ 1e-9·2


def test_a_whole_bound_with_no_room_needs_nothing_and_one_at_its_edge_needs_one():
    nothing = Check("x", "(11)", 0.0, 2.0, "lower", parts=(("a", 1.0, 1.0), ("b", 1.0, 1.0))).term_slack()[-1]
    assert nothing["ratio"] == 0.0 and nothing["needed"] == 0.0
    edge = Check("x", "(8)", 2.0, 2.0, "upper", parts=(("a", 1.0, 1.0), ("b", 1.0, 1.0))).term_slack()[-1]
    assert edge["ratio"] == 1.0 and edge["needed"] == 1.0
