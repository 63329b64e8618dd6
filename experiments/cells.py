"""Sweeps as cells: complete or absent, keyed by the code that computed them.

An experiment is a module with
* ``NAME``, ``TITLE``;
* ``cells(scale) -> list[dict]``: one JSON-able parameter dict per cell
  (experiment × family × parameters × seed block);
* ``compute(params) -> pandas.DataFrame``: a pure, seeded function of one cell
  returning tidy rows (the configuration in columns);
* ``plot(table, outdir) -> list[Path]``: figures drawn from the table alone;
* ``claims(table) -> list[Check]``: the report rows, each a ``theory.checks.Check``;
* optionally ``section(table, figures, report_dir) -> str``: its own report
  section instead of the claims table.

**Complete or absent.**  Workers compute a cell's table and hand it back; the
parent writes it to ``<results>/cells/<NAME>/<key>.csv`` in one atomic
rename, with a last line ``#mamlcheck-cell v1 sha256=… rows=…`` (the checksum
of the table above it).  A file without that line, with a wrong checksum or
unparsable is *damaged*: it is named in one line and recomputed, never used.
An interrupted computation never produces a file: inside a cell, ``run``
lets Ctrl-C propagate (``algorithms.runner.interrupts_propagate``); worker
processes ignore SIGINT (the parent decides), die with their parent
(``PR_SET_PDEATHSIG``, also when the parent is SIGKILLed) and are killed when
the parent is interrupted, so queued and part-finished cells are dropped.

**Keyed by what produced them.**  ``key`` hashes the experiment's name, the
scale, the cell's parameters and ``source_hash()``: the source of the whole
installed package, so any change to the computation invalidates every cell.

Backends run the cells: in this process (``workers=1``), a local process
pool, or a Dask cluster (``experiments.cluster``); each yields ``(params,
table)`` pairs as cells finish and can be aborted.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import importlib
import importlib.util
import io
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

import pandas as pd

__all__ = ["SCALES", "DamagedCell", "source_hash", "hash_folders", "cell_key", "cell_path", "write_cell", "read_cell",
           "compute_cell", "run_cells", "collect", "results_lock", "InProcess", "LocalPool", "MAX_WORKERS"]

SCALES = ("tiny", "quick", "default", "full")
#: the installed packages whose source keys every cell
PACKAGES = ("mamlcheck", "mamlcheck.problems", "mamlcheck.theory", "mamlcheck.algorithms", "mamlcheck.experiments")
TRAILER = b"#mamlcheck-cell v1 "
#: ``--workers`` above this is refused (a few per core is already more than useful)
MAX_WORKERS = 4 * (os.cpu_count() or 1)


class Terminated(BaseException):
    """SIGTERM, raised where the program is (like Ctrl-C's KeyboardInterrupt), so
    that cleanup runs and nothing half-done is saved."""


_SIGNALLED: list[int] = []


@contextlib.contextmanager
def deferred_signals():
    """While a pool works, SIGINT and SIGTERM only note themselves; the waiting
    loop raises them (``raise_if_signalled``).  An interrupt raised by the
    handler itself could land inside a cleanup callback of the pool's
    machinery, where Python prints "Exception ignored" and carries on: the
    Ctrl-C would be lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, lambda signum, frame: _SIGNALLED.append(signum))
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _SIGNALLED.clear()


def raise_if_signalled() -> None:
    """Raise the first noted signal: ``KeyboardInterrupt`` (SIGINT) or ``Terminated``."""
    if _SIGNALLED:
        raise KeyboardInterrupt if _SIGNALLED[0] == signal.SIGINT else Terminated()


class DamagedCell(ValueError):
    """A cell file that is not a complete cell of this suite (truncated, edited, foreign)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


# --- keys --------------------------------------------------------------------------
@lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 of every ``.py`` file of the installed package (``mamlcheck`` and
    its subpackages, wherever their folders are), names and contents."""
    # each package's own folder only (the first search location: ``mamlcheck``
    # may also search a checkout's root, which holds the others and much more)
    return hash_folders([Path(importlib.util.find_spec(pkg).submodule_search_locations[0]) for pkg in PACKAGES])


def hash_folders(folders: list[Path]) -> str:
    """SHA-256 of the ``.py`` files under ``folders`` (each file's path within its
    folder, the folder's name, and its bytes), in a fixed order."""
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).glob("*.py")):
            h.update(f"{Path(folder).name}/{path.relative_to(folder)}".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cell_key(name: str, scale: str, params: dict) -> str:
    """Stable key of one cell: experiment, scale, parameters and ``source_hash()``."""
    blob = json.dumps({"experiment": name, "scale": scale, "source": source_hash(), "params": params},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cell_path(results: Path, name: str, scale: str, params: dict) -> Path:
    return Path(results) / "cells" / name / f"{cell_key(name, scale, params)}.csv"


# --- the file format ---------------------------------------------------------------------
def _encode(df: pd.DataFrame) -> bytes:
    body = df.to_csv(index=False).encode()
    return body + TRAILER + f"sha256={hashlib.sha256(body).hexdigest()} rows={len(df)}\n".encode()


def write_cell(df: pd.DataFrame, path: Path) -> None:
    """Write a complete cell in one atomic rename (temporary file, fsync, replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(_encode(df))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_cell(path: Path) -> pd.DataFrame:
    """The table of a complete cell; ``DamagedCell`` naming the file otherwise."""
    path = Path(path)
    data = path.read_bytes()
    cut = data.rfind(TRAILER)
    if cut < 0 or not data.endswith(b"\n"):
        raise DamagedCell(path, "no completeness line (truncated, or not a cell of this suite)")
    body, trailer = data[:cut], data[cut + len(TRAILER):].decode(errors="replace").split()
    fields = dict(t.split("=", 1) for t in trailer if "=" in t)
    if fields.get("sha256") != hashlib.sha256(body).hexdigest():
        raise DamagedCell(path, "checksum mismatch (the table was changed or cut)")
    try:
        df = pd.read_csv(io.BytesIO(body)) if body.strip() else pd.DataFrame()
    except (ValueError, pd.errors.ParserError) as e:
        raise DamagedCell(path, f"unparsable table ({e})") from None
    if str(len(df)) != fields.get("rows"):
        raise DamagedCell(path, f"{len(df)} rows, the completeness line says {fields.get('rows')}")
    return df


def _status(path: Path) -> str:
    """``complete``, ``absent``, or ``damaged: <reason>``."""
    if not path.exists():
        return "absent"
    try:
        read_cell(path)
    except DamagedCell as e:
        return f"damaged: {e.reason}"
    return "complete"


# --- computing a cell (in whatever process) --------------------------------------------
def compute_cell(module_name: str, params: dict) -> pd.DataFrame:
    """One cell's table; an interrupt propagates instead of returning a part."""
    from mamlcheck.algorithms.runner import interrupts_propagate
    mod = importlib.import_module(module_name)
    with interrupts_propagate():
        return mod.compute(params)


_PR_SET_PDEATHSIG = 1


def _worker_init(parent: int) -> None:
    """A pool worker: SIGINT is the parent's to handle; die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:            # the parent died before prctl took effect
        os._exit(1)


class InProcess:
    """Cells one after another in this process (``--workers 1``)."""

    def run(self, module_name: str, jobs: list[dict]) -> Iterator[tuple[dict, pd.DataFrame]]:
        for params in jobs:
            yield params, compute_cell(module_name, params)

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


class LocalPool:
    """Cells in a pool of worker processes on this machine."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def run(self, module_name: str, jobs: list[dict]) -> Iterator[tuple[dict, pd.DataFrame]]:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_worker_init,
                                            initargs=(os.getpid(),))
        pending = {self.pool.submit(compute_cell, module_name, p): p for p in jobs}
        with deferred_signals():
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                raise_if_signalled()
                for fut in done:
                    yield pending.pop(fut), fut.result()
                    raise_if_signalled()

    def abort(self) -> None:
        """Drop queued cells and kill the workers at once (part-finished cells are lost, never written)."""
        if self.pool is None:
            return
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=2)
        self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def backend_for(workers: int):
    """The local backend for ``workers`` processes (1: this process)."""
    return InProcess() if workers <= 1 else LocalPool(workers)


class _Bar:
    """Cells done, and the time left at the pace so far, on stderr (one line at
    the end when stderr is not a terminal)."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = total, label, enabled and total > 0
        self.live = self.enabled and sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.done = 0

    def step(self) -> None:
        self.done += 1
        if not self.live:
            return
        el = time.monotonic() - self.t0
        left = el / self.done * (self.total - self.done)
        sys.stderr.write(f"\r  {self.label}: {self.done}/{self.total} cells, {el:.0f}s elapsed, ~{left:.0f}s left ")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_cells(module: ModuleType, scale: str, results: Path, *, force: bool = False, workers: int = 2,
              progress: bool = True, on_done: Callable[[dict], None] | None = None,
              backend=None) -> dict[str, int]:
    """Compute every missing (or damaged) cell of ``module`` at ``scale``; returns
    counts ``{"total", "computed", "cached", "damaged"}``.  ``backend``: where
    cells run (default: ``workers`` local processes).  ``on_done`` is called
    after each cell is written (tests use it to interrupt a sweep).  Any
    exception (Ctrl-C, SIGTERM) aborts the backend: nothing more is written."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    cells = module.cells(scale)
    paths = [cell_path(results, module.NAME, scale, p) for p in cells]
    todo, damaged = [], 0
    for p, path in zip(cells, paths):
        status = "absent" if force else _status(path)
        if status.startswith("damaged"):
            damaged += 1
            print(f"{path}: {status}; recomputing", file=sys.stderr)
        if status != "complete":
            todo.append((p, path))
    by_key = {json.dumps(p, sort_keys=True, default=str): path for p, path in todo}
    bar = _Bar(len(todo), module.NAME, progress)
    backend = backend or backend_for(1 if len(todo) <= 1 else workers)
    try:
        for params, table in backend.run(module.__name__, [p for p, _ in todo]):
            write_cell(table, by_key[json.dumps(params, sort_keys=True, default=str)])
            bar.step()
            if on_done:
                on_done(params)
    except BaseException:
        backend.abort()
        raise
    else:
        backend.close()
    return {"total": len(cells), "computed": len(todo), "cached": len(cells) - len(todo), "damaged": damaged}


def collect(module: ModuleType, scale: str, results: Path) -> pd.DataFrame:
    """The experiment's tidy table: its cells at ``scale``, in cell order."""
    frames = [read_cell(cell_path(results, module.NAME, scale, p)) for p in module.cells(scale)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@contextlib.contextmanager
def results_lock(results: Path):
    """Hold ``<results>/.lock`` for the duration (one ``run-all`` per results
    folder); a second holder is refused with one line naming the folder."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    f = open(results / ".lock", "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise ValueError(f"--results {results} is in use by another run ({holder}); "
                             f"wait for it to finish or name another folder") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        yield
    finally:
        f.close()
