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

Fast paths (diagonal ``A``): ``algorithms/fast_cosine_quadratic.py`` draws
MAML's, FO-MAML's and HF-MAML's seed-batched update direction (3) for this
family in the law of the generic estimator (6), registered per (family,
algorithm) in ``algorithms.fast``; ``trig`` keeps ``sin ωw``, ``cos ωw`` of the
last point for it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import (Constant, Constants, TaskFamily, check_count, check_need, check_positive,
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
    def trig(self, w, fresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
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
            s, c = self.trig(w, fresh=True)
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

    # --- optional capabilities (CAPABILITIES): exact laws of the oracles ----------
    # The batch noise is Gaussian (module docstring: ξ̄ ~ N(0, s_ξ²/(dn) I)
    # additive, η̄ ~ N(0, s_η²/n) on the cosine amplitude), so the inner point
    # of a batch of n is x ~ N(u, Σ), u = w − α∇f_i(w), and with S = sin(ωx):
    # E S_j = sin(ωu_j) e^{−ω²Σ_jj/2}, Cov(x_j, S_k) = Σ_jk ω E cos(ωx_k) (Stein)
    # and E[S_j S_k] = ½[cos ω(u_j − u_k) e^{−ω²Var(x_j − x_k)/2}
    # − cos ω(u_j + u_k) e^{−ω²Var(x_j + x_k)/2}] give every moment in closed form.
    def centre_and_length(self) -> tuple[np.ndarray, float]:
        """``c̄ = Σ_i p_i c_i`` and ``1 + (Σ_i p_i ‖c_i − c̄‖²)^½``."""
        dev = self.c - self.c_bar
        return self.c_bar.copy(), 1.0 + float(np.sqrt(self.p @ np.sum(dev ** 2, -1)))

    def attaining_points(self, k) -> np.ndarray:
        """``w = kπ/(2ω)`` for integer vectors ``k``: ``σ̃`` is attained where every
        ``k_j`` is odd (``sin ωw_j = ±1``), ``σ_H`` where every ``k_j`` is even
        (``cos ωw_j = ±1``), ``L`` where every ``k_j ≡ 2 (mod 4)`` (``cos ωw_j = −1``)."""
        return np.asarray(k, dtype=float) * np.pi / (2.0 * self.omega)

    def grad_rounding_scale(self, x, i: int) -> float:
        """``‖|A|(|x| + |c_i|)‖ + ‖γω(1 + ω|x|)‖``: ``x − c_i`` and ``ωx`` are rounded."""
        x = np.asarray(x, dtype=float)
        r = np.abs(x) + np.abs(self.c[i])
        Ar = np.abs(self.A) * r if self.diagonal else np.abs(self.A) @ r
        ripple = self.gamma * self.omega * (1.0 + self.omega * np.abs(x))
        return float(np.linalg.norm(Ar) + np.linalg.norm(ripple))

    def _inner_cov(self, w: np.ndarray, alpha: float, n: int) -> np.ndarray:
        """``Σ = α² Cov(∇̃f_i(w, D))`` of the inner point for a batch of ``n``: the
        oracle's noise is ``ξ̄ − η̄ γω sin(ωw)``."""
        s = self.gamma * self.omega * np.sin(self.omega * w)
        cov = (self.noise_grad ** 2 / (self.d * n)) * np.eye(self.d) + (self.noise_amp ** 2 / n) * np.outer(s, s)
        return alpha ** 2 * cov

    def _sin_moments(self, u: np.ndarray, Sigma: np.ndarray):
        """For ``x ~ N(u, Σ)`` and ``S = sin(ωx)``: ``E S``, ``Cov(x, S)``, ``E[S Sᵀ]``."""
        omega = self.omega
        dg = np.diag(Sigma)
        damp = np.exp(-0.5 * omega ** 2 * dg)
        ES = np.sin(omega * u) * damp
        C_xS = Sigma * (omega * np.cos(omega * u) * damp)[None, :]
        a = dg[:, None] + dg[None, :]
        ESS = 0.5 * (np.cos(omega * (u[:, None] - u[None, :])) * np.exp(-0.5 * omega ** 2 * (a - 2 * Sigma))
                     - np.cos(omega * (u[:, None] + u[None, :])) * np.exp(-0.5 * omega ** 2 * (a + 2 * Sigma)))
        return ES, C_xS, ESS

    def _inner_law(self, w: np.ndarray, i: int, alpha: float, n: int):
        """``u``, ``Σ``, the sine moments and ``E∇f_i(x)`` of the inner point
        ``x = w − α∇̃f_i(w, D)``; ``E∇f_i(x) = ∇f_i(u) + γω(sin ωu − E sin ωx)``
        since the quadratic part is linear."""
        u = w - alpha * self.grad(w, i)
        Sigma = self._inner_cov(w, alpha, n)
        ES, C_xS, ESS = self._sin_moments(u, Sigma)
        mean = self.grad(u, i) + self.gamma * self.omega * (np.sin(self.omega * u) - ES)
        return u, Sigma, ES, C_xS, ESS, mean

    def inner_mean(self, w, i: int, alpha: float, D_in: int) -> np.ndarray:
        """``E[∇f_i(w − α∇̃f_i(w, D_in))]`` in closed form (see above)."""
        return self._inner_law(np.asarray(w, dtype=float), i, alpha, D_in)[-1]

    def outer_second(self, w, i: int, alpha: float, D_in: int, D_o: int) -> np.ndarray:
        """``E[v vᵀ]``, ``v = ∇̃f_i(x, D_o) = A(x − c_i) − γω sin(ωx) + (outer noise)``:
        ``Cov(∇f_i(x)) + E∇f_i(x) E∇f_i(x)ᵀ`` plus the outer noise's
        ``s_ξ²/(dD_o) I + (s_η²γ²ω²/D_o) E[S Sᵀ]``."""
        u, Sigma, ES, C_xS, ESS, mean = self._inner_law(np.asarray(w, dtype=float), i, alpha, D_in)
        A, gw = self._A_mat, self.gamma * self.omega
        C_SS = ESS - np.outer(ES, ES)
        cov = A @ Sigma @ A - gw * (A @ C_xS + C_xS.T @ A) + gw ** 2 * C_SS
        noise = (self.noise_grad ** 2 / (self.d * D_o)) * np.eye(self.d) + (self.noise_amp ** 2 * gw ** 2 / D_o) * ESS
        return cov + np.outer(mean, mean) + noise

    def hess_factor(self, w, i: int, alpha: float, D_h: int) -> np.ndarray:
        """``(I − α∇²f_i)ᵀ(I − α∇²f_i) + (α²s_η²/D_h) diag(γω² cos ωw)²``: the
        batch Hessian is ``∇²f_i(w) − η̄γω² diag(cos ωw)`` (``∇²f_i`` assembled
        from ``hvp``, the product the MAML estimator (6) uses)."""
        w = np.asarray(w, dtype=float)
        H = self.hvp(np.broadcast_to(w, (self.d, self.d)), np.asarray(i), np.eye(self.d)).T
        P = np.eye(self.d) - alpha * H
        c = self.gamma * self.omega ** 2 * np.cos(self.omega * w)
        return P.T @ P + (alpha ** 2 * self.noise_amp ** 2 / D_h) * np.diag(c ** 2)

    def inner_noise_var(self, w, alpha: float, D_in) -> np.ndarray:
        """``v_j = α²(s_ξ²/d + s_η²γ²ω² sin²(ωw_j))/D_in``: the inner perturbation
        ``Z = −α(ξ̄ − η̄γω sin(ωw))`` is Gaussian, its coordinates correlated
        through ``η̄``; ``D_in`` broadcasts with ``w.shape[:-1]``."""
        w = self._w(w)
        s = np.sin(self.omega * w)
        per_sample = self.noise_grad ** 2 / self.d + (self.noise_amp * self.gamma * self.omega * s) ** 2
        return alpha ** 2 * per_sample / np.asarray(D_in, dtype=float)[..., None]

    def inner_bias(self, w, alpha: float, var) -> np.ndarray:
        """``e_i = γω(1 − exp(−ω²v/2)) ⊙ sin(ωu_i)`` for every task, ``(..., M, d)``.

        ``∇f_i(u_i + Z) = A(u_i + Z − c_i) − γω sin(ω(u_i + Z))``, ``E[Z] = 0``,
        and ``sin`` acts coordinatewise, so only the marginals ``Z_j ~ N(0, v_j)``
        matter: ``E sin(a + ωZ_j) = sin(a)·exp(−ω²v_j/2)`` (Gaussian
        characteristic function).  Computed without subtracting, so that it
        stays accurate when tiny."""
        we = self._w(w)[..., None, :]
        u = we - alpha * self.grad(we, np.arange(self.M))
        damp = -np.expm1(-0.5 * self.omega ** 2 * np.asarray(var, dtype=float))[..., None, :]
        return self.gamma * self.omega * damp * np.sin(self.omega * u)

    # --- the batch loss over an array namespace (CAPABILITIES "loss_on") -----------
    def loss_data(self, i, batch=None) -> dict[str, np.ndarray]:
        """The arrays that define task ``i``'s loss on ``batch`` for ``loss_on``:
        the dense ``A`` (``_A_mat``, also for diagonal ``A``, so one matrix
        product serves both), ``c_i``, ``γ``, ``ω`` and the batch means ``η̄``,
        ``ξ̄``.  ``batch=None`` is the exact ``f_i`` (``η̄ = 0``, ``ξ̄ = 0``); a
        batch drawn with ``need="hess"`` has no ``ξ̄``, which the Hessian does not
        see, so it is taken as 0.  ``i`` is one task index and ``batch`` one
        drawn for it (``draw_batch(i, n, rng)``)."""
        i = self._i(i)
        if i.ndim != 0:
            raise ValueError(f"loss_data takes one task index, got shape {i.shape}")
        eta, xi = np.zeros(()), np.zeros(self.d)
        if batch is not None:
            eta = np.array(batch["eta"], dtype=float)
            if "xi" in batch:
                xi = np.array(batch["xi"], dtype=float)
            if eta.shape != () or xi.shape != (self.d,):
                raise ValueError(f"batch must be drawn for one task index: η̄ of shape (), ξ̄ of shape "
                                 f"({self.d},), got {eta.shape} and {xi.shape}")
        return {"A": np.array(self._A_mat, dtype=float), "c": self.c[int(i)].copy(),
                "gamma": np.array(self.gamma), "omega": np.array(self.omega), "eta": eta, "xi": xi}

    @staticmethod
    def loss_on(ops, w, data):
        """``½(w − c_i)ᵀA(w − c_i) + γ(1 + η̄)Σ_j cos(ωw_j) + ξ̄ᵀw``: the batch mean
        of the per-sample losses ``ℓ_i(w; θ) = f_i(w) + ξᵀw + ηγΣ_j cos(ωw_j)``
        (module docstring; THEORY.md §2 design notes), whose gradient is
        ``batch_grad`` and Hessian ``batch_hess``; with ``η̄ = 0``, ``ξ̄ = 0`` it
        is ``loss`` (same order of operations, so equal to rounding).  Written
        over ``ops`` so that PyTorch's and JAX's autodiff can be checked
        against the exact oracles."""
        r = w - data["c"]
        ripple = ops.cos(data["omega"] * w).sum(-1)
        return (0.5 * (r * (data["A"] @ r)).sum(-1) + data["gamma"] * (1.0 + data["eta"]) * ripple
                + (data["xi"] * w).sum(-1))
