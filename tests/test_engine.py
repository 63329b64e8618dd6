"""The one trajectory engine: every consumer sees the same iterates, one divergence rule.

Bugs these tests are for: the ledger or the step-size experiment stepping
their own loop (other draws than ``run``: the iterates differ after a few
steps); a divergence recorded one step late or a diverged seed that keeps
moving; a record whose arrays are overwritten by later steps.
"""
import numpy as np
import pytest

import mamlcheck as mc
from mamlcheck.experiments import ledger
from mamlcheck.experiments.step_sizes import adaptive_trajectory


def _config(algorithm="maml"):
    fam = mc.family("cosine-quadratic", d=4, M=6, seed=1)
    return fam, mc.Hyper(algorithm, alpha=0.05, B=5)


@pytest.mark.parametrize("algorithm", ["maml", "exact"])
def test_run_and_the_proof_ledger_walk_the_same_iterates(algorithm):
    fam, h = _config(algorithm)
    w0 = np.full(4, 1.5)
    led = ledger.evaluate(fam, h, eps=1e-9, seeds=3, budget=12, w0=w0, points=2, draws=20, reps=20, cond_reps=2)
    res = mc.run(fam, h, eps=[1e-9], seeds=3, budget=12, w0=w0, stop_at_eps=False)
    K = led.config["iterations"]
    assert K == 12
    np.testing.assert_array_equal(led.trajectory.mean_grad_norm.to_numpy(), res.mean_grad_norm[:K + 1])


def test_the_step_size_experiment_walks_the_engines_iterates():
    fam, h = _config()
    w0 = np.random.default_rng(0).standard_normal((3, 4))
    ks, W, betas = adaptive_trajectory(fam, h, w0, steps=9, stride=3, root=2)
    steps = list(mc.trajectory(fam, h, seeds=3, w0=w0, root=2, budget=9))
    assert list(ks) == [0, 3, 6, 9]
    for j, k in enumerate(ks):
        np.testing.assert_array_equal(W[j], steps[k].w)
        if k < 9:
            np.testing.assert_array_equal(betas[j], steps[k + 1].beta)     # the step taken at k
    assert np.isnan(betas[-1]).all()


def test_a_diverging_seed_is_frozen_at_the_step_it_leaves_the_ball():
    """β = 1 overshoots the curvatures a = 1..4 of the tasks by factors 0, −1, −2,
    −3: from ``w_0 = 9.9·1`` the first step lands at norm ≈ 37 > 20, from 0 at
    norm ≈ ‖Ac‖ < 20."""
    fam, _ = _config()
    h = mc.Hyper("maml", alpha=0.05, B=5, step="constant", beta=1.0)
    w0 = np.zeros((3, 4))
    w0[1] = 9.9                                            # ‖w0‖ = 19.8, inside ‖w‖ ≤ 20
    steps = list(mc.trajectory(fam, h, seeds=3, w0=w0, budget=3, divergence_bound=20.0))
    assert steps[0].alive.all() and steps[1].alive.tolist() == [True, False, True]
    assert steps[-1].diverged_at[1] == 1
    for s in steps[1:]:
        np.testing.assert_array_equal(s.w[1], w0[1])       # frozen at its last iterate in the ball
        assert not s.all_alive and not s.alive[1]
    assert not np.array_equal(steps[1].w[0], w0[0])        # the others go on


def test_records_are_never_written_to_afterwards():
    fam, h = _config()
    it = mc.trajectory(fam, h, seeds=2, w0=np.ones(4))
    first = next(it)
    w0, g0 = first.w.copy(), first.grad.copy()
    for _ in range(5):
        next(it)
    np.testing.assert_array_equal(first.w, w0)
    np.testing.assert_array_equal(first.grad, g0)
    assert first.g is None and first.beta is None and first.k == 0


def test_seeds_in_a_batch_follow_the_trajectory_they_follow_alone():
    fam, h = _config()
    together = list(mc.trajectory(fam, h, seeds=[0, 1, 2], w0=np.ones(4), budget=6))
    alone = list(mc.trajectory(fam, h, seeds=[2], w0=np.ones(4), budget=6))
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a.w[2], b.w[0])


def test_bad_start_shapes_are_refused_by_name():
    fam, h = _config()
    with pytest.raises(ValueError, match="w0 must have shape"):
        next(mc.trajectory(fam, h, seeds=3, w0=np.ones((2, 4))))


def test_a_record_cannot_be_written_to():
    fam, h = _config("exact")
    first = next(mc.trajectory(fam, h, seeds=2, w0=np.ones(4)))
    for a in (first.w, first.grad, first.grad_norm, first.alive, first.diverged_at):
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 0


@pytest.mark.parametrize("where", [1, 2])
def test_ctrl_c_anywhere_in_the_runners_loop_leaves_a_consistent_result(monkeypatch, where):
    """Interrupt while record k = 5 is being booked (after its per-seed hits, after
    the seed average's): the result describes the records up to the last fully
    booked one (k = 4), never a mix."""
    from mamlcheck.algorithms import runner
    fam, h = _config()
    real, calls = runner._first_hits, {"n": 0}

    def interrupting(first, values, eps, k):
        out = real(first, values, eps, k)
        if k == 5:
            calls["n"] += 1
            if calls["n"] == where:
                raise KeyboardInterrupt
        return out

    monkeypatch.setattr(runner, "_first_hits", interrupting)
    res = mc.run(fam, h, eps=[50.0, 40.0, 1e-9], seeds=3, budget=20, w0=np.full(4, 1.5), trace_stride=1)
    assert res.interrupted and res.iterations == 4
    assert len(res.mean_grad_norm) == 5 and res.trace.k.max() <= 4
    assert (res.table.first_k.dropna() <= 4).all() and (res.mean_table.mean_first_k.dropna() <= 4).all()


@pytest.mark.parametrize("args, message", [
    (("cosine-quadratic", "HYPER"), "family must be a TaskFamily"),
    (("FAMILY", "maml"), "hyper must be a mamlcheck.Hyper"),
])
def test_obvious_mistakes_in_run_are_named(args, message):
    fam, h = _config()
    real = [fam if a == "FAMILY" else h if a == "HYPER" else a for a in args]
    with pytest.raises(TypeError, match=message):
        mc.run(*real, eps=[0.1])
    with pytest.raises(ValueError, match="repeated"):
        mc.run(fam, h, eps=[0.1, 0.1])


def test_a_norm_exactly_at_eps_counts_as_reached():
    """‖∇F(w_k)‖ ≤ ε, not <: the first hit of a norm equal to ε is k."""
    from mamlcheck.algorithms.runner import _first_hits
    first = np.full((2, 2), -1)
    out = _first_hits(first, np.array([0.5, 0.7]), np.array([0.7, 0.5]), 3)
    assert out.tolist() == [[3, 3], [3, -1]]


def test_the_trace_marks_a_seed_diverged_from_the_iteration_it_diverged():
    fam, _ = _config()
    h = mc.Hyper("maml", alpha=0.05, B=5, step="constant", beta=1.0)
    w0 = np.zeros((3, 4))
    w0[1] = 9.9                                             # leaves ‖w‖ ≤ 20 at the first step
    res = mc.run(fam, h, eps=[1e-12], seeds=3, budget=4, w0=w0, divergence_bound=20.0, trace_stride=1,
                 stop_at_eps=False)
    at = int(res.table[res.table.seed == 1].diverged_at.iloc[0])
    assert at == 1
    tr = res.trace[res.trace.seed == 1]
    assert tr.diverged.tolist() == [k >= at for k in tr.k]
