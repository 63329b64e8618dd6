"""``sinusoid-mlp``: few-shot sinusoid regression with a one-hidden-layer tanh network
(Finn, Abbeel & Levine, ICML 2017, §5.1), with constants certified on a ball.

Setting:   ``M`` tasks drawn once from ``seed`` (a finite task distribution, uniform
           ``p`` unless given): task ``i`` is ``y = A_i sin(x − φ_i)``,
           ``A_i ~ U[0.1, 5]``, ``φ_i ~ U[0, π]``, and owns a fixed pool of
           ``n_pool`` inputs ``x ~ U[−5, 5]`` (also drawn once).  ``q_i`` is uniform
           on the pool, so ``f_i(w) = (1/n) Σ_k ℓ(w; x_k, y_k)`` is an exact average
           and a batch is ``n`` pool indices drawn uniformly *with replacement*
           (as in ``robust-regression``).
Network:   ``net_w(x) = vᵀ tanh(u x + b) + c`` of width ``H``,
           ``w = [u (H), b (H), v (H), c]``, ``d = 3H + 1``; per-sample loss
           ``ℓ = ½ r²``, ``r = net_w(x) − y``.

Derivatives (per sample; ``t_h = tanh(z_h)``, ``z_h = u_h x + b_h``, ``t' = 1 − t²``,
``t'' = −2t t'``, ``t''' = −2t'(1 − 3t²)``; ``q = (x, 1)``, ``a = |q|² = 1 + x²``):
* ``∇net = J``: ``J_{u_h} = v_h t'_h x``, ``J_{b_h} = v_h t'_h``, ``J_{v_h} = t_h``,
  ``J_c = 1``.  ``∇ℓ = r J``.
* ``∇²net`` is block diagonal, one 3×3 block per hidden unit on ``(u_h, b_h, v_h)``:
  ``[[v t'' qqᵀ, t' q], [t' qᵀ, 0]]`` (``c`` enters linearly: no block).
  ``∇²ℓ = J Jᵀ + r ∇²net``; ``hvp`` applies the blocks in O(n·d).
* ``∇³net``: per unit, along ``e = (e_u, e_b, e_v)`` with ``ê = e_u x + e_b``,
  ``D³net_h[e, e, e] = v t''' ê³ + 3 t'' ê² e_v``.
  ``∇³ℓ = 3 sym(∇²net ⊗ ∇net) + r ∇³net``, i.e.
  ``D³ℓ[e, e, e] = 3 (Jᵀe) ∇²net[e, e] + r D³net[e, e, e]``.

Sups of tanh: ``|t| ≤ 1``, ``|t'| ≤ 1``, ``|t''| ≤ c₂ = 4/(3√3)``, ``|t'''| ≤ c₃ = 2``.

Certified LOCAL constants: on the ball ``‖w − w_c‖ ≤ R`` (``certificate_ball``),
``w_c`` a fixed initialisation drawn from ``seed`` (``u, b ~ N(0, 1)``,
``v ~ N(0, 1/H)``, ``c = 0``), ``R = radius``.  Sups over the ball used below (each
a sup of a 1-Lipschitz function of ``w`` is at most its value at ``w_c`` plus ``R``):
``‖v‖ ≤ V = ‖v_c‖ + R``; ``max_h |v_h| ≤ V∞ = ‖v_c‖∞ + R``;
``|net − (x-free part)|``: ``|net| ≤ ‖v‖₁ + |c| ≤ N̄ = ‖v_c‖₁ + |c_c| + R√(H + 1)``
(``|t| ≤ 1``; ``‖δ_v‖₁ + |δ_c| ≤ √(H+1)‖δ‖``).  Per pool point ``k`` (``a_k = 1 + x_k²``):
* ``r̄_k = N̄ + |y_k| ≥ |r_k|``.
* ``J̄_k² = 1 + min(H + a_k V², (‖m_k(v_c)‖ + √a_k R)²) ≥ ‖J_k‖²``, where
  ``m_k(v)_h = max(√a_k|v_h|, 1)``: ``‖J‖² = 1 + Σ_h (v_h² t'² a + t²)``, and with
  ``s = t² ∈ [0, 1]``, ``v² a (1 − s)² + s`` is convex in ``s``, so at most
  ``max(a v_h², 1) = m_h²`` (``≤ a v_h² + 1``: the first term of the min); ``m`` is
  ``√a``-Lipschitz in ``v``, so ``‖m(v)‖ ≤ ‖m(v_c)‖ + √a R`` (the second).
* ``Ḡ_k = (αa_k + √(α²a_k² + 4a_k))/2``, ``α = c₂V∞``, ``≥ ‖∇²net_k‖₂``: the norm of
  a block-diagonal symmetric matrix is the largest block norm; a block acts on the
  plane of ``(q̂, e_v)`` as ``[[v t'' a, t'√a], [t'√a, 0]]``, whose spectral norm
  ``(|v t''|a + √(v²t''²a² + 4t'²a))/2`` increases in ``|v t''|`` and ``|t'|``.
* ``T̄_k = c₃V∞ a_k^{3/2} + (2/√3)c₂ a_k ≥ ‖∇³net_k‖`` (trilinear operator norm; for a
  symmetric form it is ``sup_{‖e‖=1} |D³[e, e, e]|``, Banach): on unit ``e`` with
  ``s = ‖(e_u, e_b)‖`` of each unit, ``|ê| ≤ √a s``, ``|e_v| ≤ √(1 − s²)``, so
  ``|D³net_h| ≤ |v_h|c₃a^{3/2}s³ + 3c₂a s²√(1 − s²) ≤ (|v_h|c₃a^{3/2} + (2/√3)c₂a)‖e_h‖³``
  (``max s²√(1 − s²) = 2/(3√3)``), and ``Σ_h K_h‖e_h‖³ ≤ max_h K_h``.
* ``F̄_k = √(c₂²a_k²V² + 2a_kH) ≥ ‖∇²net_k‖_F`` (``‖block_h‖_F² = v_h²t''²a² + 2t'²a``).

Constants (upper bounds on the ball, ``mean_k`` over task ``i``'s pool):
* A2  ``L_i = mean_k (J̄_k² + r̄_k Ḡ_k)``: ``|D²ℓ[e, e]| = |(Jᵀe)² + r∇²net[e, e]|
  ≤ ‖J‖² + |r|‖∇²net‖₂`` and ``∇²f_i`` is the pool mean.
* A3  ``ρ_i = mean_k (3 J̄_k Ḡ_k + r̄_k T̄_k)``: ``‖∇³ℓ‖ ≤ 3‖J‖‖∇²net‖₂ + |r|‖∇³net‖``;
  the ball is convex, so ``‖∇²f_i(w) − ∇²f_i(w')‖₂ ≤ sup_ball ‖∇³f_i‖ ‖w − w'‖``.
* A4  ``σ² = min(Σ_i p_i g_i², Σ_i p_i (ḡ + (1 − 2p_i)g_i)²)``, ``ḡ = Σ_j p_j g_j``,
  ``g_i = mean_k r̄_k J̄_k ≥ sup_ball ‖∇f_i‖`` (``∇f_i = mean_k r_k J_k``; the min as
  in ``robust-regression``).
* A5  ``σ̃² = max_i mean_k r̄_k² J̄_k²``: variance ≤ second moment ``E_k‖r_kJ_k‖²``.
* A5  ``σ_H² = max_i mean_k (J̄_k² + r̄_k F̄_k)²``: a bound on the *Frobenius* second
  moment ``E_k‖∇²ℓ_k‖_F²`` (``‖JJᵀ‖_F = ‖J‖²``), hence on the Frobenius variance; so a
  with-replacement batch of ``n`` has ``E‖∇̃²f_i − ∇²f_i‖₂² ≤ E‖·‖_F² ≤ σ_H²/n``
  (THEORY.md errata, A5).
``inf_f_lower() = 0``: ``ℓ ≥ 0``.

Every bound uses the pool's actual inputs and labels (fixed data: still a
certificate) and holds for every ``w`` in the ball, not beyond it: a run is covered
only while its iterates stay inside (``RunResult.ball_condition``).
"""
from __future__ import annotations

import numpy as np

from .base import (Constant, Constants, DataPools, TaskFamily, check_count, check_positive,
                   check_probabilities)

__all__ = ["SinusoidMLP", "SUP_D2TANH", "SUP_D3TANH", "AMPLITUDE", "PHASE", "X_RANGE"]

SUP_D2TANH = 4.0 / (3.0 * np.sqrt(3.0))     # |tanh''| at tanh = ±1/√3
SUP_D3TANH = 2.0                            # |tanh'''| at 0
AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, np.pi)
X_RANGE = (-5.0, 5.0)


# --- per-sample quantities over data X, Y of shape (..., n) -----------------------------
def _parts(w, H):
    return w[..., :H], w[..., H:2 * H], w[..., 2 * H:3 * H], w[..., 3 * H]


def _forward(X, Y, w, H):
    """``t = tanh(ux + b)`` ``(..., n, H)``, ``t'``, the residuals ``r`` ``(..., n)`` and ``v``."""
    u, b, v, c = _parts(w, H)
    t = np.tanh(X[..., :, None] * u[..., None, :] + b[..., None, :])
    r = (t * v[..., None, :]).sum(-1) + c[..., None] - Y
    return t, 1.0 - t * t, r, v


def _cat(*parts):
    """Concatenate on the last axis after broadcasting the leading axes."""
    lead = np.broadcast_shapes(*(a.shape[:-1] for a in parts))
    return np.concatenate([np.broadcast_to(a, lead + a.shape[-1:]) for a in parts], axis=-1)


def _jacobian(X, t, dt, v):
    """``∇net`` of every sample: ``(..., n, 3H + 1)``."""
    vdt = v[..., None, :] * dt
    return _cat(vdt * X[..., :, None], vdt, t, np.ones(t.shape[:-1] + (1,)))


def _loss(X, Y, w, H):
    r = _forward(X, Y, w, H)[2]
    return 0.5 * (r * r).mean(-1)


def _grad(X, Y, w, H):
    t, dt, r, v = _forward(X, Y, w, H)
    return (r[..., None, :] @ _jacobian(X, t, dt, v))[..., 0, :] / X.shape[-1]


def _curvature_weights(X, t, dt, r, v):
    """Per unit, the pool means of ``r∇²net``'s block entries:
    ``s_uu, s_ub, s_bb, s_uv, s_bv`` (each ``(..., H)``)."""
    n = X.shape[-1]
    x = X[..., :, None]
    rd2 = r[..., :, None] * (-2.0 * t * dt)                 # r t''
    rd1 = r[..., :, None] * dt                               # r t'
    return (v * (rd2 * x * x).sum(-2) / n, v * (rd2 * x).sum(-2) / n, v * rd2.sum(-2) / n,
            (rd1 * x).sum(-2) / n, rd1.sum(-2) / n)


def _hess(X, Y, w, H):
    t, dt, r, v = _forward(X, Y, w, H)
    J = _jacobian(X, t, dt, v)
    out = np.swapaxes(J, -1, -2) @ J / X.shape[-1]
    s_uu, s_ub, s_bb, s_uv, s_bv = _curvature_weights(X, t, dt, r, v)
    h = np.arange(H)
    out[..., h, h] += s_uu
    out[..., H + h, H + h] += s_bb
    for (j, k), s in (((h, H + h), s_ub), ((h, 2 * H + h), s_uv), ((H + h, 2 * H + h), s_bv)):
        out[..., j, k] += s
        out[..., k, j] += s
    return 0.5 * (out + np.swapaxes(out, -1, -2))            # exactly symmetric despite BLAS rounding


def _hvp(X, Y, w, p, H):
    t, dt, r, v = _forward(X, Y, w, H)
    J = _jacobian(X, t, dt, v)
    Jp = (J @ p[..., :, None])[..., 0]
    out = (Jp[..., None, :] @ J)[..., 0, :] / X.shape[-1]
    s_uu, s_ub, s_bb, s_uv, s_bv = _curvature_weights(X, t, dt, r, v)
    pu, pb, pv, _ = _parts(p, H)
    block = _cat(s_uu * pu + s_ub * pb + s_uv * pv, s_ub * pu + s_bb * pb + s_bv * pv,
                 s_uv * pu + s_bv * pb, np.zeros(out.shape[:-1] + (1,)))
    return out + block


class SinusoidMLP(DataPools, TaskFamily):
    """Sinusoid regression tasks fitted by a one-hidden-layer tanh network (see module).

    Args:
        M: number of tasks (drawn once from ``seed``).
        width: hidden units ``H`` (``d = 3H + 1``).
        n_pool: inputs per task (each task's fixed data).
        radius: ``R`` of the certificate's ball around the initialisation ``w_c``.
        p: task probabilities (uniform by default); seed: data and initialisation seed.
    """

    name = "sinusoid-mlp"
    citation = "Finn, Abbeel & Levine, ICML 2017, §5.1 (sinusoid regression)"

    def __init__(self, M: int = 10, *, width: int = 20, n_pool: int = 50, radius: float = 1.0,
                 p=None, seed: int = 0):
        self.M = check_count("M", M)
        self.width = check_count("width", width)
        self.n_pool = check_count("n_pool", n_pool)
        self.radius = check_positive("radius", radius)
        self.seed = int(seed)
        self.d = 3 * self.width + 1
        self.p = check_probabilities(p, self.M)
        # separate streams: the tasks, their inputs and the initialisation do not
        # change when another part's size does
        tasks = np.random.default_rng([self.seed, 0])
        self.amplitude = tasks.uniform(*AMPLITUDE, self.M)
        self.phase = tasks.uniform(*PHASE, self.M)
        self.X = np.random.default_rng([self.seed, 1]).uniform(*X_RANGE, (self.M, self.n_pool))
        self.Y = self.amplitude[:, None] * np.sin(self.X - self.phase[:, None])
        init = np.random.default_rng([self.seed, 2])
        H = self.width
        self.centre = np.concatenate([init.standard_normal(H), init.standard_normal(H),
                                      init.standard_normal(H) / np.sqrt(H), [0.0]])
        self._constants = None

    # --- exact oracles (means over task i's pool) ---------------------------------
    def loss(self, w, i):
        w, i = self._w(w), self._i(i)
        return _loss(self.X[i], self.Y[i], w, self.width)

    def grad(self, w, i):
        w, i = self._w(w), self._i(i)
        return _grad(self.X[i], self.Y[i], w, self.width)

    def hess(self, w, i):
        w, i = self._w(w), self._i(i)
        return _hess(self.X[i], self.Y[i], w, self.width)

    def hvp(self, w, i, v):
        w, i = self._w(w), self._i(i)
        return _hvp(self.X[i], self.Y[i], w, np.asarray(v, dtype=float), self.width)

    # --- stochastic oracles: draw_batch, _batch_data from DataPools (n pool points of task i) --
    def batch_grad(self, w, i, batch):
        return _grad(*self._batch_data(i, batch), self._w(w), self.width)

    def batch_hess(self, w, i, batch):
        return _hess(*self._batch_data(i, batch), self._w(w), self.width)

    def batch_hvp(self, w, i, v, batch):
        return _hvp(*self._batch_data(i, batch), self._w(w), np.asarray(v, dtype=float), self.width)

    # --- certified constants on the ball (module docstring) -------------------------
    def sample_bounds(self) -> dict[str, np.ndarray]:
        """Per pool point ``(M, n_pool)``, the sups over the ball of the module
        docstring: ``r̄`` (``|r|``), ``J̄`` (``‖∇net‖``), ``Ḡ`` (``‖∇²net‖₂``),
        ``T̄`` (``‖∇³net‖``), ``F̄`` (``‖∇²net‖_F``)."""
        H, R = self.width, self.radius
        _, _, v_c, c_c = _parts(self.centre, H)
        a = 1.0 + self.X ** 2
        V = np.linalg.norm(v_c) + R
        V_inf = np.abs(v_c).max() + R
        N_bar = np.abs(v_c).sum() + abs(c_c) + R * np.sqrt(H + 1.0)
        r_bar = N_bar + np.abs(self.Y)
        m_c = np.linalg.norm(np.maximum(np.sqrt(a)[..., None] * np.abs(v_c), 1.0), axis=-1)
        J2 = 1.0 + np.minimum(H + a * V ** 2, (m_c + np.sqrt(a) * R) ** 2)
        alpha = SUP_D2TANH * V_inf
        G = 0.5 * (alpha * a + np.sqrt((alpha * a) ** 2 + 4.0 * a))
        T = SUP_D3TANH * V_inf * a ** 1.5 + (2.0 / np.sqrt(3.0)) * SUP_D2TANH * a
        Fro = np.sqrt(SUP_D2TANH ** 2 * a ** 2 * V ** 2 + 2.0 * a * H)
        return {"r": r_bar, "J": np.sqrt(J2), "G": G, "T": T, "F": Fro}

    def constants(self) -> Constants:
        if self._constants is not None:
            return self._constants
        s = self.sample_bounds()
        r, J, G, T, Fro = s["r"], s["J"], s["G"], s["T"], s["F"]
        L_i = (J ** 2 + r * G).mean(-1)
        rho_i = (3.0 * J * G + r * T).mean(-1)
        g = (r * J).mean(-1)
        g_bar = self.p @ g
        sigma2 = min(self.p @ g ** 2, self.p @ (g_bar + (1 - 2 * self.p) * g) ** 2)
        s_t = np.sqrt(((r * J) ** 2).mean(-1).max())
        s_H = np.sqrt(((J ** 2 + r * Fro) ** 2).mean(-1).max())
        ball = f"upper bound on the ball ‖w − w_c‖ ≤ R = {self.radius:.6g}: "
        self._constants = Constants(
            L=Constant(L_i.max(), False, ball + "A2: mean_k(J̄_k² + r̄_kḠ_k), ‖∇²ℓ‖₂ ≤ ‖∇net‖² + |r|‖∇²net‖₂"),
            rho=Constant(rho_i.max(), False,
                         ball + "A3: mean_k(3J̄_kḠ_k + r̄_kT̄_k), ‖∇³ℓ‖ ≤ 3‖∇net‖‖∇²net‖₂ + |r|‖∇³net‖"),
            sigma=Constant(np.sqrt(sigma2), False,
                           ball + "A4: min(Σp_i g_i², Σp_i(ḡ+(1−2p_i)g_i)²)^½, g_i = mean_k r̄_kJ̄_k ≥ sup‖∇f_i‖"),
            sigma_tilde=Constant(s_t, False,
                                 ball + "A5: (max_i mean_k r̄_k²J̄_k²)^½ (variance ≤ second moment)"),
            sigma_H=Constant(s_H, False,
                             ball + "A5: (max_i mean_k (J̄_k² + r̄_kF̄_k)²)^½ (Frobenius second moment)"),
            L_i=L_i, rho_i=rho_i,
        )
        return self._constants

    def inf_f_lower(self) -> float:
        """``0``: ``ℓ = ½r² ≥ 0``, so every ``f_i ≥ 0`` and ``F ≥ 0`` (A1)."""
        return 0.0

    # --- optional capabilities (CAPABILITIES) ---------------------------------------
    def certificate_ball(self) -> tuple[np.ndarray, float]:
        """``(w_c, R)``: the initialisation drawn from ``seed`` and ``radius``."""
        return self.centre.copy(), self.radius

    def centre_and_length(self) -> tuple[np.ndarray, float]:
        """``w_c`` and ``R/(2√d)``: generic test points at ``length·r`` with
        ``r ≤ 2√d`` stay in the certificate's ball."""
        return self.centre.copy(), self.radius / (2.0 * np.sqrt(self.d))

    def describe(self):
        return {**super().describe(), "width": self.width, "n_pool": self.n_pool, "radius": self.radius,
                "seed": self.seed}

    # --- the batch loss over an array namespace (CAPABILITIES "loss_on"; loss_data from DataPools)
    @staticmethod
    def loss_on(ops, w, data):
        """``(1/n) Σ_k ½(vᵀtanh(u x_k + b) + c − y_k)²`` over the rows of ``loss_data``,
        ``w = [u, b, v, c]`` (``H = (d − 1)/3``), as ``_loss`` computes it: the batch
        loss, whose gradient is ``batch_grad`` and Hessian ``batch_hess``."""
        H = (w.shape[-1] - 1) // 3
        u, b, v, c = w[:H], w[H:2 * H], w[2 * H:3 * H], w[3 * H]
        t = ops.tanh(data["X"][:, None] * u[None, :] + b[None, :])
        r = (t * v[None, :]).sum(-1) + c - data["Y"]
        return (0.5 * (r * r)).mean(-1)
