"""Sweeps on a Dask cluster (``run-all --cluster``): the same tables as the local
backends, the same interrupt rules, and one-line refusals of a bad address.

The cluster tests share one ``LocalCluster`` of two worker processes, started
by the backend itself (``--cluster local``); its workers inherit this
process's ``sys.path``, so they import the sweep fixture ``tests.sweep_fixture``,
and its environment, so they log each cell they compute."""
import importlib
import importlib.util
import sys
import time

import pandas as pd
import pytest

from mamlcheck.experiments import cells as cells_mod
from mamlcheck.experiments import cli
from mamlcheck.experiments.cluster import CONNECT_TIMEOUT, MISSING, DaskBackend, compute_checked

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="the cluster extra is not installed (pip install 'mamlcheck[cluster]')")


@pytest.fixture
def fx(monkeypatch):
    """The sweep fixture, logging nothing in this process."""
    monkeypatch.delenv("SWEEP_FIXTURE_LOG", raising=False)
    import tests.sweep_fixture as fixture
    return importlib.reload(fixture)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``(backend, log)``: a two-worker ``--cluster local`` backend whose workers
    append each cell they compute to ``log``."""
    log = tmp_path_factory.mktemp("cluster") / "computed.txt"
    log.touch()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SWEEP_FIXTURE_LOG", str(log))
        backend = DaskBackend("local", workers=2)
    from tests.conftest import TEST_ROOT, shift_stream_root
    backend.client.run(shift_stream_root, TEST_ROOT)      # the same stream root as this process
    yield backend, log
    backend.shutdown()


def _wait_idle(client, timeout=10.0):
    """Until no worker thread runs a task (a cancelled cell runs to its end)."""
    deadline = time.monotonic() + timeout
    while any(client.run(lambda dask_worker: len(dask_worker.active_threads)).values()):
        assert time.monotonic() < deadline, "the workers stayed busy"
        time.sleep(0.05)


def _tables_equal(fx, a, b):
    pd.testing.assert_frame_equal(cells_mod.collect(fx, "tiny", a), cells_mod.collect(fx, "tiny", b),
                                  check_exact=True)


@needs_dask
def test_a_sweep_on_a_local_cluster_gives_the_tables_of_the_local_backend(cluster, fx, tmp_path):
    backend, _ = cluster
    counts = cells_mod.run_cells(fx, "tiny", tmp_path / "cluster", backend=backend, progress=False)
    assert counts == {"total": 6, "computed": 6, "cached": 0, "damaged": 0}
    cells_mod.run_cells(fx, "tiny", tmp_path / "local", workers=1, progress=False)
    _tables_equal(fx, tmp_path / "cluster", tmp_path / "local")
    again = cells_mod.run_cells(fx, "tiny", tmp_path / "cluster", backend=backend, progress=False)
    assert again["computed"] == 0                      # the client stays usable; nothing to recompute


@needs_dask
def test_an_interrupted_cluster_sweep_keeps_complete_cells_and_resumes_with_the_missing_ones(
        cluster, fx, tmp_path):
    backend, log = cluster
    results = tmp_path / "a"
    raised = []

    def interrupt(params):
        raised.append(time.monotonic())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cells_mod.run_cells(fx, "tiny", results, backend=backend, progress=False, on_done=interrupt)
    assert time.monotonic() - raised[0] < 2.0          # abort cancels at once
    files = list((results / "cells" / fx.NAME).iterdir())
    assert len(files) == 1 and not files[0].name.startswith(".")    # the one written cell, no temporary
    cells_mod.read_cell(files[0])                      # and it is complete
    _wait_idle(backend.client)
    before = len(log.read_text().splitlines())
    counts = cells_mod.run_cells(fx, "tiny", results, backend=backend, progress=False)
    assert counts == {"total": 6, "computed": 5, "cached": 1, "damaged": 0}
    missing = [f"{p['alpha']},{p['seed_block']}" for p in fx.cells("tiny")
               if cells_mod.cell_path(results, fx.NAME, "tiny", p) != files[0]]
    assert sorted(log.read_text().splitlines()[before:]) == sorted(missing)
    cells_mod.run_cells(fx, "tiny", tmp_path / "clean", workers=1, progress=False)
    _tables_equal(fx, results, tmp_path / "clean")


@needs_dask
def test_a_worker_exception_reaches_the_client_with_its_message(cluster, fx):
    backend, _ = cluster
    with pytest.raises(ValueError, match=r"alpha must be finite and >= 0, got -1"):
        list(backend.run(fx.__name__, [{"alpha": -1, "seed_block": 0}]))
    backend.abort()


@needs_dask
def test_a_worker_running_other_code_refuses_the_cell(cluster, fx):
    backend, _ = cluster
    fut = backend.client.submit(compute_checked, fx.__name__, fx.cells("tiny")[0], "0" * 16, pure=False)
    with pytest.raises(ValueError, match="install the same mamlcheck on every worker"):
        fut.result()


@needs_dask
@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "no-port"])
def test_an_unreachable_or_malformed_cluster_address_exits_2_with_one_line(address, tmp_path, capfd):
    t0 = time.monotonic()
    code = cli.main(["run-all", "--scale", "quick", "--cluster", address,
                     "--results", str(tmp_path / "r"), "--figures", str(tmp_path / "f")])
    elapsed = time.monotonic() - t0
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--cluster" in err[0], err
    assert elapsed < CONNECT_TIMEOUT + 3
    assert not (tmp_path / "r" / "cells").exists()     # no work was done


def test_without_dask_the_cluster_option_says_how_to_install_it(monkeypatch, tmp_path, capfd):
    monkeypatch.setitem(sys.modules, "distributed", None)      # `import distributed` fails
    code = cli.main(["run-all", "--scale", "quick", "--cluster", "local",
                     "--results", str(tmp_path / "r"), "--figures", str(tmp_path / "f")])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"mamlcheck run-all: error: {MISSING}"]
