"""Fast paths against the generic path they replace (THEORY.md (3), (6), §5, §6).

``CosineQuadraticSampler.direction`` (aggregated outer noise, closed-form
central difference) must be *equal in law* to the generic estimator built from
the oracles, ``_task_directions(...).mean(1)``: same mean and same
per-coordinate variance at a fixed ``w`` over many seeds, with negative
controls that the same tests must catch.  Without noise the two must agree to
rounding draw for draw (the algebra), and the runner's fast path must keep
batched seeds equal to seeds run alone bit for bit.  Also: the trigonometry
memo, the uniform task draw, the streams' blocking, the fast ``L̃`` norms, and
that ``bench --json`` emits parseable rows.  Speed itself is measured by
``python -m mamlcheck bench``, never asserted here.

Statistical tests (each states its false-alarm rate):
* mean: Welch t-test per coordinate, false-alarm 1e-6 per check in all
  (Bonferroni over the ``d`` coordinates);
* variance: two-sample z-test on ``s_a² − s_b²`` with the standard error
  ``((m4_a − s_a⁴)/n_a + (m4_b − s_b⁴)/n_b)^½`` from the fourth central
  moments (valid without normality: the direction is not Gaussian),
  two-sided false-alarm 1e-6 per check in all (Bonferroni over ``d``).
"""
import argparse
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.runner import run
from mamlcheck.algorithms.fast import L_TILDE, register_fast
from mamlcheck.algorithms.fast import sampler as fast_sampler
from mamlcheck.algorithms.fast_cosine_quadratic import CosineQuadraticSampler
from mamlcheck.algorithms.steps import _task_directions, direction, estimate_L_tilde, has_fast_direction
from mamlcheck.algorithms.streams import SeedStreams, seed_generator
from mamlcheck.problems.base import TaskFamily
from mamlcheck.problems.cosine_quadratic import CosineQuadratic

ALPHA_FA = 1e-6          # false-alarm rate of each statistical check, all coordinates together
R = 20_000               # seeds per sample
FAST = ("maml", "fomaml", "hfmaml")
# noisy enough that the outer-batch noise is a large share of the variance
# (spread 0.3), with D_o ≠ 1 so that a path ignoring D_o differs
KW = dict(d=3, M=4, noise_grad=3.0, noise_amp=0.5, spread=0.3, gamma=1.0, omega=2.0, seed=2)
W = np.array([0.3, -1.0, 0.7])


def _hyper(algorithm, **kw):
    return Hyper(algorithm, alpha=0.08, **{"B": 3, "D_in": 2, "D_o": 4, "D_h": 2, **kw})


def _fast_sample(fam, hyper, seed):
    """``R`` draws of the fast direction at ``W``, tasks drawn as ``direction`` does."""
    rho = fam.constants().rho.value
    return direction(fam, np.tile(W, (R, 1)), hyper, rho, np.random.default_rng(seed), fast=True)


def _generic_sample(fam, hyper, seed):
    """``R`` draws of the generic ``_task_directions(...).mean(1)`` at ``W``."""
    rng = np.random.default_rng(seed)
    tasks = fam.draw_tasks((R, hyper.B), rng)
    return _task_directions(fam, np.tile(W, (R, 1)), tasks, hyper, fam.constants().rho.value, rng).mean(1)


def _means_differ(a, b):
    """Welch t-test per coordinate at false-alarm ``ALPHA_FA`` in all."""
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
    t = np.abs(a.mean(0) - b.mean(0)) / se
    dof = len(a) + len(b) - 2                # Welch's dof is at least min(n)−1 ≈ this / 2: t ≈ z here
    return bool(np.any(t >= stats.t.isf(ALPHA_FA / (2 * a.shape[1]), dof)))


def _variances_differ(a, b):
    """Fourth-moment z-test on the variance per coordinate at ``ALPHA_FA`` in all."""
    va, vb = a.var(0, ddof=1), b.var(0, ddof=1)
    m4a = ((a - a.mean(0)) ** 4).mean(0)
    m4b = ((b - b.mean(0)) ** 4).mean(0)
    z = np.abs(va - vb) / np.sqrt((m4a - va ** 2) / len(a) + (m4b - vb ** 2) / len(b))
    return bool(np.any(z >= stats.norm.isf(ALPHA_FA / (2 * a.shape[1]))))


class _ScaledNoise(CosineQuadratic):
    """Negative control: the fast path with its outer-batch noise scaled by 0.8
    (the aggregated ``ζ`` columns; HF-MAML: the per-task ``ξ_o`` columns)."""


@register_fast(_ScaledNoise)
class _ScaledNoiseSampler(CosineQuadraticSampler):
    def _factors(self, alg, alpha, D_in, D_o, D_h, B, Bp, D_beta):
        k = super()._factors(alg, alpha, D_in, D_o, D_h, B, Bp, D_beta)
        scales, d = k.scales.copy(), self.fam.d
        if alg == "hfmaml":
            start = Bp * (d + 1) + B * d
            scales[start:start + B * d] *= 0.8
        else:
            scales[-d:] *= 0.8
        return k._replace(scales=scales)


class _IgnoresDo(CosineQuadratic):
    """Negative control: the fast path sizing the outer batch as if ``D_o = 1``."""


@register_fast(_IgnoresDo)
class _IgnoresDoSampler(CosineQuadraticSampler):
    def _factors(self, alg, alpha, D_in, D_o, D_h, B, Bp, D_beta):
        return super()._factors(alg, alpha, D_in, 1, D_h, B, Bp, D_beta)


@pytest.mark.parametrize("algorithm", FAST)
def test_fast_direction_has_the_mean_and_variance_of_the_generic_one(algorithm):
    fam = CosineQuadratic(**KW)
    assert has_fast_direction(fam, algorithm)
    fast, generic = _fast_sample(fam, _hyper(algorithm), 1), _generic_sample(fam, _hyper(algorithm), 2)
    assert not _means_differ(fast, generic)
    assert not _variances_differ(fast, generic)


@pytest.mark.parametrize("algorithm", FAST)
@pytest.mark.parametrize("control", [_ScaledNoise, _IgnoresDo])
def test_variance_check_catches_a_wrongly_sized_outer_noise(algorithm, control):
    """Negative control: the same variance test must reject the fast path with
    the aggregated (HF-MAML: per-task) outer noise scaled by 0.8 or sized
    without ``D_o``."""
    hyper = _hyper(algorithm)
    assert _variances_differ(_fast_sample(control(**KW), hyper, 1), _generic_sample(CosineQuadratic(**KW), hyper, 2))


def test_mean_check_catches_a_dropped_hessian_term():
    """Negative control: the fast FO-MAML direction is not MAML's in mean."""
    fam = CosineQuadratic(**KW)
    assert _means_differ(_fast_sample(fam, _hyper("fomaml"), 1), _generic_sample(fam, _hyper("maml"), 2))


@pytest.mark.parametrize("algorithm", FAST)
@pytest.mark.parametrize("B, d", [(1, 1), (4, 5)])
def test_without_noise_fast_and_generic_agree_draw_for_draw(algorithm, B, d):
    """No data noise: the only randomness is the task draw, which both paths
    take first from the same uniform stream, so the directions agree to
    rounding: this checks the algebra of the fast path (inner point, outer
    gradient, Hessian factor, closed-form central difference) exactly."""
    fam = CosineQuadratic(d=d, M=5, noise_grad=0.0, noise_amp=0.0, gamma=1.0, omega=2.0, seed=4)
    hyper = Hyper(algorithm, alpha=0.1, B=B).resolved(fam.constants())
    w = 1.5 * np.random.default_rng(0).standard_normal((7, d))
    rho = fam.constants().rho.value
    fast = direction(fam, w, hyper, rho, SeedStreams(7, 5), fast=True)
    generic = direction(fam, w, hyper, rho, SeedStreams(7, 5), fast=False)
    np.testing.assert_allclose(fast, generic, rtol=1e-12, atol=1e-12 * (1 + np.abs(generic).max()))


def test_dense_A_and_exact_mode_fall_back_to_the_generic_path():
    dense = CosineQuadratic(d=3, M=4, dense=True, seed=1)
    assert not any(has_fast_direction(dense, a) for a in ("maml", "fomaml", "hfmaml", "exact"))
    assert fast_sampler(dense, L_TILDE) is None
    with pytest.raises(ValueError, match="diagonal"):
        CosineQuadraticSampler(dense)
    w = np.ones((4, 3))
    rho = dense.constants().rho.value
    hyper = Hyper("maml", alpha=0.05, B=3).resolved(dense.constants())
    np.testing.assert_array_equal(direction(dense, w, hyper, rho, SeedStreams(4, 1), fast=True),
                                  direction(dense, w, hyper, rho, SeedStreams(4, 1), fast=False))


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "hfmaml", "exact"])
@pytest.mark.parametrize("B, d", [(1, 1), (3, 2), (12, 7)])
def test_runner_fast_path_batched_seeds_equal_seeds_run_alone_bit_for_bit(algorithm, B, d):
    """Edge shapes (B = 1 and d = 1 change numpy's inner loops and matmul's
    kernel choice) on top of tests/test_algorithms.py's check."""
    fam = CosineQuadratic(d=d, M=4, seed=3)
    hyper = Hyper(algorithm, alpha=0.04, B=B)
    together = run(fam, hyper, [1e-3], seeds=[0, 1, 2], budget=25, w0=np.ones(d), trace_stride=5)
    for r in range(3):
        alone = run(fam, hyper, [1e-3], seeds=[r], budget=25, w0=np.ones(d), trace_stride=5)
        assert np.array_equal(together.w[r], alone.w[0])
        pd.testing.assert_frame_equal(together.trace[together.trace.seed == r].reset_index(drop=True),
                                      alone.trace.reset_index(drop=True), check_exact=True)


def test_fast_L_tilde_norms_have_the_law_of_the_generic_oracle():
    """The sampler's ``grad_norms`` vs ``‖sample_grad‖``: mean and variance tests as
    above, plus a negative control (noise scale 0.8 must be caught)."""
    fam = CosineQuadratic(**KW)
    w, tasks_shape = np.tile(W, (R, 1)), (R, 2)
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(2)
    fast = fast_sampler(fam, L_TILDE).grad_norms(w, fam.draw_tasks(tasks_shape, rng_a), 3, rng_a)
    generic = np.linalg.norm(fam.sample_grad(w[:, None], fam.draw_tasks(tasks_shape, rng_b), 3, rng_b), axis=-1)
    assert not _means_differ(fast, generic) and not _variances_differ(fast, generic)
    weak = CosineQuadratic(**{**KW, "noise_grad": 0.8 * KW["noise_grad"]})
    rng_c = np.random.default_rng(3)
    control = fast_sampler(weak, L_TILDE).grad_norms(w, weak.draw_tasks(tasks_shape, rng_c), 3, rng_c)
    assert _means_differ(control, generic) or _variances_differ(control, generic)


def test_estimate_L_tilde_fast_path_is_used_and_bounded_below_by_4L(monkeypatch):
    """Whether the sampler was used is observed by a spy, not by comparing
    values: the fast and generic norms can coincide draw for draw (they draw
    the same numbers and differ only in how a uniform picks a task), so a
    value comparison would depend on the stream's root."""
    fam = CosineQuadratic(**KW)
    c = fam.constants()
    hyper = Hyper("maml", alpha=0.08, B=3, B_prime=2, D_beta=3)
    w = np.tile(W, (50, 1))
    calls = []
    sampler_cls = type(fast_sampler(fam, L_TILDE))
    original = sampler_cls.grad_norms
    monkeypatch.setattr(sampler_cls, "grad_norms", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    L_gen = estimate_L_tilde(fam, w, hyper, c.L.value, c.rho.value, SeedStreams(50), fast=False)
    assert calls == []
    L_fast = estimate_L_tilde(fam, w, hyper, c.L.value, c.rho.value, SeedStreams(50), fast=True)
    assert calls == [1]
    assert L_fast.shape == L_gen.shape == (50,)
    assert np.all(L_fast >= 4 * c.L.value) and np.all(L_gen >= 4 * c.L.value)


def test_trigonometry_memo_never_serves_a_changed_point():
    fam = CosineQuadratic(d=4, M=3)
    w = np.random.default_rng(0).standard_normal((5, 4))
    fam.meta_grad(w, 0.05)                               # fills the memo at w
    s, c = fam.trig(w)
    np.testing.assert_array_equal(s, np.sin(fam.omega * w))
    with pytest.raises(ValueError):
        s[0, 0] = 1.0                                    # read-only: callers cannot corrupt it
    w[1, 2] += 0.5                                       # same array, new values
    s, c = fam.trig(w)
    np.testing.assert_array_equal(s, np.sin(fam.omega * w))
    np.testing.assert_array_equal(c, np.cos(fam.omega * w))
    nan = np.full((5, 4), np.nan)
    fam.trig(nan)
    assert np.isnan(fam.trig(nan)[0]).all()


def test_uniform_task_draw_equals_the_inverse_cdf_of_the_base_class():
    """``⌊uM⌋`` and ``searchsorted(cumsum(p), u)`` pick the same task for
    (almost) every ``u``; non-uniform ``p`` uses the base class as is."""
    u = np.random.default_rng(0).random(200_000)

    class Fixed:
        def random(self, shape):
            return u.reshape(shape)

    for M in (1, 3, 7, 50):
        fam = CosineQuadratic(d=2, M=M)
        got, ref = fam.draw_tasks(u.shape, Fixed()), TaskFamily.draw_tasks(fam, u.shape, Fixed())
        assert np.mean(got != ref) < 1e-4            # only rounding at the bucket edges may differ
        assert got.min() >= 0 and got.max() <= M - 1
    skewed = CosineQuadratic(d=2, M=3, p=[0.7, 0.2, 0.1])
    np.testing.assert_array_equal(skewed.draw_tasks(u.shape, Fixed()),
                                  TaskFamily.draw_tasks(skewed, u.shape, Fixed()))


@pytest.mark.parametrize("prefetch", [False, True])
def test_streams_are_invisible_blocking_and_draws_stay_valid_after_refills(prefetch):
    s = SeedStreams([4, 9], root=7, block=16, prefetch=prefetch)
    first = s.standard_normal((2, 5))
    kept = first.copy()
    rest = [s.standard_normal((2, k)) for k in (11, 1, 40, 3)]     # several refills, one wider than a block
    scales = np.arange(1.0, 21.0)
    scaled = s.scaled_normal(scales)                             # crosses a block boundary too
    np.testing.assert_array_equal(first, kept)                   # earlier draws are not overwritten
    drawn = np.concatenate([first, *rest], axis=1)
    for row, srow, seed in zip(drawn, scaled, (4, 9)):
        ref = seed_generator(s.root, seed, 0).standard_normal(drawn.shape[1] + scales.size)   # s.root: 7 (+ a test root)
        np.testing.assert_array_equal(row, ref[:drawn.shape[1]])
        np.testing.assert_array_equal(srow, ref[drawn.shape[1]:] * scales)
    u = s.random((2, 3, 2))
    np.testing.assert_array_equal(u[1].ravel(), seed_generator(s.root, 9, 1).random(6))


def test_prefetch_changes_no_number():
    """A background refill draws each seed's block from that seed's generator
    in stream order: the same numbers as refilling in the loop."""
    sizes = np.random.default_rng(1).integers(1, 90, 60)          # many refills of a 64-number block
    a, b = SeedStreams(10, root=3, block=64, prefetch=True), SeedStreams(10, root=3, block=64, prefetch=False)
    for k in sizes:
        np.testing.assert_array_equal(a.standard_normal((10, int(k))), b.standard_normal((10, int(k))))
        np.testing.assert_array_equal(a.random((10, 2)), b.random((10, 2)))


def test_prefetching_batch_equals_seeds_run_alone_bit_for_bit():
    """R = 9 seeds (prefetch on by default) against single seeds (prefetch off)."""
    fam = CosineQuadratic(d=3, M=4, seed=5)
    hyper = Hyper("maml", alpha=0.04, B=3)
    together = run(fam, hyper, [1e-3], seeds=9, budget=60, w0=np.ones(3))
    for r in (0, 8):
        alone = run(fam, hyper, [1e-3], seeds=[r], budget=60, w0=np.ones(3))
        assert np.array_equal(together.w[r], alone.w[0])


def _bench_main(argv) -> int:
    from mamlcheck.experiments import bench

    p = argparse.ArgumentParser()
    bench.configure(p)
    return bench.main(p.parse_args(argv))


def test_bench_json_rows_parse_and_have_the_fields(capsys):
    """Tiny budget, cosine-quadratic rows only (other families belong to other
    modules' tests); nothing is timed or asserted about speed."""
    assert _bench_main(["--json", "--budget", "2", "--repeats", "1", "--no-progress", "--only", "reference R=64",
                        "reference R=1", "cq hfmaml R=64", "cq exact R=64"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [r["name"] for r in rows] == ["reference R=1", "reference R=64", "cq hfmaml R=64", "cq exact R=64"]
    for r in rows:
        for key in ("family", "d", "M", "algorithm", "alpha", "B", "D_in", "D_o", "D_h", "B_prime", "D_beta", "R",
                    "budget", "iterations", "repeats", "best_s", "cpu_s", "prefetch", "seed_iterations_per_s",
                    "batching_speedup", "limit_seed_iterations_per_s", "fraction_of_limit", "machine"):
            assert key in r, key
        assert r["iterations"] == 2 and r["seed_iterations_per_s"] > 0
        assert "vs_jax" not in r                        # no --jax: no JAX columns
    one, ref, hf, exact = rows
    assert (ref["d"], ref["M"], ref["B"], ref["R"]) == (20, 50, 10, 64) and ref["batching_speedup"] > 0
    assert one["batching_speedup"] is None and one["R"] == 1
    assert ref["fraction_of_limit"] > 0 and hf["fraction_of_limit"] > 0
    assert exact["limit_seed_iterations_per_s"] is None and exact["fraction_of_limit"] is None


def test_bench_lists_the_configurations_users_run():
    """issue 16: robust-regression MAML, FO-MAML, HF-MAML and the tilted hard chain at R = 1
    and 64, dense cosine-quadratic, the reference at R = 1, 4, 64, 1024; every R = 1 twin is
    the same configuration; every row meant to have a JAX yardstick has one (``spec``, no jax
    needed to build it)."""
    from mamlcheck.experiments import bench, bench_jax
    from mamlcheck.problems import family_parameters

    cs = {c.name: c for c in bench.configs()}

    def named(family, params, R, **hyper):
        return sorted(n for n, c in cs.items() if c.family == family and c.params == params and c.R == R
                      and {"algorithm": "maml", **c.hyper} == {"algorithm": "maml", **hyper})

    rr = {"d": 20, "M": 50, "N": 50}
    for alg in ("maml", "fomaml", "hfmaml"):
        for R in (1, 64):
            assert named("robust-regression", rr, R, algorithm=alg) == [f"rr {alg} R={R}"]
    for R in (1, 64):
        assert named("hard-chain", {"M": 10, "tilt": 1.0}, R) == [f"chain R={R}"]
    assert "dense" in family_parameters("cosine-quadratic")
    assert named("cosine-quadratic", {"d": 20, "M": 50, "dense": True}, 64) == ["cq dense R=64"]
    for R in (1, 4, 64, 1024):
        assert f"reference R={R}" in named("cosine-quadratic", {"d": 20, "M": 50}, R)
    for c in cs.values():
        if c.twin is not None:
            one = cs[c.twin]
            assert (one.R, one.family, one.params, one.hyper) == (1, c.family, c.params, c.hyper)
    yardsticks = {"reference R=1": "cq-fast", "reference R=64": "cq-fast", "reference R=1024": "cq-fast",
                  "cq dense R=64": "generic", "rr hfmaml R=64": "generic", "chain R=1": "generic"}
    for name, variant in yardsticks.items():
        c = cs[name]
        fam, hyper = bench._setup(c)
        consts = fam.constants()
        got = bench_jax.spec(fam, hyper.resolved(consts), consts.L.value, consts.rho.value, c.R, c.budget)
        assert c.jax and got[0] == variant and (got[1]["R"], got[1]["K"]) == (c.R, c.budget)
    fam, hyper = bench._setup(cs["cq exact R=64"])
    assert bench_jax.spec(fam, hyper.resolved(fam.constants()), 1.0, 1.0, 64, 5) is None


def test_a_quick_robust_regression_row_has_a_positive_rate_and_its_fraction_of_the_limit(capsys):
    assert _bench_main(["--json", "--quick", "--budget", "3", "--only", "rr maml R=64", "--no-progress"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert row["name"] == "rr maml R=64" and row["iterations"] == 3 and row["repeats"] == 2
    assert row["seed_iterations_per_s"] > 0 and row["limit_seed_iterations_per_s"] > 0
    assert row["fraction_of_limit"] == pytest.approx(row["seed_iterations_per_s"] / row["limit_seed_iterations_per_s"])


class _FakeYardstick:
    """Stands in for the JAX worker: records the calls, times every run at 0.5 s."""

    def __init__(self, events, fail=False):
        self.events, self.fail, self.info = events, fail, {"jax": "fake", "backend": "cpu"}

    def build(self, name, variant, cfg):
        from mamlcheck.experiments.bench_jax import YardstickError
        if self.fail:
            raise YardstickError("no JAX here")
        self.events.append(("build", variant, cfg["R"], cfg["K"]))
        return {"compile_s": 1.5}

    def time(self, name):
        self.events.append(("jax",))
        return {"wall": 0.5, "cpu": 0.5, "mean_last_norm": 0.25}

    def drop(self, name):
        self.events.append(("drop",))


def test_bench_times_numpy_and_jax_alternately_and_reports_the_ratio(monkeypatch):
    from mamlcheck.experiments import bench

    events, real_run = [], bench.run

    def counted(*a, **k):
        events.append(("numpy", k["budget"]))
        return real_run(*a, **k)
    monkeypatch.setattr(bench, "run", counted)
    c = next(c for c in bench.configs(budget=4) if c.name == "rr maml R=1")
    row = bench.measure(c, repeats=2, warmup=2, jax=_FakeYardstick(events))
    assert events == [("build", "generic", 1, 4), ("numpy", 2), ("numpy", 4), ("jax",), ("numpy", 4), ("jax",),
                      ("drop",)]
    assert row["jax_seed_iterations_per_s"] == 1 * 4 / 0.5 and row["jax_compile_s"] == 1.5
    assert row["vs_jax"] == pytest.approx(row["seed_iterations_per_s"] / 8.0)
    assert row["jax_variant"] == "generic" and row["jax_error"] is None


def test_a_failed_jax_run_leaves_the_numpy_row_and_names_the_error(monkeypatch, capsys):
    from mamlcheck.experiments import bench

    c = next(c for c in bench.configs(budget=2) if c.name == "chain R=1")
    (row,) = bench.bench([c], repeats=1, progress=True, jax=_FakeYardstick([], fail=True))
    assert row["seed_iterations_per_s"] > 0 and row["jax_seed_iterations_per_s"] is None and row["vs_jax"] is None
    assert row["jax_error"] == "no JAX here"
    assert "the JAX run of 'chain R=1' failed: no JAX here" in capsys.readouterr().err


@pytest.mark.conformance
def test_the_jax_worker_runs_each_variant_on_the_familys_own_arrays():
    """The worker protocol end to end on tiny configurations (needs jax; compiling takes
    seconds, so ``make test`` deselects it): the exact grad F of each JAX variant equals the
    suite's to rounding, and the first recorded norm is the runner's ``‖∇F(w_0 = 0)‖``."""
    pytest.importorskip("jax")
    from mamlcheck import literature as lit
    from mamlcheck.algorithms.objective import grad_F
    from mamlcheck.experiments import bench_jax
    from mamlcheck.problems import make_family

    cases = [("cosine-quadratic", {"d": 3, "M": 4}, "maml", "cq-fast"),
             ("cosine-quadratic", {"d": 3, "M": 4, "dense": True}, "maml", "generic"),
             ("robust-regression", {"d": 3, "M": 4, "N": 5}, "hfmaml", "generic"),
             ("robust-regression", {"d": 3, "M": 4, "N": 5}, "fomaml", "generic"),
             ("hard-chain", {"M": 3, "tilt": 1.0, "T": 4}, "maml", "generic")]
    rng = np.random.default_rng(3)
    with bench_jax.Yardstick() as yard:
        assert yard.info["x64"]
        for k, (family, params, alg, variant) in enumerate(cases):
            fam = make_family(family, **params)
            consts = fam.constants()
            hyper = Hyper(alg, alpha=lit.ALPHA_MAX_LD[alg] / consts.L.value, B=2).resolved(consts)
            got, cfg = bench_jax.spec(fam, hyper, consts.L.value, consts.rho.value, 2, 3)
            assert got == variant
            name = f"case {k}"
            assert yard.build(name, variant, cfg)["compile_s"] >= 0
            t = yard.time(name)
            assert t["finite"] and t["rate"] > 0
            curve = yard.curve(name)
            assert curve.shape == (3,)
            assert curve[0] == pytest.approx(np.linalg.norm(grad_F(fam, np.zeros(fam.d), hyper.alpha)), rel=1e-9)
            W = rng.standard_normal((4, fam.d)) * getattr(fam, "lam", 1.0)
            np.testing.assert_allclose(yard.grad_F(name, W), grad_F(fam, W, hyper.alpha), rtol=1e-9, atol=1e-12)
            yard.drop(name)
        with pytest.raises(bench_jax.YardstickError, match="unknown command"):
            yard._ask({"cmd": "no-such-command", "name": "case 0"})
        with pytest.raises(bench_jax.YardstickError, match="no configuration named 'case 0'"):
            yard.time("case 0")                         # dropped above; the worker still answers
        assert yard._ask({"cmd": "hello"})["x64"]


def test_bench_lists_only_registered_families_and_rejects_unknown_names():
    from mamlcheck.experiments import bench
    from mamlcheck.problems import FAMILIES

    assert {c.family for c in bench.configs()} <= set(FAMILIES)
    assert all(c.budget == 3 for c in bench.configs(budget=3))
    p = argparse.ArgumentParser()
    bench.configure(p)
    with pytest.raises(ValueError, match="unknown configuration"):
        bench.main(p.parse_args(["--only", "no-such-row", "--budget", "1"]))
