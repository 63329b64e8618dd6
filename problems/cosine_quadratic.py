"""``cosine-quadratic``: shared curvature, task-specific centres, a cosine ripple.

Setting:   ``f_i(w) = ½(w − c_i)ᵀA(w − c_i) + γ Σ_j cos(ω w_j)``  (THEORY.md §2
           design notes), ``A`` shared (diagonal by default, dense SPD option).
Noise:     ``ℓ_i(w; θ) = f_i(w) + ξᵀw + η γ Σ_j cos(ω w_j)`` with independent
           ``ξ ~ N(0, (s_ξ²/d) I)`` and ``η ~ N(0, s_η²)``: additive and
           ``w``-independent in law, so the A5 constants are exact and uniform.
           The mean of ``n`` samples is drawn directly as
           ``(ξ̄, η̄) ~ (N(0, s_ξ²/(dn) I), N(0, s_η²/n))`` (exact in law, O(1) in n).

Constants (all exact: each is a supremum attained or approached):
* ``L = λ_max(A) + γω²``: ``∇²f_i(w) = A − γω² diag(cos ωw)`` and
  ``sup_w ‖·‖₂`` is attained at ``cos ωw_j = −1`` for all ``j``.
* ``ρ = γω³``: ``‖∇²f_i(w) − ∇²f_i(u)‖₂ = γω² max_j |cos ωw_j − cos ωu_j|
  ≤ γω³ ‖w − u‖``, approached by ``u → w`` along a coordinate where
  ``sin ωw_j = ±1``.
* ``σ² = Σ_i p_i ‖A(c_i − c̄)‖²``: ``∇f_i − ∇f = −A(c_i − c̄)`` for every ``w``.
* ``σ̃² = s_ξ² + s_η² γ² ω² d``: ``E‖ξ − ηγω sin(ωw)‖² = s_ξ² + s_η²γ²ω²‖sin ωw‖²``,
  attained at ``sin ωw_j = ±1``.
* ``σ_H² = s_η² γ² ω⁴``: ``‖η γω² diag(cos ωw)‖₂ = |η|γω² max_j|cos ωw_j|``,
  attained at ``w = 0``.
Nonconvex when ``γω² > λ_min(A)``.

The exact meta-objective costs O(d) per point, not O(M·d): the Hessian does not
depend on the task, and the inner points are ``u_i = u_0(w) + αAc_i``, so
``Σ_i p_i sin(ω u_i)`` follows by angle addition from per-task constants
``C = Σ p_i cos(αωAc_i)``, ``S = Σ p_i sin(αωAc_i)`` computed once per ``α``.

Fast paths (diagonal ``A``): ``batched_direction`` and ``batched_step`` draw
MAML's, FO-MAML's and HF-MAML's seed-batched update direction (3) in the law
of the generic estimator (6) with fewer normals and passes (the outer-batch
noise of MAML and FO-MAML enters linearly and is drawn aggregated; HF-MAML's
central difference is taken in closed form); their docstrings derive them and
``tests/test_fast_paths.py`` checks them against the generic path.
"""
from __future__ import annotations

from functools import lru_cache
from math import sqrt
from typing import NamedTuple

import numpy as np

from .base import (Constant, Constants, TaskFamily, check_count, check_need, check_positive,
                   check_probabilities)

__all__ = ["CosineQuadratic"]


class _FastConstants(NamedTuple):
    """Factors of the fast paths for one ``(algorithm, α, D_in, D_o, D_h, B, B′, D_β)``."""

    scales: np.ndarray     # column scales of a step's normals (layout in _fast_constants)
    table: np.ndarray      # (2, M, d): αω a⊙c_i and a⊙c_i/B
    q_w: np.ndarray        # ω(1 − αa)
    q_s: float             # αγω²
    a_omB: np.ndarray      # a/(ωB) repeated B times, (B·d,)
    gw_B: float            # γω/B
    kappa: float           # αγω²
    k1: np.ndarray         # 1 − αa


def _scaled_normals(rng, R: int, scales: np.ndarray) -> np.ndarray:
    """``rng.standard_normal((R, len(scales))) * scales``, in one pass when ``rng``
    is the runner's ``SeedStreams``."""
    draw = getattr(rng, "scaled_normal", None)
    return draw(scales) if draw is not None else rng.standard_normal((R, scales.size)) * scales


class CosineQuadratic(TaskFamily):
    """Quadratic tasks with shared curvature plus a cosine ripple (see module)."""

    name = "cosine-quadratic"

    def __init__(self, d: int = 10, M: int = 20, *, gamma: float = 0.5, omega: float = 2.0,
                 a_min: float = 1.0, a_max: float = 4.0, spread: float = 1.0,
                 noise_grad: float = 1.0, noise_amp: float = 0.5, dense: bool = False,
                 A=None, centres=None, p=None, seed: int = 0):
        self.d = check_count("d", d)
        self.M = check_count("M", M)
        self.gamma = check_positive("gamma", gamma, allow_zero=True)
        self.omega = check_positive("omega", omega)
        self.noise_grad = check_positive("noise_grad", noise_grad, allow_zero=True)
        self.noise_amp = check_positive("noise_amp", noise_amp, allow_zero=True)
        spread = check_positive("spread", spread, allow_zero=True)
        self.p = check_probabilities(p, self.M)
        self._uniform_p = bool(np.all(self.p == self.p[0]))
        rng = np.random.default_rng(seed)
        if A is None:
            a_min = check_positive("a_min", a_min)
            a_max = check_positive("a_max", a_max)
            if a_max < a_min:
                raise ValueError(f"a_max must be >= a_min, got a_min={a_min}, a_max={a_max}")
            a = np.linspace(a_min, a_max, self.d)
            if dense:
                Q, _ = np.linalg.qr(rng.standard_normal((self.d, self.d)))
                A = (Q * a) @ Q.T
                A = 0.5 * (A + A.T)
            else:
                A = a
        A = np.asarray(A, dtype=float)
        if A.shape == (self.d,):
            if not np.all(np.isfinite(A)) or np.any(A <= 0):
                raise ValueError("A (diagonal) must be finite and positive: A must be SPD")
            self.diagonal = True
            self.eig = np.sort(A)
        elif A.shape == (self.d, self.d):
            if not np.all(np.isfinite(A)) or not np.allclose(A, A.T, rtol=0, atol=1e-12 * max(1.0, np.abs(A).max())):
                raise ValueError("A must be symmetric positive definite (it is not symmetric)")
            self.eig = np.linalg.eigvalsh(A)
            if self.eig[0] <= 0:
                raise ValueError(f"A must be symmetric positive definite (λ_min = {self.eig[0]:.3g})")
            self.diagonal = False
        else:
            raise ValueError(f"A must have shape ({self.d},) or ({self.d}, {self.d}), got {A.shape}")
        self.A = A
        if centres is None:
            centres = spread * rng.standard_normal((self.M, self.d))
        centres = np.asarray(centres, dtype=float)
        if centres.shape != (self.M, self.d):
            raise ValueError(f"centres must have shape ({self.M}, {self.d}), got {centres.shape}")
        if not np.all(np.isfinite(centres)):
            raise ValueError("centres must be finite")
        self.c = centres
        self.c_bar = self.p @ centres
        self._meta = lru_cache(maxsize=8)(self._meta_constants)
        self._diag_meta = lru_cache(maxsize=8)(self._diag_meta_constants)
        self._fast = lru_cache(maxsize=16)(self._fast_constants)

    # --- linear algebra with the shared A ---------------------------------
    def _Av(self, v: np.ndarray) -> np.ndarray:
        # einsum, not BLAS: each row's result is then independent of how many rows
        # are stacked, so batching seeds is bit-for-bit equal to running them alone
        return self.A * v if self.diagonal else np.einsum("...k,jk->...j", v, self.A)

    @property
    def _A_mat(self) -> np.ndarray:
        return np.diag(self.A) if self.diagonal else self.A

    # --- exact oracles ------------------------------------------------------
    def loss(self, w, i):
        w, i = self._w(w), self._i(i)
        r = w - self.c[i]
        return 0.5 * np.sum(r * self._Av(r), axis=-1) + self.gamma * np.cos(self.omega * w).sum(-1)

    def grad(self, w, i):
        w, i = self._w(w), self._i(i)
        return self._Av(w - self.c[i]) - self.gamma * self.omega * np.sin(self.omega * w)

    def hess(self, w, i):
        w, i = self._w(w), self._i(i)
        shape = np.broadcast_shapes(w.shape[:-1], i.shape)
        diag = -self.gamma * self.omega ** 2 * np.cos(self.omega * w)
        H = np.broadcast_to(self._A_mat, shape + (self.d, self.d)).copy()
        idx = np.arange(self.d)
        H[..., idx, idx] += np.broadcast_to(diag, shape + (self.d,))
        return H

    def hvp(self, w, i, v):
        w = self._w(w)
        self._i(i)
        v = np.asarray(v, dtype=float)
        return self._Av(v) - self.gamma * self.omega ** 2 * np.cos(self.omega * w) * v

    # --- stochastic oracles ---------------------------------------------------
    def draw_batch(self, i, n, rng, need: str = "both"):
        """Batch means ``(ξ̄, η̄)`` of ``n`` samples per task index; ``need="hess"``
        draws only ``η̄`` (the Hessian does not see ``ξ``)."""
        i = self._i(i)
        check_need(need)
        n = check_count("n (batch size)", n)
        batch = {"eta": (self.noise_amp / np.sqrt(n)) * rng.standard_normal(i.shape)}
        if need != "hess":
            batch["xi"] = (self.noise_grad / np.sqrt(self.d * n)) * rng.standard_normal(i.shape + (self.d,))
        return batch

    def batch_grad(self, w, i, batch):
        w = self._w(w)
        amp = self.gamma * (1.0 + batch["eta"])[..., None]
        return self._Av(w - self.c[i]) - amp * self.omega * np.sin(self.omega * w) + batch["xi"]

    def batch_hess(self, w, i, batch):
        H = self.hess(w, i)
        idx = np.arange(self.d)
        extra = -(self.gamma * self.omega ** 2) * batch["eta"][..., None] * np.cos(self.omega * self._w(w))
        H[..., idx, idx] += extra
        return H

    def batch_hvp(self, w, i, v, batch):
        w = self._w(w)
        amp = self.gamma * (1.0 + batch["eta"])[..., None]
        return self._Av(v) - amp * self.omega ** 2 * np.cos(self.omega * w) * v

    # --- task draws ------------------------------------------------------------------
    def draw_tasks(self, shape, rng) -> np.ndarray:
        """Task indices drawn i.i.d. from ``p``.  With uniform ``p`` (the default)
        the inverse CDF of a uniform ``u`` is ``⌊uM⌋`` (capped at ``M − 1``): no
        binary search, whose branches on random keys mostly mispredict (~30 µs
        a step at ``R = 64``, ``B = 10`` here); the same law up to the 2⁻⁵³
        granularity of ``u`` that the base class's ``searchsorted`` on a
        rounded ``cumsum(p)`` has too.  Other ``p``: the base class's inverse
        CDF."""
        if not self._uniform_p:
            return super().draw_tasks(shape, rng)
        j = (rng.random(shape) * self.M).astype(np.intp)
        return np.minimum(j, self.M - 1, out=j)

    # --- sin ωw and cos ωw, remembered for the last point --------------------------
    def _sincos(self, w: np.ndarray, fresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(sin ωw, cos ωw)`` as read-only arrays, remembered for the last ``w``.

        The runner evaluates ``∇F(w_k)`` and then, at the same ``w_k``, the
        ``L̃`` estimate and the update direction, which need the same
        ``sin ωw_k`` and ``cos ωw_k``.  The memo is keyed by *value* (shape and
        elementwise equality with a private copy), so it never returns the
        trigonometry of another point, whatever the caller does to its arrays
        (a NaN never matches: it is recomputed).  ``fresh``: the caller knows
        the point is new (skip the comparison).
        """
        memo = None if fresh else getattr(self, "_trig_memo", None)
        if memo is not None and memo[0].shape == w.shape and (memo[0] == w).all():
            return memo[1], memo[2]
        x = self.omega * w
        s, c = np.sin(x), np.cos(x, out=x)
        s.flags.writeable = c.flags.writeable = False
        self._trig_memo = (w.copy(), s, c)
        return s, c

    @property
    def _Ac(self) -> np.ndarray:
        """``a ⊙ c_i`` for every task, ``(M, d)`` (diagonal ``A``), computed once."""
        Ac = getattr(self, "_Ac_cache", None)
        if Ac is None:
            Ac = self._Ac_cache = self.A * self.c
        return Ac

    # --- fast seed-batched MAML steps (diagonal A) ------------------------------
    FAST_ALGORITHMS = ("maml", "fomaml", "hfmaml")

    def batched_direction_supports(self, algorithm: str) -> bool:
        """Whether ``batched_direction`` / ``batched_step`` serve ``algorithm``
        (diagonal ``A`` only)."""
        return self.diagonal and algorithm in self.FAST_ALGORITHMS

    def batched_direction(self, w, tasks, hyper, rng, delta=None) -> np.ndarray:
        """The update direction ``(1/B) Σ_{i∈B_k} G_i(w)`` of (3) for every seed,
        ``(R, d)``: equal in law to the generic estimator built from the
        oracles (``algorithms.steps._task_directions(...).mean(1)``, with
        ``G_i`` of (6), THEORY.md §5, §6), with fewer draws and fewer passes
        over ``(R, B, d)`` arrays.

        Setting: diagonal ``A = diag(a)``; ``w`` ``(R, d)``, ``tasks`` ``(R, B)``;
        ``rng`` supplies every normal of the call in one ``(R, k)`` block
        (``scaled_normal`` of ``SeedStreams``, else ``standard_normal``);
        ``delta(‖v‖)`` is HF-MAML's finite-difference step
        ``δ`` (THEORY.md §6).  Oracle noise as in the module docstring:
        ``ξ̄ ~ N(0, (s_ξ²/(dn)) I)``, ``η̄ ~ N(0, s_η²/n)`` for a batch of ``n``.

        Derivation (exact, per seed; ``s = sin ωw``, ``c = cos ωw``):

        * Inner step (2) with ``D_in``: ``u_i = w − α∇̃f_i(w, D_in)
          = (1 − αa)w + αγω(1 + η_in,i)s + αa c_i − αξ_in,i``.  ``ξ_in``
          enters through ``sin ωu_i``, so it is drawn per task and coordinate.
        * Outer gradient: ``∇̃f_i(u_i, D_o) = v̄_i + ξ_o,i`` with
          ``v̄_i = a(u_i − c_i) − γω(1 + η_o,i) sin ωu_i`` and
          ``ξ_o,i ~ N(0, (s_ξ²/(d D_o)) I)`` independent of everything else.
        * MAML, (6) and (3): ``∇̃²f_i(w, D_h) = diag(a − γω²(1 + η_h,i)c)``, so
          ``G_i = h_i ⊙ (v̄_i + ξ_o,i)`` with ``h_i = 1 − αa + αγω²(1 + η_h,i)c``.
          Given the tasks and the η's, ``(1/B)Σ_i h_i ⊙ ξ_o,i`` is a sum of
          independent centred Gaussians with independent coordinates, i.e.
          ``N(0, diag((s_ξ²/(d D_o B²)) Σ_i h_i²))``; it is drawn as
          ``(s_ξ/(B√(d D_o))) (Σ_i h_i²)^½ ⊙ ζ``, ``ζ ~ N(0, I_d)``: ``d``
          normals per seed instead of ``B·d``, the same joint law.
        * FO-MAML (THEORY.md §5): ``h_i = 1``, the noise is
          ``(s_ξ/√(d D_o B)) ζ``.
        * HF-MAML (THEORY.md §6): one ``D_h`` batch at ``w ± δv_i``: the
          linear terms and ``ξ_h`` cancel exactly and
          ``sin ω(w + δv) − sin ω(w − δv) = 2c ⊙ sin ωδv``, so
          ``d_i = a v_i − γω(1 + η_h,i) c ⊙ sin(ωδ_i v_i)/δ_i``: ``ξ_h`` is
          not drawn and one sine replaces two (with no cancellation in the
          difference).  ``v_i`` enters ``δ_i`` and a sine, so ``ξ_o`` is
          drawn per task.

        Normals per seed: MAML ``B·d + 3B + d``, FO-MAML ``B·d + 2B + d``,
        HF-MAML ``2B·d + 3B`` (generic path: ``2B·d + 3B``, ``2B·d + 2B``,
        ``3B·d + 3B``).
        """
        self._check_fast(hyper.algorithm, delta)
        R, B = tasks.shape
        k = self._fast(hyper.algorithm, hyper.alpha, hyper.D_in, hyper.D_o, hyper.D_h, B, 0, 1)
        Z = _scaled_normals(rng, R, k.scales)
        s, c = self._sincos(w)
        return self._direction(w, s, c, tasks, Z, k, hyper.algorithm, delta)

    def batched_step(self, w, hyper, rng, delta=None) -> tuple[np.ndarray, np.ndarray]:
        """One outer step's random parts for every seed, drawn together: the
        direction of ``batched_direction`` and the mean ``(1/B′) Σ_j
        ‖∇̃f_j(w, D_β)‖`` of the ``L̃`` estimate (THEORY.md §3) on its own
        ``B′`` tasks and batches (independent of the direction's, as the
        step-size lemma needs), with one task draw, one block of normals and
        one ``sin ωw``/``cos ωw`` for both.  ``hyper`` must be resolved
        (``B_prime``, ``D_beta`` set)."""
        alg = hyper.algorithm
        self._check_fast(alg, delta)
        R, B, Bp = w.shape[0], hyper.B, hyper.B_prime
        k = self._fast(alg, hyper.alpha, hyper.D_in, hyper.D_o, hyper.D_h, B, Bp, hyper.D_beta)
        tasks = self.draw_tasks((R, Bp + B), rng)
        Z = _scaled_normals(rng, R, k.scales)
        s, c = self._sincos(w)
        nl = Bp * (self.d + 1)
        norms = self._grad_norms(w, s, tasks[:, :Bp], Z[:, :nl])
        mean_norm = norms[:, 0] if Bp == 1 else np.add.reduce(norms, 1) / Bp
        return self._direction(w, s, c, tasks[:, Bp:], Z[:, nl:], k, alg, delta), mean_norm

    def batched_grad_norm(self, w, tasks, n: int, rng) -> np.ndarray:
        """``‖∇̃f_j(w, D)‖`` for ``w`` ``(R, d)`` and tasks ``(R, B′)``, one fresh
        batch of ``n`` samples per task, shape ``(R, B′)``: the norms the
        ``L̃`` estimate of THEORY.md §3 averages, in the law of the generic
        oracle (``draw_batch`` then ``batch_grad``), with the ``B′(d + 1)``
        normals of a seed drawn in one block (dense ``A``: the generic oracle)."""
        if not self.diagonal:
            return np.linalg.norm(self.sample_grad(w[:, None, :], tasks, n, rng), axis=-1)
        R, Bp = tasks.shape
        Z = _scaled_normals(rng, R, self._norm_scales(Bp, n))
        return self._grad_norms(w, self._sincos(w)[0], tasks, Z)

    def _check_fast(self, algorithm: str, delta=None) -> None:
        if not self.batched_direction_supports(algorithm):
            raise ValueError(f"the fast paths serve {self.FAST_ALGORITHMS} with diagonal A; "
                             f"got algorithm {algorithm!r} with diagonal A = {self.diagonal}")
        if algorithm == "hfmaml" and delta is None:
            raise ValueError("HF-MAML's fast path needs delta, the rule δ(‖v‖) of THEORY.md §6")

    def _norm_scales(self, Bp: int, n: int) -> np.ndarray:
        """Column scales of ``[η (B′) | ξ (B′d)]`` for batches of ``n``: the ``η``
        column carries the ``γω`` of ``−γωη s``."""
        return np.repeat([self.gamma * self.omega * self.noise_amp / sqrt(n),
                          self.noise_grad / sqrt(self.d * n)], [Bp, Bp * self.d])

    def _grad_norms(self, w, s, tasks, Z) -> np.ndarray:
        """``‖a(w − c_j) − γω(1 + η_j)s + ξ_j‖`` per seed and task, ``Z`` scaled by
        ``_norm_scales``."""
        R, Bp = tasks.shape
        if Bp == 1:                                      # the theorem's usual B′: (R, d) arrays
            G = Z[:, 1:] - np.take(self._Ac, tasks[:, 0], axis=0)
            G += self.A * w
            G -= (Z[:, :1] + self.gamma * self.omega) * s
            return np.sqrt(np.einsum("rj,rj->r", G, G))[:, None]
        G = Z[:, Bp:].reshape(R, Bp, self.d) - np.take(self._Ac, tasks, axis=0)
        base = self.A * w
        base -= (self.gamma * self.omega) * s
        G += base[:, None, :]
        G -= Z[:, :Bp, None] * s[:, None, :]
        return np.sqrt(np.einsum("rbj,rbj->rb", G, G))

    def _direction(self, w, s, c, tasks, Z, k, alg, delta) -> np.ndarray:
        """``batched_direction`` from scaled normals ``Z`` (layout and scales in
        ``_fast_constants``) and ``s, c = sin ωw, cos ωw``."""
        R, B = tasks.shape
        d, nb = self.d, B * self.d
        at = 2 * nb if alg == "hfmaml" else nb
        T = np.take(k.table, tasks, axis=1)              # (2, R, B, d): αω a⊙c_i, a⊙c_i/B
        # q_i = ω u_i = αγω²(1 + η_in,i) s − αω ξ_in,i + ω(1 − αa) w + αω a⊙c_i
        q = np.einsum("rb,rj->rbj", Z[:, at:at + B] + k.q_s, s)
        q += Z[:, :nb].reshape(R, B, d)
        q += (k.q_w * w)[:, None, :]
        q += T[0]
        # X_i = v̄_i/B = [a(u_i − c_i) − γω(1 + η_o,i) sin ωu_i]/B = (a/(ωB)) q_i − a⊙c_i/B + W_i sin q_i
        X = np.multiply(q.reshape(R, nb), k.a_omB).reshape(R, B, d)
        X -= T[1]
        np.sin(q, out=q)
        q *= (Z[:, at + B:at + 2 * B] - k.gw_B)[:, :, None]
        X += q
        if alg == "fomaml":
            out = np.einsum("rbj->rj", X)
            out += Z[:, at + 2 * B:]                     # (s_ξ/√(d D_o B)) ζ
            return out
        if alg == "maml":
            # h_i = m0 + η_h,i m1, m1 = αγω²c, m0 = 1 − αa + m1:
            # (1/B)Σ h_i v̄_i = m0 ⊙ Σ_i X_i + m1 ⊙ Σ_i η_h,i X_i, plus the outer noise
            # (s_ξ/(B√(d D_o))) (Σ h_i²)^½ ζ with Σ h_i² = (B m0 + 2m1 Σ η_h,i) m0 + m1² Σ η_h,i²
            eh = Z[:, at + 2 * B:at + 3 * B]
            m1 = k.kappa * c
            m0 = k.k1 + m1
            out = m0 * np.einsum("rbj->rj", X)
            out += m1 * np.einsum("rb,rbj->rj", eh, X)
            h2 = B * m0
            h2 += np.add.reduce(eh + eh, 1)[:, None] * m1
            h2 *= m0
            m1 *= m1
            m1 *= np.einsum("rb,rb->r", eh, eh)[:, None]
            h2 += m1
            np.maximum(h2, 0.0, out=h2)                  # ≥ 0 exactly (Cauchy–Schwarz); rounding
            np.sqrt(h2, out=h2)
            h2 *= Z[:, at + 3 * B:]
            out += h2
            return out
        # hfmaml: v_i = v̄_i + ξ_o,i; G_i = (1 − αa) v_i + αγω (1 + η_h,i) c ⊙ sin(ωδ_i v_i)/δ_i
        X *= B
        X += Z[:, nb:2 * nb].reshape(R, B, d)
        dl = delta(np.sqrt(np.einsum("rbj,rbj->rb", X, X)))
        Sd = np.sin(X * (self.omega * dl)[:, :, None])
        out = k.k1 * np.einsum("rbj->rj", X)
        out += (k.kappa / self.omega) * c * np.einsum(
            "rb,rbj->rj", (Z[:, at + 2 * B:at + 3 * B] + 1.0) / dl, Sd)
        out /= B
        return out

    def _fast_constants(self, alg: str, alpha: float, D_in: int, D_o: int, D_h: int, B: int,
                        Bp: int, D_beta: int) -> "_FastConstants":
        """The factors of ``_direction`` (and of ``_grad_norms`` when ``B′ > 0``),
        and the scales of the normals' columns, so that each normal is drawn
        already multiplied by its oracle's standard deviation (and by the
        constant factor it enters ``q`` or ``v̄/B`` with)."""
        a, g, om, d = self.A, self.gamma, self.omega, self.d
        kx, ke = self.noise_grad / sqrt(d), self.noise_amp
        # columns: [L̃: η (B′) | ξ (B′d)] [ξ_in (Bd) | (HF: ξ_o (Bd)) | η_in | η_o | (η_h) | (ζ)]
        cols = [self._norm_scales(Bp, D_beta)] if Bp else []
        cols.append(np.full(B * d, -alpha * om * kx / sqrt(D_in)))
        if alg == "hfmaml":
            cols.append(np.full(B * d, kx / sqrt(D_o)))
        cols += [np.full(B, alpha * g * om * om * ke / sqrt(D_in)), np.full(B, -g * om * ke / (B * sqrt(D_o)))]
        if alg != "fomaml":
            cols.append(np.full(B, ke / sqrt(D_h)))
        if alg == "maml":
            cols.append(np.full(d, kx / (B * sqrt(D_o))))
        elif alg == "fomaml":
            cols.append(np.full(d, kx / sqrt(D_o * B)))
        return _FastConstants(
            scales=np.concatenate(cols), table=np.stack([(alpha * om) * self._Ac, self._Ac / B]),
            q_w=om * (1.0 - alpha * a), q_s=alpha * g * om * om, a_omB=np.tile(a / (om * B), B),
            gw_B=g * om / B, kappa=alpha * g * om * om, k1=1.0 - alpha * a)

    # --- the exact meta-objective in O(d) (see module docstring) ------------
    def _meta_constants(self, alpha: float):
        e = alpha * self._Av(self.c)                      # u_i − u_0 = αAc_i
        b = e - self.c                                    # u_i − c_i − u_0 = (αA − I)c_i
        C = self.p @ np.cos(self.omega * e)
        S = self.p @ np.sin(self.omega * e)
        b_bar = self.p @ b
        quad = 0.5 * self.p @ np.sum(b * self._Av(b), axis=-1)
        return C, S, self._Av(b_bar), quad

    def _inner_base(self, w, alpha):
        w = self._w(w)
        return w, w - alpha * self._Av(w) + alpha * self.gamma * self.omega * np.sin(self.omega * w)

    def meta_loss(self, w, alpha: float):
        """Exact ``F(w)`` of (1), O(d) per point."""
        w, u0 = self._inner_base(w, alpha)
        C, S, Ab_bar, quad = self._meta(float(alpha))
        cu, su = np.cos(self.omega * u0), np.sin(self.omega * u0)
        return (0.5 * np.sum(u0 * self._Av(u0), -1) + np.sum(u0 * Ab_bar, -1) + quad
                + self.gamma * np.sum(cu * C - su * S, -1))

    def _diag_meta_constants(self, alpha: float):
        """``1 − αa``, ``γω(C² + S²)^½``, ``atan2(S, C)`` and ``A b̄`` for ``meta_grad``."""
        C, S, Ab_bar, _ = self._meta(alpha)
        return 1.0 - alpha * self.A, self.gamma * self.omega * np.hypot(C, S), np.arctan2(S, C), Ab_bar

    def meta_grad(self, w, alpha: float):
        """Exact ``∇F(w)`` of (5), O(d) per point (O(d²) with dense ``A``).

        Diagonal ``A``: ``∇²f_i(w) = diag(a − γω²c)`` for every task, so
        ``∇F(w) = (1 − αa + αγω²c) ⊙ m`` with ``m = Σ_i p_i ∇f_i(u_i)
        = a u_0 + A b̄ − γω(C ⊙ sin ωu_0 + S ⊙ cos ωu_0)`` (angle addition,
        module docstring), and ``C sin x + S cos x = (C² + S²)^½ sin(x + φ)``,
        ``φ = atan2(S, C)``: one sine per coordinate.  ``sin ωw``, ``cos ωw``
        are kept for the step at the same point (``_sincos``)."""
        if self.diagonal:
            w = self._w(w)
            k, amp, phase, Ab_bar = self._diag_meta(float(alpha))
            s, c = self._sincos(w, fresh=True)
            u0 = k * w
            u0 += (alpha * self.gamma * self.omega) * s
            x = self.omega * u0
            x += phase
            np.sin(x, out=x)
            x *= amp
            m = self.A * u0
            m += Ab_bar
            m -= x
            f = (alpha * self.gamma * self.omega ** 2) * c
            f += k
            m *= f
            return m
        w, u0 = self._inner_base(w, alpha)
        C, S, Ab_bar, _ = self._meta(float(alpha))
        m = (self._Av(u0) + Ab_bar
             - self.gamma * self.omega * (np.sin(self.omega * u0) * C + np.cos(self.omega * u0) * S))
        return m - alpha * (self._Av(m) - self.gamma * self.omega ** 2 * np.cos(self.omega * w) * m)

    # --- certified constants ------------------------------------------------
    def constants(self) -> Constants:
        g, om = self.gamma, self.omega
        L = self.eig[-1] + g * om ** 2
        rho = g * om ** 3
        dev = self._Av(self.c - self.c_bar)
        sigma = np.sqrt(self.p @ np.sum(dev ** 2, -1))
        s_t = np.sqrt(self.noise_grad ** 2 + (self.noise_amp * g * om) ** 2 * self.d)
        s_H = self.noise_amp * g * om ** 2
        return Constants(
            L=Constant(L, True, "λ_max(A) + γω²: sup‖∇²f_i‖₂, attained at cos ωw_j = −1"),
            rho=Constant(rho, True, "γω³: γω² max_j|cos ωw_j − cos ωu_j| ≤ γω³‖w−u‖, tight as u→w at sin ωw_j = ±1"),
            sigma=Constant(sigma, True, "(Σ p_i ‖A(c_i − c̄)‖²)^½: ∇f_i − ∇f = −A(c_i − c̄) for all w"),
            sigma_tilde=Constant(s_t, True, "(s_ξ² + s_η²γ²ω²d)^½, attained at sin ωw_j = ±1"),
            sigma_H=Constant(s_H, True, "s_η γ ω², attained at w = 0"),
            L_i=np.full(self.M, L), rho_i=np.full(self.M, rho),
        )

    def inf_f_lower(self) -> float:
        """Certified lower bound on ``Σ p_i inf f_i``.

        ``½(w−c)ᵀA(w−c) ≥ ½a‖w−c‖²`` coordinatewise with ``a = A_jj`` (diagonal)
        or ``a = λ_min(A)`` (dense), so each ``f_i`` is bounded below by a sum
        of 1-D functions ``h(x) = ½a(x−c)² + γcos(ωx)`` whose minimiser lies in
        ``|x − c| ≤ r = 2√(γ/a)`` (outside it ``h > γ ≥ h(c)``).  ``h`` is
        minimised on a grid of step ``δ`` and the grid minimum lowered by the
        Lipschitz bound ``(a r + γω) δ/2``: a certified bound, not an estimate.
        """
        a = (self.A if self.diagonal else np.full(self.d, self.eig[0]))[None, :, None]
        r = 2.0 * np.sqrt(self.gamma / a) + 1e-12
        t = np.linspace(-1.0, 1.0, 4001)
        x = self.c[:, :, None] + r * t                   # (M, d, grid)
        h = 0.5 * a * (x - self.c[:, :, None]) ** 2 + self.gamma * np.cos(self.omega * x)
        delta = r * (t[1] - t[0])
        lip = a * r + self.gamma * self.omega
        per_coord = h.min(-1) - (lip * delta / 2)[..., 0]
        return float(self.p @ per_coord.sum(-1))

    def describe(self):
        return {**super().describe(), "gamma": self.gamma, "omega": self.omega,
                "noise_grad": self.noise_grad, "noise_amp": self.noise_amp,
                "dense": not self.diagonal}
