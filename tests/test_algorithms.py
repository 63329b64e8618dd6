"""MAML, FO-MAML, HF-MAML steps and the seed-batched runner (THEORY.md §1, §3–§6):
documented equivalences, the estimator's mean, determinism, divergence."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.objective import G_i, grad_F
from mamlcheck.algorithms.runner import run
from mamlcheck.algorithms.steps import direction
from mamlcheck.algorithms.streams import SeedStreams
from mamlcheck.problems.base import Constant, Constants, TaskFamily, check_probabilities
from mamlcheck.problems.cosine_quadratic import CosineQuadratic

Z = stats.norm.isf(1e-6)   # one-sided false-alarm rate 1e-6 per check


class LinearTasks(TaskFamily):
    """``f_i(w) = b_iᵀw``: every Hessian vanishes, so MAML's second-order term does too."""

    name = "linear"

    def __init__(self, d=3, M=4, noise=0.5, seed=0):
        self.d, self.M, self.noise = d, M, noise
        self.p = check_probabilities(None, M)
        self.b = np.random.default_rng(seed).standard_normal((M, d))

    def loss(self, w, i):
        return np.sum(self._w(w) * self.b[i], -1)

    def grad(self, w, i):
        return np.broadcast_to(self.b[i], np.broadcast_shapes(self._w(w).shape, self.b[i].shape)).copy()

    def hess(self, w, i):
        return np.zeros(np.broadcast_shapes(self._w(w).shape[:-1], np.shape(i)) + (self.d, self.d))

    def draw_batch(self, i, n, rng, need="both"):
        return {"xi": self.noise / np.sqrt(n) * rng.standard_normal(np.shape(i) + (self.d,))}

    def batch_grad(self, w, i, batch):
        return self.grad(w, i) + batch["xi"]

    def batch_hess(self, w, i, batch):
        return self.hess(w, i)

    def constants(self):
        z = lambda v: Constant(v, True, "linear tasks")
        return Constants(L=z(0.0), rho=z(0.0), sigma=z(0.0), sigma_tilde=z(self.noise), sigma_H=z(0.0),
                         L_i=np.zeros(self.M), rho_i=np.zeros(self.M))


def _one_direction(fam, hyper, w, seeds=6, root=3):
    c = fam.constants()
    return direction(fam, w, hyper.resolved(c), c.rho.value, SeedStreams(seeds, root))


W6 = np.random.default_rng(0).standard_normal((6, 4))


def test_maml_with_alpha_zero_is_sgd_on_the_average_loss():
    """α = 0: MAML's G_i is the outer-batch stochastic gradient of f_i at w
    (the D_h term is multiplied by α = 0), i.e. SGD on Σ p_i f_i."""
    fam = CosineQuadratic(d=4, M=5)
    g_maml = _one_direction(fam, Hyper("maml", alpha=0.0, B=3), W6)
    streams = SeedStreams(6, 3)
    tasks = fam.draw_tasks((6, 3), streams)
    fam.draw_batch(tasks, 1, streams)                     # D_in: drawn, unused at α = 0
    sgd = fam.batch_grad(W6[:, None], tasks, fam.draw_batch(tasks, 1, streams)).mean(1)
    np.testing.assert_array_equal(g_maml, sgd)


def test_hfmaml_equals_maml_on_a_quadratic_family():
    """γ = 0 makes every task quadratic: the central difference is exact (§6)."""
    fam = CosineQuadratic(d=4, M=5, gamma=0.0, noise_amp=0.0)
    for cap in (1.0, 1e-3):
        g_hf = _one_direction(fam, Hyper("hfmaml", alpha=0.1, B=4, delta_cap=cap), W6)
        g_maml = _one_direction(fam, Hyper("maml", alpha=0.1, B=4), W6)
        np.testing.assert_allclose(g_hf, g_maml, rtol=1e-9, atol=1e-12)  # rounding of (x+δv − (x−δv))/2δ


def test_fomaml_equals_maml_when_hessians_vanish():
    fam = LinearTasks()
    w = np.ones((6, 3))
    np.testing.assert_array_equal(_one_direction(fam, Hyper("fomaml", alpha=0.3, B=4), w),
                                  _one_direction(fam, Hyper("maml", alpha=0.3, B=4), w))


def test_exact_mode_with_beta_below_one_over_L_w_never_increases_F():
    """Smoothness lemma (THEORY.md §3): β_k = 1/(12 L(w_k)) ≤ 1/L(w_k) gives
    F(w_{k+1}) ≤ F(w_k) − (β/2)‖∇F‖² < F(w_k); tolerance: 1e-12 relative rounding."""
    fam = CosineQuadratic(d=5, M=6, gamma=1.0, omega=2.0)
    alpha = 1 / (6 * fam.constants().L.value)
    res = run(fam, Hyper("exact", alpha=alpha), [1e-6], seeds=1, budget=300, w0=np.full(5, 3.0), trace_stride=1)
    Fk = res.trace.F.to_numpy()
    assert np.all(np.diff(Fk) <= 1e-12 * np.abs(Fk[:-1]))
    assert Fk[-1] < Fk[0] - 1.0


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "hfmaml"])
def test_stochastic_direction_has_the_mean_of_G_i(algorithm):
    """The runner's direction (R = 200 seeds, each averaging B = 200 tasks)
    has the mean of independent draws of the estimator built directly from
    the family's oracles: Welch two-sample t-test per coordinate at
    false-alarm 1e-6 (Bonferroni over d = 3)."""
    fam = CosineQuadratic(d=3, M=4, noise_grad=1.0, noise_amp=0.5, seed=2)
    alpha, R, B = 0.08, 200, 200
    w = np.array([0.3, -1.0, 2.0])
    got = _one_direction(fam, Hyper(algorithm, alpha=alpha, B=B, D_in=2), np.tile(w, (R, 1)), seeds=R)
    rng = np.random.default_rng(7)
    i = fam.draw_tasks((R, B), rng)
    if algorithm == "maml":
        ref = G_i(fam, w, i, alpha, 2, 1, 1, rng)
    else:
        v = fam.sample_grad(w - alpha * fam.sample_grad(w, i, 2, rng), i, 1, rng)
        ref = v
        if algorithm == "hfmaml":   # §6: one D_h batch at w ± δv, δ = 1/(6ρα‖v‖)
            b = fam.draw_batch(i, 1, rng)
            delta = 1 / (6 * fam.constants().rho.value * alpha * np.linalg.norm(v, axis=-1, keepdims=True))
            delta = np.minimum(delta, 1.0)
            ref = v - alpha * (fam.batch_grad(w + delta * v, i, b) - fam.batch_grad(w - delta * v, i, b)) / (2 * delta)
    assert not _means_differ(got, ref.mean(1))


def _means_differ(a, b):
    """Welch t-test per coordinate, false-alarm 1e-6 in all (Bonferroni over d)."""
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
    return bool(np.any(np.abs(a.mean(0) - b.mean(0)) >= stats.t.isf(1e-6 / a.shape[1], len(a) + len(b) - 2) * se))


def test_mean_test_catches_a_dropped_hessian_term():
    """Negative control: FO-MAML's direction is not MAML's estimator in mean."""
    fam = CosineQuadratic(d=3, M=4, noise_grad=1.0, noise_amp=0.5, seed=2)
    R, B, w = 200, 200, np.array([0.3, -1.0, 2.0])
    got = _one_direction(fam, Hyper("fomaml", alpha=0.08, B=B, D_in=2), np.tile(w, (R, 1)), seeds=R)
    rng = np.random.default_rng(7)
    ref = G_i(fam, w, fam.draw_tasks((R, B), rng), 0.08, 2, 1, 1, rng).mean(1)
    assert _means_differ(got, ref)


def test_mean_direction_converges_to_grad_F_with_large_batches():
    """With D_in = D_o = D_h = 10⁶ the bias (1+αL)αLσ̃/√D_in (THEORY.md §4) is
    ~1e-3 · σ̃ and the task-sampling error is averaged over 200 seeds × 100 tasks."""
    fam = CosineQuadratic(d=3, M=4, seed=2)
    w = np.array([0.3, -1.0, 2.0])
    n = 200
    got = _one_direction(fam, Hyper("maml", alpha=0.05, B=100, D_in=10**6, D_o=10**6, D_h=10**6),
                         np.tile(w, (n, 1)), seeds=n)
    se = got.std(0, ddof=1) / np.sqrt(n)     # t-quantile with 199 dof at 1e-6: 5.1 < Z + 0.2
    bias = (1 + 0.05 * fam.constants().L.value) * 0.05 * fam.constants().L.value * fam.constants().sigma_tilde.value / 1e3
    assert np.all(np.abs(got.mean(0) - grad_F(fam, w, 0.05)) < stats.t.isf(1e-6, n - 1) * se + bias)


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "hfmaml", "exact"])
def test_batched_seeds_equal_seeds_run_alone_bit_for_bit(algorithm):
    fam = CosineQuadratic(d=4, M=5, seed=1)
    hyper = Hyper(algorithm, alpha=0.03, B=5)
    together = run(fam, hyper, [1e-1, 1e-2], seeds=[0, 1, 2, 3], budget=40, w0=np.ones(4), trace_stride=10)
    for r in range(4):
        alone = run(fam, hyper, [1e-1, 1e-2], seeds=[r], budget=40, w0=np.ones(4), trace_stride=10)
        assert np.array_equal(together.w[r], alone.w[0])
        pd.testing.assert_frame_equal(together.table[together.table.seed == r].reset_index(drop=True),
                                      alone.table.reset_index(drop=True))
        tr = together.trace[together.trace.seed == r].reset_index(drop=True)
        pd.testing.assert_frame_equal(tr, alone.trace.reset_index(drop=True), check_exact=True)


def test_same_seed_same_table_twice():
    fam = CosineQuadratic(d=4, M=5, seed=1)
    a = run(fam, Hyper(alpha=0.03, B=5), [1e-1], seeds=3, budget=50, w0=np.ones(4), trace_stride=5)
    b = run(fam, Hyper(alpha=0.03, B=5), [1e-1], seeds=3, budget=50, w0=np.ones(4), trace_stride=5)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.trace, b.trace)


def test_too_large_beta_is_recorded_as_diverged_without_nan():
    """β = 100/L makes even the quadratic part expand by |1 − βλ| ≫ 1 per step."""
    fam = CosineQuadratic(d=3, M=4, gamma=1.0, omega=2.0)
    L = fam.constants().L.value
    res = run(fam, Hyper("maml", alpha=1 / (6 * L), B=4, step="constant", beta=100 / L), [1e-3],
              seeds=3, budget=400, w0=np.ones(3), divergence_bound=1e6)
    assert res.table.diverged.all() and (res.table.diverged_at >= 1).all()
    assert res.iterations < 400                      # the run ends once no seed is left
    assert np.all(np.isfinite(res.table.final_grad_norm)) and np.all(np.isfinite(res.w))


def test_a_diverged_seed_stops_while_the_others_finish():
    """Seed 1 leaves the ball ‖w‖ ≤ 100 at once; seed 0 goes on to ε."""
    fam = CosineQuadratic(d=3, M=4, noise_grad=0.0, noise_amp=0.0)
    w0 = np.array([[0.5, 0.5, 0.5], [1e3, -1e3, 1e3]])
    res = run(fam, Hyper("exact", alpha=0.02), [1e-3], seeds=2, budget=5000, w0=w0, divergence_bound=100.0)
    t = res.table.set_index("seed")
    assert bool(t.loc[1, "diverged"]) and t.loc[1, "diverged_at"] == 1
    assert not bool(t.loc[0, "diverged"]) and t.loc[0, "first_k"] > 0
    assert res.mean_table.seeds_diverged.iloc[0] == 1


def test_run_stops_once_every_seed_and_the_mean_reached_eps():
    fam = CosineQuadratic(d=3, M=4, noise_grad=0.0, noise_amp=0.0)
    res = run(fam, Hyper("exact", alpha=0.02), [1e-1, 1e-3], seeds=2, budget=100_000, w0=np.ones(3))
    assert res.iterations < 100_000
    m = res.mean_table.set_index("eps")
    assert m.loc[1e-3, "mean_first_k"] == res.iterations
    assert res.mean_grad_norm[-1] <= 1e-3 < res.mean_grad_norm[-2]


@pytest.mark.parametrize("kw, name", [
    ({"alpha": -0.1}, "alpha"), ({"B": 0}, "B"), ({"D_in": 1.5}, "D_in"), ({"algorithm": "sgd"}, "algorithm"),
    ({"step": "constant"}, "beta"), ({"step": "adaptive", "beta": 0.1}, "beta"), ({"step": "bogus"}, "step"),
])
def test_invalid_hyperparameters_raise_naming_them(kw, name):
    with pytest.raises(ValueError, match=name):
        Hyper(**kw)


def test_invalid_run_arguments_raise():
    fam = CosineQuadratic(d=3, M=2)
    with pytest.raises(ValueError, match="eps"):
        run(fam, Hyper(), [0.0])
    with pytest.raises(ValueError, match="seeds"):
        run(fam, Hyper(), [0.1], seeds=0)
    with pytest.raises(ValueError, match="w must have shape"):
        run(fam, Hyper(), [0.1], w0=np.ones(5))


def test_dense_A_runs_with_the_adaptive_step():
    fam = CosineQuadratic(d=4, M=5, dense=True)
    res = run(fam, Hyper("maml", alpha=0.02, B=4), [0.5], seeds=8, budget=20, w0=np.ones(4))
    assert res.iterations == 20 and np.all(np.isfinite(res.w))


def test_family_parameters_never_overwrite_the_table_columns():
    """The hard chain's own ``eps`` and ``seed`` parameters become ``family_eps``,
    ``family_seed``; the table's ``eps`` is the run's grid."""
    from mamlcheck.problems.hard_chain import HardChain
    fam = HardChain(eps=0.05, Delta=20.0, L=1.0)
    res = run(fam, Hyper("exact", alpha=0.1), [0.3, 0.2], seeds=[5], budget=3)
    assert sorted(res.table.eps) == [0.2, 0.3] and set(res.table.seed) == {5}
    assert (res.table.family_eps == 0.05).all() and (res.mean_table.family_eps == 0.05).all()


@pytest.mark.parametrize("seeds, needle", [(2.5, "whole count"), ([1, 1], "distinct"), ([0.5], "integers")])
def test_seed_streams_reject_ambiguous_seeds(seeds, needle):
    with pytest.raises(ValueError, match=needle):
        SeedStreams(seeds)


@pytest.mark.parametrize("value", [None, float("inf"), float("nan"), "3", 2.5])
def test_sizes_that_are_not_counts_raise_naming_them(value):
    with pytest.raises(ValueError, match="B must be an integer"):
        Hyper(B=value)


def test_unresolved_hyper_and_unknown_batch_parts_raise():
    from mamlcheck.algorithms.steps import estimate_L_tilde
    fam = CosineQuadratic(d=3, M=2)
    with pytest.raises(ValueError, match="resolved"):
        estimate_L_tilde(fam, np.ones((2, 3)), Hyper(alpha=0.05), 6.0, 4.0, SeedStreams(2))
    with pytest.raises(ValueError, match="need"):
        fam.draw_batch(np.zeros(2, dtype=int), 1, np.random.default_rng(0), need="hes")
