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
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import (Constant, Constants, TaskFamily, check_count, check_positive,
                   check_probabilities)

__all__ = ["CosineQuadratic"]


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

    def meta_grad(self, w, alpha: float):
        """Exact ``∇F(w)`` of (5), O(d) per point (O(d²) with dense ``A``)."""
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
