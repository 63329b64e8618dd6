"""Independent random streams, one per seed, drawn as arrays with a seed axis.

Seed ``r`` of root ``root`` owns the streams ``SeedSequence(root,
spawn_key=(r, 0))`` (normals) and ``spawn_key=(r, 1)`` (uniforms), the same
children ``SeedSequence(root).spawn`` would give, each driving its own
``SFC64`` bit generator.  A run of seeds ``[r]`` therefore sees exactly the
numbers that seed ``r`` sees inside a run of many seeds, whatever else runs:
batching seeds never changes a trajectory.

Bit generator: ``SFC64`` (Chris Doty-Humphrey's Small Fast Chaotic PRNG,
numpy's other recommended modern generator; 256-bit state, passes PractRand
and BigCrush), chosen over ``PCG64`` because it is the fastest numpy bit
generator for the draws this suite makes: ``standard_normal`` ≈ 10 ns vs
≈ 12 ns for ``PCG64`` / ``PCG64DXSM`` here (best of 40 blocks of 5·10⁵, numpy
2.4 on x86-64), and normals are a large share of a MAML step.  Seeding is still
``SeedSequence`` with per-seed spawn keys, so streams of different seeds (and
of the two kinds) are independent in the same sense as before; the numbers
differ from the ``PCG64`` version of this module, not their law.

``SeedStreams`` quacks like a ``numpy.random.Generator`` for the two calls the
task families make, ``standard_normal(size)`` and ``random(size)``, with
``size[0]`` the number of seeds (plus ``scaled_normal(scales)``, the normals
times per-column scales in the same pass, for the fast paths).  Draws come
from per-seed blocks refilled ``block`` numbers at a time, so the one loop over
seeds runs once per block, not once per step.  (numpy's generators produce the
same sequence however the draws are chunked, which is what makes blocking
invisible.)  Each refill writes the generators' output straight into the rows
of a block (no per-seed arrays, no concatenation), and a draw is a copy of its
slice of the block, so arrays handed out earlier stay valid.

Prefetch: with ``prefetch`` (the default for ``PREFETCH_MIN_SEEDS`` seeds or
more) the next block is filled by a background thread while the current one is
used; numpy's generators release the GIL while they fill, so with a second
core the hot loop's draws cost one copy instead of ~11 ns a normal (a third
of a MAML step on one core).  Every generator is used by one thread at a time
and always in stream order, so prefetch changes no number: a run is the same
with it, without it, and on one core (``MAML_STREAMS_PREFETCH=0``).
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from math import prod
from typing import Sequence

import numpy as np

__all__ = ["SeedStreams", "seed_generator", "PREFETCH"]

#: Default of ``SeedStreams(prefetch=...)``: refill blocks in a background thread.
#: ``MAML_STREAMS_PREFETCH=0`` in the environment turns it off (one core only).
PREFETCH = os.environ.get("MAML_STREAMS_PREFETCH", "1") != "0"
#: Below this many seeds a block is quick to fill and the thread handoff costs
#: more than it saves (measured: R = 1 runs ~15% slower with prefetch, R = 64
#: ~30% faster on two cores).
PREFETCH_MIN_SEEDS = 8


def seed_generator(root: int, seed: int, stream: int) -> np.random.Generator:
    """Generator of stream ``stream`` (0: normals, 1: uniforms) of seed ``seed``."""
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(root, spawn_key=(seed, stream))))


_EXECUTOR: tuple[int, ThreadPoolExecutor] | None = None


def _background() -> ThreadPoolExecutor:
    """One worker thread per process that refills blocks ahead of use (a fork
    gets its own: a child never waits on its parent's thread)."""
    global _EXECUTOR
    if _EXECUTOR is None or _EXECUTOR[0] != os.getpid():
        _EXECUTOR = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-streams"))
    return _EXECUTOR[1]


class _Buffered:
    """Per-seed blocks of one kind of draw: row ``r`` of a block holds seed ``r``'s
    next ``block`` numbers, blocks follow each other in every seed's stream.

    With ``prefetch``, block ``n + 1`` is filled by a background thread while
    block ``n`` is used (numpy's generators release the GIL while they fill),
    so on a machine with a free core the draws cost the hot loop one copy.
    Each generator is only ever used by one thread at a time, and always in
    stream order, so the numbers are the same with and without prefetch.
    """

    def __init__(self, gens: list[np.random.Generator], method: str, block: int, prefetch: bool):
        self.fills = [getattr(g, method) for g in gens]
        self.R, self.block, self.prefetch = len(gens), block, prefetch
        self.buf = np.empty((self.R, 0))
        self.pos = 0
        self.pending: tuple[int, Future] | None = None   # (pid, future of the next block)

    def _fill(self, out: np.ndarray) -> np.ndarray:
        for row, fill in zip(out, self.fills):
            fill(out=row)
        return out

    def _next_block(self, spare: np.ndarray | None) -> np.ndarray:
        """The block after the current one (waiting for the prefetch if there is
        one), and the prefetch of the block after that into ``spare``."""
        pending, self.pending = self.pending, None
        if pending is not None and pending[0] == os.getpid():
            block = pending[1].result()
        else:
            block = self._fill(np.empty((self.R, self.block)))
        if self.prefetch:
            if spare is None or spare.shape != block.shape:
                spare = np.empty_like(block)
            self.pending = (os.getpid(), _background().submit(self._fill, spare))
        return block

    def take(self, k: int, scale: np.ndarray | None = None) -> np.ndarray:
        """The next ``k`` numbers of every seed: a new ``(R, k)`` array, its
        columns multiplied by ``scale`` if given (in the same pass as the copy)."""
        pos, buf = self.pos, self.buf
        if pos + k <= buf.shape[1]:
            self.pos = pos + k
            if scale is None:
                return buf[:, pos:pos + k].copy()
            return np.multiply(buf[:, pos:pos + k], scale)
        out = np.empty((self.R, k))
        got = buf.shape[1] - pos
        out[:, :got] = buf[:, pos:]
        while got < k:
            spare = buf if buf.shape[1] else None        # fully copied out: free for the prefetch
            buf = self._next_block(spare)
            n = min(k - got, buf.shape[1])
            out[:, got:got + n] = buf[:, :n]
            got, pos = got + n, n
        self.buf, self.pos = buf, pos
        if scale is not None:
            out *= scale
        return out


class SeedStreams:
    """One independent stream per seed (see module docstring).

    Args:
        seeds: the seed ids (``int`` ``R`` means ``range(R)``).
        root: the root entropy shared by all seeds of a run.
        block: numbers drawn per seed per refill (default: 8192, fewer for
            very many seeds so that a buffer stays near 16 MB).
        prefetch: fill the next block in a background thread (default:
            ``PREFETCH``, for at least ``PREFETCH_MIN_SEEDS`` seeds); the
            numbers are the same either way.
    """

    def __init__(self, seeds: int | Sequence[int], root: int = 0, block: int | None = None,
                 prefetch: bool | None = None):
        if np.isscalar(seeds):
            if isinstance(seeds, bool) or not float(seeds).is_integer():
                raise ValueError(f"seeds must be a positive whole count or a list of ids, got {seeds!r}")
            seeds_arr = np.arange(int(seeds))
        else:
            seeds_arr = np.asarray(seeds)
            if seeds_arr.size and not np.issubdtype(seeds_arr.dtype, np.integer):
                raise ValueError(f"seed ids must be integers, got {seeds!r}")
        self.seeds = seeds_arr.astype(np.int64)
        if self.seeds.ndim != 1 or self.seeds.size == 0 or np.any(self.seeds < 0):
            raise ValueError(f"seeds must be a positive count or a list of nonnegative ids, got {seeds!r}")
        if np.unique(self.seeds).size != self.seeds.size:
            raise ValueError(f"seed ids must be distinct (a repeated id repeats its stream), got {seeds!r}")
        self.root = int(root)
        block = block or int(np.clip(2**21 // self.seeds.size, 64, 8192))
        if prefetch is None:                             # a handful of seeds: not worth a GIL handoff
            prefetch = PREFETCH and self.seeds.size >= PREFETCH_MIN_SEEDS
        self._normal = _Buffered([seed_generator(self.root, int(s), 0) for s in self.seeds],
                                 "standard_normal", block, prefetch)
        self._uniform = _Buffered([seed_generator(self.root, int(s), 1) for s in self.seeds],
                                  "random", block, prefetch)
        self._R = int(self.seeds.size)

    @property
    def R(self) -> int:
        return self._R

    def _count(self, size) -> tuple[tuple[int, ...], int]:
        size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
        if not size or size[0] != self._R:
            raise ValueError(f"draws need the seed axis first: size[0] must be {self._R}, got {size}")
        return size, prod(size[1:])

    def standard_normal(self, size) -> np.ndarray:
        size, k = self._count(size)
        return self._normal.take(k).reshape(size)

    def scaled_normal(self, scales: np.ndarray) -> np.ndarray:
        """``standard_normal((R, len(scales))) * scales`` in one pass: the same
        numbers, column ``j`` multiplied by ``scales[j]``."""
        return self._normal.take(len(scales), scales)

    def random(self, size) -> np.ndarray:
        size, k = self._count(size)
        return self._uniform.take(k).reshape(size)
