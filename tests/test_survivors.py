"""Places where a small error would change a scientific result, each pinned
against an independent computation: the literature's constants, the runner's
first hits and seed average, each noise component of the fast directions,
robust-regression's certificates, the ledger's verdict, the cells' source
hash, the noise-floor plateau window and the bias experiment's inner
variance.  The exact constants of cosine-quadratic are in
``tests/test_exact_constants.py``.

Statistical tests state their false-alarm rate (at most 1e-6 for the whole
test) and their power against the alternative they are written for.
"""
import importlib.util
import math
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mamlcheck as mc
from mamlcheck import literature as lit
from mamlcheck.algorithms.fast import register_fast
from mamlcheck.algorithms.fast_cosine_quadratic import CosineQuadraticSampler
from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.steps import _task_directions, direction
from mamlcheck.experiments import bias_din, cells, ledger, noise_floor, proof_cmd
from mamlcheck.problems.cosine_quadratic import CosineQuadratic
from mamlcheck.problems.robust_regression import RobustRegression
from mamlcheck.theory.checks import verdict


# --- 1. the literature's constants, as transcribed in docs/THEORY.md ---------------------
# Each value is read off docs/THEORY.md (the section is in the comment), written
# here as a literal: a change to ``mamlcheck/literature.py`` that does not come
# with a corrected transcription fails here.
TRANSCRIBED = {
    "SMOOTH_L_FACTOR": 4.0,            # §3 smoothness lemma: L(w) = 4L + 2ρα E_i‖∇f_i(w)‖
    "SMOOTH_RHO_FACTOR": 2.0,          # §3 smoothness lemma: the 2 of 2ρα
    "STEP_C": {"maml": 12.0,           # §3 and §4: β_k = 1/(12 L̃(w_k))
               "fomaml": 18.0,         # §5: β_k = 1/(18 L̃(w_k))
               "hfmaml": 25.0},        # §6: β_k = 1/(25 L̃(w_k))
    "INV_LT_MEAN_LOWER": 0.8,          # §3 step-size lemma: E[1/L̃] ≥ 0.8/L(w)
    "INV_LT_SQ_UPPER": 3.125,          # §3 step-size lemma: E[1/L̃²] ≤ 3.125/L(w)²
    "B_PRIME_FACTOR": 0.5,             # §3: B′ ≥ ⌈½(ρασ/L)²⌉
    "D_BETA_FACTOR": 4.0,              # §3: D_β ≥ ⌈(2ρασ̃/L)²⌉ = ⌈4(ρασ̃/L)²⌉
    "ALPHA_MAX_LD": {"maml": 1.0 / 6.0,     # §4: α ∈ (0, 1/(6L)]
                     "fomaml": 1.0 / 10.0,  # §5: α ≤ 1/(10L)
                     "hfmaml": 1.0 / 6.0},  # §6: α ≤ 1/(6L)
    "B_MIN": 20,                       # §4: B ≥ 20
    "D_H_FACTOR": {"maml": 2.0,        # §4: D_h ≥ ⌈2α²σ_H²⌉
                   "hfmaml": 36.0},    # §6: D_h ≥ ⌈36(ασ_H)²⌉
    "M1_GRAD": 2.0,                    # §4 (7): 2‖∇F‖²
    "M1_NOISE": 0.08,                  # §4 (7): 0.08 σ̃²/D_in
    "M2_GRAD": 40.0,                   # §4 (8): 40‖∇F‖²
    "M2_SIGMA": 14.0,                  # §4 (8): 14σ²
    "M2_DO": 2.0,                      # §4 (8): σ̃²·2/D_o
    "M2_DIN": 1.0 / 6.0,               # §4 (8): σ̃²·1/(6 D_in)
    "DECREASE_DEN": 1600.0,            # §4 (11)–(14): 1/1600 and T ≤ 1600Δ(...)/ε²
    "FLOOR": {"maml": (61.0, 61.0),    # §4: √(61(1+ρασ/L)S), 61(ρα/L)S
              "fomaml": (14.0, 14.0),  # §5: √(14(1+ρασ/L)S′), 14(ρα/L)S′
              "hfmaml": (36.0, 36.0)}, # §6: 6√((1+ρασ/L)S) = √(36(1+ρασ/L)S), 36(ρα/L)S
    "FOMAML_FLOOR_ALPHA": 20.0,        # §5: S′ = σ²(1/B + 20α²L²) + ...
    "HF_DELTA_DEN": 6.0,               # §6: δ = 1/(6ρα‖v_i‖)
    "CHAIN_GRAD_LIP": 152.0,           # §7: ∇f̄_T is 152-Lipschitz
    "CHAIN_GAP_PER_COORD": 12.0,       # §7: f̄_T(0) − inf f̄_T ≤ 12T
    "CHAIN_T_DEN": 1824.0,             # §7: T(ε) = ⌊ΔL/(1824ε²)⌋, 1824 = 12·152
}


def _numeric_names(module) -> set[str]:
    return {n for n, v in vars(module).items()
            if n.isupper() and isinstance(v, (int, float, dict, tuple)) and not isinstance(v, bool)}


def test_every_literature_constant_is_the_value_transcribed_in_THEORY_md():
    for name, value in TRANSCRIBED.items():
        assert getattr(lit, name) == value, f"literature.{name} = {getattr(lit, name)!r}, THEORY.md says {value!r}"
    # every constant of the table is pinned here (a new one must be transcribed too)
    assert _numeric_names(lit) == set(TRANSCRIBED)


# --- 2, 3. the runner's first hits and seed average, recomputed from its own trace -----
FAM_RUN = dict(d=3, M=5, noise_grad=1.0, noise_amp=0.5, seed=1)
EPS = [3.0, 1.0, 0.5, 0.2]
W0 = np.array([[2.0, -1.0, 0.5], [0.3, 0.1, -0.2], [-1.5, 2.5, 1.0], [3.0, 3.0, -3.0]])


def _traced_run(w0, **kw):
    fam = mc.family("cosine-quadratic", **FAM_RUN)
    return mc.run(fam, mc.Hyper("maml", alpha=0.05, B=4), eps=EPS, seeds=len(w0), budget=400, w0=w0,
                  trace_stride=1, **kw)


def _grad_norm_matrix(res):
    """``‖∇F(w_k)‖`` as a ``(K+1, R)`` array from the trace, with diverged seeds as NaN."""
    tr = res.trace.sort_values(["k", "seed"])
    ks, seeds = np.unique(tr.k), np.unique(tr.seed)
    assert np.array_equal(ks, np.arange(res.iterations + 1))        # stride 1: every iteration is traced
    g = tr.grad_norm.to_numpy().reshape(ks.size, seeds.size).copy()
    g[tr.diverged.to_numpy().reshape(g.shape)] = np.nan
    return g


def _first_hits_from_trace(g):
    """Per seed and ε, the first ``k`` with ``‖∇F(w_k)‖ ≤ ε`` (``None`` if never), by a plain loop."""
    out = {}
    for r in range(g.shape[1]):
        for e in EPS:
            out[(r, e)] = next((k for k in range(g.shape[0]) if g[k, r] <= e), None)
    return out


@pytest.fixture(scope="module")
def noisy_run():
    return _traced_run(W0)


def test_each_seeds_first_hit_is_the_first_traced_iteration_at_or_below_eps(noisy_run):
    res = noisy_run
    g = _grad_norm_matrix(res)
    want = _first_hits_from_trace(g)
    got = {(int(r.seed), float(r.eps)): (None if pd.isna(r.first_k) else int(r.first_k))
           for r in res.table.itertuples()}
    assert got == want
    # not a vacuous comparison: hits after k = 0, different per seed, and misses
    hits = [k for k in want.values() if k is not None]
    assert sum(k > 0 for k in hits) >= 8 and len(set(hits)) >= 8 and None in want.values()
    # the seed-average's first hits, from the same trace
    mean = g.mean(1)
    for row in res.mean_table.itertuples():
        k = next((k for k in range(len(mean)) if mean[k] <= row.eps), None)
        assert (None if pd.isna(row.mean_first_k) else int(row.mean_first_k)) == k


def test_a_diverged_seed_leaves_the_others_first_hits_where_their_trace_puts_them():
    """Seed 4 starts outside the divergence ball and is frozen at k = 1; the
    runner's other branch (not every seed alive) must record the same hits."""
    res = _traced_run(np.vstack([W0, np.full(3, 80.0)]), divergence_bound=50.0)
    assert res.table.groupby("seed").diverged.first().tolist() == [False] * 4 + [True]
    g = _grad_norm_matrix(res)
    want = _first_hits_from_trace(g)
    got = {(int(r.seed), float(r.eps)): (None if pd.isna(r.first_k) else int(r.first_k))
           for r in res.table.itertuples()}
    assert got == want and sum(k is not None and k > 1 for k in want.values()) >= 8
    alive = g[1:, :4]                                         # k ≥ 1: the mean over the live seeds
    np.testing.assert_array_equal(res.mean_grad_norm[1:], alive.mean(1))


def test_the_seed_average_is_the_mean_of_the_traced_norms_not_their_median(noisy_run):
    res = noisy_run
    g = _grad_norm_matrix(res)
    assert res.mean_grad_norm.shape == (g.shape[0],)
    np.testing.assert_array_equal(res.mean_grad_norm, np.add.reduce(g, axis=1) / g.shape[1])
    # the seeds differ enough that the mean and the median are far apart
    assert np.mean(np.abs(np.mean(g, 1) - np.median(g, 1)) > 1e-3 * np.mean(g, 1)) > 0.9


# --- 4. each noise component of the fast directions, one at a time ------------------------
R_FAST = 10_000
FA_FAST = 1e-6          # false-alarm rate of the whole test function below, all cases together
BIG = 10 ** 12          # a batch this large makes its noise ~1e-6 of the tested one's: off
D_TESTED = 9            # 1/√9 = 1/3 versus 1/9: a wrong batch scaling is a factor 9 in variance
W_FAST = np.array([0.3, -1.0, 0.7])
CENTRES = np.tile([0.4, -0.3, 0.2], (2, 1))     # identical tasks: the task draw adds no variance
# component -> (source of the noise, the batch it is averaged over)
COMPONENTS = {"xi_in": ("noise_grad", "D_in"), "xi_o": ("noise_grad", "D_o"),
              "eta_in": ("noise_amp", "D_in"), "eta_o": ("noise_amp", "D_o"), "eta_h": ("noise_amp", "D_h")}
CASES = [(a, c) for a in ("maml", "hfmaml", "fomaml") for c in COMPONENTS if not (a == "fomaml" and c == "eta_h")]
CONTROL_SCALE = 0.85    # the control's noise is 15 % too small: its variance 27.75 % too small
Z_FAST = stats.norm.isf(FA_FAST / (2 * len(CASES) * 3))     # Bonferroni: cases × d coordinates, two-sided


def _columns(alg: str, comp: str, B: int, Bp: int, d: int, total: int) -> slice:
    """The columns of ``comp`` among the fast path's normals (the layout of
    ``CosineQuadraticSampler._factors``: [L̃ (B′(d+1))] [ξ_in (Bd) | HF: ξ_o (Bd) |
    η_in (B) | η_o (B) | η_h (B) | ζ (d)])."""
    off, nb = Bp * (d + 1), B * d
    if comp == "xi_in":
        return slice(off, off + nb)
    if comp == "xi_o":
        return slice(off + nb, off + 2 * nb) if alg == "hfmaml" else slice(total - d, total)
    base = off + (2 * nb if alg == "hfmaml" else nb)
    j = {"eta_in": 0, "eta_o": 1, "eta_h": 2}[comp]
    return slice(base + j * B, base + (j + 1) * B)


def _off_by_15_percent(comp: str) -> type:
    """A ``CosineQuadratic`` whose registered fast sampler draws ``comp`` with its
    standard deviation scaled by ``CONTROL_SCALE`` (everything else unchanged)."""
    family_cls = type(f"OffBy15_{comp}", (CosineQuadratic,), {})

    @register_fast(family_cls)
    class Sampler(CosineQuadraticSampler):
        def _factors(self, alg, alpha, D_in, D_o, D_h, B, Bp, D_beta):
            k = super()._factors(alg, alpha, D_in, D_o, D_h, B, Bp, D_beta)
            scales = k.scales.copy()
            scales[_columns(alg, comp, B, Bp, self.fam.d, scales.size)] *= CONTROL_SCALE
            return k._replace(scales=scales)

    return family_cls


CONTROLS = {c: _off_by_15_percent(c) for c in COMPONENTS}


def _isolating(comp: str) -> tuple[dict, dict]:
    """Family parameters and batch sizes under which only ``comp`` is random."""
    source, batch = COMPONENTS[comp]
    fam_kw = dict(d=3, M=2, gamma=1.0, omega=2.0, centres=CENTRES,
                  noise_grad=3.0 if source == "noise_grad" else 0.0,
                  noise_amp=1.0 if source == "noise_amp" else 0.0)
    sizes = {"D_in": BIG, "D_o": BIG, "D_h": BIG, batch: D_TESTED}
    return fam_kw, sizes


def _variance_z(a, b):
    """Per coordinate, ``(s_a² − s_b²)`` over its standard error
    ``((m4_a − s_a⁴)/n_a + (m4_b − s_b⁴)/n_b)^½`` (fourth central moments: valid
    without normality)."""
    va, vb = a.var(0, ddof=1), b.var(0, ddof=1)
    m4a, m4b = ((a - a.mean(0)) ** 4).mean(0), ((b - b.mean(0)) ** 4).mean(0)
    return np.abs(va - vb) / np.sqrt((m4a - va ** 2) / len(a) + (m4b - vb ** 2) / len(b))


@pytest.mark.parametrize("algorithm, component", CASES)
def test_each_noise_component_of_the_fast_direction_has_the_generic_variance(algorithm, component):
    """Only one noise component is random (the other source switched off, the
    other batches ``10¹²``), its batch is 9, and ``R = 10⁴`` fast directions are
    compared with ``R`` generic ones (``_task_directions``, draw by draw from
    the oracles) in variance, per coordinate.

    False alarm: the threshold ``Z_FAST`` is the two-sided normal quantile at
    ``1e-6 / (2 · cases · d)``; the z statistic is asymptotically normal (its
    standard error from the fourth moments), so the whole parametrized test
    raises a false alarm with probability ≤ 1e-6 (Bonferroni).

    Power: a wrong batch scaling (``1/D`` for ``1/√D``) divides the component's
    variance by 9; the negative control (the component's noise 15 % too small,
    variance × 0.7225) moves the statistic by
    ``0.2775/√((2/R)(1 + 0.7225²)) ≈ 16`` standard errors for a Gaussian
    direction (ξ_o, η_o, η_h of MAML are exactly Gaussian here; the others
    nearly, at α = 0.08; measured kurtosis 2.96–3.16), against a threshold
    ``Z_FAST ≈ 5.6``: power ``Φ(16 − 5.6) ≥ 1 − 1e-20``.  The same test must
    reject the control."""
    fam_kw, sizes = _isolating(component)
    hyper = Hyper(algorithm, alpha=0.08, B=3, **sizes)
    fam = CosineQuadratic(**fam_kw)
    rho = fam.constants().rho.value
    w = np.tile(W_FAST, (R_FAST, 1))
    rng = np.random.default_rng(7)
    generic = _task_directions(fam, w, fam.draw_tasks((R_FAST, 3), rng), hyper, rho, rng).mean(1)
    fast = direction(fam, w, hyper, rho, np.random.default_rng(8), fast=True)
    control_fam = CONTROLS[component](**fam_kw)
    control = direction(control_fam, w, hyper, rho, np.random.default_rng(9), fast=True)
    assert np.all(generic.var(0) > 0)                         # the component is really random
    assert np.all(_variance_z(fast, generic) < Z_FAST), _variance_z(fast, generic)
    assert np.any(_variance_z(control, generic) >= Z_FAST), _variance_z(control, generic)


# --- 5. robust-regression's certified constants on explicit tiny data ---------------------
C1, C2, C3 = 1 / math.sqrt(2), 1.0, (4 + 3 * math.sqrt(2)) / 8      # sup of |φ'|, |φ''|, |φ'''| (docstring)
X_RR = np.array([[[0.3, -0.4], [0.5, 0.1], [-0.2, 0.6]],
                 [[0.9, 0.2], [-0.1, -0.3], [0.4, 0.4]],
                 [[0.05, 0.7], [0.6, -0.6], [-0.8, 0.1]]])
Y_RR = np.array([[0.2, -1.0, 0.7], [1.5, 0.0, -0.3], [0.1, 0.4, -2.0]])
# two data sets: on the first, σ²'s min takes its first term (Σ p_i g_i²); on the
# second (one dominant, likely task), its second term (Σ p_i (ḡ + (1 − 2p_i) g_i)²)
DATA_RR = {"first term": (X_RR, [0.5, 0.3, 0.2]),
           "second term": (np.concatenate([X_RR[:1], 0.01 * X_RR[1:]]), [0.9, 0.05, 0.05])}


def _lam_max_2x2(S) -> float:
    """Largest eigenvalue of a symmetric 2×2 matrix, in closed form."""
    a, b, c = S[0][0], S[0][1], S[1][1]
    return (a + c) / 2 + math.sqrt(((a - c) / 2) ** 2 + b * b)


def _by_hand(X, p):
    """The constants of the module docstring of ``robust_regression``, from the
    data with scalar arithmetic (no numpy linear algebra), and the two terms of σ²."""
    M, N = len(X), len(X[0])
    L_i, rho_i, g, m2, m4 = [], [], [], [], []
    for i in range(M):
        xs = [[float(v) for v in x] for x in X[i]]
        norms = [math.hypot(*x) for x in xs]
        S = [[sum(x[j] * x[k] for x in xs) / N for k in range(2)] for j in range(2)]
        T = [[sum(n * x[j] * x[k] for n, x in zip(norms, xs)) / N for k in range(2)] for j in range(2)]
        L_i.append(C2 * _lam_max_2x2(S))                         # A2: c₂ λ_max(S_i)
        rho_i.append(C3 * _lam_max_2x2(T))                       # A3: c₃ λ_max((1/N)Σ‖x‖xxᵀ)
        g.append(C1 * min(sum(norms) / N, math.sqrt(_lam_max_2x2(S))))   # A4: g_i ≥ sup‖∇f_i‖
        m2.append(sum(n ** 2 for n in norms) / N)
        m4.append(sum(n ** 4 for n in norms) / N)
    g_bar = sum(pi * gi for pi, gi in zip(p, g))
    terms = (sum(pi * gi ** 2 for pi, gi in zip(p, g)),
             sum(pi * (g_bar + (1 - 2 * pi) * gi) ** 2 for pi, gi in zip(p, g)))
    return dict(L=max(L_i), rho=max(rho_i), sigma=math.sqrt(min(terms)),
                sigma_tilde=C1 * math.sqrt(max(m2)),             # A5: c₁ (max_i mean‖x‖²)^½
                sigma_H=C2 * math.sqrt(max(m4))), terms          # A5: c₂ (max_i mean‖x‖⁴)^½


@pytest.mark.parametrize("branch", list(DATA_RR))
def test_robust_regression_constants_are_their_docstring_formulas_on_explicit_data(branch):
    X, p = DATA_RR[branch]
    want, terms = _by_hand(X, p)
    assert (terms[0] < terms[1]) == (branch == "first term") and max(terms) > 1.5 * min(terms)
    got = RobustRegression(d=2, M=3, N=3, X=X, Y=Y_RR, p=p).constants().values()
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-12, abs=0), name


def test_the_sups_of_phis_derivatives_are_the_docstrings():
    """The ``c₁, c₂, c₃`` the formulas above use, on a grid of step 4e-5 (the
    derivatives are smooth at their maxima: the grid error is ~1e-9 relative)."""
    r = np.linspace(-40, 40, 2_000_001)
    t = 1 / (2 + r * r)
    assert np.max(np.abs(2 * r * t)) == pytest.approx(C1, rel=1e-8)
    assert np.max(np.abs(2 * t * (4 * t - 1))) == pytest.approx(C2, rel=1e-8)
    assert np.max(np.abs(4 * r * t * t * (1 - 8 * t))) == pytest.approx(C3, rel=1e-8)


# --- 6. the ledger's verdict reads the upper end of the interval ---------------------------
def test_the_ledgers_verdict_on_explicit_intervals_reads_the_upper_end():
    lo = np.array([1.0, 1.0, 3.0, 1.0, 2.0])
    hi = np.array([1.5, 3.0, 4.0, 2.0, 2.0 + 5e-10])
    bound = np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    want = ["holds", "inconclusive", "violated", "holds", "holds"]    # the last within tol = 1e-9
    assert list(ledger._verdict(lo, hi, bound, 1e-9)) == want
    assert list(verdict(lo, hi, bound, "upper", 1e-9)) == want
    assert verdict(1.0, 3.0, 2.0, "upper") == "inconclusive"
    assert verdict(2.5, 3.0, 2.0, "upper") == "violated" and verdict(1.0, 1.9, 2.0, "upper") == "holds"


def test_a_noisy_ledgers_rows_are_judged_by_the_upper_end_of_their_interval():
    """A stochastic run with few replications gives rows whose interval
    straddles the bound (``left_lo ≤ right < left_hi``): they must be
    inconclusive, never held.  Rows clear of the bound by far more than the
    rounding tolerance (``ROUND_TOL`` = 1e-9, relative) must have the verdict
    their interval gives."""
    fam, hyper, w0, eps = proof_cmd.default_spec("cosine-quadratic", "tiny").build()
    led = ledger.evaluate(fam, hyper, eps=eps, seeds=3, budget=30, w0=w0, points=3, draws=3, reps=20,
                          cond_reps=2)
    r = led.rows
    margin = 1e-6 * np.maximum(1.0, np.maximum(np.abs(r.right), np.abs(r.left.fillna(0))))
    straddle = (r.left_lo <= r.right - margin) & (r.left_hi > r.right + margin)
    below = r.left_hi <= r.right - margin
    above = r.left_lo > r.right + margin
    assert (r.left_lo < r.left_hi).sum() >= 20 and straddle.sum() >= 10          # real, wide intervals
    assert (r.verdict[straddle] == "inconclusive").all()
    assert (r.verdict[below] == "holds").all() and (r.verdict[above] == "violated").all()
    assert (r.holds == (r.verdict == "holds")).all()
    s = led.summary.set_index("step")
    assert (s.held == r.groupby("step").holds.sum().reindex(s.index, fill_value=0)).all()


# --- 7. the cells' source hash ----------------------------------------------------------
def _package_folders() -> list[Path]:
    """The folders of the installed package and its subpackages (each with an
    ``__init__.py``), as ``source_hash`` finds them."""
    found = [Path(f) for pkg in cells.PACKAGES for f in importlib.util.find_spec(pkg).submodule_search_locations]
    return [f for f in found if (f / "__init__.py").is_file()]


def test_the_source_hash_is_a_hex_digest_that_changes_with_one_byte(tmp_path):
    assert re.fullmatch(r"[0-9a-f]{16}", cells.source_hash()), repr(cells.source_hash())
    folders = _package_folders()
    assert {f.name for f in folders} >= {"problems", "algorithms", "theory", "experiments"}
    copies = []
    for folder in folders:
        dest = tmp_path / folder.name
        shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        copies.append(dest)
    h = cells.hash_folders(copies)
    assert re.fullmatch(r"[0-9a-f]{16}", h) and h == cells.hash_folders(folders)   # names and bytes only
    target = next(c for c in copies if c.name == "problems") / "base.py"
    data = target.read_bytes()
    target.write_bytes(data + b"\n")                           # one byte more
    changed = cells.hash_folders(copies)
    assert re.fullmatch(r"[0-9a-f]{16}", changed) and changed != h
    target.write_bytes(data.replace(b"0", b"1", 1))            # one byte changed
    assert cells.hash_folders(copies) not in (h, changed)
    target.write_bytes(data)
    assert cells.hash_folders(copies) == h
    (copies[0] / "extra.py").write_text("x = 1\n")              # a new file
    assert cells.hash_folders(copies) != h


def test_two_source_hashes_give_two_cell_keys(monkeypatch):
    params = {"B": 20, "D_in": 1}
    keys = set()
    for src in ("0123456789abcdef", "fedcba9876543210"):
        monkeypatch.setattr(cells, "source_hash", lambda src=src: src)
        keys.add(cells.cell_key("noise_floor", "tiny", params))
    assert len(keys) == 2
    monkeypatch.undo()
    assert cells.cell_key("noise_floor", "tiny", params) not in keys


# --- 8. the noise-floor plateau window; the bias experiment's inner variance ---------------
def test_the_noise_floor_plateau_averages_the_second_half_of_the_run_only(monkeypatch):
    """A hand-made trace whose first half is far from its second half: the
    plateau must be the mean over ``k ≥ budget // 2`` (the module docstring's
    "second half of the run"), per seed; a diverged row is left out."""
    K, seeds = 10, [0, 1, 2]
    values = {0: [100.0] * 5 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
              1: [50.0] * 5 + [0.5] * 6,
              2: [9.0] * 5 + [2.0, 2.0, 2.0, 2.0, 2.0, 8.0]}
    rows = [(k, s, values[s][k], s == 2 and k == K) for k in range(K + 1) for s in seeds]
    trace = pd.DataFrame(rows, columns=["k", "seed", "grad_norm", "diverged"])
    table = pd.DataFrame({"seed": seeds, "diverged": [False, False, True]})
    monkeypatch.setattr(noise_floor, "run", lambda *a, **kw: SimpleNamespace(trace=trace, table=table))
    monkeypatch.setattr(noise_floor, "stationary_point", lambda fam, alpha: np.zeros(fam.d))
    params = {**noise_floor.cells("tiny")[0], "seeds": 3, "budget": K}
    out = noise_floor.compute(params)
    plateau = out[out.kind == "plateau"].set_index("seed").grad_norm
    assert out.window_start.iloc[0] == K // 2 == 5
    assert plateau.to_dict() == {0: np.mean([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 1: 0.5, 2: 2.0}
    assert np.mean(values[0]) != plateau[0]                   # the whole run would give another value


FAM_BIAS = dict(d=3, M=4, noise_grad=3.0, noise_amp=1.0)
ALPHA_BIAS = 0.1
W_BIAS = np.array([0.4, -0.7, 1.1])


class _Ones:
    """An ``rng`` whose normals are all 1: a batch drawn with it holds the
    standard deviations of the family's batch noise (``draw_batch`` draws
    ``scale · standard_normal``)."""

    def standard_normal(self, shape=None):
        return np.ones(shape)

    def random(self, shape=None):
        return np.full(shape, 0.5)


def _oracle_inner_variance(fam, w, alpha, D_in, i=0):
    """Per coordinate, the variance of the inner perturbation
    ``Z = −α(∇̃f_i(w, D_in) − ∇f_i(w))`` from the oracle alone: the noise is
    linear in the batch's independent Gaussians ``ξ̄_j`` and ``η̄``, so
    ``Var Z = α² Σ_s (response to one standard deviation of s)²``."""
    sd = fam.draw_batch(np.asarray(i), D_in, _Ones())
    g = fam.grad(w, i)
    responses = []
    for j in range(fam.d):
        xi = np.zeros(fam.d)
        xi[j] = sd["xi"][j]
        responses.append(fam.batch_grad(w, i, {"xi": xi, "eta": np.asarray(0.0)}) - g)
    responses.append(fam.batch_grad(w, i, {"xi": np.zeros(fam.d), "eta": sd["eta"]}) - g)
    return alpha ** 2 * np.sum(np.square(responses), axis=0)


def _bias_by_hand(fam, w, alpha, var):
    """``Σ_i p_i (I − α∇²f_i(w)) γω(1 − e^{−ω²v/2}) ⊙ sin(ω(w − α∇f_i(w)))`` with dense Hessians."""
    out = np.zeros(fam.d)
    for i in range(fam.M):
        u = w - alpha * fam.grad(w, i)
        e = fam.gamma * fam.omega * (1 - np.exp(-0.5 * fam.omega ** 2 * var)) * np.sin(fam.omega * u)
        out += fam.p[i] * (e - alpha * fam.hess(w, i) @ e)
    return out


@pytest.mark.parametrize("D_in", [1, 4, 25])
def test_the_bias_experiments_inner_variance_is_the_oracles_noise_variance(D_in):
    fam = mc.family("cosine-quadratic", **FAM_BIAS)
    var = _oracle_inner_variance(fam, W_BIAS, ALPHA_BIAS, D_in)
    np.testing.assert_allclose(bias_din.inner_noise_var(fam, W_BIAS, ALPHA_BIAS, D_in), var, rtol=1e-12)
    np.testing.assert_allclose(fam.inner_noise_var(W_BIAS, ALPHA_BIAS, D_in), var, rtol=1e-12)
    exact = bias_din.exact_bias(fam, W_BIAS, ALPHA_BIAS, D_in)
    np.testing.assert_allclose(exact, _bias_by_hand(fam, W_BIAS, ALPHA_BIAS, var), rtol=1e-10)
    for wrong in (0.85, 0.9, 1.1, 1.2):                      # negative controls: ±10–20 % in the variance
        assert not np.allclose(exact, _bias_by_hand(fam, W_BIAS, ALPHA_BIAS, wrong * var), rtol=1e-3, atol=0)


def test_the_bias_experiments_table_is_the_exact_bias_of_the_oracles_law():
    """``compute``'s bias column at its own points, against the bias built from
    the oracle's noise variance (tiny cell: 2 points and w*, 6 values of D_in)."""
    params = bias_din.cells("tiny")[0]
    out = bias_din.compute(params)
    fam = mc.family(params["family"], **params["family_params"])
    alpha = params["alpha_L"] / fam.constants().L.value
    labels, W = bias_din._points(fam, alpha, params["trajectory_k"])
    for label, w in zip(labels, W):
        for D_in in params["D_in"]:
            row = out[(out.point == label) & (out.D_in == D_in)]
            want = np.linalg.norm(_bias_by_hand(fam, w, alpha, _oracle_inner_variance(fam, w, alpha, D_in)))
            assert row.bias.item() == pytest.approx(want, rel=1e-9)
            wrong = np.linalg.norm(_bias_by_hand(fam, w, alpha, 1.2 * _oracle_inner_variance(fam, w, alpha, D_in)))
            assert row.bias.item() != pytest.approx(wrong, rel=1e-3)


N_VAR = 100_000
FA_VAR = 1e-6


def _variance_rejected(samples, claimed, fa=FA_VAR):
    """Two-sided χ² test per coordinate of ``Var = claimed`` for Gaussian samples,
    Bonferroni over coordinates: false alarm ``fa`` in all."""
    n, d = samples.shape
    stat = (n - 1) * samples.var(0, ddof=1) / claimed
    lo, hi = stats.chi2.ppf(fa / (2 * d), n - 1), stats.chi2.isf(fa / (2 * d), n - 1)
    return bool(np.any((stat < lo) | (stat > hi)))


def test_the_inner_variance_matches_the_sampled_inner_step_and_a_20_percent_error_does_not():
    """``N = 10⁵`` inner perturbations ``Z = −α(∇̃f_i(w, 1) − ∇f_i(w))`` drawn
    with the family's own oracle; ``Z`` is Gaussian (the batch noise is), so
    ``(N − 1)s²/v ~ χ²_{N−1}`` per coordinate.

    False alarm: two-sided χ² quantiles at ``1e-6/(2d)``, Bonferroni over the
    ``d`` coordinates: ≤ 1e-6.  Power (exact, computed below from χ²): against
    a claimed variance 20 % too large (the true variance is the claim / 1.2),
    15 % too small, and 10 % off either way, each ≥ 1 − 1e-9; the test asserts
    those powers and that the controls are rejected."""
    fam = mc.family("cosine-quadratic", **FAM_BIAS)
    rng = np.random.default_rng(21)
    i = np.full(N_VAR, 2)
    w = np.broadcast_to(W_BIAS, (N_VAR, fam.d))
    Z = -ALPHA_BIAS * (fam.batch_grad(w, i, fam.draw_batch(i, 1, rng)) - fam.grad(W_BIAS, 2))
    v = bias_din.inner_noise_var(fam, W_BIAS, ALPHA_BIAS, 1)
    assert not _variance_rejected(Z, v)
    d = fam.d
    lo, hi = stats.chi2.ppf(FA_VAR / (2 * d), N_VAR - 1), stats.chi2.isf(FA_VAR / (2 * d), N_VAR - 1)
    for wrong in (1.2, 0.85, 1.1, 0.9):
        # under the alternative (N−1)s²/(wrong·v) ~ χ²/wrong: one coordinate alone rejects with this power
        power = stats.chi2.cdf(lo * wrong, N_VAR - 1) + stats.chi2.sf(hi * wrong, N_VAR - 1)
        assert power >= 1 - 1e-9, (wrong, power)
        assert _variance_rejected(Z, wrong * v), wrong
