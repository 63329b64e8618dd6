"""Compiled kernels, when ``numba`` is installed (the ``fast`` extra).

``njit`` compiles a function with ``numba.njit(cache=True)`` (the machine code
is cached beside the source, so a process pays the compilation once per
machine) and ``AVAILABLE`` says whether that happens; without numba,
``AVAILABLE`` is ``False`` and the families and samplers that use kernels fall
back to their NumPy code (the same numbers to rounding, slower).

The kernels of this suite loop over seeds outermost and do each seed's
arithmetic in a fixed order (no reassociation), so a seed's result is the same
bits whether it runs alone or beside others and whether its block runs on this
thread or another (``in_threads``): the promise that batching seeds never changes a
trajectory holds for the kernels as it does for the streams.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from concurrent.futures import ThreadPoolExecutor

__all__ = ["AVAILABLE", "FASTMATH", "THREADS", "njit", "pool", "in_threads"]

#: Whether the kernels are compiled (numba installed and not switched off by
#: ``MAMLCHECK_NO_JIT=1``).  numba itself is imported at the first kernel call
#: (about 0.2 s), not here: most processes (the command line's checks, runs of
#: other families) never call a kernel.
AVAILABLE = (os.environ.get("MAMLCHECK_NO_JIT", "0") in ("", "0")
             and importlib.util.find_spec("numba") is not None)
#: The one fast-math flag: ``contract`` (a multiply and the add that uses it
#: fused into one FMA, rounded once).  No reassociation: every sum runs in the
#: order written.  Contraction is decided per instruction pattern, the same in
#: a loop's vector body and its scalar remainder, so a seed's bits do not depend
#: on the lane it ran in (``tests/test_kernels.py`` checks it on this machine's
#: compiled code: alone, batched, across the kernels' thresholds).
FASTMATH = {"contract"}


class _Kernel:
    """A function compiled at its first call.  A kernel calls only kernels of its
    own module: the first call replaces every kernel of the module, in the
    module's globals, by its numba dispatcher, so that a kernel calling another
    finds a dispatcher there (numba resolves a callee's global name when it
    compiles the caller)."""

    def __init__(self, fn):
        self.fn, self.compiled = fn, None
        self.__doc__, self.__name__, self.__wrapped__ = fn.__doc__, fn.__name__, fn

    def compile(self):
        if self.compiled is None:
            import numba
            self.compiled = numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")(self.fn)
            space = sys.modules[self.fn.__module__].__dict__
            for name, value in list(space.items()):
                if isinstance(value, _Kernel):
                    space[name] = value.compile()
        return self.compiled

    def __call__(self, *args):
        return (self.compiled or self.compile())(*args)


def njit():
    """Decorator: compile with numba at the first call (cached, ``FASTMATH``, the
    GIL released so that ``in_threads`` runs blocks side by side), or ``None``
    without it."""
    def wrap(fn):
        return _Kernel(fn) if AVAILABLE else None
    return wrap


#: Threads ``in_threads`` spreads blocks over: the machine's cores, at most 8.
THREADS = max(1, min(8, os.cpu_count() or 1))
_POOLS: dict[str, tuple[int, ThreadPoolExecutor]] = {}


def pool(name: str, workers: int) -> ThreadPoolExecutor:
    """A thread pool of this process, built on first use (a fork gets its own: a
    child never waits on its parent's threads, which it does not have)."""
    pid = os.getpid()
    held = _POOLS.get(name)
    if held is None or held[0] != pid:
        held = (pid, ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name))
        _POOLS[name] = held
    return held[1]


def in_threads(kernel, blocks: list[tuple]) -> None:
    """``kernel(*args)`` for every ``args`` of ``blocks``, the first on this thread
    and the others on ``pool("kernels")`` (kernels release the GIL), returning when
    all are done.  Python threads, not numba's threading layers: they are safe
    across ``fork`` (the cells' process pool) and from several threads."""
    if len(blocks) == 1:
        kernel(*blocks[0])
        return
    futures = [pool("kernels", THREADS - 1).submit(kernel, *args) for args in blocks[1:]]
    kernel(*blocks[0])
    for f in futures:
        f.result()
