"""sinusoid-mlp: the sinusoid tasks and their pools, the network's derivatives,
the MAML objective against autodiff, the framework form of the loss, and the
constants certified on a ball (THEORY.md §1–§2; Finn, Abbeel & Levine 2017, §5.1)."""
import numpy as np
import pytest
from scipy import optimize

from mamlcheck.algorithms.objective import F, grad_F
from mamlcheck.conformance.frameworks import framework
from mamlcheck.problems import family_parameters, make_family
from mamlcheck.problems import sinusoid_mlp as sm
from mamlcheck.problems.base import TaskFamily
from mamlcheck.problems.sinusoid_mlp import SinusoidMLP
from mamlcheck.testing import _constant_rows, _oracle_rows, _setup, check_family
from tests.finite_differences import fd_jacobian, fd_tolerance

CONTRACT = dict(M=3, width=6, n_pool=16)          # check_family in ~7 s
TINY = dict(M=2, width=3, n_pool=10)              # negative controls, ~1.5 s each
FAM = SinusoidMLP(**CONTRACT, seed=1)
CONSTANT_CHECKS = {"L", "L_i", "rho", "rho_i", "sigma", "sigma_tilde", "sigma_H"}


def _in_ball(fam, rng, shape=(), fill=1.0):
    """Points uniform in direction at distance ``fill·R·U^{1/d}`` from the centre."""
    c, R = fam.certificate_ball()
    g = rng.standard_normal(shape + (fam.d,))
    g /= np.linalg.norm(g, axis=-1, keepdims=True)
    return c + fill * R * rng.random(shape + (1,)) ** (1 / fam.d) * g


def _into(fam, Z, radius):
    """``Z`` pulled radially to distance at most ``radius`` from the ball's centre."""
    c = fam.certificate_ball()[0]
    D = Z - c
    n = np.linalg.norm(D, axis=-1, keepdims=True)
    return c + D * np.minimum(1.0, radius / np.maximum(n, 1e-300))


def _per_sample(fam, w, i):
    """``r_k``, ``∇net_k`` ``(n, d)`` and ``∇²net_k`` ``(n, d, d)`` of task ``i``'s pool
    at ``w``, written out entry by entry from the module's formulas."""
    H, d = fam.width, fam.d
    u, b, v, c = w[:H], w[H:2 * H], w[2 * H:3 * H], w[3 * H]
    X = fam.X[i]
    t = np.tanh(np.outer(X, u) + b)
    dt, d2t = 1 - t ** 2, -2 * t * (1 - t ** 2)
    r = t @ v + c - fam.Y[i]
    J = np.concatenate([v * dt * X[:, None], v * dt, t, np.ones((len(X), 1))], axis=1)
    K = np.zeros((len(X), d, d))
    for h in range(H):
        iu, ib, iv = h, H + h, 2 * H + h
        K[:, iu, iu] = v[h] * d2t[:, h] * X ** 2
        K[:, iu, ib] = K[:, ib, iu] = v[h] * d2t[:, h] * X
        K[:, ib, ib] = v[h] * d2t[:, h]
        K[:, iu, iv] = K[:, iv, iu] = dt[:, h] * X
        K[:, ib, iv] = K[:, iv, ib] = dt[:, h]
    return r, J, K


# --- tasks, pools, batches -------------------------------------------------------------
def test_tasks_and_pools_are_drawn_once_from_the_seed_as_in_finn_et_al():
    fam = SinusoidMLP(M=50, n_pool=40, seed=3)
    assert np.all((fam.amplitude >= 0.1) & (fam.amplitude <= 5.0))
    assert np.all((fam.phase >= 0) & (fam.phase <= np.pi))
    assert np.all(np.abs(fam.X) <= 5.0) and fam.X.shape == (50, 40)
    np.testing.assert_array_equal(fam.Y, fam.amplitude[:, None] * np.sin(fam.X - fam.phase[:, None]))
    again, wider = SinusoidMLP(M=50, n_pool=40, seed=3), SinusoidMLP(M=50, n_pool=40, width=7, seed=3)
    np.testing.assert_array_equal(again.Y, fam.Y)
    np.testing.assert_array_equal(wider.Y, fam.Y)                  # the tasks do not depend on the network
    assert not np.array_equal(SinusoidMLP(M=50, n_pool=40, seed=4).Y, fam.Y)
    np.testing.assert_array_equal(again.centre, fam.centre)
    assert fam.d == 3 * 20 + 1 and fam.centre[-1] == 0.0
    np.testing.assert_allclose(fam.p, np.full(50, 1 / 50))


def test_the_certificate_ball_is_the_initialisation_and_generic_draws_stay_in_it():
    fam = SinusoidMLP(radius=0.7, seed=2)
    assert fam.offers("certificate_ball") and fam.offers("centre_and_length") and fam.offers("loss_on")
    c, R = fam.certificate_ball()
    np.testing.assert_array_equal(c, fam.centre)
    assert R == 0.7
    c2, length = fam.centre_and_length()
    np.testing.assert_array_equal(c2, c)
    assert 2 * np.sqrt(fam.d) * length == pytest.approx(R)      # the contract's farthest start: R


def test_batches_are_pool_indices_drawn_with_replacement_and_batch_oracles_use_their_rows():
    rng = np.random.default_rng(0)
    b = FAM.draw_batch(np.array([0, 2]), 5000, rng)
    assert b["idx"].shape == (2, 5000) and b["idx"].min() == 0 and b["idx"].max() == FAM.n_pool - 1
    counts = np.bincount(b["idx"][0], minlength=FAM.n_pool)
    assert counts.min() > 5000 / FAM.n_pool / 2                  # every point drawn, with repeats
    w = _in_ball(FAM, rng)
    pool = {"idx": np.arange(FAM.n_pool)}
    np.testing.assert_allclose(FAM.batch_grad(w, 1, pool), FAM.grad(w, 1), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(FAM.batch_hess(w, 1, pool), FAM.hess(w, 1), rtol=1e-13, atol=1e-14)
    idx = np.array([3, 3, 7])
    r, J, K = _per_sample(FAM, w, 1)
    np.testing.assert_allclose(FAM.batch_grad(w, 1, {"idx": idx}), (r[idx, None] * J[idx]).mean(0), rtol=1e-12)
    Hb = (J[idx, :, None] * J[idx, None, :] + r[idx, None, None] * K[idx]).mean(0)
    np.testing.assert_allclose(FAM.batch_hess(w, 1, {"idx": idx}), Hb, rtol=1e-12, atol=1e-13)


# --- derivatives ------------------------------------------------------------------------
@pytest.mark.parametrize("where", [0.5, 1.0, 4.0])           # inside the ball, on it, far outside
def test_gradient_hessian_and_hvp_match_finite_differences(where):
    rng = np.random.default_rng(int(10 * where))
    i = np.arange(FAM.M)
    for w in _in_ball(FAM, rng, (2,), fill=where):
        g, Hs = FAM.grad(w, i), FAM.hess(w, i)
        assert np.abs(g - fd_jacobian(lambda x: FAM.loss(x, i), w)).max() <= fd_tolerance(g, FAM.loss(w, i))
        assert np.abs(Hs - fd_jacobian(lambda x: FAM.grad(x, i), w)).max() <= fd_tolerance(Hs, g)
        v = rng.standard_normal(FAM.d)
        np.testing.assert_allclose(FAM.hvp(w, i, v), Hs @ v, rtol=1e-12, atol=1e-12 * np.abs(Hs).sum())
        np.testing.assert_array_equal(Hs, np.swapaxes(Hs, -1, -2))
        b = FAM.draw_batch(np.asarray(1), 4, rng)
        Hb = FAM.batch_hess(w, 1, b)
        assert np.abs(Hb - fd_jacobian(lambda x: FAM.batch_grad(x, 1, b), w)).max() <= fd_tolerance(Hb)
        np.testing.assert_allclose(FAM.batch_hvp(w, 1, v, b), Hb @ v, rtol=1e-12, atol=1e-12 * np.abs(Hb).sum())


def test_the_analytic_hessian_is_the_pool_mean_of_jjt_plus_r_times_the_network_hessian():
    w = _in_ball(FAM, np.random.default_rng(5))
    r, J, K = _per_sample(FAM, w, 2)
    want = (J[:, :, None] * J[:, None, :] + r[:, None, None] * K).mean(0)
    np.testing.assert_allclose(FAM.hess(w, 2), want, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(FAM.grad(w, 2), (r[:, None] * J).mean(0), rtol=1e-12, atol=1e-14)
    assert FAM.loss(w, 2) == pytest.approx(0.5 * np.mean(r ** 2), rel=1e-14)


def test_oracles_vectorise_over_points_and_tasks():
    rng = np.random.default_rng(6)
    w = _in_ball(FAM, rng, (4,))
    i, v = np.arange(FAM.M), rng.standard_normal((4, FAM.M, FAM.d))
    out = [FAM.loss(w[:, None], i), FAM.grad(w[:, None], i), FAM.hess(w[:, None], i), FAM.hvp(w[:, None], i, v)]
    assert [o.shape for o in out] == [(4, 3), (4, 3, FAM.d), (4, 3, FAM.d, FAM.d), (4, 3, FAM.d)]
    for s in range(4):
        for m in range(FAM.M):
            ref = [FAM.loss(w[s], m), FAM.grad(w[s], m), FAM.hess(w[s], m), FAM.hvp(w[s], m, v[s, m])]
            for o, want in zip(out, ref):
                np.testing.assert_allclose(o[s, m], want, rtol=1e-13, atol=1e-13)


def test_the_tanh_derivative_sups_are_attained_and_not_exceeded():
    z = np.linspace(-20, 20, 2_000_001)
    t = np.tanh(z)
    d2, d3 = -2 * t * (1 - t ** 2), -2 * (1 - t ** 2) * (1 - 3 * t ** 2)
    assert np.abs(d2).max() <= sm.SUP_D2TANH * (1 + 1e-14) and np.abs(d3).max() <= sm.SUP_D3TANH
    assert abs(-2 * (1 / np.sqrt(3)) * (2 / 3)) == pytest.approx(sm.SUP_D2TANH, rel=1e-15)
    fd = fd_jacobian(lambda x: -2 * np.tanh(x[..., 0]) * (1 - np.tanh(x[..., 0]) ** 2), z[::1000, None])[:, 0]
    np.testing.assert_allclose(fd, d3[::1000], atol=1e-7)


# --- the MAML objective against autodiff -----------------------------------------------------
@pytest.mark.parametrize("N", [1, 2])
def test_the_exact_meta_gradient_equals_torch_autodiff_of_the_meta_objective(N):
    """``grad_F`` (base-class task sums, one Hessian-vector product per inner
    point) against ``torch.func.grad`` of ``F_N`` written from scratch."""
    torch = pytest.importorskip("torch")
    from torch.func import grad
    fam, H = FAM, FAM.width
    X, Y, p = (torch.as_tensor(a, dtype=torch.float64) for a in (fam.X, fam.Y, fam.p))

    def f(w, m):
        t = torch.tanh(X[m][:, None] * w[:H] + w[H:2 * H])
        return 0.5 * ((t @ w[2 * H:3 * H] + w[3 * H] - Y[m]) ** 2).mean()

    def F_N(w, alpha):
        total = 0
        for m in range(fam.M):
            u = w
            for _ in range(N):
                u = u - alpha * grad(f)(u, m)
            total = total + p[m] * f(u, m)
        return total

    rng = np.random.default_rng(N)
    for w in _in_ball(fam, rng, (3,)):
        for alpha in (0.0, 0.01, 0.05):
            want = grad(F_N)(torch.as_tensor(w), alpha).numpy()
            got = grad_F(fam, w, alpha, inner_steps=N)
            assert np.linalg.norm(got - want) <= 1e-10 * np.linalg.norm(want)
            assert F(fam, w, alpha, inner_steps=N) == pytest.approx(float(F_N(torch.as_tensor(w), alpha)), rel=1e-12)


# --- the framework form of the loss ---------------------------------------------------------
def _framework_case(name):
    fw = framework(name)
    rng = np.random.default_rng(7)
    w = _in_ball(FAM, rng)
    return fw, w, [(None, FAM.loss(w, 1), FAM.grad(w, 1))] + [
        (b, None, FAM.batch_grad(w, 1, b)) for b in [FAM.draw_batch(np.asarray(1), 5, rng)]]


def test_loss_on_in_numpy_is_the_exact_and_the_batch_loss():
    fw, w, cases = _framework_case("numpy")
    for batch, loss, _ in cases:
        if batch is not None:                                        # assembled without loss_on
            loss = 0.5 * np.mean(_per_sample(FAM, w, 1)[0][batch["idx"]] ** 2)
        assert FAM.loss_on(fw.ops, w, FAM.loss_data(1, batch)) == pytest.approx(loss, rel=1e-14)
    with pytest.raises(ValueError, match="one task index"):
        FAM.loss_data(np.array([0, 1]))


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_loss_on_differentiated_by_the_framework_equals_the_gradient_oracles(name):
    pytest.importorskip(name)
    fw, w, cases = _framework_case(name)
    with fw.float64():
        for batch, _, want in cases:
            data = {k: fw.asarray(v) for k, v in FAM.loss_data(1, batch).items()}
            fn = (lambda x: FAM.loss_on(fw.ops, x, data))
            if name == "jax":
                import jax
                fn = jax.jit(fn)
            got = fw.to_numpy(fw.grad(fn, fw.asarray(w)))
            assert np.linalg.norm(got - want) <= 1e-12 * np.linalg.norm(want)
            assert float(fw.to_numpy(fn(fw.asarray(w)))) == pytest.approx(
                FAM.loss_on(np, w, FAM.loss_data(1, batch)), rel=1e-12)


# --- the certified constants ------------------------------------------------------------------
def test_the_contract_passes_with_every_point_inside_the_certificate_ball():
    report = check_family(FAM)
    verdicts = dict(zip(report.table.check, report.table.verdict))
    assert all(verdicts[k] == "holds" for k in CONSTANT_CHECKS | {"grad_oracle_variance", "hess_oracle_variance"})


class _Spy(SinusoidMLP):
    """Records the largest distance from the centre of the points the oracles
    are asked about; ``centre_and_length`` says ``length = R``, so the contract's
    generic starts reach ``2√d·R``, far outside the ball.  (``certificate_ball``
    is redefined here, next to the spied oracles, so that ``offers`` still
    trusts it.)"""

    def _seen(self, w):
        self._far = max(getattr(self, "_far", 0.0), float(np.max(np.linalg.norm(w - self.centre, axis=-1))))
        return w

    def centre_and_length(self):
        return self.centre.copy(), self.radius

    def certificate_ball(self):
        return super().certificate_ball()

    def loss(self, w, i):
        return super().loss(self._seen(w), i)

    def grad(self, w, i):
        return super().grad(self._seen(w), i)

    def hess(self, w, i):
        return super().hess(self._seen(w), i)

    def hvp(self, w, i, v):
        return super().hvp(self._seen(w), i, v)

    def batch_grad(self, w, i, batch):
        return super().batch_grad(self._seen(w), i, batch)

    def batch_hess(self, w, i, batch):
        return super().batch_hess(self._seen(w), i, batch)

    def batch_hvp(self, w, i, v, batch):
        return super().batch_hvp(self._seen(w), i, v, batch)


class _SpyWithoutBall(_Spy):
    certificate_ball = TaskFamily.certificate_ball                     # not offered: constants global


def _farthest_constant_point(fam):
    """The farthest point from the centre at which the contract's constant
    searches and oracle-variance checks evaluate an oracle."""
    s = _setup(fam, 0, 3, 2000, 3)
    fam._far = 0.0
    rows = _constant_rows(s) + _oracle_rows(s)
    assert not any(r["verdict"] == "error" for r in rows), rows
    return fam._far


def test_the_contract_searches_constants_only_inside_the_ball_even_from_starts_far_outside():
    fam = _Spy(**TINY, radius=0.5)
    assert fam.offers("certificate_ball")
    assert _farthest_constant_point(fam) <= 0.5 * (1 + 1e-12)
    free = _SpyWithoutBall(**TINY, radius=0.5)
    assert not free.offers("certificate_ball")
    assert _farthest_constant_point(free) > 2 * 0.5                # without the ball: far outside


def _ascend(value, z0, maxiter=80, h=1e-6):
    """Largest ``value`` (vectorised over rows) found by L-BFGS-B from ``z0``, with a
    forward-difference gradient evaluated in one call."""
    def negative(z):
        v = value(np.vstack([z, z + h * np.eye(z.size)]))
        return -v[0], -(v[1:] - v[0]) / h
    res = optimize.minimize(negative, z0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    return max(-res.fun, float(value(z0[None])[0]))


def _searched_sups(fam, starts=3, seed=11):
    """Sups over the ball found by projected ascents from random starts, per task:
    ``‖∇²f_i‖₂``, the Hessian change ``‖∇²f_i(x + tu) − ∇²f_i(x − tu)‖₂/2t``,
    ``σ`` (task spread of gradients), and the exact one-sample variances over the
    pool (``σ̃``; ``σ_H`` in the Frobenius norm, which bounds the spectral one)."""
    rng = np.random.default_rng(seed)
    c, R = fam.certificate_ball()
    d, t, M, n = fam.d, 1e-3 * R, fam.M, fam.n_pool
    every = {"idx": np.arange(n)[:, None]}
    sups = dict.fromkeys(("L", "rho", "sigma", "sigma_tilde", "sigma_H"), 0.0)

    def values(m):
        def L(Z):
            return np.abs(np.linalg.eigvalsh(fam.hess(_into(fam, Z, R), m))).max(-1)

        def rho(Z):
            x, u = _into(fam, Z[:, :d], R - t), Z[:, d:] / np.linalg.norm(Z[:, d:], axis=-1, keepdims=True)
            return np.abs(np.linalg.eigvalsh(fam.hess(x + t * u, m) - fam.hess(x - t * u, m))).max(-1) / (2 * t)

        def sigma(Z):
            G = fam.grad(_into(fam, Z, R)[:, None], np.arange(M))
            return np.sqrt(np.einsum("m,pm->p", fam.p, ((G - np.einsum("m,pmd->pd", fam.p, G)[:, None]) ** 2).sum(-1)))

        def sigma_tilde(Z):
            W = _into(fam, Z, R)
            e = fam.batch_grad(W[:, None], np.full(n, m), every) - fam.grad(W, m)[:, None]
            return np.sqrt((e ** 2).sum(-1).mean(-1))

        def sigma_H(Z):
            W = _into(fam, Z, R)
            E = fam.batch_hess(W[:, None], np.full(n, m), every) - fam.hess(W, m)[:, None]
            return np.sqrt((E ** 2).sum((-2, -1)).mean(-1))
        return {"L": L, "rho": rho, "sigma": sigma, "sigma_tilde": sigma_tilde, "sigma_H": sigma_H}

    for m in range(M):
        for name, value in values(m).items():
            if name == "sigma" and m:
                continue
            for _ in range(starts):
                z0 = _in_ball(fam, rng, fill=1.0)
                if name == "rho":
                    z0 = np.concatenate([z0, rng.standard_normal(d)])
                sups[name] = max(sups[name], _ascend(value, z0))
    return sups


def test_no_search_inside_the_ball_beats_a_certified_constant_and_none_is_absurdly_loose():
    """Ratios certified/found here (seed 1; seed 0 in brackets): L 6.6 (5.2),
    ρ 6.2 (4.5), σ 17 (10: a bound on gradient norms, not on their spread),
    σ̃ 3.7 (4.6), σ_H 4.6 (4.9, against the Frobenius variance it bounds)."""
    c = FAM.constants().values()
    found = _searched_sups(FAM)
    for name, sup in found.items():
        assert sup <= c[name], (name, sup, c[name])
        assert c[name] <= 25 * sup, (name, sup, c[name])


def test_the_per_sample_sups_hold_at_random_points_of_the_ball():
    """The ingredients of the constants (module docstring): ``|r_k| ≤ r̄_k``,
    ``‖∇net_k‖ ≤ J̄_k``, ``‖∇²net_k‖₂ ≤ Ḡ_k``, ``‖∇²net_k‖_F ≤ F̄_k``, at points
    drawn on the ball's boundary and inside."""
    s = FAM.sample_bounds()
    rng = np.random.default_rng(8)
    for w in np.vstack([_in_ball(FAM, rng, (40,)), _into(FAM, _in_ball(FAM, rng, (40,), 5.0), FAM.radius)]):
        for i in range(FAM.M):
            r, J, K = _per_sample(FAM, w, i)
            assert np.all(np.abs(r) <= s["r"][i])
            assert np.all(np.linalg.norm(J, axis=-1) <= s["J"][i] * (1 + 1e-12))
            assert np.all(np.linalg.norm(K, ord=2, axis=(-2, -1)) <= s["G"][i] * (1 + 1e-12))
            assert np.all(np.linalg.norm(K, axis=(-2, -1)) <= s["F"][i] * (1 + 1e-12))


def test_every_constant_is_an_upper_bound_on_the_ball_and_grows_with_the_radius():
    small, large = SinusoidMLP(**CONTRACT, radius=0.5, seed=1), SinusoidMLP(**CONTRACT, radius=2.0, seed=1)
    for row in small.constants().table():
        assert row["kind"] == "upper bound" and "upper bound on the ball ‖w − w_c‖ ≤ R = 0.5" in row["source"]
    cs, cl = small.constants().values(), large.constants().values()
    assert all(cs[k] < cl[k] for k in cs)
    assert small.inf_f_lower() == 0.0 and np.all(small.loss(_in_ball(small, np.random.default_rng(0), (5,)), 0) >= 0)


# --- negative controls ----------------------------------------------------------------------
class _RhoOverTen(SinusoidMLP):
    def constants(self):
        c = super().constants()
        return c.replace(rho=c.rho.value / 10)


class _LOverTen(SinusoidMLP):
    def constants(self):
        c = super().constants()
        return c.replace(L=c.L.value / 10)


@pytest.mark.parametrize("family, caught", [(_RhoOverTen, {"rho", "rho_i"}), (_LOverTen, {"L", "L_i"})])
def test_an_understated_constant_is_caught_by_its_own_check(family, caught):
    report = check_family(family(**TINY), raise_on_failure=False)
    assert set(report.failed) == caught


class _BallTooSmallForItsClaim(SinusoidMLP):
    """Claims the ball of radius 3 while its constants are those of radius 0.1."""

    def certificate_ball(self):
        return self.centre.copy(), 3.0

    def centre_and_length(self):
        return self.centre.copy(), 3.0 / (2 * np.sqrt(self.d))

    def constants(self):
        return SinusoidMLP(**TINY, radius=0.1).constants()


def test_constants_of_a_ball_too_small_for_where_they_are_used_are_beaten_outside_it():
    """The basis of "a ball radius made too small for the run": the constants of
    the ball of radius 0.1, evaluated up to distance 3 from the centre, are beaten
    there (an ascent of ‖∇²f_i‖₂ over ‖w − w_c‖ ≤ 3 passes the small ball's L),
    while the radius-3 family's L still bounds what is found; and a family that
    claims radius 3 with radius-0.1 constants fails the contract at L."""
    small, large = SinusoidMLP(**CONTRACT, radius=0.1, seed=1), SinusoidMLP(**CONTRACT, radius=3.0, seed=1)
    rng = np.random.default_rng(12)
    found = max(_ascend(lambda Z: np.abs(np.linalg.eigvalsh(small.hess(_into(small, Z, 3.0), m))).max(-1),
                        _in_ball(small, rng, fill=3.0), maxiter=30)
                for m in range(small.M) for _ in range(2))
    assert found > small.constants().L.value
    assert found <= large.constants().L.value
    report = check_family(_BallTooSmallForItsClaim(**TINY), raise_on_failure=False)
    assert {"L", "L_i"} <= set(report.failed)
    assert set(report.failed) <= CONSTANT_CHECKS | {"grad_oracle_variance", "hess_oracle_variance"}


# --- registry and parameters ---------------------------------------------------------------
def test_the_family_is_registered_with_its_parameters_and_describes_itself():
    assert family_parameters("sinusoid-mlp") == dict(M=10, width=20, n_pool=50, radius=1.0, p=None, seed=0)
    fam = make_family("sinusoid-mlp", M=2, width=3, n_pool=5, radius=0.5, p=[0.25, 0.75], seed=9)
    assert fam.describe() == dict(family="sinusoid-mlp", d=10, M=2, width=3, n_pool=5, radius=0.5, seed=9)
    np.testing.assert_allclose(fam.p, [0.25, 0.75])
    for bad in (dict(width=0), dict(n_pool=0), dict(radius=0.0), dict(M=2, p=[1.0])):
        with pytest.raises(ValueError):
            make_family("sinusoid-mlp", **bad)
    with pytest.raises(AttributeError, match="cannot be changed"):
        fam.radius = 2.0
