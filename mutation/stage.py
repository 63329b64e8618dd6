"""Build mutation/work/: the package in its installed layout, for mutmut.

mutmut names each mutant after its file's path (``theory/rate.py`` ->
``theory.rate``) while the trampolines it injects record the importing
module's ``__name__`` (``mamlcheck.theory.rate``); with the repository's
``package-dir`` mapping the two disagree and mutmut stops. In the staged tree
the subpackages sit under ``mamlcheck/`` so path and module name agree. The
top-level folders are symlinks to them, because some tests read the source
there (test_layers, test_sweeps).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "mutation" / "work"
SUBPACKAGES = ("problems", "algorithms", "theory", "experiments")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "__marimo__")


def staged(path: str) -> str:
    """theory/rate.py -> mamlcheck/theory/rate.py (mamlcheck/... stays)."""
    return path if path.startswith("mamlcheck/") else f"mamlcheck/{path}"


def build(files: list[str] | None = None, fresh: bool = True) -> Path:
    """Copy the sources into WORK (from scratch: mutmut's results of an older
    source would not be trusted) and return WORK. ``files`` (repository paths)
    narrows [tool.mutmut] only_mutate in the staged pyproject.toml."""
    if fresh and WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "mamlcheck", WORK / "mamlcheck", ignore=IGNORE, dirs_exist_ok=True)
    for name in SUBPACKAGES:
        shutil.copytree(ROOT / name, WORK / "mamlcheck" / name, ignore=IGNORE, dirs_exist_ok=True)
        link = WORK / name
        if not link.is_symlink():
            link.symlink_to(Path("mamlcheck") / name, target_is_directory=True)
    for name in ("tests", "docs"):
        shutil.copytree(ROOT / name, WORK / name, ignore=IGNORE, dirs_exist_ok=True)
    shutil.copy2(ROOT / "README.md", WORK / "README.md")
    text = (ROOT / "pyproject.toml").read_text()
    if files is not None:
        listed = ", ".join(f'"{staged(f)}"' for f in files)
        text, n = re.subn(r"(?ms)^only_mutate = \[.*?\]$", f"only_mutate = [{listed}]", text)
        assert n == 1, "pyproject.toml: no only_mutate list under [tool.mutmut]"
    (WORK / "pyproject.toml").write_text(text)
    return WORK


if __name__ == "__main__":
    print(build())
