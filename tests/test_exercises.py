"""Mutation test of the exercises: plausible wrong answers fail, correct variants pass.

Each notebook's lesson code runs once, in this process, from its jupytext source. Then, for every
exercise, each answer in ``exercise_mutants.MUTANTS`` replaces the solution cell and the exercise's
test cell runs on a copy of the notebook's namespace as it stood just before that exercise:

- every wrong answer must fail the whole test cell (visible and hidden tests);
- every correct variant, and the notebook's own solution, must pass it;
- the visible tests alone (what a student sees in the released notebook) must catch at least 60%
  of all the wrong answers, with a message that is more than a bare ``assert``.
"""
import importlib.util
import os
from pathlib import Path

import matplotlib
import pytest
from exercise_mutants import MUTANTS

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
build_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_notebooks)
SOURCES = sorted((ROOT / "notebook_sources").glob("[0-9][0-9]_*.py"))
HIDDEN = "### BEGIN HIDDEN TESTS"


def visible_part(test_source):
    return test_source.split(HIDDEN)[0]


def _run(source, namespace):
    """Run a cell; return None when it passes, else a one-line description of how it failed."""
    try:
        exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 - the course's own notebook cells
    except Exception as error:  # noqa: BLE001 - a failing test cell may raise anything
        return f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
    return None


class Notebook:
    """A notebook's lesson code, executed once, with a snapshot of its namespace before each exercise."""

    def __init__(self, path, workdir):
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.exercises = {}  # grade_id -> (namespace before it, solution source, test source)
        cells = build_notebooks.lesson_cells(path)
        namespace = {"__name__": "__notebook__"}
        previous = os.getcwd()
        os.chdir(workdir)  # the notebooks write runs/...; keep that out of the repository
        graded = [i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade")]
        try:
            for i, cell in enumerate(cells[:graded[-1] + 1] if graded else cells):  # what comes after no exercise can change
                if cell.cell_type != "code":
                    continue
                grading = cell.metadata.get("nbgrader", {})
                if grading.get("grade"):
                    continue  # run together with its solution, below
                if grading.get("solution"):
                    test = next(c for c in cells[i + 1:] if c.metadata.get("nbgrader", {}).get("grade"))
                    self.exercises[grading["grade_id"]] = (dict(namespace), cell.source, test.source)
                    failure = _run(cell.source, namespace) or _run(test.source, namespace)
                    assert failure is None, f"{path.name}: the solution of {grading['grade_id']} fails: {failure}"
                    continue
                failure = _run(cell.source, namespace)
                assert failure is None, f"{path.name}: a lesson cell fails: {failure}\n{cell.source[:300]}"
                plt.close("all")
        finally:
            os.chdir(previous)

    def attempt(self, grade_id, solution, visible_only=False):
        before, _, test = self.exercises[grade_id]
        namespace = dict(before)
        return _run(solution, namespace) or _run(visible_part(test) if visible_only else test, namespace)


@pytest.fixture(scope="session")
def notebooks(tmp_path_factory):
    import torch

    # The hidden tests draw inputs from the instructor's seed (checks.grading_generator): fix it,
    # so that whether a wrong answer is caught does not depend on the draw.
    os.environ.setdefault("COURSE_GRADING_SEED", "mutation-test")
    threads, grading = torch.get_num_threads(), os.environ.get("COURSE_GRADING")
    os.environ["COURSE_GRADING"] = "1"  # as nbgrader runs them: the ungraded training is short (course_lib.grading_run)
    loaded = {}
    try:
        for path in SOURCES:
            loaded[path.stem[:2]] = Notebook(path, tmp_path_factory.mktemp(path.stem[:2]))
    finally:
        torch.set_num_threads(threads)
        if grading is None:
            os.environ.pop("COURSE_GRADING")
        else:
            os.environ["COURSE_GRADING"] = grading
    return loaded


def exercise_ids():
    ids = []
    for path in SOURCES:
        for cell in build_notebooks.lesson_cells(path):
            grading = cell.metadata.get("nbgrader", {})
            if grading.get("solution"):
                ids.append(grading["grade_id"])
    return ids


EXERCISES = exercise_ids()


def test_every_exercise_has_mutants_and_nothing_stale():
    assert len(EXERCISES) >= 39
    assert sorted(MUTANTS) == sorted(EXERCISES), "tests/exercise_mutants.py must list exactly the exercises there are"
    for grade_id, answers in MUTANTS.items():
        assert len(answers["wrong"]) >= 3 and answers["right"], grade_id


@pytest.mark.slow
@pytest.mark.parametrize("grade_id", EXERCISES)
def test_wrong_answers_fail_and_right_ones_pass(notebooks, grade_id):
    notebook = notebooks[grade_id[2:4]]
    passed_wrongly = [label for label, code in MUTANTS[grade_id]["wrong"].items() if notebook.attempt(grade_id, code) is None]
    assert not passed_wrongly, f"{grade_id}: these wrong answers pass: {passed_wrongly}"
    for label, code in MUTANTS[grade_id]["right"].items():
        failure = notebook.attempt(grade_id, code)
        assert failure is None, f"{grade_id}: the correct variant {label!r} fails: {failure}"


@pytest.mark.slow
def test_visible_checks_catch_most_mistakes_and_say_why(notebooks):
    caught, total, bare = 0, 0, []
    for grade_id in EXERCISES:
        notebook = notebooks[grade_id[2:4]]
        for label, code in MUTANTS[grade_id]["wrong"].items():
            total += 1
            failure = notebook.attempt(grade_id, code, visible_only=True)
            if failure is not None:
                caught += 1
                if failure in ("AssertionError: ", "AssertionError"):
                    bare.append(f"{grade_id}: {label}")
    print(f"visible checks catch {caught} of {total} wrong answers ({caught / total:.0%})")
    assert caught / total >= 0.60, f"visible checks catch only {caught} of {total}"
    assert not bare, f"caught by an assert without a message (say what is wrong): {bare}"


@pytest.mark.slow
def test_the_harness_tells_a_test_that_checks_nothing_from_one_that_checks(notebooks):
    # Positive control: with a test cell that asserts nothing, a wrong answer "passes" (and the test
    # above would report it); with one that checks, it fails and the failure is reported.
    notebook = notebooks["01"]
    before, solution, _ = notebook.exercises["ex01_attention_weights"]
    notebook.exercises["control"] = (before, solution, "pass")
    wrong = MUTANTS["ex01_attention_weights"]["wrong"]["divides by d_k"]
    assert notebook.attempt("control", wrong) is None
    assert notebook.attempt("ex01_attention_weights", wrong).startswith("AssertionError: attention_weights(q, k) is not right")
    del notebook.exercises["control"]
