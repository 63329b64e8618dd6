"""The JAX yardstick of ``bench --jax``: the bench's configurations written in JAX, timed in a worker.

Why.  The speed targets of the suite are ratios against a JAX implementation of the *same*
configuration measured in the *same* run (the machines are shared and noisy, so rates from
different runs do not compare).  ``bench --jax`` therefore times, for every configuration that
has one, the numpy side and the JAX side alternately and reports the best of each.

What.  ``spec`` turns the numpy side's family and resolved ``Hyper`` into a JSON description:
the family's own arrays (``a`` or ``A`` and the centres, the data ``X``, ``Y``, the chain's
tilt directions), the resolved hyperparameters (``α``, ``B``, ``D_in``, ``D_o``, ``D_h``, ``B′``,
``D_β``, the step rule's ``c``) and the certified ``L``, ``ρ``.  From it the worker builds the
run the way a careful JAX user would write it: ``jax.grad`` through the inner step, ``jax.jvp``
for Hessian-vector products, ``vmap`` over tasks and seeds, ``jit``, ``lax.scan`` over the
steps, float64 (``jax_enable_x64``), JAX's default PRNG.  Every step has the numpy runner's
parts: the adaptive ``β_k = 1/(c·L̃(w_k))`` with ``L̃ = 4L + 2ρα·mean_j‖∇̃f_j(w_k, D_β)‖`` on
``B′`` tasks of their own, the update direction, the exact ``‖∇F(w_k)‖`` of (5) recorded every
iteration, and the divergence mask (a seed whose next iterate is not finite or leaves
``‖w‖ ≤ 10⁸`` is frozen).  Draws are JAX's, so trajectories equal the numpy ones in law, not
draw for draw.  Variants:

* ``cq-fast``: the reference configuration (cosine-quadratic, diagonal ``A``, MAML), a port of
  the suite's fast path (``algorithms/fast_cosine_quadratic.py``: outer noise drawn aggregated,
  normals in one scaled block) with the O(d) exact ``∇F`` by angle addition.  A JAX user given
  the same algorithmic tricks, so the ratio measures the implementation, not the tricks.
* ``generic``: the estimator (6) (MAML), FO-MAML (§5) or HF-MAML (§6: central difference on one
  ``D_h`` batch, ``δ = 1/(6ρα‖v‖)``, 1 where ``ρα‖v‖ = 0``, as ``theory.floors.hf_delta_formula``)
  by autodiff through a task's batch loss, and the exact ``∇F`` by autodiff through
  ``Σ_i p_i f_i(w − α∇f_i(w))`` over all ``M`` tasks.  Batch losses: ``robust-regression``
  ``mean_k φ(y_k − x_kᵀw)`` over ``n`` data indices drawn with replacement; dense
  ``cosine-quadratic`` ``f_i(w) + ξ̄ᵀw + η̄γΣcos ωw_j`` with the batch means
  ``ξ̄ ~ N(0, s_ξ²/(dn) I)``, ``η̄ ~ N(0, s_η²/n)``; ``hard-chain`` its deterministic tilted
  ``f_i`` (the link ``Ψ(−a)Φ(−b) − Ψ(a)Φ(b)`` with ``Ψ`` cut off as ``problems/hard_chain.py``
  cuts it, ``Φ`` through ``log_ndtr``).

The starting point was ``/work/shared/bench/jax_peers.py`` (variants ``j2``: the fast-path port,
``j0d``: dense ``A``, ``rr``: robust-regression MAML); here the dense and robust-regression runs
take the family's arrays and the resolved step rule, and FO-MAML, HF-MAML and the tilted hard
chain are added.

Process.  The worker runs in its own process (``Yardstick``), so that JAX's import and its
threads never touch the numpy process: one JSON command per line on stdin, one JSON answer per
line on stdout (``hello``, ``build``, ``time``, ``curve``, ``grad_F``, ``drop``).  ``build``
compiles ahead of time (``jit(...).lower(...).compile()``, timed as ``compile_s``, excluded
from every rate; JAX's persistent compilation cache, kept in the environment's prefix, makes it
a load on later runs) and runs once to warm up; ``time`` runs the whole scan once.  This module
imports no JAX at import time: only the worker (``python -I bench_jax.py``) does.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["available", "MISSING", "spec", "Yardstick", "YardstickError", "serve"]

MISSING = "--jax needs jax (the bench extra): pip install -e '.[bench]'"


def available() -> bool:
    """Whether ``jax`` and ``jaxlib`` can be found (checked without importing them here)."""
    return all(importlib.util.find_spec(m) is not None for m in ("jax", "jaxlib"))


# --- the numpy side: what the worker needs to build a configuration ----------------------------
def spec(fam, hyper, L: float, rho: float, R: int, K: int) -> tuple[str, dict] | None:
    """``(variant, cfg)`` of the JAX run of ``fam`` with the resolved ``hyper`` for ``R`` seeds and
    ``K`` steps, or ``None`` where there is no JAX counterpart (exact mode, sinusoid-mlp, ...)."""
    from mamlcheck.algorithms.engine import DIVERGENCE_BOUND
    from mamlcheck.literature import HF_DELTA_DEN
    from mamlcheck.theory.floors import DELTA_WHEN_EXACT

    alg = hyper.algorithm
    if (hyper.step != "adaptive" or hyper.inner_steps != 1 or hyper.delta_cap is not None
            or alg not in ("maml", "fomaml", "hfmaml")):
        return None
    cfg = {"R": R, "K": K, "algorithm": alg, "alpha": hyper.alpha, "B": hyper.B, "D_in": hyper.D_in,
           "D_o": hyper.D_o, "D_h": hyper.D_h, "Bp": hyper.B_prime, "Dbeta": hyper.D_beta, "c_step": hyper.c,
           "L": float(L), "rho": float(rho), "p": fam.p.tolist(), "hf_den": HF_DELTA_DEN,
           "delta_exact": DELTA_WHEN_EXACT, "bound": DIVERGENCE_BOUND, "d": fam.d}
    if fam.name == "cosine-quadratic":
        cfg.update(c=fam.c.tolist(), gamma=fam.gamma, omega=fam.omega, noise_grad=fam.noise_grad,
                   noise_amp=fam.noise_amp)
        if fam.diagonal and alg == "maml" and np.all(fam.p == fam.p[0]):      # the port draws tasks uniformly
            return "cq-fast", {**cfg, "a": fam.A.tolist()}
        return ("generic", {**cfg, "family": "cq", "A": fam.A.tolist()}) if not fam.diagonal else None
    if fam.name == "robust-regression":
        return "generic", {**cfg, "family": "rr", "X": fam.X.tolist(), "Y": fam.Y.tolist()}
    if fam.name == "hard-chain":
        from mamlcheck.problems import hard_chain as hc
        return "generic", {**cfg, "family": "chain", "scale": float(fam.loss_data(0)["c"]), "lam": fam.lam, "mu": fam.mu,
                           "sigma": fam.sigma, "s": fam.s.tolist(), "u_min": hc._U_MIN,
                           "log_phi_sup": hc._LOG_PHI_SUP}
    return None


class YardstickError(RuntimeError):
    """The JAX worker refused a command or stopped."""


class Yardstick:
    """The JAX worker process and its line protocol (a context manager: ``close`` ends it)."""

    def __init__(self, python: str = sys.executable):
        self._err = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"), "TF_CPP_MIN_LOG_LEVEL": "2"}
        # -I: neither the script's folder (experiments/, whose module names could shadow others) nor
        # PYTHON* variables reach the worker; it needs only numpy and jax
        self.proc = subprocess.Popen([python, "-I", str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True, env=env)
        try:
            self.info = self._ask({"cmd": "hello"})
        except BaseException:
            self.close()
            raise

    def _ask(self, msg: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise YardstickError(f"the JAX worker stopped: {self._last_error()}")
        out = json.loads(line)
        if "error" in out:
            raise YardstickError(out["error"])
        return out

    def _last_error(self) -> str:
        self._err.seek(0)
        lines = [ln for ln in self._err.read().splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {self.proc.poll()}"

    def build(self, name: str, variant: str, cfg: dict) -> dict:
        """Compile and warm up ``name``; ``{"compile_s", "warmup_s"}``."""
        return self._ask({"cmd": "build", "name": name, "variant": variant, "cfg": cfg})

    def time(self, name: str) -> dict:
        """One timed run: ``{"wall", "cpu", "rate", "finite", "mean_last_norm"}``."""
        return self._ask({"cmd": "time", "name": name})

    def curve(self, name: str) -> np.ndarray:
        """The seed average of ``‖∇F(w_k)‖``, ``k = 0..K−1``, of one run."""
        return np.asarray(self._ask({"cmd": "curve", "name": name})["curve"])

    def grad_F(self, name: str, W) -> np.ndarray:
        """The JAX exact ``∇F`` at the points ``W`` ``(n, d)``."""
        return np.asarray(self._ask({"cmd": "grad_F", "name": name, "W": np.asarray(W, float).tolist()})["g"])

    def drop(self, name: str) -> None:
        self._ask({"cmd": "drop", "name": name})

    def close(self) -> None:
        """End the worker (it ignores Ctrl-C: this process decides); killed if it does not stop."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self._err):
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- the worker side: JAX implementations ------------------------------------------------------
def _cache_dir() -> str | None:
    """JAX's persistent compilation cache: ``MAMLCHECK_JAX_CACHE``, else a folder in the
    environment's prefix (the venv: ``make clean`` removes it), else none (prefix not writable)."""
    folder = os.environ.get("MAMLCHECK_JAX_CACHE") or os.path.join(sys.prefix, ".mamlcheck-jax-cache")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def _jax():
    import jax
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
        folder = _cache_dir()           # a second run loads the programs instead of compiling them
        if folder is not None:
            jax.config.update("jax_compilation_cache_dir", folder)
    import jax.numpy as jnp
    return jax, jnp


def _masked_step(jnp, w, alive, w_new, bound):
    """The engine's divergence rule: a seed whose next iterate is not finite or leaves the ball
    stays frozen from then on."""
    ok = alive & (jnp.sqrt(jnp.sum(w_new * w_new)) <= bound)
    return jnp.where(ok, w_new, w), ok


def _scan_all_seeds(jax, jnp, step, cfg):
    """``jit(vmap(scan))`` over seeds from ``w_0 = 0`` (the runner's default), one key per seed."""
    def one(w0, key):
        return jax.lax.scan(step, (w0, jnp.array(True)), jax.random.split(key, cfg["K"]))
    args = (jnp.zeros((cfg["R"], cfg["d"])), jax.random.split(jax.random.PRNGKey(0), cfg["R"]))
    return jax.jit(jax.vmap(one)), args


def _build_cq_fast(cfg):
    """Port of ``CosineQuadraticSampler.step`` (MAML) + ``CosineQuadratic.meta_grad`` + the runner's
    update, per seed (``jax_peers.py`` ``j2``)."""
    jax, jnp = _jax()
    d, B = cfg["d"], cfg["B"]
    a, c, p = np.asarray(cfg["a"]), np.asarray(cfg["c"]), np.asarray(cfg["p"])
    M = c.shape[0]
    g, om, sx, se = cfg["gamma"], cfg["omega"], cfg["noise_grad"], cfg["noise_amp"]
    alpha, L, rho, cst = cfg["alpha"], cfg["L"], cfg["rho"], cfg["c_step"]
    Bp, Db, Din, Do, Dh = cfg["Bp"], cfg["Dbeta"], cfg["D_in"], cfg["D_o"], cfg["D_h"]
    kx, ke = sx / np.sqrt(d), se
    # normals' columns: [L̃: η (B′) | ξ (B′d)] [ξ_in (Bd) | η_in | η_o | η_h | ζ (d)]
    scales = jnp.array(np.concatenate([
        np.repeat([g * om * se / np.sqrt(Db), sx / np.sqrt(d * Db)], [Bp, Bp * d]),
        np.full(B * d, -alpha * om * kx / np.sqrt(Din)), np.full(B, alpha * g * om * om * ke / np.sqrt(Din)),
        np.full(B, -g * om * ke / (B * np.sqrt(Do))), np.full(B, ke / np.sqrt(Dh)),
        np.full(d, kx / (B * np.sqrt(Do)))]))
    Ac = a * c
    T0, T1, Acj, aj = jnp.array((alpha * om) * Ac), jnp.array(Ac / B), jnp.array(Ac), jnp.array(a)
    q_w, q_s, a_omB, gw_B = om * (1 - alpha * a), alpha * g * om * om, a / (om * B), g * om / B
    kappa, k1 = alpha * g * om * om, 1 - alpha * a
    e = alpha * a * c
    Cc, Ss = p @ np.cos(om * e), p @ np.sin(om * e)
    Ab_bar, amp, phase = a * (p @ (e - c)), g * om * np.hypot(Cc, Ss), np.arctan2(Ss, Cc)
    nl, nb = Bp * (d + 1), B * d

    def grad_F(w, s, co):                       # O(d) by angle addition
        u0 = k1 * w + (alpha * g * om) * s
        return (a * u0 + Ab_bar - amp * jnp.sin(om * u0 + phase)) * (k1 + kappa * co)

    def step(carry, key):
        w, alive = carry
        kt, kn = jax.random.split(key)
        tasks = jax.random.randint(kt, (Bp + B,), 0, M)
        Z = jax.random.normal(kn, scales.shape) * scales
        s, co = jnp.sin(om * w), jnp.cos(om * w)
        gF = grad_F(w, s, co)
        G = Z[Bp:nl].reshape(Bp, d) - Acj[tasks[:Bp]] + aj * w - (Z[:Bp, None] + g * om) * s
        mean_norm = jnp.mean(jnp.sqrt(jnp.sum(G * G, -1)))
        Zd, tb = Z[nl:], tasks[Bp:]
        q = (Zd[nb:nb + B] + q_s)[:, None] * s + Zd[:nb].reshape(B, d) + q_w * w + T0[tb]
        X = q * a_omB - T1[tb] + jnp.sin(q) * (Zd[nb + B:nb + 2 * B] - gw_B)[:, None]
        eh = Zd[nb + 2 * B:nb + 3 * B]
        m1 = kappa * co
        m0 = k1 + m1
        out = m0 * X.sum(0) + m1 * (eh @ X)
        h2 = (B * m0 + 2 * eh.sum() * m1) * m0 + m1 * m1 * (eh @ eh)
        out = out + jnp.sqrt(jnp.maximum(h2, 0.0)) * Zd[nb + 3 * B:]
        beta = 1.0 / (cst * (4.0 * L + 2.0 * rho * alpha * mean_norm))
        return _masked_step(jnp, w, alive, w - beta * out, cfg["bound"]), jnp.sqrt(jnp.sum(gF * gF))

    run, args = _scan_all_seeds(jax, jnp, step, cfg)
    return run, args, jax.jit(jax.vmap(lambda w: grad_F(w, jnp.sin(om * w), jnp.cos(om * w))))


def _family_losses(cfg):
    """``(batch_loss(w, i, batch), loss(w, i), draw(key, n))`` of the generic variant's family."""
    jax, jnp = _jax()
    fam, d = cfg["family"], cfg["d"]
    if fam == "rr":
        X, Y = jnp.array(cfg["X"]), jnp.array(cfg["Y"])
        N = X.shape[1]

        def phi(r):
            return jnp.log1p(0.5 * r * r)
        return (lambda w, i, idx: jnp.mean(phi(Y[i, idx] - X[i, idx] @ w)),
                lambda w, i: jnp.mean(phi(Y[i] - X[i] @ w)),
                lambda key, n: jax.random.randint(key, (n,), 0, N))
    if fam == "cq":
        A, C = jnp.array(cfg["A"]), jnp.array(cfg["c"])
        g, om, sx, se = cfg["gamma"], cfg["omega"], cfg["noise_grad"], cfg["noise_amp"]

        def f(w, i):
            r = w - C[i]
            return 0.5 * r @ (A @ r) + g * jnp.sum(jnp.cos(om * w))

        def draw(key, n):                       # batch means of n samples: (η̄, ξ̄)
            k1, k2 = jax.random.split(key)
            return se / np.sqrt(n) * jax.random.normal(k1), sx / np.sqrt(d * n) * jax.random.normal(k2, (d,))
        return (lambda w, i, b: f(w, i) + b[0] * g * jnp.sum(jnp.cos(om * w)) + b[1] @ w), f, draw
    if fam == "chain":
        from jax.scipy.special import log_ndtr
        S = jnp.array(cfg["s"])
        scale, lam, mu, sigma, u_min, lps = (cfg[k] for k in ("scale", "lam", "mu", "sigma", "u_min", "log_phi_sup"))

        def psi(x):                             # double where: finite (discarded) branch, exact zero derivatives
            u = 2.0 * x - 1.0
            on = u > u_min
            r = 1.0 / jnp.where(on, u, 1.0)
            return jnp.where(on, jnp.exp(1.0 - r * r), 0.0)

        def f(w, i):
            y = w / lam
            a = jnp.concatenate([jnp.ones(1), y[:-1]])
            link = psi(-a) * jnp.exp(lps + log_ndtr(-y)) - psi(a) * jnp.exp(lps + log_ndtr(y))
            h = jnp.sin(0.5 * w / mu)
            return scale * link.sum() + sigma * mu * jnp.sum(S[i] * (2.0 * h * h))
        return (lambda w, i, b: f(w, i)), f, (lambda key, n: ())
    raise ValueError(f"unknown family {fam!r}")


def _build_generic(cfg):
    """MAML / FO-MAML / HF-MAML by autodiff through the batch loss; exact ``∇F`` over all tasks."""
    jax, jnp = _jax()
    batch_loss, loss, draw = _family_losses(cfg)
    alg, B, Bp, M = cfg["algorithm"], cfg["B"], cfg["Bp"], len(cfg["p"])
    alpha, L, rho, cst = cfg["alpha"], cfg["L"], cfg["rho"], cfg["c_step"]
    Db, Din, Do, Dh = cfg["Dbeta"], cfg["D_in"], cfg["D_o"], cfg["D_h"]
    p = jnp.array(cfg["p"])
    uniform = bool(np.all(np.asarray(cfg["p"]) == cfg["p"][0]))
    grad = jax.grad(batch_loss)
    grad_f = jax.grad(loss)

    def F(w):
        return p @ jax.vmap(lambda i: loss(w - alpha * grad_f(w, i), i))(jnp.arange(M))
    grad_F = jax.grad(F)

    def tasks(key, n):
        return jax.random.randint(key, (n,), 0, M) if uniform else jax.random.choice(key, M, (n,), p=p)

    def G(w, i, key):                           # one task's direction, (6) / §5 / §6
        k_in, k_o, k_h = jax.random.split(key, 3)
        u = w - alpha * grad(w, i, draw(k_in, Din))
        v = grad(u, i, draw(k_o, Do))
        if alg == "fomaml":
            return v
        b_h = draw(k_h, Dh)
        if alg == "maml":
            return v - alpha * jax.jvp(lambda x: grad(x, i, b_h), (w,), (v,))[1]
        r = rho * alpha * jnp.sqrt(v @ v)
        delta = jnp.where(r > 0, 1.0 / (cfg["hf_den"] * jnp.where(r > 0, r, 1.0)), cfg["delta_exact"])
        return v - alpha * (grad(w + delta * v, i, b_h) - grad(w - delta * v, i, b_h)) / (2.0 * delta)

    def step(carry, key):
        w, alive = carry
        k1, k2, k3, k4 = jax.random.split(key, 4)
        gb = jax.vmap(lambda i, k: grad(w, i, draw(k, Db)))(tasks(k1, Bp), jax.random.split(k2, Bp))
        mean_norm = jnp.mean(jnp.sqrt(jnp.sum(gb * gb, -1)))
        direction = jax.vmap(G, in_axes=(None, 0, 0))(w, tasks(k3, B), jax.random.split(k4, B)).mean(0)
        gF = grad_F(w)
        beta = 1.0 / (cst * (4.0 * L + 2.0 * rho * alpha * mean_norm))
        return _masked_step(jnp, w, alive, w - beta * direction, cfg["bound"]), jnp.sqrt(jnp.sum(gF * gF))

    run, args = _scan_all_seeds(jax, jnp, step, cfg)
    return run, args, jax.jit(jax.vmap(grad_F))


_BUILDERS = {"cq-fast": _build_cq_fast, "generic": _build_generic}


def _handle(msg: dict, built: dict) -> dict:
    jax, jnp = _jax()
    cmd = msg["cmd"]
    if cmd == "hello":
        return {"jax": jax.__version__, "backend": jax.default_backend(), "x64": bool(jax.config.jax_enable_x64),
                "devices": len(jax.devices())}
    if cmd == "build":
        run, args, grad_F = _BUILDERS[msg["variant"]](msg["cfg"])
        t0 = time.perf_counter()
        compiled = run.lower(*args).compile()
        t1 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        built[msg["name"]] = (compiled, args, grad_F, msg["cfg"])
        return {"compile_s": t1 - t0, "warmup_s": time.perf_counter() - t1}
    if cmd == "drop":
        built.pop(msg["name"], None)
        return {}
    if cmd not in ("time", "curve", "grad_F"):
        raise ValueError(f"unknown command {cmd!r}")
    if msg.get("name") not in built:
        raise ValueError(f"no configuration named {msg.get('name')!r} is built")
    compiled, args, grad_F, cfg = built[msg["name"]]
    if cmd == "time":
        t0, c0 = time.perf_counter(), time.process_time()
        norms = np.asarray(jax.block_until_ready(compiled(*args))[1])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"wall": wall, "cpu": cpu, "rate": cfg["R"] * cfg["K"] / wall, "finite": bool(np.isfinite(norms).all()),
                "mean_last_norm": float(norms[:, -1].mean())}
    if cmd == "curve":
        return {"curve": np.asarray(compiled(*args)[1]).mean(0).tolist()}
    return {"g": np.asarray(grad_F(jnp.array(msg["W"]))).tolist()}


def serve(stdin=None, stdout=None) -> None:
    """The worker's loop: one JSON command per line in, one JSON answer per line out; an error
    is answered ``{"error": ...}`` and the loop goes on.  Ctrl-C is ignored (the bench process
    decides and closes stdin)."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _jax()
    built: dict = {}
    for line in stdin:
        if not line.strip():
            continue
        try:
            out = _handle(json.loads(line), built)
        except Exception as e:                  # reported to the bench process, which names it
            out = {"error": f"{type(e).__name__}: {e}"}
        stdout.write(json.dumps(out) + "\n")
        stdout.flush()


if __name__ == "__main__":
    serve()
