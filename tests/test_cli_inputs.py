"""Bad input is refused before any work; interrupted work is never saved as finished.

In-process (``main([...])``) where no signal is involved; a subprocess where
Ctrl-C is sent.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from mamlcheck.experiments import bench as bench_mod
from mamlcheck.experiments import run_cmd
from mamlcheck.experiments.cli import build_parser, main
from mamlcheck.experiments.inputs import partial_path, write_csv


@pytest.fixture
def no_work(monkeypatch):
    """Any run or measurement fails the test: the refusal must come first."""
    def started(*a, **k):
        raise AssertionError("work started before the input was refused")
    monkeypatch.setattr(run_cmd, "run", started)
    monkeypatch.setattr(bench_mod, "measure", started)


def _refused(argv, capsys, tmp_path):
    """Run ``argv``; assert status 2 within a second, nothing on stdout,
    nothing left in ``tmp_path``; return the one line on stderr."""
    build_parser()                       # the commands' modules imported: not timed
    t0 = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - t0 < 1.0
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []
    return err.strip()


@pytest.mark.parametrize("flag, value, accepted", [
    ("--seeds", "0", "an integer in [1, 100000]"),
    ("--seeds", "100001", "an integer in [1, 100000]"),
    ("--budget", "-1", "an integer in [0, 100000000]"),
    ("--budget", "100000001", "an integer in [0, 100000000]"),
    ("--B", "0", "an integer in [1, 10000000]"),
    ("--D-in", "10000001", "an integer in [1, 10000000]"),
    ("--D-o", "0", "an integer in [1, 10000000]"),
    ("--D-h", "-3", "an integer in [1, 10000000]"),
    ("--B-prime", "0", "an integer in [1, 10000000]"),
    ("--trace-stride", "-1", "an integer in [0, 100000000]"),
    ("--root", "-1", "an integer >= 0"),
    ("--eps", "0", "a finite number > 0"),
    ("--eps", "nan", "a finite number > 0"),
    ("--eps", "inf", "a finite number > 0"),
    ("--alpha", "-0.1", "a finite number >= 0"),
    ("--alpha", "inf", "a finite number >= 0"),
    ("--divergence-bound", "0", "a finite number > 0"),
])
def test_each_out_of_range_run_option_is_refused_in_one_line_naming_flag_and_range(
        flag, value, accepted, no_work, capsys, tmp_path):
    err = _refused(["run", flag, value, "--out", str(tmp_path / "o.csv")], capsys, tmp_path)
    assert err.startswith(f"mamlcheck run: error: {flag} must be {accepted}, got ")


@pytest.mark.parametrize("flag, value, accepted", [
    ("--repeats", "0", "an integer in [1, 100]"),
    ("--repeats", "101", "an integer in [1, 100]"),
    ("--budget", "0", "an integer in [1, 10000000]"),
    ("--budget", "10000001", "an integer in [1, 10000000]"),
])
def test_each_out_of_range_bench_option_is_refused_before_anything_is_measured(
        flag, value, accepted, no_work, capsys, tmp_path):
    err = _refused(["bench", flag, value], capsys, tmp_path)
    assert err == f"mamlcheck bench: error: {flag} must be {accepted}, got {value}"


def _read_only_target(tmp_path) -> str:
    """A file in a folder that refuses files: a chmod-ed folder, or (where
    chmod does not bind, as for root) a file under /proc."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return str(folder / "o.csv")
    folder.chmod(0o755)
    folder.rmdir()
    return "/proc/mamlcheck-cannot-be-here.csv"


@pytest.mark.parametrize("target", ["directory", "read-only folder", "/dev/full"])
@pytest.mark.parametrize("flag", ["--out", "--trace-out"])
def test_an_unwritable_output_path_is_refused_before_the_run_starts(target, flag, no_work, capsys, tmp_path):
    if target == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    path = {"directory": str(out_dir), "read-only folder": None, "/dev/full": "/dev/full"}[target]
    path = path or _read_only_target(out_dir)
    argv = ["run", flag, path] + (["--trace-stride", "5"] if flag == "--trace-out" else [])
    build_parser()
    t0 = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - t0 < 1.0
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert f"{flag} must name a writable file; cannot write" in err
    leftovers = [p for p in out_dir.rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_complete_run_replaces_its_output_whole_and_leaves_no_temporary_file(tmp_path, capsys):
    out = tmp_path / "o.csv"
    out.write_text("old\n")
    assert main(["run", "--seeds", "2", "--budget", "5", "--d", "3", "--M", "4", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 2 * 2
    assert sorted(os.listdir(tmp_path)) == ["o.csv"]


def test_a_write_cut_short_leaves_the_old_file_and_no_temporary_file(tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("old\n")

    class HalfTable:
        def to_csv(self, f, index=False):
            f.write("a,b\n1,")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_csv(HalfTable(), str(out))
    assert out.read_text() == "old\n" and os.listdir(tmp_path) == ["o.csv"]


def test_a_partial_table_is_named_partial_and_keeps_its_folder():
    assert partial_path("runs/o.csv") == "runs/o.partial.csv"
    assert partial_path("o") == "o.partial.csv"


def _cli(argv, cwd):
    """``python -m mamlcheck argv`` with Ctrl-C raising ``KeyboardInterrupt``
    as in a terminal (a test runner started in the background may ignore
    SIGINT, which a child would inherit)."""
    return subprocess.Popen(
        [sys.executable, "-m", "mamlcheck", *argv], cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _interrupt(proc, started, stream) -> tuple[str, str]:
    """Wait for the line containing ``started`` on ``stream``, give the work a
    second, send SIGINT, and return (stdout, stderr) once the process ended."""
    seen = ""
    while started not in seen:
        line = stream.readline()
        assert line, "the command ended before its work started"
        seen += line
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    return (seen + out, err) if stream is proc.stdout else (out, seen + err)


def test_an_interrupted_run_writes_only_a_clearly_named_partial_table_and_exits_130(tmp_path):
    proc = _cli(["run", "--seeds", "4", "--budget", "100000000", "--out", "o.csv", "--no-progress"], tmp_path)
    out, err = _interrupt(proc, "family", proc.stdout)
    assert proc.returncode == 130, err
    assert not (tmp_path / "o.csv").exists()
    partial = tmp_path / "o.partial.csv"
    first = partial.read_text().splitlines()[0]
    assert first.startswith("# PARTIAL: interrupted at k = ")
    assert len(pd.read_csv(partial, comment="#")) == 4 * 2
    assert "interrupted" in out and "o.partial.csv" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["o.partial.csv"]


def test_an_interrupted_bench_exits_130_promptly_without_a_row_for_the_cut_short_configuration(tmp_path):
    proc = _cli(["bench", "--only", "reference R=64", "--budget", "10000000", "--repeats", "1"], tmp_path)
    t0 = time.monotonic()
    out, err = _interrupt(proc, "measuring 1/1 'reference R=64'", proc.stderr)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 10
    assert "reference" not in out and "seed-it/s" not in out
    assert "interrupted while measuring 'reference R=64'" in err and "Traceback" not in err


def test_bench_reports_the_configurations_measured_in_full_and_not_the_interrupted_one(monkeypatch, capsys):
    def measure(c, repeats):
        if c.name == "cq fomaml R=64":
            raise KeyboardInterrupt
        return {"name": c.name, "seed_iterations_per_s": 1.0, "batching_speedup": None}

    monkeypatch.setattr(bench_mod, "measure", measure)
    assert main(["bench", "--json", "--only", "reference R=64", "cq fomaml R=64", "cq exact R=64",
                 "--no-progress"]) == 130
    out, err = capsys.readouterr()
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["reference R=64"]
    assert "interrupted while measuring 'cq fomaml R=64'" in err and "1 of 3" in err


def test_a_run_the_runner_returns_as_interrupted_is_no_measurement(monkeypatch):
    class Cut:
        interrupted, iterations = True, 3

    monkeypatch.setattr(bench_mod, "run", lambda *a, **k: Cut())
    config = bench_mod.configs(budget=5)[0]
    with pytest.raises(KeyboardInterrupt):
        bench_mod.measure(config, repeats=1)


def test_bench_names_each_configuration_on_stderr_one_line_each_when_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(bench_mod, "measure",
                        lambda c, repeats: {"name": c.name, "seed_iterations_per_s": 1.0, "batching_speedup": None})
    assert main(["bench", "--json", "--only", "reference R=64", "cq exact R=64"]) == 0
    err = capsys.readouterr().err.splitlines()
    steps = {c.name: c.budget for c in bench_mod.configs()}
    assert err == [f"bench: measuring 1/2 'reference R=64' ({steps['reference R=64']} steps, R = 64, 3 repeats)",
                   f"bench: measuring 2/2 'cq exact R=64' ({steps['cq exact R=64']} steps, R = 64, 3 repeats)"]


def test_bench_jax_without_jax_is_refused_in_one_line_naming_the_flag_and_the_install(
        monkeypatch, no_work, capsys, tmp_path):
    """jax missing (the import check says so): status 2 before any measurement or worker."""
    from mamlcheck.experiments import bench_jax

    def no_worker(*a, **k):
        raise AssertionError("the JAX worker was started")
    monkeypatch.setattr(bench_jax, "available", lambda: False)
    monkeypatch.setattr(bench_jax, "Yardstick", no_worker)
    err = _refused(["bench", "--jax", "--quick"], capsys, tmp_path)
    assert err == "mamlcheck bench: error: --jax needs jax (the bench extra): pip install -e '.[bench]'"
