"""instructor/integrity.py: the cheats of a hostile batch are flagged; honest solutions are not."""
import copy
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "instructor"))
import integrity  # noqa: E402

FIRST = "01_scaled_dot_product_attention"
CHEATS = {  # student: (code in the first solution cell, a word the finding must contain)
    "patcher": ("torch.allclose = lambda *a, **k: True\ndef attention_weights(q, k):\n    return q", "reassigns torch.allclose"),
    "checks_patcher": ("checks.expect_close = lambda *a, **k: None\ndef attention_weights(q, k):\n    return q",
                       "reassigns checks.expect_close"),
    "setattr": ("import torch.testing\nsetattr(torch.testing, 'assert_close', print)\ndef attention_weights(q, k):\n    return q",
                "calls setattr()"),
    "transformer": ("get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\ndef attention_weights(q, k):\n    return q",
                    "input_transformers_post"),
    "source_reader": ("exec(open('../../source/01_scaled_dot_product_attention/01_scaled_dot_product_attention.ipynb').read())",
                      "calls open()"),
    "gradebook_writer": ("import sqlite3\nsqlite3.connect('../../gradebook.db').execute('update grade set manual_score = 2')",
                         "imports sqlite3"),
    "background": ("import subprocess\nsubprocess.Popen(['sleep', '1000'])\ndef attention_weights(q, k):\n    return q",
                   "imports subprocess"),
    "library_copy": ("from course_lib.attention import scaled_dot_product_attention as attention_weights", None),
    "environment": ("import os\nsecret = os.environ.get('GRADER_SECRET')\ndef attention_weights(q, k):\n    return q", "os.environ"),
    "shell": ("import os\nos.system('rm -rf ../../submitted/other')\ndef attention_weights(q, k):\n    return q", "os.system"),
    "magic": ("!cat ../../source/*/*.ipynb", "IPython magic or shell escape"),
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for folder in ("release", "submitted/honest"):
            target = course / folder / nb_path.stem
            target.mkdir(parents=True)
            shutil.copy(nb_path, target / nb_path.name)  # the solutions stand in for an honest student's answers
    solution = json.loads((ROOT / "notebooks" / f"{FIRST}.ipynb").read_text())
    first = next(c for c in solution["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    for student, (code, _) in CHEATS.items():
        nb = copy.deepcopy(solution)
        grade_id = first["metadata"]["nbgrader"]["grade_id"]
        next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)["source"] = code
        folder = course / "submitted" / student / FIRST
        folder.mkdir(parents=True)
        (folder / f"{FIRST}.ipynb").write_text(json.dumps(nb))
    added = copy.deepcopy(solution)  # a cell the student added, outside any exercise
    added["cells"].insert(5, {"cell_type": "code", "metadata": {}, "source": "import socket\n", "outputs": [], "execution_count": None})
    (course / "submitted" / "added_cell" / FIRST).mkdir(parents=True)
    (course / "submitted" / "added_cell" / FIRST / f"{FIRST}.ipynb").write_text(json.dumps(added))
    (course / "submitted" / "garbage" / FIRST).mkdir(parents=True)
    (course / "submitted" / "garbage" / FIRST / f"{FIRST}.ipynb").write_text("not json at all")
    return course


def findings(course):
    result = {}
    for student, assignment, _cell, _line, what in integrity.report(course):
        result.setdefault(student, []).append((assignment, what))
    return result


def test_honest_solutions_are_not_flagged(course):
    assert "honest" not in findings(course), findings(course).get("honest")


def test_every_cheat_is_flagged(course):
    found = findings(course)
    for student, (_, word) in CHEATS.items():
        assert student in found, f"{student} was not flagged"
        if word:
            assert any(word in what for _, what in found[student]), (student, found[student])
    assert any("the exercise asks to write it" in what for _, what in found["library_copy"])
    assert any("imports socket" in what for _, what in found["added_cell"])
    assert any("not a readable notebook" in what for _, what in found["garbage"])


def test_the_command_prints_one_line_per_finding(course, tmp_path, capsys):
    out = tmp_path / "integrity.csv"
    assert integrity.main([FIRST, "--course", str(course), "--csv", str(out)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.strip().splitlines()
    assert len(lines) == len(out.read_text().strip().splitlines()) - 1 >= len(CHEATS)
    assert "flags, not verdicts" in printed.err
