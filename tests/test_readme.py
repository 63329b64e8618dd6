"""The README's library examples run, as written, from outside the repository
(so they use the installed package, not the checkout's folders)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(section: str) -> list[str]:
    text = README.read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


def test_the_library_section_has_examples():
    assert len(_blocks("Use it as a library")) >= 3


@pytest.mark.parametrize("i", range(3))
def test_library_example_runs_outside_the_repository(i, tmp_path):
    code = _blocks("Use it as a library")[i]
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_folders_are_not_installed_under_their_bare_names(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import problems"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0 and "No module named 'problems'" in out.stderr


def test_the_command_line_answers_help_from_outside_the_repository(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mamlcheck", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "run-all" in out.stdout and out.stdout.startswith("usage: mamlcheck")


def _committed() -> set[str]:
    root = README.parent
    out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return set(out.stdout.split())


@pytest.mark.parametrize("doc", ["README.md", "figures/REPORT.md", "figures/proof_walkthrough.md", "docs/THEORY.md"])
def test_every_link_of_the_documents_resolves_to_a_committed_file(doc):
    """A link to a file that is not committed (e.g. into the git-ignored results/)
    is dead for every reader of the repository."""
    root = README.parent
    committed = _committed()
    text = (root / doc).read_text()
    links = [m for m in re.findall(r"\]\(([^)\s]+)\)", text) if re.fullmatch(r"[\w./-]+", m) and "://" not in m]
    assert links or doc == "docs/THEORY.md"
    base = (root / doc).parent
    dead = [link for link in links
            if str((base / link.split("#")[0]).resolve().relative_to(root.resolve())) not in committed]
    assert dead == []
