"""Build the course notebooks from their sources and execute them top to bottom in a fresh kernel.

Sources live in ``notebooks/src/NN_name.py`` in the "percent" format (as jupytext writes it), so
that a change to a lesson reads as a normal diff. Cell markers:

    # %% [markdown]                       a markdown cell; each line loses its leading "# "
    # %%                                  a code cell
    # %% tags=["nbval-ignore-output"]     a code cell with tags
    # %% solution="ex1_softmax"           an nbgrader solution cell (grade_id ex1_softmax)
    # %% tests="ex1_softmax_tests" points=2   an nbgrader autograded test cell, locked

Usage: ``python tools/build_notebooks.py [01 02 ...]`` (all notebooks when no number is given).
The executed notebooks are written to ``notebooks/NN_name.ipynb``; CI checks them with nbval.
"""
import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "notebooks" / "src"
OUT = ROOT / "notebooks"
PYPROJECT = ROOT / "pyproject.toml"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
MARKER = re.compile(r"^# %%(?P<rest>.*)$")
OPTION = re.compile(r'(\w+)=("[^"]*"|\[[^\]]*\]|\d+)')


def repository_url():
    """The course's repository, from pyproject.toml's [project.urls] Repository line."""
    match = re.search(r'^Repository\s*=\s*"([^"]+)"', PYPROJECT.read_text(encoding="utf-8"), re.M)
    if not match:
        raise ValueError("pyproject.toml has no [project.urls] Repository line")
    return match.group(1).rstrip("/")


def colab_url(notebook_name):
    github_path = repository_url().split("github.com/", 1)[1]
    return f"https://colab.research.google.com/github/{github_path}/blob/main/notebooks/{notebook_name}"


COLAB_SETUP = """\
# Google Colab only: fetch the course and make course_lib importable. Elsewhere this does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    course_dir = os.environ.get("COURSE_DIR", "/content/gpt-course")
    if not os.path.isdir(os.path.join(course_dir, "course_lib")):
        repository = os.environ.get("COURSE_REPOSITORY", "{repository}")
        subprocess.run(["git", "clone", "--depth", "1", repository, course_dir], check=True)
    sys.path.insert(0, course_dir)  # importable in this kernel at once: no pip install, no restart
    os.chdir(os.path.join(course_dir, "notebooks"))  # relative paths work as in JupyterLab"""


def add_colab_cells(cells, notebook_name):
    """Put the Open-in-Colab badge on the title cell and the Colab set-up cell right after it."""
    badge = f"[![Open In Colab]({COLAB_BADGE})]({colab_url(notebook_name)})"
    cells[0].source = badge + "\n\n" + cells[0].source
    cells.insert(1, nbformat.v4.new_code_cell(COLAB_SETUP.format(repository=repository_url())))
    return cells


def update_readme_badges():
    """Point the README's Colab links at the repository named in pyproject.toml."""
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = re.sub(r"https://colab\.research\.google\.com/github/[^)\s]+/blob/main/notebooks/([\w.]+)",
                 lambda m: colab_url(m.group(1)), text)
    if new != text:
        readme.write_text(new, encoding="utf-8")


def _nbgrader(grade_id, solution=False, grade=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points or 1
    return meta


def parse(path):
    cells, kind, options, lines = [], None, {}, []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", line) for line in text.splitlines())
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if "tags" in options:
            cell.metadata["tags"] = options["tags"]
        if "solution" in options:
            cell.metadata["nbgrader"] = _nbgrader(options["solution"], solution=True)
        if "tests" in options:
            cell.metadata["nbgrader"] = _nbgrader(options["tests"], grade=True, points=options.get("points"))
        cells.append(cell)

    for line in path.read_text(encoding="utf-8").splitlines():
        match = MARKER.match(line)
        if match:
            flush()
            rest = match.group("rest").strip()
            kind = "markdown" if rest.startswith("[markdown]") else "code"
            options = {key: json.loads(value) for key, value in OPTION.findall(rest)}
            lines = []
        else:
            lines.append(line)
    flush()
    ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path.name}: nbgrader grade_ids must be unique, got {ids}")
    return cells


def build(path, execute=True):
    nb = nbformat.v4.new_notebook()
    nb.cells = add_colab_cells(parse(path), path.stem + ".ipynb")
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:2]}-{i:03d}"  # stable ids: rebuilding gives no diff noise
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    if execute:
        os.environ.setdefault("COURSE_DEVICE", "cpu")  # stored outputs are the CPU's, as CI sees them
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(OUT)}}).execute()
        nb.metadata["language_info"] = {"name": "python"}  # keep the stored file free of version noise
    target = OUT / (path.stem + ".ipynb")
    nbformat.write(nb, target)
    return target


def main(argv):
    sources = sorted(SRC.glob("[0-9][0-9]_*.py"))
    if argv:
        sources = [s for s in sources if s.name[:2] in argv]
    update_readme_badges()
    for source in sources:
        print(f"building {source.name} ...", flush=True)
        print("  wrote", build(source).relative_to(ROOT), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
