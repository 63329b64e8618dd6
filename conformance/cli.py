"""``python -m mamlcheck conformance``: check the MAML implementations of the
installed libraries (``adapters``) and the deliberately broken ones
(``broken``) on every family, and write ``results/conformance.csv`` and the
table of ``docs/CONFORMANCE.md``.

Both files are written only once every check has run (each all or nothing,
through a temporary file), so an interrupted run leaves the previous ones.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile

import numpy as np
import pandas as pd

from mamlcheck.experiments.inputs import write_csv

from . import adapters, broken
from .checker import DIAGNOSIS_TOL, FAMILIES, TOL, check
from .frameworks import version

CSV = "results/conformance.csv"
MARKDOWN = "docs/CONFORMANCE.md"


def _steps(text: str) -> list[int]:
    try:
        steps = sorted({int(s) for s in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of integers in 1..10, "
                                         f"got {text!r}") from None
    if not steps or steps[0] < 1 or steps[-1] > 10:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of integers in 1..10, got {text!r}")
    return steps


def _count(name: str, hi: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = 0
        if not 1 <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer in 1..{hi}, got {text!r}")
        return v
    return parse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=_steps, default=[1, 3], help="inner-step counts N to check, e.g. 1,3")
    p.add_argument("--points", type=_count("--points", 20), default=2, help="initial parameters per family")
    p.add_argument("--draws", type=_count("--draws", 20), default=2, help="batch draws per task and point")
    p.add_argument("--seed", type=_count("--seed", 2 ** 31), default=1, help="seed of the points and batches")
    p.add_argument("--csv", default=CSV, help="where the full table goes")
    p.add_argument("--markdown", default=MARKDOWN, help="where the summary table goes ('' for none)")


def run_all(steps, points, draws, seed) -> tuple[pd.DataFrame, list]:
    """Every installed implementation and every broken one, as one table."""
    found, missing = adapters.implementations()
    frames = []
    for impl in found:
        t = check(impl, steps=steps, points=points, draws=draws, seed=seed).table
        frames.append(t.assign(kind="library", library=impl.library, version=version(impl.library),
                               expected_diagnosis=""))
    for impl, diagnosis in broken.broken_implementations():
        t = check(impl, steps=steps, points=points, draws=draws, seed=seed).table
        frames.append(t.assign(kind="broken", library=impl.library, version=version(impl.library),
                               expected_diagnosis=diagnosis))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), missing


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per implementation, mode, N and family: the worst error over the checks,
    the verdict (pass only if every check passed) and the diagnoses."""
    def one(g):
        verdicts = set(g.verdict)
        verdict = "pass" if verdicts == {"pass"} else ("error" if "error" in verdicts else "FAIL")
        diag = "; ".join(sorted({d for d in g.diagnosis if d and not d.startswith("the task average")})) or ""
        return pd.Series({"version": g.version.iloc[0], "max_rel_error": g.max_rel_error.max(), "verdict": verdict,
                          "diagnosis": diag, "indistinguishable": ";".join(sorted(
                              {x for s in g.indistinguishable for x in str(s).split(";") if x})),
                          "expected_diagnosis": g.expected_diagnosis.iloc[0]})
    keys = ["kind", "implementation", "library", "mode", "N", "family"]
    return table.groupby(keys, sort=False).apply(one, include_groups=False).reset_index()


def _md_table(df: pd.DataFrame, cols: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "—" if np.isnan(v) else f"{v:.1e}"
        return str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for _, r in df.iterrows()]
    return "\n".join(lines)


def markdown(table: pd.DataFrame, missing: list, args) -> str:
    s = summary(table)
    lib, brk = s[s.kind == "library"], s[s.kind == "broken"]
    cols = ["implementation", "version", "mode", "N", "family", "max_rel_error", "verdict", "diagnosis"]
    parts = [
        "# Conformance of MAML implementations",
        "",
        "Written by `make conformance` (`python -m mamlcheck conformance`); the full table, one row per "
        "check, is `results/conformance.csv`. Each implementation computes one task's meta-gradient in "
        "float64 and is compared, on the same batches, with the exact quantity of `mamlcheck.conformance` "
        "(module `conformance/checker.py`): `G_i` of (6) with the inner batch as Hessian batch (`N` inner "
        "steps: the N-step product, THEORY.md §9), the exact per-task term of `∇F` (5) with infinite "
        "batches, and the task average against `∇F`. First-order modes are compared with FO-MAML's "
        f"direction. A check passes at relative error ≤ {TOL:g}; a failing one is named by the wrong variant "
        f"it matches to {DIAGNOSIS_TOL:g}. `max_rel_error` is the worst over the checks of the row.",
        "",
        f"Environment: Python {platform.python_version()}, NumPy {np.__version__}, torch {version('torch')}, "
        f"jax {version('jax')}, learn2learn {version('learn2learn')}, higher {version('higher')}. "
        f"Families: {', '.join(FAMILIES)}; N ∈ {{{', '.join(map(str, args.steps))}}}; {args.points} points, "
        f"{args.draws} batch draws per task and point, seed {args.seed}.",
        "",
        "## Libraries",
        "",
        _md_table(lib, cols) if len(lib) else "(no library installed)",
        "",
    ]
    parts += [
        "How each library is installed and called (`conformance/adapters.py`, one short function each):", "",
        "* torch is pinned to 2.13.0, the CPU build (a plain `torch` requirement pulls a CUDA build of several GB); "
        "jax 0.10.2 with `jax_enable_x64` (without it the arrays are silently float32 and the error is ~1e-6).",
        "* learn2learn 0.2.0 (its last release) does not install as published on Python 3.11: its C files were "
        "generated by Cython 0.29 (`longintrepr.h: No such file`), and its requirements pull torchvision and "
        "another torch. `conformance/install_learn2learn.sh` re-translates the sdist's `.pyx` files with Cython 3 "
        "and builds it without dependencies. `import learn2learn` then fails (its `__init__` imports torchvision, "
        "requests and gym; no torchvision on PyPI loads beside the CPU torch: `operator torchvision::nms does not "
        "exist`), so the adapter imports `learn2learn.algorithms.maml` with the package's `__init__` bypassed; "
        "`MAML`, `clone` and `adapt` are the library's own code.",
        "* higher 0.2.1 installs as published. Its `innerloop_ctx` defaults to `copy_initial_weights=True`, with "
        "which `backward()` never reaches the model's parameters: the adapter passes `False` (the broken table "
        "shows `True`). First-order mode detaches the inner gradients through `diffopt.step(..., grad_callback=...)`.",
        "",
    ]
    if missing:
        parts += ["## Libraries that did not run", "",
                  _md_table(pd.DataFrame(missing, columns=["implementation", "version", "error"]),
                            ["implementation", "version", "error"]), ""]
    if len(brk):
        ok = (brk.verdict == "FAIL") & (brk.diagnosis == brk.expected_diagnosis)
        hidden = brk[brk.verdict == "pass"]
        parts += ["## Deliberately broken implementations (the tool's negative controls)", "",
                  "Each is a bug reported against the MAML libraries (`conformance/broken.py`). Where a family "
                  "cannot tell the bug apart (a batch mix-up on `hard-chain`, whose oracles are deterministic), "
                  "the row passes and says so.", "",
                  _md_table(brk.assign(caught=np.where(ok, "yes", np.where(brk.verdict == "pass", "invisible here",
                                                                             "NO"))),
                            ["implementation", "N", "family", "max_rel_error", "verdict", "diagnosis", "caught"]),
                  ""]
        if len(hidden):
            parts += [f"{len(hidden)} row(s) pass because the bug does not change the meta-gradient on that "
                      "family (listed as indistinguishable in the CSV).", ""]
    return "\n".join(parts)


def _write_text(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(args) -> int:
    table, missing = run_all(args.steps, args.points, args.draws, args.seed)
    if table.empty:
        raise ValueError("no implementation could be checked: install the extra, "
                         "pip install -e '.[conformance]' (or `make conformance`)")
    os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
    write_csv(table, args.csv)
    if args.markdown:
        _write_text(args.markdown, markdown(table, missing, args))
    s = summary(table)
    lib = s[s.kind == "library"]
    brk = s[(s.kind == "broken") & (s.verdict != "pass")]
    print(lib[["implementation", "mode", "N", "family", "max_rel_error", "verdict", "diagnosis"]].to_string(index=False))
    wrong = brk[brk.diagnosis != brk.expected_diagnosis]
    print(f"\n{(lib.verdict == 'pass').sum()}/{len(lib)} library rows pass; "
          f"{len(brk) - len(wrong)}/{len(brk)} failing broken rows diagnosed as expected; "
          f"{len(missing)} implementation(s) did not run; written {args.csv}"
          + (f" and {args.markdown}" if args.markdown else ""))
    return 0
