"""Independent random streams, one per seed, drawn as arrays with a seed axis.

Seed ``r`` of root ``root`` owns the streams ``SeedSequence(root,
spawn_key=(r, 0))`` (normals) and ``spawn_key=(r, 1)`` (uniforms), the same
children ``SeedSequence(root).spawn`` would give.  A run of seeds ``[r]``
therefore sees exactly the numbers that seed ``r`` sees inside a run of many
seeds, whatever else runs: batching seeds never changes a trajectory.

``SeedStreams`` quacks like a ``numpy.random.Generator`` for the two calls the
task families make, ``standard_normal(size)`` and ``random(size)``, with
``size[0]`` the number of seeds.  Draws come from per-seed blocks refilled
``block`` numbers at a time, so the one loop over seeds runs once per block,
not once per step.  (numpy's generators produce the same sequence however the
draws are chunked, which is what makes blocking invisible.)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["SeedStreams", "seed_generator"]


def seed_generator(root: int, seed: int, stream: int) -> np.random.Generator:
    """Generator of stream ``stream`` (0: normals, 1: uniforms) of seed ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(root, spawn_key=(seed, stream))))


class _Buffered:
    """Per-seed blocks of one kind of draw."""

    def __init__(self, gens: list[np.random.Generator], method: str, block: int):
        self.gens, self.method, self.block = gens, method, block
        self.buf = np.empty((len(gens), 0))
        self.pos = 0

    def take(self, k: int) -> np.ndarray:
        if self.pos + k > self.buf.shape[1]:
            n = max(self.block, k)
            fresh = np.stack([getattr(g, self.method)(n) for g in self.gens])
            self.buf = np.concatenate([self.buf[:, self.pos:], fresh], axis=1)
            self.pos = 0
        out = self.buf[:, self.pos:self.pos + k]
        self.pos += k
        return out


class SeedStreams:
    """One independent stream per seed (see module docstring).

    Args:
        seeds: the seed ids (``int`` ``R`` means ``range(R)``).
        root: the root entropy shared by all seeds of a run.
        block: numbers drawn per seed per refill (default: 8192, fewer for
            very many seeds so that a buffer stays near 16 MB).
    """

    def __init__(self, seeds: int | Sequence[int], root: int = 0, block: int | None = None):
        self.seeds = np.arange(seeds) if np.isscalar(seeds) else np.asarray(seeds, dtype=np.int64)
        if self.seeds.ndim != 1 or self.seeds.size == 0 or np.any(self.seeds < 0):
            raise ValueError(f"seeds must be a positive count or a list of nonnegative ids, got {seeds!r}")
        self.root = int(root)
        block = block or int(np.clip(2**21 // self.seeds.size, 64, 8192))
        self._normal = _Buffered([seed_generator(self.root, int(s), 0) for s in self.seeds],
                                 "standard_normal", block)
        self._uniform = _Buffered([seed_generator(self.root, int(s), 1) for s in self.seeds],
                                  "random", block)

    @property
    def R(self) -> int:
        return self.seeds.size

    def _shape(self, size) -> tuple[int, ...]:
        size = (size,) if np.isscalar(size) else tuple(size)
        if not size or size[0] != self.R:
            raise ValueError(f"draws need the seed axis first: size[0] must be {self.R}, got {size}")
        return size

    def standard_normal(self, size) -> np.ndarray:
        size = self._shape(size)
        return self._normal.take(int(np.prod(size[1:], dtype=np.int64))).reshape(size)

    def random(self, size) -> np.ndarray:
        size = self._shape(size)
        return self._uniform.take(int(np.prod(size[1:], dtype=np.int64))).reshape(size)
