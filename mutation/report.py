"""Write mutation/results.md and mutation/results.json from mutmut's state in
mutation/work/mutants/ (run from anywhere; ``run.py`` calls it).

Per file: killed (a test failed), timeout (counted as caught), survived (the
tests that cover the function passed), no tests (no test reaches the
function), not checked (outside the names given to this run). Score =
(killed + timeout) / checked. Each survivor is listed with its line in the
repository's file and the changed line(s), and the classification from
mutation/survivors.toml when one is recorded there.
"""
from __future__ import annotations

import ast
import fnmatch
import io
import json
import os
import re
import sys
import tokenize
import tomllib
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
CAUGHT = {"killed", "timeout"}
FSTRING_PARTS = {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
KEYLIKE = {":", "==", "!=", "in", "is", "not", "[", "]"}
TEXT = ("text", "only a string literal's text changes: a message or label, no computed value")


def repo_path(staged: str) -> str:
    """mamlcheck/theory/rate.py -> theory/rate.py (literature stays in mamlcheck/)."""
    parts = Path(staged).parts
    if len(parts) > 2 and parts[1] in ("problems", "algorithms", "theory", "experiments"):
        return str(Path(*parts[1:]))
    return staged


def function_span(source: str, mangled: str) -> tuple[int, int]:
    """First and last line of the function mutmut calls ``mangled``
    (``x_name`` for a function, ``xǁClassǁname`` for a method)."""
    tree = ast.parse(source)
    if mangled.startswith("xǁ"):
        cls, name = mangled[2:].split("ǁ")[:2]
        scopes = [n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    else:
        name, scopes = mangled[2:], [tree.body]
    for body in scopes:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return node.lineno, node.end_lineno
    return 1, len(source.splitlines())


def locate(diff: str, source: str, mangled: str) -> tuple[int, list[str], list[str]]:
    """The file line of the mutation and its removed / added lines."""
    removed = [l[1:] for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    added = [l[1:] for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    start, end = function_span(source, mangled)
    lines = source.splitlines()
    offset = 0                                  # the removed line's index in the function's text
    m = re.search(r"^@@ -(\d+)", diff, re.M)
    if m:
        offset = int(m.group(1)) - 1
        for l in diff.split("\n@@", 1)[-1].splitlines()[1:]:
            if l.startswith("-"):
                break
            offset += 1
    target = removed[0].strip() if removed else ""
    hits = [i for i in range(start, end + 1) if lines[i - 1].strip() == target]
    line = min(hits, key=lambda i: abs(i - (start + offset))) if hits else start + offset
    return line, removed, added


def _code_only(lines: list[str]) -> list[str]:
    """The lines' tokens with every string literal blanked out."""
    text = "\n".join(l.strip() for l in lines)
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(text + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [text]
    toks = [t for t in toks if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
    out = []
    for i, t in enumerate(toks):
        near = {toks[j].string for j in (i - 1, i + 1) if 0 <= j < len(toks)}
        # a key (``"bound": ...``) or a compared value (``kind == "upper"``) is code, not text
        is_text = (t.type == tokenize.STRING or t.type in FSTRING_PARTS) and not near & KEYLIKE
        out.append("<str>" if is_text else t.string)
    return out


def text_only(removed: list[str], added: list[str]) -> bool:
    """True when the mutation changes nothing but the text of string literals."""
    return bool(removed) and _code_only(removed) == _code_only(added)


def lookup(notes: dict, name: str) -> dict:
    """The note for mutant ``name``: its own entry, else the first fnmatch pattern
    (e.g. ``...x_format_conditions__mutmut_*``) that matches it."""
    if name in notes:
        return notes[name]
    return next((v for k, v in notes.items() if any(c in k for c in "*?[") and fnmatch.fnmatch(name, k)), {})


def carry(files: list[str] | None) -> dict:
    """The last report's records of the files not in ``files`` (``run.py --add``): their
    counts and survivors, each file with the run that checked it, to be reported beside
    this run's files."""
    if files is None or not (HERE / "results.json").exists():
        return {}
    last = json.loads((HERE / "results.json").read_text())
    runs = last.get("file_runs") or {f: last["run"] for f in last["per_file"]}
    keep = [f for f in last["per_file"] if f not in files]
    return {"per_file": {f: last["per_file"][f] for f in keep},
            "survivors": [s for s in last["survivors"] if s["file"] in keep],
            "no_tests": {k: v for k, v in last.get("no_tests", {}).items() if k.split(":")[0] in keep},
            "file_runs": {f: runs[f] for f in keep}}


def main() -> None:
    os.chdir(WORK)
    sys.path.insert(0, str(WORK))
    from mutmut.configuration import config
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    notes = {}
    if (HERE / "survivors.toml").exists():
        notes = tomllib.loads((HERE / "survivors.toml").read_text())
    run = json.loads((HERE / "work" / "run.json").read_text()) if (HERE / "work" / "run.json").exists() else {}

    per_file, survivors, untested = {}, [], Counter()
    for pattern in config().only_mutate:
        path = Path(pattern)
        data = SourceFileMutationData(path=path)
        data.load()
        # a mutant cut off by the time cap is as good as not checked
        counts = Counter(status_by_exit_code[c] for c in data.exit_code_by_key.values())
        counts["not checked"] += counts.pop("check was interrupted by user", 0)
        per_file[repo_path(pattern)] = counts
        source = path.read_text()
        for name, code in sorted(data.exit_code_by_key.items()):
            if status_by_exit_code[code] == "no tests":
                untested[f"{repo_path(pattern)}: {name.rsplit('.', 1)[1].rsplit('__mutmut_', 1)[0]}"] += 1
            if status_by_exit_code[code] != "survived":
                continue
            mangled = name.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]
            line, removed, added = locate(get_diff_for_mutant(name, path=path), source, mangled)
            note = lookup(notes, name) or (dict(zip(("class", "reason"), TEXT)) if text_only(removed, added) else {})
            survivors.append({"name": name, "file": repo_path(pattern), "line": line,
                              "removed": removed, "added": added,
                              "class": note.get("class", "unclassified"), "reason": note.get("reason", "")})

    file_runs = dict.fromkeys(per_file, run)
    carried_path = HERE / "work" / "carried.json"
    if carried_path.exists():            # run.py --add: the other files as the last report had them
        carried = json.loads(carried_path.read_text())
        per_file = {**{f: Counter(c) for f, c in carried["per_file"].items()}, **per_file}
        survivors = [s for s in carried["survivors"] if s["file"] not in file_runs] + survivors
        for s in survivors:                # classifications may have been written since
            note = lookup(notes, s["name"])
            if note:
                s.update({"class": note["class"], "reason": note.get("reason", "")})
        untested.update(carried["no_tests"])
        file_runs = {**carried["file_runs"], **file_runs}
    (HERE / "results.json").write_text(json.dumps(
        {"run": run, "per_file": {f: dict(c) for f, c in per_file.items()}, "survivors": survivors,
         "no_tests": dict(untested), "file_runs": file_runs}, indent=1))
    write_markdown(run, per_file, survivors, untested, notes.get("notes", ""), file_runs)


def write_markdown(run: dict, per_file: dict, survivors: list, untested: Counter, notes: str,
                   file_runs: dict | None = None) -> None:
    equivalent = Counter(s["file"] for s in survivors if s["class"] == "equivalent")

    def cell(counts: Counter, n_equivalent: int) -> list:
        checked = sum(v for k, v in counts.items() if k != "not checked")
        caught = sum(counts[k] for k in CAUGHT)
        score = f"{caught}/{checked} ({100 * caught / checked:.0f} %)" if checked else "—"
        real = checked - n_equivalent
        score_real = f"{caught}/{real} ({100 * caught / real:.1f} %)" if real else "—"
        return [score_real, score, n_equivalent, counts["killed"], counts["timeout"], counts["survived"],
                counts["no tests"], counts["not checked"], checked]

    out = ["# Mutation testing: results", "",
           "Written by `make mutate` (mutation/run.py, mutmut "
           f"{run.get('mutmut', '?')}); classifications from mutation/survivors.toml.", ""]
    if run:
        files = run["files"] if isinstance(run["files"], str) else ", ".join(f"`{f}`" for f in run["files"])
        out += [f"* command: `{run['command']}`",
                f"* files mutated: {files}",
                f"* wall time: {run['seconds'] / 60:.1f} min (cap {run['minutes_cap']:g} min) on "
                f"{run['cpus']} cores, {run['date']}; mutmut exit code {run['exit_code']}", ""]
    earlier = {json.dumps(r, sort_keys=True): r for r in (file_runs or {}).values() if r != run}
    for r in earlier.values():           # files carried from an earlier report (run.py --add)
        those = ", ".join(f"`{f}`" for f, fr in file_runs.items() if fr == r)
        out += [f"* carried from an earlier run, {r['date']} (`{r['command']}`, {r['seconds'] / 60:.1f} min, "
                f"not rerun since): {those}", ""]
    out += ["Score = caught / non-equivalent checked mutants (caught = killed + timeout; an "
            "*equivalent* survivor, which no input can tell from the original, is left out, with "
            "its reason below); *raw*: caught / all checked. *no tests*: no test reaches the "
            "function; *not checked*: not reached before the time cap (mutmut runs the fastest "
            "mutants first, so these are the ones with the longest-running tests).", "",
            "| file | score | raw | equivalent | killed | timeout | survived | no tests | not checked | checked |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    total = Counter()
    for f, counts in per_file.items():
        total += counts
        out.append("| " + " | ".join(str(x) for x in [f"`{f}`", *cell(counts, equivalent[f])]) + " |")
    out.append("| " + " | ".join(str(x) for x in ["**all**", *cell(total, sum(equivalent.values()))]) + " |")
    if notes:
        out += ["", notes.strip()]
    if untested:
        out += ["", "Functions no test reaches (their mutants are *no tests*): "
                + "; ".join(f"`{k}` ({v})" for k, v in sorted(untested.items())) + "."]
    wanted = Counter(t for s in survivors if s["class"] == "gap"
                     for t in dict.fromkeys(re.findall(r"test_\w+\.py::test_\w+", s["reason"])))
    if wanted:
        out += ["", "## Tests to write (mutants each would catch)", ""]
        out += [f"* `tests/{t}` ({n})" for t, n in wanted.most_common()]
    kinds = Counter(s["class"] for s in survivors)
    out += ["", f"## Surviving mutants ({len(survivors)}: "
            + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) + ")", "",
            "*equivalent*: no input can tell it from the original (reason given); "
            "*text*: only a message, label or the layout of printed text changes, no number "
            "or verdict; *gap*: a result can change and no test notices (the test to write "
            "is named); *unclassified*: not yet looked at.", ""]
    for f in per_file:
        rows = [s for s in survivors if s["file"] == f]
        if not rows:
            continue
        out += [f"### `{f}`", "", "| line | mutation | class | reason / test to write |", "|---:|---|---|---|"]
        previous = None
        for s in sorted(rows, key=lambda s: (s["line"], s["name"])):
            reason = "as above" if s["reason"] and s["reason"] == previous else s["reason"]
            previous = s["reason"]
            change = " ⏎ ".join(x.strip() for x in s["removed"]) + " → " + " ⏎ ".join(x.strip() for x in s["added"])
            change = change.replace("|", "\\|").replace("`", "'")
            short = s["name"].rsplit(".", 1)[1]
            out.append(f"| {s['line']} | `{change}` <br>{short} | {s['class']} | {reason} |")
        out.append("")
    (HERE / "results.md").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
