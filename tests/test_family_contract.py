"""The family contract, ``mamlcheck.testing.check_family``: the registered
families and the README's example family pass it, and deliberately broken
families fail it *in the check that names their fault*.

The README family below is the one printed in README.md ("Add your own
family"); ``test_readme_family_is_the_one_in_the_readme`` keeps the two equal.
"""
# --- README family: begin ---
import numpy as np

from mamlcheck.problems.base import Constant, Constants, TaskFamily, check_count, check_positive


class NoisyQuadratics(TaskFamily):
    """``f_i(w) = ½‖w − c_i‖²``; one sample's gradient is ``∇f_i(w) + ξ``,
    ``ξ ~ N(0, (s²/d) I)``, and its Hessian is exact.

    Constants (all exact): ``∇²f_i = I``, so ``L = 1`` and ``ρ = 0``;
    ``∇f_i − ∇f = c̄ − c_i`` at every ``w``, so ``σ² = Σ_i p_i ‖c_i − c̄‖²``;
    ``E‖ξ‖² = s²``, so ``σ̃ = s``; the Hessian has no noise, so ``σ_H = 0``.
    """

    name = "noisy-quadratics"

    def __init__(self, d=3, M=4, noise=0.5, seed=0):
        self.d, self.M = check_count("d", d), check_count("M", M)
        self.noise = check_positive("noise", noise, allow_zero=True)
        self.p = np.full(self.M, 1.0 / self.M)
        self.c = np.random.default_rng(seed).standard_normal((self.M, self.d))

    # exact oracles: w has shape (..., d), i broadcasts with w.shape[:-1]
    def loss(self, w, i):
        r = self._w(w) - self.c[self._i(i)]
        return 0.5 * np.sum(r * r, axis=-1)

    def grad(self, w, i):
        return self._w(w) - self.c[self._i(i)]

    def hess(self, w, i):
        shape = np.broadcast_shapes(self._w(w).shape[:-1], self._i(i).shape)
        return np.broadcast_to(np.eye(self.d), shape + (self.d, self.d)).copy()

    # stochastic oracles: a batch holds the mean noise of n samples per task index
    def draw_batch(self, i, n, rng, need="both"):
        scale = self.noise / np.sqrt(self.d * check_count("n", n))
        return {"xi": scale * rng.standard_normal(self._i(i).shape + (self.d,))}

    def batch_grad(self, w, i, batch):
        return self.grad(w, i) + batch["xi"]

    def batch_hess(self, w, i, batch):
        return self.hess(w, i)

    def constants(self):
        sigma = np.sqrt(self.p @ np.sum((self.c - self.p @ self.c) ** 2, axis=-1))
        return Constants(
            L=Constant(1.0, True, "∇²f_i = I"), rho=Constant(0.0, True, "∇²f_i is constant"),
            sigma=Constant(sigma, True, "∇f_i − ∇f = c̄ − c_i"),
            sigma_tilde=Constant(self.noise, True, "E‖ξ‖² = s²"),
            sigma_H=Constant(0.0, True, "the Hessian has no noise"),
            L_i=np.ones(self.M), rho_i=np.zeros(self.M))

    def inf_f_lower(self):
        return 0.0

    # optional capabilities: overriding one makes family.offers(name) True
    def centre_and_length(self):
        return self.p @ self.c, 1.0

    def inner_mean(self, w, i, alpha, D_in):
        return (1 - alpha) * self.grad(w, i)

    def outer_second(self, w, i, alpha, D_in, D_o):
        m = (1 - alpha) * self.grad(w, i)
        return np.outer(m, m) + (alpha ** 2 / D_in + 1 / D_o) * self.noise ** 2 / self.d * np.eye(self.d)

    def hess_factor(self, w, i, alpha, D_h):
        return (1 - alpha) ** 2 * np.eye(self.d)
# --- README family: end ---


from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import mamlcheck.testing  # noqa: E402
from mamlcheck._contract import COLUMNS  # noqa: E402
from mamlcheck.problems import make_family  # noqa: E402
from mamlcheck.problems.cosine_quadratic import CosineQuadratic  # noqa: E402
from mamlcheck.problems.robust_regression import RobustRegression  # noqa: E402
from mamlcheck.testing import check_family  # noqa: E402

SMALL = {
    "cosine-quadratic": dict(d=4, M=5),
    "robust-regression": dict(d=3, M=3, N=12),
    "hard-chain": dict(eps=0.05, Delta=20.0, L=3.0, M=3, tilt=0.7),
}
DERIVATIVE_CHECKS = {"grad_fd", "hess_fd", "hvp_vs_hess", "hvp_fd", "batch_hess_fd", "batch_hvp_vs_batch_hess",
                     "batch_hvp_fd", "vectorisation"}
CONSTANT_CHECKS = {"L", "L_i", "L_attained", "rho", "rho_i", "rho_attained", "sigma", "sigma_attained",
                   "sigma_tilde", "sigma_tilde_attained", "sigma_H", "sigma_H_attained"}
MOMENT_CHECKS = {"inner_mean", "outer_second", "hess_factor"}
FAST_CHECKS = {f"fast_{a}_{s}" for a in ("maml", "fomaml", "hfmaml") for s in ("mean", "variance")}


def _failed(family) -> set[str]:
    return set(check_family(family, raise_on_failure=False).failed)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_registered_families_pass_the_contract(name):
    report = check_family(make_family(name, **SMALL[name]))
    assert report.passed and report.failures == []
    assert list(report.table.columns) == list(COLUMNS)
    assert DERIVATIVE_CHECKS | CONSTANT_CHECKS <= set(report.table.check)
    assert report.table.check.is_unique


def test_the_readme_family_passes_with_every_exact_moment_checked():
    report = mamlcheck.testing.check_family(NoisyQuadratics())
    verdicts = dict(zip(report.table.check, report.table.verdict))
    assert all(verdicts[k] == "holds" for k in ("inner_mean", "outer_second", "hess_factor"))
    assert all(verdicts[k] == "skipped" for k in FAST_CHECKS)      # no fast sampler for this family
    assert verdicts["L_attained"] == verdicts["sigma_attained"] == "holds"


def test_readme_family_is_the_one_in_the_readme():
    """The README section shows exactly the family defined at the top of this
    file, and the one line that checks it."""
    source = Path(__file__).read_text(encoding="utf-8")
    family = source.split("# --- README family: begin ---\n")[1].split("# --- README family: end ---")[0]
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Add your own family")[1].split("\n## ")[0]
    assert family.strip() in section
    assert "mamlcheck.testing.check_family(NoisyQuadratics())" in section


# --- negative controls: the right check must fail -------------------------------------------
class _UnderstatedL(CosineQuadratic):
    """``constants()`` claims 0.8 L: the Hessian's norm beats it."""

    def constants(self):
        c = super().constants()
        return c.replace(L=0.8 * c.L.value)


class _FlippedHessian(RobustRegression):
    """Every Hessian oracle returns ``−∇²f``: consistent with itself, not with the gradient."""

    def hess(self, w, i):
        return -super().hess(w, i)

    def hvp(self, w, i, v):
        return -super().hvp(w, i, v)

    def batch_hess(self, w, i, batch):
        return -super().batch_hess(w, i, batch)

    def batch_hvp(self, w, i, v, batch):
        return -super().batch_hvp(w, i, v, batch)


class _LoudGradients(CosineQuadratic):
    """The additive gradient noise ``ξ`` drawn 1.3 times too large: unbiased, the
    Hessians untouched, but the gradient variance above ``σ̃²``."""

    def draw_batch(self, i, n, rng, need="both"):
        batch = super().draw_batch(i, n, rng, need)
        if "xi" in batch:
            batch["xi"] = 1.3 * batch["xi"]
        return batch


def test_an_understated_L_is_caught_by_the_L_check_alone():
    assert _failed(_UnderstatedL(**SMALL["cosine-quadratic"])) == {"L", "L_i"}


def test_a_sign_flipped_hessian_is_caught_by_the_finite_difference_checks():
    failed = _failed(_FlippedHessian(**SMALL["robust-regression"]))
    assert failed == {"hess_fd", "hvp_fd", "batch_hess_fd", "batch_hvp_fd"}


def test_gradient_noise_above_sigma_tilde_is_caught_by_the_variance_checks():
    """The constant search and the batch-variance test both fail.  So may the
    checks of what still describes the parent's law (its fast sampler, its
    exact moments): they no longer match the oracles.  Nothing else may."""
    failed = _failed(_LoudGradients(**SMALL["cosine-quadratic"]))
    assert {"sigma_tilde", "grad_oracle_variance"} <= failed
    assert failed - {"sigma_tilde", "grad_oracle_variance"} <= FAST_CHECKS | MOMENT_CHECKS


class _WrongInnerMean(NoisyQuadratics):
    def inner_mean(self, w, i, alpha, D_in):
        return self.grad(w, i)                                          # forgets the inner step


class _WrongOuterSecond(NoisyQuadratics):
    def outer_second(self, w, i, alpha, D_in, D_o):
        return super().outer_second(w, i, alpha, D_in, 1)               # ignores D_o


class _WrongHessFactor(NoisyQuadratics):
    def hess_factor(self, w, i, alpha, D_h):
        return (1 - 2 * alpha) * np.eye(self.d)                         # drops α²


@pytest.mark.parametrize("family, check", [(_WrongInnerMean, "inner_mean"), (_WrongOuterSecond, "outer_second"),
                                           (_WrongHessFactor, "hess_factor")])
def test_a_wrong_exact_moment_is_caught_by_its_own_check(family, check):
    assert _failed(family()) == {check}


def test_failures_raise_one_line_per_failed_check_with_its_numbers():
    with pytest.raises(AssertionError) as info:
        check_family(_UnderstatedL(**SMALL["cosine-quadratic"]))
    lines = str(info.value).splitlines()
    assert "fails 2 check(s)" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["L", "L_i"]
    L = CosineQuadratic(**SMALL["cosine-quadratic"]).constants().L.value
    assert f"bound {0.8 * L:.6g}" in lines[1] and "measured 6" in lines[1]


def test_a_family_that_raises_is_reported_not_crashed():
    class Broken(NoisyQuadratics):
        def hvp(self, w, i, v):
            raise RuntimeError("no hvp today")

    report = check_family(Broken(), raise_on_failure=False)
    assert not report.passed
    assert any("RuntimeError: no hvp today" in line for line in report.failures)


class _DoubledMetaGrad(NoisyQuadratics):
    """A closed-form ∇F twice the true one (and F off by 1): every ‖∇F‖ the runner records would be wrong."""

    def meta_grad(self, w, alpha):
        return 2 * (1 - alpha) * (self._w(w) - self.p @ self.c)

    def meta_loss(self, w, alpha):
        return 1.0 + 0.5 * (1 - alpha) ** 2 * np.sum((self._w(w)[..., None, :] - self.c) ** 2, -1) @ self.p


class _NoNeedKeyword(NoisyQuadratics):
    """``draw_batch`` without the ``need`` keyword the MAML estimator passes."""

    def draw_batch(self, i, n, rng):
        return super().draw_batch(i, n, rng)


def test_a_wrong_closed_form_meta_gradient_is_caught():
    report = check_family(_DoubledMetaGrad(), raise_on_failure=False)
    failed = set(report.table.loc[report.table.verdict.isin(["violated", "error"]), "check"])
    assert failed == {"meta_grad", "meta_loss"}, failed


def test_a_family_missing_a_call_the_estimators_make_is_caught():
    report = check_family(_NoNeedKeyword(), raise_on_failure=False)
    failed = set(report.table.loc[report.table.verdict.isin(["violated", "error"]), "check"])
    assert "steps_maml" in failed, failed
