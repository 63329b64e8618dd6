"""``check_family(family)``: the contract every task family must pass.

A family (``problems.base.TaskFamily``) promises analytic derivatives,
stochastic oracles with stated moments, and certified constants
``L, ρ, σ, σ̃, σ_H`` (assumptions A2–A5, THEORY.md §2).  ``check_family`` tries
to break each promise and returns one row per check (``FamilyReport.table``):

1. **derivatives**: ``grad``, ``hess``, ``hvp`` and, on a drawn batch,
   ``batch_hess``, ``batch_hvp`` against central differences (tolerance set by
   the scheme's order, ``_contract.fd_check``) at random points; ``hvp``
   against ``hess @ v``; every oracle called with leading axes against row by row.
2. **constants**: an adversarial search (random starts, then BFGS ascents)
   for the supremum each constant bounds; it must not beat the constant, and
   must come within ``ATTAIN`` (90 %) of a constant marked ``exact``.  For a
   family whose constants hold on a ball only (``certificate_ball``), every
   point searched or checked lies inside it (``_Setup.inside``).
3. **oracles**: the mean of ``batch_grad`` / ``batch_hess`` over many batches is
   ``grad`` / ``hess``, and their variance is at most ``σ̃²/n`` / ``σ_H²/n``.
4. **exact moments** (``inner_mean``, ``outer_second``, ``hess_factor``, where
   the family offers them) against the samplers.
5. **fast paths**: ``steps.direction(fast=True)`` has the mean and variance of
   the generic estimator (``fast=False``) for every algorithm it serves.

Each statistical check has false-alarm rate ``FALSE_ALARM = 1e-6`` (all its
coordinates together; see ``_contract`` for the tests); a failing run is
evidence against the family, never bad luck with a seed.  Verdicts: ``holds``,
``inconclusive`` (a sampled quantity whose confidence interval contains the
bound: allowed), ``violated`` or ``error`` (failures), ``skipped``.

Also here: ``fd_jacobian``, ``fd_tolerance`` and ``H``, the central-difference
helpers of the families' own tests.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mamlcheck import _contract as C
from mamlcheck._contract import ATTAIN, FALSE_ALARM, ROUNDING, FamilyReport
from mamlcheck._contract_steps import objective_rows, step_rows

__all__ = ["check_family", "FamilyReport", "FALSE_ALARM", "ATTAIN", "fd_jacobian", "fd_tolerance", "H"]

H = C.EPS ** (1.0 / 3.0)


def fd_jacobian(fun, x: np.ndarray, h: float = H) -> np.ndarray:
    """Jacobian of ``fun: R^d -> R^m`` (or scalar) at ``x`` by central differences
    with step ``h·max(1, max|x|)``: shape ``fun(x).shape + (d,)``."""
    x = np.asarray(x, dtype=float)
    step = h * max(1.0, float(np.abs(x).max()))
    return C.central_differences(fun, x, np.eye(x.shape[-1]), step)[0]


def fd_tolerance(*scales: np.ndarray) -> float:
    """``1e-6 · max(1, max|scale|)``: with ``h = ε^{1/3}`` truncation and rounding
    are both ``O(ε^{2/3}) ≈ 4e-11`` of the scale, so this leaves four orders of
    magnitude for third derivatives, while a wrong derivative is off by O(1)."""
    return 1e-6 * max([1.0] + [float(np.max(np.abs(a))) for a in scales])


# --- the setting shared by the checks -----------------------------------------------------------
#: For a family with a ``certificate_ball`` (constants certified on ``‖w − w_c‖ ≤ R``
#: only), every point at which a constant is searched or checked is kept within
#: ``BALL_FILL·R`` of the centre, and the pairs ``x ± tu`` of the ``ρ`` search
#: use ``t ≤ BALL_STEP·R``, so that they stay inside too.
BALL_FILL = 1.0 - 1.0 / 50.0
BALL_STEP = 1.0 / 100.0


@dataclass
class _Setup:
    family: object
    seed: int
    draws: int
    n: int
    centre: np.ndarray = None
    length: float = 1.0
    points: np.ndarray = None
    tasks: np.ndarray = None
    worst: dict = field(default_factory=dict)    # (w, task) where a sampled sup was found
    ball: tuple = None                           # (centre, R) of certificate_ball, if offered

    def inside(self, W: np.ndarray) -> np.ndarray:
        """``W`` with its first ``d`` coordinates (a point; a search may append a
        direction) pulled radially towards the ball's centre to distance at most
        ``BALL_FILL·R``; unchanged (the same array) for families whose constants
        are global."""
        if self.ball is None:
            return W
        centre, R = self.ball
        d = self.family.d
        W = np.asarray(W, dtype=float)
        D = W[..., :d] - centre
        norm = np.linalg.norm(D, axis=-1, keepdims=True)
        scale = np.minimum(1.0, BALL_FILL * R / np.maximum(norm, 1e-300))
        return np.concatenate([centre + D * scale, W[..., d:]], axis=-1)

    def rng(self, name: str) -> np.random.Generator:
        """An independent stream per check, so that one check's draws never
        depend on how many another made."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])

    @property
    def c(self):
        return self.family.constants()


def _setup(family, seed: int, n_points: int, draws: int, n: int) -> _Setup:
    """Test points ``centre + length·r·u`` (``u`` uniform on the unit sphere) at
    distances ``r = 1, √d, √d/2, …`` (``centre_and_length`` if offered, else the
    origin and 1: the first point has norm 1), covering both readings of
    ``length``, a norm or a coordinate's scale; a random task for each.  For a
    family with a ``certificate_ball`` the points are then pulled into the ball
    (``_Setup.inside``; the draws are the same)."""
    s = _Setup(family, seed, draws, n)
    d = family.d
    if C.offers(family, "centre_and_length"):
        centre, length = family.centre_and_length()
        s.centre, s.length = np.broadcast_to(np.asarray(centre, float), (d,)).copy(), float(length)
    else:
        s.centre, s.length = np.zeros(d), 1.0
    rng = s.rng("points")
    radii = np.array([1.0, np.sqrt(d), 0.5 * np.sqrt(d)])[np.arange(n_points) % 3]
    s.points = s.centre + s.length * radii[:, None] * C.directions(rng, n_points, d)
    s.tasks = rng.integers(0, family.M, n_points)
    if C.offers(family, "certificate_ball"):
        centre, radius = family.certificate_ball()
        s.ball = (np.broadcast_to(np.asarray(centre, float), (d,)).copy(), float(radius))
        s.points = s.inside(s.points)
    return s


# --- 1. derivatives ------------------------------------------------------------------------
DERIVATIVES = {
    "grad_fd": "grad = central differences of loss",
    "hess_fd": "hess = central differences of grad",
    "hvp_vs_hess": "hvp(w, i, v) = hess(w, i) @ v",
    "hvp_fd": "hvp = central difference of grad along v",
    "batch_hess_fd": "batch_hess = central differences of batch_grad (same batch)",
    "batch_hvp_vs_batch_hess": "batch_hvp(w, i, v, D) = batch_hess(w, i, D) @ v",
    "batch_hvp_fd": "batch_hvp = central difference of batch_grad along v (same batch)",
    "vectorisation": "oracles called with leading axes = called row by row",
}


def _derivative_rows(s: _Setup) -> list[dict]:
    """At each test point (and its random task), the analytic derivatives
    against central differences of step ``h = ε^{1/3}·length`` with the
    tolerance of ``_contract.fd_check`` (the measured ``h²`` term, rounding
    ``~ε S/h``, ``S`` from ``grad_rounding_scale`` if offered), and the
    products against the matrices to rounding; each row reports the point
    nearest to failing.  Deterministic: no false alarms beyond rounding."""
    fam, h = s.family, H * s.length
    rng = s.rng("derivatives")
    worst: dict[str, tuple[float, float]] = {}

    def keep(name, err, tol):
        if name not in worst or err / max(tol, 1e-300) > worst[name][0] / max(worst[name][1], 1e-300):
            worst[name] = (err, tol)

    for x, i in zip(s.points, s.tasks):
        v = rng.standard_normal(fam.d)
        v /= np.abs(v).max()
        g, Hx = fam.grad(x, i), fam.hess(x, i)
        scale = float(fam.grad_rounding_scale(x, i)) if C.offers(fam, "grad_rounding_scale") else 0.0
        keep("grad_fd", *C.fd_check(lambda z: fam.loss(z, i), x, g, h))
        keep("hess_fd", *C.fd_check(lambda z: fam.grad(z, i), x, Hx, h, scale=scale))
        keep("hvp_vs_hess", np.abs(fam.hvp(x, i, v) - Hx @ v).max(), ROUNDING * np.abs(Hx * v).sum(-1).max())
        keep("hvp_fd", *C.fd_check(lambda z: fam.grad(z, i), x, fam.hvp(x, i, v), h, dirs=v, scale=scale))
        i1 = np.array([i])
        b = fam.draw_batch(i1, s.n, rng)
        bg = lambda z: fam.batch_grad(z[None], i1, b)[0]
        Hb = fam.batch_hess(x[None], i1, b)[0]
        keep("batch_hess_fd", *C.fd_check(bg, x, Hb, h, scale=scale))
        hv = fam.batch_hvp(x[None], i1, v[None], b)[0]
        keep("batch_hvp_vs_batch_hess", np.abs(hv - Hb @ v).max(), ROUNDING * np.abs(Hb * v).sum(-1).max())
        keep("batch_hvp_fd", *C.fd_check(bg, x, hv, h, dirs=v, scale=scale))
    rows = [C.row(k, DERIVATIVES[k], "contract", *worst[k]) for k in DERIVATIVES if k in worst]
    return rows + C.guard("vectorisation", DERIVATIVES["vectorisation"], lambda: _vectorisation_row(s))


def _vectorisation_row(s: _Setup) -> list[dict]:
    """The layouts the algorithms use: points × tasks elementwise, points against
    all tasks (``objective``), and many points against one drawn batch (the
    constant searches); compared to the same calls one row at a time."""
    fam, rng = s.family, s.rng("vectorisation")
    W, I = s.points, s.tasks
    V = rng.standard_normal(W.shape)
    P, m = len(W), np.arange(min(fam.M, 8))
    b = fam.draw_batch(I, s.n, rng)
    one = lambda p: C.take_rows(b, slice(p, p + 1))
    iK = np.full(3, I[0])
    bK = fam.draw_batch(iK, s.n, rng)
    pairs = {
        "loss": (fam.loss(W, I), [fam.loss(W[p], I[p]) for p in range(P)]),
        "grad": (fam.grad(W, I), [fam.grad(W[p], I[p]) for p in range(P)]),
        "hess": (fam.hess(W, I), [fam.hess(W[p], I[p]) for p in range(P)]),
        "hvp": (fam.hvp(W, I, V), [fam.hvp(W[p], I[p], V[p]) for p in range(P)]),
        "batch_grad": (fam.batch_grad(W, I, b), [fam.batch_grad(W[p:p + 1], I[p:p + 1], one(p))[0] for p in range(P)]),
        "batch_hess": (fam.batch_hess(W, I, b), [fam.batch_hess(W[p:p + 1], I[p:p + 1], one(p))[0] for p in range(P)]),
        "batch_hvp": (fam.batch_hvp(W, I, V, b),
                      [fam.batch_hvp(W[p:p + 1], I[p:p + 1], V[p:p + 1], one(p))[0] for p in range(P)]),
        "grad(w[:, None], arange(M))": (fam.grad(W[:, None], m), [[fam.grad(W[p], k) for k in m] for p in range(P)]),
        "batch_grad(w[:, None], i, D)": (fam.batch_grad(W[:, None], iK, bK),
                                         [fam.batch_grad(W[p], iK, bK) for p in range(P)]),
    }
    worst, name = 0.0, ""
    for k, (together, alone) in pairs.items():
        together, alone = np.asarray(together, float), np.asarray(alone, float)
        if together.shape != alone.shape:
            raise ValueError(f"{k}: shape {together.shape} with leading axes, {alone.shape} row by row")
        err = np.abs(together - alone).max(initial=0.0) / max(np.abs(alone).max(initial=0.0), 1e-300)
        if not err <= worst:
            worst, name = err, k
    return [C.row("vectorisation", DERIVATIVES["vectorisation"], "contract", worst, ROUNDING,
                  note=f"worst: {name}" if name else "")]


# --- 2. constants: adversarial search -----------------------------------------------------------
STATEMENTS = {
    "L": ("sup_{w,i} ‖∇²f_i(w)‖₂ ≤ L", "A2"),
    "rho": ("sup ‖∇²f_i(x) − ∇²f_i(y)‖₂/‖x − y‖ ≤ ρ", "A3"),
    "sigma": ("sup_w (Σ_i p_i ‖∇f_i(w) − ∇f(w)‖²)^½ ≤ σ", "A4"),
    "sigma_tilde": ("sup_{w,i} (E‖∇̃f_i(w, 1 sample) − ∇f_i(w)‖²)^½ ≤ σ̃", "A5"),
    "sigma_H": ("sup_{w,i} (E‖∇̃²f_i(w, 1 sample) − ∇²f_i(w)‖₂²)^½ ≤ σ_H", "A5"),
}


def _starts(s: _Setup, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """The family's ``attaining_points`` (if offered) for the constant integer
    vectors ``k = j·(1, …, 1)``, ``|j| ≤ 2``, and a few random ones; and ``n``
    random starts at distances ``length·r`` from the centre, ``r`` log-uniform
    on ``[1/4, 2√d]``; all pulled into the certificate's ball, if any."""
    d = s.family.d
    r = np.exp(rng.uniform(np.log(0.25), np.log(2 * np.sqrt(d)), n))
    X, A = s.centre + s.length * r[:, None] * C.directions(rng, n, d), np.zeros((0, d))
    if C.offers(s.family, "attaining_points"):
        k = np.vstack([np.outer(np.arange(-2, 3), np.ones(d, int)), rng.integers(-3, 4, (3, d))])
        try:
            A = np.asarray(s.family.attaining_points(k), float).reshape(-1, d)
        except Exception:        # noqa: BLE001 - extra starts are optional
            A = np.zeros((0, d))
    return s.inside(A), s.inside(X)


def _constant_rows(s: _Setup) -> list[dict]:
    """Search for the supremum each constant bounds (``L``: ``‖∇²f_i‖₂``; ``ρ``: the
    ratio for pairs ``x ± tu``, ``t = length/100``, whose sup over ``x, u`` is
    the Hessian's Lipschitz constant as ``t → 0``; ``σ``: the task spread of
    gradients; ``σ̃``, ``σ_H``: ``_sampled``).  Deterministic quantities are
    compared to rounding (``ROUNDING`` relative, plus ``10³ε‖∇²f‖/t`` for ``ρ``).
    With a ``certificate_ball``, every evaluation is at a point pulled into the
    ball (``_Setup.inside``: the local ascents move freely, their values are
    those of the projected points) and ``t ≤ R/100``, so ``x ± tu`` stays inside."""
    fam, c, rng = s.family, s.c, s.rng("constants")
    d, M, step = fam.d, fam.M, 1e-6 * s.length
    A, R = _starts(s, max(16, min(64, int(2e6 // (M * d * d)))), rng)
    X, few = np.vstack([A, R]), np.vstack([A[:5], R[:6]])
    p, tasks, t = np.asarray(fam.p, float), np.arange(M), 1e-2 * s.length
    inside = s.inside
    if s.ball is not None:
        t = min(t, BALL_STEP * s.ball[1])

    def curvature(W, m):
        return C.spectral_norm(fam.hess(inside(W), m))

    def curvature_svd(x, m):
        return np.linalg.norm(fam.hess(inside(x), m), ord=2)

    def hess_change(P, m, norm=C.spectral_norm):
        """``‖∇²f_m(x + tu) − ∇²f_m(x − tu)‖₂/(2t)`` for ``P = [x | z]``, ``u = z/‖z‖``."""
        P = inside(P)
        x, z = P[..., :d], P[..., d:]
        u = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-300)
        return norm(fam.hess(x + t * u, m) - fam.hess(x - t * u, m)) / (2 * t)

    def spread(W, m=0):
        G = fam.grad(inside(np.atleast_2d(W))[:, None], tasks)
        dev = G - np.einsum("m,pmd->pd", p, G)[:, None]
        return np.sqrt(np.einsum("m,pm->p", p, (dev ** 2).sum(-1)))

    XZ = np.hstack([X, rng.standard_normal(X.shape)])
    rounding_rho = 1e3 * C.EPS * c.L.value / t
    searches = {
        "L": lambda: _deterministic(s, "L", curvature, X, step, curvature_svd, c.L, c.L_i,
                                    lambda x, m: ROUNDING * c.L.value),
        "rho": lambda: _deterministic(s, "rho", hess_change, XZ, step,
                                      lambda x, m: hess_change(x, m, lambda S: np.linalg.norm(S, ord=2)),
                                      c.rho, c.rho_i, lambda x, m: ROUNDING * c.rho.value + rounding_rho,
                                      n_local=6),
        "sigma": lambda: _deterministic(s, "sigma", spread, X, step, lambda x, m: spread(x)[0], c.sigma, None,
                                        lambda x, m: ROUNDING * (c.sigma.value
                                                                 + np.abs(fam.grad(inside(x), tasks)).max()),
                                        one_task=True),
        "sigma_tilde": lambda: _sampled(s, "sigma_tilde", few, step, rng),
        "sigma_H": lambda: _sampled(s, "sigma_H", few, step, rng),
    }
    return [r for name, search in searches.items()
            for r in C.guard(name, STATEMENTS[name][0], search, STATEMENTS[name][1])]


def _deterministic(s, name, value, starts, step, exact_value, const, per_task, tol, one_task=False, n_local=3):
    """Rows ``name`` (not beaten), ``name_i`` (per task, if given) and
    ``name_attained`` for a sup found by search; ``exact_value(x, task)``
    re-evaluates the winner with SVD norms, ``tol(x, task)`` is the rounding
    allowance there."""
    best, (x, m) = C.sup_over_tasks(value, starts, 1 if one_task else s.family.M, step, n_local)
    x = s.inside(x)             # where the value was found (the ascents' points are evaluated pulled in)
    measured, tol = max(float(exact_value(x, m)), float(best.max())), float(tol(x, m))
    statement, source = STATEMENTS[name]
    rows = [C.row(name, statement, source, measured, const.value, tol=tol, note=f"task {m}")]
    if per_task is not None:
        ratio = best / np.where(per_task > 0, per_task, 1e-300)
        k = int(np.argmax(ratio))
        rows.append(C.row(f"{name}_i", f"per task: {statement}_i", source, best[k], per_task[k],
                          tol=tol, note=f"task {k}"))
    return rows + [_attained(name, const, measured, measured, measured, tol)]


def _attained(name, const, measured, lo, hi, tol) -> dict:
    statement = f"search reaches ≥ {ATTAIN:g}·{name} (marked exact)"
    if not const.exact:
        return C.skipped(f"{name}_attained", statement, "exactness", "upper bound (exact=False): not required")
    return C.row(f"{name}_attained", statement, "exactness", measured, ATTAIN * const.value,
                 kind="lower", lo=lo, hi=hi, tol=tol)


def _noise_sq(fam, name: str, W: np.ndarray, m: int, iK, b, svd: bool = False) -> np.ndarray:
    """``‖∇̃f_m(w, D_k) − ∇f_m(w)‖²`` (``σ̃``) or ``‖∇̃²f_m(w, D_k) − ∇²f_m(w)‖₂²``
    (``σ_H``; by SVD if ``svd``) for points ``W (P, d)`` and the ``K`` drawn
    batches: ``(P, K)``."""
    if name == "sigma_tilde":
        e = fam.batch_grad(W[:, None], iK, b) - fam.grad(W, m)[:, None]
        return (e ** 2).sum(-1)
    E = fam.batch_hess(W[:, None], iK, b) - fam.hess(W, m)[:, None]
    return (np.linalg.norm(E, ord=2, axis=(-2, -1)) if svd else C.spectral_norm(E)) ** 2


def _sampled(s: _Setup, name: str, starts, step, rng) -> list[dict]:
    """Sup of a one-sample variance: searched on ``K_s`` fixed draws per task
    (common random numbers make the objective smooth in ``w``), then measured
    at the winner on ``s.draws`` fresh draws: the interval holds the variance
    there with false-alarm ``FALSE_ALARM`` per side (``_contract.mean_interval``),
    so ``violated`` (the whole interval above the constant) is a false alarm with
    probability ≤ 1e-6, whatever the search did."""
    fam, const = s.family, getattr(s.c, name)
    K_s = 256 if name == "sigma_tilde" else 96
    fixed = {}

    def value(W, m):
        if m not in fixed:
            iK = np.full(K_s, m)
            fixed[m] = (iK, fam.draw_batch(iK, 1, rng))
        return np.sqrt(_noise_sq(fam, name, s.inside(np.atleast_2d(W)), m, *fixed[m]).mean(-1))
    _, (x, m) = C.sup_over_tasks(value, starts, fam.M, step, n_local=2)
    x = s.inside(x)
    s.worst[name] = (x, m)
    iK = np.full(s.draws, m)
    q = _noise_sq(fam, name, x[None], m, iK, fam.draw_batch(iK, 1, s.rng(name)), svd=True)[0]
    mean, lo, hi = C.mean_interval(q)
    root = lambda v: float(np.sqrt(max(v, 0.0)))
    statement, source = STATEMENTS[name]
    tol = ROUNDING * (const.value + 1.0)
    return [C.row(name, statement, source, root(mean), const.value, lo=root(lo), hi=root(hi), tol=tol,
                  note=f"task {m}, {s.draws} draws"),
            _attained(name, const, root(mean), root(lo), root(hi), tol)]


# --- 3. oracle means and variances -------------------------------------------------------------
def _oracle_rows(s: _Setup) -> list[dict]:
    """At a test point and where the search found the largest one-sample
    variance: the mean of ``s.draws`` batch oracles of ``s.n`` samples equals the
    exact derivative (z-test per coordinate), and their variance is at most
    ``σ̃²/n`` (``σ_H²/n``, spectral norm) by a one-sided test.  Each row has
    false-alarm rate 1e-6: Bonferroni over the two locations (and inside
    ``mean_z_ratio`` over coordinates)."""
    rows = []
    for kind, name in (("grad", "sigma_tilde"), ("hess", "sigma_H")):
        rows += C.guard(f"{kind}_oracle_mean", f"E[batch_{kind}] = {kind}", lambda: _oracle(s, kind, name))
    return rows


def _oracle(s: _Setup, kind: str, name: str) -> list[dict]:
    fam, n, K, const = s.family, s.n, s.draws, getattr(s.c, name).value
    where = [(s.points[0], int(s.tasks[0]))] + ([s.worst[name]] if name in s.worst else [])
    alpha = FALSE_ALARM / len(where)
    rng = s.rng(f"oracle {kind}")
    mean_ratio, var = 0.0, None
    for w, m in where:
        iK = np.full(K, m)
        b = fam.draw_batch(iK, n, rng)
        if kind == "grad":
            exact, draws = fam.grad(w, m), fam.batch_grad(w, iK, b)
            sq = ((draws - exact) ** 2).sum(-1)
            flat, target = draws, exact
        else:
            exact, draws = fam.hess(w, m), fam.batch_hess(w, iK, b)
            sq = np.linalg.norm(draws - exact, ord=2, axis=(-2, -1)) ** 2
            up = np.triu_indices(fam.d)
            flat, target = draws[:, up[0], up[1]], exact[up]
        mean_ratio = max(mean_ratio, C.mean_z_ratio(flat, target, ROUNDING * (1 + np.abs(exact).max()), alpha))
        mean, lo, hi = C.mean_interval(sq, alpha)
        if var is None or lo > var[1]:                   # report the location nearest to failing
            var = (mean, lo, hi, m)
    symbol = "σ̃" if kind == "grad" else "σ_H"
    norm = "‖·‖²" if kind == "grad" else "‖·‖₂²"
    return [C.row(f"{kind}_oracle_mean", f"E[batch_{kind}] = {kind}: max |z|/critical ≤ 1", "A5 (unbiased)",
                  mean_ratio, 1.0, note=f"{K} batches of {n}, {len(where)} points"),
            C.row(f"{kind}_oracle_variance", f"E{norm} of batch_{kind} − {kind} ≤ {symbol}²/n", "A5",
                  var[0], const ** 2 / n, lo=var[1], hi=var[2], tol=(ROUNDING * (1 + const)) ** 2,
                  note=f"n = {n}, task {var[3]}")]


# --- 4. exact moments against the samplers ----------------------------------------------------
MOMENTS = {
    "inner_mean": "inner_mean = E[∇f_i(w − α∇̃f_i(w, D_in))]",
    "outer_second": "outer_second = E[v vᵀ], v = ∇̃f_i(w − α∇̃f_i(w, D_in), D_o)",
    "hess_factor": "hess_factor = E[(I − α∇̃²f_i(w, D_h))ᵀ(I − α∇̃²f_i(w, D_h))]",
}


def _moment_rows(s: _Setup) -> list[dict]:
    """Each offered exact moment against ``s.draws`` draws of what it describes
    (``α = 1/(4L)``, ``D_in = 2``, ``D_o = 3``, ``D_h = 2``), by ``mean_z_ratio``:
    false-alarm 1e-6 per row, Bonferroni over the entries."""
    return [row for name in MOMENTS for row in (
        C.guard(name, MOMENTS[name], lambda: [_moment(s, name)]) if C.offers(s.family, name)
        else [C.skipped(name, MOMENTS[name], "capability", "not offered")])]


def _moment(s: _Setup, name: str) -> dict:
    fam, K, w, m = s.family, s.draws, s.points[0], int(s.tasks[0])
    L = s.c.L.value
    alpha, D_in, D_o, D_h = (0.25 / L if L > 0 else 0.25), 2, 3, 2
    rng, iK = s.rng(name), np.full(K, m)
    up = np.triu_indices(fam.d)
    if name == "hess_factor":
        F = np.eye(fam.d) - alpha * fam.batch_hess(w, iK, fam.draw_batch(iK, D_h, rng, need="hess"))
        draws, target = np.einsum("kji,kjl->kil", F, F)[:, up[0], up[1]], fam.hess_factor(w, m, alpha, D_h)[up]
    else:
        u = w - alpha * fam.batch_grad(w, iK, fam.draw_batch(iK, D_in, rng))
        if name == "inner_mean":
            draws, target = fam.grad(u, iK), fam.inner_mean(w, m, alpha, D_in)
        else:
            v = fam.batch_grad(u, iK, fam.draw_batch(iK, D_o, rng))
            draws = (v[:, :, None] * v[:, None, :])[:, up[0], up[1]]
            target = fam.outer_second(w, m, alpha, D_in, D_o)[up]
    target = np.asarray(target, float)
    ratio = C.mean_z_ratio(draws, target, ROUNDING * (1 + np.abs(target).max()))
    return C.row(name, MOMENTS[name] + ": max |z|/critical ≤ 1", "capability", ratio, 1.0,
                 note=f"task {m}, α = {alpha:.3g}, {K} draws")


# --- 5. fast paths against the generic estimator -----------------------------------------------
def _fast_path_rows(s: _Setup) -> list[dict]:
    """For each algorithm with a fast direction: ``s.draws`` seeds at one point,
    fast against generic, equal means (Welch z-test) and equal variances
    (fourth-moment z-test) per coordinate, each row false-alarm 1e-6
    (Bonferroni over coordinates)."""
    from mamlcheck.algorithms import steps
    from mamlcheck.algorithms.estimators import ALGORITHMS
    has = steps.has_fast_direction
    rows = []
    for alg in (name for name, a in ALGORITHMS.items() if not a.exact):
        names = (f"fast_{alg}_mean", f"fast_{alg}_variance")
        if not has(s.family, alg):
            rows += [C.skipped(k, f"{alg} fast direction = generic in law", "(3), (6)", "no fast path") for k in names]
        else:
            rows += C.guard(names[0], f"{alg} fast direction = generic in law", lambda: _fast_path(s, alg, steps),
                           "(3), (6)")
    return rows


def _fast_path(s: _Setup, alg: str, steps) -> list[dict]:
    from mamlcheck.algorithms.hyper import Hyper
    fam, c = s.family, s.c
    L, rho = c.L.value, c.rho.value
    hyper = Hyper(alg, alpha=0.25 / L if L > 0 else 0.25, B=3, D_in=2, D_o=4, D_h=2)
    try:
        hyper = hyper.resolved(c)
    except (ValueError, OverflowError):   # B′, D_β only size the L̃ estimate, unused here
        pass
    W = np.tile(s.points[0], (s.draws, 1))
    fast = steps.direction(fam, W, hyper, rho, s.rng(f"fast {alg}"), fast=True)
    generic = steps.direction(fam, W, hyper, rho, s.rng(f"generic {alg}"), fast=False)
    rounding = ROUNDING * (1 + np.abs(generic).max())
    note = f"{s.draws} seeds, B = 3, D_in = 2, D_o = 4, D_h = 2"
    return [C.row(f"fast_{alg}_mean", f"{alg}: fast and generic directions have equal means (max |z|/critical)",
                  "(3), (6)", C.means_differ_ratio(fast, generic, rounding), 1.0, note=note),
            C.row(f"fast_{alg}_variance", f"{alg}: fast and generic directions have equal variances (max |z|/critical)",
                  "(3), (6)", C.variances_differ_ratio(fast, generic, rounding ** 2), 1.0, note=note)]


# --- the entry point ------------------------------------------------------------------------
GROUPS = {"derivatives": _derivative_rows, "constants": _constant_rows, "oracles": _oracle_rows,
          "moments": _moment_rows, "objective": objective_rows, "steps": step_rows, "fast paths": _fast_path_rows}


def check_family(family, *, seed: int = 0, points: int = 3, draws: int = 20_000, n: int = 3,
                 raise_on_failure: bool = True) -> FamilyReport:
    """Run the contract on ``family`` and return a ``FamilyReport``.

    Args:
        family: a ``problems.base.TaskFamily``.
        seed: makes the run reproducible (verdicts do not depend on it beyond
            the stated false-alarm rates).
        points: random test points of the derivative checks.
        draws: draws per statistical check (batches, samples or seeds).
        n: batch size of the oracle-variance checks.
        raise_on_failure: raise ``AssertionError`` listing every failed check,
            one line each (default); otherwise just return the report.
    """
    s = _setup(family, seed, points, draws, n)
    rows, seconds = [], {}
    for group, fn in GROUPS.items():
        start = time.perf_counter()
        rows += C.guard(group, f"the {group} checks", lambda: fn(s))
        seconds[group] = time.perf_counter() - start
    table = pd.DataFrame(rows, columns=list(C.COLUMNS))
    report = FamilyReport(getattr(family, "name", type(family).__name__), table, seconds)
    if raise_on_failure and not report.passed:
        raise AssertionError(f"family {report.family!r} fails {len(report.failures)} check(s):\n"
                             + "\n".join(report.failures))
    return report
