"""The notebooks' Colab badge and set-up cell, tested on a local stand-in for GitHub."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent



NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))



def repository_url():
    return re.search(r'^Repository\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)



def setup_cell(path):
    return "".join(json.loads(path.read_text())["cells"][1]["source"])



def test_every_notebook_has_the_badge_and_the_same_setup_cell():
    url = repository_url()
    github_path = url.split("github.com/", 1)[1]
    first = setup_cell(NOTEBOOKS[0])
    assert '"google.colab" in sys.modules' in first and url in first
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        badge = f"https://colab.research.google.com/github/{github_path}/blob/main/notebooks/{path.name}"
        assert badge in "".join(nb["cells"][0]["source"]), path.name
        assert badge in readme, f"README lacks the Colab badge of {path.name}"
        assert setup_cell(path) == first, f"{path.name} has a different Colab set-up cell"
        assert nb["cells"][1]["outputs"] == [], "outside Colab the set-up cell must print nothing"
    assert set(re.findall(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/", readme)) == {github_path}



def test_setup_cell_outside_colab_changes_nothing(tmp_path):
    code = setup_cell(NOTEBOOKS[0]) + "\nimport os, sys\nprint(os.getcwd()); print(len(sys.path))"
    before = subprocess.run([sys.executable, "-c", "import os, sys\nprint(os.getcwd()); print(len(sys.path))"],
                            cwd=tmp_path, capture_output=True, text=True)
    after = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert after.returncode == 0 and after.stdout == before.stdout and after.stderr == ""



def test_setup_cell_on_colab_fetches_the_course_and_imports_it(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the course to stand in for GitHub")
    fake = tmp_path / "fake_colab"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    course_dir = tmp_path / "content" / "gpt-course"
    probe = (setup_cell(NOTEBOOKS[0]) + "\nimport os, course_lib\nfrom course_lib.data import load_sentences\n"
             "print(course_lib.__file__)\nprint(os.getcwd())\nprint(len(load_sentences()))\n")
    env = {**os.environ, "PYTHONPATH": str(fake), "COURSE_DIR": str(course_dir),
           "COURSE_REPOSITORY": ROOT.as_uri(), "GIT_TERMINAL_PROMPT": "0"}
    env.pop("COURSE_DATA_DIR", None)
    for _attempt in range(2):  # the second run finds the course already fetched
        result = subprocess.run([sys.executable, "-c", "import google.colab\n" + probe], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        module_file, cwd, n_sentences = result.stdout.strip().splitlines()[-3:]
        assert Path(module_file).resolve().is_relative_to(course_dir.resolve()), module_file
        assert Path(cwd).resolve() == (course_dir / "notebooks").resolve()
        assert n_sentences == "20"

