"""Run a sweep's cells on a Dask distributed cluster (``run-all --cluster ADDRESS``).

``DaskBackend`` is a backend for ``cells.run_cells`` like ``InProcess`` and
``LocalPool``: each cell travels to a worker as one task, its table comes back
to this process, and ``run_cells`` writes it here (atomically, as always).
Workers therefore need no shared file system, only the same ``mamlcheck``
installed: every task checks that the worker's package source is the one this
process keys its cells with, so a worker running other code fails loudly
instead of filing tables under the wrong key.

``--cluster local`` starts a ``LocalCluster`` on this machine (one
single-threaded worker process per core); any other value is the address of
a running scheduler (``tcp://HOST:8786``).  Dask is an optional dependency
(``pip install 'mamlcheck[cluster]'``) and is imported only here.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Iterator

import pandas as pd

from .cells import _worker_init, compute_cell, source_hash

__all__ = ["DaskBackend", "CONNECT_TIMEOUT", "compute_checked"]

#: seconds to wait for the scheduler to answer before ``--cluster`` is refused
CONNECT_TIMEOUT = 5.0
MISSING = "--cluster needs the cluster extra: pip install 'mamlcheck[cluster]'"


def _distributed():
    """The ``distributed`` module, or the one-line ``ValueError`` saying how to get it."""
    try:
        import distributed
    except ImportError:
        raise ValueError(MISSING) from None
    return distributed


def compute_checked(module_name: str, params: dict, expected_source: str) -> pd.DataFrame:
    """``compute_cell`` on a worker, refused if the worker's package source differs
    from the client's (the cell would be stored under a key its code did not produce)."""
    here = source_hash()
    if here != expected_source:
        raise ValueError(f"a Dask worker runs mamlcheck source {here}, this process {expected_source}: "
                         f"install the same mamlcheck on every worker (and leave it unedited during a sweep)")
    return compute_cell(module_name, params)


def dask_setup(worker) -> None:
    """Preload hook of the workers of ``--cluster local``: like the local pool's
    workers, they ignore Ctrl-C (this process decides, and cancels their
    cells) and die with this process."""
    _worker_init(os.getppid())


def _check_address(address: str) -> None:
    """Refuse a malformed scheduler address in one line, before connecting."""
    from distributed.comm.addressing import get_address_host_port
    try:
        get_address_host_port(address)
    except ValueError as e:
        raise ValueError(f"--cluster {address!r} is not a scheduler address like tcp://HOST:8786 "
                         f"or 'local' ({e})") from None


def _start_local_cluster(distributed, workers: int):
    """A quiet ``LocalCluster`` of ``workers`` single-threaded worker processes, no
    dashboard; worker errors reach the client with the failed cell, so the
    workers' own logs are silenced.

    Ctrl-C is ignored while it starts (a second or two): the worker processes
    inherit that, so a Ctrl-C at the terminal, which reaches every process of
    the foreground group, never kills a worker half-started; afterwards this
    process alone decides (``dask_setup``)."""
    with _sigint_ignored():
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.CRITICAL,
                                        preload=[__name__])


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT for the duration (only the main thread may change it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _connect(distributed, address: str, timeout: float):
    """A client of the scheduler at ``address``; ``ValueError`` naming ``--cluster``
    when nothing answers within ``timeout`` seconds."""
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"--cluster {address}: no Dask scheduler answered within {timeout:g} s ({first})") from None


class DaskBackend:
    """Cells as tasks on a Dask cluster; results are yielded as they complete.

    ``abort`` cancels every submitted task (queued or running) and returns at
    once, so nothing more is written; ``close`` ends one experiment and keeps
    the connection for the next; ``shutdown`` closes the client, and the
    ``LocalCluster`` if this backend started it."""

    def __init__(self, address: str, *, timeout: float = CONNECT_TIMEOUT, workers: int | None = None):
        """``address``: a scheduler's address, or ``"local"`` to start a
        ``LocalCluster`` of ``workers`` processes (default: one per core)."""
        distributed = _distributed()
        self._as_completed = distributed.as_completed
        self.cluster = None
        self.futures: list = []
        try:
            if address == "local":
                self.cluster = _start_local_cluster(distributed, workers or os.cpu_count() or 1)
                address = self.cluster.scheduler_address
            else:
                _check_address(address)
            self.client = _connect(distributed, address, timeout)
        except BaseException:
            self._close_cluster()
            raise

    def run(self, module_name: str, jobs: list[dict]) -> Iterator[tuple[dict, pd.DataFrame]]:
        """Submit every cell, then yield ``(params, table)`` in order of completion;
        a worker's exception is raised here with its own type and message."""
        source = source_hash()
        params_of = {self.client.submit(compute_checked, module_name, params, source, pure=False): params
                     for params in jobs}
        self.futures = list(params_of)
        for fut in self._as_completed(self.futures, loop=self.client.loop):
            yield params_of[fut], fut.result()

    def abort(self) -> None:
        """Cancel every task of this run; their results, if any arrive, are dropped."""
        futures, self.futures = self.futures, []
        if futures:
            self.client.cancel(futures, force=True)

    def close(self) -> None:
        """Forget this experiment's finished tasks; the client stays connected."""
        self.futures = []

    def shutdown(self) -> None:
        """Close the client, then the ``LocalCluster`` if this backend started it
        (without the routine log lines of closing)."""
        self.abort()
        with _quiet("distributed"):
            if self.cluster is not None:
                self._kill_local_workers()
            self.client.close()
            self._close_cluster()

    def _kill_local_workers(self) -> None:
        """SIGKILL the worker processes of our own ``LocalCluster``: a cancelled
        cell keeps its worker busy until it finishes, and a graceful close
        would wait for it."""
        with contextlib.suppress(Exception):
            for pid in self.client.run(os.getpid).values():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def _close_cluster(self) -> None:
        """Close our ``LocalCluster``, if any."""
        if self.cluster is not None:
            with _quiet("distributed"):
                self.cluster.close()
            self.cluster = None


@contextlib.contextmanager
def _quiet(logger: str):
    """Hold ``logger`` at ERROR for the duration (closing a cluster logs routine events)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
