"""Copy the course notebooks into nbgrader's source folder: one assignment per notebook.

    python instructor/prepare_source.py            # all notebooks
    python instructor/prepare_source.py 01 02      # some of them

Creates ``instructor/source/NN_name/NN_name.ipynb`` from ``notebooks/NN_name.ipynb`` (the stored,
executed notebooks with solutions in place). Run it again after the notebooks change.
"""
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare(numbers=(), course_dir=ROOT / "instructor"):
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if numbers:
        notebooks = [nb for nb in notebooks if nb.name[:2] in numbers]
    assignments = []
    for notebook in notebooks:
        target = Path(course_dir) / "source" / notebook.stem
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(notebook, target / notebook.name)
        assignments.append(notebook.stem)
    return assignments


if __name__ == "__main__":
    for assignment in prepare(sys.argv[1:]):
        print("source/" + assignment)
