"""The repository keeps its promises: README table matches the notebooks, notebooks are stored executed."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_readme_table_matches_notebook_files():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"\]\((notebooks/\d\d_[\w]+\.ipynb)\)", readme)
    assert sorted(set(linked)) == sorted(f"notebooks/{p.name}" for p in NOTEBOOKS)


def test_every_notebook_has_a_source_and_is_stored_executed_in_order():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert (ROOT / "notebook_sources" / (path.stem + ".py")).is_file(), f"{path.name} has no source"
        nb = json.loads(path.read_text(encoding="utf-8"))
        counts = [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"]
        assert counts == list(range(1, len(counts) + 1)), f"{path.name} is not executed top to bottom"
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                assert out["output_type"] != "error", f"{path.name} stores an error output"


def test_every_notebook_has_three_graded_exercises_with_hidden_tests():
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        meta = [c["metadata"].get("nbgrader") for c in nb["cells"]]
        solutions = [m for m in meta if m and m["solution"]]
        graded = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        assert len(solutions) >= 3 and len(graded) >= 3, f"{path.name}: fewer than three exercises"
        for cell in graded:
            assert cell["metadata"]["nbgrader"]["locked"] and cell["metadata"]["nbgrader"]["points"] > 0
            assert "### BEGIN HIDDEN TESTS" in "".join(cell["source"]), f"{path.name}: a test cell without hidden tests"
        ids = [m["grade_id"] for m in meta if m]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade_id"


def test_notebooks_end_with_a_summary_and_link_onwards():
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        last = "".join(nb["cells"][-1]["source"])
        assert "## Summary" in last, f"{path.name} does not end with a summary"


def public_names():
    """Every public function and class of course_lib, as (module.name, object)."""
    import importlib
    import inspect
    import pkgutil

    import course_lib

    for info in pkgutil.iter_modules(course_lib.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"course_lib.{info.name}")
        for name, obj in vars(module).items():
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)) \
                    and obj.__module__ == module.__name__:
                yield f"{info.name}.{name}", obj
    yield "seed_everything", course_lib.seed_everything


def test_every_public_name_says_which_notebook_introduced_it():
    # d2l's habit: the library is the notebooks' code, and each piece says where it was taught.
    # The command line and the doctor come from the README instead of a notebook.
    import inspect

    def missing(names):
        return [name for name, obj in names.items() if not re.search(r"notebooks? \d\d|README", inspect.getdoc(obj) or "")]

    def undocumented():
        """Nothing about where it comes from."""

    assert missing({"undocumented": undocumented}) == ["undocumented"]  # positive control: it is caught
    names = dict(public_names())
    assert len(names) > 40
    assert not missing(names), f"docstrings that name no notebook: {missing(names)}"


def test_the_notebook_a_docstring_names_exists():
    import inspect

    existing = {p.name[:2] for p in NOTEBOOKS}
    for name, obj in public_names():
        for number in re.findall(r"notebooks? (\d\d)", inspect.getdoc(obj) or ""):
            assert number in existing, f"{name} names notebook {number}, which does not exist"
