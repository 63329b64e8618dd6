"""Machine limits of the bench's rows: the fastest a configuration's own work can run here.

``bench`` reports, beside each rate, its fraction of a limit where one is meaningful: where the
configuration's work per seed-iteration is a fixed count of one kind of operation whose rate
this machine caps.  The rates are measured at the start of the bench (``machine_rates``, tens
of milliseconds), each the best of several blocks, so the limit is this machine's and today's.

* ``cosine-quadratic`` with diagonal ``A``, MAML / FO-MAML / HF-MAML (the fast sampler of
  ``algorithms/fast_cosine_quadratic.py``, the reference configuration among them): the random
  numbers and sines its law draws per seed and step, at one core's rates of the streams'
  generator (SFC64 normals and uniforms) and numpy's sine, all other arithmetic counted as free.
  Normals: ``B′(d + 1)`` for ``L̃`` plus ``B·d + 3B + d`` (MAML), ``B·d + 2B + d`` (FO-MAML) or
  ``2B·d + 3B`` (HF-MAML); uniforms: ``B′ + B`` task draws; sines and cosines: ``sin ωw``,
  ``cos ωw`` and the exact ``∇F``'s ``sin(ωu₀ + φ)`` (``3d``), the inner points' ``sin ωu_i``
  (``B·d``), HF-MAML's ``sin(ωδv_i)`` (``B·d`` more).
* ``robust-regression``: the exact ``∇F`` of (5) recorded every step, ``6·M·N·d`` multiply-adds per
  seed (per task: the residuals at ``w`` and at ``u_i``, the weighted sums ``∇f_i(w)``,
  ``∇f_i(u_i)``, the products ``x_kᵀv`` and the Hessian-vector sum), at one core's multiply-add
  rate of numpy's BLAS ``dgemm``; the stochastic step, ``O(B·d)``, is counted as free.

Every limit is one core's: a row whose code spreads its seeds over threads (the fast path's
prefetch thread, the robust-regression kernels) could exceed 1 on an idle machine.
* No limit (left empty): exact mode (its step's work is the exact ``L(w)`` over all tasks, not
  one kind of operation), dense ``cosine-quadratic`` (the generic path: no fixed count to
  state), the hard chain (the cost of its transcendental functions depends on how far the
  chain has been reached).
"""
from __future__ import annotations

import functools
import time

import numpy as np

__all__ = ["machine_rates", "limit", "LIMIT_NOTE"]

LIMIT_NOTE = ("of limit: the rate over one core's limit for the row's own work (cosine-quadratic fast path: "
              "its normals, uniforms and sines; robust-regression: the exact ∇F's 6·M·N·d multiply-adds at "
              "dgemm's rate; see bench_limits); empty: no meaningful limit")

_NORMALS = {"maml": lambda B, d: B * d + 3 * B + d, "fomaml": lambda B, d: B * d + 2 * B + d,
            "hfmaml": lambda B, d: 2 * B * d + 3 * B}


def _best(fn, repeats: int = 7) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@functools.lru_cache(maxsize=1)
def machine_rates() -> dict[str, float]:
    """Seconds per operation here: ``normal``, ``uniform`` (SFC64, as ``algorithms.streams``
    draws them), ``sine`` (numpy, arguments in ``[−10, 10]``), ``fma`` (one multiply-add of
    numpy's BLAS ``dgemm`` on 64×64 matrices), one core each.  Best of 7 (15) blocks."""
    gen = np.random.Generator(np.random.SFC64(0))
    n = 1 << 16
    buf, out = np.empty(n), np.empty(n)
    x = gen.uniform(-10.0, 10.0, n)
    # stacked 64×64 products: one BLAS call per matrix, each below the size at which BLAS
    # spreads a product over threads (whose rate collapses when another process holds a core)
    k, m = 8, 64
    A, B, C = gen.standard_normal((k, m, m)), gen.standard_normal((k, m, m)), np.empty((k, m, m))
    return {"normal": _best(lambda: gen.standard_normal(out=buf)) / n,
            "uniform": _best(lambda: gen.random(out=buf)) / n,
            "sine": _best(lambda: np.sin(x, out=out)) / n,
            "fma": _best(lambda: np.matmul(A, B, out=C), 15) / (k * m ** 3)}


def limit(fam, hyper, rates: dict[str, float] | None = None) -> float | None:
    """Seed-iterations per second this machine allows ``fam`` with the resolved ``hyper``
    (module docstring), or ``None`` where no limit is meaningful."""
    alg = hyper.algorithm
    if alg not in _NORMALS or hyper.inner_steps != 1 or hyper.step != "adaptive":
        return None
    if fam.name == "cosine-quadratic" and fam.diagonal:
        rates = rates or machine_rates()
        B, Bp, d = hyper.B, hyper.B_prime, fam.d
        normals = Bp * (d + 1) + _NORMALS[alg](B, d)
        sines = 3 * d + B * d * (2 if alg == "hfmaml" else 1)
        return 1.0 / (normals * rates["normal"] + (Bp + B) * rates["uniform"] + sines * rates["sine"])
    if fam.name == "robust-regression":
        rates = rates or machine_rates()
        return 1.0 / (6 * fam.M * fam.N * fam.d * rates["fma"])
    return None
