"""Sweeps you can trust: complete-or-absent cells, interrupts, keys, locks, outputs.

Bugs these tests are for: an interrupted run-all saving part-finished cells
as complete (the rerun then reports "cached" and a wrong table); workers that
outlive an interrupted parent; a cache that survives a change of the code
that computed it; two run-alls on one folder; a damaged cell used silently;
partial runs overwriting the committed figures.
"""
import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mamlcheck.experiments import cells as cells_mod
from mamlcheck.experiments.cli import main
from tests import sweep_fixture as fx

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--scale", "tiny", "--only", "rate_hard_chain"]


def _cli(*argv, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "mamlcheck", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _tables(results: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_csv(p) for p in sorted(results.glob("*.csv"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the small sweep: the tables every other run must reproduce."""
    base = tmp_path_factory.mktemp("reference")
    assert main(["run-all", *SMALL, "--results", str(base / "r"), "--figures", str(base / "f")]) == 0
    return _tables(base / "r")


@pytest.mark.parametrize("sig, status, extra_delay", [(signal.SIGINT, 130, 0.05), (signal.SIGTERM, 143, 0.3)])
def test_an_interrupted_run_all_saves_nothing_wrong_and_leaves_no_process(tmp_path, reference, sig, status,
                                                                           extra_delay):
    """Interrupt once the first cell is written (plus a fixed extra delay, so the
    signal lands while other cells are running), rerun to completion: the tables
    equal the uninterrupted run's, the cells complete at the interrupt are not
    recomputed, and no process of the run is alive 3 s after the signal."""
    results, figures = tmp_path / "r", tmp_path / "f"
    proc = _cli("run-all", *SMALL, "--results", str(results), "--figures", str(figures))
    cell_dir = results / "cells" / "rate_hard_chain"
    deadline = time.monotonic() + 60
    while not any(cell_dir.glob("*.csv")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(extra_delay)
    family = _descendants(proc.pid)
    proc.send_signal(sig)
    t_signal = time.monotonic()
    _, err = proc.communicate(timeout=10)
    if proc.returncode == 0:
        pytest.skip("the sweep finished before the signal arrived (machine too fast for this timing)")
    assert proc.returncode == status, err
    assert time.monotonic() - t_signal < 3.0
    time.sleep(max(0.0, 3.0 - (time.monotonic() - t_signal)))
    assert not [p for p in family if _alive(p)], "processes of the interrupted run are still alive"
    assert not (figures / "REPORT.md").exists()
    done = {p: p.stat().st_ino for p in cell_dir.glob("*.csv")}
    for p in done:
        cells_mod.read_cell(p)                              # every file present is a complete cell
    assert main(["run-all", *SMALL, "--results", str(results), "--figures", str(figures)]) == 0
    assert {p: p.stat().st_ino for p in done} == done       # nothing complete was recomputed
    again = _tables(results)
    assert again.keys() == reference.keys()
    for name in reference:
        pd.testing.assert_frame_equal(again[name], reference[name], check_exact=True)


def test_a_second_run_all_on_the_same_folder_is_refused_with_one_line(tmp_path, capsys):
    with cells_mod.results_lock(tmp_path / "r"):
        assert main(["run-all", *SMALL, "--results", str(tmp_path / "r"), "--figures", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--results" in err and "in use" in err
    assert not (tmp_path / "r" / "cells").exists()


def test_two_concurrent_run_alls_compute_each_cell_once_or_refuse(tmp_path, reference):
    a = _cli("run-all", *SMALL, "--results", str(tmp_path / "r"), "--figures", str(tmp_path / "fa"))
    b = _cli("run-all", *SMALL, "--results", str(tmp_path / "r"), "--figures", str(tmp_path / "fb"))
    (_, err_a), (_, err_b) = a.communicate(timeout=60), b.communicate(timeout=60)
    codes = sorted([a.returncode, b.returncode])
    assert codes in ([0, 0], [0, 2]), (err_a, err_b)
    tables = _tables(tmp_path / "r")
    for name in reference:
        pd.testing.assert_frame_equal(tables[name], reference[name], check_exact=True)


# --- the cell file: complete or absent -----------------------------------------------------
def test_a_cell_round_trips_and_any_damage_is_named(tmp_path):
    df = pd.DataFrame({"k": [1, 2, 3], "x": [0.1, np.pi, -1e-300], "s": ["a", "b,c", ""]})
    path = tmp_path / "c.csv"
    cells_mod.write_cell(df, path)
    pd.testing.assert_frame_equal(cells_mod.read_cell(path), pd.read_csv(io.StringIO(df.to_csv(index=False))),
                                  check_exact=True)
    data = path.read_bytes()
    for damaged, reason in ((data[:len(data) // 2], "no completeness line"),        # truncated
                            (data.replace(b"0.1", b"0.2"), "checksum"),              # edited
                            (b"k,x\n1,2\n", "no completeness line"),                # foreign
                            (b"", "no completeness line")):                         # empty
        path.write_bytes(damaged)
        with pytest.raises(cells_mod.DamagedCell, match=reason) as e:
            cells_mod.read_cell(path)
        assert str(path) in str(e.value)


def test_a_damaged_cell_is_named_and_recomputed(tmp_path, capsys):
    cells_mod.run_cells(fx, "tiny", tmp_path, workers=1, progress=False)
    victim = sorted((tmp_path / "cells" / fx.NAME).glob("*.csv"))[0]
    victim.write_bytes(victim.read_bytes()[:40])
    counts = cells_mod.run_cells(fx, "tiny", tmp_path, workers=1, progress=False)
    assert counts["computed"] == 1 and counts["damaged"] == 1
    assert str(victim) in capsys.readouterr().err
    cells_mod.read_cell(victim)


def test_an_interrupt_inside_a_cell_never_writes_it(tmp_path, monkeypatch):
    """In this process (``--workers 1``) the runner must not hand a partial run to
    the cell: Ctrl-C inside ``run`` propagates."""
    from mamlcheck.algorithms import engine
    real = engine.outer_step
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(engine, "outer_step", flaky)
    with pytest.raises(KeyboardInterrupt):
        cells_mod.run_cells(fx, "tiny", tmp_path, workers=1, progress=False)
    written = list((tmp_path / "cells" / fx.NAME).glob("*.csv"))
    assert len(written) == 1                                 # the first cell (30 steps) completed, no other
    cells_mod.read_cell(written[0])


# --- keys -------------------------------------------------------------------------------
def test_the_source_hash_sees_a_change_anywhere_in_the_package(tmp_path):
    copy = tmp_path / "pkg"
    for folder in ("problems", "theory"):
        (copy / folder).mkdir(parents=True)
        for f in (ROOT / folder).glob("*.py"):
            (copy / folder / f.name).write_bytes(f.read_bytes())
    before = cells_mod.hash_folders([copy / "problems", copy / "theory"])
    assert cells_mod.hash_folders([copy / "problems", copy / "theory"]) == before
    target = copy / "theory" / "rate.py"
    target.write_text(target.read_text().replace("1600", "1601", 1))
    assert cells_mod.hash_folders([copy / "problems", copy / "theory"]) != before


def test_a_code_change_recomputes_the_cells_and_no_change_recomputes_nothing(tmp_path, monkeypatch):
    first = cells_mod.run_cells(fx, "tiny", tmp_path, workers=1, progress=False)
    assert first["computed"] == first["total"] == 6
    assert cells_mod.run_cells(fx, "tiny", tmp_path, workers=1, progress=False)["computed"] == 0
    monkeypatch.setattr(cells_mod, "source_hash", lambda: "another-version")
    assert cells_mod.run_cells(fx, "tiny", tmp_path, workers=1, progress=False)["computed"] == 6


# --- outputs in their place and inputs checked before work ------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["--scale", "default"], "figures"),
    (["--scale", "quick"], "R/report-quick"),
    (["--scale", "default", "--only", "bias_din"], "R/report-default-only"),
    (["--scale", "quick", "--figures", "mine"], "mine"),
])
def test_only_a_complete_default_run_writes_the_committed_figures(argv, expected, tmp_path, monkeypatch):
    from argparse import Namespace
    from mamlcheck.experiments.run_all import _check_args
    monkeypatch.chdir(tmp_path)
    args = dict(scale="default", results="R", figures=None, force=False, workers=1, only=None, cluster=None)
    it = iter(argv)
    for flag in it:
        key = flag.lstrip("-")
        args[key] = [next(it)] if key == "only" else next(it)
    _, _, figures = _check_args(Namespace(**args))
    assert figures == Path(expected)


@pytest.mark.parametrize("argv, flag", [
    (["--workers", "0"], "--workers"), (["--workers", "-3"], "--workers"), (["--workers", "100000"], "--workers"),
    (["--only", "bias_din", "bias_din"], "--only"), (["--only", "nonsense"], "nonsense"),
    (["--figures", "/proc/forbidden"], "--figures"),
])
def test_bad_run_all_input_exits_2_with_one_line_before_any_work(argv, flag, tmp_path, capsys):
    assert main(["run-all", "--scale", "tiny", "--results", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and flag in err
    assert not (tmp_path / "r" / "cells").exists()


def test_plot_redraws_the_proof_and_slack_figures_and_refuses_a_malformed_table(tmp_path, capsys):
    (tmp_path / "slack.csv").write_text("a,b\n1,2\n")
    assert main(["plot", "slack", "--results", str(tmp_path), "--figures", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "slack.csv" in err
    (tmp_path / "slack.csv").write_text("")
    assert main(["plot", "slack", "--results", str(tmp_path), "--figures", str(tmp_path)]) == 2


def test_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL leaves no cleanup to the parent: the workers must go by themselves
    (``PR_SET_PDEATHSIG``) instead of waiting forever for work."""
    results = tmp_path / "r"
    proc = _cli("run-all", *SMALL, "--results", str(results), "--figures", str(tmp_path / "f"))
    deadline = time.monotonic() + 60
    family: set[int] = set()
    while len(family) < 2 and proc.poll() is None and time.monotonic() < deadline:
        family = _descendants(proc.pid)
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.skip("the sweep finished before its workers were seen")
    proc.kill()
    proc.communicate(timeout=10)
    time.sleep(3.0)
    assert not [p for p in family if _alive(p)], "workers outlived their killed parent"
