"""The step-size estimate ``L̃(w) = 4L + 2ρα (1/B′)Σ_j‖∇̃f_j(w, D_β)‖`` (THEORY.md §3)
against a hand computation on the same draws, and its bookkeeping: its default
path, its shape, the draws it does not consume, the record it needs."""
import numpy as np
import pytest

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.steps import estimate_L_tilde
from mamlcheck.problems import make_family

FAM = make_family("cosine-quadratic", d=3, M=4)
L, RHO = FAM.constants().L.value, FAM.constants().rho.value
W = np.random.default_rng(1).standard_normal((5, 3))          # R = 5 seeds, d = 3



def test_the_estimate_is_the_formula_on_the_mean_norm_of_its_own_draws():
    h = Hyper("maml", alpha=0.05, B_prime=4, D_beta=2)
    out = estimate_L_tilde(FAM, W, h, L, RHO, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    tasks = FAM.draw_tasks((5, 4), rng)
    norms = np.linalg.norm(FAM.sample_grad(W[:, None, :], tasks, 2, rng), axis=-1)    # (R, B′)
    assert out.shape == (5,)
    assert np.array_equal(out, 4 * L + 2 * RHO * 0.05 * norms.mean(axis=1))


def test_the_default_path_is_the_generic_one(monkeypatch):
    from mamlcheck.algorithms.fast import L_TILDE, sampler
    calls = []
    cls = type(sampler(FAM, L_TILDE))
    original = cls.grad_norms
    monkeypatch.setattr(cls, "grad_norms", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    h = Hyper("maml", alpha=0.05, B_prime=4, D_beta=2)
    a = estimate_L_tilde(FAM, W, h, L, RHO, np.random.default_rng(5))
    b = estimate_L_tilde(FAM, W, h, L, RHO, np.random.default_rng(5), fast=False)
    assert np.array_equal(a, b) and calls == []
    estimate_L_tilde(FAM, W, h, L, RHO, np.random.default_rng(5), fast=True)
    assert calls == [1]


@pytest.mark.parametrize("alpha, rho", [(0.0, RHO), (0.05, 0.0)])
def test_without_a_gradient_term_it_draws_nothing_and_has_one_value_per_seed(alpha, rho):
    rng = np.random.default_rng(9)
    before = rng.bit_generator.state
    out = estimate_L_tilde(FAM, W, Hyper("maml", alpha=alpha, B_prime=4, D_beta=2), L, rho, rng)
    assert rng.bit_generator.state == before
    assert np.array_equal(out, np.full(5, 4 * L))


@pytest.mark.parametrize("missing", [dict(B_prime=4), dict(D_beta=2), {}])
def test_an_unresolved_record_is_refused_even_when_only_one_size_is_missing(missing):
    with pytest.raises(ValueError, match="resolved"):
        estimate_L_tilde(FAM, W, Hyper("maml", alpha=0.05, **missing), L, RHO, np.random.default_rng(0))
