"""The fast seed-batched MAML, FO-MAML and HF-MAML steps of ``cosine-quadratic``.

Registered in ``algorithms.fast`` for ``CosineQuadratic`` with diagonal ``A``:
each method draws the update direction (3) of every seed in the law of the
generic estimator (6) built from the family's oracles, with fewer normals and
fewer passes over ``(R, B, d)`` arrays (the outer-batch noise of MAML and
FO-MAML enters linearly and is drawn aggregated; HF-MAML's central
difference is taken in closed form).  The docstring of ``direction`` derives
it; ``tests/test_fast_paths.py`` and ``mamlcheck.testing.check_family`` check
it against the generic path in mean and variance.  Oracle noise of the family
(``problems/cosine_quadratic.py``): ``ξ̄ ~ N(0, (s_ξ²/(dn)) I)``,
``η̄ ~ N(0, s_η²/n)`` for a batch of ``n``.
"""
from __future__ import annotations

from functools import lru_cache
from math import sqrt
from typing import NamedTuple

import numpy as np

from mamlcheck.problems.cosine_quadratic import CosineQuadratic

from .fast import L_TILDE, FastSampler, register_fast

__all__ = ["CosineQuadraticSampler"]


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


@register_fast(CosineQuadratic)
class CosineQuadraticSampler(FastSampler):
    """Fast steps of ``cosine-quadratic`` with diagonal ``A`` (module docstring)."""

    ALGORITHMS = ("maml", "fomaml", "hfmaml", L_TILDE)

    def __init__(self, family: CosineQuadratic):
        if not family.diagonal:
            raise ValueError("the cosine-quadratic fast paths need a diagonal A (dense A: the generic path)")
        self.fam = family
        self.Ac = family.A * family.c                    # a ⊙ c_i for every task, (M, d)
        self.factors = lru_cache(maxsize=16)(self._factors)


    @classmethod
    def supports(cls, family, algorithm: str) -> bool:
        """Whether this sampler serves ``algorithm`` on ``family`` (diagonal ``A`` only)."""
        return bool(family.diagonal) and algorithm in cls.ALGORITHMS

    def direction(self, w, tasks, hyper, rng, delta=None) -> np.ndarray:
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
        k = self.factors(hyper.algorithm, hyper.alpha, hyper.D_in, hyper.D_o, hyper.D_h, B, 0, 1)
        Z = _scaled_normals(rng, R, k.scales)
        s, c = self.fam.trig(w)
        return self._direction(w, s, c, tasks, Z, k, hyper.algorithm, delta)

    def step(self, w, hyper, rng, delta=None) -> tuple[np.ndarray, np.ndarray]:
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
        k = self.factors(alg, hyper.alpha, hyper.D_in, hyper.D_o, hyper.D_h, B, Bp, hyper.D_beta)
        tasks = self.fam.draw_tasks((R, Bp + B), rng)
        Z = _scaled_normals(rng, R, k.scales)
        s, c = self.fam.trig(w)
        nl = Bp * (self.fam.d + 1)
        norms = self._grad_norms(w, s, tasks[:, :Bp], Z[:, :nl])
        mean_norm = norms[:, 0] if Bp == 1 else np.add.reduce(norms, 1) / Bp
        return self._direction(w, s, c, tasks[:, Bp:], Z[:, nl:], k, alg, delta), mean_norm

    def grad_norms(self, w, tasks, n: int, rng) -> np.ndarray:
        """``‖∇̃f_j(w, D)‖`` for ``w`` ``(R, d)`` and tasks ``(R, B′)``, one fresh
        batch of ``n`` samples per task, shape ``(R, B′)``: the norms the
        ``L̃`` estimate of THEORY.md §3 averages, in the law of the generic
        oracle (``draw_batch`` then ``batch_grad``), with the ``B′(d + 1)``
        normals of a seed drawn in one block."""
        R, Bp = tasks.shape
        Z = _scaled_normals(rng, R, self._norm_scales(Bp, n))
        return self._grad_norms(w, self.fam.trig(w)[0], tasks, Z)

    def _check_fast(self, algorithm: str, delta=None) -> None:
        if not self.supports(self.fam, algorithm):
            raise ValueError(f"the fast paths serve {self.ALGORITHMS} with diagonal A; "
                             f"got algorithm {algorithm!r} with diagonal A = {self.fam.diagonal}")
        if algorithm == "hfmaml" and delta is None:
            raise ValueError("HF-MAML's fast path needs delta, the rule δ(‖v‖) of THEORY.md §6")

    def _norm_scales(self, Bp: int, n: int) -> np.ndarray:
        """Column scales of ``[η (B′) | ξ (B′d)]`` for batches of ``n``: the ``η``
        column carries the ``γω`` of ``−γωη s``."""
        return np.repeat([self.fam.gamma * self.fam.omega * self.fam.noise_amp / sqrt(n),
                          self.fam.noise_grad / sqrt(self.fam.d * n)], [Bp, Bp * self.fam.d])

    def _grad_norms(self, w, s, tasks, Z) -> np.ndarray:
        """``‖a(w − c_j) − γω(1 + η_j)s + ξ_j‖`` per seed and task, ``Z`` scaled by
        ``_norm_scales``."""
        R, Bp = tasks.shape
        if Bp == 1:                                      # the theorem's usual B′: (R, d) arrays
            G = Z[:, 1:] - np.take(self.Ac, tasks[:, 0], axis=0)
            G += self.fam.A * w
            G -= (Z[:, :1] + self.fam.gamma * self.fam.omega) * s
            return np.sqrt(np.einsum("rj,rj->r", G, G))[:, None]
        G = Z[:, Bp:].reshape(R, Bp, self.fam.d) - np.take(self.Ac, tasks, axis=0)
        base = self.fam.A * w
        base -= (self.fam.gamma * self.fam.omega) * s
        G += base[:, None, :]
        G -= Z[:, :Bp, None] * s[:, None, :]
        return np.sqrt(np.einsum("rbj,rbj->rb", G, G))

    def _direction(self, w, s, c, tasks, Z, k, alg, delta) -> np.ndarray:
        """``batched_direction`` from scaled normals ``Z`` (layout and scales in
        ``_fast_constants``) and ``s, c = sin ωw, cos ωw``."""
        R, B = tasks.shape
        d, nb = self.fam.d, B * self.fam.d
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
        Sd = np.sin(X * (self.fam.omega * dl)[:, :, None])
        out = k.k1 * np.einsum("rbj->rj", X)
        out += (k.kappa / self.fam.omega) * c * np.einsum(
            "rb,rbj->rj", (Z[:, at + 2 * B:at + 3 * B] + 1.0) / dl, Sd)
        out /= B
        return out

    def _factors(self, alg: str, alpha: float, D_in: int, D_o: int, D_h: int, B: int,
                        Bp: int, D_beta: int) -> "_FastConstants":
        """The factors of ``_direction`` (and of ``_grad_norms`` when ``B′ > 0``),
        and the scales of the normals' columns, so that each normal is drawn
        already multiplied by its oracle's standard deviation (and by the
        constant factor it enters ``q`` or ``v̄/B`` with)."""
        a, g, om, d = self.fam.A, self.fam.gamma, self.fam.omega, self.fam.d
        kx, ke = self.fam.noise_grad / sqrt(d), self.fam.noise_amp
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
            scales=np.concatenate(cols), table=np.stack([(alpha * om) * self.Ac, self.Ac / B]),
            q_w=om * (1.0 - alpha * a), q_s=alpha * g * om * om, a_omB=np.tile(a / (om * B), B),
            gw_B=g * om / B, kappa=alpha * g * om * om, k1=1.0 - alpha * a)

