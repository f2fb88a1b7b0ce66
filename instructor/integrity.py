"""An integrity report for submitted notebooks: what in the students' own cells deserves a look.

    python instructor/integrity.py 01_scaled_dot_product_attention     # from the repository root
    python instructor/integrity.py "*" --csv integrity.csv

Reads ``instructor/submitted/<student>/<assignment>/*.ipynb`` without running anything, parses every
code cell the student could edit (solution cells and cells they added) and flags:

- reassigning library functions (``torch.allclose = ...``, ``setattr(torch, ...)``, ``checks.x = ...``);
- IPython's machinery (``get_ipython``, input transformers, ``sys.settrace``, ``builtins``);
- files, databases, sockets, subprocesses and the environment (``open``, ``sqlite3``, ``socket``,
  ``subprocess``, ``os.system``, ``os.environ``, ``shutil``);
- importing the reference implementation from ``course_lib`` for an exercise that asks to write it;
- code the parser cannot read (``exec``/``eval``/``compile``, ``__import__``, syntax errors).

It flags, it does not fail anyone: the instructor decides. Exit status 0 either way; the report is
one line per finding: ``student  assignment  cell  line  what``.
"""
import argparse
import ast
import csv
import json
import sys
from pathlib import Path

COURSE = Path(__file__).resolve().parent
SUSPECT_MODULES = {"subprocess": "runs programs", "socket": "opens network connections", "sqlite3": "opens a database",
                   "shutil": "copies or deletes files", "ctypes": "calls C code", "multiprocessing": "starts processes",
                   "requests": "uses the network", "urllib": "uses the network", "http": "uses the network",
                   "pickle": "loads pickled objects", "importlib": "imports by name", "inspect": "reads other code",
                   "gc": "walks the interpreter's objects", "signal": "changes signal handling", "builtins": "changes builtins",
                   "glob": "lists files"}
SUSPECT_CALLS = {"open": "opens a file", "exec": "runs code built at run time", "eval": "runs code built at run time",
                 "compile": "compiles code at run time", "__import__": "imports by name", "setattr": "sets an attribute by name",
                 "get_ipython": "reaches IPython's machinery", "globals": "reads or rewrites the notebook's globals",
                 "getattr": "reads an attribute by name", "delattr": "deletes an attribute"}
SUSPECT_ATTRIBUTES = {"system": "runs a shell command", "popen": "runs a shell command", "environ": "reads the environment",
                      "getenv": "reads the environment", "input_transformers_post": "rewrites later cells",
                      "input_transformers_cleanup": "rewrites later cells", "settrace": "traces execution",
                      "setprofile": "traces execution", "remove": "deletes a file", "unlink": "deletes a file",
                      "rmtree": "deletes a folder", "kill": "signals a process", "fork": "starts a process",
                      "read_text": "reads a file", "write_text": "writes a file", "read_bytes": "reads a file",
                      "write_bytes": "writes a file", "chdir": "changes the working folder", "_exit": "ends the kernel",
                      "listdir": "lists files", "walk": "lists files", "scandir": "lists files", "iterdir": "lists files",
                      "rglob": "lists files"}
LIBRARY_ROOTS = {"torch", "np", "numpy", "F", "math", "checks", "course_lib", "nn", "sys", "os", "builtins"}


def _name(node):
    """``a.b.c`` for an attribute chain, or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def findings_in(source, exercise_functions=()):
    """The suspicious things in one cell's code, as (line, what) pairs."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        magic = [line for line in source.splitlines() if line.lstrip().startswith(("%", "!"))]
        what = "IPython magic or shell escape: " + magic[0].strip()[:60] if magic else f"does not parse ({error.msg})"
        return [(error.lineno or 0, what)]
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for alias in node.names:
                root = (module or alias.name).split(".")[0]
                if root in SUSPECT_MODULES:
                    found.append((line, f"imports {module or alias.name}: {SUSPECT_MODULES[root]}"))
                if module and module.startswith("course_lib") and {alias.name, alias.asname} & set(exercise_functions):
                    found.append((line, f"imports {alias.name} from {module} as {alias.asname or alias.name}: "
                                        "the exercise asks to write it"))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = _name(target)
                if isinstance(target, ast.Attribute) and name and name.split(".")[0] in LIBRARY_ROOTS:
                    found.append((line, f"reassigns {name}: replaces a library function or setting"))
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            if isinstance(node.func, ast.Name) and node.func.id in SUSPECT_CALLS:
                found.append((line, f"calls {node.func.id}(): {SUSPECT_CALLS[node.func.id]}"))
            elif name and name.split(".")[-1] in SUSPECT_ATTRIBUTES:
                found.append((line, f"uses {name}: {SUSPECT_ATTRIBUTES[name.split('.')[-1]]}"))
        elif isinstance(node, ast.Attribute) and node.attr in SUSPECT_ATTRIBUTES and not isinstance(getattr(node, "ctx", None), ast.Store):
            if node.attr in ("environ", "input_transformers_post", "input_transformers_cleanup"):
                found.append((line, f"uses {_name(node) or node.attr}: {SUSPECT_ATTRIBUTES[node.attr]}"))
    return sorted(set(found))


def student_cells(nb, release_sources=frozenset()):
    """(index, source) of every code cell the student wrote: solution cells, and cells that are not
    in the release as they stand (added or edited lesson cells)."""
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        grading = cell.get("metadata", {}).get("nbgrader")
        source = "".join(cell.get("source", ""))
        if (grading or {}).get("solution") or (grading is None and source.strip() not in release_sources):
            yield index, source


def exercise_functions(nb):
    """Names the solution cells define (what the exercises ask students to write)."""
    names = set()
    for cell in nb.get("cells", []):
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            try:
                tree = ast.parse("".join(cell.get("source", "")))
            except SyntaxError:
                continue
            names |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    return names


def report(course=COURSE, assignment="*"):
    """Yield (student, assignment, cell, line, what) for every finding in the submissions."""
    for path in sorted((Path(course) / "submitted").glob(f"*/{assignment}/*.ipynb")):
        student, name = path.parent.parent.name, path.parent.name
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            yield student, name, "-", 0, f"not a readable notebook ({type(error).__name__})"
            continue
        release_path = Path(course) / "release" / name / path.name
        release = json.loads(release_path.read_text(encoding="utf-8")) if release_path.is_file() else {"cells": []}
        course_cells = frozenset("".join(c.get("source", "")).strip() for c in release["cells"])
        expected = exercise_functions(release) | exercise_functions(nb)
        for index, source in student_cells(nb, course_cells):
            for line, what in findings_in(source, expected):
                yield student, name, index, line, what


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", nargs="?", default="*", help='assignment name, or "*" for all (default)')
    parser.add_argument("--course", type=Path, default=COURSE, help="nbgrader's course folder (default: instructor/)")
    parser.add_argument("--csv", type=Path, help="also write the findings to this CSV file")
    args = parser.parse_args(argv)
    rows = list(report(args.course, args.assignment))
    for row in rows:
        print("  ".join(str(x) for x in row))
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["student", "assignment", "cell", "line", "finding"])
            writer.writerows(rows)
    print(f"{len(rows)} finding(s) in {len({(r[0], r[1]) for r in rows})} submission(s); flags, not verdicts: look, then decide",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
