"""The instructor's nbgrader flow, end to end, on generated submissions (INSTRUCTORS.md, step by step).

Release every notebook, then grade a class of made-up students: the solutions, the untouched
release, and the submissions that break naive autograders (an infinite loop, a kernel that dies,
a syntax error, a test cell edited to `assert True`, a deleted test cell, a wrong answer).
"""
import copy
import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _requirements import require
from conftest import TIME_SCALE

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.nbgrader
FIRST = "01_scaled_dot_product_attention"


def nbgrader(course, *args, timeout=900 * TIME_SCALE):
    # One thread per kernel: the test grades three groups of the course side by side on two cores.
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True,
                            text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:  # the first traceback says why; nbgrader goes on and logs much more after it
        output = result.stdout + result.stderr
        first = output.find("Traceback")
        why = output[max(first - 500, 0):first + 4000] if first >= 0 else output[-6000:]
        pytest.fail(f"nbgrader {' '.join(args)} failed:\n{why}")
    return result


WRONG_ANSWER = "\ndef attention_weights(q, k):\n    return q\n"
HOSTILE = {
    # Rewrites every later cell, test cells included, to `pass`: the tests "pass" without running.
    "transformer": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])" + WRONG_ANSWER,
    # Replaces the checks with functions that always pass.
    "patcher": "import course_lib.checks\ntorch.allclose = lambda *a, **k: True\ncourse_lib.checks.expect_close = lambda *a, **k: None\n"
               "checks.expect_close = checks.expect_shape = lambda *a, **k: None" + WRONG_ANSWER,
    # Looks for the instructor's notebooks, the gradebook and other submissions.
    "snooper": "import glob, os, course_lib\nrepo = os.path.dirname(os.path.dirname(course_lib.__file__))\n"
               "found = glob.glob('../../../source/*/*.ipynb') + glob.glob('../../../gradebook.db') + "
               "glob.glob('../../../submitted/*/*/*.ipynb') + glob.glob(os.path.join(repo, 'notebooks', '*.ipynb'))\n"
               "print('FOUND', len(found))" + WRONG_ANSWER,
    # Zeroes everyone's grades and overwrites another student's submission.
    "vandal": "import glob, sqlite3\nfor db in glob.glob('../../../gradebook.db'):\n"
              "    c = sqlite3.connect(db); c.execute('update grade set manual_score = 0'); c.commit()\n"
              "for nb in glob.glob('../../../submitted/solution/*/*.ipynb'):\n    open(nb, 'w').write('{}')" + WRONG_ANSWER,
    # Leaves a process behind.
    "spawner": "import subprocess\nsubprocess.Popen(['sleep', '4242'], start_new_session=True)" + WRONG_ANSWER,
}


def cell(nb, grade_id):
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


def graded_cells(nb):
    return [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    require(module="nbgrader", why='the instructor extra: pip install -e ".[instructor]"')
    course = tmp_path_factory.mktemp("course")
    for name in ("nbgrader_config.py", "grading.py", "prepare_source.py"):
        shutil.copy(ROOT / "instructor" / name, course / name)
    sys.path.insert(0, str(ROOT / "instructor"))
    try:
        from prepare_source import prepare
    finally:
        sys.path.pop(0)
    assignments = prepare(course_dir=course)
    assert len(assignments) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    nbgrader(course, "generate_assignment", "*", "--force")  # one process for all (as INSTRUCTORS.md does it)

    def submit(student, assignment, nb):
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{assignment}.ipynb").write_text(json.dumps(nb))

    def load(step, assignment):
        return json.loads((course / step / assignment / f"{assignment}.ipynb").read_text())

    for assignment in assignments:
        submit("solution", assignment, load("source", assignment))
        submit("untouched", assignment, load("release", assignment))
    solution, release = load("source", FIRST), load("release", FIRST)

    loops = copy.deepcopy(solution)
    cell(loops, "ex01_attention_weights")["source"] = ("def attention_weights(q, k):\n    while True:\n        pass\n\n"
                                                      "attention_weights(1, 2)\n")
    submit("loops", FIRST, loops)
    killer = copy.deepcopy(solution)
    cell(killer, "ex01_spot_the_bug")["source"] = "import os\nos._exit(1)\n"
    submit("killer", FIRST, killer)
    syntax = copy.deepcopy(solution)
    cell(syntax, "ex01_attention_weights")["source"] = "def attention_weights(q, k)\n    return q\n"
    submit("syntax", FIRST, syntax)
    cheater = copy.deepcopy(release)
    for test_cell in graded_cells(cheater):
        test_cell["source"] = "assert True\n"
    submit("cheater", FIRST, cheater)
    deleter = copy.deepcopy(solution)
    deleter["cells"] = [c for c in deleter["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != "ex01_spot_the_bug_tests"]
    submit("deleter", FIRST, deleter)
    swallower = copy.deepcopy(solution)  # an honest bug: the loop swallows the interrupt at the time limit
    cell(swallower, "ex01_spot_the_bug")["source"] = (
        "import time\n\ndef fixed_attention(q, k, v):\n    while True:\n        try:\n            time.sleep(0.05)\n"
        "        except BaseException:\n            pass\n\nfixed_attention(1, 2, 3)\n")
    submit("swallower", FIRST, swallower)
    wrong = copy.deepcopy(solution)
    cell(wrong, "ex01_predict_identical_keys")["source"] = "prediction = 'A'\n"
    submit("wrong", FIRST, wrong)
    for student, code in HOSTILE.items():  # wrong answers that try to cheat the grader or harm others
        hostile = copy.deepcopy(solution)
        cell(hostile, "ex01_attention_weights")["source"] = code
        submit(student, FIRST, hostile)
    victim = course / "submitted" / "solution" / FIRST / f"{FIRST}.ipynb"

    # Grade in four copies of the course side by side (nbgrader's gradebook is one SQLite file per course,
    # so two processes must not share one), a quarter of the assignments each; then merge the grades. Grading
    # waits on kernels and nbconvert more than it computes (measured: half a core on average), so four
    # groups fit two cores. Measured earlier (2-core EPYC), seconds to grade and give feedback: 01 136 (its
    # many students), 12 67 (before its grading run was shortened), 13 54, 10 45, 08 33, 07 30, 11 25, the
    # others 15-16; 14-16 train briefly under grading (course_lib.grading_run).
    groups = {course: [FIRST]}
    for name, numbers in (("course_b", ("14", "12", "02", "03", "04", "19", "21", "22")),
                          ("course_c", ("13", "10", "07", "05", "17", "20")),
                          ("course_d", ("08", "11", "15", "16", "06", "09", "18"))):
        copy_dir = tmp_path_factory.mktemp(name)
        shutil.copytree(course, copy_dir, dirs_exist_ok=True)
        groups[copy_dir] = [a for a in assignments if a[:2] in numbers]
    assert sorted(a for names in groups.values() for a in names) == sorted(assignments), "every assignment in one group"

    for course_dir, names in groups.items():  # each copy keeps only its group's submissions ...
        for folder in (course_dir / "submitted").glob("*/*"):
            if folder.name not in names:
                shutil.rmtree(folder)

    def grade(course_dir):  # ... so that one nbgrader process grades them all ("*"), and one gives feedback
        # A short cell limit so notebook 01's infinite loop costs little, scaled so a slow machine keeps the
        # margin; the others' training cells take longer when four courses grade side by side on 2 cores.
        limit = 20 if FIRST in groups[course_dir] else 90
        nbgrader(course_dir, "autograde", "*", "--create", "--force", f"--Execute.timeout={round(limit * TIME_SCALE)}",
                 f"--Execute.iopub_timeout={round(4 * TIME_SCALE)}")
        nbgrader(course_dir, "generate_feedback", "*", "--force")
        nbgrader(course_dir, "export", "--to", "grades.csv")
        with open(course_dir / "grades.csv", newline="") as f:
            return {(row["student_id"], row["assignment"]): row for row in csv.DictReader(f)
                    if row["assignment"] in groups[course_dir]}

    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        graded = list(pool.map(grade, groups))
    grades = {key: row for part in graded for key, row in part.items()}
    folders = {assignment: course_dir for course_dir, names in groups.items() for assignment in names}
    assert victim.read_text() == json.dumps(load("source", FIRST)), "a submission overwrote another student's notebook"
    return folders, assignments, grades


def score(grades, student, assignment=FIRST):
    row = grades[(student, assignment)]
    return float(row["score"]), float(row["max_score"])


def test_solutions_get_full_marks_everywhere(course):
    _, assignments, grades = course
    for assignment in assignments:
        got, top = score(grades, "solution", assignment)
        assert top >= 5 and got == top, f"{assignment}: solution scored {got}/{top}"


def test_untouched_release_gets_no_exercise_points(course):
    _, assignments, grades = course
    for assignment in assignments:
        assert score(grades, "untouched", assignment)[0] == 0, assignment


def test_untouched_release_fails_only_with_not_implemented(course):
    folders, assignments, _ = course
    for assignment in assignments:
        nb = json.loads((folders[assignment] / "autograded" / "untouched" / assignment / f"{assignment}.ipynb").read_text())
        errors = [o["ename"] for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
        assert errors and set(errors) == {"NotImplementedError"}, f"{assignment}: {sorted(set(errors))}"


def test_infinite_loop_is_stopped_and_the_rest_is_graded(course):
    assert score(course[2], "loops") == (3.0, 5.0)  # exercise 1 (2 points) lost, 2 and 3 kept


def test_dead_kernel_keeps_earlier_points(course):
    assert score(course[2], "killer") == (3.0, 5.0)  # died in exercise 3's cell: 1 and 2 kept


def test_a_cell_that_will_not_stop_keeps_the_points_before_it(course):
    # The kernel never answers the interrupt; grading must still give the student a grade and feedback.
    course_dir, grades = course[0][FIRST], course[2]
    assert score(grades, "swallower") == (3.0, 5.0)  # stuck in exercise 3's cell: 1 and 2 kept
    nb = json.loads((course_dir / "autograded" / "swallower" / FIRST / f"{FIRST}.ipynb").read_text())
    enames = [o["ename"] for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert "CellTimeoutError" in enames
    assert (course_dir / "feedback" / "swallower" / FIRST / f"{FIRST}.html").is_file()


def test_syntax_error_costs_only_its_exercise(course):
    assert score(course[2], "syntax") == (3.0, 5.0)


def test_edited_test_cells_are_restored(course):
    assert score(course[2], "cheater")[0] == 0


def test_deleted_test_cell_earns_nothing(course):
    assert score(course[2], "deleter") == (3.0, 5.0)  # the deleted test's 2 points are not given


def test_wrong_prediction_loses_its_point(course):
    assert score(course[2], "wrong") == (4.0, 5.0)


def test_every_student_has_a_grade(course):
    grades = course[2]
    for student in ("solution", "untouched", "loops", "killer", "syntax", "cheater", "deleter", "wrong", "swallower", *HOSTILE):
        assert (student, FIRST) in grades and grades[(student, FIRST)]["score"] != ""


def visible_text(page):
    """The text a reader of an HTML page sees: tags removed, entities decoded (syntax highlighting
    splits code into <span>s, so a plain substring search of the HTML finds nothing)."""
    text = re.sub(r"<[^>]+>", "", page)
    return re.sub(r"\s+", " ", html.unescape(text))


HIDDEN_LINES = ["BEGIN HIDDEN TESTS", "library_version(_q, _k, torch.randn(2, 3, 9, 1, dtype=torch.float64))[1]",
                'checks.expect_equal(prediction, "B", "prediction")']


def test_the_leak_check_finds_hidden_tests_in_a_rendering_of_the_source(course):
    # Positive control: rendered to HTML by nbconvert, the instructor's notebook shows every hidden line.
    from nbconvert import HTMLExporter

    course_dir = course[0][FIRST]
    page, _ = HTMLExporter().from_filename(str(course_dir / "source" / FIRST / f"{FIRST}.ipynb"))
    text = visible_text(page)
    assert all(" ".join(line.split()) in text for line in HIDDEN_LINES)
    assert HIDDEN_LINES[1] not in page  # why tags must be stripped: the raw HTML never contains it


def test_feedback_never_shows_hidden_tests(course):
    folders, assignments, _ = course
    pages = 0
    for student in ("solution", "untouched", "wrong", "killer", "swallower"):
        for feedback in (page for folder in set(folders.values()) for page in (folder / "feedback" / student).glob("*/*.html")):
            text = visible_text(feedback.read_text())
            pages += 1
            for line in HIDDEN_LINES:
                assert " ".join(line.split()) not in text, (feedback, line)
    assert pages >= 2 * len(assignments)
    wrong = visible_text((folders[FIRST] / "feedback" / "wrong" / FIRST / f"{FIRST}.html").read_text())
    assert "a hidden test failed" in wrong


def sandboxed():
    """The hostile tests need the sandbox: skipped without bubblewrap, except in CI, which installs it."""
    require(executable="bwrap", why="the grading sandbox: apt-get install bubblewrap")


def test_a_test_cell_rewritten_while_it_runs_earns_nothing(course):
    assert score(course[2], "transformer")[0] == 0
    nb = json.loads((course[0][FIRST] / "autograded" / "transformer" / FIRST / f"{FIRST}.ipynb").read_text())
    assert "IncompleteTest" in {o.get("ename") for c in nb["cells"] for o in c.get("outputs", [])}
    assert "course-grader-completed" not in json.dumps(nb)  # the token lines and outputs are removed


def test_honest_submissions_carry_no_token_and_keep_their_marks(course):
    nb = json.loads((course[0][FIRST] / "autograded" / "solution" / FIRST / f"{FIRST}.ipynb").read_text())
    assert "course-grader-completed" not in json.dumps(nb)
    assert score(course[2], "solution") == (5.0, 5.0)


def test_a_submission_sees_nothing_of_the_course_and_harms_no_one(course):
    sandboxed()
    folder = course[0][FIRST]
    nb = json.loads((folder / "autograded" / "snooper" / FIRST / f"{FIRST}.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "FOUND 0" in printed, printed[-500:]
    assert score(course[2], "solution") == (5.0, 5.0)  # the vandal ran after it, and changed nothing
    assert score(course[2], "vandal") == (3.0, 5.0)  # its own wrong answer costs it exercise 1, nothing more


def test_no_process_outlives_grading(course):
    sandboxed()
    leftovers = subprocess.run(["pgrep", "-f", "sleep 4242"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "a process started by a submission outlived nbgrader autograde"


def test_cheats_that_still_score_are_flagged(course):
    sys.path.insert(0, str(ROOT / "instructor"))
    try:
        import integrity
    finally:
        sys.path.pop(0)
    flagged = {student for student, *_ in integrity.report(course[0][FIRST], FIRST)}
    assert set(HOSTILE) <= flagged
    assert not flagged & {"solution", "untouched", "wrong"}
    assert score(course[2], "patcher") == (5.0, 5.0)  # it does fool the checks: flagged is its defence


def test_the_sandbox_hides_the_course_and_keeps_no_process(tmp_path):
    # Positive control: the same probe, outside the sandbox, sees the gradebook and leaves a process.
    sandboxed()
    require(module="nbgrader", why='the instructor extra: pip install -e ".[instructor]"')
    sys.path.insert(0, str(ROOT / "instructor"))
    try:
        import grading
    finally:
        sys.path.pop(0)
    course_dir = tmp_path / "course"
    work = course_dir / "autograded" / "student"
    work.mkdir(parents=True)
    gradebook = course_dir / "gradebook.db"
    gradebook.write_text("grades")
    probe = [sys.executable, "-c", f"import os, subprocess; subprocess.Popen(['sleep', '4343'], start_new_session=True, "
                                   f"stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
                                   f"print(os.path.exists({str(gradebook)!r}))"]
    outside = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    assert outside.stdout.strip() == "True"
    assert subprocess.run(["pgrep", "-f", "sleep 4343"], capture_output=True).returncode == 0
    subprocess.run(["pkill", "-f", "sleep 4343"])
    inside = subprocess.run(grading.sandbox_command(probe, work, [course_dir]), capture_output=True, text=True, timeout=60)
    assert inside.stdout.strip() == "False", inside.stderr
    assert subprocess.run(["pgrep", "-f", "sleep 4343"], capture_output=True).returncode == 1  # gone with the sandbox
