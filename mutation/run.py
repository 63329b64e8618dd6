"""`make mutate`: stage the package (stage.py), run mutmut over the selected
modules, write mutation/results.md and results.json (report.py).

    python mutation/run.py                            # DEFAULT below, at most 55 min
    python mutation/run.py --all                      # every module of [tool.mutmut] only_mutate
    python mutation/run.py theory/rate.py --minutes 5 # chosen files (repository paths)
    python mutation/run.py --recheck                  # the last run's survivors, against the
                                                      # current tests (the sources must not have changed)
    python mutation/run.py --add engine.py ...        # chosen files; results.md keeps the last
                                                      # report's other files, each with its own run

mutmut runs, for each mutant, only the tests whose run reached the mutated
function (recorded once in a first, instrumented run of the suite), the
fastest mutants first, stops at the first failing test (-x) and gives up on a
mutant after (its tests' clean time + 5 s) x 3. At the time cap the run is
interrupted: what was not reached is reported as *not checked*.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report  # noqa: E402
import stage  # noqa: E402

# The theory, the literature's constants, the steps, the runner's bookkeeping
# and one family's constants and oracles (robust-regression, whose constants
# are derived formulas): what fits in about an hour on 2 cores. --all adds the
# other families and the fast samplers (several hours).
DEFAULT = ["mamlcheck/literature.py", "theory/lemmas.py", "theory/rate.py", "theory/floors.py",
           "theory/conditions.py", "theory/checks.py", "algorithms/steps.py", "algorithms/runner.py",
           "algorithms/engine.py", "problems/robust_regression.py"]


def parse(argv: list[str]) -> tuple[list[str] | None, float]:
    files, minutes = [], 55.0
    args = iter(argv)
    for a in args:
        if a == "--minutes":
            minutes = float(next(args))
        elif a == "--all":
            files = None
        elif files is not None:
            files.append(a)
    return (DEFAULT if files == [] else files), minutes


def stop(proc: subprocess.Popen, grace: float = 30.0) -> int:
    """Stop mutmut at the cap: Ctrl-C first (it saves each result as it goes), then,
    if it is still running after ``grace`` seconds (mutmut 3.8 keeps forking
    mutants after SIGINT, and a mutant's test may hold child processes), the
    whole process group.  A mutant cut off here has no result: *not checked*."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def survivors() -> list[str]:
    """The surviving mutants of the run staged in ``stage.WORK`` (``mutmut results``)."""
    out = subprocess.run([str(Path(sys.executable).with_name("mutmut")), "results"], cwd=stage.WORK,
                         capture_output=True, text=True, check=True).stdout
    return [line.split(":")[0].strip() for line in out.splitlines() if line.strip().endswith(": survived")]


def main(argv: list[str]) -> int:
    recheck, add = "--recheck" in argv, "--add" in argv
    files, minutes = parse([a for a in argv if a not in ("--recheck", "--add")])
    if recheck:
        # copy the current tests over the staged run (fresh=False keeps mutmut's results) and
        # run only its survivors again: tests written since then get their chance to kill them
        previous = json.loads((stage.WORK / "run.json").read_text())
        files = previous["files"] if isinstance(previous["files"], list) else None
        stage.build(files, fresh=False)
        names = survivors()
        print(f"rechecking {len(names)} survivors")
    else:
        carried = report.carry(files) if add else None      # read before the stage is rebuilt
        stage.build(files)
        if carried:
            (stage.WORK / "carried.json").write_text(json.dumps(carried, indent=1))
        names = []
    work = stage.WORK
    cmd = [str(Path(sys.executable).with_name("mutmut")), "run", "--max-children", str(os.cpu_count() or 1), *names]
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=work, env={**os.environ, "HYPOTHESIS_PROFILE": "ci"},
                            start_new_session=True)     # its own process group: the cap reaches every child
    try:
        rc = proc.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        rc = stop(proc)
        print(f"stopped at the {minutes:g} min cap")
    seconds = time.time() - t0
    command = " ".join(["make mutate", *([f'MUTATE="{" ".join(argv)}"'] if argv else [])])
    if recheck:                      # one record: the run, then the recheck of its survivors
        command = f"{previous['command']}, then {command} ({len(names)} survivors)"
        seconds += previous["seconds"]
    (work / "run.json").write_text(json.dumps({
        "command": command,
        "files": files or "all of [tool.mutmut] only_mutate", "minutes_cap": minutes,
        "seconds": round(seconds), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "mutmut": version("mutmut"), "exit_code": rc}, indent=1))
    report.main()
    print(f"mutmut exit {rc}, {seconds / 60:.1f} min; see {HERE / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
