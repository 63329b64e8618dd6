"""The conformance tool: correct MAML implementations of each library pass at
``1e-10`` on every family, each deliberately broken one fails with the right
diagnosis, and the diagnosis tells every wrong variant apart.

Run by ``make test-conformance`` (CI), which installs the ``conformance``
extra; ``make test`` deselects the ``conformance`` marker.  The diagnosis
tests that need no framework run in both.
"""
import numpy as np
import pytest

from mamlcheck.conformance import adapters, broken, oracle
from mamlcheck.conformance import checker as conf
from mamlcheck.problems import make_family

from tests.conftest import TEST_ROOT

SEED = TEST_ROOT % 2 ** 31


def _impl(name, factory, framework, first_order):
    return conf.Implementation(name, framework, factory(first_order=first_order), first_order=first_order)


def _needs(*modules):
    """Skip unless each distribution is installed (found, not imported: learn2learn's
    own ``__init__`` does not import here, ``adapters`` works around it)."""
    import importlib.util
    for m in modules:
        if importlib.util.find_spec(m) is None:
            pytest.skip(f"{m} is not installed (the conformance extra)")


# --- the reference and its variants (NumPy only) ---------------------------------------------------
@pytest.mark.parametrize("N", [1, 2, 3])
@pytest.mark.parametrize("name", list(conf.FAMILIES))
def test_the_exact_per_task_reference_averages_to_grad_F(name, N):
    """``Σ_i p_i G_i`` with infinite batches is ``∇F_N``, which the families
    compute by their own code (closed forms at ``N = 1``)."""
    from mamlcheck.algorithms.objective import grad_F
    fam = make_family(name, **conf.FAMILIES[name])
    alpha = 1 / (6 * fam.constants().L.value)
    w = conf._points(fam, 1, np.random.default_rng(SEED))[0]
    got = sum(fam.p[i] * oracle.meta_gradient(fam, i, w, alpha, None, None, N) for i in range(fam.M))
    np.testing.assert_allclose(got, grad_F(fam, w, alpha, N), rtol=1e-12, atol=1e-15)


def _batch_case():
    fam = make_family("cosine-quadratic", **conf.FAMILIES["cosine-quadratic"])
    cases = conf._cases(fam, points=1, draws=1, seed=SEED)["batches"]
    return fam, cases, 1 / (6 * fam.constants().L.value)


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_every_wrong_variant_gets_its_own_diagnosis(first_order):
    """An output equal to a wrong variant (on a family with batch noise, where
    all variants differ) is diagnosed as that variant, not another one."""
    fam, cases, alpha = _batch_case()
    variants = oracle.variants(first_order)
    want = oracle.expected_variant(first_order)
    for N in (1, 2):
        vals = {k: [v.compute(fam, c, alpha, N) for c in cases] for k, v in variants.items()}
        for name in variants:
            if name == want:
                continue
            out = conf._verdict(vals[name], vals[want], vals, variants, want)
            assert out["verdict"] == "FAIL" and out["diagnosis"] == variants[name].diagnosis, (N, name, out)


def test_an_output_off_by_1e_minus_8_fails_and_matches_no_variant():
    """The tolerance is the one stated: a correct output perturbed by a relative
    ``1e-8`` fails, and no wrong variant is claimed for it."""
    fam, cases, alpha = _batch_case()
    variants = oracle.variants(False)
    vals = {k: [v.compute(fam, c, alpha, 1) for c in cases] for k, v in variants.items()}
    rng = np.random.default_rng(SEED)
    bumped = [e + 1e-8 * np.linalg.norm(e) * rng.standard_normal(e.shape) / np.sqrt(e.size) for e in vals["maml"]]
    out = conf._verdict(bumped, vals["maml"], vals, variants, "maml")
    assert out["verdict"] == "FAIL" and out["diagnosis"].startswith("matches no known variant")
    tiny = [e * (1 + 1e-13) for e in vals["maml"]]
    assert conf._verdict(tiny, vals["maml"], vals, variants, "maml")["verdict"] == "pass"


def test_batch_mix_ups_are_invisible_on_a_family_with_deterministic_oracles():
    """hard-chain's oracles ignore the batch, so swapping batches changes nothing:
    the tool must say so (``indistinguishable``) rather than claim to rule it out."""
    fam = make_family("hard-chain", **conf.FAMILIES["hard-chain"])
    alpha = 1 / (6 * fam.constants().L.value)
    case = conf._cases(fam, 1, 1, SEED)["batches"][0]
    v = oracle.variants(False)
    np.testing.assert_array_equal(v["inner_on_outer"].compute(fam, case, alpha, 1),
                                  v["maml"].compute(fam, case, alpha, 1))


# --- the libraries (the conformance extra) -------------------------------------------------------------
LIBS = [("torch.func", adapters.torch_func, "torch", ("torch",)),
        ("jax.grad", adapters.jax_grad, "jax", ("jax",)),
        ("learn2learn", adapters.learn2learn, "torch", ("torch", "learn2learn")),
        ("higher", adapters.higher, "torch", ("torch", "higher"))]


@pytest.mark.conformance
@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("name, factory, framework, modules", LIBS, ids=[x[0] for x in LIBS])
def test_each_library_computes_the_exact_meta_gradient(name, factory, framework, modules, first_order):
    """On every family, N = 1 and 2: the library's meta-gradient equals ``G_i``
    on the same batches, the exact per-task term and ``∇F`` to ``1e-10``."""
    _needs(*modules)
    impl = _impl(name, factory, framework, first_order)
    report = conf.check(impl, steps=(1, 2), points=1, draws=1, seed=SEED)
    assert report.passed, str(report)
    assert set(report.table.family) == set(conf.FAMILIES)
    assert report.table.max_rel_error.max() <= conf.TOL


@pytest.mark.conformance
@pytest.mark.parametrize("name, factory, kw, lib, diagnosis", broken.BROKEN, ids=[b[3] + str(k) for k, b in
                                                                                 enumerate(broken.BROKEN)])
def test_each_broken_implementation_is_caught_with_the_right_diagnosis(name, factory, kw, lib, diagnosis):
    """Every row on which the bug changes the meta-gradient fails with the
    expected diagnosis, on both families with batch noise; the rows that pass
    are those where the bug's variant equals the correct one (batch mix-ups with
    infinite batches or deterministic oracles) and list it as indistinguishable."""
    _needs("torch", lib)
    report = conf.check(conf.Implementation(name, "torch", factory(**kw)), steps=(1, 2), points=1, draws=1,
                        seed=SEED)
    t = report.table
    per_task = t[t.check != "∇F"]
    failed = per_task[per_task.verdict == "FAIL"]
    assert set(failed.diagnosis) == {diagnosis}, str(report)
    assert set(failed.family) >= {"cosine-quadratic", "robust-regression"}
    variant = next(k for k, v in oracle.variants(False).items() if v.diagnosis == diagnosis)
    passed = per_task[per_task.verdict == "pass"]
    assert all(variant in s.split(";") for s in passed.indistinguishable), str(report)


@pytest.mark.conformance
def test_an_implementation_returning_adapted_parameters_is_differentiated_by_the_tool():
    """``returns="adapted"``: the tool takes the outer gradient itself."""
    _needs("torch")
    from torch.func import grad

    def adapt(loss, w, inner, alpha, steps):
        for _ in range(steps):
            w = w - alpha * grad(loss)(w, inner)
        return w

    impl = conf.Implementation("adapt only", "torch", adapt, returns="adapted")
    assert conf.check(impl, steps=(1, 3), points=1, draws=1, seed=SEED).passed


@pytest.mark.conformance
def test_an_implementation_that_raises_is_reported_not_fatal():
    _needs("torch")

    def bad(loss, w, inner, outer, alpha, steps):
        raise RuntimeError("element 0 of tensors does not require grad")

    report = conf.check(conf.Implementation("raises", "torch", bad), points=1, draws=1, seed=SEED)
    assert set(report.table.verdict) == {"error"}
    assert report.table.diagnosis.str.contains("does not require grad").all()


# --- the command line ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--steps", "0"], ["--steps", "1,x"], ["--steps", "11"], ["--points", "0"],
                                  ["--draws", "x"], ["--seed", "-1"]])
def test_bad_input_exits_2_with_one_line_naming_the_flag(argv, capsys, tmp_path):
    from mamlcheck.experiments.cli import main
    csv = tmp_path / "c.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["conformance", *argv, "--csv", str(csv), "--markdown", ""])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and argv[0] in err
    assert not csv.exists()


@pytest.mark.conformance
def test_the_command_writes_the_table_and_every_library_row_passes(tmp_path, capsys):
    _needs("torch", "jax", "higher", "learn2learn")
    import pandas as pd
    from mamlcheck.experiments.cli import main
    csv, md = tmp_path / "c.csv", tmp_path / "C.md"
    assert main(["conformance", "--steps", "1,2", "--points", "1", "--draws", "1", "--csv", str(csv),
                 "--markdown", str(md)]) == 0
    t = pd.read_csv(csv, keep_default_na=False)
    lib = t[t.kind == "library"]
    assert set(lib.implementation) == {"torch.func", "jax.grad", "learn2learn MAML", "higher innerloop_ctx"}
    assert set(lib["mode"]) == {"second-order", "first-order"} and set(lib.family) == set(conf.FAMILIES)
    assert (lib.verdict == "pass").all()
    text = md.read_text()
    assert "## Libraries" in text and "## Deliberately broken" in text and "| NO |" not in text


@pytest.mark.conformance
def test_the_readme_example_runs_outside_the_repository(tmp_path):
    """The README's "bring your own meta-gradient" example, as written, against
    the installed package."""
    _needs("torch")
    import subprocess
    import sys
    from tests.test_readme import _blocks
    (code,) = _blocks("Check your MAML implementation (conformance)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "pass" in out.stdout and "FAIL" not in out.stdout
