"""Build the course notebooks from their jupytext sources and execute them top to bottom in a fresh kernel.

Each lesson is written once, as ``notebook_sources/NN_name.py`` in jupytext's "percent" format, so
that a change reads as a normal diff. jupytext reads it cell for cell (markdown, code, tags and the
short exercise keys below); this script adds only what jupytext does not:

    # %% solution="ex1_softmax"               -> nbgrader solution cell (grade_id ex1_softmax)
    # %% tests="ex1_softmax_tests" points=2   -> nbgrader autograded test cell, locked, 2 points

plus the Colab badge and set-up cell, stable cell ids, and the execution (CPU, fresh kernel).

    python tools/build_notebooks.py            # build and execute every notebook
    python tools/build_notebooks.py 03 08      # only these
    python tools/build_notebooks.py --check    # fail when a stored notebook's cells differ from its source
    python tools/build_notebooks.py --pull 08  # write the source back from an edited notebook

``jupytext.toml`` pairs the two folders, so with jupytext installed in JupyterLab an edit of a
notebook is saved to its source too; ``--pull`` does the same for an edit made without jupytext.
"""
import os
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "notebook_sources"
OUT = ROOT / "notebooks"
PYPROJECT = ROOT / "pyproject.toml"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
SHORT_KEYS = ("solution", "tests", "points")
#: Cell metadata a source keeps: tags and the short exercise keys (jupytext's cell_metadata_filter).
SOURCE_METADATA = "tags," + ",".join(SHORT_KEYS) + ",-all"


def repository_url():
    """The course's repository, from pyproject.toml's [project.urls] Repository line."""
    match = re.search(r'^Repository\s*=\s*"([^"]+)"', PYPROJECT.read_text(encoding="utf-8"), re.M)
    if not match:
        raise ValueError("pyproject.toml has no [project.urls] Repository line")
    return match.group(1).rstrip("/")


def colab_url(notebook_name):
    github_path = repository_url().split("github.com/", 1)[1]
    return f"https://colab.research.google.com/github/{github_path}/blob/main/notebooks/{notebook_name}"


COLAB_FIRST_LINE = "# Google Colab only: fetch the course and make course_lib importable. Elsewhere this does nothing."
COLAB_SETUP = COLAB_FIRST_LINE + """
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
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n\n")


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


def _strip_builder_cells(cells):
    """Drop what this script adds (the Colab cell and badge), in case a paired edit wrote them back."""
    cells = [c for c in cells if not (c.cell_type == "code" and c.source.startswith(COLAB_FIRST_LINE))]
    if cells and cells[0].cell_type == "markdown":
        cells[0].source = BADGE_LINE.sub("", cells[0].source)
    return cells


def lesson_cells(path):
    """The cells of a source, read by jupytext, with the exercise keys turned into nbgrader metadata."""
    cells = []
    for cell in _strip_builder_cells(jupytext.read(path).cells):
        meta = cell.metadata
        kept = {"tags": meta["tags"]} if meta.get("tags") else {}
        if "solution" in meta:
            kept["nbgrader"] = _nbgrader(meta["solution"], solution=True)
        elif "tests" in meta:
            kept["nbgrader"] = _nbgrader(meta["tests"], grade=True, points=meta.get("points"))
        elif "nbgrader" in meta:  # written back by a paired edit: already in nbgrader's form
            kept["nbgrader"] = meta["nbgrader"]
        new = (nbformat.v4.new_markdown_cell if cell.cell_type == "markdown" else nbformat.v4.new_code_cell)(cell.source)
        new.metadata.update(kept)
        cells.append(new)
    ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path.name}: nbgrader grade_ids must be unique, got {ids}")
    return cells


def notebook_from_source(path):
    """The unexecuted notebook of a source: its cells, the Colab badge and cell, stable ids."""
    nb = nbformat.v4.new_notebook()
    cells = lesson_cells(path)
    badge = f"[![Open In Colab]({COLAB_BADGE})]({colab_url(path.stem + '.ipynb')})"
    cells[0].source = badge + "\n\n" + cells[0].source
    cells.insert(1, nbformat.v4.new_code_cell(COLAB_SETUP.replace("{repository}", repository_url())))
    for i, cell in enumerate(cells):
        cell["id"] = f"{path.stem[:2]}-{i:03d}"  # stable ids: rebuilding gives no diff noise
    nb.cells = cells
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def build(path, execute=True):
    from nbclient import NotebookClient

    nb = notebook_from_source(path)
    if execute:
        os.environ.setdefault("COURSE_DEVICE", "cpu")  # stored outputs are the CPU's, as CI sees them
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(OUT)}}).execute()
        nb.metadata["language_info"] = {"name": "python"}  # keep the stored file free of version noise
    target = OUT / (path.stem + ".ipynb")
    nbformat.write(nb, target)
    return target


def _cell_key(cell):
    meta = {k: cell.metadata[k] for k in ("tags", "nbgrader") if k in cell.metadata}
    return cell.cell_type, cell.source, meta


def differences(path, out=OUT):
    """How the stored notebook of ``path`` differs from its source (an empty list when it does not)."""
    stored_path = Path(out) / (path.stem + ".ipynb")
    if not stored_path.is_file():
        return [f"{stored_path.name} is missing: run python tools/build_notebooks.py {path.stem[:2]}"]
    stored = nbformat.read(stored_path, as_version=4).cells
    expected = notebook_from_source(path).cells
    problems = []
    if len(stored) != len(expected):
        problems.append(f"{stored_path.name} has {len(stored)} cells, its source gives {len(expected)}")
    for i, (s, e) in enumerate(zip(stored, expected)):
        if _cell_key(s) != _cell_key(e):
            problems.append(f"{stored_path.name} cell {i} ({s.source.splitlines()[0][:50] if s.source else ''!r}) "
                            f"differs from {path.relative_to(ROOT)}")
    return problems


def pull(notebook_path, sources=SRC):
    """Write the source of an edited notebook back to ``notebook_sources/`` (outputs dropped)."""
    nb = nbformat.read(notebook_path, as_version=4)
    nb.cells = _strip_builder_cells(nb.cells)
    for cell in nb.cells:
        grading = cell.metadata.pop("nbgrader", None)
        if grading and grading.get("solution"):
            cell.metadata["solution"] = grading["grade_id"]
        elif grading and grading.get("grade"):
            cell.metadata["tests"] = grading["grade_id"]
            cell.metadata["points"] = grading.get("points", 1)
    nb.metadata = {"jupytext": {"cell_metadata_filter": SOURCE_METADATA, "notebook_metadata_filter": "-all"}}
    target = Path(sources) / (Path(notebook_path).stem + ".py")
    target.write_text(jupytext.writes(nb, fmt="py:percent"), encoding="utf-8")
    return target


def _selected(numbers):
    sources = sorted(SRC.glob("[0-9][0-9]_*.py"))
    return [s for s in sources if s.name[:2] in numbers] if numbers else sources


def main(argv):
    if argv[:1] == ["--check"]:
        problems = [p for source in _selected(argv[1:]) for p in differences(source)]
        print("\n".join(problems) or "every stored notebook matches its source")
        return 1 if problems else 0
    if argv[:1] == ["--pull"]:
        for source in _selected(argv[1:]):
            print("  wrote", pull(OUT / (source.stem + ".ipynb")).relative_to(ROOT))
        return 0
    update_readme_badges()
    for source in _selected(argv):
        print(f"building {source.name} ...", flush=True)
        print("  wrote", build(source).relative_to(ROOT), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
