"""The command line (clear errors, status 2) and the resumable cell sweeps."""
import importlib

import pandas as pd
import pytest

from mamlcheck.experiments import cells as cells_mod
from mamlcheck.experiments.cli import main


def test_help_lists_commands_and_run_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "run" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--alpha" in out and "--gamma" in out and "default" in out


@pytest.mark.parametrize("argv, needle", [
    (["run", "--family", "nope"], "unknown family"),
    (["run", "--alpha", "-0.1"], "alpha"),
    (["run", "--seeds", "0"], "--seeds"),
    (["run", "--algorithm", "sgd"], "algorithm"),
    (["run", "--gamma", "-1"], "gamma"),
    (["run", "--alpha", "1e5"], "exceeds"),
    (["run", "--eps", "-1"], "--eps"),
    (["run", "--w0", "nan"], "--w0"),
    (["run", "--trace-out", "t.csv"], "--trace-stride"),
    (["run", "--out", "/nonexistent/dir/x.csv"], "cannot write"),
])
def test_bad_input_exits_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["run", "--seeds", "many"], ["run", "--dense", "maybe"]])
def test_unparsable_option_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_run_prints_conditions_and_summary_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert main(["run", "--seeds", "3", "--budget", "50", "--eps", "1.0", "0.5", "--B", "5",
                 "--d", "3", "--M", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "MAML theorem" in text and "outside the theorem: B_min" in text and "median_k" in text
    df = pd.read_csv(out)
    assert len(df) == 3 * 2 and {"seed", "eps", "first_k", "diverged"} <= set(df.columns)


def _fixture(monkeypatch, log):
    monkeypatch.setenv("SWEEP_FIXTURE_LOG", str(log))
    import tests.sweep_fixture as fx
    return importlib.reload(fx)


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_sweep_resumes_without_recomputing(tmp_path, monkeypatch, workers):
    """Interrupt after 2 cells, rerun: every cell is computed exactly once, and
    the table equals that of an uninterrupted sweep."""
    log = tmp_path / "log.txt"
    fx = _fixture(monkeypatch, log)
    done = []

    def interrupt(params):
        done.append(params)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cells_mod.run_cells(fx, "tiny", tmp_path / "a", workers=workers, progress=False, on_done=interrupt)
    counts = cells_mod.run_cells(fx, "tiny", tmp_path / "a", workers=workers, progress=False)
    assert counts["cached"] >= 2 and counts["computed"] + counts["cached"] == 6
    lines = log.read_text().splitlines()
    if workers == 1:                       # a pool may finish a cell it had already started
        assert len(lines) == len(set(lines)) == 6
    assert set(lines) == {f"{a},{s}" for a in (0.01, 0.02, 0.03) for s in (0, 1)}
    again = cells_mod.run_cells(fx, "tiny", tmp_path / "a", workers=workers, progress=False)
    assert again["computed"] == 0          # nothing changed: nothing recomputed
    fresh = cells_mod.run_cells(fx, "tiny", tmp_path / "b", workers=1, progress=False)
    assert fresh["computed"] == 6
    pd.testing.assert_frame_equal(cells_mod.collect(fx, "tiny", tmp_path / "a"),
                                  cells_mod.collect(fx, "tiny", tmp_path / "b"))


def test_force_recomputes(tmp_path, monkeypatch):
    fx = _fixture(monkeypatch, tmp_path / "log.txt")
    cells_mod.run_cells(fx, "tiny", tmp_path, workers=1, progress=False)
    assert cells_mod.run_cells(fx, "tiny", tmp_path, workers=1, progress=False, force=True)["computed"] == 6


def test_unknown_scale_is_rejected(tmp_path):
    import tests.sweep_fixture as fx
    with pytest.raises(ValueError, match="scale"):
        cells_mod.run_cells(fx, "huge", tmp_path)


