"""Constants certified on a ball only: every run says which seeds left the
certificate's ball and when, recomputed here from the trajectory engine."""
import numpy as np
import pytest

from mamlcheck import Hyper, run, trajectory
from mamlcheck.problems.cosine_quadratic import CosineQuadratic
from mamlcheck.theory.conditions import ball_condition

from tests.conftest import TEST_ROOT


class BallCQ(CosineQuadratic):
    """cosine-quadratic whose constants are declared on the ball ‖w‖ ≤ radius."""

    def __init__(self, radius: float = 1.0, centre=None, **kw):
        super().__init__(**kw)
        self.radius, self.centre = radius, np.zeros(self.d) if centre is None else np.asarray(centre, float)

    def certificate_ball(self):
        return self.centre, self.radius


def _first_exit(fam, hyper, w0, seeds, budget):
    """Per seed, the first k with ‖w_k − w_c‖ > R and the largest distance, from the engine's steps."""
    centre, R = fam.certificate_ball()
    left, far = np.full(seeds, -1), np.zeros(seeds)
    for st in trajectory(fam, hyper, seeds=seeds, w0=w0, root=TEST_ROOT, budget=budget):
        dist = np.linalg.norm(st.w - centre, axis=-1)
        far = np.maximum(far, dist)
        left = np.where((left < 0) & (dist > R), st.k, left)
    return left, far


def test_the_seeds_that_leave_the_ball_are_reported_with_the_step_they_left_at():
    """Seeds start around the ball's centre, some outside; the others leave it
    along the way (the iterates move towards the tasks' optima near 0)."""
    fam = BallCQ(radius=0.3, centre=np.full(3, 2.0), d=3, M=4, noise_grad=0.5, noise_amp=0.1, seed=2)
    hyper = Hyper("maml", alpha=0.02, B=4)
    w0 = 2 + 0.1 * np.random.default_rng([TEST_ROOT, 5]).standard_normal((5, 3))
    res = run(fam, hyper, [1e-9], seeds=5, w0=w0, budget=60, root=TEST_ROOT)
    left, far = _first_exit(fam, hyper, w0, 5, res.iterations)
    t = res.table.drop_duplicates("seed")
    np.testing.assert_array_equal(t.left_ball_at.fillna(-1).to_numpy(int), left)
    np.testing.assert_allclose(t.max_ball_distance.to_numpy(), far, rtol=1e-15)
    assert (left > 0).sum() >= 2, left             # exits along the way, not only at the start
    cond = res.ball_condition()
    assert cond.name == "ball" and cond.holds == bool((left < 0).all())
    for s, k in zip(t.seed, left):
        assert (f"seed {s} at k = {k}" in cond.given) == (k >= 0)


def test_a_ball_too_small_for_the_run_breaks_the_condition_and_a_large_one_holds():
    hyper = Hyper("maml", alpha=0.02, B=4)
    w0 = np.full(3, 0.5)                       # ‖w0‖ ≈ 0.87
    small = run(BallCQ(radius=0.5, d=3, M=4, seed=2), hyper, [1e-9], seeds=2, w0=w0, budget=5, root=TEST_ROOT)
    assert not small.ball_condition().holds
    assert "seed 0 at k = 0" in small.ball_condition().given and "not guaranteed" in small.ball_condition().given
    large = run(BallCQ(radius=50.0, d=3, M=4, seed=2), hyper, [1e-9], seeds=2, w0=w0, budget=5, root=TEST_ROOT)
    assert large.ball_condition().holds


def test_a_family_with_global_constants_has_no_ball_columns_and_no_ball_condition():
    res = run(CosineQuadratic(d=3, M=4, seed=2), Hyper("maml", alpha=0.02, B=4), [1e-9], seeds=2, budget=3,
              root=TEST_ROOT)
    assert "left_ball_at" not in res.table.columns and res.ball_condition() is None


@pytest.mark.parametrize("left, holds", [([-1, -1], True), ([-1, 3], False), ([0, 7], False)])
def test_ball_condition_on_explicit_exits(left, holds):
    c = ball_condition(2.0, [10, 11], [1.0, 2.5], left)
    assert c.holds == holds
    assert c.required == "R = 2"
    for s, k in zip([10, 11], left):
        assert (f"seed {s} at k = {k}" in c.given) == (k >= 0)
