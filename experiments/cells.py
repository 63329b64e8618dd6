"""Sweeps as cells: stored as they finish, resumed after an interruption.

An experiment is a module with
* ``NAME``, ``TITLE``;
* ``cells(scale) -> list[dict]``: one JSON-able parameter dict per cell
  (experiment × family × parameters × seed block);
* ``compute(params) -> pandas.DataFrame``: a pure, seeded function of one cell
  returning tidy rows (the configuration in columns);
* ``plot(table, outdir) -> list[Path]``: figures drawn from the table alone;
* ``claims(table) -> list[Check]``: the report rows, each a ``theory.checks.Check``.

A finished cell is written atomically to ``<results>/cells/<NAME>/<key>.csv``,
``key`` a hash of its parameters, so a rerun computes only what is missing
and an interrupted sweep resumes where it stopped.  Cells run in a process
pool over both cores; each cell uses the seed-batched runner inside.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from types import ModuleType
from typing import Callable

import pandas as pd

__all__ = ["cell_key", "cell_path", "run_cells", "collect"]

SCALES = ("tiny", "quick", "default", "full")


def _source_hash(name: str) -> str:
    """Hash of the experiment module's source: editing the experiment makes its
    cached cells stale (a change elsewhere, e.g. in ``algorithms/``, needs ``--force``)."""
    spec = importlib.util.find_spec(f"mamlcheck.experiments.{name}")
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return ""
    with open(spec.origin, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def cell_key(name: str, params: dict) -> str:
    """Stable key of one cell: a hash of the experiment's name, its source and the parameters."""
    blob = json.dumps({"experiment": name, "source": _source_hash(name), "params": params},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cell_path(results: Path, name: str, params: dict) -> Path:
    return Path(results) / "cells" / name / f"{cell_key(name, params)}.csv"


def _write_atomic(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _compute_cell(module_name: str, params: dict, path: str) -> str:
    import importlib
    mod = importlib.import_module(module_name)
    _write_atomic(mod.compute(params), Path(path))
    return path


class _Bar:
    """Cells done, and the time left at the pace so far, on stderr."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = total, label, enabled and total > 0
        self.t0 = time.monotonic()
        self.done = 0

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        el = time.monotonic() - self.t0
        left = el / self.done * (self.total - self.done)
        sys.stderr.write(f"\r  {self.label}: {self.done}/{self.total} cells, {el:.0f}s elapsed, ~{left:.0f}s left ")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_cells(module: ModuleType, scale: str, results: Path, *, force: bool = False, workers: int = 2,
              progress: bool = True, on_done: Callable[[dict], None] | None = None) -> dict[str, int]:
    """Compute every missing cell of ``module`` at ``scale``; returns counts
    ``{"total", "computed", "cached"}``.  ``on_done`` is called after each
    computed cell (tests use it to interrupt a sweep)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    cells = module.cells(scale)
    todo = [(p, cell_path(results, module.NAME, p)) for p in cells]
    if force:
        for _, path in todo:
            path.unlink(missing_ok=True)
    todo = [(p, path) for p, path in todo if not path.exists()]
    bar = _Bar(len(todo), module.NAME, progress)
    if workers <= 1 or len(todo) <= 1:
        for p, path in todo:
            _compute_cell(module.__name__, p, str(path))
            bar.step()
            if on_done:
                on_done(p)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_compute_cell, module.__name__, p, str(path)): p for p, path in todo}
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.step()
                    if on_done:
                        on_done(futures[fut])
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    return {"total": len(cells), "computed": len(todo), "cached": len(cells) - len(todo)}


def collect(module: ModuleType, scale: str, results: Path) -> pd.DataFrame:
    """The experiment's tidy table: its cells at ``scale``, in cell order."""
    frames = [pd.read_csv(cell_path(results, module.NAME, p)) for p in module.cells(scale)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
