"""Run the hand-written mutants of ``mutation/hand/`` against the test suite.

Each mutant is a unified diff ``mutation/hand/NN-name.patch`` (listed, with the
bug and the result it changes, in ``mutation/hand/MANIFEST.toml``).  For each:

1. copy the repository (without ``.venv``, ``results``, ``.git``, ``mutation``,
   ``__pycache__`` and other caches) into a temporary folder;
2. apply the patch there (``patch -p1``); a patch that does not apply is an
   ``error`` (to be fixed, never counted);
3. run the command of ``make test`` plus ``-x`` in the copy's root,
   ``HYPOTHESIS_PROFILE=ci python -m pytest -q -p no:cacheprovider -x``, with
   ``PYTHONPATH`` set to the copy, so that ``import mamlcheck`` (and, through
   ``mamlcheck/__init__.py``, which appends a checkout's root to its
   ``__path__``, ``mamlcheck.problems`` etc.) resolves to the copy and not to
   the editable install of ``/work/main`` (whose finder comes after the
   standard path finder in ``sys.meta_path``);
4. record ``caught`` (pytest exit 1), ``survived`` (exit 0), ``timeout`` or
   ``error`` (anything else), the first failing test and the wall time.

The repository is copied once, at the start, into a base snapshot that every
mutant's copy is made from (the working tree may change while the run goes
on; all mutants of one run see the same code).  ``--check`` verifies on that
snapshot that the copy's code is the one imported (inside a pytest run too)
and that the unmutated suite passes.

Results accumulate in ``mutation/hand/results.json`` (one entry per mutant,
the latest run wins) and are written to ``mutation/hand_results.md``.

Usage (from the repository root, with the project's virtualenv)::

    nice -n 19 .venv/bin/python mutation/hand.py            # every mutant, one at a time
    nice -n 19 .venv/bin/python mutation/hand.py --only 07 --only 12
    nice -n 19 .venv/bin/python mutation/hand.py --jobs 2
    nice -n 19 .venv/bin/python mutation/hand.py --check     # import check + unmutated baseline
    nice -n 19 .venv/bin/python mutation/hand.py --baseline  # the same, then every mutant, on one snapshot
    .venv/bin/python mutation/hand.py --report               # rewrite hand_results.md only
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAND = ROOT / "mutation" / "hand"
MANIFEST = HAND / "MANIFEST.toml"
RESULTS_JSON = HAND / "results.json"
REPORT = ROOT / "mutation" / "hand_results.md"

#: left out of every copy
IGNORE = shutil.ignore_patterns(".venv", "results", ".git", "mutation", "__pycache__", ".hypothesis",
                                ".pytest_cache", "*.egg-info", ".mutmut-cache", "mutants")
#: the command of ``make test``, stopping at the first failure
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
#: deselected in every run (also in the baseline): the copy is not a git checkout, and this
#: test checks that the documents link only to committed files (as mutmut's run deselects it)
DESELECT = ["tests/test_readme.py::test_every_link_of_the_documents_resolves_to_a_committed_file",
            # a wall-clock test (Ctrl-C answered within seconds): on a machine busy with two
            # mutant runs it fails whatever the mutant, which would count a survivor as caught
            "tests/test_cli_inputs.py::test_an_interrupted_bench_exits_130_promptly_without_a_row_for_the_cut_short_configuration"]
PY = sys.executable


def use_set(name: str) -> None:
    """Point the harness at the mutant set ``mutation/<name>/`` and its report ``mutation/<name>_results.md``."""
    global HAND, MANIFEST, RESULTS_JSON, REPORT
    HAND = ROOT / "mutation" / name
    MANIFEST = HAND / "MANIFEST.toml"
    RESULTS_JSON = HAND / "results.json"
    REPORT = ROOT / "mutation" / f"{name}_results.md"


def manifest() -> dict[str, dict]:
    data = tomllib.loads(MANIFEST.read_text())["mutant"]
    return {nn: {"nn": nn, **m} for nn, m in sorted(data.items())}


def snapshot(dest: Path) -> Path:
    """Copy the repository (minus IGNORE) to ``dest``."""
    shutil.copytree(ROOT, dest, ignore=IGNORE, symlinks=True)
    return dest


def describe_base() -> str:
    """The commit and the state of the working tree the snapshot was taken from."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--short", "--untracked-files=no")
    return f"commit {head}" + (f" with uncommitted changes to {len(dirty.splitlines())} tracked files" if dirty else "")


def make_copy(base: Path, workdir: Path, prefix: str) -> tuple[Path, Path]:
    """``(top, copy)``: a fresh copy of ``base`` in ``top/repo`` and, in ``top/path``, a
    symlink ``mamlcheck -> top/repo/mamlcheck``, the one entry ``PYTHONPATH`` gets.

    Only the package is put on the path, not the copy's root (which would make
    its top-level folders importable under their bare names, ``import problems``,
    in every subprocess too).  ``mamlcheck/__init__.py`` resolves the symlink and
    appends the copy's root to the package's ``__path__``, so that
    ``mamlcheck.problems`` etc. are the copy's ``problems/`` etc."""
    top = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))
    copy = top / "repo"
    shutil.copytree(base, copy, symlinks=True)
    (top / "path").mkdir()
    (top / "path" / "mamlcheck").symlink_to(copy / "mamlcheck", target_is_directory=True)
    return top, copy


def env_for(copy: Path) -> dict:
    env = dict(os.environ)
    pp = str(copy.parent / "path")
    env["PYTHONPATH"] = pp + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["HYPOTHESIS_PROFILE"] = "ci"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("COVERAGE_PROCESS_START", None)
    return env


def pytest_cmd(extra: list[str] = ()) -> list[str]:
    return [PY, *PYTEST, *[x for d in DESELECT for x in ("--deselect", d)], *extra]


_FIRST = re.compile(r"^(FAILED|ERROR) (\S+)", re.M)


def first_failure(out: str) -> str:
    m = _FIRST.search(out)
    if m:
        return m.group(2) + (" (error)" if m.group(1) == "ERROR" else "")
    return ""


def run_one(m: dict, base: Path, timeout: float, workdir: Path) -> dict:
    """Copy ``base``, apply ``m``'s patch, run the suite; a result record."""
    t0 = time.monotonic()
    rec = {"nn": m["nn"], "patch": m["patch"], "file": m["file"]}
    top, copy = make_copy(base, workdir, f"hand-{m['nn']}-")
    try:
        p = subprocess.run(["patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch", "-i",
                            str(HAND / m["patch"])], cwd=copy, capture_output=True, text=True)
        if p.returncode != 0:
            return {**rec, "outcome": "error", "detail": "patch does not apply: " + (p.stdout + p.stderr).strip(),
                    "first_failure": "", "seconds": round(time.monotonic() - t0, 1), "exit": None}
        try:
            r = subprocess.run(pytest_cmd(), cwd=copy, env=env_for(copy), capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            return {**rec, "outcome": "timeout", "detail": f"suite still running after {timeout:.0f} s",
                    "first_failure": first_failure(out), "seconds": round(time.monotonic() - t0, 1), "exit": None}
        out = r.stdout + r.stderr
        outcome = {0: "survived", 1: "caught"}.get(r.returncode, "error")
        tail = "\n".join(out.strip().splitlines()[-3:])
        return {**rec, "outcome": outcome, "exit": r.returncode, "first_failure": first_failure(out),
                "detail": tail, "seconds": round(time.monotonic() - t0, 1)}
    finally:
        shutil.rmtree(top, ignore_errors=True)


# --- the import check and the baseline -------------------------------------------------
_PROBE_TEST = '''
import mamlcheck, mamlcheck.problems, mamlcheck.algorithms.steps, mamlcheck.theory.bounds

def test_hand_probe_imports_the_copy():
    print("HANDPROBE", mamlcheck.__file__, mamlcheck.problems.__file__,
          mamlcheck.algorithms.steps.__file__, mamlcheck.theory.bounds.__file__)
'''


def check(base: Path, workdir: Path, timeout: float) -> bool:
    """The copy's modules are imported (plain and under pytest), and the unmutated suite passes."""
    top, copy = make_copy(base, workdir, "hand-check-")
    ok = True
    try:
        env = env_for(copy)
        r = subprocess.run([PY, "-c", "import mamlcheck, mamlcheck.problems, mamlcheck.experiments.cells as c; "
                                      "print(mamlcheck.__file__); print(mamlcheck.problems.__file__); "
                                      "print(c.__file__); print(c.source_hash())"],
                           cwd=copy, env=env, capture_output=True, text=True)
        print("plain import from the copy:\n  " + "\n  ".join((r.stdout + r.stderr).strip().splitlines()))
        ok &= r.returncode == 0 and all(str(Path(line).resolve()).startswith(str(copy))
                                        for line in r.stdout.splitlines()[:3])
        r = subprocess.run([PY, "-c", "import problems"], cwd=copy.parent, env=env, capture_output=True, text=True)
        print(f"bare 'import problems' outside the copy's root: {'refused' if r.returncode else 'WORKS (bad)'}")
        ok &= r.returncode != 0
        probe = copy / "tests" / "test_zz_hand_probe.py"
        probe.write_text(_PROBE_TEST)
        r = subprocess.run([PY, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(probe)], cwd=copy, env=env,
                           capture_output=True, text=True)
        line = next((x for x in r.stdout.splitlines() if "HANDPROBE" in x), "(no probe output)")
        print("under pytest (tests/conftest.py loaded):\n  " + line)
        ok &= all(str(Path(f).resolve()).startswith(str(copy)) for f in line.split()[1:]) and len(line.split()) == 5
        probe.unlink()
        t0 = time.monotonic()
        r = subprocess.run(pytest_cmd(), cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
        print(f"unmutated suite in the copy: exit {r.returncode} in {time.monotonic() - t0:.0f} s\n  "
              + "\n  ".join((r.stdout + r.stderr).strip().splitlines()[-4:]))
        ok &= r.returncode == 0
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print("check:", "OK" if ok else "FAILED")
    return ok


# --- results -------------------------------------------------------------------------
def load_results() -> dict:
    return json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {"mutants": {}, "runs": []}


def save_results(res: dict) -> None:
    RESULTS_JSON.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def write_report(res: dict) -> None:
    mans = manifest()
    rows = []
    counts = {}
    for nn, m in mans.items():
        r = res["mutants"].get(nn)
        outcome = r["outcome"] if r else "not run"
        counts[outcome] = counts.get(outcome, 0) + 1
        mark = {"caught": "caught", "survived": "**survived**"}.get(outcome, outcome)
        ff = f"`{r['first_failure']}`" if r and r.get("first_failure") else "—"
        secs = f"{r['seconds']:.0f}" if r else ""
        rows.append(f"| {nn} | `{m['file']}` | {_cell(m['bug'])} | {_cell(m['result'])} | {mark} | {ff} | {secs} |")
    caught, total = counts.get("caught", 0), len(mans)
    counted = total - counts.get("error", 0) - counts.get("not run", 0)
    runs = res.get("runs", [])
    lines = [
        "# Hand-written mutants: does the test suite catch bugs that change a result?",
        "",
        f"**Score: {caught}/{total} caught** "
        + (f"({counts.get('survived', 0)} survived" + (f", {counts['timeout']} timed out" if counts.get("timeout") else "")
           + (f", {counts['error']} errors" if counts.get("error") else "")
           + (f", {counts['not run']} not run" if counts.get("not run") else "") + ")."),
        "",
        "Thirty bugs written by hand from the source alone (not from the tests), each a plausible slip "
        "that changes a number, a verdict or a cached result; the patches and their manifest are in "
        f"[`mutation/{HAND.name}/`]({HAND.name}/) (`MANIFEST.toml`), the harness is [`mutation/hand.py`](hand.py).",
        "",
        "Method: each patch is applied to a fresh copy of the repository (without `.venv`, `results/`, `.git`, "
        "`mutation/`, caches), and `make test`'s command plus `-x`, "
        "`HYPOTHESIS_PROFILE=ci python -m pytest -q -p no:cacheprovider -x`, runs in the copy's root with `PYTHONPATH` "
        "holding only a symlink `mamlcheck` to the copy's package (checked: `mamlcheck`, `mamlcheck.problems`, … are imported from the copy, also under pytest, and the bare folder names are not importable). "
        "`caught` = pytest exit 1, `survived` = exit 0. Deselected everywhere (the copy is not a git checkout): "
        + ", ".join(f"`{d}`" for d in DESELECT) + ".",
        "",
    ]
    if runs:
        lines += ["Runs (the latest result of each mutant is shown):", ""]
        lines += [f"* {r.get('date', '')}, base {r.get('base', '')} ({r.get('baseline', 'baseline not recorded')}): "
                  f"mutants {', '.join(r.get('mutants', []))}" for r in runs]
        lines += [""]
    if res.get("baseline"):
        lines += [f"Unmutated copy (`--check`): {res['baseline']}.", ""]
    lines += ["| NN | file | bug | result it changes | caught? | first failing test | s |",
              "|---|---|---|---|---|---|---|", *rows, ""]
    surv = [nn for nn in mans if res["mutants"].get(nn, {}).get("outcome") == "survived"]
    if surv:
        lines += ["Survivors: " + ", ".join(surv) + ".", ""]
    notes = HAND / "SURVIVORS.md"              # written after the run, with the tests read
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    REPORT.write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], metavar="NN", help="run only mutant NN (repeatable)")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at the same time (default 1)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before a mutant's suite counts as timeout")
    ap.add_argument("--check", action="store_true", help="only check the import of the copy and the unmutated suite")
    ap.add_argument("--baseline", action="store_true",
                    help="before the mutants, run --check's checks on the same snapshot; stop if they fail")
    ap.add_argument("--report", action="store_true", help="only rewrite mutation/hand_results.md")
    ap.add_argument("--workdir", default=None, help="where the copies go (default: the system temp folder)")
    ap.add_argument("--set", default="hand", metavar="NAME",
                    help="the mutant set: patches in mutation/NAME/, report mutation/NAME_results.md (default: hand)")
    args = ap.parse_args(argv)
    if args.set != "hand":
        use_set(args.set)
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    mans = manifest()
    unknown = [n for n in args.only if n not in mans]
    if unknown:
        ap.error(f"unknown mutants {unknown}; known: {', '.join(mans)}")
    res = load_results()
    if args.report:
        write_report(res)
        return 0
    workdir = Path(args.workdir or tempfile.gettempdir())
    tmp = Path(tempfile.mkdtemp(prefix="hand-base-", dir=workdir))
    try:
        base = snapshot(tmp / "repo")
        base_desc = describe_base()
        print(f"base snapshot of {ROOT} ({base_desc}) in {base}", flush=True)
        if args.check or args.baseline:
            t0 = time.monotonic()
            ok = check(base, workdir, args.timeout)
            res["baseline"] = (f"{'passes' if ok else 'FAILS'} ({time.monotonic() - t0:.0f} s with the import checks, "
                               f"{_dt.datetime.now().isoformat(timespec='seconds')}, base {base_desc})")
            save_results(res)
            write_report(res)
            if args.check or not ok:
                return 0 if ok else 1
        todo = [mans[n] for n in (args.only or mans)]
        run = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "base": base_desc,
               "mutants": [m["nn"] for m in todo], "jobs": args.jobs,
               "baseline": "unmutated suite passes on this snapshot" if args.baseline else "not checked on this snapshot"}

        def one(m):
            rec = run_one(m, base, args.timeout, workdir)
            print(f"{rec['nn']} {rec['outcome']:8s} {rec['seconds']:7.1f}s  {rec['first_failure'] or rec.get('detail', '')[:200]}",
                  flush=True)
            return rec

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for rec in pool.map(one, todo):
                rec["date"] = run["date"]
                res["mutants"][rec["nn"]] = rec
                save_results(res)
        res["runs"].append(run)
        save_results(res)
        write_report(res)
        errors = [r["nn"] for r in res["mutants"].values() if r["outcome"] == "error"]
        if errors:
            print("errors (fix these mutants):", ", ".join(errors))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
